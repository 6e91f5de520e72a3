//! Memory safety by abstract interpretation: a forward analysis over the CFG whose state
//! holds, per register, "maybe unassigned" or an unsigned interval or a pointer's nullness,
//! and per stack slot, which bytes are initialised on every path.
//!
//! It proves: no register is read before assignment (E0406); slot accesses stay inside the
//! slot (E0404); map value accesses stay inside the value and happen only through pointers
//! proven non-null (E0405, E0401); slot bytes read or handed to a map helper are initialised
//! (E0407); no division by a divisor that may be zero (E0408); every index of an array map
//! is below its length (E0414: the state also keeps, per slot, the interval of the integer
//! last stored at its start, which is the index when the slot is an array key); string reads
//! stay within their slot and the 256-byte string limit (E0404, E0415). It also tells the
//! cost analysis which branch edges can never be taken (their condition is infeasible), and
//! the termination check the intervals at loop headers.
//!
//! Joins intersect "initialised" and "non-null" facts and take the hull of intervals; after
//! a few visits a block's intervals are widened, so the analysis ends on loops. Widening
//! jumps to the next constant the function compares against (then to the end of the range),
//! so a loop counter `i < 16` stays within `0..=16` at the header instead of going to 2^64.

use crate::interval::{self, Interval};
use ppis_ir::{AluOp, Block, Cond, Function, Helper, Map, MapType, Op, Operand, Span, Terminator, Vreg, VregType};
use ppis_lang::Diagnostic;
use std::collections::BTreeSet;

/// Visits of a block before its entry intervals are widened.
const WIDEN_AFTER: u32 = 3;

/// The longest string a `probe_read_*_str` may read (the language's `str[N]` limit).
pub const MAX_STR_READ: u32 = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nullness {
    Null,
    NonNull,
    MaybeNull,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// Not assigned on at least one path.
    Unset,
    Scalar(Interval),
    Ptr(Nullness),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    regs: Vec<Value>,
    /// Per slot, per byte: initialised on every path here.
    init: Vec<Vec<bool>>,
    /// Per slot: the integer last stored at its offset 0 with a width of at least 4 bytes
    /// (TOP once anything else may have written those bytes). For an array key slot this is
    /// the index, before its truncation to the key's 4 bytes.
    index: Vec<Interval>,
}

