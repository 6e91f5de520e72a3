//! Tokens of the `.ppl` language: a logos lexer plus a thin wrapper that turns lexical
//! errors into diagnostics (the parser never sees them) and lexes probe attach points.
//!
//! Attach points (`tracepoint:raw_syscalls:sys_enter`, `uprobe:/usr/bin/app:main`,
//! `uretprobe:"/opt/my app/server":main`) are not made of ordinary tokens: paths contain
//! `/`, `.` and `-`. So right after the `probe` keyword the wrapper scans one attach point
//! by hand and hands the parser a single [`Tok::Attach`] token.

use crate::diag::Diagnostic;
use crate::span::Span;
use logos::Logos;
use std::fmt;

/// A lexical problem found inside an otherwise recognised token (the token is still
/// produced, so the parser does not cascade). Collected in the logos `extras`.
#[derive(Clone, Debug, PartialEq)]
pub struct LexProblem {
    pub kind: LexErrorKind,
    pub span: Span,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub enum LexErrorKind {
    /// Characters that start no token.
    #[default]
    InvalidCharacter,
    UnterminatedString,
    InvalidEscape(char),
    IntegerTooLarge,
    /// `0x` without digits.
    MissingDigits,
}

/// The error type the parser is generic over. The lexer never yields it (lexical errors
/// are diagnostics already), so it has no values.
#[derive(Clone, Debug, PartialEq)]
pub enum NoLexError {}

impl fmt::Display for NoLexError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

/// `KIND:PART:PART` after `probe`, parts unquoted already.
#[derive(Clone, Debug, PartialEq)]
pub struct AttachSpec {
    pub kind: String,
    pub parts: Vec<String>,
}

#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(error = LexErrorKind)]
#[logos(extras = Vec<LexProblem>)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
pub enum Tok<'src> {
    #[token("budget")]
    Budget,
    #[token("const")]
    Const,
    /// `use stdlib::syscalls::latency;` pulls a module's items into the program.
    #[token("use")]
    Use,
    #[token("map")]
    Map,
    #[token("probe")]
    Probe,
    #[token("rate")]
    Rate,
    #[token("when")]
    When,
    #[token("let")]
    Let,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("delete")]
    Delete,
    #[token("return")]
    Return,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("as")]
    As,
    #[token("true")]
    True,
    #[token("false")]
    False,
    /// `max` is both a map kind and the `max N` clause, so it is a keyword; the grammar
    /// accepts it where a map kind name goes.
    #[token("max")]
    Max,

    #[regex("[A-Za-z_][A-Za-z0-9_]*")]
    Ident(&'src str),
    #[regex("[0-9][0-9_]*", decimal)]
    #[regex("0[xX][0-9a-fA-F_]*", hexadecimal)]
    Int(u64),
    /// `200k`, `1M`: only meaningful in `rate <= N/s`.
    #[regex("[0-9][0-9_]*[kM]", scaled)]
    ScaledInt(u64),
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*", float)]
    Float(f64),
    #[token("\"", string)]
    Str(String),
    /// Produced by [`Lexer`] after `probe`, never by logos itself.
    Attach(AttachSpec),

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(";")]
    Semi,
    #[token(".")]
    Dot,
    /// `..` in `for i in 0..N`.
    #[token("..")]
    DotDot,
    #[token("->")]
    Arrow,
    #[token("??")]
    Coalesce,
    /// `?` of the conditional `c ? a : b`.
    #[token("?")]
    Question,
    #[token("=")]
    Assign,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("!")]
    Bang,
    #[token("~")]
    Tilde,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("&")]
    Amp,
    #[token("|")]
    Pipe,
    #[token("^")]
    Caret,
    #[token("<<")]
    Shl,
    #[token(">>")]
    Shr,
}

