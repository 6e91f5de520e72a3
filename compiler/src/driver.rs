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
    compile_with_checks(source, targets, &ppis_lang::CheckOptions::default(), opts)
}

/// Like [`compile`], with checker options (e.g. `-D` const overrides).
pub fn compile_with_checks(
    source: &str,
    targets: &dyn Targets,
    check: &ppis_lang::CheckOptions,
    opts: &CompileOptions,
) -> (Option<Compiled>, Vec<Diagnostic>) {
    let (program, diags) = ppis_lang::check_source(source, targets, check);
    compile_checked(program, diags, source, opts)
}

/// Like [`compile_with_checks`], for a main file named `main_name` whose `use` items load
/// modules through `loader`. The diagnostics' spans are offsets into the returned sources,
/// which render each against its own file.
pub fn compile_program(
    main_name: &str,
    source: &str,
    targets: &dyn Targets,
    loader: &dyn ppis_lang::modules::ModuleLoader,
    check: &ppis_lang::CheckOptions,
    opts: &CompileOptions,
) -> (Option<Compiled>, Vec<Diagnostic>, ppis_lang::modules::Sources) {
    let (program, diags, sources) = ppis_lang::check_program(main_name, source, targets, loader, check);
    // Later stages slice the source by span: give them every file at its offsets.
    let combined = sources.combined();
    let (compiled, diags) = compile_checked(program, diags, &combined, opts);
    (compiled, diags, sources)
}

