//! Well-formedness: every register, slot, map and block an instruction names exists, widths
//! are 1, 2, 4 or 8 bytes, and map value pointers are used only as pointers. The other
//! analyses assume this, so a function that fails it is not analysed further (E0412).

use ppis_ir::{Function, Helper, Map, Op, Operand, Span, Terminator, Vreg, VregType};
use ppis_lang::Diagnostic;

/// Largest total slot size analysed byte by byte; far above the 512-byte stack (E0403)
/// but small enough that absurd sizes in malformed IR cannot exhaust memory.
const MAX_ANALYSED_STACK: u64 = 1 << 16;

pub fn check(func: &Function, maps: &[Map]) -> Vec<Diagnostic> {
    let mut problems: Vec<(Span, String)> = Vec::new();
    let nodes = func.cfg.node_count();
    if func.entry.index() >= nodes {
        problems.push((func.span, "the entry block does not exist".into()));
    }
    if func.slots.iter().map(|s| *s as u64).sum::<u64>() > MAX_ANALYSED_STACK {
        problems.push((func.span, format!("stack slots total more than {MAX_ANALYSED_STACK} bytes")));
    }
    let is_ptr = |r: Vreg| matches!(func.vregs.get(r.0 as usize), Some(VregType::MapValue(_)));
    for block in func.cfg.node_weights() {
        for inst in &block.insts {
            let mut say = |m: String| problems.push((inst.span, m));
            let op = &inst.op;
            for r in op.uses().into_iter().chain(op.def()) {
                if r.0 as usize >= func.vregs.len() {
                    say(format!("register v{} is not declared", r.0));
                }
            }
            for s in slots_of(op) {
                if s as usize >= func.slots.len() {
                    say(format!("slot s{s} is not declared"));
                }
            }
            if let Op::MapLookup { map, .. } | Op::MapUpdate { map, .. } | Op::MapDelete { map, .. } = *op {
                if map >= maps.len() {
                    say(format!("map m{map} is not declared"));
                }
            }
            if let Op::Call { helper: Helper::RingbufOutput { map, .. }, .. } = *op {
                if map >= maps.len() {
                    say(format!("map m{map} is not declared"));
                }
            }
            if let Op::LoadCtx { width, .. }
            | Op::LoadSlot { width, .. }
            | Op::StoreSlot { width, .. }
            | Op::LoadPtr { width, .. }
            | Op::StorePtr { width, .. }
            | Op::Extend { width, .. } = *op
            {
                if !matches!(width, 1 | 2 | 4 | 8) {
                    say(format!("access width {width} is not 1, 2, 4 or 8 bytes"));
                }
            }
            // Pointer discipline: only lookups define pointers, only derefs and null
            // branches use them (a `Mov` may copy one pointer to another).
            match *op {
                Op::MapLookup { dst, map, .. } => {
                    if func.vregs.get(dst.0 as usize) != Some(&VregType::MapValue(map)) {
                        say(format!("v{} receives a lookup of map m{map} but is not typed `*m{map}?`", dst.0));
                    }
                }
                Op::LoadPtr { ptr, .. } | Op::StorePtr { ptr, .. } if !is_ptr(ptr) => {
                    say(format!("v{} is dereferenced but is not a map value pointer", ptr.0));
                }
                Op::Mov { dst, src: Operand::Reg(src) } => {
                    if func.vregs.get(dst.0 as usize) != func.vregs.get(src.0 as usize) {
                        say(format!("v{} and v{} have different types", dst.0, src.0));
                    }
                }
                _ => {
                    let scalar_uses = match *op {
                        Op::LoadPtr { .. } => vec![],
                        Op::StorePtr { src, .. } => match src {
                            Operand::Reg(r) => vec![r],
                            Operand::Imm(_) => vec![],
                        },
                        _ => op.uses(),
                    };
                    for r in scalar_uses.into_iter().chain(op.def().filter(|_| !matches!(op, Op::MapLookup { .. }))) {
                        if is_ptr(r) {
                            say(format!("map value pointer v{} used as a number", r.0));
                        }
                    }
                }
            }
        }
        for succ in block.term.successors() {
            if succ.index() >= nodes {
                problems.push((block.term_span, format!("jump to bb{}, which does not exist", succ.index())));
            }
        }
        for r in block.term.uses() {
            if r.0 as usize >= func.vregs.len() {
                problems.push((block.term_span, format!("register v{} is not declared", r.0)));
            }
        }
        match block.term {
            Terminator::BranchNull { ptr, .. } if !is_ptr(ptr) => {
                problems.push((block.term_span, format!("v{} is null-checked but is not a map value pointer", ptr.0)))
            }
            Terminator::Branch { lhs, rhs, .. } => {
                let rhs = if let Operand::Reg(r) = rhs { Some(r) } else { None };
                if let Some(r) = std::iter::once(lhs).chain(rhs).find(|r| is_ptr(*r)) {
                    problems.push((block.term_span, format!("map value pointer v{} compared as a number", r.0)));
                }
            }
            _ => {}
        }
    }
    problems
        .into_iter()
        .map(|(span, message)| {
            Diagnostic::error("E0412", format!("malformed IR: {message}"), span)
                .label("the verifier cannot analyse this")
                .with_help("this is a compiler bug when the IR came from source; please report it")
        })
        .collect()
}

fn slots_of(op: &Op) -> Vec<u32> {
    match *op {
        Op::LoadSlot { slot, .. } | Op::StoreSlot { slot, .. } | Op::ZeroSlot { slot } => vec![slot.0],
        Op::MapLookup { key, .. } | Op::MapDelete { key, .. } => vec![key.0],
        Op::MapUpdate { key, value, .. } => vec![key.0, value.0],
        Op::Call { helper: Helper::GetCurrentComm { slot } | Helper::ProbeReadStr { slot, .. }, .. } => vec![slot.0],
        Op::Call { helper: Helper::RingbufOutput { slot, .. }, .. } => vec![slot.0],
        Op::Call { helper: Helper::ProbeRead { slot, .. }, .. } => vec![slot.0],
        _ => vec![],
    }
}