impl Tok<'_> {
    /// How the token reads in a message ("found ...").
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("identifier `{name}`"),
            Tok::Int(_) | Tok::ScaledInt(_) => "integer literal".to_string(),
            Tok::Float(_) => "number".to_string(),
            Tok::Str(_) => "string literal".to_string(),
            Tok::Attach(spec) => format!("attach point `{}`", spec.kind),
            other => format!("`{}`", other.text()),
        }
    }

    /// Source text of a fixed token (keywords and punctuation).
    fn text(&self) -> &'static str {
        match self {
            Tok::Budget => "budget",
            Tok::Const => "const",
            Tok::Use => "use",
            Tok::Map => "map",
            Tok::Probe => "probe",
            Tok::Rate => "rate",
            Tok::When => "when",
            Tok::Let => "let",
            Tok::If => "if",
            Tok::Else => "else",
            Tok::Delete => "delete",
            Tok::Return => "return",
            Tok::For => "for",
            Tok::In => "in",
            Tok::As => "as",
            Tok::True => "true",
            Tok::False => "false",
            Tok::Max => "max",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Semi => ";",
            Tok::Dot => ".",
            Tok::DotDot => "..",
            Tok::Arrow => "->",
            Tok::Coalesce => "??",
            Tok::Question => "?",
            Tok::Assign => "=",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::Bang => "!",
            Tok::Tilde => "~",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Amp => "&",
            Tok::Pipe => "|",
            Tok::Caret => "^",
            Tok::Shl => "<<",
            Tok::Shr => ">>",
            Tok::Ident(_) | Tok::Int(_) | Tok::ScaledInt(_) | Tok::Float(_) | Tok::Str(_) | Tok::Attach(_) => "",
        }
    }
}

type LogosLexer<'src> = logos::Lexer<'src, Tok<'src>>;

fn record(lex: &mut LogosLexer<'_>, kind: LexErrorKind) {
    let span = Span::new(lex.span().start, lex.span().end);
    lex.extras.push(LexProblem { kind, span });
}

fn digits_value(lex: &mut LogosLexer<'_>, digits: &str, radix: u32) -> u64 {
    let cleaned: String = digits.chars().filter(|&c| c != '_').collect();
    if cleaned.is_empty() {
        record(lex, LexErrorKind::MissingDigits);
        return 0;
    }
    match u64::from_str_radix(&cleaned, radix) {
        Ok(value) => value,
        Err(_) => {
            record(lex, LexErrorKind::IntegerTooLarge);
            0
        }
    }
}

fn decimal(lex: &mut LogosLexer<'_>) -> u64 {
    let text = lex.slice();
    digits_value(lex, text, 10)
}

fn hexadecimal(lex: &mut LogosLexer<'_>) -> u64 {
    let text = lex.slice();
    digits_value(lex, &text[2..], 16)
}

fn scaled(lex: &mut LogosLexer<'_>) -> u64 {
    let text = lex.slice();
    let (digits, suffix) = text.split_at(text.len() - 1);
    let value = digits_value(lex, digits, 10);
    let factor = if suffix == "k" { 1_000 } else { 1_000_000 };
    value.checked_mul(factor).unwrap_or_else(|| {
        record(lex, LexErrorKind::IntegerTooLarge);
        0
    })
}

fn float(lex: &mut LogosLexer<'_>) -> f64 {
    let cleaned: String = lex.slice().chars().filter(|&c| c != '_').collect();
    // The regex only admits digits, `_` and one `.`, which always parses.
    cleaned.parse().unwrap_or(0.0)
}

fn string(lex: &mut LogosLexer<'_>) -> String {
    let start = lex.span().start;
    let scanned = scan_string_body(lex.remainder(), lex.span().end);
    lex.bump(scanned.consumed);
    for mut problem in scanned.problems {
        if problem.kind == LexErrorKind::UnterminatedString {
            problem.span.start = start as u32;
        }
        lex.extras.push(problem);
    }
    scanned.value
}

/// A string body scanned by hand (after its opening quote).
struct ScannedString {
    value: String,
    /// Bytes consumed after the opening quote, including the closing quote if any.
    consumed: usize,
    problems: Vec<LexProblem>,
}

/// Scans up to the closing `"`; a newline or the end of input leaves it unterminated.
/// `base` is the byte offset of `rest` in the file, for spans.
fn scan_string_body(rest: &str, base: usize) -> ScannedString {
    let bytes = rest.as_bytes();
    let mut value = Vec::new();
    let mut problems = Vec::new();
    let mut index = 0;
    loop {
        match bytes.get(index) {
            None | Some(b'\n') => {
                problems
                    .push(LexProblem { kind: LexErrorKind::UnterminatedString, span: Span::new(base, base + index) });
                break;
            }
            Some(b'"') => {
                index += 1;
                break;
            }
            Some(b'\\') => {
                let escaped = bytes.get(index + 1).copied();
                let decoded = match escaped {
                    Some(b'n') => Some(b'\n'),
                    Some(b't') => Some(b'\t'),
                    Some(b'r') => Some(b'\r'),
                    Some(b'0') => Some(0),
                    Some(b'\\') => Some(b'\\'),
                    Some(b'"') => Some(b'"'),
                    _ => None,
                };
                match decoded {
                    Some(byte) => {
                        value.push(byte);
                        index += 2;
                    }
                    None if escaped.is_none() || escaped == Some(b'\n') => index += 1,
                    None => {
                        // Step over the whole (possibly multi-byte) escaped character.
                        let escaped_char = rest[index + 1..].chars().next().unwrap_or('\\');
                        let width = 1 + escaped_char.len_utf8();
                        problems.push(LexProblem {
                            kind: LexErrorKind::InvalidEscape(escaped_char),
                            span: Span::new(base + index, base + index + width),
                        });
                        index += width;
                    }
                }
            }
            Some(&byte) => {
                value.push(byte);
                index += 1;
            }
        }
    }
    ScannedString { value: String::from_utf8_lossy(&value).into_owned(), consumed: index, problems }
}

