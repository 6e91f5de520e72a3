//! Load-time proof-carrying-code check: before `ppisd` loads a bundle it re-derives, from the
//! bundle's own bytes and the host's cost profile, the facts the certificate claims, without
//! trusting the build host's compiler or verifier (no Z3, no compiler code here).
//!
//! What is checked, in this order (the first failure is the one reason reported):
//! 1. the certificate parses, is version 1, accepted, and is tied to this bundle: its bytecode
//!    hash is the object's SHA-256, its source hash and cost-profile hash are the header's, and
//!    (unless the policy allows another profile) the profile is the host's own;
//! 2. the object's `.ppis.manifest` section equals `manifest.json`, its programs are exactly the
//!    manifest's probes, each of the program type its attach point needs, and the certificate
//!    has an accepted probe with a cost bound and the same rate for each;
//! 3. each program's bytecode: only instructions ppis emits, calls only to the helpers allowed
//!    for its program type, every jump inside the program, no path falls off the end, and every
//!    jump strictly forward (so the CFG is acyclic, as the certificate's termination obligation
//!    says) unless the program carries invariants (`invariants.json`, format 2), whose loops
//!    have certified trip counts;
//! 4. the worst-path cost recomputed on the bytecode with the host profile (loops priced per
//!    certified trip, see [`worst_path_with_loops`]) stays within what the budget allows at the
//!    declared rate on this host's CPUs (see [`check_cost`] for why the certificate's IR-level
//!    number is not the yardstick), and within [`COST_TOLERANCE`] of the certified bound, which
//!    catches code appended after the proof;
//! 5. for a program with invariants: abstraction-carrying code ([`crate::acc`]): the stated
//!    per-leader abstract states are consistent with the code in one linear pass, prove every
//!    memory access, null check, stack access and division safe, and every loop's trip count is
//!    at least what the code and the states justify.
//!
//! Boundary: pure, no syscalls: bytes in, a report or one error out. The kernel verifier still
//! runs on load.

use std::collections::{BTreeMap, BTreeSet};

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SymbolSection};
use ppis_manifest::profile::{CostProfile, MapHelperCost, TriggerKind};
use ppis_manifest::{Attach, Manifest, MANIFEST_SECTION};
use serde::Deserialize;

use crate::acc::{
    self, AccError, Invariants, InvariantsFile, LoopBound, ObjectMaps, ProgramInvariants, INVARIANTS_ENTRY,
    INVARIANTS_FORMAT, INVARIANTS_VERSION,
};
use crate::{sha256_hex, Bundle, Header};

/// How far the bytecode-level worst case may exceed the certified (IR-level) bound, as a
/// fraction: the code generator adds moves, spills and address computations the IR does not
/// have (each priced at most one ALU or stack access), so a small excess is expected; a probe
/// that gained helper calls or a longer path after verification exceeds it.
pub const COST_TOLERANCE: f64 = 0.5;

/// The certificate format version this checker reads.
pub const CERTIFICATE_VERSION: u64 = 1;

/// Size of one eBPF instruction slot.
const INSN_BYTES: usize = 8;

/// What the host decides, besides the bundle's own bytes.
#[derive(Clone, Debug)]
pub struct HostPolicy<'a> {
    /// The cost profile of this host; its prices are used for the recomputed bound.
    pub profile: &'a CostProfile,
    /// CPUs the overhead is spread over on this host.
    pub cpus: u32,
    /// Refuse bundles whose certificate was computed with another profile than `profile`.
    pub require_profile_match: bool,
}

/// Which rule a bundle broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The certificate is unreadable, of another version, or not accepted.
    Certificate,
    /// A hash in the certificate does not match the bundle.
    Hash,
    /// The certificate's cost profile is not the host's.
    Profile,
    /// Object, manifest and certificate disagree about the probes.
    Consistency,
    /// The object cannot be parsed, or a program's bytes are malformed.
    Object,
    /// An instruction ppis never emits.
    Instruction,
    /// A call to a helper not allowed for the program type.
    Helper,
    /// A backward jump (a loop) or a jump out of the program.
    ControlFlow,
    /// The recomputed cost is over the budget or far over the certified bound.
    Cost,
    /// The invariants (`invariants.json`) are unreadable, inconsistent with the code, do not
    /// prove a memory access safe, or claim a loop bound the code does not justify.
    Invariants,
}

/// Why a bundle was refused: one rule and one line naming the program and the numbers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PccError {
    pub rule: Rule,
    pub message: String,
}

fn refuse(rule: Rule, message: impl Into<String>) -> PccError {
    PccError { rule, message: message.into() }
}

/// What the check established about one probe.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeReport {
    pub program: String,
    /// Instructions (an `ld_imm64` counts once).
    pub instructions: usize,
    /// Helper calls anywhere in the program, by kernel helper id.
    pub helper_calls: BTreeMap<i32, u32>,
    /// Trigger plus the heaviest bytecode path, priced with the host profile, ns.
    pub bytecode_bound_ns: f64,
    /// The certificate's bound, ns.
    pub certified_bound_ns: f64,
    /// The most one event may cost for the declared rate to stay within the budget, ns;
    /// `None` for `begin`/`end`, which run once (no rate, so no per-event budget).
    pub allowed_ns: Option<f64>,
    /// The declared rate; `None` for `begin`/`end`.
    pub rate_per_sec: Option<u64>,
    /// The trigger's fixed cost on this host, ns (the runtime adds it to measured run time).
    pub trigger_ns: f64,
}

/// Every probe of an accepted bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct PccReport {
    pub probes: Vec<ProbeReport>,
}

/// Checks a bundle that [`crate::read_bundle`] accepted.
pub fn check_bundle(bundle: &Bundle, policy: &HostPolicy) -> Result<PccReport, PccError> {
    // Format 1 predates invariants: an entry of that name there is just an extra file.
    let invariants = bundle.extra.get(INVARIANTS_ENTRY).filter(|_| bundle.format_version >= 2).map(Vec::as_slice);
    check_with_invariants(&bundle.header, &bundle.manifest, &bundle.object, &bundle.certificate, invariants, policy)
}

/// Checks the parts of a bundle that carries no invariants (so no loops and no
/// abstraction-carrying memory-safety check); see the module documentation for the rules.
pub fn check(
    header: &Header,
    manifest: &Manifest,
    object: &[u8],
    certificate: &[u8],
    policy: &HostPolicy,
) -> Result<PccReport, PccError> {
    check_with_invariants(header, manifest, object, certificate, None, policy)
}

/// Checks the parts of a bundle, with the bytes of its `invariants.json` entry if it has one.
pub fn check_with_invariants(
    header: &Header,
    manifest: &Manifest,
    object: &[u8],
    certificate: &[u8],
    invariants: Option<&[u8]>,
    policy: &HostPolicy,
) -> Result<PccReport, PccError> {
    let certificate = parse_certificate(certificate)?;
    let invariants = invariants.map(parse_invariants).transpose()?;
    check_hashes(header, object, &certificate, policy)?;
    let parsed = ParsedObject::parse(object)?;
    check_manifest_section(&parsed, manifest)?;
    if (certificate.budget_percent - manifest.budget_percent).abs() > 1e-9 {
        return Err(refuse(
            Rule::Consistency,
            format!(
                "the certificate proves a {} % budget, the manifest declares {} %",
                certificate.budget_percent, manifest.budget_percent
            ),
        ));
    }
    if let Some(extra) = parsed.programs.keys().find(|name| !manifest.probes.iter().any(|p| &p.program == *name)) {
        return Err(refuse(
            Rule::Consistency,
            format!("the object has a program {extra} that the manifest does not list"),
        ));
    }
    if let Some(unknown) =
        invariants.as_ref().and_then(|file| file.programs.keys().find(|name| !parsed.programs.contains_key(*name)))
    {
        return Err(refuse(
            Rule::Invariants,
            format!("{INVARIANTS_ENTRY} annotates {unknown}, which is not in the object"),
        ));
    }
    let mut probes = Vec::with_capacity(manifest.probes.len());
    for probe in &manifest.probes {
        let name = &probe.program;
        let program = parsed
            .programs
            .get(name)
            .ok_or_else(|| refuse(Rule::Consistency, format!("program {name} of the manifest is not in the object")))?;
        let kind = ProgramKind::of_attach(&probe.attach);
        if program.kind != kind {
            return Err(refuse(
                Rule::Consistency,
                format!("program {name} is a {} program but attaches to {}", program.kind.name(), probe.attach),
            ));
        }
        let certified = certificate
            .probes
            .iter()
            .find(|c| &c.program == name)
            .ok_or_else(|| refuse(Rule::Certificate, format!("the certificate has no entry for program {name}")))?;
        if !certified.accepted {
            return Err(refuse(Rule::Certificate, format!("the certificate does not accept program {name}")));
        }
        if certified.rate_per_sec != probe.rate_per_sec {
            return Err(refuse(
                Rule::Consistency,
                format!(
                    "program {name}: the certificate proves rate {:?}/s, the manifest declares {:?}/s",
                    certified.rate_per_sec, probe.rate_per_sec
                ),
            ));
        }
        let certified_bound_ns = certified
            .cost
            .as_ref()
            .map(|cost| cost.bound_ns)
            .filter(|bound| bound.is_finite() && *bound >= 0.0)
            .ok_or_else(|| {
                refuse(Rule::Certificate, format!("the certificate has no cost bound for program {name}"))
            })?;
        // `begin`/`end` run once per load: one bounded event, no rate (as the verifier has it).
        let rate = match (probe.rate_per_sec, probe.attach.runs_once()) {
            (None, false) => return Err(refuse(Rule::Consistency, format!("program {name} declares no event rate"))),
            (Some(rate), true) => {
                return Err(refuse(
                    Rule::Consistency,
                    format!("program {name} runs once ({}) but declares a rate of {rate}/s", probe.attach),
                ))
            }
            (rate, _) => rate,
        };
        let code = decode(name, &program.code)?;
        check_instructions(name, kind, &code)?;
        let stated = invariants.as_ref().and_then(|file| file.programs.get(name));
        let graph = control_flow(name, &code, stated.is_some())?;
        let prices = Prices::new(policy.profile, kind);
        let trigger_ps = prices.trigger();
        // Priced with the stated trip counts first (an honest bundle's cost refusal names the
        // cost), then the invariants and those counts are checked against the code.
        let stated_loops = stated.map(|s| s.loops.as_slice()).unwrap_or(&[]);
        let priced = |graph: &ControlFlow| {
            if graph.has_back_edges {
                worst_path_with_loops(name, &code, graph, &prices, &program.map_types, stated_loops)
            } else {
                Ok(worst_path(&code, graph, &prices, &program.map_types))
            }
        };
        let path_ps = priced(&graph)?;
        let mut report = ProbeReport {
            program: name.clone(),
            instructions: code.iter().filter(|i| !i.is_second_slot).count(),
            helper_calls: helper_calls(&code),
            bytecode_bound_ns: nanos(trigger_ps + path_ps),
            certified_bound_ns,
            allowed_ns: rate
                .map(|rate| manifest.budget_percent / 100.0 * f64::from(policy.cpus) * 1e9 / (rate.max(1) as f64)),
            rate_per_sec: rate,
            trigger_ns: nanos(trigger_ps),
        };
        match (check_cost(&report), stated) {
            (result, None) => result?,
            (Ok(()), Some(stated)) => {
                check_abstraction(name, kind, &code, program, &parsed.maps, stated)?;
            }
            (Err(over), Some(stated)) => {
                // The heaviest path may run through a branch the invariants prove is never
                // taken (one the verifier pruned from the certified bound): priced again
                // without the edges they rule out. Invariants that do not check keep the
                // cost refusal.
                let Ok(dead_edges) = check_abstraction(name, kind, &code, program, &parsed.maps, stated) else {
                    return Err(over);
                };
                report.bytecode_bound_ns = nanos(trigger_ps + priced(&graph.without(&dead_edges))?);
                check_cost(&report)?;
            }
        }
        probes.push(report);
    }
    Ok(PccReport { probes })
}