impl State {
    fn join(&self, other: &State, widen: Option<&[u64]>) -> State {
        let merge = |x: Interval, y: Interval| match widen {
            Some(thresholds) => x.widen_to(x.hull(y), thresholds),
            None => x.hull(y),
        };
        let regs = self
            .regs
            .iter()
            .zip(&other.regs)
            .map(|(a, b)| match (*a, *b) {
                (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(merge(x, y)),
                (Value::Ptr(x), Value::Ptr(y)) => Value::Ptr(if x == y { x } else { Nullness::MaybeNull }),
                // Unset on either side, or (in malformed IR) a type clash: not assigned.
                _ => Value::Unset,
            })
            .collect();
        let init =
            self.init.iter().zip(&other.init).map(|(a, b)| a.iter().zip(b).map(|(x, y)| *x && *y).collect()).collect();
        let index = self.index.iter().zip(&other.index).map(|(x, y)| merge(*x, *y)).collect();
        State { regs, init, index }
    }
}

/// The constants the function compares against (and their neighbours), ascending: the
/// thresholds widening stops at.
fn widening_thresholds(func: &Function) -> Vec<u64> {
    let mut thresholds = BTreeSet::new();
    let mut add = |o: Operand| {
        if let Operand::Imm(c) = o {
            let c = c as u64;
            thresholds.extend([c.wrapping_sub(1), c, c.wrapping_add(1)]);
        }
    };
    for bb in func.cfg.node_weights() {
        for inst in &bb.insts {
            if let Op::SetCond { rhs, .. } = inst.op {
                add(rhs);
            }
        }
        if let Terminator::Branch { rhs, .. } = bb.term {
            add(rhs);
        }
    }
    thresholds.into_iter().collect()
}

/// What the analysis established about one function.
pub struct Analysis {
    /// Per block: reachable from the entry through feasible edges.
    pub reachable: Vec<bool>,
    /// Per block, per successor in [`Terminator::successors`] order: can the edge be taken?
    pub feasible: Vec<Vec<bool>>,
    pub diagnostics: Vec<Diagnostic>,
    /// Per block: the register values on entry (at the fixpoint), `None` when unreachable.
    entry_values: Vec<Option<Vec<Value>>>,
}

impl Analysis {
    /// The interval of scalar `r` on entry to `block`, if it holds one there.
    pub fn entry_scalar(&self, block: Block, r: Vreg) -> Option<Interval> {
        match self.entry_values.get(block.index())?.as_ref()?.get(r.0 as usize)? {
            Value::Scalar(i) => Some(*i),
            _ => None,
        }
    }
}

pub fn analyse(func: &Function, maps: &[Map]) -> Analysis {
    let n = func.cfg.node_count();
    let entry_state = State {
        regs: vec![Value::Unset; func.vregs.len()],
        init: func.slots.iter().map(|s| vec![false; *s as usize]).collect(),
        index: vec![Interval::TOP; func.slots.len()],
    };
    let thresholds = widening_thresholds(func);
    let order = func.reverse_postorder();
    let mut rank = vec![usize::MAX; n];
    for (i, b) in order.iter().enumerate() {
        rank[b.index()] = i;
    }
    let mut entries: Vec<Option<State>> = vec![None; n];
    let mut visits = vec![0u32; n];
    entries[func.entry.index()] = Some(entry_state);
    // Worklist ordered by reverse post-order, so acyclic CFGs need one pass.
    let mut work: BTreeSet<(usize, usize)> = BTreeSet::from([(rank[func.entry.index()], func.entry.index())]);
    let mut silent = Checker { func, maps, diags: None };
    while let Some((r, b)) = work.pop_first() {
        let _ = r;
        let Some(mut state) = entries[b].clone() else { continue };
        let block = Block::new(b);
        silent.block(block, &mut state);
        for (succ, out) in silent.edges(&func.cfg[block].term, &state) {
            let Some(out) = out else { continue };
            let s = succ.index();
            let merged = match &entries[s] {
                None => out,
                Some(prev) => {
                    visits[s] += 1;
                    prev.join(&out, (visits[s] > WIDEN_AFTER).then_some(thresholds.as_slice()))
                }
            };
            if entries[s].as_ref() != Some(&merged) {
                entries[s] = Some(merged);
                work.insert((rank[s], s));
            }
        }
    }
    // With the fixpoint in hand, one more pass reports each problem once.
    let mut reporting = Checker { func, maps, diags: Some(Vec::new()) };
    let mut feasible = vec![Vec::new(); n];
    let reachable: Vec<bool> = entries.iter().map(Option::is_some).collect();
    for &block in &order {
        let Some(mut state) = entries[block.index()].clone() else { continue };
        reporting.block(block, &mut state);
        feasible[block.index()] =
            reporting.edges(&func.cfg[block].term, &state).into_iter().map(|(_, out)| out.is_some()).collect();
    }
    let entry_values = entries.into_iter().map(|e| e.map(|state| state.regs)).collect();
    Analysis { reachable, feasible, diagnostics: reporting.diags.unwrap_or_default(), entry_values }
}

struct Checker<'a> {
    func: &'a Function,
    maps: &'a [Map],
    /// `None` while iterating to the fixpoint: reports only in the final pass.
    diags: Option<Vec<Diagnostic>>,
}

