//! The cost model and the worst-case cost of one event: the trigger's fixed cost plus the
//! heaviest feasible entry-to-exit path, instruction by instruction, from a host profile.
//!
//! Costs are kept in integer picoseconds so that the path sums are exact (and the SMT
//! encoding can use integers); they are shown in nanoseconds.
//!
//! Loops ([`CostGraph::collapse_loops`]), innermost first: the worst path of one iteration
//! (header to latch, inner loops already collapsed) is the iteration bound; the loop becomes
//! one node at its header costing `trips × iteration + header` (the last, failing test),
//! with the loop's exits as its out-edges. An exit from inside the body costs at most the
//! same (it leaves part-way through an iteration). The outer graph is then acyclic.

use crate::absint::Analysis;
use crate::termination::BoundedLoop;
use ppis_ir::{AddressSpace, Function, Helper, Map, MapType, Op, Span, Terminator, Trigger};
use ppis_manifest::profile::{CostProfile, MapHelperCost, TriggerKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub type Picos = u64;

pub fn picos(ns: f64) -> Picos {
    if ns.is_finite() && ns > 0.0 {
        (ns * 1000.0).round() as Picos
    } else {
        0
    }
}

pub fn nanos(ps: Picos) -> f64 {
    ps as f64 / 1000.0
}

/// What one instruction costs: its class's cost, plus a helper's when it calls one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpCost {
    pub class: &'static str,
    pub instruction: Picos,
    pub helper: Option<(&'static str, Picos)>,
}

impl OpCost {
    pub fn total(&self) -> Picos {
        self.instruction + self.helper.map_or(0, |h| h.1)
    }
}

/// What the profile prices `trigger` as; `None` for `begin`/`end`, which the runtime runs
/// through BPF_PROG_TEST_RUN with no kernel event.
pub fn trigger_kind(trigger: Trigger) -> Option<TriggerKind> {
    match trigger {
        Trigger::Tracepoint => Some(TriggerKind::Tracepoint),
        Trigger::Uprobe => Some(TriggerKind::Uprobe),
        Trigger::Uretprobe => Some(TriggerKind::Uretprobe),
        Trigger::RawTracepoint => Some(TriggerKind::RawTracepoint),
        Trigger::PerfEvent => Some(TriggerKind::PerfEvent),
        Trigger::Once => None,
    }
}

pub fn trigger_cost(trigger: Trigger, profile: &CostProfile) -> Picos {
    trigger_kind(trigger).map_or(0, |kind| picos(profile.trigger(kind)))
}

pub fn op_cost(op: &Op, func: &Function, maps: &[Map], profile: &CostProfile) -> OpCost {
    let i = &profile.instructions;
    let h = &profile.helpers;
    let by_map = |cost: &MapHelperCost, map: usize| match maps.get(map).map(|m| m.kind) {
        Some(MapType::Hash) => cost.hash,
        Some(MapType::Array) => cost.array,
        Some(MapType::PerCpuHash) => cost.percpu_hash,
        Some(MapType::PerCpuArray) => cost.percpu_array,
        // No map helper runs on a ring buffer (only `ringbuf_output`, priced below).
        // Nor on a stack-trace map (only `get_stackid`, priced below).
        Some(MapType::RingBuf) | Some(MapType::StackTrace) | None => cost.max(),
        Some(MapType::LruHash) | Some(MapType::LruPerCpuHash) => cost.lru_hash,
    };
    let plain = |class: &'static str, ns: f64| OpCost { class, instruction: picos(ns), helper: None };
    let call = |name: &'static str, ns: f64| OpCost {
        class: "call",
        instruction: picos(i.call),
        helper: Some((name, picos(ns))),
    };
    match *op {
        Op::Mov { .. } | Op::Alu { .. } | Op::Neg { .. } | Op::SetCond { .. } | Op::Extend { .. } => {
            plain("alu", i.alu)
        }
        Op::LoadCtx { .. } => plain("load_ctx", i.load_ctx),
        Op::LoadSlot { .. } => plain("load_stack", i.load_stack),
        Op::StoreSlot { .. } => plain("store_stack", i.store_stack),
        Op::ZeroSlot { slot } => {
            // One 8-byte store per word of the slot.
            let words = func.slots.get(slot.0 as usize).map_or(0, |s| s.div_ceil(8));
            OpCost { class: "store_stack", instruction: picos(i.store_stack) * words as u64, helper: None }
        }
        Op::LoadPtr { .. } => plain("load_map_value", i.load_map_value),
        Op::StorePtr { .. } => plain("store_map_value", i.store_map_value),
        Op::MapLookup { map, .. } => call("map_lookup_elem", by_map(&h.map_lookup_elem, map)),
        Op::MapUpdate { map, .. } => call("map_update_elem", by_map(&h.map_update_elem, map)),
        Op::MapDelete { map, .. } => call("map_delete_elem", by_map(&h.map_delete_elem, map)),
        Op::Call { helper, .. } => match helper {
            Helper::GetCurrentPidTgid => call("get_current_pid_tgid", h.get_current_pid_tgid),
            Helper::GetCurrentUidGid => call("get_current_uid_gid", h.get_current_uid_gid),
            Helper::GetCurrentComm { .. } => call("get_current_comm", h.get_current_comm),
            Helper::KtimeGetNs => call("ktime_get_ns", h.ktime_get_ns),
            Helper::GetSmpProcessorId => call("get_smp_processor_id", h.get_smp_processor_id),
            // Priced at the read's bound: the worst case copies `len` bytes.
            Helper::ProbeReadStr { len, space: AddressSpace::User, .. } => {
                call("probe_read_user_str", h.probe_read_user_str.cost(len))
            }
            Helper::ProbeReadStr { len, space: AddressSpace::Kernel, .. } => {
                call("probe_read_kernel_str", h.probe_read_kernel_str.cost(len))
            }
            // Priced at the record's size: the helper copies all `len` bytes.
            Helper::RingbufOutput { len, .. } => call("ringbuf_output", h.ringbuf_output.cost(len)),
            // The profile's measured walk-and-hash cost at full depth bounds shallower walks.
            Helper::GetStackId { .. } => call("get_stackid", h.get_stackid),
            Helper::GetCurrentCgroupId => call("get_current_cgroup_id", h.get_current_cgroup_id),
            // Copies exactly `len` bytes.
            Helper::ProbeRead { len, space: AddressSpace::User, .. } => {
                call("probe_read_user", h.probe_read_user.cost(len))
            }
            Helper::ProbeRead { len, space: AddressSpace::Kernel, .. } => {
                call("probe_read_kernel", h.probe_read_kernel.cost(len))
            }
        },
    }
}