/// The cost rule. The certificate's bound is over IR instructions; the bytecode has more of
/// them (address set-up for every helper argument, moves out of `r0`, spills), so the bytecode
/// bound is normally somewhat above the certified one and a strict `bytecode ≤ certified`
/// would refuse honest bundles. What must hold for the overhead guarantee is that the real
/// code, priced as the host prices it, fits the budget at the declared rate on this host:
/// `bytecode_bound ≤ budget% × cpus × 1 s / rate` — that is the hard rule (none for `begin`/
/// `end`, which run once and have no rate). On top of it the
/// bytecode bound may exceed the certified bound by at most [`COST_TOLERANCE`] (so a
/// certificate that describes other, cheaper code is refused even when the budget has room).
pub fn check_cost(report: &ProbeReport) -> Result<(), PccError> {
    let name = &report.program;
    if let (Some(allowed_ns), Some(rate)) = (report.allowed_ns, report.rate_per_sec) {
        if report.bytecode_bound_ns > allowed_ns {
            return Err(refuse(
                Rule::Cost,
                format!(
                    "program {name}: the bytecode costs up to {:.1} ns per event on this host, over the {allowed_ns:.1} \
                     ns the budget allows at {rate}/s",
                    report.bytecode_bound_ns
                ),
            ));
        }
    }
    let ceiling = report.certified_bound_ns * (1.0 + COST_TOLERANCE);
    if report.bytecode_bound_ns > ceiling {
        return Err(refuse(
            Rule::Cost,
            format!(
                "program {name}: the bytecode costs up to {:.1} ns per event, more than the certified {:.1} ns \
                 + {:.0} % tolerance: the certificate does not describe this code",
                report.bytecode_bound_ns,
                report.certified_bound_ns,
                COST_TOLERANCE * 100.0
            ),
        ));
    }
    Ok(())
}

/// The fields of the certificate (docs/certificate.md) this check uses; others are ignored.
#[derive(Debug, Deserialize)]
struct Certificate {
    version: u64,
    accepted: bool,
    hashes: CertificateHashes,
    cost_profile: CertificateProfile,
    budget_percent: f64,
    probes: Vec<CertificateProbe>,
}

#[derive(Debug, Deserialize)]
struct CertificateHashes {
    source: String,
    bytecode: String,
}

#[derive(Debug, Deserialize)]
struct CertificateProfile {
    hash: String,
}

#[derive(Debug, Deserialize)]
struct CertificateProbe {
    program: String,
    accepted: bool,
    rate_per_sec: Option<u64>,
    cost: Option<CertificateCost>,
}

#[derive(Debug, Deserialize)]
struct CertificateCost {
    bound_ns: f64,
}

fn parse_certificate(bytes: &[u8]) -> Result<Certificate, PccError> {
    let certificate: Certificate = serde_json::from_slice(bytes)
        .map_err(|error| refuse(Rule::Certificate, format!("the certificate is not readable: {error}")))?;
    if certificate.version != CERTIFICATE_VERSION {
        return Err(refuse(
            Rule::Certificate,
            format!("certificate version {} is not supported (expected {CERTIFICATE_VERSION})", certificate.version),
        ));
    }
    if !certificate.accepted {
        return Err(refuse(Rule::Certificate, "the certificate does not accept the program"));
    }
    Ok(certificate)
}

fn check_hashes(
    header: &Header,
    object: &[u8],
    certificate: &Certificate,
    policy: &HostPolicy,
) -> Result<(), PccError> {
    let object_hash = format!("sha256:{}", sha256_hex(object));
    if certificate.hashes.bytecode != object_hash {
        return Err(refuse(
            Rule::Hash,
            format!("the certificate is for bytecode {}, the object is {object_hash}", certificate.hashes.bytecode),
        ));
    }
    let source_hash = format!("sha256:{}", header.source_hash);
    if certificate.hashes.source != source_hash {
        return Err(refuse(
            Rule::Hash,
            format!("the certificate is for source {}, the bundle says {source_hash}", certificate.hashes.source),
        ));
    }
    if certificate.cost_profile.hash != header.cost_profile_hash {
        return Err(refuse(
            Rule::Hash,
            format!(
                "the certificate was computed with cost profile {}, the bundle header says {}",
                certificate.cost_profile.hash, header.cost_profile_hash
            ),
        ));
    }
    let host_hash = policy.profile.hash();
    if policy.require_profile_match && certificate.cost_profile.hash != host_hash {
        return Err(refuse(
            Rule::Profile,
            format!(
                "the certificate was computed with cost profile {}, this host uses {host_hash}",
                certificate.cost_profile.hash
            ),
        ));
    }
    Ok(())
}

fn parse_invariants(bytes: &[u8]) -> Result<InvariantsFile, PccError> {
    let file: InvariantsFile = serde_json::from_slice(bytes)
        .map_err(|error| refuse(Rule::Invariants, format!("{INVARIANTS_ENTRY} is not readable: {error}")))?;
    if file.format != INVARIANTS_FORMAT || file.version != INVARIANTS_VERSION {
        return Err(refuse(
            Rule::Invariants,
            format!(
                "{INVARIANTS_ENTRY} is {} version {} (this build reads {INVARIANTS_FORMAT} version {INVARIANTS_VERSION})",
                file.format, file.version
            ),
        ));
    }
    Ok(file)
}

/// The abstraction-carrying-code check of one program (`acc::check`): its stated invariants are
/// consistent with its bytecode, every memory access and division is safe under them, and every
/// loop's stated trip count is at least what the code justifies.
/// Checks a program's stated invariants against its code; returns the edges they rule out.
fn check_abstraction(
    name: &str,
    kind: ProgramKind,
    code: &[Insn],
    program: &ProgramBytes,
    maps: &ObjectMaps,
    stated: &ProgramInvariants,
) -> Result<BTreeSet<(usize, usize)>, PccError> {
    let wrap = |error: AccError| refuse(Rule::Invariants, format!("program {name}: {error}"));
    let invariants = Invariants::decode(stated, maps).map_err(wrap)?;
    let analysed = acc::Program::new(kind, code, &program.map_refs, maps);
    let (_, dead_edges) = acc::check_with_dead_edges(&analysed, &invariants).map_err(wrap)?;
    Ok(dead_edges)
}

