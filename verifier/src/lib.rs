//! The ppis verifier: proves, per probe, termination, memory safety, a worst-case cost per
//! event and that this cost at the declared rate stays within the CPU overhead budget; every
//! failure is a diagnostic on the source span of the offending instruction.
//!
//! Pipeline per function: well-formedness ([`wellformed`]), memory safety by abstract
//! interpretation ([`absint`]), termination (an acyclic CFG, or loops bounded by a ranking
//! function Z3 proves and a trip count from the intervals: [`termination`]), kernel resource
//! limits, shared-map races, then the cost bound (dynamic programming over feasible paths
//! with loops collapsed to `trips × iteration`, confirmed by Z3 in [`smt`]) and the overhead
//! budget. Module-wide: maps that can only grow.
//! Boundary: reads the IR, never changes it; knows nothing of eBPF encodings. Z3 is used
//! only inside [`smt`].

mod absint;
mod certificate;
mod concurrency;
pub mod cost;
mod fmt;
pub mod interp;
mod interval;
mod irtext;
mod resources;
pub mod smt;
mod termination;
mod wellformed;

use cost::{CostBreakdown, CostGraph, LoopCost, PathStep};
use ppis_ir::{Function, Module, Span, Trigger};
use ppis_lang::Diagnostic;
use ppis_manifest::profile::CostProfile;
use serde::{Deserialize, Serialize};
use smt::SmtOutcome;

pub use certificate::{
    certificate, explain_cost, Certificate, CertificateInputs, ProbeCertificate, CERTIFICATE_VERSION,
};
pub use resources::{MAX_EXECUTED_INSTRUCTIONS, MAX_INSTRUCTIONS, MAX_STACK_BYTES};
pub use termination::{BoundedLoop, MAX_LOOP_TRIPS};

/// What the verifier needs besides the IR.
#[derive(Clone, Copy, Debug)]
pub struct VerifyOptions<'a> {
    /// Costs of the host the probes will run on.
    pub profile: &'a CostProfile,
    /// Largest CPU share one probe may take, in percent of all CPUs (0.5 by default).
    pub budget_percent: f64,
    /// CPUs the overhead is spread over.
    pub cpus: u32,
}

/// The default overhead budget, percent.
pub const DEFAULT_BUDGET_PERCENT: f64 = 0.5;

/// What the verifier established about one function.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionFacts {
    pub name: String,
    /// IR instructions plus terminators.
    pub instructions: usize,
    /// Bytes of stack slots.
    pub stack_bytes: u32,
    /// Instructions on the longest path from entry to exit, loops run their proven number of
    /// times (0 when a cycle is not a bounded loop).
    pub longest_path: usize,
    pub acyclic: bool,
    /// The bounded loops, when the CFG has cycles.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loops: Vec<BoundedLoop>,
    pub trigger: &'static str,
    pub rate_per_sec: Option<u64>,
    /// The worst-case cost per event; `None` when the function could not be bounded
    /// (a cycle, or malformed IR).
    pub cost: Option<CostFacts>,
    /// Worst-case cost × declared rate over all CPUs, percent; `None` without a rate.
    pub overhead_percent: Option<f64>,
    pub obligations: Vec<ObligationResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostFacts {
    /// Trigger plus the heaviest feasible path, nanoseconds.
    pub bound_ns: f64,
    /// The same in picoseconds, as summed and as Z3 checked it.
    pub bound_ps: u64,
    pub breakdown: CostBreakdown,
    /// Blocks of the worst path, entry first.
    pub worst_blocks: Vec<usize>,
    /// Its instructions with their costs.
    pub worst_path: Vec<PathStep>,
    pub smt: SmtOutcome,
    /// How each loop was priced (innermost first); empty without loops.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loops: Vec<LoopCost>,
}

/// The properties proven per probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Obligation {
    WellFormed,
    Termination,
    NullChecks,
    MemoryBounds,
    Initialisation,
    DivisionByZero,
    Resources,
    SharedMapRaces,
    MapGrowth,
    CostBound,
    Overhead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A property of the CFG's shape or of declared sizes.
    Structural,
    AbstractInterpretation,
    /// Forward dataflow (taint) analysis.
    Dataflow,
    Z3,
    /// Exact longest-path dynamic programming over the DAG, without Z3's confirmation (Z3
    /// reached its time limit).
    DynamicProgramming,
    /// Arithmetic on proven bounds.
    Arithmetic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Proven,
    Violated,
    /// Holds, with a warning attached (e.g. a map that can only grow).
    Warning,
    /// Not attempted because an earlier obligation failed.
    NotChecked,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObligationResult {
    pub obligation: Obligation,
    pub method: Method,
    pub status: Status,
    /// The numbers behind the verdict, or the diagnostic codes that refuted it.
    pub detail: String,
}