/// Jumps, branches and the exit all cost one branch; the exit also carries the kernel's
/// per-run cost on `trigger` (`instructions.run`, or `run_perf_event`): every run leaves
/// through exactly one exit, so that charges it exactly once per event, on every path, in
/// loops too (a `ret` ends the run).
pub fn term_cost(term: &Terminator, trigger: Trigger, profile: &CostProfile) -> Picos {
    let branch = picos(profile.instructions.branch);
    match term {
        Terminator::Return => branch + picos(profile.run(trigger_kind(trigger))),
        _ => branch,
    }
}

/// What a terminator is priced as, for `--explain-cost`: the exit shows that it carries the
/// per-run cost when the profile has one.
pub fn term_class(term: &Terminator, trigger: Trigger, profile: &CostProfile) -> &'static str {
    match term {
        Terminator::Return if picos(profile.run(trigger_kind(trigger))) > 0 => "branch+run",
        _ => "branch",
    }
}

/// The cost of a whole block (instructions and terminator).
pub fn block_cost(func: &Function, block: ppis_ir::Block, maps: &[Map], profile: &CostProfile) -> Picos {
    let bb = &func.cfg[block];
    bb.insts.iter().map(|i| op_cost(&i.op, func, maps, profile).total()).sum::<Picos>()
        + term_cost(&bb.term, func.probe.trigger, profile)
}

/// The CFG as the cost analysis sees it: reachable blocks with their costs, feasible edges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostGraph {
    pub entry: usize,
    /// Per block: its cost, or `None` when unreachable.
    pub block_costs: Vec<Option<Picos>>,
    /// Feasible edges between reachable blocks.
    pub edges: Vec<(usize, usize)>,
    pub trigger: Picos,
}

