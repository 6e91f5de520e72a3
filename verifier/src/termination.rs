//! Termination: the CFG must have no cycle, so every execution ends after finitely many
//! blocks. (Bounded loops, proven by a ranking function, come with the loop syntax.)

use ppis_ir::{Block, Function};
use ppis_lang::Diagnostic;

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

pub fn cycle_diagnostic(func: &Function, from: Block) -> Diagnostic {
    Diagnostic::error("E0400", "this control flow can repeat, so the probe may not terminate", func.cfg[from].term_span)
        .label("jumps back to code that already ran")
        .with_help("probes may not loop without a proven bound; remove the cycle")
}