#[derive(Clone, Debug, Default)]
pub struct Verdict {
    pub functions: Vec<FunctionFacts>,
    pub diagnostics: Vec<Diagnostic>,
    /// [`CostProfile::hash`] of the profile used.
    pub profile_hash: String,
    pub profile_host: String,
    pub profile_measured_at: String,
    pub budget_percent: f64,
    pub cpus: u32,
}

impl Verdict {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.is_error())
    }
}

pub fn verify(module: &Module, opts: &VerifyOptions) -> Verdict {
    let budget = if opts.budget_percent.is_finite() && opts.budget_percent > 0.0 { opts.budget_percent } else { 0.0 };
    let cpus = opts.cpus.max(1);
    let mut verdict = Verdict {
        profile_hash: opts.profile.hash(),
        profile_host: format!(
            "{} CPUs, {}, kernel {}",
            opts.profile.host.cpus, opts.profile.host.cpu_model, opts.profile.host.kernel
        ),
        profile_measured_at: opts.profile.measured_at.clone(),
        budget_percent: budget,
        cpus,
        ..Verdict::default()
    };
    let growth = concurrency::growth(module);
    for func in &module.functions {
        let mut diags = Vec::new();
        let mut facts = verify_function(func, module, opts.profile, budget, cpus, &mut diags);
        let own_growth: Vec<Diagnostic> = growth.iter().filter(|d| owns(func, d.primary.span)).cloned().collect();
        let grows = updates_growing_map(func, module);
        facts.obligations.push(ObligationResult {
            obligation: Obligation::MapGrowth,
            method: Method::Dataflow,
            status: if grows { Status::Warning } else { Status::Proven },
            detail: if grows {
                "inserts into a hash map nothing deletes from (W0400)".into()
            } else {
                "no insert into a hash map that is never deleted from".into()
            },
        });
        diags.extend(own_growth);
        verdict.functions.push(facts);
        verdict.diagnostics.extend(diags);
    }
    // Growth warnings whose site belongs to no function (cannot happen with parsed IR).
    verdict
        .diagnostics
        .extend(growth.into_iter().filter(|d| !module.functions.iter().any(|f| owns(f, d.primary.span))));
    verdict
}

/// True when `span` is the function's own span or one of its instructions' or terminators'.
fn owns(func: &Function, span: Span) -> bool {
    span == func.span || func.cfg.node_weights().any(|b| b.term_span == span || b.insts.iter().any(|i| i.span == span))
}

fn updates_growing_map(func: &Function, module: &Module) -> bool {
    use ppis_ir::{MapType, Op};
    let deleted = |id: usize| {
        module.functions.iter().any(|f| {
            f.cfg.node_weights().any(|b| b.insts.iter().any(|i| matches!(i.op, Op::MapDelete { map, .. } if map == id)))
        })
    };
    func.cfg.node_weights().flat_map(|b| &b.insts).any(|i| match i.op {
        Op::MapUpdate { map, .. } => module.maps.get(map).is_some_and(|m| m.kind == MapType::Hash) && !deleted(map),
        _ => false,
    })
}

fn trigger_name(t: Trigger) -> &'static str {
    match t {
        Trigger::Tracepoint => "tracepoint",
        Trigger::Uprobe => "uprobe",
        Trigger::Uretprobe => "uretprobe",
        Trigger::RawTracepoint => "raw_tracepoint",
        Trigger::PerfEvent => "perf_event",
        Trigger::Once => "once",
    }
}