impl CostGraph {
    pub fn new(func: &Function, analysis: &Analysis, maps: &[Map], profile: &CostProfile) -> CostGraph {
        let block_costs = func
            .cfg
            .node_indices()
            .map(|b| analysis.reachable[b.index()].then(|| block_cost(func, b, maps, profile)))
            .collect();
        let mut edges = Vec::new();
        for b in func.cfg.node_indices() {
            if !analysis.reachable[b.index()] {
                continue;
            }
            for (k, succ) in func.cfg[b].term.successors().into_iter().enumerate() {
                if analysis.feasible[b.index()].get(k).copied().unwrap_or(false) {
                    edges.push((b.index(), succ.index()));
                }
            }
        }
        CostGraph { entry: func.entry.index(), block_costs, edges, trigger: trigger_cost(func.probe.trigger, profile) }
    }

    /// Collapses every loop (innermost first, see the module docs) so that the graph is
    /// acyclic; returns what each loop's summary is made of, in the order collapsed.
    pub fn collapse_loops(&mut self, loops: &[BoundedLoop]) -> Vec<LoopCost> {
        self.collapse(loops, true)
    }

    /// As [`Self::collapse_loops`] without asking Z3 about the iterations (for weights that
    /// are not costs, e.g. instruction counts).
    pub fn collapse_loops_unchecked(&mut self, loops: &[BoundedLoop]) {
        self.collapse(loops, false);
    }

    fn collapse(&mut self, loops: &[BoundedLoop], confirm: bool) -> Vec<LoopCost> {
        let mut order: Vec<&BoundedLoop> = loops.iter().collect();
        // An inner loop's blocks are a strict subset of its outer loop's.
        order.sort_by_key(|l| l.blocks.len());
        let mut summaries = Vec::new();
        for l in order {
            let blocks: BTreeSet<usize> = l.blocks.iter().copied().collect();
            if self.block_costs.get(l.header).copied().flatten().is_none() {
                continue; // unreachable loop
            }
            let body = CostGraph {
                entry: l.header,
                block_costs: self
                    .block_costs
                    .iter()
                    .enumerate()
                    .map(|(b, c)| if blocks.contains(&b) { *c } else { None })
                    .collect(),
                edges: self
                    .edges
                    .iter()
                    .copied()
                    .filter(|&(a, b)| blocks.contains(&a) && blocks.contains(&b) && (a, b) != (l.latch, l.header))
                    .collect(),
                trigger: 0,
            };
            // Every cycle inside was collapsed before, so one iteration is acyclic; were it
            // not, the iteration is priced at the maximum (an overhead error, never a
            // silently low bound) and reported as unconfirmed.
            let (iteration_blocks, iteration, smt) = match body.worst_path() {
                Some((blocks, cost)) if confirm => {
                    let smt = crate::smt::confirm_bound(&body, cost);
                    (blocks, cost, smt)
                }
                Some((blocks, cost)) => (blocks, cost, crate::smt::SmtOutcome::Unknown { reason: "not asked".into() }),
                None => (
                    vec![l.header],
                    Picos::MAX,
                    crate::smt::SmtOutcome::Unknown { reason: "the loop body is not acyclic".into() },
                ),
            };
            let header_cost = self.block_costs[l.header].unwrap_or(0);
            let total = iteration.saturating_mul(l.trips).saturating_add(header_cost);
            let exits: BTreeSet<usize> =
                self.edges.iter().filter(|(a, b)| blocks.contains(a) && !blocks.contains(b)).map(|(_, b)| *b).collect();
            self.edges.retain(|(a, _)| !blocks.contains(a));
            self.edges.extend(exits.into_iter().map(|b| (l.header, b)));
            for &b in &blocks {
                self.block_costs[b] = None;
            }
            self.block_costs[l.header] = Some(total);
            summaries.push(LoopCost {
                header: l.header,
                trips: l.trips,
                iteration_ps: iteration,
                header_ps: header_cost,
                total_ps: total,
                iteration_blocks,
                smt,
            });
        }
        summaries
    }

