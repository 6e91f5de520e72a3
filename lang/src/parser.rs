//! Source text to syntax tree: lexer, nesting guard, then the generated LR parser. lalrpop's
//! errors become diagnostics here, at this one boundary.

use crate::ast::{self, Item};
use crate::diag::Diagnostic;
use crate::lexer::{self, Lexer, NoLexError, Tok};
use crate::nesting::ItemGuard;
use crate::span::Span;
use lalrpop_util::{ErrorRecovery, ParseError};

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, unused_parens, unused_imports, dead_code, unused_mut, unused_variables)]
    grammar,
    "/grammar.rs"
);

/// Parses a whole file. Never fails: broken parts become `Error` nodes and diagnostics.
pub fn parse(source: &str) -> (ast::File, Vec<Diagnostic>) {
    let mut lexer = Lexer::new(source);
    let mut recovered: Vec<ErrorRecovery<usize, Tok<'_>, NoLexError>> = Vec::new();
    let mut diagnostics = Vec::new();
    let mut guard = ItemGuard::new(&mut lexer);
    let result = grammar::FileParser::new().parse(&mut recovered, &mut diagnostics, guard.by_ref().map(Ok));
    let guard_diagnostics = std::mem::take(&mut guard.diagnostics);
    let rejected = std::mem::take(&mut guard.rejected);
    let item_starts = std::mem::take(&mut guard.item_starts);
    drop(guard);

    let mut syntax_errors = Vec::new();
    let mut items = match result {
        Ok(items) => items,
        Err(error) => {
            syntax_errors.push(syntax_error(error, source));
            Vec::new()
        }
    };
    syntax_errors.extend(recovered.into_iter().map(|recovery| syntax_error(recovery.error, source)));
    let lexical_errors: Vec<u32> = lexer.diagnostics.iter().map(|d| d.primary.span.start).collect();
    // A token the lexer mangled (an unterminated string swallowing the rest of its line, a
    // dropped invalid character) usually breaks the parse of its item too: report the cause.
    syntax_errors.retain(|error| !follows_lexical_error(error.primary.span.start, &item_starts, &lexical_errors));
    diagnostics.extend(syntax_errors);
    diagnostics.extend(guard_diagnostics);
    diagnostics.append(&mut lexer.diagnostics);
    diagnostics.sort_by_key(|diagnostic| diagnostic.primary.span.start);
    diagnostics.dedup();

    if !rejected.is_empty() {
        items = merge_by_position(items, rejected);
    }
    (ast::File { doc: lexer::file_doc(source), items }, diagnostics)
}

/// Whether a lexical error precedes `position` within its item. Both lists are sorted.
fn follows_lexical_error(position: u32, item_starts: &[u32], lexical_errors: &[u32]) -> bool {
    let item_start = match item_starts.partition_point(|&start| start <= position) {
        0 => 0,
        index => item_starts[index - 1],
    };
    let first_error_in_item = lexical_errors.partition_point(|&start| start < item_start);
    lexical_errors.get(first_error_in_item).is_some_and(|&start| start <= position)
}

/// Puts an `Item::Error` for every withheld item where it was in the file.
fn merge_by_position(items: Vec<Item>, rejected: Vec<Span>) -> Vec<Item> {
    let mut merged = Vec::with_capacity(items.len() + rejected.len());
    let mut rejected = rejected.into_iter().peekable();
    for item in items {
        let start = item_span(&item).start;
        while let Some(span) = rejected.next_if(|span| span.start <= start) {
            merged.push(Item::Error(span));
        }
        merged.push(item);
    }
    merged.extend(rejected.map(Item::Error));
    merged
}

fn item_span(item: &Item) -> Span {
    match item {
        Item::Budget { span, .. } | Item::Const { span, .. } | Item::Error(span) => *span,
        Item::Map(map) => map.span,
        Item::Probe(probe) => probe.span,
        Item::Use(decl) => decl.span,
    }
}