/// The bytes a build's source hash covers (`hashes.source` in the certificate, `source_hash`
/// in the bundle): the main file's text alone when the program uses no module and overrides
/// no const, so such builds hash their file as `sha256sum` does; otherwise the main text,
/// every module by its name (`stdlib/…`, independent of where the stdlib is installed) and
/// text, and the `-D` overrides, each framed by its length, so that a change to any input
/// of the build changes the hash and no two input sets frame to the same bytes.
pub fn source_identity(sources: &ppis_lang::modules::Sources, check: &ppis_lang::CheckOptions) -> Vec<u8> {
    let Some((main, modules)) = sources.files.split_first() else { return Vec::new() };
    if modules.is_empty() && check.const_overrides.is_empty() {
        return main.text.as_bytes().to_vec();
    }
    let mut out = b"ppis sources v1\n".to_vec();
    let mut framed = |kind: &str, parts: &[&str]| {
        out.extend_from_slice(kind.as_bytes());
        for part in parts {
            out.extend_from_slice(format!(" {}:", part.len()).as_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out.push(b'\n');
    };
    framed("main", &[&main.text]);
    for module in modules {
        framed("module", &[&module.name, &module.text]);
    }
    for (name, value) in &check.const_overrides {
        framed("define", &[name, value]);
    }
    out
}

/// The stages after checking: lowering, verification, code generation.
fn compile_checked(
    program: Option<hir::Program>,
    mut diags: Vec<Diagnostic>,
    source: &str,
    opts: &CompileOptions,
) -> (Option<Compiled>, Vec<Diagnostic>) {
    let Some(program) = program else {
        return (None, sorted(diags));
    };
    if program.probes.is_empty() {
        diags.push(
            Diagnostic::error("E0501", "nothing to compile: the file declares no probes", ppis_lang::Span::new(0, 0))
                .label("no `probe` in this file")
                .with_help("add a probe, e.g. `probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s { .. }`"),
        );
        return (None, sorted(diags));
    }
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

/// The certificate of a compiled program (JSON, `docs/certificate.md`): every obligation's
/// verdict, the cost profile's hash, and hashes of the source, the IR and `object`.
/// Each probe also names its Coq proof file and the program-cost bound that file proves
/// (`coq`: `{file, theorem, program_cost_bound_ps}`), so the two artifacts state one bound.
pub fn certificate_json(compiled: &Compiled, source: &[u8], object: &[u8], profile: &CostProfile) -> String {
    let inputs = ppis_verifier::CertificateInputs { source, bytecode: object };
    let certificate = ppis_verifier::certificate(&compiled.lowered.module, &compiled.verdict, &inputs);
    let mut json: serde_json::Value = serde_json::from_str(&certificate.to_json()).expect("certificate is JSON");
    let proofs = coq_proofs(compiled, profile);
    if let Some(probes) = json.get_mut("probes").and_then(|p| p.as_array_mut()) {
        for ((probe, proof), func) in probes.iter_mut().zip(&proofs).zip(&compiled.lowered.module.functions) {
            if let Some(why) = crate::coq::unsupported(func) {
                probe["coq"] = serde_json::json!({ "file": format!("proofs/{}", proof.file), "unsupported": why });
                continue;
            }
            probe["coq"] = serde_json::json!({
                "file": format!("proofs/{}", proof.file),
                "theorem": format!("{}_cost", proof.ident),
                "program_cost_bound_ps": proof.bound_ps,
            });
            // A probe with loops: its file also proves a step bound from the loop hints
            // (docs/proofs.md, "Probes with loops").
            let cost = |item: crate::coq::CostItem| coq_item_cost(item, func.probe.trigger, profile);
            if let Some((steps, loops)) = crate::coq::loop_step_bound(func, &compiled.lowered.module.maps, &cost) {
                probe["coq"]["loops"] = serde_json::json!(loops);
                probe["coq"]["step_bound"] = serde_json::json!(steps);
                probe["coq"]["termination_theorem"] = serde_json::json!(format!("{}_terminates", proof.ident));
            }
        }
    }
    serde_json::to_string_pretty(&json).expect("certificate serialises")
}

/// One probe's Coq proof file.
pub struct CoqProof {
    pub file: String,
    /// The probe's Coq identifier (theorems are `IDENT_cost`, `IDENT_terminates`, ...).
    pub ident: String,
    /// The bound `IDENT_cost` proves on the program's cost per run (trigger excluded), ps.
    pub bound_ps: u64,
    pub text: String,
}

/// One Coq proof file per probe (`docs/proofs.md`): the probe's IR as a Coq term with the
/// profile's costs in picoseconds, and theorems that it terminates, stays in bounds and costs
/// at most the structural worst path over all paths (which is at least the verifier's bound
/// over feasible paths, so the two never contradict).
pub fn coq_proofs(compiled: &Compiled, profile: &CostProfile) -> Vec<CoqProof> {
    let maps = &compiled.lowered.module.maps;
    compiled
        .lowered
        .module
        .functions
        .iter()
        .map(|func| {
            let cost = |item: crate::coq::CostItem| coq_item_cost(item, func.probe.trigger, profile);
            let bound = crate::coq::structural_wcet(func, maps, &cost);
            CoqProof {
                file: crate::coq::proof_file_name(func),
                ident: crate::coq::coq_identifier(&func.name),
                bound_ps: bound,
                text: crate::coq::export_function(func, maps, &cost, bound),
            }
        })
        .collect()
}

/// The profile's cost of one Coq cost item, in picoseconds, priced as the verifier prices the
/// corresponding instruction (`ppis_verifier::cost`), except that zeroing a slot is charged
/// as the largest possible slot (the Coq table has one price per item, not per slot size),
/// and that the fixed and per-byte parts of a string read, a raw read and a ring buffer output
/// (`helpers.ringbuf_output`, by the record's `len`) are rounded up to picoseconds separately:
/// the Coq table prices them `Helper + len × HelperPerByte` (affine in `len`), and rounding
/// both parts up keeps that at least the verifier's `picos(base + per_byte × len)`. The other
/// oracle helpers (`helpers.get_stackid`, `helpers.get_current_cgroup_id`) are rounded up
/// too, so each Coq price is at least the verifier's.
fn coq_item_cost(item: crate::coq::CostItem, trigger: ppis_ir::Trigger, profile: &CostProfile) -> u64 {
    use crate::coq::{CostItem, HelperKind};
    use ppis_ir::MapType;
    let ps = ppis_verifier::cost::picos;
    // Nanoseconds to picoseconds rounded up; like `picos`, anything not positive is free.
    let ps_up = |ns: f64| if ns.is_finite() && ns > 0.0 { (ns * 1000.0).ceil() as u64 } else { 0 };
    let i = &profile.instructions;
    let h = &profile.helpers;
    let by_map = |c: &ppis_manifest::profile::MapHelperCost, t: MapType| match t {
        MapType::Hash => c.hash,
        MapType::Array => c.array,
        MapType::PerCpuHash => c.percpu_hash,
        MapType::PerCpuArray => c.percpu_array,
        MapType::RingBuf | MapType::StackTrace => c.max(),
        MapType::LruHash | MapType::LruPerCpuHash => c.lru_hash,
    };
    match item {
        CostItem::Mov | CostItem::Alu(_) | CostItem::Neg | CostItem::SetCond | CostItem::Extend => ps(i.alu),
        CostItem::LoadCtx => ps(i.load_ctx),
        CostItem::LoadSlot => ps(i.load_stack),
        CostItem::StoreSlot => ps(i.store_stack),
        CostItem::ZeroSlot => ps(i.store_stack) * (ppis_verifier::MAX_STACK_BYTES as u64 / 8),
        CostItem::LoadPtr => ps(i.load_map_value),
        CostItem::StorePtr => ps(i.store_map_value),
        CostItem::Jump | CostItem::Branch | CostItem::BranchNull => ps(i.branch),
        // As the verifier prices `ret`: a branch plus the per-run cost on this trigger, paid once per run.
        CostItem::Return => ps(i.branch) + ps(profile.run(ppis_verifier::cost::trigger_kind(trigger))),
        CostItem::Helper(k) => {
            ps(i.call)
                + match k {
                    HelperKind::GetCurrentPidTgid => ps(h.get_current_pid_tgid),
                    HelperKind::GetCurrentUidGid => ps(h.get_current_uid_gid),
                    HelperKind::GetCurrentComm => ps(h.get_current_comm),
                    HelperKind::KtimeGetNs => ps(h.ktime_get_ns),
                    HelperKind::GetSmpProcessorId => ps(h.get_smp_processor_id),
                    HelperKind::ProbeReadUserStr => ps_up(h.probe_read_user_str.base),
                    HelperKind::ProbeReadKernelStr => ps_up(h.probe_read_kernel_str.base),
                    HelperKind::RingbufOutput => ps_up(h.ringbuf_output.base),
                    HelperKind::GetStackId => ps_up(h.get_stackid),
                    HelperKind::GetCurrentCgroupId => ps_up(h.get_current_cgroup_id),
                    // One Coq kind for both address spaces: the costlier base is a sound price.
                    HelperKind::ProbeRead => ps_up(h.probe_read_user.base.max(h.probe_read_kernel.base)),
                }
        }
        CostItem::HelperPerByte(k) => match k {
            HelperKind::ProbeReadUserStr => ps_up(h.probe_read_user_str.per_byte),
            HelperKind::ProbeReadKernelStr => ps_up(h.probe_read_kernel_str.per_byte),
            HelperKind::RingbufOutput => ps_up(h.ringbuf_output.per_byte),
            HelperKind::ProbeRead => ps_up(h.probe_read_user.per_byte.max(h.probe_read_kernel.per_byte)),
            HelperKind::GetStackId
            | HelperKind::GetCurrentCgroupId
            | HelperKind::GetCurrentPidTgid
            | HelperKind::GetCurrentUidGid
            | HelperKind::GetCurrentComm
            | HelperKind::KtimeGetNs
            | HelperKind::GetSmpProcessorId => 0,
        },
        CostItem::MapLookup(t) => ps(i.call) + ps(by_map(&h.map_lookup_elem, t)),
        CostItem::MapUpdate(t) => ps(i.call) + ps(by_map(&h.map_update_elem, t)),
        CostItem::MapDelete(t) => ps(i.call) + ps(by_map(&h.map_delete_elem, t)),
    }
}

/// A signed bundle: object, certificate, manifest and Coq proofs (`docs/bundle.md`).
pub fn bundle(
    compiled: &Compiled,
    name: &str,
    source: &[u8],
    profile: &CostProfile,
    key: &ppis_bundle::SigningKey,
) -> Result<Vec<u8>, ppis_bundle::BundleError> {
    let object = object(compiled);
    let certificate = certificate_json(compiled, source, &object, profile).into_bytes();
    let mut extra: std::collections::BTreeMap<String, Vec<u8>> = coq_proofs(compiled, profile)
        .into_iter()
        .map(|p| (format!("proofs/{}", p.file), p.text.into_bytes()))
        .collect();
    extra.insert(ppis_bundle::acc::INVARIANTS_ENTRY.to_string(), invariants_json(&object));
    let contents = ppis_bundle::BundleContents {
        name: name.to_string(),
        compiler_version: format!("ppisc {}", env!("CARGO_PKG_VERSION")),
        cost_profile_hash: profile.hash(),
        source_hash: ppis_bundle::sha256_hex(source),
        manifest: compiled.lowered.manifest.clone(),
        object,
        certificate,
        extra,
    };
    ppis_bundle::write_bundle(&contents, key)
}

/// The abstraction-carrying-code invariants of `object` (`invariants.json`, `docs/bundle.md`):
/// the abstract state at every jump target and each loop's trip count, computed on the final
/// bytecode so the loader can check them in one pass. A program the bytecode-level analysis
/// cannot annotate is left out (the loader then refuses it if it has a loop).
pub fn invariants_json(object: &[u8]) -> Vec<u8> {
    match ppis_bundle::pcc::produce_invariants(object) {
        Ok((json, _skipped)) => json,
        // The object is ours and parses; an empty file keeps the bundle loadable without loops.
        Err(_) => format!(
            "{{\"format\":\"{}\",\"version\":{},\"programs\":{{}}}}",
            ppis_bundle::acc::INVARIANTS_FORMAT,
            ppis_bundle::acc::INVARIANTS_VERSION
        )
        .into_bytes(),
    }
}
