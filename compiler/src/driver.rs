//! The pipeline every `ppisc` command shares: source → checked program → IR → verified IR
//! → eBPF → ELF object, stopping at the first stage that reports errors.

use crate::codegen::{self, CompiledProgram};
use crate::elf::{self, ObjectProgram};
use crate::lower::{self, LowerOptions, Lowered};
use ppis_lang::targets::Targets;
use ppis_lang::{hir, Diagnostic};
use ppis_manifest::profile::CostProfile;
use ppis_verifier::{Verdict, VerifyOptions};

/// What the pipeline needs besides the source.
pub struct CompileOptions {
    pub lower: LowerOptions,
    /// Costs of the host the probes will run on.
    pub profile: CostProfile,
    /// CPUs of that host (overhead is a share of all of them).
    pub cpus: u32,
}

impl CompileOptions {
    /// The shipped default profile and this machine's CPU count.
    pub fn for_this_host(lower: LowerOptions) -> CompileOptions {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        CompileOptions { lower, profile: default_profile(), cpus }
    }
}

/// The cost profile shipped with ppisc (`profiles/default.json`).
pub fn default_profile() -> CostProfile {
    CostProfile::from_json(include_str!("../../profiles/default.json")).expect("shipped profile is valid")
}

/// Everything known about a program that passed every stage.
pub struct Compiled {
    pub program: hir::Program,
    pub lowered: Lowered,
    pub verdict: Verdict,
    pub programs: Vec<CompiledProgram>,
}

/// Runs every stage up to code generation. Returns the compiled program when no stage
/// reported an error, and all diagnostics (warnings included) in source order.
pub fn compile(source: &str, targets: &dyn Targets, opts: &CompileOptions) -> (Option<Compiled>, Vec<Diagnostic>) {
    let (program, mut diags) = ppis_lang::check_source(source, targets, &ppis_lang::CheckOptions::default());
    let Some(program) = program else {
        return (None, sorted(diags));
    };
    let lowered = lower::lower(&program, source, &opts.lower);
    let verify_opts = VerifyOptions { profile: &opts.profile, budget_percent: program.budget_percent, cpus: opts.cpus };
    let verdict = ppis_verifier::verify(&lowered.module, &verify_opts);
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