fn verify_function(
    func: &Function,
    module: &Module,
    profile: &CostProfile,
    budget: f64,
    cpus: u32,
    diags: &mut Vec<Diagnostic>,
) -> FunctionFacts {
    let maps = &module.maps;
    let mut facts = FunctionFacts {
        name: func.name.clone(),
        instructions: resources::instruction_count(func),
        stack_bytes: resources::stack_bytes(func),
        longest_path: 0,
        acyclic: false,
        loops: Vec::new(),
        trigger: trigger_name(func.probe.trigger),
        rate_per_sec: func.probe.rate.map(|r| r.0),
        cost: None,
        overhead_percent: None,
        obligations: Vec::new(),
    };
    let malformed = wellformed::check(func, maps);
    let mut results = Vec::new();
    let record = |results: &mut Vec<ObligationResult>, obligation, method, diags: &[Diagnostic], proven: String| {
        let codes: Vec<&str> = diags.iter().map(|d| d.code).collect();
        let (status, detail) = if diags.iter().any(|d| d.is_error()) {
            (Status::Violated, format!("refuted: {}", codes.join(", ")))
        } else if !diags.is_empty() {
            (Status::Warning, format!("{proven}; warnings: {}", codes.join(", ")))
        } else {
            (Status::Proven, proven)
        };
        results.push(ObligationResult { obligation, method, status, detail });
    };
    record(
        &mut results,
        Obligation::WellFormed,
        Method::Structural,
        &malformed,
        "every name resolves, widths valid".into(),
    );
    if !malformed.is_empty() {
        diags.extend(malformed);
        for o in [
            Obligation::Termination,
            Obligation::NullChecks,
            Obligation::MemoryBounds,
            Obligation::Initialisation,
            Obligation::DivisionByZero,
            Obligation::Resources,
            Obligation::SharedMapRaces,
            Obligation::CostBound,
            Obligation::Overhead,
        ] {
            results.push(ObligationResult {
                obligation: o,
                method: Method::Structural,
                status: Status::NotChecked,
                detail: "malformed IR".into(),
            });
        }
        facts.obligations = results;
        return facts;
    }

    let analysis = absint::analyse(func, maps);
    let (loops, cycle_diags) = termination::loops(func, &analysis);
    facts.acyclic = loops.is_empty() && cycle_diags.is_empty();
    let bounded = cycle_diags.is_empty();
    if bounded {
        facts.longest_path = resources::longest_path(func, &loops);
    }
    let termination_detail = if facts.acyclic {
        "the CFG is acyclic".to_string()
    } else {
        let trips: Vec<String> = loops.iter().map(|l| l.trips.to_string()).collect();
        format!(
            "{} loop(s), each with a ranking function proven by Z3, at most {} iterations",
            loops.len(),
            trips.join(", ")
        )
    };
    let termination_method = if facts.acyclic { Method::Structural } else { Method::Z3 };
    record(&mut results, Obligation::Termination, termination_method, &cycle_diags, termination_detail);
    diags.extend(cycle_diags);
    let pick = |codes: &[&str]| -> Vec<Diagnostic> {
        analysis.diagnostics.iter().filter(|d| codes.contains(&d.code)).cloned().collect()
    };
    let reachable = analysis.reachable.iter().filter(|r| **r).count();
    record(
        &mut results,
        Obligation::NullChecks,
        Method::AbstractInterpretation,
        &pick(&["E0401"]),
        "every map value access is dominated by a non-null check".into(),
    );
    record(
        &mut results,
        Obligation::MemoryBounds,
        Method::AbstractInterpretation,
        &pick(&["E0404", "E0405", "E0414", "E0415"]),
        "slot, map value and array index accesses within their sizes, string reads bounded".into(),
    );
    record(
        &mut results,
        Obligation::Initialisation,
        Method::AbstractInterpretation,
        &pick(&["E0406", "E0407"]),
        "registers assigned and stack bytes written before use on every path".into(),
    );
    record(
        &mut results,
        Obligation::DivisionByZero,
        Method::AbstractInterpretation,
        &pick(&["E0408"]),
        format!("no divisor interval contains 0 ({reachable} reachable blocks)"),
    );
    diags.extend(analysis.diagnostics.iter().cloned());

    facts.loops = loops.clone();
    let resource_diags = resources::check(func, &facts);
    record(
        &mut results,
        Obligation::Resources,
        Method::Structural,
        &resource_diags,
        format!(
            "{} of {MAX_INSTRUCTIONS} instructions, {} of {MAX_STACK_BYTES} stack bytes",
            facts.instructions, facts.stack_bytes
        ),
    );
    diags.extend(resource_diags);

    let race_diags = concurrency::races(func, maps);
    record(
        &mut results,
        Obligation::SharedMapRaces,
        Method::Dataflow,
        &race_diags,
        "no read-modify-write of a shared hash map".into(),
    );
    diags.extend(race_diags);

    if bounded {
        let mut graph = CostGraph::new(func, &analysis, maps, profile);
        let loop_costs = graph.collapse_loops(&loops);
        if let Some((blocks, bound_ps)) = graph.worst_path() {
            let smt = smt::confirm_bound(&graph, bound_ps);
            let expanded = cost::expand_path(&blocks, &loop_costs);
            let (worst_path, breakdown) = cost::explain_path(func, &expanded, maps, profile);
            let bound_ns = cost::nanos(bound_ps);
            let mut smt_diags = Vec::new();
            // Only a refutation is an error: when Z3 merely gives up (its time limit), the
            // dynamic-programming bound stands and the certificate says it is unconfirmed.
            let refuted = |o: &SmtOutcome| matches!(o, SmtOutcome::Exceeded { .. } | SmtOutcome::NotAttained);
            if let Some(l) = loop_costs.iter().find(|l| refuted(&l.smt)) {
                smt_diags.push(
                    Diagnostic::error(
                        "E0413",
                        format!("Z3 did not confirm the per-iteration cost bound of a loop: {:?}", l.smt),
                        func.cfg[ppis_ir::Block::new(l.header)].term_span,
                    )
                    .label("loop cost bound unconfirmed")
                    .with_help("this is a verifier bug; please report it with `ppisc ir` output"),
                );
            }
            if refuted(&smt) {
                smt_diags.push(
                    Diagnostic::error(
                        "E0413",
                        format!("Z3 did not confirm the cost bound of {}: {smt:?}", fmt::ns(bound_ns)),
                        func.span,
                    )
                    .label("cost bound unconfirmed")
                    .with_help("this is a verifier bug; please report it with `ppisc ir` output"),
                );
            }
            record(
                &mut results,
                Obligation::CostBound,
                if smt == SmtOutcome::Confirmed && loop_costs.iter().all(|l| l.smt == SmtOutcome::Confirmed) {
                    Method::Z3
                } else {
                    Method::DynamicProgramming
                },
                &smt_diags,
                if loop_costs.is_empty() {
                    format!("worst case {} per event, max over {} feasible edges", fmt::ns(bound_ns), graph.edges.len())
                } else {
                    format!(
                        "worst case {} per event, max over {} feasible edges, {} loop(s) at their proven trip counts",
                        fmt::ns(bound_ns),
                        graph.edges.len(),
                        loop_costs.len()
                    )
                },
            );
            diags.extend(smt_diags);
            let overhead_diags = overhead(func, bound_ns, budget, cpus, &mut facts);
            let detail = match facts.overhead_percent {
                Some(p) => format!("{} of {cpus} CPUs within the {budget} % budget", fmt::percent(p)),
                None => "no rate".into(),
            };
            record(&mut results, Obligation::Overhead, Method::Arithmetic, &overhead_diags, detail);
            diags.extend(overhead_diags);
            facts.cost = Some(CostFacts {
                bound_ns,
                bound_ps,
                breakdown,
                worst_blocks: blocks,
                worst_path,
                smt,
                loops: loop_costs,
            });
        }
    }
    if facts.cost.is_none() {
        for o in [Obligation::CostBound, Obligation::Overhead] {
            results.push(ObligationResult {
                obligation: o,
                method: Method::Z3,
                status: Status::NotChecked,
                detail: "no bound: the probe may not terminate".into(),
            });
        }
    }
    facts.obligations = results;
    facts
}

