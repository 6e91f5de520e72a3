//! Termination: every cycle of the CFG must be a bounded loop, so that every execution ends
//! after finitely many blocks, and after few enough for the kernel's verifier.
//!
//! A cycle is accepted only as a natural loop of the shape `for i in A..B` lowers to (see
//! docs/ir.md): one back edge `latch -> header` whose header dominates the latch; the header
//! ends in `br.ult vI, B` with one successor inside the loop and one outside; inside the loop
//! the counter `vI` is written exactly once, by `vI = add vI, STEP` (STEP > 0) in the latch,
//! and the bound `B` (a constant or a register) is not written at all. Then:
//! - Z3 proves `rank = if vI < B { B - vI } else { 0 }` a ranking function on 64-bit
//!   machine integers: each iteration lowers it by exactly STEP or to 0 ([`prove_ranking`]);
//! - the abstract interpretation bounds `B` above and the counter's start below at the
//!   header, so the loop runs at most `ceil((B_hi - start_lo) / STEP)` times.
//!
//! Any other cycle, a bound that is not proven (a `B` from `arg0` without a guard) or one
//! too large for the kernel to verify gives E0400.

use crate::absint::Analysis;
use crate::smt::{prove_ranking, RankingOutcome};
use ppis_ir::{AluOp, Block, Cond, Function, Op, Operand, Terminator};
use ppis_lang::Diagnostic;
use serde::Serialize;
use std::collections::BTreeSet;

/// Most iterations a loop may be proven to run: the kernel verifier walks every iteration of
/// a bounded loop, so a larger bound would be rejected at load time (or take long to check).
pub const MAX_LOOP_TRIPS: u64 = 1 << 16;

/// A proven-bounded natural loop.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BoundedLoop {
    pub header: usize,
    pub latch: usize,
    /// Every block of the loop, the header included, in index order.
    pub blocks: Vec<usize>,
    pub counter: u32,
    pub step: u64,
    /// Lower bound of the counter's first value.
    pub start_lo: u64,
    /// Upper bound of the loop bound `B`.
    pub bound_hi: u64,
    /// Most times the body runs.
    pub trips: u64,
}

/// The edges `(from, to)` that close a cycle, found by depth-first search from the entry.
pub fn back_edges(func: &Function) -> Vec<(Block, Block)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark = vec![Mark::New; func.cfg.node_count()];
    let mut found = Vec::new();
    // Iterative DFS: (block, index of the next successor to visit).
    let mut stack = vec![(func.entry, 0usize)];
    mark[func.entry.index()] = Mark::OnStack;
    while let Some((block, next)) = stack.last_mut() {
        let succs = func.cfg[*block].term.successors();
        if let Some(&succ) = succs.get(*next) {
            *next += 1;
            let from = *block;
            match mark[succ.index()] {
                Mark::New => {
                    mark[succ.index()] = Mark::OnStack;
                    stack.push((succ, 0));
                }
                Mark::OnStack => found.push((from, succ)),
                Mark::Done => {}
            }
        } else {
            mark[block.index()] = Mark::Done;
            stack.pop();
        }
    }
    found
}

/// Every cycle as a bounded loop, or the E0400 diagnostics of those that are not.
pub fn loops(func: &Function, analysis: &Analysis) -> (Vec<BoundedLoop>, Vec<Diagnostic>) {
    let edges = back_edges(func);
    let mut found = Vec::new();
    let mut diags = Vec::new();
    if edges.is_empty() {
        return (found, diags);
    }
    let dominators = petgraph::algo::dominators::simple_fast(&func.cfg, func.entry);
    for (k, &(latch, header)) in edges.iter().enumerate() {
        let dominated = dominators.dominators(latch).is_some_and(|mut d| d.any(|b| b == header));
        if !dominated {
            diags.push(cycle_diagnostic(func, latch, "this loop can be entered in more than one place"));
            continue;
        }
        if edges.iter().enumerate().any(|(j, &(_, h))| h == header && j != k) {
            if edges.iter().position(|&(_, h)| h == header) == Some(k) {
                diags.push(cycle_diagnostic(func, latch, "this loop jumps back to its start from more than one place"));
            }
            continue;
        }
        match bounded_loop(func, analysis, header, latch) {
            Ok(found_loop) => found.push(found_loop),
            Err(diagnostic) => diags.push(diagnostic),
        }
    }
    (found, diags)
}

/// The blocks of the natural loop of back edge `latch -> header`: the header and every block
/// that reaches the latch without passing through the header.
fn natural_loop(func: &Function, header: Block, latch: Block) -> BTreeSet<usize> {
    let mut blocks = BTreeSet::from([header.index()]);
    let mut work = vec![latch];
    while let Some(b) = work.pop() {
        if blocks.insert(b.index()) {
            work.extend(func.cfg.neighbors_directed(b, petgraph::Direction::Incoming));
        }
    }
    blocks
}

