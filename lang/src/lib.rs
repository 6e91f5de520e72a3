//! The `.ppl` probe language: source text to a checked program, with diagnostics.
//!
//! Boundary: knows nothing of the IR, eBPF or the kernel; host facts (tracepoint formats,
//! ELF symbols) come in through [`targets::Targets`].
//!
//! Pipeline: [`parse`] (logos lexer, nesting guard, lalrpop parser) gives an [`ast::File`];
//! [`check()`] resolves names and types into an [`hir::Program`]; [`render`] prints the
//! diagnostics for people ([`render::text`]) or tools ([`render::json`]).
//!
//! Operator precedence, loosest first: `||`, `&&`, comparisons (non-associative), `??`
//! (right-associative; binds tighter than comparisons, looser than arithmetic and bit
//! operators), `|`, `^`, `&`, `<<` `>>`, `+` `-`, `*` `/` `%`, `as`, unary `-` `!` `~`,
//! then postfix `m[k]`, `args.f[i]` and parentheses. Bit operators bind tighter than
//! comparisons (as in Rust, unlike C), so `x & 1 == 1` means `(x & 1) == 1`.

pub mod ast;
pub mod check;
pub mod diag;
pub mod dump;
pub mod explain;
pub mod fmt;
pub mod hir;
pub mod lexer;
pub mod nesting;
pub mod parser;
pub mod render;
pub mod sarif;
pub mod span;
pub mod targets;
pub mod types;

pub use check::{check, CheckOptions};
pub use diag::{Diagnostic, Severity};
pub use parser::parse;
pub use span::Span;
pub use targets::Targets;
pub use types::Ty;

/// Parses and checks `source`. The program comes back only if neither stage found an
/// error; the diagnostics are the parser's (in source order) followed by the checker's.
pub fn check_source(
    source: &str,
    targets: &dyn Targets,
    opts: &CheckOptions,
) -> (Option<hir::Program>, Vec<Diagnostic>) {
    let (file, mut diagnostics) = parse(source);
    let parse_failed = diagnostics.iter().any(Diagnostic::is_error);
    let (program, check_diagnostics) = check(&file, targets, opts);
    diagnostics.extend(check_diagnostics);
    (if parse_failed { None } else { program }, diagnostics)
}
