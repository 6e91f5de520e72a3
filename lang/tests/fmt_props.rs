//! Property tests of `ppisc fmt` over generated programs: every construct of the language,
//! random spacing and line breaks, redundant parentheses, and comments between any two
//! tokens. For each: the output is a fixed point (`fmt(fmt(x)) == fmt(x)`), and it parses
//! to the same tree as the input once spans are erased.

use ppis_lang::fmt::format_source;
use proptest::prelude::*;

/// A generated expression: its tokens and how loosely its top operator binds (as in the
/// grammar: 1 `||` .. 13 atoms), to know where parentheses are needed for it to parse.
#[derive(Clone, Debug)]
struct Generated {
    tokens: Vec<String>,
    level: u8,
}

const ATOM: u8 = 13;

fn atom(tokens: &[&str]) -> Generated {
    Generated { tokens: tokens.iter().map(|t| t.to_string()).collect(), level: ATOM }
}

fn parenthesised(expr: Generated) -> Generated {
    let mut tokens = vec!["(".to_string()];
    tokens.extend(expr.tokens);
    tokens.push(")".to_string());
    Generated { tokens, level: ATOM }
}

/// `expr` as an operand needing at least `min_level`: parenthesised when it needs to be,
/// and sometimes when it does not.
fn operand(expr: Generated, min_level: u8, extra_parens: bool) -> Vec<String> {
    if expr.level < min_level || extra_parens {
        parenthesised(expr).tokens
    } else {
        expr.tokens
    }
}

fn leaf() -> impl Strategy<Value = Generated> {
    prop_oneof![
        (0u64..100_000).prop_map(|value| Generated { tokens: vec![value.to_string()], level: ATOM }),
        Just(atom(&["0x1F"])),
        Just(atom(&["1_000"])),
        Just(atom(&["pid"])),
        Just(atom(&["nsecs"])),
        Just(atom(&["x"])),
        Just(atom(&["LIMIT"])),
        Just(atom(&["true"])),
        Just(atom(&["\"a \\\"quoted\\\" // not a comment\\n\""])),
        Just(atom(&["args", ".", "id"])),
        Just(atom(&["args", ".", "args", "[", "1", "]"])),
        Just(atom(&["m", "[", "pid", ",", "comm", "]"])),
        Just(atom(&["str", "(", "arg0", ",", "16", ")"])),
    ]
}

const BINARY: &[(&str, u8)] = &[
    ("||", 1),
    ("&&", 2),
    ("==", 3),
    ("<", 3),
    (">=", 3),
    ("|", 5),
    ("^", 6),
    ("&", 7),
    ("<<", 8),
    (">>", 8),
    ("+", 9),
    ("-", 9),
    ("*", 10),
    ("/", 10),
    ("%", 10),
];

fn expr() -> impl Strategy<Value = Generated> {
    leaf().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), 0..BINARY.len(), inner.clone(), any::<(bool, bool)>()).prop_map(
                |(lhs, op, rhs, (extra_left, extra_right))| {
                    let (text, level) = BINARY[op];
                    // Comparisons do not chain; other tiers are left-associative.
                    let (left_min, right_min) = if level == 3 { (4, 4) } else { (level, level + 1) };
                    let mut tokens = operand(lhs, left_min, extra_left);
                    tokens.push(text.to_string());
                    tokens.extend(operand(rhs, right_min, extra_right));
                    Generated { tokens, level }
                }
            ),
            (inner.clone(), any::<bool>()).prop_map(|(default, extra)| {
                let mut tokens: Vec<String> = ["m", "[", "1", ",", "comm", "]", "??"].map(String::from).to_vec();
                tokens.extend(operand(default, 4, extra));
                Generated { tokens, level: 4 }
            }),
            (prop_oneof![Just("-"), Just("!"), Just("~")], inner.clone(), any::<bool>()).prop_map(
                |(op, operand_expr, extra)| {
                    let mut tokens = vec![op.to_string()];
                    tokens.extend(operand(operand_expr, 12, extra));
                    Generated { tokens, level: 12 }
                }
            ),
            (inner.clone(), prop_oneof![Just("u32"), Just("i64"), Just("str[16]")], any::<bool>()).prop_map(
                |(cast, ty, extra)| {
                    let mut tokens = operand(cast, 11, extra);
                    tokens.push("as".to_string());
                    tokens.extend(ty.split_inclusive(['[', ']']).map(String::from));
                    Generated { tokens, level: 11 }
                }
            ),
        ]
    })
}

fn tokens(text: &str) -> Vec<String> {
    text.split(' ').filter(|t| !t.is_empty()).map(String::from).collect()
}

fn block(body: Vec<Vec<String>>) -> Vec<String> {
    let mut out = vec!["{".to_string()];
    out.extend(body.into_iter().flatten());
    out.push("}".to_string());
    out
}

fn simple_statement() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        expr().prop_map(|value| [tokens("let x ="), value.tokens, tokens(";")].concat()),
        expr().prop_map(|value| [tokens("x ="), value.tokens, tokens(";")].concat()),
        (expr(), expr()).prop_map(|(key, value)| [
            tokens("m ["),
            key.tokens,
            tokens(", comm ] ="),
            value.tokens,
            tokens(";")
        ]
        .concat()),
        Just(tokens("calls [ pid ] . inc ( ) ;")),
        expr().prop_map(|value| [tokens("total . add ("), value.tokens, tokens(") ;")].concat()),
        Just(tokens("delete m [ 1 , comm ] ;")),
        Just(tokens("return ;")),
        expr().prop_map(|value| [tokens("emit call { n :"), value.tokens, tokens(", who : comm } ;")].concat()),
        expr().prop_map(|value| [
            tokens("print ("),
            vec!["\"n=%d %s\\n\"".to_string()],
            tokens(","),
            value.tokens,
            tokens(", comm ) ;")
        ]
        .concat()),
    ]
}

