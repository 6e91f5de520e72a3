//! Register allocation: liveness over the (non-SSA) CFG, one live interval per value over the
//! block layout, then linear scan over r1-r4 / r6-r9 with whole-interval spilling.
//!
//! Values are the IR's vregs plus one extra value for the context pointer (r1 at entry), so
//! the ctx is kept alive exactly as long as a `LoadCtx` needs it and competes for registers
//! like anything else.
//!
//! Register roles (see `super` for the code patterns that rely on them):
//! - r0 and r5 are never allocated: they are the emitter's scratch registers (r0 also carries
//!   helper results). Helper arguments come from constants, slot addresses and map
//!   references, and in one case (the pointer of a string read) from a value, which the
//!   emitter moves to its argument register first; so r1-r5 can be clobbered freely when
//!   setting up a call.
//! - r1-r4 hold values whose interval contains no helper call (calls clobber r0-r5).
//! - r6-r9 hold any value, and are the only registers for values live across a call.
//! - Values that find no register live in their own 8-byte stack slot for their whole life.

use super::insn::{R1, R2, R3, R4, R6, R7, R8, R9};
use ppis_ir::{Block, Function, Op, Vreg};

/// Where a value lives for its whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Reg(u8),
    /// The n-th 8-byte spill slot (the emitter turns it into a frame offset).
    Spill(u32),
}

/// The allocator's answer for one function.
pub struct Allocation {
    /// Location of each value, indexed by vreg number, then the ctx value last; `None` for
    /// values that never occur in reachable code.
    pub locations: Vec<Option<Location>>,
    /// Vregs that are read on some path before any write (live into the entry block): the
    /// prologue zeroes them because the kernel rejects reads of uninitialised registers/stack.
    pub zero_at_entry: Vec<Vreg>,
    /// Number of spill slots used.
    pub spill_slots: u32,
}

impl Allocation {
    /// Where `v` lives. The emitter only asks about vregs that occur in reachable code, and
    /// every such vreg has an interval and so a location; the fallback is never used.
    pub fn vreg(&self, v: Vreg) -> Location {
        self.locations.get(v.0 as usize).copied().flatten().unwrap_or(Location::Reg(R6))
    }

    /// The ctx value's location, if any `LoadCtx` needs it.
    pub fn ctx(&self) -> Option<Location> {
        *self.locations.last().expect("locations has the ctx entry")
    }
}

/// A fixed-size set of value indices.
#[derive(Clone, PartialEq, Eq)]
struct ValueSet {
    words: Vec<u64>,
}

impl ValueSet {
    fn new(len: usize) -> ValueSet {
        ValueSet { words: vec![0; len.div_ceil(64)] }
    }
    fn insert(&mut self, v: usize) {
        self.words[v / 64] |= 1 << (v % 64);
    }
    fn contains(&self, v: usize) -> bool {
        self.words[v / 64] & (1 << (v % 64)) != 0
    }
    fn union_with(&mut self, other: &ValueSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= *b;
        }
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(w, bits)| (0..64).filter(move |i| bits & (1 << i) != 0).map(move |i| w * 64 + i))
    }
}

/// The values an op reads, with `LoadCtx` reading the ctx value.
fn op_uses(op: &Op, ctx_value: usize) -> Vec<usize> {
    let mut uses: Vec<usize> = op.uses().iter().map(|v| v.0 as usize).collect();
    if matches!(op, Op::LoadCtx { .. }) {
        uses.push(ctx_value);
    }
    // `bpf_get_stackid` takes the ctx as its first argument.
    if matches!(op, Op::Call { helper: ppis_ir::Helper::GetStackId { .. }, .. }) {
        uses.push(ctx_value);
    }
    uses
}

/// True for ops that call a kernel helper (and so clobber r0-r5).
pub fn op_calls_helper(op: &Op) -> bool {
    matches!(op, Op::Call { .. } | Op::MapLookup { .. } | Op::MapUpdate { .. } | Op::MapDelete { .. })
}

struct Interval {
    value: usize,
    start: u32,
    end: u32,
    crosses_call: bool,
}

