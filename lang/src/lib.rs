//! The `.ppl` probe language: source text to a checked program, with diagnostics.
//!
//! Boundary: knows nothing of the IR, eBPF or the kernel; host facts (tracepoint formats,
//! ELF symbols) come in through [`targets::Targets`].

pub mod ast;
pub mod diag;
pub mod hir;
pub mod span;
pub mod targets;
pub mod types;

pub use diag::{Diagnostic, Severity};
pub use span::Span;
pub use types::Ty;
