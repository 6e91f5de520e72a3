//! Diagnostics as SARIF 2.1.0 (`ppisc check --format sarif`), the format code-scanning
//! services (GitHub, GitLab, IDE plugins) read.
//!
//! One run, tool `ppisc`, one rule per code of [`CODES`] (title, and the summary of its
//! `ppisc explain` page as help), one result per diagnostic with its primary location and
//! the secondary labels as related locations. Lines and columns are 1-based; columns count
//! Unicode code points (declared in the run), and `endColumn` is exclusive.

use crate::diag::{Diagnostic, Severity, CODES};
use crate::explain;
use crate::render::{column_of, line_of};
use crate::span::Span;
use serde_json::{json, Value};

/// Where SARIF consumers find the schema.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// One checked file: its name as given on the command line, its text and its diagnostics.
#[derive(Clone, Copy, Debug)]
pub struct SarifFile<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub diagnostics: &'a [Diagnostic],
}

/// The SARIF log for `files`, pretty-printed.
pub fn render(files: &[SarifFile<'_>]) -> String {
    let rules: Vec<Value> = CODES
        .iter()
        .map(|info| {
            let level = if info.code.starts_with('W') { "warning" } else { "error" };
            let mut rule = json!({
                "id": info.code,
                "shortDescription": { "text": info.title },
                "defaultConfiguration": { "level": level },
            });
            if let Some(page) = explain::page_entry(info.code) {
                rule["fullDescription"] = json!({ "text": page.summary });
                rule["help"] = json!({
                    "text": format!("{} Run `ppisc explain {}` for examples.", page.summary, info.code),
                    "markdown": explain::page(info.code).unwrap_or_default(),
                });
            }
            rule
        })
        .collect();
    let results: Vec<Value> =
        files.iter().flat_map(|file| file.diagnostics.iter().map(move |diagnostic| result(file, diagnostic))).collect();
    let log = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "ppisc",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    });
    // A tree of strings and numbers: serialisation cannot fail.
    serde_json::to_string_pretty(&log).unwrap_or_default()
}

fn result(file: &SarifFile<'_>, diagnostic: &Diagnostic) -> Value {
    let level = match diagnostic.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    let mut message = diagnostic.message.clone();
    if let Some(help) = &diagnostic.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let mut result = json!({
        "ruleId": diagnostic.code,
        "level": level,
        "message": { "text": message },
        "locations": [location(file, diagnostic.primary.span, &diagnostic.primary.message)],
    });
    if let Some(index) = CODES.iter().position(|info| info.code == diagnostic.code) {
        result["ruleIndex"] = json!(index);
    }
    if !diagnostic.secondary.is_empty() {
        let related: Vec<Value> = diagnostic
            .secondary
            .iter()
            .enumerate()
            .map(|(index, label)| {
                let mut related = location(file, label.span, &label.message);
                related["id"] = json!(index);
                related
            })
            .collect();
        result["relatedLocations"] = json!(related);
    }
    result
}

fn location(file: &SarifFile<'_>, span: Span, label: &str) -> Value {
    let (start, end) = (span.start as usize, (span.end as usize).max(span.start as usize));
    let mut location = json!({
        "physicalLocation": {
            "artifactLocation": { "uri": file_uri(file.name) },
            "region": {
                "startLine": line_of(file.source, start),
                "startColumn": column_of(file.source, start),
                "endLine": line_of(file.source, end),
                "endColumn": column_of(file.source, end),
            }
        }
    });
    if !label.is_empty() {
        location["message"] = json!({ "text": label });
    }
    location
}

/// A path as a URI reference: relative paths stay relative (consumers resolve them against
/// the checkout), absolute ones become `file://` URIs; reserved characters are escaped.
pub fn file_uri(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    if path.starts_with('/') {
        format!("file://{encoded}")
    } else {
        encoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_and_absolute_paths_get_a_scheme() {
        assert_eq!(file_uri("probes/my probe.ppl"), "probes/my%20probe.ppl");
        assert_eq!(file_uri("/tmp/a#b.ppl"), "file:///tmp/a%23b.ppl");
    }
}
