//! The pipeline every `ppisc` command shares: source → checked program → IR → verified IR
//! → eBPF → ELF object, stopping at the first stage that reports errors.

use crate::codegen::{self, CompiledProgram};
use crate::elf::{self, ObjectProgram};
use crate::lower::{self, LowerOptions, Lowered};
use ppis_lang::targets::Targets;
use ppis_lang::{hir, Diagnostic};
use ppis_verifier::Verdict;

/// Everything known about a program that passed every stage.
pub struct Compiled {
    pub program: hir::Program,
    pub lowered: Lowered,
    pub verdict: Verdict,
    pub programs: Vec<CompiledProgram>,
}

/// Runs every stage up to code generation. Returns the compiled program when no stage
/// reported an error, and all diagnostics (warnings included) in source order.
pub fn compile(source: &str, targets: &dyn Targets, opts: &LowerOptions) -> (Option<Compiled>, Vec<Diagnostic>) {
    let (program, mut diags) = ppis_lang::check_source(source, targets, &ppis_lang::CheckOptions::default());
    let Some(program) = program else {
        return (None, sorted(diags));
    };
    let lowered = lower::lower(&program, source, opts);
    let verdict = ppis_verifier::verify(&lowered.module);
    diags.extend(verdict.diagnostics.iter().cloned());
    if verdict.has_errors() {
        return (None, sorted(diags));
    }
    let mut programs = Vec::new();
    for func in &lowered.module.functions {
        match codegen::compile_function(func, &lowered.module) {
            Ok(p) => programs.push(p),
            Err(e) => diags.push(
                Diagnostic::error("E0500", format!("cannot generate eBPF for this probe: {}", e.message), e.span)
                    .label("in this probe")
                    .with_help("simplify the probe; please report this if it looks like a compiler limitation"),
            ),
        }
    }
    if diags.iter().any(|d| d.is_error()) {
        return (None, sorted(diags));
    }
    (Some(Compiled { program, lowered, verdict, programs }), sorted(diags))
}

/// The ELF object of a compiled program, with its manifest embedded.
pub fn object(compiled: &Compiled) -> Vec<u8> {
    let programs: Vec<ObjectProgram> = compiled
        .lowered
        .sections
        .iter()
        .zip(&compiled.programs)
        .map(|(section, program)| ObjectProgram { section: section.clone(), program })
        .collect();
    elf::write_object(&compiled.lowered.module.maps, &programs, &compiled.lowered.manifest.to_json())
}

fn sorted(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by_key(|d| (d.primary.span.start, d.severity, d.code));
    diags
}
