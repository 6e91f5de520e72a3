//! Z3 confirmation of a cost bound. The acyclic CFG (feasible edges only) becomes a set of
//! boolean edge and block variables with flow constraints, so that every model is exactly
//! one entry-to-exit path; the cost is the sum of the visited blocks' costs. The bound is
//! confirmed when `cost > bound` is unsatisfiable (no path is heavier) and `cost = bound`
//! is satisfiable (some path attains it, so the bound is tight for this abstraction).
//!
//! Boundary: the only module that talks to Z3; it sees a [`CostGraph`], not the IR.

use crate::cost::{CostGraph, Picos};
use serde::Serialize;
use z3::ast::{Bool, Int};
use z3::{SatResult, Solver};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum SmtOutcome {
    /// `cost > bound` is unsat and `cost = bound` is sat.
    Confirmed,
    /// Z3 found a path costing more than the bound (a verifier bug).
    Exceeded { cost_ps: u64 },
    /// No path attains the bound (the bound is loose: also a verifier bug).
    NotAttained,
    /// Z3 gave up.
    Unknown { reason: String },
}

/// Asks Z3 whether `bound` (picoseconds, trigger included) is the exact maximum path cost.
pub fn confirm_bound(graph: &CostGraph, bound: Picos) -> SmtOutcome {
    let solver = Solver::new();
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
    fn unreachable_blocks_do_not_count() {
        let mut graph = diamond();
        graph.block_costs[2] = None;
        graph.edges.retain(|&(a, b)| a != 2 && b != 2);
        let (_, bound) = graph.worst_path().unwrap();
        assert_eq!(bound, 118);
        assert_eq!(confirm_bound(&graph, bound), SmtOutcome::Confirmed);
    }
}