/// A token with its byte range, as the parser consumes it.
pub type SpannedTok<'src> = (usize, Tok<'src>, usize);

/// The token stream of one file. Lexical errors go to [`Lexer::diagnostics`].
pub struct Lexer<'src> {
    inner: LogosLexer<'src>,
    pub diagnostics: Vec<Diagnostic>,
    /// Set after `probe`: the next token is an attach point.
    expect_attach: bool,
    /// Set right after an attach point: a `,` now means another attach point follows.
    after_attach: bool,
    /// A run of invalid characters not yet reported (one diagnostic per run, not per byte).
    invalid_run: Option<Span>,
}

impl<'src> Lexer<'src> {
    pub fn new(source: &'src str) -> Lexer<'src> {
        Lexer {
            inner: Tok::lexer(source),
            diagnostics: Vec::new(),
            expect_attach: false,
            after_attach: false,
            invalid_run: None,
        }
    }

    fn flush_invalid_run(&mut self) {
        if let Some(span) = self.invalid_run.take() {
            self.diagnostics.push(problem_diagnostic(&LexProblem { kind: LexErrorKind::InvalidCharacter, span }));
        }
    }

    fn drain_problems(&mut self) {
        for problem in std::mem::take(&mut self.inner.extras) {
            self.diagnostics.push(problem_diagnostic(&problem));
        }
    }

    /// Scans an attach point right after `probe`. Returns `None` (consuming nothing) when
    /// what follows does not start like one; the parser then reports the missing attach point.
    fn lex_attach(&mut self) -> Option<SpannedTok<'src>> {
        let rest = self.inner.remainder();
        let base = self.inner.span().end;
        let bytes = rest.as_bytes();
        let mut index = skip_trivia(bytes, 0);
        if !bytes.get(index).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_') {
            return None;
        }
        let start = index;
        while bytes.get(index).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
            index += 1;
        }
        let kind = rest[start..index].to_string();
        let mut parts = Vec::new();
        while bytes.get(index) == Some(&b':') {
            index += 1;
            if bytes.get(index) == Some(&b'"') {
                let scanned = scan_string_body(&rest[index + 1..], base + index + 1);
                for mut problem in scanned.problems {
                    if problem.kind == LexErrorKind::UnterminatedString {
                        problem.span.start = (base + index) as u32;
                    }
                    self.diagnostics.push(problem_diagnostic(&problem));
                }
                parts.push(scanned.value);
                index += 1 + scanned.consumed;
            } else {
                let part_start = index;
                while bytes.get(index).is_some_and(|&b| is_path_byte(b)) {
                    index += 1;
                }
                parts.push(rest[part_start..index].to_string());
            }
        }
        self.inner.bump(index);
        Some((base + start, Tok::Attach(AttachSpec { kind, parts }), base + index))
    }
}

/// Characters of an unquoted path or symbol in an attach point (`*` for wildcards, which the
/// checker expands).
fn is_path_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'.' | b'-' | b'_' | b'+' | b'@' | b'$' | b'*')
}

/// Skips whitespace and `//` comments from `index`.
fn skip_trivia(bytes: &[u8], mut index: usize) -> usize {
    loop {
        match bytes.get(index) {
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0c') => index += 1,
            Some(b'/') if bytes.get(index + 1) == Some(&b'/') => {
                while bytes.get(index).is_some_and(|&b| b != b'\n') {
                    index += 1;
                }
            }
            _ => return index,
        }
    }
}

