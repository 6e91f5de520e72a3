//! Null checks: a map value pointer may be dereferenced only where every path to the
//! access has taken the non-null edge of a `BranchNull` on it since it was last assigned.
//!
//! A forward must-analysis: the set of registers proven non-null, intersected at joins.

use ppis_ir::{Block, Function, Op, Terminator, Vreg};
use ppis_lang::Diagnostic;
use std::collections::BTreeSet;

type NonNull = BTreeSet<Vreg>;

pub fn check(func: &Function) -> Vec<Diagnostic> {
    let order = func.reverse_postorder();
    let n = func.cfg.node_count();
    // `None` = not yet reached (top); entry starts with nothing proven.
    let mut entry_sets: Vec<Option<NonNull>> = vec![None; n];
    entry_sets[func.entry.index()] = Some(NonNull::new());
    // Acyclic CFGs converge in one pass over RPO; iterate anyway so that a cyclic CFG
    // (already rejected by the termination check) still gets a sound answer.
    let mut changed = true;
    while changed {
        changed = false;
        for &b in &order {
            let Some(mut set) = entry_sets[b.index()].clone() else { continue };
            for inst in &func.cfg[b].insts {
                transfer(&inst.op, &mut set);
            }
            for (succ, out) in edge_sets(&func.cfg[b].term, &set) {
                let merged = match &entry_sets[succ.index()] {
                    None => out,
                    Some(prev) => prev.intersection(&out).copied().collect(),
                };
                if entry_sets[succ.index()].as_ref() != Some(&merged) {
                    entry_sets[succ.index()] = Some(merged);
                    changed = true;
                }
            }
        }
    }
    let mut diags = Vec::new();
    for &b in &order {
        let Some(mut set) = entry_sets[b.index()].clone() else { continue };
        for inst in &func.cfg[b].insts {
            if let Op::LoadPtr { ptr, .. } | Op::StorePtr { ptr, .. } = inst.op {
                if !set.contains(&ptr) {
                    diags.push(
                        Diagnostic::error("E0401", "map value used without checking that the key exists", inst.span)
                            .label("this access may dereference a null map value")
                            .with_help("use `if let v = m[k] { .. }` or `m[k] ?? default`"),
                    );
                }
            }
            transfer(&inst.op, &mut set);
        }
    }
    diags
}

/// An assignment kills what was proven about the register.
fn transfer(op: &Op, set: &mut NonNull) {
    if let Some(def) = op.def() {
        set.remove(&def);
    }
}

fn edge_sets(term: &Terminator, set: &NonNull) -> Vec<(Block, NonNull)> {
    match *term {
        Terminator::BranchNull { ptr, is_null, not_null } => {
            let mut proven = set.clone();
            proven.insert(ptr);
            let mut unproven = set.clone();
            unproven.remove(&ptr);
            vec![(is_null, unproven), (not_null, proven)]
        }
        _ => term.successors().into_iter().map(|s| (s, set.clone())).collect(),
    }
}