/// Only the abstraction-carrying-code part of the check, for every program of `object` that
/// `invariants` annotates: the invariants are consistent with the code, prove its memory
/// accesses safe, and bound its loops. Returns each annotated program's loop bounds.
pub fn check_invariants(object: &[u8], invariants: &[u8]) -> Result<BTreeMap<String, Vec<LoopBound>>, PccError> {
    let file = parse_invariants(invariants)?;
    let parsed = ParsedObject::parse(object)?;
    let mut bounds = BTreeMap::new();
    for (name, stated) in &file.programs {
        let program = parsed.programs.get(name).ok_or_else(|| {
            refuse(Rule::Invariants, format!("{INVARIANTS_ENTRY} annotates {name}, which is not in the object"))
        })?;
        let code = decode(name, &program.code)?;
        check_instructions(name, program.kind, &code)?;
        control_flow(name, &code, true)?;
        let wrap = |error: AccError| refuse(Rule::Invariants, format!("program {name}: {error}"));
        let invariants = Invariants::decode(stated, &parsed.maps).map_err(wrap)?;
        let analysed = acc::Program::new(program.kind, &code, &program.map_refs, &parsed.maps);
        bounds.insert(name.clone(), acc::check(&analysed, &invariants).map_err(wrap)?);
    }
    Ok(bounds)
}

/// A program `produce_invariants` could not annotate, and why.
pub type SkippedProgram = (String, String);

/// What `ppisc` ships as `invariants.json`: the abstract interpretation of every program of
/// `object`, run to a fixpoint on the final bytecode. A program the analysis cannot prove safe
/// (or whose loop it cannot bound) is left out and listed in the second result with why; the
/// loader then applies the rules for a bundle without invariants to it (no loops).
pub fn produce_invariants(object: &[u8]) -> Result<(Vec<u8>, Vec<SkippedProgram>), PccError> {
    let parsed = ParsedObject::parse(object)?;
    let mut programs = BTreeMap::new();
    let mut skipped = Vec::new();
    for (name, program) in &parsed.programs {
        let code = decode(name, &program.code)?;
        if let Err(error) =
            check_instructions(name, program.kind, &code).and_then(|()| control_flow(name, &code, true).map(|_| ()))
        {
            skipped.push((name.clone(), error.message));
            continue;
        }
        let analysed = acc::Program::new(program.kind, &code, &program.map_refs, &parsed.maps);
        match acc::analyse(&analysed) {
            Ok(invariants) => {
                programs.insert(name.clone(), invariants.encode(&parsed.maps));
            }
            Err(error) => skipped.push((name.clone(), error.to_string())),
        }
    }
    let file = InvariantsFile { format: INVARIANTS_FORMAT.into(), version: INVARIANTS_VERSION, programs };
    let json = serde_json::to_vec(&file).map_err(|error| refuse(Rule::Invariants, error.to_string()))?;
    Ok((json, skipped))
}

fn check_manifest_section(parsed: &ParsedObject, manifest: &Manifest) -> Result<(), PccError> {
    let text = parsed
        .manifest
        .as_deref()
        .ok_or_else(|| refuse(Rule::Consistency, format!("the object has no {MANIFEST_SECTION} section")))?;
    let embedded = Manifest::from_json(text)
        .map_err(|error| refuse(Rule::Consistency, format!("the object's {MANIFEST_SECTION} section: {error}")))?;
    if &embedded != manifest {
        return Err(refuse(Rule::Consistency, format!("the object's {MANIFEST_SECTION} differs from manifest.json")));
    }
    Ok(())
}

/// The program types ppis emits, by ELF section prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramKind {
    Tracepoint,
    Uprobe,
    Uretprobe,
    /// `raw_tracepoint/` sections: raw tracepoints, and `begin`/`end` (run once).
    RawTracepoint,
    /// `perf_event/` sections: `profile` and `interval`.
    PerfEvent,
}

impl ProgramKind {
    fn of_section(section: &str) -> Option<ProgramKind> {
        match section.split('/').next()? {
            "tracepoint" => Some(ProgramKind::Tracepoint),
            "uprobe" => Some(ProgramKind::Uprobe),
            "uretprobe" => Some(ProgramKind::Uretprobe),
            "raw_tracepoint" => Some(ProgramKind::RawTracepoint),
            "perf_event" => Some(ProgramKind::PerfEvent),
            _ => None,
        }
    }

    fn of_attach(attach: &Attach) -> ProgramKind {
        match attach {
            Attach::Tracepoint { .. } => ProgramKind::Tracepoint,
            Attach::Uprobe { .. } | Attach::Usdt { .. } => ProgramKind::Uprobe,
            Attach::Uretprobe { .. } => ProgramKind::Uretprobe,
            Attach::RawTracepoint { .. } | Attach::Begin | Attach::End => ProgramKind::RawTracepoint,
            Attach::Profile { .. } | Attach::Interval { .. } => ProgramKind::PerfEvent,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            ProgramKind::Tracepoint => "tracepoint",
            ProgramKind::Uprobe => "uprobe",
            ProgramKind::Uretprobe => "uretprobe",
            ProgramKind::RawTracepoint => "raw_tracepoint",
            ProgramKind::PerfEvent => "perf_event",
        }
    }

    /// Bytes of the context a program of this type may read: `struct pt_regs` for uprobes
    /// (x86-64: 21 registers), the largest tracepoint record the kernel hands a BPF program.
    pub fn context_bytes(self) -> u32 {
        match self {
            ProgramKind::Tracepoint => TRACEPOINT_CONTEXT_BYTES,
            ProgramKind::Uprobe | ProgramKind::Uretprobe => PT_REGS_BYTES,
            // `struct bpf_raw_tracepoint_args`: at most 12 u64 arguments.
            ProgramKind::RawTracepoint => 12 * 8,
            // `struct bpf_perf_event_data`: pt_regs, sample_period, addr.
            ProgramKind::PerfEvent => PT_REGS_BYTES + 16,
        }
    }

    /// Kernel helper ids a program of this type may call: the ones ppis emits. All three
    /// types share the list; none may write user memory, send signals or tail-call.
    pub fn allowed_helpers(self) -> &'static [i32] {
        &[
            helper::MAP_LOOKUP_ELEM,
            helper::MAP_UPDATE_ELEM,
            helper::MAP_DELETE_ELEM,
            helper::KTIME_GET_NS,
            helper::GET_SMP_PROCESSOR_ID,
            helper::GET_CURRENT_PID_TGID,
            helper::GET_CURRENT_UID_GID,
            helper::GET_CURRENT_COMM,
            helper::PROBE_READ_USER_STR,
            helper::PROBE_READ_KERNEL_STR,
            helper::GET_STACKID,
            helper::RINGBUF_OUTPUT,
            helper::GET_CURRENT_CGROUP_ID,
            helper::PROBE_READ_USER,
            helper::PROBE_READ_KERNEL,
        ]
    }
}

/// Kernel helper ids (`enum bpf_func_id`), shared with the code generator through `ppis-manifest`.
pub use ppis_manifest::helper_ids as helper;

/// `sizeof(struct pt_regs)` on x86-64, the context of uprobe programs.
const PT_REGS_BYTES: u32 = 21 * 8;
/// A tracepoint record's size is the event's (tracefs `format`), at most a page: the kernel
/// verifier still checks the exact size on load.
const TRACEPOINT_CONTEXT_BYTES: u32 = 4096;

/// The most bytes a string read can copy: its destination is on the 512-byte stack.
const MAX_STRING_READ_BYTES: u32 = 512;