    /// The heaviest path from the entry (blocks in order) and its cost including the
    /// trigger, by dynamic programming in reverse topological order. `None` on a cycle.
    pub fn worst_path(&self) -> Option<(Vec<usize>, Picos)> {
        let n = self.block_costs.len();
        let mut succs = vec![Vec::new(); n];
        let mut indegree = vec![0usize; n];
        for &(a, b) in &self.edges {
            succs[a].push(b);
            indegree[b] += 1;
        }
        // Kahn's algorithm over reachable blocks; leftovers mean a cycle.
        let mut topo = Vec::new();
        let mut ready: Vec<usize> = (0..n).filter(|b| self.block_costs[*b].is_some() && indegree[*b] == 0).collect();
        while let Some(b) = ready.pop() {
            topo.push(b);
            for &s in &succs[b] {
                indegree[s] -= 1;
                if indegree[s] == 0 {
                    ready.push(s);
                }
            }
        }
        if topo.len() != self.block_costs.iter().filter(|c| c.is_some()).count() {
            return None;
        }
        let mut best: Vec<(Picos, Option<usize>)> = vec![(0, None); n];
        for &b in topo.iter().rev() {
            let tail = succs[b].iter().map(|s| (best[*s].0, Some(*s))).max_by_key(|(c, _)| *c).unwrap_or((0, None));
            best[b] = (self.block_costs[b].unwrap_or(0).saturating_add(tail.0), tail.1);
        }
        self.block_costs.get(self.entry)?.as_ref()?;
        let mut path = vec![self.entry];
        while let Some(next) = best[*path.last()?].1 {
            path.push(next);
        }
        Some((path, self.trigger.saturating_add(best[self.entry].0)))
    }
}

/// How one loop was priced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoopCost {
    pub header: usize,
    pub trips: u64,
    /// Worst path of one iteration, header to latch (inner loops collapsed).
    pub iteration_ps: Picos,
    /// The final, failing test.
    pub header_ps: Picos,
    /// `trips × iteration + header`.
    pub total_ps: Picos,
    /// Blocks of the worst iteration, header first (an inner loop appears as its header).
    pub iteration_blocks: Vec<usize>,
    /// Z3's check that `iteration_ps` is the exact worst iteration.
    pub smt: crate::smt::SmtOutcome,
}

/// A path through the collapsed graph with each loop expanded into its worst iteration, as
/// `(block, times run)`: the iteration's blocks run `trips` times (times the enclosing
/// loops' trips), then the header once more for the failing test.
pub fn expand_path(path: &[usize], loops: &[LoopCost]) -> Vec<(usize, u64)> {
    fn expand(path: &[usize], times: u64, loops: &[LoopCost], open: &mut Vec<usize>, out: &mut Vec<(usize, u64)>) {
        for &b in path {
            match loops.iter().find(|l| l.header == b && !open.contains(&b)) {
                Some(l) => {
                    let each = times.saturating_mul(l.trips);
                    if each > 0 {
                        // Inside its own iteration the header is a plain block.
                        open.push(b);
                        expand(&l.iteration_blocks, each, loops, open, out);
                        open.pop();
                    }
                    out.push((b, times));
                }
                None => out.push((b, times)),
            }
        }
    }
    let mut out = Vec::new();
    expand(path, 1, loops, &mut Vec::new(), &mut out);
    out
}

/// The worst-case cost split by where it goes, along the worst path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostBreakdown {
    pub trigger_ns: f64,
    /// Instruction classes (including helper-call overhead), summed along the path.
    pub instructions_ns: f64,
    /// Per helper: calls on the path and their total cost.
    pub helpers: Vec<HelperCost>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HelperCost {
    pub helper: String,
    pub calls: u32,
    pub total_ns: f64,
}

/// One instruction on the worst path, for `--explain-cost`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathStep {
    pub block: usize,
    /// The instruction in the IR's text form.
    pub ir: String,
    pub span: Span,
    pub class: &'static str,
    pub cost_ns: f64,
    pub helper: Option<&'static str>,
    /// How often it runs on the worst path (more than once inside a loop).
    #[serde(skip_serializing_if = "is_once")]
    pub times: u64,
}

fn is_once(times: &u64) -> bool {
    *times == 1
}