impl Checker<'_> {
    fn report(&mut self, d: impl FnOnce() -> Diagnostic) {
        if let Some(diags) = &mut self.diags {
            diags.push(d());
        }
    }

    fn block(&mut self, block: Block, state: &mut State) {
        for inst in &self.func.cfg[block].insts {
            self.inst(&inst.op, inst.span, state);
        }
        let bb = &self.func.cfg[block];
        for r in bb.term.uses() {
            self.read(r, bb.term_span, state);
        }
    }

    /// The value of `r`, reporting a read of a possibly unassigned register.
    fn read(&mut self, r: Vreg, span: Span, state: &State) -> Value {
        match state.regs.get(r.0 as usize).copied().unwrap_or(Value::Unset) {
            Value::Unset => {
                self.report(|| {
                    Diagnostic::error("E0406", format!("v{} may be read before it is assigned", r.0), span)
                        .label("on some path to here it has no value")
                        .with_help("assign it on every path before this use")
                });
                // Carry on with "anything" so one mistake gives one error.
                match self.func.vregs.get(r.0 as usize) {
                    Some(VregType::MapValue(_)) => Value::Ptr(Nullness::MaybeNull),
                    _ => Value::Scalar(Interval::TOP),
                }
            }
            v => v,
        }
    }

    fn scalar(&mut self, o: Operand, span: Span, state: &State) -> Interval {
        match o {
            Operand::Imm(i) => Interval::constant(i as u64),
            Operand::Reg(r) => match self.read(r, span, state) {
                Value::Scalar(i) => i,
                _ => Interval::TOP,
            },
        }
    }

    fn set(state: &mut State, r: Vreg, v: Value) {
        if let Some(slot) = state.regs.get_mut(r.0 as usize) {
            *slot = v;
        }
    }

    fn inst(&mut self, op: &Op, span: Span, state: &mut State) {
        match *op {
            Op::Mov { dst, src } => {
                let v = match src {
                    Operand::Imm(i) => Value::Scalar(Interval::constant(i as u64)),
                    Operand::Reg(r) => self.read(r, span, state),
                };
                Self::set(state, dst, v);
            }
            Op::Alu { op, dst, lhs, rhs } => {
                let a = self.scalar(Operand::Reg(lhs), span, state);
                let b = self.scalar(rhs, span, state);
                if matches!(op, AluOp::UDiv | AluOp::UMod) {
                    self.check_divisor(op, rhs, b, span);
                }
                Self::set(state, dst, Value::Scalar(interval::alu(op, a, b)));
            }
            Op::Neg { dst, src } => {
                let a = self.scalar(Operand::Reg(src), span, state);
                let v = a.as_constant().map_or(Interval::TOP, |c| Interval::constant(c.wrapping_neg()));
                Self::set(state, dst, Value::Scalar(v));
            }
            Op::SetCond { cond, dst, lhs, rhs } => {
                let a = self.scalar(Operand::Reg(lhs), span, state);
                let b = self.scalar(rhs, span, state);
                let same_reg = rhs == Operand::Reg(lhs);
                let (can_hold, can_fail) = if same_reg {
                    let holds = matches!(cond, Cond::Eq | Cond::Ule | Cond::Uge | Cond::Sle | Cond::Sge);
                    (holds, !holds)
                } else {
                    (interval::refine(cond, a, b).is_some(), interval::refine(cond.negate(), a, b).is_some())
                };
                let v = match (can_hold, can_fail) {
                    (true, false) => Interval::constant(1),
                    (false, true) => Interval::constant(0),
                    _ => Interval { lo: 0, hi: 1 },
                };
                Self::set(state, dst, Value::Scalar(v));
            }
            Op::Extend { dst, src, width, signed } => {
                let a = self.scalar(Operand::Reg(src), span, state);
                let v = if width >= 8 {
                    a
                } else if !signed {
                    if a.hi <= Interval::of_width(width).hi {
                        a
                    } else {
                        Interval::of_width(width)
                    }
                } else if a.hi <= Interval::of_width(width).hi >> 1 {
                    // Non-negative in the narrow type: sign extension changes nothing.
                    a
                } else {
                    Interval::TOP
                };
                Self::set(state, dst, Value::Scalar(v));
            }
            Op::LoadCtx { dst, width, signed, .. } => {
                let v = if signed { Interval::TOP } else { Interval::of_width(width) };
                Self::set(state, dst, Value::Scalar(v));
            }
            Op::LoadSlot { dst, slot, offset, width } => {
                if self.slot_access(slot.0, offset, width as u32, span) && self.slot_aligned(offset, width, span) {
                    self.check_init(state, slot.0, offset, width as u32, span, "read");
                }
                Self::set(state, dst, Value::Scalar(Interval::of_width(width)));
            }
            Op::StoreSlot { slot, offset, width, src } => {
                let value = self.scalar(src, span, state);
                if self.slot_access(slot.0, offset, width as u32, span) && self.slot_aligned(offset, width, span) {
                    mark_init(state, slot.0, offset, width as u32);
                }
                let stored = if offset == 0 && width >= 4 { value } else { Interval::TOP };
                if offset < 4 {
                    set_index(state, slot.0, stored);
                }
            }
            Op::ZeroSlot { slot } => {
                let size = self.func.slots.get(slot.0 as usize).copied().unwrap_or(0);
                mark_init(state, slot.0, 0, size);
                set_index(state, slot.0, Interval::constant(0));
            }
            Op::Call { dst, helper } => {
                if let Helper::ProbeRead { ptr, .. } = helper {
                    self.read(ptr, span, state);
                }
                if let Helper::ProbeReadStr { len, ptr, .. } = helper {
                    self.read(ptr, span, state);
                    if len == 0 || len > MAX_STR_READ {
                        self.report(|| {
                            Diagnostic::error(
                                "E0415",
                                format!("string read of {len} bytes: at most {MAX_STR_READ} may be read"),
                                span,
                            )
                            .label("unbounded string read")
                            .with_help("read at most 256 bytes, e.g. `str(ptr, 64)`")
                        });
                    }
                }
                if let Some((slot, len)) = helper.read_slot() {
                    self.ring_buffer_record(state, helper, slot.0, len, span);
                }
                if let Some((slot, len)) = helper.written_slot() {
                    if self.slot_access(slot.0, 0, len, span) {
                        mark_init(state, slot.0, 0, len);
                    }
                    set_index(state, slot.0, Interval::TOP);
                }
                let v = match helper {
                    Helper::GetSmpProcessorId => Interval::of_width(4),
                    // A stack id (below the map's size) or a negative errno as a 64-bit value:
                    // a scalar either way, never a pointer; no useful unsigned interval.
                    Helper::GetStackId { .. } => Interval::TOP,
                    Helper::GetCurrentCgroupId => Interval::TOP,
                    Helper::ProbeRead { .. } => Interval::TOP,
                    _ => Interval::TOP,
                };
                if let Some(dst) = dst {
                    Self::set(state, dst, Value::Scalar(v));
                }
            }
            Op::MapLookup { dst, map, key } => {
                self.map_key(state, map, key.0, span);
                self.array_index(state, map, key.0, span);
                Self::set(state, dst, Value::Ptr(Nullness::MaybeNull));
            }
            Op::MapUpdate { map, key, value, .. } => {
                self.map_key(state, map, key.0, span);
                self.array_index(state, map, key.0, span);
                let size = self.maps.get(map).map_or(0, |m| m.value_size);
                if self.slot_access(value.0, 0, size, span) {
                    self.check_init(state, value.0, 0, size, span, "passed as the value of a map update");
                }
            }
            Op::MapDelete { map, key } => {
                self.map_key(state, map, key.0, span);
                self.array_index(state, map, key.0, span);
            }
            Op::LoadPtr { dst, ptr, offset, width } => {
                self.deref(state, ptr, offset, width, span);
                Self::set(state, dst, Value::Scalar(Interval::of_width(width)));
            }
            Op::StorePtr { ptr, offset, width, src } => {
                self.scalar(src, span, state);
                self.deref(state, ptr, offset, width, span);
            }
        }
    }

    fn check_divisor(&mut self, op: AluOp, rhs: Operand, divisor: Interval, span: Span) {
        let what = if op == AluOp::UDiv { "division" } else { "remainder" };
        match rhs {
            Operand::Imm(0) => self.report(|| {
                Diagnostic::error("E0408", format!("{what} by the constant zero"), span)
                    .label("the divisor is 0")
                    .with_help("divide by a non-zero constant (eBPF would silently give 0 or the dividend)")
            }),
            Operand::Reg(r) if divisor.contains(0) => self.report(|| {
                Diagnostic::error(
                    "E0408",
                    format!("the divisor may be zero: v{} ranges over {}..={} here", r.0, divisor.lo, divisor.hi),
                    span,
                )
                .label("divisor may be zero")
                .with_help("guard it: `if d != 0 { .. }`")
            }),
            _ => {}
        }
    }

    /// Checks `offset..offset+len` against the slot's size; true when in bounds.
    /// `ringbuf_output`: the map must be a ring buffer, the record non-empty, inside its slot
    /// and fully initialised (the kernel copies every byte to user space).
    fn ring_buffer_record(&mut self, state: &State, helper: Helper, slot: u32, len: u32, span: Span) {
        if let Some(map) = helper.map() {
            let kind = self.maps.get(map).map(|m| m.kind);
            if kind != Some(MapType::RingBuf) {
                self.report(|| {
                    Diagnostic::error(
                        "E0412",
                        format!("ring buffer output to map m{map}, which is not a ring buffer"),
                        span,
                    )
                    .label("`ringbuf_output` needs a `ringbuf` map")
                    .with_help("declare the map as `ringbuf` (the compiler adds one for `emit` and `print`)")
                });
            }
        }
        if len == 0 {
            self.report(|| {
                Diagnostic::error("E0412", "ring buffer record of 0 bytes", span)
                    .label("an empty record")
                    .with_help("a record holds at least its event-type id")
            });
            return;
        }
        if self.slot_access(slot, 0, len, span) {
            self.check_init(state, slot, 0, len, span, "sent to the ring buffer");
        }
    }

    fn slot_access(&mut self, slot: u32, offset: u32, len: u32, span: Span) -> bool {
        let size = self.func.slots.get(slot as usize).copied().unwrap_or(0);
        let end = offset as u64 + len as u64;
        if end <= size as u64 {
            return true;
        }
        self.report(|| {
            Diagnostic::error(
                "E0404",
                format!("stack slot s{slot} has {size} bytes, but this accesses bytes {offset}..{end}"),
                span,
            )
            .label("out of bounds of the stack slot")
            .with_help("keep the access inside the slot (a compiler bug if it came from source)")
        });
        false
    }

    /// The kernel rejects a stack load or store that is not naturally aligned (slots start
    /// 8-byte aligned), so the offset must be a multiple of the width.
    fn slot_aligned(&mut self, offset: u32, width: u8, span: Span) -> bool {
        if width == 0 || offset % width as u32 == 0 {
            return true;
        }
        self.report(|| {
            Diagnostic::error("E0412", format!("misaligned stack access: {width} bytes at slot offset {offset}"), span)
                .label("the kernel only allows naturally aligned stack accesses")
                .with_help("a compiler bug: split the access into aligned parts")
        });
        false
    }

    fn check_init(&mut self, state: &State, slot: u32, offset: u32, len: u32, span: Span, use_: &str) {
        let Some(bytes) = state.init.get(slot as usize) else { return };
        let range = offset as usize..(offset as usize + len as usize).min(bytes.len());
        let Some(first) = range.clone().find(|i| !bytes[*i]) else { return };
        let last = range.rev().find(|i| !bytes[*i]).unwrap_or(first);
        self.report(|| {
            Diagnostic::error(
                "E0407",
                format!("bytes {first}..{} of stack slot s{slot} may be uninitialised when {use_}", last + 1),
                span,
            )
            .label("reads stack bytes not written on every path")
            .with_help(format!("initialise the whole slot first (`zero s{slot}`) or store every byte"))
        });
    }

    fn map_key(&mut self, state: &State, map: usize, key: u32, span: Span) {
        let size = self.maps.get(map).map_or(0, |m| m.key_size);
        if self.slot_access(key, 0, size, span) {
            let name = self.maps.get(map).map_or("?", |m| m.name.as_str()).to_string();
            self.check_init(state, key, 0, size, span, &format!("used as a key of map `{name}`"));
        }
    }

    /// An array map's index (the key slot's first 4 bytes) must be below its length. The
    /// kernel would return null (or fail the update) for a larger one; proving it in range
    /// means no access silently goes nowhere, and that the index fits the 4-byte key.
    fn array_index(&mut self, state: &State, map: usize, key: u32, span: Span) {
        let Some(m) = self.maps.get(map) else { return };
        if !matches!(m.kind, MapType::Array | MapType::PerCpuArray) {
            return;
        }
        let index = state.index.get(key as usize).copied().unwrap_or(Interval::TOP);
        let len = m.max_entries as u64;
        if index.hi < len {
            return;
        }
        let (name, shown) = (m.name.clone(), show_range(index));
        self.report(|| {
            Diagnostic::error(
                "E0414",
                format!("index of array `{name}` in {shown}, but the array has {len} entries"),
                span,
            )
            .label("index may be out of bounds")
            .with_help(format!("keep the index in a local and guard it: `let i = ..; if i < {len} {{ .. }}`"))
        });
    }

    fn deref(&mut self, state: &State, ptr: Vreg, offset: u32, width: u8, span: Span) {
        if self.read(ptr, span, state) != Value::Ptr(Nullness::NonNull) {
            self.report(|| {
                Diagnostic::error("E0401", "map value used without checking that the key exists", span)
                    .label("this access may dereference a null map value")
                    .with_help("use `if let v = m[k] { .. }` or `m[k] ?? default`")
            });
        }
        let map = match self.func.vregs.get(ptr.0 as usize) {
            Some(VregType::MapValue(m)) => self.maps.get(*m),
            _ => None,
        };
        let Some(map) = map else { return };
        let end = offset as u64 + width as u64;
        if end > map.value_size as u64 {
            let (name, size) = (map.name.clone(), map.value_size);
            self.report(|| {
                Diagnostic::error(
                    "E0405",
                    format!("values of map `{name}` have {size} bytes, but this accesses bytes {offset}..{end}"),
                    span,
                )
                .label("out of bounds of the map value")
                .with_help("keep the access inside the map's value type")
            });
        }
    }

    /// The state on each successor edge, `None` where the edge cannot be taken.
    fn edges(&mut self, term: &Terminator, state: &State) -> Vec<(Block, Option<State>)> {
        match *term {
            Terminator::Return => Vec::new(),
            Terminator::Jump(t) => vec![(t, Some(state.clone()))],
            Terminator::BranchNull { ptr, is_null, not_null } => {
                let current = state.regs.get(ptr.0 as usize).copied();
                let along = |want: Nullness, impossible: Nullness| {
                    if current == Some(Value::Ptr(impossible)) {
                        return None;
                    }
                    let mut s = state.clone();
                    Self::set(&mut s, ptr, Value::Ptr(want));
                    Some(s)
                };
                vec![
                    (is_null, along(Nullness::Null, Nullness::NonNull)),
                    (not_null, along(Nullness::NonNull, Nullness::Null)),
                ]
            }
            Terminator::Branch { cond, lhs, rhs, then, otherwise } => {
                vec![
                    (then, refine_edge(state, cond, lhs, rhs)),
                    (otherwise, refine_edge(state, cond.negate(), lhs, rhs)),
                ]
            }
        }
    }
}

