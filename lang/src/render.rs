//! Diagnostics for people (codespan-reporting text, optionally coloured) and for tools
//! (one JSON array). Spans are clamped to the source and to character boundaries first, so
//! a stale or odd span never makes rendering fail.

use crate::diag::{Diagnostic, Severity};
use crate::span::Span;
use codespan_reporting::diagnostic::{Diagnostic as Report, Label as ReportLabel};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor::Ansi, Config};
use serde::Serialize;
use std::ops::Range;

/// The byte range of `span` inside `source`, on character boundaries.
fn clamp(source: &str, span: Span) -> Range<usize> {
    let mut start = (span.start as usize).min(source.len());
    while !source.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (span.end as usize).clamp(start, source.len());
    while !source.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

fn to_report(diagnostic: &Diagnostic, source: &str) -> Report<()> {
    let report = match diagnostic.severity {
        Severity::Error => Report::error(),
        Severity::Warning => Report::warning(),
        Severity::Note => Report::note(),
    };
    let mut labels = vec![
        ReportLabel::primary((), clamp(source, diagnostic.primary.span)).with_message(&diagnostic.primary.message)
    ];
    labels.extend(
        diagnostic
            .secondary
            .iter()
            .map(|label| ReportLabel::secondary((), clamp(source, label.span)).with_message(&label.message)),
    );
    let notes = diagnostic.help.iter().map(|help| format!("help: {help}")).collect();
    report.with_code(diagnostic.code).with_message(&diagnostic.message).with_labels(labels).with_notes(notes)
}

/// Renders `diagnostics` the way a compiler prints them: a header like
/// ``error[E0102]: undeclared map `foo` ``, the source lines with labels, then `= help: ..`.
pub fn text(diagnostics: &[Diagnostic], file_name: &str, source: &str, color: bool) -> String {
    let file = SimpleFile::new(file_name, source);
    let config = Config::default();
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = to_report(diagnostic, source);
        let rendered = if color {
            let mut writer = Ansi::new(Vec::new());
            term::emit_to_write_style(&mut writer, &config, &file, &report)
                .map(|()| String::from_utf8_lossy(&writer.into_inner()).into_owned())
        } else {
            let mut plain = String::new();
            term::emit_to_string(&mut plain, &config, &file, &report).map(|()| plain)
        };
        match rendered {
            Ok(rendered) => out.push_str(&rendered),
            // Clamped spans always resolve; keep a plain line should the library still refuse.
            Err(_) => out.push_str(&format!(
                "{}[{}]: {}\n  --> {file_name}:{}\n\n",
                if diagnostic.is_error() { "error" } else { "warning" },
                diagnostic.code,
                diagnostic.message,
                line_of(source, diagnostic.primary.span.start as usize)
            )),
        }
    }
    out
}

/// The 1-based line of a byte offset (offsets past the end count as the last line).
pub fn line_of(source: &str, byte_offset: usize) -> u32 {
    let offset = clamp(source, Span::new(byte_offset, byte_offset)).start;
    source.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() as u32 + 1
}

/// The 1-based column (in characters) of a byte offset.
pub fn column_of(source: &str, byte_offset: usize) -> u32 {
    let offset = clamp(source, Span::new(byte_offset, byte_offset)).start;
    let line_start = source[..offset].rfind('\n').map_or(0, |newline| newline + 1);
    source[line_start..offset].chars().count() as u32 + 1
}

#[derive(Serialize)]
struct JsonSpan {
    start: u32,
    end: u32,
}

#[derive(Serialize)]
struct JsonLabel {
    message: String,
    span: JsonSpan,
    line: u32,
    column: u32,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'a str,
    severity: Severity,
    message: &'a str,
    file: &'a str,
    span: JsonSpan,
    line: u32,
    column: u32,
    end_line: u32,
    end_column: u32,
    /// The text under the primary span.
    label: &'a str,
    /// Secondary labels.
    labels: Vec<JsonLabel>,
    help: Option<&'a str>,
}

fn json_span(source: &str, span: Span) -> JsonSpan {
    let range = clamp(source, span);
    JsonSpan { start: range.start as u32, end: range.end as u32 }
}

/// One JSON array, one object per diagnostic: `code`, `severity`, `message`, `file`,
/// `span {start, end}` (bytes), `line`, `column`, `end_line`, `end_column` (1-based,
/// columns in characters), `label`, `labels` (secondary: `message`, `span`, `line`,
/// `column`) and `help` (string or null).
pub fn json(diagnostics: &[Diagnostic], file_name: &str, source: &str) -> String {
    let entries: Vec<JsonDiagnostic<'_>> = diagnostics
        .iter()
        .map(|diagnostic| {
            let span = json_span(source, diagnostic.primary.span);
            let (start, end) = (span.start as usize, span.end as usize);
            JsonDiagnostic {
                code: diagnostic.code,
                severity: diagnostic.severity,
                message: &diagnostic.message,
                file: file_name,
                line: line_of(source, start),
                column: column_of(source, start),
                end_line: line_of(source, end),
                end_column: column_of(source, end),
                span,
                label: &diagnostic.primary.message,
                labels: diagnostic
                    .secondary
                    .iter()
                    .map(|label| {
                        let span = json_span(source, label.span);
                        let start = span.start as usize;
                        JsonLabel {
                            message: label.message.clone(),
                            line: line_of(source, start),
                            column: column_of(source, start),
                            span,
                        }
                    })
                    .collect(),
                help: diagnostic.help.as_deref(),
            }
        })
        .collect();
    // Plain data of strings and numbers: serialisation cannot fail.
    serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based_and_clamped() {
        let source = "ab\ncé d";
        assert_eq!(line_of(source, 0), 1);
        assert_eq!(line_of(source, 3), 2);
        assert_eq!(column_of(source, 6), 3, "é is one character of two bytes");
        assert_eq!(line_of(source, 1000), 2);
        assert_eq!(clamp(source, Span::new(5, 5)), 4..6, "inside é widens to the whole character");
    }

    #[test]
    fn color_output_has_escapes_and_plain_has_none() {
        let diagnostic = Diagnostic::error("E0001", "broken", Span::new(0, 2)).label("here");
        let plain = text(std::slice::from_ref(&diagnostic), "x.ppl", "ab\n", false);
        let colored = text(&[diagnostic], "x.ppl", "ab\n", true);
        assert!(plain.starts_with("error[E0001]: broken"), "{plain}");
        assert!(!plain.contains('\u{1b}'));
        assert!(colored.contains('\u{1b}'));
    }
}
