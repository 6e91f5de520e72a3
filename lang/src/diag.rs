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
    /// Information, not a problem (e.g. what a wildcard attach point expanded to).
    Note,
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
    /// A note: information about the program (what a wildcard matched), never a problem.
    pub fn note(code: &'static str, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic { severity: Severity::Note, ..Diagnostic::error(code, message, span) }
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
    // Syntax (parser and lexer).
    CodeInfo { code: "E0001", title: "syntax error" },
    CodeInfo { code: "E0002", title: "invalid character" },
    CodeInfo { code: "E0003", title: "invalid string literal" },
    CodeInfo { code: "E0004", title: "invalid integer literal" },
    CodeInfo { code: "E0005", title: "expression too deeply nested or too long" },
    CodeInfo { code: "E0006", title: "blocks nested too deeply" },
    CodeInfo { code: "E0007", title: "malformed attach point" },
    CodeInfo { code: "E0008", title: "malformed map kind" },
    CodeInfo { code: "E0009", title: "unknown rate unit" },
    CodeInfo { code: "E0010", title: "`??` without a map lookup" },
    CodeInfo { code: "E0011", title: "field access on something other than `args`" },
    CodeInfo { code: "E0012", title: "length on a type other than `str`" },
    CodeInfo { code: "E0013", title: "unknown module" },
    CodeInfo { code: "E0014", title: "module cycle" },
    CodeInfo { code: "E0015", title: "name defined in two files" },
    CodeInfo { code: "E0016", title: "`budget` in a module" },
    // Names.
    CodeInfo { code: "E0101", title: "undeclared name" },
    CodeInfo { code: "E0102", title: "undeclared map" },
    CodeInfo { code: "E0103", title: "name defined twice" },
    CodeInfo { code: "E0104", title: "unknown map kind" },
    CodeInfo { code: "E0105", title: "unknown type" },
    CodeInfo { code: "E0106", title: "cannot assign to this name" },
    CodeInfo { code: "E0107", title: "map used as a value" },
    // Probe kinds beyond tracepoints and uprobes, and wildcard attach points.
    CodeInfo { code: "E0110", title: "malformed attach point of a timed, raw or once probe kind" },
    CodeInfo { code: "E0111", title: "unknown raw tracepoint" },
    CodeInfo { code: "E0112", title: "probe frequency or period out of range" },
    CodeInfo { code: "E0113", title: "declared rate below the probe kind's own rate" },
    CodeInfo { code: "E0114", title: "wildcard attach point matches nothing" },
    CodeInfo { code: "E0115", title: "context value not available in this probe kind" },
    CodeInfo { code: "E0116", title: "wildcard attach point cannot be expanded" },
    CodeInfo { code: "E0117", title: "wildcard attach point matches too many points" },
    // Types and map use.
    CodeInfo { code: "E0201", title: "type mismatch" },
    CodeInfo { code: "E0202", title: "implicit narrowing conversion" },
    CodeInfo { code: "E0203", title: "integer literal out of range" },
    CodeInfo { code: "E0204", title: "condition is not a bool" },
    CodeInfo { code: "E0205", title: "operator not defined for these types" },
    CodeInfo { code: "E0206", title: "invalid cast" },
    CodeInfo { code: "E0207", title: "wrong method for this map kind" },
    CodeInfo { code: "E0208", title: "map read outside `??` or `if let`" },
    CodeInfo { code: "E0209", title: "aggregation read in a probe" },
    CodeInfo { code: "E0210", title: "wrong number of map keys" },
    CodeInfo { code: "E0211", title: "string too long" },
    CodeInfo { code: "E0212", title: "keyed map without `max`" },
    CodeInfo { code: "E0213", title: "`max` on an unkeyed map" },
    CodeInfo { code: "E0214", title: "invalid map value or key declaration" },
    CodeInfo { code: "E0215", title: "invalid `lhist` bounds" },
    CodeInfo { code: "E0216", title: "invalid string length" },
    CodeInfo { code: "E0217", title: "const value is not a constant" },
    CodeInfo { code: "E0218", title: "invalid tracepoint array access" },
    CodeInfo { code: "E0219", title: "wrong number of method arguments" },
    CodeInfo { code: "E0220", title: "constant arithmetic overflow or division by zero" },
    CodeInfo { code: "E0221", title: "assignment to an aggregation" },
    CodeInfo { code: "E0222", title: "delete on an unkeyed map" },
    CodeInfo { code: "E0223", title: "delete on an array map" },
    CodeInfo { code: "E0224", title: "invalid array map declaration" },
    CodeInfo { code: "E0225", title: "unknown function" },
    CodeInfo { code: "E0226", title: "wrong arguments to a built-in function" },
    CodeInfo { code: "E0227", title: "branches of `?:` with incompatible types" },
    CodeInfo { code: "E0230", title: "`ustack`/`kstack` outside a map key" },
    CodeInfo { code: "E0231", title: "stack key does not match the map's key type" },
    CodeInfo { code: "E0232", title: "stack type outside a map's key types" },
    CodeInfo { code: "E0233", title: "invalid stack depth" },
    // Output statements (`emit`, `print`).
    CodeInfo { code: "E0240", title: "unknown statement" },
    CodeInfo { code: "E0241", title: "invalid `print` format" },
    CodeInfo { code: "E0242", title: "`print` arguments do not match the format's conversions" },
    CodeInfo { code: "E0243", title: "`print` argument of the wrong type for its conversion" },
    CodeInfo { code: "E0244", title: "event record larger than the eBPF stack" },
    CodeInfo { code: "E0245", title: "`emit` fields repeated or different from an earlier `emit`" },
    // Activation rules of dormant probes (`activate when anomaly(..)`).
    CodeInfo { code: "E0250", title: "unknown activation sentinel" },
    CodeInfo { code: "E0251", title: "map cannot be an activation sentinel" },
    CodeInfo { code: "E0252", title: "activation threshold out of range" },
    CodeInfo { code: "E0253", title: "invalid activation duration" },
    CodeInfo { code: "E0254", title: "malformed activation clause" },
    // Map flags.
    CodeInfo { code: "E0260", title: "unknown map flag" },
    CodeInfo { code: "E0261", title: "`lru` on a map without keys" },
    // Raw byte buffers.
    CodeInfo { code: "E0262", title: "invalid buffer length" },
    CodeInfo { code: "E0263", title: "buffer compared with something else than an equal-length buffer" },
    // USDT probes.
    CodeInfo { code: "E0264", title: "unknown USDT probe" },
    CodeInfo { code: "E0265", title: "USDT argument in an unsupported place" },
    CodeInfo { code: "E0266", title: "USDT semaphore the kernel cannot set" },
    CodeInfo { code: "E0267", title: "USDT argument the probe does not have" },
    // Probe targets, budget and rates.
    CodeInfo { code: "E0301", title: "unknown probe kind" },
    CodeInfo { code: "E0302", title: "unknown tracepoint" },
    CodeInfo { code: "E0303", title: "tracepoint fields unavailable" },
    CodeInfo { code: "E0304", title: "unknown uprobe target" },
    CodeInfo { code: "E0305", title: "unknown tracepoint field" },
    CodeInfo { code: "E0306", title: "context value not available in this probe kind" },
    CodeInfo { code: "E0307", title: "budget declared twice" },
    CodeInfo { code: "E0308", title: "budget out of range" },
    CodeInfo { code: "E0309", title: "rate must be positive" },
    CodeInfo { code: "E0310", title: "unsupported tracepoint field" },
    CodeInfo { code: "E0400", title: "control flow may not terminate (cycle in the CFG)" },
    CodeInfo { code: "E0401", title: "map value used without a null check" },
    CodeInfo { code: "E0402", title: "probe exceeds the instruction limit" },
    CodeInfo { code: "E0403", title: "probe exceeds the stack limit" },
    CodeInfo { code: "E0404", title: "stack slot access out of bounds" },
    CodeInfo { code: "E0405", title: "map value access out of bounds" },
    CodeInfo { code: "E0406", title: "register read before assignment" },
    CodeInfo { code: "E0407", title: "uninitialised stack bytes read or passed to a map" },
    CodeInfo { code: "E0408", title: "divisor may be zero" },
    CodeInfo { code: "E0409", title: "probe declares no event rate" },
    CodeInfo { code: "E0410", title: "probe overhead over the CPU budget" },
    CodeInfo { code: "E0411", title: "read-modify-write race on a shared hash map" },
    CodeInfo { code: "E0412", title: "malformed IR" },
    CodeInfo { code: "E0413", title: "cost bound not confirmed by the SMT solver" },
    CodeInfo { code: "E0414", title: "array index may be out of bounds" },
    CodeInfo { code: "E0415", title: "unbounded string read" },
    CodeInfo { code: "E0500", title: "code generation failed" },
    CodeInfo { code: "E0501", title: "the file declares no probes" },
    CodeInfo { code: "E0502", title: "invalid `-D NAME=VALUE` const override" },
    // Warnings.
    CodeInfo { code: "W0001", title: "unused local" },
    CodeInfo { code: "W0002", title: "unused map" },
    CodeInfo { code: "W0003", title: "unused const" },
    CodeInfo { code: "W0004", title: "predicate is always false" },
    CodeInfo { code: "W0005", title: "string compared with a literal longer than it can hold" },
    CodeInfo { code: "W0100", title: "wildcard attach point expanded (a note)" },
    CodeInfo { code: "W0101", title: "rate declared on a probe that runs once" },
    CodeInfo { code: "W0400", title: "hash map can only grow" },
];

pub fn code_info(code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code == code)
}