/// The overhead invariant: `bound × rate / (cpus × 1 s)` within the budget.
fn overhead(func: &Function, bound_ns: f64, budget: f64, cpus: u32, facts: &mut FunctionFacts) -> Vec<Diagnostic> {
    let allowed_per_sec = budget / 100.0 * cpus as f64 * 1e9 / bound_ns.max(f64::MIN_POSITIVE);
    let nice = fmt::nice_rate_floor(allowed_per_sec);
    let suggestion = if nice == 0 {
        "make the probe cheaper: even one event per second is over the budget".to_string()
    } else {
        format!("`rate <= {}/s`", fmt::rate(nice))
    };
    if func.probe.trigger == Trigger::Once {
        // `begin`/`end` run exactly once per session: one bounded event, no rate to multiply.
        return Vec::new();
    }
    match func.probe.rate {
        None => vec![Diagnostic::error(
            "E0409",
            format!("probe `{}` declares no event rate, so its CPU overhead cannot be bounded", func.name),
            func.span,
        )
        .label(format!("worst case {} per event", fmt::ns(bound_ns)))
        .with_help(if nice == 0 {
            suggestion
        } else {
            format!(
                "add {suggestion}: the highest rate within the {budget} % budget at {} per event on {cpus} CPUs",
                fmt::ns(bound_ns)
            )
        })],
        Some((rate, span)) => {
            let percent = bound_ns * rate as f64 / (cpus as f64 * 1e9) * 100.0;
            facts.overhead_percent = Some(percent);
            if percent <= budget {
                return Vec::new();
            }
            vec![Diagnostic::error(
                "E0410",
                format!(
                    "probe `{}` may use {} of {cpus} CPUs, over the {budget} % budget: worst path {} × {}/s",
                    func.name,
                    fmt::percent(percent),
                    fmt::ns(bound_ns),
                    fmt::rate(rate)
                ),
                span,
            )
            .label("at this rate")
            .with_help(if nice == 0 {
                suggestion
            } else {
                format!("lower the rate to {suggestion}, or simplify the probe (`--explain-cost` shows where the time goes)")
            })]
        }
    }
}