fn syntax_error(error: ParseError<usize, Tok<'_>, NoLexError>, source: &str) -> Diagnostic {
    match error {
        ParseError::UnrecognizedToken { token: (start, token, end), expected } => {
            let found = token.describe();
            let message = format!("expected {}, found {found}", describe_expected(&expected));
            let found_span = Span::new(start, end);
            match expected.iter().any(|e| e == "\";\"").then(|| end_of_previous_line(source, start)).flatten() {
                // The usual case: a `;` forgotten at the end of a line. Point there.
                Some(previous) => Diagnostic::error("E0001", message, previous)
                    .label("expected `;` after this")
                    .with_secondary(found_span, format!("unexpected {found}")),
                None => Diagnostic::error("E0001", message, found_span).label(format!("unexpected {found}")),
            }
        }
        ParseError::UnrecognizedEof { location, expected } => {
            let at = location.min(source.len());
            Diagnostic::error(
                "E0001",
                format!("expected {}, found the end of the file", describe_expected(&expected)),
                Span::new(at, at),
            )
            .label("the file ends here")
        }
        ParseError::ExtraToken { token: (start, token, end) } => {
            let found = token.describe();
            Diagnostic::error("E0001", format!("unexpected {found}"), Span::new(start, end)).label("not expected here")
        }
        ParseError::InvalidToken { location } => {
            Diagnostic::error("E0001", "invalid token", Span::new(location, location)).label("not a token")
        }
        ParseError::User { error } => match error {},
    }
}

/// When the code before byte `start` ends on an earlier line, the span of its last
/// character (skipping whitespace and `//` comments); `None` if it is on the same line.
fn end_of_previous_line(source: &str, start: usize) -> Option<Span> {
    let mut end = start.min(source.len());
    let mut crossed_line = false;
    loop {
        let before = &source[..end];
        let trimmed = before.trim_end();
        crossed_line |= before[trimmed.len()..].contains('\n');
        let line_start = trimmed.rfind('\n').map_or(0, |newline| newline + 1);
        match comment_start(&trimmed[line_start..]) {
            // The last character is inside a comment: look before the comment.
            Some(comment) => end = line_start + comment,
            _ => {
                let last = trimmed.chars().next_back()?;
                return crossed_line.then(|| Span::new(trimmed.len() - last.len_utf8(), trimmed.len()));
            }
        }
    }
}

/// Where a `//` comment starts in one line, ignoring `//` inside string literals.
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' if in_string => index += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(index + 1) == Some(&b'/') => return Some(index),
            _ => {}
        }
        index += 1;
    }
    None
}

const EXPRESSION_STARTS: &[&str] =
    &["Identifier", "Integer", "String", "\"true\"", "\"false\"", "\"(\"", "\"-\"", "\"!\"", "\"~\""];
const OPERATORS: &[&str] = &[
    "\"+\"", "\"-\"", "\"*\"", "\"/\"", "\"%\"", "\"&\"", "\"|\"", "\"^\"", "\"<<\"", "\">>\"", "\"==\"", "\"!=\"",
    "\"<\"", "\"<=\"", "\">\"", "\">=\"", "\"&&\"", "\"||\"", "\"??\"", "\"as\"",
];
const STATEMENT_STARTS: &[&str] = &["\"let\"", "\"if\"", "\"for\"", "\"delete\"", "\"return\"", "Identifier"];
const ITEM_STARTS: &[&str] = &["\"budget\"", "\"const\"", "\"map\"", "\"probe\""];

/// Reads lalrpop's expected-terminal list as a phrase, collapsing the long lists (every
/// operator, every expression start) into words.
fn describe_expected(expected: &[String]) -> String {
    let has = |name: &str| expected.iter().any(|e| e == name);
    let mut remaining: Vec<&str> = expected.iter().map(String::as_str).collect();
    let mut phrases: Vec<String> = Vec::new();
    let mut collapse = |group: &[&str], phrase: &str, remaining: &mut Vec<&str>| {
        remaining.retain(|name| !group.contains(name));
        phrases.push(phrase.to_string());
    };
    if has("\"budget\"") && has("\"probe\"") {
        collapse(ITEM_STARTS, "an item (`budget`, `const`, `map` or `probe`)", &mut remaining);
    }
    if has("\"let\"") && has("\"delete\"") {
        collapse(STATEMENT_STARTS, "a statement", &mut remaining);
    }
    if has("Integer") && has("\"(\"") && has("\"!\"") {
        collapse(EXPRESSION_STARTS, "an expression", &mut remaining);
    }
    if has("\"+\"") && has("\"*\"") {
        collapse(OPERATORS, "an operator", &mut remaining);
    }
    // Specific tokens first, then the collapsed groups: "expected `;` or an operator".
    let groups = std::mem::take(&mut phrases);
    phrases.extend(remaining.iter().map(|name| terminal_phrase(name)));
    phrases.extend(groups);
    match phrases.as_slice() {
        [] => "something else".to_string(),
        [one] => one.clone(),
        [first, second] => format!("{first} or {second}"),
        [init @ .., last] => format!("one of {}, or {last}", init.join(", ")),
    }
}