fn problem_diagnostic(problem: &LexProblem) -> Diagnostic {
    match &problem.kind {
        LexErrorKind::InvalidCharacter => Diagnostic::error("E0002", "invalid character", problem.span)
            .label("no token starts here")
            .with_help("remove it; strings go between double quotes"),
        LexErrorKind::UnterminatedString => Diagnostic::error("E0003", "unterminated string", problem.span)
            .label("this string has no closing `\"` on its line")
            .with_help("add the closing `\"`"),
        LexErrorKind::InvalidEscape(escaped) => {
            Diagnostic::error("E0003", format!("invalid escape `\\{escaped}` in string"), problem.span)
                .label("unknown escape")
                .with_help("the escapes are `\\n`, `\\t`, `\\r`, `\\0`, `\\\\` and `\\\"`")
        }
        LexErrorKind::IntegerTooLarge => {
            Diagnostic::error("E0004", "integer literal too large", problem.span).label("does not fit in 64 bits")
        }
        LexErrorKind::MissingDigits => Diagnostic::error("E0004", "hexadecimal literal without digits", problem.span)
            .label("expected hex digits after `0x`"),
    }
}

impl<'src> Iterator for Lexer<'src> {
    type Item = SpannedTok<'src>;

    fn next(&mut self) -> Option<SpannedTok<'src>> {
        if std::mem::take(&mut self.expect_attach) {
            if let Some(token) = self.lex_attach() {
                self.flush_invalid_run();
                self.after_attach = true;
                return Some(token);
            }
        }
        loop {
            let result = self.inner.next();
            self.drain_problems();
            let span = self.inner.span();
            match result {
                None => {
                    self.flush_invalid_run();
                    return None;
                }
                Some(Ok(token)) => {
                    self.flush_invalid_run();
                    let list_continues = token == Tok::Comma && std::mem::take(&mut self.after_attach);
                    self.after_attach = false;
                    self.expect_attach = token == Tok::Probe || list_continues;
                    return Some((span.start, token, span.end));
                }
                Some(Err(_)) => {
                    // Only unrecognised input reaches here: callbacks report through extras.
                    let bad = Span::new(span.start, span.end);
                    match &mut self.invalid_run {
                        Some(run) if run.end == bad.start => run.end = bad.end,
                        _ => {
                            self.flush_invalid_run();
                            self.invalid_run = Some(bad);
                        }
                    }
                }
            }
        }
    }
}

/// The `//!` lines at the top of the file (blank lines before them allowed), without the
/// marker and one following space.
pub fn file_doc(source: &str) -> Vec<String> {
    let mut doc = Vec::new();
    for line in source.lines() {
        let trimmed = line.trim_start();
        if let Some(text) = trimmed.strip_prefix("//!") {
            doc.push(text.strip_prefix(' ').unwrap_or(text).trim_end().to_string());
        } else if !(trimmed.is_empty() && doc.is_empty()) {
            break;
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<Tok<'_>> {
        Lexer::new(source).map(|(_, token, _)| token).collect()
    }

    #[test]
    fn numbers_and_suffixes() {
        assert_eq!(
            kinds("1_000 0x1F 200k 1M 0.5"),
            vec![Tok::Int(1000), Tok::Int(31), Tok::ScaledInt(200_000), Tok::ScaledInt(1_000_000), Tok::Float(0.5)]
        );
    }

    #[test]
    fn attach_points_after_probe() {
        let tokens = kinds("probe uretprobe:\"/opt/my app/server\":handle_request {");
        assert_eq!(
            tokens[1],
            Tok::Attach(AttachSpec {
                kind: "uretprobe".into(),
                parts: vec!["/opt/my app/server".into(), "handle_request".into()]
            })
        );
        assert_eq!(tokens[2], Tok::LBrace);
    }

    #[test]
    fn invalid_runs_are_one_diagnostic() {
        let mut lexer = Lexer::new("a $$$ b");
        let tokens: Vec<_> = lexer.by_ref().collect();
        assert_eq!(tokens.len(), 2);
        assert_eq!(lexer.diagnostics.len(), 1);
        assert_eq!(lexer.diagnostics[0].primary.span, Span::new(2, 5));
    }

    #[test]
    fn string_escapes_and_errors() {
        let mut lexer = Lexer::new(r#""a\n\q" "open"#);
        let tokens: Vec<_> = lexer.by_ref().map(|(_, t, _)| t).collect();
        assert_eq!(tokens, vec![Tok::Str("a\n".into()), Tok::Str("open".into())]);
        let codes: Vec<_> = lexer.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, vec!["E0003", "E0003"]);
    }

    #[test]
    fn doc_lines() {
        assert_eq!(file_doc("\n//! One.\n//!Two\nmap x: sum;\n//! not doc"), vec!["One.", "Two"]);
    }
}
