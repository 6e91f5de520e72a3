//! Z3 confirmation of a cost bound. The acyclic CFG (feasible edges only) becomes a set of
//! boolean edge and block variables with flow constraints, so that every model is exactly
//! one entry-to-exit path; the cost is the sum of the visited blocks' costs. The bound is
//! confirmed when `cost > bound` is unsatisfiable (no path is heavier) and `cost = bound`
//! is satisfiable (some path attains it, so the bound is tight for this abstraction).
//!
//! Loops: [`prove_ranking`] proves a bounded loop's ranking function on 64-bit bit-vectors.
//!
//! Boundary: the only module that talks to Z3; it sees a [`CostGraph`] or a loop's shape
//! (step and bound), not the IR.

use crate::cost::{CostGraph, Picos};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use z3::ast::{Bool, Int, BV};
use z3::{Params, SatResult, Solver};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum SmtOutcome {
    /// `cost > bound` is unsat and `cost = bound` is sat.
    Confirmed,
    /// Z3 found a path costing more than the bound (a verifier bug).
    Exceeded { cost_ps: u64 },
    /// No path attains the bound (the bound is loose: also a verifier bug).
    NotAttained,
    /// Z3 gave up (e.g. its time limit): the bound stands on dynamic programming alone.
    Unknown { reason: String },
}

/// Nanoseconds this process has spent in Z3, for the verification benchmark's "Z3 share".
static TIME_IN_Z3_NS: AtomicU64 = AtomicU64::new(0);

/// Total time spent in Z3 so far by this process.
pub fn time_in_z3() -> Duration {
    Duration::from_nanos(TIME_IN_Z3_NS.load(Ordering::Relaxed))
}

/// Adds the time from its creation to its drop to [`TIME_IN_Z3_NS`].
struct Z3Timer(Instant);