/// The steps of a path (each block with how often it runs) and the breakdown of its cost.
pub fn explain_path(
    func: &Function,
    path: &[(usize, u64)],
    maps: &[Map],
    profile: &CostProfile,
) -> (Vec<PathStep>, CostBreakdown) {
    let texts = crate::irtext::instruction_texts(func, maps);
    let mut steps = Vec::new();
    let mut instructions: Picos = 0;
    let mut helpers: Vec<(String, u32, Picos)> = Vec::new();
    for &(b, times) in path {
        let block = ppis_ir::Block::new(b);
        let bb = &func.cfg[block];
        for (k, inst) in bb.insts.iter().enumerate() {
            let c = op_cost(&inst.op, func, maps, profile);
            instructions += c.instruction.saturating_mul(times);
            if let Some((name, ps)) = c.helper {
                let calls = u32::try_from(times).unwrap_or(u32::MAX);
                match helpers.iter_mut().find(|h| h.0 == name) {
                    Some(h) => {
                        h.1 = h.1.saturating_add(calls);
                        h.2 += ps.saturating_mul(times);
                    }
                    None => helpers.push((name.to_string(), calls, ps.saturating_mul(times))),
                }
            }
            steps.push(PathStep {
                block: b,
                ir: texts.get(&(b, k)).cloned().unwrap_or_default(),
                span: inst.span,
                class: c.class,
                cost_ns: nanos(c.total()),
                helper: c.helper.map(|h| h.0),
                times,
            });
        }
        let t = term_cost(&bb.term, func.probe.trigger, profile);
        instructions += t.saturating_mul(times);
        steps.push(PathStep {
            block: b,
            ir: texts.get(&(b, bb.insts.len())).cloned().unwrap_or_default(),
            span: bb.term_span,
            class: term_class(&bb.term, func.probe.trigger, profile),
            cost_ns: nanos(t),
            helper: None,
            times,
        });
    }
    let breakdown = CostBreakdown {
        trigger_ns: nanos(trigger_cost(func.probe.trigger, profile)),
        instructions_ns: nanos(instructions),
        helpers: helpers
            .into_iter()
            .map(|(helper, calls, ps)| HelperCost { helper, calls, total_ns: nanos(ps) })
            .collect(),
    };
    (steps, breakdown)
}

#[cfg(test)]
mod tests {
    use crate::{verify, VerifyOptions};
    use ppis_manifest::profile::CostProfile;

    /// The bound of the only function of `ir` under `profile`, in picoseconds.
    fn bound_ps(ir: &str, profile: &CostProfile) -> u64 {
        let module = ppis_ir::parse_module(ir).unwrap_or_else(|e| panic!("{e}\n{ir}"));
        let verdict = verify(&module, &VerifyOptions { profile, budget_percent: 100.0, cpus: 1 });
        verdict.functions[0].cost.as_ref().map(|c| c.bound_ps).unwrap_or_else(|| panic!("no bound for\n{ir}"))
    }

    /// The per-run cost is charged exactly once per event: on the exit, which every path
    /// takes once, whether the path is short, branches to one of two exits, or loops.
    #[test]
    fn the_per_run_cost_is_charged_once_per_event() {
        let programs = [
            "fn p(ctx: tracepoint) trigger tracepoint rate 1 {\nbb0:\n  ret\n}\n",
            "fn p(ctx: tracepoint) trigger tracepoint rate 1 {\nbb0:\n  v0 = load.ctx 8 u32\n  \
             br.eq v0, 1, bb1, bb2\nbb1:\n  ret\nbb2:\n  v1 = add v0, 1\n  ret\n}\n",
            "fn p(ctx: tracepoint) trigger tracepoint rate 1 {\nbb0:\n  v0 = 0\n  jump bb1\nbb1:\n  \
             v0 = add v0, 1\n  br.ult v0, 10, bb1, bb2\nbb2:\n  ret\n}\n",
        ];
        let without = CostProfile::reference();
        let mut with = without.clone();
        with.instructions.run = 45.0;
        for ir in programs {
            assert_eq!(bound_ps(ir, &with), bound_ps(ir, &without) + 45_000, "{ir}");
        }
    }

    /// A run on a perf event pays the profile's perf-event run price, once, and other
    /// triggers keep the plain one.
    #[test]
    fn perf_event_runs_are_charged_their_own_per_run_price() {
        let perf = "fn p(ctx: perf_event) trigger perf_event rate 1 {\nbb0:\n  ret\n}\n";
        let tracepoint = "fn p(ctx: tracepoint) trigger tracepoint rate 1 {\nbb0:\n  ret\n}\n";
        let mut plain = CostProfile::reference();
        plain.instructions.run = 45.0;
        let mut dearer = plain.clone();
        dearer.instructions.run_perf_event = Some(70.0);
        assert_eq!(bound_ps(perf, &dearer), bound_ps(perf, &plain) + 25_000);
        assert_eq!(bound_ps(tracepoint, &dearer), bound_ps(tracepoint, &plain));
    }
}