fn bounded_loop(func: &Function, analysis: &Analysis, header: Block, latch: Block) -> Result<BoundedLoop, Diagnostic> {
    let blocks = natural_loop(func, header, latch);
    let inside = |b: Block| blocks.contains(&b.index());
    let header_span = func.cfg[header].term_span;
    let reject = |why: &str| cycle_diagnostic(func, latch, why);
    let Terminator::Branch { cond, lhs, rhs, then, otherwise } = func.cfg[header].term else {
        return Err(reject("this loop has no exit test at its start"));
    };
    let cond = match (inside(then), inside(otherwise)) {
        (true, false) => cond,
        (false, true) => cond.negate(),
        _ => return Err(reject("this loop's test does not choose between staying and leaving")),
    };
    if cond != Cond::Ult {
        return Err(reject("this loop's test is not `counter < bound` (unsigned)"));
    }
    let counter = lhs;
    if rhs == Operand::Reg(counter) {
        return Err(reject("this loop compares its counter with itself"));
    }
    // Every write inside the loop, to the counter or the bound.
    let mut steps = Vec::new();
    for &b in &blocks {
        let block = Block::new(b);
        for inst in &func.cfg[block].insts {
            let Some(dst) = inst.op.def() else { continue };
            if Operand::Reg(dst) == rhs {
                return Err(reject(&format!("the loop bound v{} changes inside the loop", dst.0)));
            }
            if dst == counter {
                steps.push((block, inst.op.clone()));
            }
        }
    }
    let step = match steps.as_slice() {
        [(b, Op::Alu { op: AluOp::Add, dst, lhs, rhs: Operand::Imm(step) })]
            if *b == latch && *dst == counter && *lhs == counter && *step > 0 =>
        {
            *step as u64
        }
        [] => return Err(reject(&format!("the loop counter v{} never changes, so the loop may not end", counter.0))),
        _ => {
            return Err(reject(&format!(
                "the loop counter v{} is changed other than by one constant step at the end of the body",
                counter.0
            )))
        }
    };
    // The counter's lowest value when the loop is entered (the header's entry interval also
    // holds the later, larger values). When the step comes before the test in the header
    // itself, the first test sees `start + step`, which is no smaller unless it wraps.
    let entry = analysis.entry_scalar(header, counter);
    let start_lo = match entry {
        Some(i) if latch != header || i.hi.checked_add(step).is_some() => i.lo,
        _ => 0,
    };
    let bound_hi = match rhs {
        Operand::Imm(bound) => bound as u64,
        Operand::Reg(bound) => analysis.entry_scalar(header, bound).map_or(u64::MAX, |i| i.hi),
    };
    match prove_ranking(step, bound_hi) {
        RankingOutcome::Proven => {}
        RankingOutcome::Refuted { counter: at, bound } => {
            return Err(reject(&format!(
                "Z3 found no ranking: with bound {bound}, counter {at} + {step} wraps around below the bound"
            )))
        }
        RankingOutcome::Unknown { reason } => return Err(reject(&format!("Z3 could not prove a ranking: {reason}"))),
    }
    let trips = bound_hi.saturating_sub(start_lo).div_ceil(step);
    if trips > MAX_LOOP_TRIPS {
        let bound_text = match rhs {
            Operand::Reg(r) => format!("its bound v{} may be as large as {bound_hi}", r.0),
            Operand::Imm(_) => format!("its bound is {bound_hi}"),
        };
        return Err(Diagnostic::error(
            "E0400",
            format!(
                "this loop may run {trips} times: {bound_text}, more than the {MAX_LOOP_TRIPS} the kernel can check"
            ),
            header_span,
        )
        .label("loop bound not proven small")
        .with_help("bound it with a constant (`for i in 0..64`) or clamp it first: `if n > 64 { n = 64; }`"));
    }
    Ok(BoundedLoop {
        header: header.index(),
        latch: latch.index(),
        blocks: blocks.into_iter().collect(),
        counter: counter.0,
        step,
        start_lo,
        bound_hi,
        trips,
    })
}

fn cycle_diagnostic(func: &Function, from: Block, why: &str) -> Diagnostic {
    Diagnostic::error(
        "E0400",
        format!("this control flow can repeat, so the probe may not terminate: {why}"),
        func.cfg[from].term_span,
    )
    .label("jumps back to code that already ran")
    .with_help("probes may only loop as `for i in A..B` with a bound the verifier can prove")
}