/// Allocates every value of `func`, whose blocks will be emitted in `layout` order (all
/// reachable blocks, entry first). The caller has checked that every vreg index is in range.
pub fn allocate(func: &Function, layout: &[Block]) -> Allocation {
    let value_count = func.vregs.len() + 1;
    let ctx_value = func.vregs.len();
    let mut layout_index = vec![usize::MAX; func.cfg.node_count()];
    for (i, b) in layout.iter().enumerate() {
        layout_index[b.index()] = i;
    }

    // Per-block upward-exposed uses and definitions.
    let mut gen = vec![ValueSet::new(value_count); layout.len()];
    let mut kill = vec![ValueSet::new(value_count); layout.len()];
    for (i, &b) in layout.iter().enumerate() {
        let bb = &func.cfg[b];
        for inst in &bb.insts {
            for u in op_uses(&inst.op, ctx_value) {
                if !kill[i].contains(u) {
                    gen[i].insert(u);
                }
            }
            if let Some(d) = inst.op.def() {
                kill[i].insert(d.0 as usize);
            }
        }
        for u in bb.term.uses() {
            if !kill[i].contains(u.0 as usize) {
                gen[i].insert(u.0 as usize);
            }
        }
    }

    // Backward dataflow to a fixpoint (a value may be assigned on several paths).
    let mut live_in = gen.clone();
    let mut live_out = vec![ValueSet::new(value_count); layout.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..layout.len()).rev() {
            let mut out = ValueSet::new(value_count);
            for succ in func.cfg[layout[i]].term.successors() {
                if let Some(&s) = layout_index.get(succ.index()).filter(|s| **s != usize::MAX) {
                    out.union_with(&live_in[s]);
                }
            }
            let mut inn = gen[i].clone();
            for v in out.iter() {
                if !kill[i].contains(v) {
                    inn.insert(v);
                }
            }
            if out != live_out[i] || inn != live_in[i] {
                live_out[i] = out;
                live_in[i] = inn;
                changed = true;
            }
        }
    }

    // Linear positions: 0 is the prologue (ctx arrives, uninitialised vregs are zeroed), then
    // every instruction and terminator in layout order.
    let mut start = vec![u32::MAX; value_count];
    let mut end = vec![0u32; value_count];
    let mut touch = |v: usize, pos: u32| {
        start[v] = start[v].min(pos);
        end[v] = end[v].max(pos);
    };
    let mut call_positions = Vec::new();
    let mut pos = 0u32;
    if let Some(entry_live) = live_in.first() {
        for v in entry_live.iter() {
            touch(v, 0);
        }
    }
    for (i, &b) in layout.iter().enumerate() {
        let bb = &func.cfg[b];
        let block_start = pos + 1;
        for v in live_in[i].iter() {
            touch(v, block_start);
        }
        for inst in &bb.insts {
            pos += 1;
            for u in op_uses(&inst.op, ctx_value) {
                touch(u, pos);
            }
            if let Some(d) = inst.op.def() {
                touch(d.0 as usize, pos);
            }
            if op_calls_helper(&inst.op) {
                call_positions.push(pos);
            }
        }
        pos += 1;
        for u in bb.term.uses() {
            touch(u.0 as usize, pos);
        }
        for v in live_out[i].iter() {
            touch(v, pos);
        }
    }

    let mut intervals: Vec<Interval> = (0..value_count)
        .filter(|v| start[*v] != u32::MAX)
        .map(|v| Interval {
            value: v,
            start: start[v],
            end: end[v],
            crosses_call: call_positions.iter().any(|p| start[v] < *p && *p < end[v]),
        })
        .collect();
    // The ctx goes first among the values born in the prologue so that it can keep r1.
    intervals.sort_by_key(|iv| (iv.start, iv.value != ctx_value, iv.value));

    let zero_at_entry = live_in
        .first()
        .map(|s| s.iter().filter(|v| *v != ctx_value).map(|v| Vreg(v as u32)).collect())
        .unwrap_or_default();
    let (locations, spill_slots) = linear_scan(&intervals, value_count);
    Allocation { locations, zero_at_entry, spill_slots }
}

const CALLER_SAVED: [u8; 4] = [R1, R2, R3, R4];
const CALLEE_SAVED: [u8; 4] = [R6, R7, R8, R9];

/// Registers an interval may use, in order of preference: values that do not cross a call
/// take caller-saved registers first to leave r6-r9 for those that do.
fn allowed_registers(iv: &Interval) -> Vec<u8> {
    if iv.crosses_call {
        CALLEE_SAVED.to_vec()
    } else {
        CALLER_SAVED.iter().chain(&CALLEE_SAVED).copied().collect()
    }
}

/// Poletto-Sarkar linear scan. An interval ending at position p frees its register for an
/// interval starting at p (an instruction may write its result over its last operand; the
/// emitter handles that overlap). When no allowed register is free, the interval (among the
/// current one and the active ones holding an allowed register) that ends last is spilled.
fn linear_scan(intervals: &[Interval], value_count: usize) -> (Vec<Option<Location>>, u32) {
    let mut locations: Vec<Option<Location>> = vec![None; value_count];
    let mut spill_slots = 0u32;
    // (end, value, register) of intervals currently holding a register.
    let mut active: Vec<(u32, usize, u8)> = Vec::new();
    for iv in intervals {
        active.retain(|(end, _, _)| *end > iv.start);
        let allowed = allowed_registers(iv);
        let free = allowed.iter().copied().find(|r| !active.iter().any(|(_, _, ar)| ar == r));
        if let Some(reg) = free {
            locations[iv.value] = Some(Location::Reg(reg));
            active.push((iv.end, iv.value, reg));
            continue;
        }
        let victim = active
            .iter()
            .enumerate()
            .filter(|(_, (_, _, reg))| allowed.contains(reg))
            .max_by_key(|(_, (end, value, _))| (*end, *value))
            .map(|(i, entry)| (i, *entry));
        match victim {
            Some((i, (victim_end, victim_value, reg))) if victim_end > iv.end => {
                locations[victim_value] = Some(Location::Spill(spill_slots));
                spill_slots += 1;
                active.remove(i);
                locations[iv.value] = Some(Location::Reg(reg));
                active.push((iv.end, iv.value, reg));
            }
            _ => {
                locations[iv.value] = Some(Location::Spill(spill_slots));
                spill_slots += 1;
            }
        }
    }
    (locations, spill_slots)
}
