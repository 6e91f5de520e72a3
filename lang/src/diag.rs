//! Diagnostics: what went wrong, where, and how to fix it, with a stable code.
//!
//! Every stage (parser, checker, verifier, code generator) reports through this one type,
//! rendered by codespan-reporting for people and as JSON for machines.

use crate::span::Span;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code from [`CODES`], e.g. `E0201`.
    pub code: &'static str,
    pub message: String,
    /// Where the problem is.
    pub primary: Label,
    /// Related places (e.g. the declaration of the map being misused).
    pub secondary: Vec<Label>,
    /// One line saying how to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>, span: Span) -> Diagnostic {
        debug_assert!(code_info(code).is_some(), "unregistered diagnostic code {code}");
        Diagnostic {
            severity: if code.starts_with('W') { Severity::Warning } else { Severity::Error },
            code,
            message: message.into(),
            primary: Label { span, message: String::new() },
            secondary: Vec::new(),
            help: None,
        }
    }
    /// Sets the label text under the primary span.
    pub fn label(mut self, message: impl Into<String>) -> Diagnostic {
        self.primary.message = message.into();
        self
    }
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label { span, message: message.into() });
        self
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// One registered diagnostic code.
#[derive(Clone, Copy, Debug)]
pub struct CodeInfo {
    pub code: &'static str,
    /// Short title, e.g. "undeclared map".
    pub title: &'static str,
}

/// Every code any stage may emit. Ranges: E00xx syntax, E01xx names, E02xx types,
/// E03xx probe targets, E04xx verifier, E05xx code generation; Wxxxx warnings.
/// Codes are never reused or renumbered.
pub const CODES: &[CodeInfo] = &[
    CodeInfo { code: "E0400", title: "control flow may not terminate (cycle in the CFG)" },
    CodeInfo { code: "E0401", title: "map value used without a null check" },
    CodeInfo { code: "E0402", title: "probe exceeds the instruction limit" },
    CodeInfo { code: "E0403", title: "probe exceeds the stack limit" },
    CodeInfo { code: "E0500", title: "code generation failed" },
];

pub fn code_info(code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code == code)
}
