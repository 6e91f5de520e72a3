//! The `.ppl` probe language: source text to a checked program, with diagnostics.
//!
//! Boundary: knows nothing of the IR, eBPF or the kernel; host facts (tracepoint formats,
//! ELF symbols) come in through [`targets::Targets`].
//!
//! Pipeline: [`parse`] (logos lexer, nesting guard, lalrpop parser) gives an [`ast::File`];
//! [`check()`] resolves names and types into an [`hir::Program`]; [`render`] prints the
//! diagnostics for people ([`render::text`]) or tools ([`render::json`]).
//! [`check_program`] first merges the modules a file `use`s ([`modules`]; the caller's
//! [`modules::ModuleLoader`] reads them, `lang` reads no files) and renders each diagnostic in
//! the file it is in; [`check::check`]'s lints (`W0002`-`W0005`) run on programs without errors.
//!
//! Operator precedence, loosest first: `||`, `&&`, comparisons (non-associative), `??`
//! (right-associative; binds tighter than comparisons, looser than arithmetic and bit
//! operators), `|`, `^`, `&`, `<<` `>>`, `+` `-`, `*` `/` `%`, `as`, unary `-` `!` `~`,
//! then postfix `m[k]`, `args.f[i]` and parentheses. Bit operators bind tighter than
//! comparisons (as in Rust, unlike C), so `x & 1 == 1` means `(x & 1) == 1`.

pub mod ast;
pub mod attach_kinds;
pub mod check;
pub mod diag;
pub mod dump;
pub mod explain;
pub mod fmt;
pub mod fuzzing;
pub mod hir;
pub mod lexer;
pub mod modules;
pub mod nesting;
pub mod parser;
pub mod render;
pub mod sarif;
pub mod span;
pub mod targets;
pub mod types;
pub mod usdt;

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
    let (program, mut check_diagnostics) = check(&file, targets, opts);
    if parse_failed {
        check_diagnostics.retain(|d| !check::LINT_CODES.contains(&d.code));
    }
    diagnostics.extend(check_diagnostics);
    (if parse_failed { None } else { program }, diagnostics)
}

/// Parses `source` (the main file, named `main_name` in messages), loads the modules it uses
/// through `loader`, and checks the merged program. The diagnostics' spans are offsets into
/// the returned [`modules::Sources`], which renders each against its own file. The program
/// comes back only if no stage found an error.
pub fn check_program(
    main_name: &str,
    source: &str,
    targets: &dyn Targets,
    loader: &dyn modules::ModuleLoader,
    opts: &CheckOptions,
) -> (Option<hir::Program>, Vec<Diagnostic>, modules::Sources) {
    let resolved = modules::resolve(main_name, source, loader);
    let mut diagnostics = resolved.diagnostics;
    let load_failed = diagnostics.iter().any(Diagnostic::is_error);
    let (program, mut check_diagnostics) = check(&resolved.file, targets, opts);
    if load_failed {
        check_diagnostics.retain(|d| !check::LINT_CODES.contains(&d.code));
    }
    diagnostics.extend(check_diagnostics);
    (if load_failed { None } else { program }, diagnostics, resolved.sources)
}