fn terminal_phrase(name: &str) -> String {
    match name {
        "Identifier" => "a name".to_string(),
        "Integer" => "an integer".to_string(),
        "ScaledInteger" => "an integer".to_string(),
        "Number" => "a number".to_string(),
        "String" => "a string".to_string(),
        "AttachPoint" => "an attach point like `tracepoint:CATEGORY:NAME`".to_string(),
        quoted => format!("`{}`", quoted.trim_matches('"')),
    }
}

/// Tree-building helpers the grammar's actions call, kept here so the grammar stays short.
pub(crate) mod actions {
    use crate::ast::*;
    use crate::diag::Diagnostic;
    use crate::lexer::AttachSpec;
    use crate::span::{Ident, Span, Spanned};

    pub fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
        let span = lhs.span.to(rhs.span);
        Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span }
    }

    pub fn attach_point(spec: AttachSpec, span: Span, diags: &mut Vec<Diagnostic>) -> Option<AttachPoint> {
        let two_parts = match spec.parts.as_slice() {
            [first, second] if !first.is_empty() && !second.is_empty() => Some((first.clone(), second.clone())),
            _ => None,
        };
        let kind = match (spec.kind.as_str(), two_parts) {
            ("tracepoint", Some((category, name))) => AttachKind::Tracepoint { category, name },
            ("uprobe", Some((path, symbol))) => AttachKind::Uprobe { path, symbol },
            ("uretprobe", Some((path, symbol))) => AttachKind::Uretprobe { path, symbol },
            ("usdt", _) => match spec.parts.as_slice() {
                [path, provider, name] if !path.is_empty() && !provider.is_empty() && !name.is_empty() => {
                    AttachKind::Usdt { path: path.clone(), provider: provider.clone(), name: name.clone(), site: None }
                }
                _ => {
                    diags.push(
                        Diagnostic::error("E0007", "malformed usdt attach point", span)
                            .label("expected `usdt:PATH:PROVIDER:NAME`")
                            .with_help("e.g. `probe usdt:/usr/bin/app:myapp:request_start { .. }`"),
                    );
                    return None;
                }
            },
            ("tracepoint", None) => {
                diags.push(
                    Diagnostic::error("E0007", "malformed tracepoint attach point", span)
                        .label("expected `tracepoint:CATEGORY:NAME`")
                        .with_help("e.g. `probe tracepoint:raw_syscalls:sys_enter { .. }`"),
                );
                return None;
            }
            (kind @ ("uprobe" | "uretprobe"), None) => {
                diags.push(
                    Diagnostic::error("E0007", format!("malformed {kind} attach point"), span)
                        .label(format!("expected `{kind}:PATH:SYMBOL`"))
                        .with_help(format!(
                            "e.g. `probe {kind}:/usr/bin/app:main {{ .. }}`; quote paths with spaces: `{kind}:\"/opt/my app\":main`"
                        )),
                );
                return None;
            }
            (kind @ ("rawtracepoint" | "profile" | "interval" | "begin" | "end"), _) => {
                match crate::attach_kinds::parse_timed_or_once(kind, &spec.parts) {
                    Ok(kind) => kind,
                    Err(expected) => {
                        diags.push(
                            Diagnostic::error("E0110", format!("malformed {kind} attach point"), span)
                                .label(format!("expected `{expected}`"))
                                .with_help(crate::attach_kinds::example(kind)),
                        );
                        return None;
                    }
                }
            }
            _ => AttachKind::Unknown { kind: spec.kind, parts: spec.parts },
        };
        Some(AttachPoint { kind, span })
    }

    pub fn map_kind(
        name: &str,
        params: Option<Vec<Spanned<i128>>>,
        span: Span,
        diags: &mut Vec<Diagnostic>,
    ) -> Spanned<MapKindAst> {
        let simple = match name {
            "count" => Some(MapKindAst::Count),
            "sum" => Some(MapKindAst::Sum),
            "min" => Some(MapKindAst::Min),
            "max" => Some(MapKindAst::Max),
            "avg" => Some(MapKindAst::Avg),
            "hist" => Some(MapKindAst::Hist),
            "hash" => Some(MapKindAst::Hash),
            "stats" => Some(MapKindAst::Stats),
            "lru_hash" => Some(MapKindAst::LruHash),
            "percpu_hash" => Some(MapKindAst::PerCpuHash),
            "lru_percpu_hash" => Some(MapKindAst::LruPerCpuHash),
            "array" => Some(MapKindAst::Array { len: None, per_cpu: false }),
            "percpu_array" => Some(MapKindAst::Array { len: None, per_cpu: true }),
            _ => None,
        };
        let node = match (name, simple, params) {
            ("lhist", _, Some(params)) if params.len() == 3 => {
                let mut bounds = [0i64; 3];
                for (bound, param) in bounds.iter_mut().zip(&params) {
                    match i64::try_from(param.node) {
                        Ok(value) => *bound = value,
                        Err(_) => diags.push(
                            Diagnostic::error("E0008", "`lhist` parameter out of range", param.span)
                                .label("does not fit in a signed 64-bit integer"),
                        ),
                    }
                }
                MapKindAst::Lhist { lo: bounds[0], hi: bounds[1], step: bounds[2] }
            }
            ("lhist", _, _) => {
                diags.push(
                    Diagnostic::error("E0008", "`lhist` needs its bounds", span)
                        .label("expected `lhist(lo, hi, step)`")
                        .with_help("e.g. `map sizes: lhist(0, 4096, 256)[u32] max 64;`"),
                );
                // A placeholder that checks clean, so that the checker does not pile on.
                MapKindAst::Lhist { lo: 0, hi: 1, step: 1 }
            }
            (_, Some(kind), Some(_)) => {
                diags.push(
                    Diagnostic::error("E0008", format!("`{name}` takes no parameters"), span)
                        .label("only `lhist(lo, hi, step)` has parameters")
                        .with_help(format!("write just `{name}`")),
                );
                kind
            }
            (_, Some(kind), None) => kind,
            (_, None, _) => MapKindAst::Unknown(name.to_string()),
        };
        Spanned { node, span }
    }

    /// `map NAME: KIND[N] ...;`: only array kinds take a length in brackets.
    pub fn sized_map(
        name: Ident,
        mut kind: Spanned<MapKindAst>,
        len: Spanned<u64>,
        kind_with_len: Span,
        value: Option<TypeExpr>,
        max: Option<Spanned<u64>>,
        span: Span,
        diags: &mut Vec<Diagnostic>,
    ) -> MapDecl {
        match &mut kind.node {
            MapKindAst::Array { len: slot, .. } => *slot = Some(len.node),
            // An unknown kind is reported (with suggestions) by the checker.
            MapKindAst::Unknown(_) => {}
            _ => diags.push(
                Diagnostic::error("E0214", "only array maps take a length in brackets", len.span)
                    .label("a length, where key types were expected")
                    .with_help("keyed maps list key types, e.g. `count[u32] max 1024`; arrays are `array[256] -> u64`"),
            ),
        }
        // The kind's span covers `array[N]`, so that it reads (and is quoted) whole.
        kind.span = kind_with_len;
        MapDecl { name, kind, key: Vec::new(), value, max, span, flags: Vec::new() }
    }

    pub fn sized_type(name: &str, len: u64, span: Span, diags: &mut Vec<Diagnostic>) -> TypeExpr {
        if name == "str" {
            return TypeExpr { kind: TypeExprKind::Str(len), span };
        }
        if name == "ustack" || name == "kstack" {
            return TypeExpr { kind: TypeExprKind::Stack { user: name == "ustack", depth: len }, span };
        }
        if name == "buf" {
            return TypeExpr { kind: TypeExprKind::Buf(len), span };
        }
        diags.push(
            Diagnostic::error("E0012", format!("`{name}` does not take a length"), span)
                .label("only `str[N]` has a length")
                .with_help(format!("write just `{name}`")),
        );
        TypeExpr { kind: TypeExprKind::Named(name.to_string()), span }
    }

    pub fn rate(value: u64, unit: Ident, span: Span, diags: &mut Vec<Diagnostic>) -> Spanned<u64> {
        if unit.node != "s" {
            diags.push(
                Diagnostic::error("E0009", format!("unknown rate unit `{}`", unit.node), unit.span)
                    .label("expected `s`")
                    .with_help("rates are events per second: `rate <= 200k/s`"),
            );
        }
        Spanned { node: value, span }
    }

    /// `activate when anomaly(..) > P for Ns`: the two contextual words are checked here (the
    /// range of `P` and the unit are the checker's, so the formatter keeps what was written).
    #[allow(clippy::too_many_arguments)]
    pub fn activation(
        activate: Ident,
        function: Ident,
        bundle: Option<Ident>,
        sentinel: Ident,
        threshold: Spanned<f64>,
        duration: Spanned<u64>,
        unit: Ident,
        span: Span,
        diags: &mut Vec<Diagnostic>,
    ) -> Activation {
        if activate.node != "activate" {
            diags.push(
                Diagnostic::error("E0254", format!("expected `activate`, found `{}`", activate.node), activate.span)
                    .label("a probe clause here must be `activate when anomaly(..) > P for Ns`")
                    .with_help("write `activate when anomaly(sentinel_map) > 0.85 for 10s`"),
            );
        } else if function.node != "anomaly" {
            diags.push(
                Diagnostic::error("E0254", format!("unknown activation signal `{}`", function.node), function.span)
                    .label("expected `anomaly`")
                    .with_help(
                        "the activator decides on `anomaly(sentinel_map)`: the posterior probability of an anomaly",
                    ),
            );
        }
        Activation { bundle, sentinel, threshold, duration, unit, span }
    }

    pub fn coalesce(lhs: Expr, default: Expr, diags: &mut Vec<Diagnostic>) -> Expr {
        let span = lhs.span.to(default.span);
        let source = match lhs.kind {
            ExprKind::MapGet(source) => source,
            ExprKind::Name(name) => {
                MapRef { map: Spanned { node: name, span: lhs.span }, keys: Vec::new(), span: lhs.span }
            }
            ExprKind::Error => return Expr { kind: ExprKind::Error, span },
            _ => {
                diags.push(
                    Diagnostic::error("E0010", "the left side of `??` must be a map lookup", lhs.span)
                        .label("not a map lookup")
                        .with_help("write `m[k] ?? default`"),
                );
                return Expr { kind: ExprKind::Error, span };
            }
        };
        Expr { kind: ExprKind::Coalesce { source, default: Box::new(default) }, span }
    }

    /// `emit NAME { f: e, .. }`: the contextual keyword must be `emit`.
    pub fn emit(keyword: Ident, name: Ident, fields: Vec<EmitField>, diags: &mut Vec<Diagnostic>) -> StmtKind {
        if keyword.node != "emit" {
            diags.push(
                Diagnostic::error("E0240", format!("unknown statement `{}`", keyword.node), keyword.span)
                    .label("expected `emit`")
                    .with_help(format!("send an event with `emit {} {{ field: value, .. }};`", name.node)),
            );
            return StmtKind::Error;
        }
        StmtKind::Emit { name, fields }
    }

    /// `clear MAP`: the only statement of two words.
    pub fn clear(keyword: Ident, map: Ident, diags: &mut Vec<Diagnostic>) -> StmtKind {
        if keyword.node != "clear" {
            diags.push(
                Diagnostic::error("E0240", format!("unknown statement `{} {}`", keyword.node, map.node), keyword.span)
                    .label("expected `clear`")
                    .with_help(format!("empty a map with `clear {};`", map.node)),
            );
            return StmtKind::Error;
        }
        StmtKind::Clear { map }
    }

    /// `print(..)`: the only function called as a statement.
    pub fn print(keyword: Ident, args: Vec<Expr>, diags: &mut Vec<Diagnostic>) -> StmtKind {
        if keyword.node != "print" {
            let help = if keyword.node == "str" {
                "`str(ptr, N)` is a value: use it in an expression, e.g. `let s = str(arg0, 64);`".to_string()
            } else {
                format!("print a line with `print(\"..\", args..);`; `{}` is not a statement", keyword.node)
            };
            diags.push(
                Diagnostic::error("E0240", format!("unknown statement `{}(..)`", keyword.node), keyword.span)
                    .label("the only call statement is `print(..)`")
                    .with_help(help),
            );
            return StmtKind::Error;
        }
        StmtKind::Print { args }
    }

    pub fn field(base: Ident, field: Ident, span: Span, diags: &mut Vec<Diagnostic>) -> Expr {
        if base.node == "args" {
            return Expr { kind: ExprKind::Field(field), span };
        }
        diags.push(
            Diagnostic::error("E0011", format!("`{}` has no fields", base.node), span)
                .label("only `args` has fields")
                .with_help("tracepoint fields are `args.FIELD`; map methods are statements: `m[k].inc();`"),
        );
        Expr { kind: ExprKind::Error, span }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_lists_collapse() {
        let expected: Vec<String> = OPERATORS.iter().chain([&"\";\""]).map(|s| s.to_string()).collect();
        assert_eq!(describe_expected(&expected), "`;` or an operator");
    }

    #[test]
    fn missing_semicolon_points_at_the_previous_line() {
        let source = "a = f() // why \"//\"\n  // more\n\n  let";
        let let_at = source.find("let").unwrap();
        assert_eq!(end_of_previous_line(source, let_at), Some(Span::new(6, 7)), "the `)`");
        assert_eq!(end_of_previous_line("a = 1 let", 6), None, "same line");
        assert_eq!(end_of_previous_line("\n\nlet", 2), None, "nothing before");
    }
}