impl Drop for Z3Timer {
    fn drop(&mut self) {
        TIME_IN_Z3_NS.fetch_add(self.0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// How long Z3 may take to confirm one bound. The bound itself comes from exact dynamic
/// programming over the DAG; Z3 is a second, independent opinion. Past this time the
/// verdict stays the DP bound, reported as not confirmed by Z3, so `ppisc check` stays
/// interactive on branchy probes.
pub const TIMEOUT_MS: u32 = 1_000;

/// Asks Z3 whether `bound` (picoseconds, trigger included) is the exact maximum path cost.
pub fn confirm_bound(graph: &CostGraph, bound: Picos) -> SmtOutcome {
    let _timer = Z3Timer(Instant::now());
    let solver = Solver::new();
    let mut params = Params::new();
    params.set_u32("timeout", TIMEOUT_MS);
    solver.set_params(&params);
    let n = graph.block_costs.len();
    let visited: Vec<Bool> = (0..n).map(|b| Bool::new_const(format!("visit_bb{b}"))).collect();
    let taken: Vec<Bool> =
        graph.edges.iter().enumerate().map(|(k, (a, b))| Bool::new_const(format!("edge{k}_bb{a}_bb{b}"))).collect();
    let one = Int::from_u64(1);
    let zero = Int::from_u64(0);
    let count = |edges: &[&Bool]| -> Int {
        let terms: Vec<Int> = edges.iter().map(|e| e.ite(&one, &zero)).collect();
        if terms.is_empty() {
            Int::from_u64(0)
        } else {
            Int::add(&terms)
        }
    };
    solver.assert(&visited[graph.entry]);
    for (b, visit) in visited.iter().enumerate() {
        if graph.block_costs[b].is_none() {
            solver.assert(visit.not());
            continue;
        }
        let out: Vec<&Bool> = graph.edges.iter().zip(&taken).filter(|((a, _), _)| *a == b).map(|(_, t)| t).collect();
        let inc: Vec<&Bool> = graph.edges.iter().zip(&taken).filter(|((_, s), _)| *s == b).map(|(_, t)| t).collect();
        let visit_count = visit.ite(&one, &zero);
        // A visited block leaves by exactly one edge, unless it is an exit.
        if !out.is_empty() {
            solver.assert(count(&out).eq(&visit_count));
        }
        // Every visited block but the entry is entered by exactly one edge.
        if b != graph.entry {
            solver.assert(count(&inc).eq(&visit_count));
        } else if !inc.is_empty() {
            solver.assert(count(&inc).eq(&zero));
        }
    }
    let mut terms: Vec<Int> = vec![Int::from_u64(graph.trigger)];
    for (b, cost) in graph.block_costs.iter().enumerate() {
        if let Some(c) = cost {
            terms.push(visited[b].ite(&Int::from_u64(*c), &zero));
        }
    }
    let cost = Int::add(&terms);
    let bound_int = Int::from_u64(bound);

    solver.push();
    solver.assert(cost.gt(&bound_int));
    let heavier = solver.check();
    let heavier_cost =
        solver.get_model().and_then(|m| m.eval(&cost, true)).and_then(|c| c.as_u64()).unwrap_or(u64::MAX);
    solver.pop(1);
    match heavier {
        SatResult::Unsat => {}
        SatResult::Sat => return SmtOutcome::Exceeded { cost_ps: heavier_cost },
        SatResult::Unknown => return unknown(&solver),
    }
    solver.push();
    solver.assert(cost.eq(&bound_int));
    let attained = solver.check();
    solver.pop(1);
    match attained {
        SatResult::Sat => SmtOutcome::Confirmed,
        SatResult::Unsat => SmtOutcome::NotAttained,
        SatResult::Unknown => unknown(&solver),
    }
}

/// What Z3 said about a loop's ranking function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RankingOutcome {
    /// On every iteration the ranking decreases by exactly the step, or to 0 (the last one).
    Proven,
    /// An iteration where it does not: the counter wraps around past the bound.
    Refuted {
        counter: u64,
        bound: u64,
    },
    Unknown {
        reason: String,
    },
}

/// Proves, over 64-bit machine integers, that `rank(c, n) = if c < n { n - c } else { 0 }`
/// is a ranking function of the loop `while c < n { ..; c += step }` whose bound `n` is at
/// most `bound_hi` (unsigned): for every `c < n`, `rank(c + step, n) < rank(c, n)`, and the
/// drop is exactly `step` unless the new rank is 0. Hence the loop runs at most
/// `ceil((n - c0) / step)` times from a start `c0`. Wrap-around is what could break it: with
/// `step` > 1 and `n` near 2^64 the counter may overflow back below `n`, which Z3 finds.
pub fn prove_ranking(step: u64, bound_hi: u64) -> RankingOutcome {
    let _timer = Z3Timer(Instant::now());
    let solver = Solver::new();
    let counter = BV::new_const("counter", 64);
    let bound = BV::new_const("bound", 64);
    let next = counter.bvadd(BV::from_u64(step, 64));
    let rank = |c: &BV| c.bvult(&bound).ite(&bound.bvsub(c), &BV::from_u64(0, 64));
    let (before, after) = (rank(&counter), rank(&next));
    let zero = BV::from_u64(0, 64);
    let decreases = after.bvult(&before);
    let by_step = Bool::or(&[after.eq(&zero), before.bvsub(&after).eq(BV::from_u64(step, 64))]);
    solver.assert(counter.bvult(&bound));
    solver.assert(bound.bvule(BV::from_u64(bound_hi, 64)));
    solver.assert(Bool::and(&[decreases, by_step]).not());
    match solver.check() {
        SatResult::Unsat => RankingOutcome::Proven,
        SatResult::Sat => {
            // Z3's model depends on the queries run before in this thread's context: report
            // the canonical witness (the largest bound, the counter just below it) when it is
            // one, so that the same loop always gets the same message.
            if let Some(last) = bound_hi.checked_sub(1) {
                solver.push();
                solver.assert(bound.eq(BV::from_u64(bound_hi, 64)));
                solver.assert(counter.eq(BV::from_u64(last, 64)));
                if solver.check() == SatResult::Sat {
                    return RankingOutcome::Refuted { counter: last, bound: bound_hi };
                }
                solver.pop(1);
                solver.check();
            }
            let model = solver.get_model();
            let value = |v: &BV| model.as_ref().and_then(|m| m.eval(v, true)).and_then(|x| x.as_u64()).unwrap_or(0);
            RankingOutcome::Refuted { counter: value(&counter), bound: value(&bound) }
        }
        SatResult::Unknown => {
            RankingOutcome::Unknown { reason: solver.get_reason_unknown().unwrap_or_else(|| "no reason given".into()) }
        }
    }
}

fn unknown(solver: &Solver) -> SmtOutcome {
    SmtOutcome::Unknown { reason: solver.get_reason_unknown().unwrap_or_else(|| "no reason given".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bb0 branches to a light arm bb1 (10) or a heavy arm bb2 (70), both join at bb3.
    fn diamond() -> CostGraph {
        CostGraph {
            entry: 0,
            block_costs: vec![Some(5), Some(10), Some(70), Some(3)],
            edges: vec![(0, 1), (0, 2), (1, 3), (2, 3)],
            trigger: 100,
        }
    }

    #[test]
    fn the_diamond_bound_is_the_heavier_arm_and_z3_proves_it() {
        let graph = diamond();
        let (path, bound) = graph.worst_path().unwrap();
        assert_eq!(path, vec![0, 2, 3]);
        assert_eq!(bound, 100 + 5 + 70 + 3);
        assert_eq!(confirm_bound(&graph, bound), SmtOutcome::Confirmed);
    }

    #[test]
    fn z3_rejects_a_bound_below_the_heavier_arm_and_one_no_path_attains() {
        let graph = diamond();
        // The light arm's cost: Z3 finds the heavy path above it.
        assert_eq!(confirm_bound(&graph, 100 + 5 + 10 + 3), SmtOutcome::Exceeded { cost_ps: 178 });
        // Above every path: nothing is heavier, but nothing attains it either.
        assert_eq!(confirm_bound(&graph, 500), SmtOutcome::NotAttained);
    }

    #[test]
    fn a_unit_step_counter_ranks_down_for_any_bound() {
        assert_eq!(prove_ranking(1, u64::MAX), RankingOutcome::Proven);
    }

    #[test]
    fn a_large_step_may_wrap_unless_the_bound_is_small() {
        match prove_ranking(4, u64::MAX) {
            RankingOutcome::Refuted { counter, bound } => {
                assert!(counter < bound && counter.checked_add(4).is_none_or(|next| next >= bound), "{counter} {bound}")
            }
            other => panic!("expected a wrap-around counterexample, got {other:?}"),
        }
        assert_eq!(prove_ranking(4, 1 << 20), RankingOutcome::Proven);
    }

    #[test]
    fn unreachable_blocks_do_not_count() {
        let mut graph = diamond();
        graph.block_costs[2] = None;
        graph.edges.retain(|&(a, b)| a != 2 && b != 2);
        let (_, bound) = graph.worst_path().unwrap();
        assert_eq!(bound, 118);
        assert_eq!(confirm_bound(&graph, bound), SmtOutcome::Confirmed);
    }
}