fn set_index(state: &mut State, slot: u32, value: Interval) {
    if let Some(index) = state.index.get_mut(slot as usize) {
        *index = value;
    }
}

/// `[lo, hi]` as a half-open range in messages, with 2^64 for the full range's end.
fn show_range(i: Interval) -> String {
    let end = if i.hi == u64::MAX { "2^64".to_string() } else { (i.hi as u128 + 1).to_string() };
    format!("[{}, {end})", i.lo)
}

fn mark_init(state: &mut State, slot: u32, offset: u32, len: u32) {
    if let Some(bytes) = state.init.get_mut(slot as usize) {
        let end = (offset as usize + len as usize).min(bytes.len());
        for b in bytes.iter_mut().take(end).skip(offset as usize) {
            *b = true;
        }
    }
}

/// The state where `lhs COND rhs` holds, or `None` when it cannot.
fn refine_edge(state: &State, cond: Cond, lhs: Vreg, rhs: Operand) -> Option<State> {
    if rhs == Operand::Reg(lhs) {
        let holds = matches!(cond, Cond::Eq | Cond::Ule | Cond::Uge | Cond::Sle | Cond::Sge);
        return holds.then(|| state.clone());
    }
    let value = |r: Vreg| match state.regs.get(r.0 as usize) {
        Some(Value::Scalar(i)) => Some(*i),
        _ => None,
    };
    let a = value(lhs);
    let b = match rhs {
        Operand::Imm(i) => Some(Interval::constant(i as u64)),
        Operand::Reg(r) => value(r),
    };
    let (na, nb) = interval::refine(cond, a.unwrap_or(Interval::TOP), b.unwrap_or(Interval::TOP))?;
    let mut s = state.clone();
    // Only registers that hold a scalar are narrowed; an unset one stays unset (reported).
    if a.is_some() {
        Checker::set(&mut s, lhs, Value::Scalar(na));
    }
    if let (Operand::Reg(r), Some(_)) = (rhs, b) {
        Checker::set(&mut s, r, Value::Scalar(nb));
    }
    Some(s)
}