/// `bpf_map_type` values of the maps ppis creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MapType {
    Hash,
    Array,
    PerCpuHash,
    PerCpuArray,
    /// `BPF_MAP_TYPE_STACK_TRACE`, behind `ustack`/`kstack` keys.
    StackTrace,
    /// `BPF_MAP_TYPE_RINGBUF`, where `emit`/`print` records go.
    RingBuf,
    /// `BPF_MAP_TYPE_LRU_HASH` (`lru_hash`).
    LruHash,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH` (keyed aggregations declared `lru`).
    LruPerCpuHash,
}

impl MapType {
    fn from_id(id: u32) -> Option<MapType> {
        match id {
            1 => Some(MapType::Hash),
            2 => Some(MapType::Array),
            5 => Some(MapType::PerCpuHash),
            6 => Some(MapType::PerCpuArray),
            7 => Some(MapType::StackTrace),
            9 => Some(MapType::LruHash),
            10 => Some(MapType::LruPerCpuHash),
            27 => Some(MapType::RingBuf),
            _ => None,
        }
    }
}

/// One program's code and the map each `ld_imm64` slot refers to.
struct ProgramBytes {
    kind: ProgramKind,
    code: Vec<u8>,
    /// By instruction slot index: the type of the map an `ld_imm64` there is relocated to.
    map_types: BTreeMap<usize, MapType>,
    /// By instruction slot index: the index in [`ParsedObject::maps`] of that map.
    map_refs: BTreeMap<usize, u16>,
}

struct ParsedObject {
    programs: BTreeMap<String, ProgramBytes>,
    manifest: Option<String>,
    /// Every map's name and sizes, for the abstract interpretation.
    maps: crate::acc::ObjectMaps,
}

impl ParsedObject {
    fn parse(bytes: &[u8]) -> Result<ParsedObject, PccError> {
        let bad = |what: String| refuse(Rule::Object, format!("the object is malformed: {what}"));
        let file = object::File::parse(bytes).map_err(|error| bad(error.to_string()))?;
        if file.architecture() != object::Architecture::Bpf {
            return Err(bad(format!("architecture {:?} is not eBPF", file.architecture())));
        }
        let manifest = match file.section_by_name(MANIFEST_SECTION) {
            Some(section) => {
                let data = section.data().map_err(|error| bad(error.to_string()))?;
                Some(String::from_utf8(data.to_vec()).map_err(|_| bad(format!("{MANIFEST_SECTION} is not UTF-8")))?)
            }
            None => None,
        };
        // Map definitions: symbols of the legacy `maps` section, `u32` type first.
        let mut map_types_by_symbol = BTreeMap::new();
        let mut map_defs_by_symbol = BTreeMap::new();
        if let Some(maps) = file.section_by_name("maps") {
            let data = maps.data().map_err(|error| bad(error.to_string()))?;
            for symbol in file.symbols().filter(|s| s.section_index() == Some(maps.index())) {
                let start = usize::try_from(symbol.address()).map_err(|_| bad("map symbol offset".into()))?;
                let id = data
                    .get(start..start.saturating_add(4))
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| {
                        bad(format!("map {} lies outside the maps section", symbol.name().unwrap_or("?")))
                    })?;
                let map_type = MapType::from_id(id)
                    .ok_or_else(|| refuse(Rule::Instruction, format!("map type {id} is not one ppis creates")))?;
                map_types_by_symbol.insert(symbol.index().0, map_type);
                let field = |at: usize| {
                    data.get(start + at..start + at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                };
                let name = symbol.name().map_err(|error| bad(error.to_string()))?.to_string();
                let (Some(key_size), Some(value_size)) = (field(4), field(8)) else {
                    return Err(bad(format!("map {name} lies outside the maps section")));
                };
                map_defs_by_symbol.insert(symbol.index().0, crate::acc::MapDef { name, key_size, value_size });
            }
        }
        let mut defs: Vec<crate::acc::MapDef> = map_defs_by_symbol.values().cloned().collect();
        defs.sort_by(|a, b| a.name.cmp(&b.name));
        if defs.len() > usize::from(u16::MAX) {
            return Err(bad(format!("{} maps", defs.len())));
        }
        let maps = crate::acc::ObjectMaps { maps: defs };
        let map_index_of_symbol = |symbol: usize| {
            let def = map_defs_by_symbol.get(&symbol)?;
            maps.maps.iter().position(|m| m == def).and_then(|i| u16::try_from(i).ok())
        };
        let mut programs = BTreeMap::new();
        for symbol in file.symbols().filter(|s| s.kind() == object::SymbolKind::Text) {
            let SymbolSection::Section(index) = symbol.section() else { continue };
            let section = file.section_by_index(index).map_err(|error| bad(error.to_string()))?;
            let section_name = section.name().map_err(|error| bad(error.to_string()))?;
            let name = symbol.name().map_err(|error| bad(error.to_string()))?.to_string();
            let kind = ProgramKind::of_section(section_name).ok_or_else(|| {
                refuse(Rule::Object, format!("program {name} is in section {section_name}, not a probe section"))
            })?;
            let data = section.data().map_err(|error| bad(error.to_string()))?;
            let start = usize::try_from(symbol.address()).map_err(|_| bad(format!("program {name} offset")))?;
            let size = usize::try_from(symbol.size()).map_err(|_| bad(format!("program {name} size")))?;
            let code = data
                .get(start..start.saturating_add(size))
                .ok_or_else(|| bad(format!("program {name} lies outside its section")))?;
            if code.is_empty() || code.len() % INSN_BYTES != 0 {
                return Err(bad(format!("program {name} is {} bytes, not a whole number of instructions", code.len())));
            }
            let mut map_types = BTreeMap::new();
            let mut map_refs = BTreeMap::new();
            for (offset, relocation) in section.relocations() {
                let Some(offset) = usize::try_from(offset).ok().and_then(|o| o.checked_sub(start)) else { continue };
                if offset >= size {
                    continue;
                }
                let RelocationTarget::Symbol(target) = relocation.target() else {
                    return Err(bad(format!("program {name} has a relocation that is not against a symbol")));
                };
                let map_type = map_types_by_symbol.get(&target.0).copied().ok_or_else(|| {
                    refuse(Rule::Instruction, format!("program {name} refers to a symbol that is not a map"))
                })?;
                map_types.insert(offset / INSN_BYTES, map_type);
                if let Some(index) = map_index_of_symbol(target.0) {
                    map_refs.insert(offset / INSN_BYTES, index);
                }
            }
            if programs.insert(name.clone(), ProgramBytes { kind, code: code.to_vec(), map_types, map_refs }).is_some()
            {
                return Err(bad(format!("program {name} is defined twice")));
            }
        }
        Ok(ParsedObject { programs, manifest, maps })
    }
}

/// One decoded instruction slot.
#[derive(Clone, Copy, Debug)]
pub struct Insn {
    pub opcode: u8,
    pub dst: u8,
    pub src: u8,
    pub offset: i16,
    pub imm: i32,
    /// The second half of an `ld_imm64`: data, not an instruction.
    pub is_second_slot: bool,
}

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;
const MODE_MEM: u8 = 0x60;
pub(crate) const LD_IMM64: u8 = 0x18;
const JMP_JA: u8 = 0x00;
const JMP_CALL: u8 = 0x80;
const JMP_EXIT: u8 = 0x90;
const FRAME_POINTER: u8 = 10;

impl Insn {
    pub(crate) fn class(&self) -> u8 {
        self.opcode & 0x07
    }
    pub(crate) fn jump_op(&self) -> u8 {
        self.opcode & 0xf0
    }
    pub(crate) fn is_jump_class(&self) -> bool {
        matches!(self.class(), CLASS_JMP | CLASS_JMP32)
    }
    pub(crate) fn is_call(&self) -> bool {
        self.class() == CLASS_JMP && self.jump_op() == JMP_CALL
    }
    pub(crate) fn is_exit(&self) -> bool {
        self.class() == CLASS_JMP && self.jump_op() == JMP_EXIT
    }
    /// Conditional jumps and `ja`: those with an offset target.
    pub(crate) fn jump_target(&self, index: usize) -> Option<isize> {
        (self.is_jump_class() && !self.is_call() && !self.is_exit()).then(|| index as isize + 1 + self.offset as isize)
    }
    /// Whether this instruction writes register `reg` (calls clobber r0-r5).
    pub(crate) fn writes(&self, reg: u8) -> bool {
        match self.class() {
            CLASS_ALU | CLASS_ALU64 | CLASS_LDX => self.dst == reg,
            CLASS_LD => self.opcode == LD_IMM64 && self.dst == reg,
            CLASS_JMP if self.is_call() => reg <= 5,
            _ => false,
        }
    }
}

pub(crate) fn decode(name: &str, code: &[u8]) -> Result<Vec<Insn>, PccError> {
    let mut insns: Vec<Insn> = code
        .chunks_exact(INSN_BYTES)
        .map(|b| Insn {
            opcode: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            offset: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            is_second_slot: false,
        })
        .collect();
    let mut index = 0;
    while index < insns.len() {
        if insns[index].opcode == LD_IMM64 {
            let Some(second) = insns.get_mut(index + 1) else {
                return Err(refuse(
                    Rule::Object,
                    format!("program {name}: ld_imm64 at insn {index} has no second half"),
                ));
            };
            if second.opcode != 0 || second.dst != 0 || second.src != 0 || second.offset != 0 {
                return Err(refuse(Rule::Object, format!("program {name}: ld_imm64 at insn {index} is malformed")));
            }
            second.is_second_slot = true;
            index += 2;
        } else {
            index += 1;
        }
    }
    Ok(insns)
}

/// Only the instruction forms ppis's code generator emits.
fn check_instructions(name: &str, kind: ProgramKind, code: &[Insn]) -> Result<(), PccError> {
    for (index, insn) in code.iter().enumerate().filter(|(_, i)| !i.is_second_slot) {
        let unexpected = |what: &str| {
            refuse(
                Rule::Instruction,
                format!("program {name}: insn {index} ({what}, opcode {:#04x}) is not one ppis emits", insn.opcode),
            )
        };
        if insn.dst > 10 || insn.src > 10 {
            return Err(unexpected("bad register"));
        }
        match insn.class() {
            CLASS_ALU | CLASS_ALU64 => {
                // `neg` (0x80) and the byte swaps (0xd0) are the only ops above `arsh` (0xc0).
                if insn.dst == FRAME_POINTER || insn.opcode & 0xf0 > 0xd0 {
                    return Err(unexpected("ALU"));
                }
            }
            CLASS_LD if insn.opcode == LD_IMM64 => {
                // In an object map references are relocations with `src = 0`; pseudo sources
                // (map fds, BTF ids, functions) are filled in by the loader, never shipped.
                if insn.src != 0 || insn.dst == FRAME_POINTER {
                    return Err(unexpected("ld_imm64 with a pseudo source"));
                }
            }
            CLASS_LD => return Err(unexpected("legacy packet load")),
            CLASS_LDX | CLASS_ST | CLASS_STX => {
                if insn.opcode & 0xe0 != MODE_MEM {
                    return Err(unexpected("atomic or sign-extending memory access"));
                }
                if insn.class() == CLASS_LDX && insn.dst == FRAME_POINTER {
                    return Err(unexpected("load into the frame pointer"));
                }
            }
            CLASS_JMP | CLASS_JMP32 => {
                if insn.is_call() {
                    if insn.class() != CLASS_JMP || insn.src != 0 {
                        return Err(unexpected("call of a function or kfunc, not a helper"));
                    }
                    if !kind.allowed_helpers().contains(&insn.imm) {
                        return Err(refuse(
                            Rule::Helper,
                            format!(
                                "program {name}: insn {index} calls helper #{}, which {} programs may not call",
                                insn.imm,
                                kind.name()
                            ),
                        ));
                    }
                } else if insn.is_exit() {
                    if insn.class() != CLASS_JMP {
                        return Err(unexpected("exit"));
                    }
                } else if insn.jump_op() > 0xd0 || (insn.class() == CLASS_JMP32 && insn.jump_op() == JMP_JA) {
                    return Err(unexpected("jump"));
                }
            }
            _ => return Err(unexpected("unknown class")),
        }
    }
    Ok(())
}

/// Successors of every instruction slot (second slots have none and are never reached).
struct ControlFlow {
    successors: Vec<Vec<usize>>,
    /// Slots some jump lands on: straight-line reasoning stops there.
    jump_targets: Vec<bool>,
    /// Some jump goes backwards (only allowed when the program carries invariants).
    has_back_edges: bool,
}

impl ControlFlow {
    /// The same graph without `dead` edges (`(from, to)`); everything else is kept, so an edge
    /// described differently here than in the invariants check is priced, never dropped.
    fn without(&self, dead: &BTreeSet<(usize, usize)>) -> ControlFlow {
        let successors = self
            .successors
            .iter()
            .enumerate()
            .map(|(from, targets)| targets.iter().copied().filter(|to| !dead.contains(&(from, *to))).collect())
            .collect();
        ControlFlow { successors, jump_targets: self.jump_targets.clone(), has_back_edges: self.has_back_edges }
    }
}

/// Builds the CFG and checks it: every jump lands on an instruction of the program, strictly
/// after itself (so there is no cycle: the termination the certificate claims holds for the
/// bytecode too), and no path runs past the last instruction.
fn control_flow(name: &str, code: &[Insn], loops_allowed: bool) -> Result<ControlFlow, PccError> {
    let n = code.len();
    let mut successors = vec![Vec::new(); n];
    let mut jump_targets = vec![false; n];
    for (index, insn) in code.iter().enumerate().filter(|(_, i)| !i.is_second_slot) {
        let next = index + if insn.opcode == LD_IMM64 { 2 } else { 1 };
        let unconditional = insn.is_jump_class() && insn.jump_op() == JMP_JA;
        if insn.is_exit() {
            continue;
        }
        if let Some(target) = insn.jump_target(index) {
            if target <= index as isize && !loops_allowed {
                return Err(refuse(
                    Rule::ControlFlow,
                    format!("program {name}: insn {index} jumps back to insn {target}: the bytecode has a loop"),
                ));
            }
            let target = target as usize;
            if target >= n || code[target].is_second_slot {
                return Err(refuse(
                    Rule::ControlFlow,
                    format!(
                        "program {name}: insn {index} jumps to {target}, which is not an instruction of the program"
                    ),
                ));
            }
            successors[index].push(target);
            jump_targets[target] = true;
        }
        if !unconditional {
            if next >= n {
                return Err(refuse(
                    Rule::ControlFlow,
                    format!("program {name}: execution can run past the last instruction (insn {index})"),
                ));
            }
            successors[index].push(next);
        }
    }
    let has_back_edges = successors.iter().enumerate().any(|(index, succ)| succ.iter().any(|target| *target <= index));
    Ok(ControlFlow { successors, jump_targets, has_back_edges })
}

/// Host prices in integer picoseconds, like the verifier's, so sums are exact, for one
/// program: the trigger and the per-run cost depend on its kind.
struct Prices<'a> {
    profile: &'a CostProfile,
    kind: TriggerKind,
}

fn picos(ns: f64) -> u64 {
    if ns.is_finite() && ns > 0.0 {
        (ns * 1000.0).round() as u64
    } else {
        0
    }
}

fn nanos(ps: u64) -> f64 {
    ps as f64 / 1000.0
}

impl Prices<'_> {
    fn new(profile: &CostProfile, kind: ProgramKind) -> Prices<'_> {
        let kind = match kind {
            ProgramKind::Tracepoint => TriggerKind::Tracepoint,
            ProgramKind::Uprobe => TriggerKind::Uprobe,
            ProgramKind::Uretprobe => TriggerKind::Uretprobe,
            ProgramKind::RawTracepoint => TriggerKind::RawTracepoint,
            ProgramKind::PerfEvent => TriggerKind::PerfEvent,
        };
        Prices { profile, kind }
    }

    fn trigger(&self) -> u64 {
        picos(self.profile.trigger(self.kind))
    }

    /// One instruction, sound for every operand: a load or store not through the frame
    /// pointer may touch the context or a map value, so it is charged the dearer of those; a
    /// map helper whose map is not known from straight-line code is charged the dearest map.
    fn insn(&self, insn: &Insn, map: Option<MapType>, read_len: u32) -> u64 {
        let i = &self.profile.instructions;
        let h = &self.profile.helpers;
        match insn.class() {
            CLASS_ALU | CLASS_ALU64 | CLASS_LD => picos(i.alu),
            CLASS_LDX if insn.src == FRAME_POINTER => picos(i.load_stack),
            CLASS_LDX => picos(i.load_ctx.max(i.load_map_value)),
            CLASS_ST | CLASS_STX if insn.dst == FRAME_POINTER => picos(i.store_stack),
            CLASS_ST | CLASS_STX => picos(i.store_stack.max(i.store_map_value)),
            _ if insn.is_call() => {
                let by_map = |cost: &MapHelperCost| match map {
                    Some(MapType::Hash) => cost.hash,
                    Some(MapType::Array) => cost.array,
                    Some(MapType::PerCpuHash) => cost.percpu_hash,
                    Some(MapType::PerCpuArray) => cost.percpu_array,
                    // Map helpers never run on a stack map (only `get_stackid`, priced below).
                    Some(MapType::StackTrace) | None => cost.max(),
                    // Nor on a ring buffer (only `ringbuf_output`, priced below).
                    Some(MapType::RingBuf) => cost.max(),
                    Some(MapType::LruHash | MapType::LruPerCpuHash) => cost.lru_hash,
                };
                let helper_ns = match insn.imm {
                    helper::MAP_LOOKUP_ELEM => by_map(&h.map_lookup_elem),
                    helper::MAP_UPDATE_ELEM => by_map(&h.map_update_elem),
                    helper::MAP_DELETE_ELEM => by_map(&h.map_delete_elem),
                    helper::KTIME_GET_NS => h.ktime_get_ns,
                    helper::GET_SMP_PROCESSOR_ID => h.get_smp_processor_id,
                    helper::GET_CURRENT_PID_TGID => h.get_current_pid_tgid,
                    helper::GET_CURRENT_UID_GID => h.get_current_uid_gid,
                    helper::GET_CURRENT_COMM => h.get_current_comm,
                    helper::PROBE_READ_USER_STR => h.probe_read_user_str.cost(read_len),
                    helper::PROBE_READ_KERNEL_STR => h.probe_read_kernel_str.cost(read_len),
                    helper::GET_STACKID => h.get_stackid,
                    helper::GET_CURRENT_CGROUP_ID => h.get_current_cgroup_id,
                    helper::PROBE_READ_USER => h.probe_read_user.cost(read_len),
                    helper::PROBE_READ_KERNEL => h.probe_read_kernel.cost(read_len),
                    // `read_len` is the record size (r3) for this helper.
                    helper::RINGBUF_OUTPUT => h.ringbuf_output.cost(read_len),
                    // Unreachable after `check_instructions`; priced like the dearest helper.
                    _ => h.map_update_elem.max(),
                };
                picos(i.call) + picos(helper_ns)
            }
            // The exit also carries the per-run cost, as the verifier's `ret` does: every run
            // leaves through exactly one exit.
            _ if insn.is_exit() => picos(i.branch) + picos(self.profile.run(Some(self.kind))),
            // Jumps, branches and the exit, as the verifier prices IR terminators.
            _ => picos(i.branch),
        }
    }
}

/// The instruction that last wrote `reg` before `call` in the straight-line code leading to
/// it, or `None` if that is not certain (a jump lands in between, or the program start).
fn last_write(code: &[Insn], graph: &ControlFlow, call: usize, reg: u8) -> Option<usize> {
    let mut index = call;
    loop {
        if graph.jump_targets[index] || index == 0 {
            return None;
        }
        index -= 1;
        let insn = &code[index];
        if insn.is_second_slot {
            continue;
        }
        // Another path may reach `index + 1` only by a jump, which stopped the walk; a jump
        // instruction here only leaves, so the fall-through is this path.
        if insn.writes(reg) {
            return Some(index);
        }
    }
}

/// The map a map helper call operates on: set by `ld_imm64 r1, map` in straight-line code.
fn map_of_call(
    code: &[Insn],
    graph: &ControlFlow,
    map_types: &BTreeMap<usize, MapType>,
    call: usize,
) -> Option<MapType> {
    let index = last_write(code, graph, call, 1)?;
    (code[index].opcode == LD_IMM64).then(|| map_types.get(&index).copied()).flatten()
}

/// The size bound of a string read: `r2 = N` (`mov r2, imm`) in straight-line code, else the
/// largest possible destination. For `ringbuf_output`, the record size in r3 alike.
fn read_len_of_call(code: &[Insn], graph: &ControlFlow, call: usize) -> u32 {
    const MOV64_IMM: u8 = 0xb7;
    const MOV32_IMM: u8 = 0xb4;
    let length_register = if code[call].imm == helper::RINGBUF_OUTPUT { 3 } else { 2 };
    last_write(code, graph, call, length_register)
        .map(|index| code[index])
        .filter(|insn| matches!(insn.opcode, MOV64_IMM | MOV32_IMM))
        .and_then(|insn| u32::try_from(insn.imm).ok())
        .map_or(MAX_STRING_READ_BYTES, |len| len.min(MAX_STRING_READ_BYTES))
}

/// The heaviest path from instruction 0, in picoseconds. Jumps only go forward, so a
/// single reverse sweep is a topological order.
fn worst_path(code: &[Insn], graph: &ControlFlow, prices: &Prices, map_types: &BTreeMap<usize, MapType>) -> u64 {
    let mut best = vec![0u64; code.len()];
    for index in (0..code.len()).rev() {
        let insn = &code[index];
        if insn.is_second_slot {
            continue;
        }
        let map = insn.is_call().then(|| map_of_call(code, graph, map_types, index)).flatten();
        let read_len = if insn.is_call() { read_len_of_call(code, graph, index) } else { 0 };
        let tail = graph.successors[index].iter().map(|s| best[*s]).max().unwrap_or(0);
        best[index] = prices.insn(insn, map, read_len) + tail;
    }
    best.first().copied().unwrap_or(0)
}

/// The heaviest path when the code has loops, in picoseconds. Loops are collapsed innermost
/// first into their header: a loop whose back edge may be taken `N` times costs
/// `N × (heaviest path header → back edge) + (heaviest path header → a way out)`: `N` full
/// iterations, then the last, partial one, which leaves the loop (at its exit test, or an
/// `exit` or jump out of the body). The collapsed header then leads to every exit target, and
/// nested loops compose (the inner loop's total is one node of the outer loop's iteration). A
/// back edge without a stated bound is priced as never taken; the invariants check refuses it
/// afterwards unless it is dead.
fn worst_path_with_loops(
    name: &str,
    code: &[Insn],
    graph: &ControlFlow,
    prices: &Prices,
    map_types: &BTreeMap<usize, MapType>,
    loops: &[LoopBound],
) -> Result<u64, PccError> {
    let cycle = || {
        refuse(
            Rule::ControlFlow,
            format!("program {name}: the control flow has a cycle that is not a loop with one header"),
        )
    };
    let shape = acc::Shape::of(code);
    let n = code.len();
    let mut cost: Vec<u64> = (0..n)
        .map(|index| {
            let insn = &code[index];
            if insn.is_second_slot {
                return 0;
            }
            let map = insn.is_call().then(|| map_of_call(code, graph, map_types, index)).flatten();
            let read_len = if insn.is_call() { read_len_of_call(code, graph, index) } else { 0 };
            prices.insn(insn, map, read_len)
        })
        .collect();
    // Each instruction's representative: itself, or the header of the collapsed loop it is in.
    let mut rep: Vec<usize> = (0..n).collect();
    let mut edges: Vec<BTreeSet<usize>> = graph.successors.iter().map(|s| s.iter().copied().collect()).collect();
    let mut by_size: Vec<(BTreeSet<usize>, usize, usize)> =
        shape.back_edges.iter().map(|&(source, header)| (shape.natural_loop(source, header), source, header)).collect();
    by_size.sort_by_key(|(body, _, _)| body.len());
    for (body, source, header) in by_size {
        let trips = loops
            .iter()
            .find(|l| l.back_edge == source && l.header == header)
            .map_or(0, |l| l.max_trips.min(acc::MAX_TRIPS));
        let members: BTreeSet<usize> = body.iter().map(|pc| rep[*pc]).collect();
        let (head, tail) = (rep[header], rep[source]);
        if head != header {
            return Err(cycle());
        }
        // Heaviest paths from the header inside the loop, back edges to it cut.
        let inner: Vec<(usize, Vec<usize>)> = members
            .iter()
            .map(|u| (*u, edges[*u].iter().copied().filter(|t| *t != head && members.contains(t)).collect()))
            .collect();
        let inner: BTreeMap<usize, Vec<usize>> = inner.into_iter().collect();
        let inner_edges = |u: usize| inner[&u].clone();
        let mut indegree: BTreeMap<usize, usize> = members.iter().map(|m| (*m, 0)).collect();
        for u in &members {
            for t in inner_edges(*u) {
                *indegree.get_mut(&t).expect("member") += 1;
            }
        }
        let mut ready: Vec<usize> = indegree.iter().filter(|(_, d)| **d == 0).map(|(m, _)| *m).collect();
        let mut order = Vec::with_capacity(members.len());
        while let Some(u) = ready.pop() {
            order.push(u);
            for t in inner_edges(u) {
                let d = indegree.get_mut(&t).expect("member");
                *d -= 1;
                if *d == 0 {
                    ready.push(t);
                }
            }
        }
        if order.len() != members.len() {
            return Err(cycle());
        }
        let mut from_head: BTreeMap<usize, u64> = BTreeMap::new();
        from_head.insert(head, cost[head]);
        for u in &order {
            let Some(&at) = from_head.get(u) else { continue };
            for t in inner_edges(*u) {
                let through = at.saturating_add(cost[t]);
                let entry = from_head.entry(t).or_insert(0);
                *entry = (*entry).max(through);
            }
        }
        let iteration = from_head.get(&tail).copied().unwrap_or(0);
        let exits: BTreeSet<usize> =
            members.iter().flat_map(|u| edges[*u].iter().copied()).filter(|t| !members.contains(t)).collect();
        let leaving = members
            .iter()
            .filter(|u| edges[**u].is_empty() || edges[**u].iter().any(|t| !members.contains(t)))
            .filter_map(|u| from_head.get(u).copied())
            .max()
            .unwrap_or(0);
        cost[head] = iteration.saturating_mul(trips).saturating_add(leaving);
        for representative in rep.iter_mut() {
            if members.contains(representative) {
                *representative = head;
            }
        }
        for member in members.iter().filter(|m| **m != head) {
            edges[*member].clear();
            cost[*member] = 0;
        }
        edges[head] = exits;
        for succ in edges.iter_mut() {
            *succ = succ.iter().map(|t| rep[*t]).collect();
        }
    }
    // The remaining graph is a DAG from instruction 0.
    let mut indegree = vec![0usize; n];
    for succ in &edges {
        for t in succ {
            indegree[*t] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|i| indegree[*i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(u) = ready.pop() {
        order.push(u);
        for t in &edges[u] {
            indegree[*t] -= 1;
            if indegree[*t] == 0 {
                ready.push(*t);
            }
        }
    }
    if order.len() != n {
        return Err(cycle());
    }
    let mut best = vec![0u64; n];
    for &u in order.iter().rev() {
        let tail = edges[u].iter().map(|t| best[*t]).max().unwrap_or(0);
        best[u] = cost[u].saturating_add(tail);
    }
    Ok(best[rep[0]])
}

fn helper_calls(code: &[Insn]) -> BTreeMap<i32, u32> {
    let mut calls = BTreeMap::new();
    for insn in code.iter().filter(|i| !i.is_second_slot && i.is_call()) {
        *calls.entry(insn.imm).or_insert(0) += 1;
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::write::{Object as WriteObject, Relocation, Symbol, SymbolSection as WriteSection};
    use object::{
        Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
    };
    use ppis_manifest::{ProbeInfo, MANIFEST_VERSION};

    fn insn(opcode: u8, dst: u8, src: u8, offset: i16, imm: i32) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = opcode;
        b[1] = dst | (src << 4);
        b[2..4].copy_from_slice(&offset.to_le_bytes());
        b[4..8].copy_from_slice(&imm.to_le_bytes());
        b
    }
    fn mov_imm(dst: u8, imm: i32) -> [u8; 8] {
        insn(0xb7, dst, 0, 0, imm)
    }
    fn call(id: i32) -> [u8; 8] {
        insn(0x85, 0, 0, 0, id)
    }
    fn exit() -> [u8; 8] {
        insn(0x95, 0, 0, 0, 0)
    }
    fn ja(offset: i16) -> [u8; 8] {
        insn(0x05, 0, 0, offset, 0)
    }

    /// `r1 = map[counts]; r2 = r10; r2 += -8; *(u64*)(r10-8) = 0; call lookup; r0 = 0; exit`.
    fn lookup_program() -> Vec<[u8; 8]> {
        vec![
            insn(0x7a, 10, 0, -8, 0),
            insn(LD_IMM64, 1, 0, 0, 0),
            [0; 8],
            insn(0xbf, 2, 10, 0, 0),
            insn(0x07, 2, 0, 0, -8),
            call(helper::MAP_LOOKUP_ELEM),
            mov_imm(0, 0),
            exit(),
        ]
    }

    fn manifest(rate: u64) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            budget_percent: 1.0,
            probes: vec![ProbeInfo {
                program: "probe0".into(),
                attach: Attach::Tracepoint { category: "syscalls".into(), name: "sys_enter_getpid".into() },
                rate_per_sec: Some(rate),
                line: 1,
                activation: None,
            }],
            maps: vec![],
            events: None,
        }
    }

    /// An object like `ppisc`'s: one array map, one tracepoint program with a relocation at
    /// its `ld_imm64` (slot 1).
    fn object(code: &[[u8; 8]], manifest: &Manifest) -> Vec<u8> {
        let mut obj = WriteObject::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
        let maps = obj.add_section(Vec::new(), b"maps".to_vec(), SectionKind::Data);
        let def: Vec<u8> = [2u32, 4, 8, 1, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let offset = obj.append_section_data(maps, &def, 4);
        let map = obj.add_symbol(Symbol {
            name: b"counts".to_vec(),
            value: offset,
            size: 20,
            kind: SymbolKind::Data,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: WriteSection::Section(maps),
            flags: SymbolFlags::None,
        });
        let kind = ProgramKind::of_attach(&manifest.probes[0].attach);
        let text = obj.add_section(Vec::new(), format!("{}/probe0", kind.name()).into_bytes(), SectionKind::Text);
        let bytes: Vec<u8> = code.iter().flatten().copied().collect();
        let start = obj.append_section_data(text, &bytes, 8);
        obj.add_symbol(Symbol {
            name: b"probe0".to_vec(),
            value: start,
            size: bytes.len() as u64,
            kind: SymbolKind::Text,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: WriteSection::Section(text),
            flags: SymbolFlags::None,
        });
        obj.add_relocation(
            text,
            Relocation {
                offset: start + 8,
                symbol: map,
                addend: 0,
                flags: RelocationFlags::Elf { r_type: object::elf::R_BPF_64_64 },
            },
        )
        .unwrap();
        let section = obj.add_section(Vec::new(), MANIFEST_SECTION.as_bytes().to_vec(), SectionKind::Other);
        obj.append_section_data(section, manifest.to_json().as_bytes(), 1);
        obj.write().unwrap()
    }

    fn header(profile: &CostProfile) -> Header {
        Header {
            name: "t".into(),
            compiler_version: "test".into(),
            cost_profile_hash: profile.hash(),
            source_hash: "ab".repeat(32),
            entries: vec![],
        }
    }

    fn certificate(object: &[u8], profile: &CostProfile, rate: impl Into<Option<u64>>, bound_ns: f64) -> Vec<u8> {
        let rate: Option<u64> = rate.into();
        serde_json::json!({
            "version": 1, "accepted": true, "budget_percent": 1.0, "cpus": 2,
            "hashes": {"source": format!("sha256:{}", "ab".repeat(32)), "ir": "sha256:00",
                       "bytecode": format!("sha256:{}", sha256_hex(object))},
            "cost_profile": {"hash": profile.hash(), "host": "", "measured_at": ""},
            "probes": [{"program": "probe0", "trigger": "tracepoint", "rate_per_sec": rate, "accepted": true,
                        "cost": {"bound_ns": bound_ns}}]
        })
        .to_string()
        .into_bytes()
    }

    /// Builds a bundle's parts around `code`, certifying `bound_ns`, and checks them.
    fn check_code(code: &[[u8; 8]], bound_ns: f64) -> Result<PccReport, PccError> {
        let profile = CostProfile::reference();
        let manifest = manifest(1000);
        let object = object(code, &manifest);
        let certificate = certificate(&object, &profile, 1000, bound_ns);
        let policy = HostPolicy { profile: &profile, cpus: 2, require_profile_match: true };
        check(&header(&profile), &manifest, &object, &certificate, &policy)
    }

    /// Like [`check_code`], with the invariants `ppisc` would produce for the object.
    fn check_code_with_invariants(code: &[[u8; 8]], bound_ns: f64) -> Result<PccReport, PccError> {
        let profile = CostProfile::reference();
        let manifest = manifest(1000);
        let object = object(code, &manifest);
        let (invariants, skipped) = produce_invariants(&object).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        let certificate = certificate(&object, &profile, 1000, bound_ns);
        let policy = HostPolicy { profile: &profile, cpus: 2, require_profile_match: true };
        check_with_invariants(&header(&profile), &manifest, &object, &certificate, Some(&invariants), &policy)
    }

    fn jump(opcode: u8, dst: u8, imm: i32, offset: i16) -> [u8; 8] {
        insn(opcode, dst, 0, offset, imm)
    }
    fn add_imm(dst: u8, imm: i32) -> [u8; 8] {
        insn(0x07, dst, 0, 0, imm)
    }
    const JGE_IMM: u8 = 0x35;

    /// The exit carries the per-run price of the program's kind: a perf event's own when the
    /// profile has one, the plain one elsewhere, as the verifier charges `ret`.
    #[test]
    fn the_exit_of_a_perf_event_program_pays_the_perf_event_run_price() {
        let mut profile = CostProfile::reference();
        profile.instructions.run = 40.0;
        profile.instructions.run_perf_event = Some(90.0);
        let code = decode("p", &exit()).unwrap();
        let branch = picos(profile.instructions.branch);
        let price = |kind| Prices::new(&profile, kind).insn(&code[0], None, 0);
        assert_eq!(price(ProgramKind::PerfEvent), branch + 90_000);
        for kind in [ProgramKind::Tracepoint, ProgramKind::Uprobe, ProgramKind::Uretprobe, ProgramKind::RawTracepoint] {
            assert_eq!(price(kind), branch + 40_000, "{kind:?}");
        }
        assert_eq!(Prices::new(&profile, ProgramKind::PerfEvent).trigger(), picos(profile.triggers.perf_event));
    }

    #[test]
    fn a_counted_loop_carries_its_trip_count_and_is_priced_per_trip() {
        let code = vec![
            mov_imm(6, 0),
            jump(JGE_IMM, 6, 4, 3), // 1: loop header, leaves to 5
            call(helper::KTIME_GET_NS),
            add_imm(6, 1),
            ja(-4), // 4: back to 1
            mov_imm(0, 0),
            exit(),
        ];
        let error = check_code(&code, 1e6).unwrap_err();
        assert!(error.message.contains("the bytecode has a loop"), "{error}");
        let report = check_code_with_invariants(&code, 1e6).unwrap();
        let p = CostProfile::reference();
        let (i, h) = (&p.instructions, &p.helpers);
        // r6 is 0..=4 at the header: 4 back edges, so 4 full iterations, then the exit test.
        let iteration = i.branch + i.call + h.ktime_get_ns + i.alu + i.branch;
        let expected = p.triggers.tracepoint + i.alu + 4.0 * iteration + i.branch + i.alu + i.branch;
        assert!((report.probes[0].bytecode_bound_ns - expected).abs() < 1e-6, "{report:?} vs {expected}");
    }

    #[test]
    fn nested_loops_multiply_their_trip_counts() {
        let code = vec![
            mov_imm(6, 0),
            jump(JGE_IMM, 6, 2, 6), // 1: outer header, leaves to 8
            mov_imm(7, 0),
            jump(JGE_IMM, 7, 3, 2), // 3: inner header, leaves to 6
            add_imm(7, 1),
            ja(-3), // 5: back to 3
            add_imm(6, 1),
            ja(-7), // 7: back to 1
            mov_imm(0, 0),
            exit(),
        ];
        let profile = CostProfile::reference();
        let manifest = manifest(1000);
        let object = object(&code, &manifest);
        let (invariants, _) = produce_invariants(&object).unwrap();
        let bounds = check_invariants(&object, &invariants).unwrap();
        assert_eq!(
            bounds["probe0"],
            vec![
                LoopBound { header: 3, back_edge: 5, max_trips: 3 },
                LoopBound { header: 1, back_edge: 7, max_trips: 2 }
            ]
        );
        let report = check_code_with_invariants(&code, 1e6).unwrap();
        let i = &profile.instructions;
        // The inner loop: 3 iterations and its exit test; the outer one: 2 iterations, each
        // with a whole inner loop, and its exit test.
        let inner = 3.0 * (i.branch + i.alu + i.branch) + i.branch;
        let outer = 2.0 * (i.branch + i.alu + inner + i.alu + i.branch) + i.branch;
        let expected = profile.triggers.tracepoint + i.alu + outer + i.alu + i.branch;
        assert!((report.probes[0].bytecode_bound_ns - expected).abs() < 1e-6, "{report:?} vs {expected}");
    }

    #[test]
    fn a_loop_without_a_counter_gets_no_invariants() {
        // `r6 = ktime; loop: if r6 >= 4 goto out; r6 = ktime; goto loop`: no monotone counter.
        let code = vec![
            call(helper::KTIME_GET_NS),
            insn(0xbf, 6, 0, 0, 0),
            jump(JGE_IMM, 6, 4, 3),
            call(helper::KTIME_GET_NS),
            insn(0xbf, 6, 0, 0, 0),
            ja(-4),
            mov_imm(0, 0),
            exit(),
        ];
        let (_, skipped) = produce_invariants(&object(&code, &manifest(1000))).unwrap();
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].1.contains("of the loop is a counter"), "{skipped:?}");
    }

    #[test]
    fn a_dereference_without_null_check_gets_no_invariants() {
        let mut code = lookup_program();
        code.insert(6, insn(0x79, 1, 0, 0, 0)); // r1 = *(u64 *)(r0 + 0), right after the lookup
        let (_, skipped) = produce_invariants(&object(&code, &manifest(1000))).unwrap();
        assert_eq!(
            skipped,
            vec![(
                "probe0".to_string(),
                "insn 6: dereferences a map value that may be null (no null check on this path)".to_string()
            )]
        );
    }

    #[test]
    fn a_division_needs_a_divisor_proven_non_zero() {
        // r6 = ktime; if r6 == 0 goto out; r1 = 100; r1 /= r6; out: r0 = 0; exit
        let guarded = vec![
            call(helper::KTIME_GET_NS),
            insn(0xbf, 6, 0, 0, 0),
            jump(0x15, 6, 0, 2), // if r6 == 0 goto +2
            mov_imm(1, 100),
            insn(0x3f, 1, 6, 0, 0), // r1 /= r6
            mov_imm(0, 0),
            exit(),
        ];
        check_code_with_invariants(&guarded, 1e6).unwrap();
        let mut unguarded = guarded.clone();
        unguarded[2] = insn(0xbf, 6, 6, 0, 0); // r6 = r6: the check is gone
        let (_, skipped) = produce_invariants(&object(&unguarded, &manifest(1000))).unwrap();
        assert_eq!(skipped[0].1, format!("insn 4: divides by r6, which may be zero (s[0,{}])", u64::MAX));
    }

    #[test]
    fn a_counter_kept_on_the_stack_bounds_its_loop() {
        // *(fp-8) = 0; loop: r1 = *(fp-8); if r1 >= 5 goto out; r1 += 1; *(fp-8) = r1; goto loop
        let code = vec![
            insn(0x7a, 10, 0, -8, 0),
            insn(0x79, 1, 10, -8, 0), // 1: loop header
            jump(JGE_IMM, 1, 5, 3),
            add_imm(1, 1),
            insn(0x7b, 10, 1, -8, 0),
            ja(-5), // 5: back to 1
            mov_imm(0, 0),
            exit(),
        ];
        let object = object(&code, &manifest(1000));
        let (invariants, skipped) = produce_invariants(&object).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        let bounds = check_invariants(&object, &invariants).unwrap();
        assert_eq!(bounds["probe0"], vec![LoopBound { header: 1, back_edge: 5, max_trips: 5 }]);
        // A second store to the slot in the loop (here: of the stepped value again, through
        // another pointer) leaves no single writer: no bound.
        let mut twice = code.clone();
        twice.insert(5, insn(0x7b, 10, 1, -8, 0));
        twice[6] = ja(-6);
        let (_, skipped) = produce_invariants(&object_of(&twice)).unwrap();
        assert!(skipped[0].1.contains("of the loop is a counter"), "{skipped:?}");
    }

    fn object_of(code: &[[u8; 8]]) -> Vec<u8> {
        object(code, &manifest(1000))
    }

    #[test]
    fn the_honest_lookup_program_checks_with_invariants() {
        let report = check_code_with_invariants(&lookup_program(), 80.0).unwrap();
        assert_eq!(report.probes[0].bytecode_bound_ns, 75.5);
    }

    #[test]
    fn an_honest_program_is_accepted_with_its_bytecode_cost() {
        let report = check_code(&lookup_program(), 80.0).unwrap();
        let probe = &report.probes[0];
        // Trigger 60 + store 0.5 + ld_imm64 0.5 + mov 0.5 + add 0.5 + call (2 + array lookup 10)
        // + mov 0.5 + exit 1: the map is known from the relocation to be an array.
        assert_eq!(probe.bytecode_bound_ns, 75.5);
        assert_eq!(probe.instructions, 7);
        assert_eq!(probe.helper_calls, BTreeMap::from([(1, 1)]));
        // 1 % of 2 CPUs at 1000/s.
        assert_eq!(probe.allowed_ns, Some(20_000.0));
    }

    /// The honest lookup program as a `begin` (or `end`) probe, with `rate` in the manifest
    /// and the certificate, certifying `bound_ns`.
    fn check_run_once(attach: Attach, rate: Option<u64>, bound_ns: f64) -> Result<PccReport, PccError> {
        let profile = CostProfile::reference();
        let mut manifest = manifest(1000);
        manifest.probes[0].attach = attach;
        manifest.probes[0].rate_per_sec = rate;
        let object = object(&lookup_program(), &manifest);
        let certificate = certificate(&object, &profile, rate, bound_ns);
        let policy = HostPolicy { profile: &profile, cpus: 2, require_profile_match: true };
        check(&header(&profile), &manifest, &object, &certificate, &policy)
    }

    #[test]
    fn begin_and_end_need_no_rate_and_have_no_per_event_budget() {
        for attach in [Attach::Begin, Attach::End] {
            let report = check_run_once(attach.clone(), None, 10_000.0).unwrap();
            let probe = &report.probes[0];
            assert_eq!(probe.rate_per_sec, None);
            assert_eq!(probe.allowed_ns, None);
            assert!(probe.bytecode_bound_ns > probe.trigger_ns, "{attach}: {probe:?}");
            // The certified bound still has to describe the code.
            let error = check_run_once(attach.clone(), None, 1.0).unwrap_err();
            assert_eq!(error.rule, Rule::Cost, "{attach}: {error}");
            // A rate on a probe that runs once is a manifest no compiler writes.
            let error = check_run_once(attach.clone(), Some(1000), 10_000.0).unwrap_err();
            assert_eq!(error.rule, Rule::Consistency, "{attach}: {error}");
            assert!(error.message.contains("runs once"), "{error}");
        }
    }

    #[test]
    fn a_forbidden_helper_is_refused() {
        let mut code = lookup_program();
        code[5] = call(36); // bpf_probe_write_user
        let error = check_code(&code, 80.0).unwrap_err();
        assert_eq!(error.rule, Rule::Helper);
        assert_eq!(error.message, "program probe0: insn 5 calls helper #36, which tracepoint programs may not call");
    }

    #[test]
    fn a_back_edge_is_refused() {
        let mut code = lookup_program();
        code[6] = ja(-2);
        let error = check_code(&code, 80.0).unwrap_err();
        assert_eq!(error.rule, Rule::ControlFlow);
        assert_eq!(error.message, "program probe0: insn 6 jumps back to insn 5: the bytecode has a loop");
    }

    #[test]
    fn jumps_out_of_the_program_and_falling_off_the_end_are_refused() {
        let mut code = lookup_program();
        code[6] = ja(5);
        assert!(check_code(&code, 80.0).unwrap_err().message.contains("jumps to 12, which is not an instruction"));
        let mut code = lookup_program();
        code.pop();
        let error = check_code(&code, 80.0).unwrap_err();
        assert!(error.message.contains("run past the last instruction"), "{error}");
        let mut code = lookup_program();
        code[0] = ja(1); // lands in the middle of the ld_imm64
        assert!(check_code(&code, 80.0).unwrap_err().message.contains("jumps to 2"));
    }

    #[test]
    fn appended_helper_calls_exceed_the_certified_bound() {
        let mut code = lookup_program();
        let exit = code.pop().unwrap();
        code.extend(std::iter::repeat_n(call(helper::GET_CURRENT_COMM), 4));
        code.push(exit);
        let error = check_code(&code, 80.0).unwrap_err();
        assert_eq!(error.rule, Rule::Cost);
        assert!(error.message.contains("more than the certified 80.0 ns"), "{error}");
    }

    #[test]
    fn a_program_over_the_budget_is_refused_even_if_certified() {
        let mut code = lookup_program();
        let exit = code.pop().unwrap();
        // 2000 comm reads cost 44 µs, over the 20 µs per event the budget allows at 1000/s.
        code.extend(std::iter::repeat_n(call(helper::GET_CURRENT_COMM), 2000));
        code.push(exit);
        let error = check_code(&code, 1e9).unwrap_err();
        assert_eq!(error.rule, Rule::Cost);
        assert!(error.message.contains("over the 20000.0 ns the budget allows at 1000/s"), "{error}");
    }

    #[test]
    fn pseudo_calls_atomics_and_pseudo_loads_are_refused() {
        for (slot, bad) in [(5, insn(0x85, 0, 1, 0, 2)), (0, insn(0xdb, 10, 1, -8, 0)), (1, insn(LD_IMM64, 1, 1, 0, 3))]
        {
            let mut code = lookup_program();
            code[slot] = bad;
            let error = check_code(&code, 80.0).unwrap_err();
            assert_eq!(error.rule, Rule::Instruction, "{error}");
        }
    }

    #[test]
    fn tampered_hashes_profiles_and_manifests_are_refused() {
        let profile = CostProfile::reference();
        let manifest = manifest(1000);
        let object = object(&lookup_program(), &manifest);
        let policy = HostPolicy { profile: &profile, cpus: 2, require_profile_match: true };
        let good = certificate(&object, &profile, 1000, 80.0);
        check(&header(&profile), &manifest, &object, &good, &policy).unwrap();

        let mut other_object = object.clone();
        let last = other_object.len() - 1;
        other_object[last] ^= 1;
        let error = check(&header(&profile), &manifest, &other_object, &good, &policy).unwrap_err();
        assert_eq!(error.rule, Rule::Hash);

        let mut other = profile.clone();
        other.triggers.tracepoint += 1.0;
        let foreign = certificate(&object, &other, 1000, 80.0);
        let error = check(&header(&other), &manifest, &object, &foreign, &policy).unwrap_err();
        assert_eq!(error.rule, Rule::Profile);
        let lenient = HostPolicy { require_profile_match: false, ..policy.clone() };
        check(&header(&other), &manifest, &object, &foreign, &lenient).unwrap();

        let error = check(&header(&profile), &self::manifest(50), &object, &good, &policy).unwrap_err();
        assert_eq!(error.rule, Rule::Consistency);
        assert!(error.message.contains("differs from manifest.json"), "{error}");

        let error = check(&header(&profile), &manifest, &object, b"{}", &policy).unwrap_err();
        assert_eq!(error.rule, Rule::Certificate);
        let error = check(&header(&profile), &manifest, b"not elf", &good, &policy).unwrap_err();
        assert_eq!(error.rule, Rule::Hash);
    }
}