fn statement() -> impl Strategy<Value = Vec<String>> {
    simple_statement().prop_recursive(3, 16, 3, |inner| {
        let body = prop::collection::vec(inner, 0..3);
        prop_oneof![
            (expr(), body.clone(), prop::option::of(body.clone())).prop_map(|(cond, then, otherwise)| {
                let mut out = [tokens("if"), cond.tokens, block(then)].concat();
                if let Some(otherwise) = otherwise {
                    out.push("else".to_string());
                    out.extend(block(otherwise));
                }
                out
            }),
            (expr(), body.clone(), expr(), body.clone()).prop_map(|(cond, then, cond2, then2)| {
                [tokens("if"), cond.tokens, block(then), tokens("else if"), cond2.tokens, block(then2)].concat()
            }),
            (body.clone(), body.clone()).prop_map(|(then, otherwise)| {
                [tokens("if let t0 = m [ 1 , comm ]"), block(then), tokens("else"), block(otherwise)].concat()
            }),
            (expr(), body).prop_map(|(end, body)| [tokens("for i in 0 .."), end.tokens, block(body)].concat()),
        ]
    })
}

fn item() -> impl Strategy<Value = Vec<String>> {
    let attach = prop_oneof![
        Just("tracepoint:raw_syscalls:sys_enter"),
        Just("uprobe:/usr/bin/app:main"),
        Just("uretprobe:\"/opt/my app/server\":handle_request"),
        Just("uprobe:/a//b:f"),
    ];
    let rate = prop::option::of(prop_oneof![Just("10k"), Just("500"), Just("1M"), Just("0x10")]);
    prop_oneof![
        Just(tokens("budget 0.25 % ;")),
        expr().prop_map(|value| [tokens("const LIMIT ="), value.tokens, tokens(";")].concat()),
        Just(tokens("map m : hash [ u32 , str[16] ] -> u64 max 1_024 ;")),
        Just(tokens("map calls : count [ u32 ] max 0x400 ;")),
        Just(tokens("map total : sum ;")),
        Just(tokens("map sizes : lhist ( 0 , 0x100 , - 16 ) [ u32 ] max 8 ;")),
        Just(tokens("map slots : array [ 16 ] -> u64 ;")),
        (attach, rate, prop::option::of(expr()), prop::collection::vec(statement(), 0..4)).prop_map(
            |(attach, rate, predicate, body)| {
                let mut out = vec!["probe".to_string(), attach.to_string()];
                if let Some(rate) = rate {
                    out.extend(tokens(&format!("rate <= {rate} / s")));
                }
                if let Some(predicate) = predicate {
                    out.push("when".to_string());
                    out.extend(predicate.tokens);
                }
                out.extend(block(body));
                out
            }
        ),
    ]
}

/// What goes between two tokens: mostly spaces, sometimes line breaks and comments.
const SEPARATORS: &[&str] = &[
    " ",
    " ",
    " ",
    " ",
    " ",
    " ",
    " ",
    "  ",
    "\n",
    "\n    ",
    "\n\n",
    "\t",
    " // trailing note\n",
    "\n// own line\n",
    "\n\n    // after a blank line\n\n",
    " //tight\n",
];

/// A whole file: optional `//!` lines, items, separators chosen per token boundary.
fn program() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(item(), 0..5))
        .prop_flat_map(|(doc, items)| {
            let tokens: Vec<String> = items.into_iter().flatten().collect();
            let count = tokens.len() + 1;
            (Just(doc), Just(tokens), prop::collection::vec(0..SEPARATORS.len(), count))
        })
        .prop_map(|(doc, tokens, separators)| {
            let mut source = if doc { "//! A generated file.\n//!\n".to_string() } else { String::new() };
            for (token, separator) in tokens.iter().zip(&separators) {
                source.push_str(token);
                source.push_str(SEPARATORS[*separator]);
            }
            source
        })
}

fn erase_spans(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(at) = rest.find("Span { start: ") {
        out.push_str(&rest[..at]);
        out.push_str("Span");
        let after = &rest[at..];
        rest = after.find('}').map_or("", |close| &after[close + 1..]);
    }
    out.push_str(rest);
    out
}

fn tree(source: &str) -> Result<String, String> {
    let (file, diagnostics) = ppis_lang::parse(source);
    match diagnostics.iter().find(|d| d.is_error()) {
        Some(error) => Err(format!("{error:?}")),
        None => Ok(erase_spans(&format!("{file:?}"))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn formatting_is_idempotent_and_keeps_the_meaning(source in program()) {
        if std::env::var_os("SHOW_GENERATED").is_some() { eprintln!("=====\n{source}"); }
        let before = tree(&source);
        prop_assert!(before.is_ok(), "the generator made a file that does not parse: {:?}\n{}", before, source);
        let formatted = format_source(&source).map_err(|d| TestCaseError::fail(format!("refused: {d:?}")))?;
        prop_assert_eq!(tree(&formatted), before, "meaning changed:\n{}\n---\n{}", source, formatted);
        let again = format_source(&formatted).map_err(|d| TestCaseError::fail(format!("refused: {d:?}")))?;
        prop_assert_eq!(&again, &formatted, "not idempotent; input:\n{}", source);
        let comments = |text: &str| text.matches("//").count();
        prop_assert_eq!(comments(&formatted), comments(&source), "a comment was lost:\n{}", formatted);
    }
}
