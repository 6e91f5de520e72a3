//! `ppisc fmt`: snapshots of the formatted examples and test data, idempotence and
//! meaning preservation on them, comment placement, and refusal of broken files.

use ppis_lang::fmt::{format_source, is_formatted};
use std::path::Path;

/// The tree of `source` without spans (`Span { start: 3, end: 9 }` becomes `Span`), so
/// that two layouts of one program compare equal.
pub fn tree_without_spans(source: &str) -> String {
    let (file, diagnostics) = ppis_lang::parse(source);
    assert!(diagnostics.iter().all(|d| !d.is_error()), "does not parse: {diagnostics:?}\n{source}");
    erase_spans(&format!("{file:?}"))
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

/// Formats `source` and checks the two properties every output must have.
fn format_checked(source: &str) -> String {
    let formatted = format_source(source).unwrap_or_else(|d| panic!("refused: {d:?}\n{source}"));
    assert_eq!(tree_without_spans(&formatted), tree_without_spans(source), "meaning changed:\n{formatted}");
    let again = format_source(&formatted).expect("formatted output parses");
    assert_eq!(again, formatted, "not idempotent; first pass:\n{formatted}");
    formatted
}

#[test]
fn examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    insta::glob!(root, "*.ppl", |path| {
        let source = std::fs::read_to_string(path).expect("readable example");
        insta::assert_snapshot!(format_checked(&source));
    });
}

#[test]
fn ok_data_files() {
    insta::glob!("data/ok/*.ppl", |path| {
        let source = std::fs::read_to_string(path).expect("readable data file");
        insta::assert_snapshot!(format_checked(&source));
    });
}

/// Error files that still parse (their errors are the checker's) format too; the others
/// are refused with their syntax errors.
#[test]
fn err_data_files_format_or_are_refused() {
    insta::glob!("data/err/*.ppl", |path| {
        let source = std::fs::read_to_string(path).expect("readable data file");
        let (_, diagnostics) = ppis_lang::parse(&source);
        let syntax_errors: Vec<_> = diagnostics.iter().filter(|d| d.is_error()).collect();
        match format_source(&source) {
            Ok(_) => {
                assert!(syntax_errors.is_empty());
                format_checked(&source);
            }
            Err(refused) => {
                assert!(!refused.is_empty());
                assert_eq!(refused.len(), syntax_errors.len());
            }
        }
    });
}

#[test]
fn layout_of_a_messy_file() {
    let source = "//! Doc line.\n//!Second.\nbudget   0.25 % ;\nconst  A=0x1F ;const B = 1_000;\n\n\n\
map m : hash [ u32 , str[16] ] -> u64 max 1_024 ;map h:lhist( 0,0x100 , -0 )[u32]max 4;\
probe tracepoint:raw_syscalls:sys_enter rate<=10k/s when ((pid)) == 1 && (tid > 2 || cpu < 1) { let x = -(A + 1) as u64; \
if x > 1 { return; } else if let y = m[1, comm] { m[2, \"a\\\"b\"] = y; } else { delete m[x as u32, comm]; } }\n\
probe uprobe:\"/opt/my app/srv\":main{}";
    insta::assert_snapshot!(format_checked(source));
}

#[test]
fn comments_are_kept_in_place() {
    let source = "//! The file.\n\n// Leading comment of the map.\nmap m: count[u32] max 8; // trailing on the map\n\
// between items\n\nprobe tracepoint:a:b rate <= 1/s { // after the brace\n    // before a statement\n    m[pid].inc(); // after it\n\n\
    if pid > 1 { // after if\n        return;\n        // dangling at the end of a block\n    } // after the closing brace\n\
    else { // after else\n    }\n    // last in the probe\n} // after the probe\n// at the end\n";
    insta::assert_snapshot!(format_checked(source));
}

#[test]
fn comments_inside_constructs_move_out_and_stay() {
    let source = "map m: count[u32] max 8;\nprobe tracepoint:a:b\n  // why this rate\n  rate <= 1/s // measured\n  when pid\n  // inner own-line\n  > 1 {\n\
    m[pid // key\n    ].inc();\n    if pid > 1 {\n        return;\n    }\n    // between brace and else\n    else if tid > 2 // cond\n    {\n        return;\n    }\n}\n";
    insta::assert_snapshot!(format_checked(source));
}

#[test]
fn long_headers_wrap_and_short_ones_join() {
    let short = "probe tracepoint:raw_syscalls:sys_enter\n    rate <= 10k/s\n    when comm == \"bash\"\n{\n}\n";
    assert_eq!(
        format_checked(short),
        "probe tracepoint:raw_syscalls:sys_enter rate <= 10k/s when comm == \"bash\" {}\n"
    );
    let long = "probe tracepoint:raw_syscalls:sys_enter rate <= 10k/s when comm == \"bash\" || comm == \"zsh\" || comm == \"fish\" { return; }";
    assert_eq!(
        format_checked(long),
        "probe tracepoint:raw_syscalls:sys_enter\n    rate <= 10k/s\n    when comm == \"bash\" || comm == \"zsh\" || comm == \"fish\"\n{\n    return;\n}\n"
    );
}

#[test]
fn parentheses_follow_precedence() {
    let source = "probe tracepoint:a:b { x = ((a + b) * c); x = a - (b - c); x = (a - b) - c; x = (m[1] ?? 2) + 3; \
x = m[1] ?? (2 + 3); x = -(a as u8); x = (-a) as u8; x = (a < b) == (c < d); x = !(a && b) || c; x = m[0] ?? (n[0] ?? 1); }";
    let formatted = format_checked(source);
    let body: Vec<&str> = formatted.lines().filter(|line| line.starts_with("    ")).map(str::trim).collect();
    assert_eq!(
        body,
        vec![
            "x = (a + b) * c;",
            "x = a - (b - c);",
            "x = a - b - c;",
            "x = (m[1] ?? 2) + 3;",
            "x = m[1] ?? 2 + 3;",
            "x = -(a as u8);",
            "x = -a as u8;",
            "x = (a < b) == (c < d);",
            "x = !(a && b) || c;",
            "x = m[0] ?? n[0] ?? 1;",
        ]
    );
}

#[test]
fn syntax_errors_are_refused() {
    let errors = format_source("probe tracepoint:a:b { let x = ; }").expect_err("broken file");
    assert_eq!(errors.iter().map(|d| d.code).collect::<Vec<_>>(), vec!["E0001"]);
    assert!(format_source("map m: count(1);").is_err(), "E0008 comes from the parser");
}

#[test]
fn check_mode_tells_formatted_from_not() {
    assert_eq!(is_formatted("map m: count;\n").ok(), Some(true));
    assert_eq!(is_formatted("map m :count;").ok(), Some(false));
    assert_eq!(is_formatted("").ok(), Some(true));
}

#[test]
fn erasing_spans_keeps_everything_else() {
    assert_eq!(erase_spans("A { span: Span { start: 1, end: 2 }, x: 3 }"), "A { span: Span, x: 3 }");
    assert_ne!(tree_without_spans("const A = 1 + 2;"), tree_without_spans("const A = 1 - 2;"));
    assert_eq!(tree_without_spans("const A = (1 + 2);"), tree_without_spans("const A=1+2;"));
}
