//! Abstraction-carrying code: an abstract domain over eBPF bytecode states, its transfer
//! function, the producer's fixpoint (run by `ppisc` on the final bytecode) and the loader's
//! one-pass consistency check of the invariants the bundle carries (`invariants.json`).
//!
//! The producer states an abstract state at every *leader* (instruction 0 and every jump
//! target). The consumer never iterates: it walks the code once, taking the stated state at each
//! leader and the computed state elsewhere, applies the transfer function to every instruction
//! (which refuses any unsafe memory access, read of an uninitialised register or stack byte,
//! dereference of a maybe-null map value, or division by a divisor that may be zero) and checks
//! that what flows along each edge into a leader is included in that leader's stated state.
//! Loops (backward jumps) carry a trip count that the consumer re-derives from the code and the
//! (checked) state at the loop header.
//!
//! Boundary: pure, no syscalls, no compiler types: bytes and decoded instructions only.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pcc::{helper, Insn, ProgramKind, LD_IMM64};

/// Bundle entry holding the invariants of every annotated program.
pub const INVARIANTS_ENTRY: &str = "invariants.json";
/// The `format` field of [`INVARIANTS_ENTRY`].
pub const INVARIANTS_FORMAT: &str = "ppis-acc";
/// The invariants format version this code writes and reads.
pub const INVARIANTS_VERSION: u64 = 1;
/// eBPF stack size in bytes; the frame pointer `r10` points just past it.
pub const STACK_BYTES: i64 = 512;
/// The largest trip count a loop may claim (keeps cost products finite).
pub const MAX_TRIPS: u64 = 1 << 24;
/// Fixpoint rounds at a loop header before widening kicks in.
const WIDEN_AFTER: u32 = 3;
/// Transfer steps the producer's fixpoint may take per program instruction before giving up.
const FIXPOINT_STEPS_PER_INSN: usize = 2_000;
const SLOTS: usize = (STACK_BYTES / 8) as usize;
const FRAME_POINTER: usize = 10;

/// Why a program's invariants do not hold: the instruction and one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccError {
    /// Instruction slot the problem is at.
    pub pc: usize,
    pub message: String,
}

impl fmt::Display for AccError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "insn {}: {}", self.pc, self.message)
    }
}

fn fault(pc: usize, message: impl Into<String>) -> AccError {
    AccError { pc, message: message.into() }
}

/// An unsigned interval `[lo, hi]` of 64-bit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub lo: u64,
    pub hi: u64,
}

impl Range {
    pub const TOP: Range = Range { lo: 0, hi: u64::MAX };
    pub fn exact(v: u64) -> Range {
        Range { lo: v, hi: v }
    }
    fn up_to(hi: u64) -> Range {
        Range { lo: 0, hi }
    }
    fn width(bytes: u32) -> Range {
        if bytes >= 8 {
            Range::TOP
        } else {
            Range::up_to((1u64 << (bytes * 8)) - 1)
        }
    }
    fn hull(self, o: Range) -> Range {
        Range { lo: self.lo.min(o.lo), hi: self.hi.max(o.hi) }
    }
    fn contains(self, o: Range) -> bool {
        self.lo <= o.lo && o.hi <= self.hi
    }
    fn has_zero(self) -> bool {
        self.lo == 0
    }
    fn singleton(self) -> Option<u64> {
        (self.lo == self.hi).then_some(self.lo)
    }
    /// The values as signed offsets, when they are all in `i64` range or one constant.
    fn as_offsets(self) -> Option<Offsets> {
        if self.hi <= i64::MAX as u64 {
            Some(Offsets { lo: self.lo as i64, hi: self.hi as i64 })
        } else {
            self.singleton().map(|v| Offsets::exact(v as i64))
        }
    }
    fn fits_u32(self) -> bool {
        self.hi <= u64::from(u32::MAX)
    }
}

/// A signed interval of pointer offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub lo: i64,
    pub hi: i64,
}

impl Offsets {
    fn exact(v: i64) -> Offsets {
        Offsets { lo: v, hi: v }
    }
    fn hull(self, o: Offsets) -> Offsets {
        Offsets { lo: self.lo.min(o.lo), hi: self.hi.max(o.hi) }
    }
    fn contains(self, o: Offsets) -> bool {
        self.lo <= o.lo && o.hi <= self.hi
    }
    fn add(self, o: Offsets) -> Option<Offsets> {
        Some(Offsets { lo: self.lo.checked_add(o.lo)?, hi: self.hi.checked_add(o.hi)? })
    }
    fn sub(self, o: Offsets) -> Option<Offsets> {
        Some(Offsets { lo: self.lo.checked_sub(o.hi)?, hi: self.hi.checked_sub(o.lo)? })
    }
    fn singleton(self) -> Option<i64> {
        (self.lo == self.hi).then_some(self.lo)
    }
}

/// The abstract value of a register or a spilled stack slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// May never have been written: may not be read. The top of the lattice.
    Uninit,
    /// Written, but nothing is known (possibly a pointer): may not be dereferenced.
    Unknown,
    Scalar(Range),
    /// The program's context argument plus an offset.
    Ctx(Offsets),
    /// The frame pointer plus an offset (valid bytes are `[-512, 0)`).
    Stack(Offsets),
    /// A pointer into a map value of `size` bytes plus an offset.
    MapValue {
        size: u32,
        off: Offsets,
    },
    /// The result of the `bpf_map_lookup_elem` call at instruction `id`: null or a value.
    MapValueOrNull {
        size: u32,
        id: u32,
    },
    /// A map reference (`ld_imm64` relocated to the map with this index in [`ObjectMaps`]).
    Map(u16),
}

impl Value {
    fn join(self, other: Value) -> Value {
        use Value::*;
        match (self, other) {
            _ if self == other => self,
            (Uninit, _) | (_, Uninit) => Uninit,
            (Scalar(a), Scalar(b)) => Scalar(a.hull(b)),
            (Ctx(a), Ctx(b)) => Ctx(a.hull(b)),
            (Stack(a), Stack(b)) => Stack(a.hull(b)),
            (MapValue { size: s, off: a }, MapValue { size: t, off: b }) if s == t => {
                MapValue { size: s, off: a.hull(b) }
            }
            // Not even null with a lookup result: every `MapValueOrNull` with one id must be a
            // copy of one value (a null check refines them all), which a merge with another
            // value would break.
            _ => Unknown,
        }
    }

    /// `self ⊑ other`: every concrete value `self` describes, `other` describes too.
    fn leq(self, other: Value) -> bool {
        use Value::*;
        match (self, other) {
            _ if self == other => true,
            (_, Uninit) => true,
            (Uninit, _) => false,
            (_, Unknown) => true,
            (Scalar(a), Scalar(b)) => b.contains(a),
            (Ctx(a), Ctx(b)) | (Stack(a), Stack(b)) => b.contains(a),
            (MapValue { size: s, off: a }, MapValue { size: t, off: b }) => s == t && b.contains(a),
            _ => false,
        }
    }

    fn widen(self, next: Value, thresholds: &Thresholds) -> Value {
        use Value::*;
        match (self, next.join(self)) {
            (Scalar(a), Scalar(b)) => Scalar(thresholds.widen_range(a, b)),
            (Ctx(a), Ctx(b)) => Ctx(thresholds.widen_offsets(a, b)),
            (Stack(a), Stack(b)) => Stack(thresholds.widen_offsets(a, b)),
            (MapValue { off: a, .. }, MapValue { size, off: b }) => {
                MapValue { size, off: thresholds.widen_offsets(a, b) }
            }
            (_, joined) => joined,
        }
    }

    fn is_initialised(self) -> bool {
        self != Value::Uninit
    }
}

/// One 8-byte stack slot: which bytes are initialised, and, when all are, what they hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Bit `i` set: byte `i` of the slot (lowest address first) is initialised.
    pub init: u8,
    /// Meaningful only when `init == 0xff`; otherwise [`Value::Unknown`].
    pub value: Value,
}

impl Slot {
    const EMPTY: Slot = Slot { init: 0, value: Value::Unknown };
    fn normalised(init: u8, value: Value) -> Slot {
        Slot { init, value: if init == 0xff { value } else { Value::Unknown } }
    }
    fn join(self, o: Slot) -> Slot {
        Slot::normalised(self.init & o.init, self.value.join(o.value))
    }
    fn leq(self, o: Slot) -> bool {
        o.init & !self.init == 0 && (o.init != 0xff || self.value.leq(o.value))
    }
}

/// The abstract machine state before an instruction. `r10` is always the frame pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub regs: [Value; 10],
    /// Slot `k` covers stack bytes `[-512 + 8k, -504 + 8k)`.
    pub stack: [Slot; SLOTS],
}

impl State {
    /// The state on entry: `r1` is the context, nothing else is readable.
    pub fn entry() -> State {
        let mut regs = [Value::Uninit; 10];
        regs[1] = Value::Ctx(Offsets::exact(0));
        State { regs, stack: [Slot::EMPTY; SLOTS] }
    }

    fn reg(&self, r: u8) -> Value {
        if usize::from(r) == FRAME_POINTER {
            Value::Stack(Offsets::exact(0))
        } else {
            self.regs[usize::from(r)]
        }
    }

    fn join(&self, o: &State) -> State {
        let mut out = self.clone();
        for (a, b) in out.regs.iter_mut().zip(&o.regs) {
            *a = a.join(*b);
        }
        for (a, b) in out.stack.iter_mut().zip(&o.stack) {
            *a = a.join(*b);
        }
        out
    }

    fn widen(&self, next: &State, thresholds: &Thresholds) -> State {
        let mut out = self.clone();
        for (a, b) in out.regs.iter_mut().zip(&next.regs) {
            *a = a.widen(*b, thresholds);
        }
        for (a, b) in out.stack.iter_mut().zip(&next.stack) {
            let init = a.init & b.init;
            *a = Slot::normalised(init, a.value.widen(b.value, thresholds));
        }
        out
    }

    /// `self ⊑ other`, or the first location where it fails and why.
    fn leq(&self, other: &State, maps: &ObjectMaps) -> Result<(), String> {
        for (r, (a, b)) in self.regs.iter().zip(&other.regs).enumerate() {
            if !a.leq(*b) {
                return Err(format!("r{r} is {} here, not within the stated {}", show(*a, maps), show(*b, maps)));
            }
        }
        for (k, (a, b)) in self.stack.iter().zip(&other.stack).enumerate() {
            if !a.leq(*b) {
                return Err(format!(
                    "stack slot fp{} is {} here, not within the stated {}",
                    slot_offset(k),
                    show_slot(*a, maps),
                    show_slot(*b, maps)
                ));
            }
        }
        Ok(())
    }
}

fn slot_offset(k: usize) -> i64 {
    -STACK_BYTES + 8 * k as i64
}

/// Constants the code compares with: widening jumps to the nearest one instead of to infinity,
/// so a counted loop's counter keeps the bound of its exit test.
struct Thresholds {
    values: BTreeSet<u64>,
}

impl Thresholds {
    fn of(code: &[Insn]) -> Thresholds {
        let mut values = BTreeSet::from([0, u64::MAX]);
        for insn in code.iter().filter(|i| !i.is_second_slot && i.jump_target(0).is_some()) {
            let v = insn.imm as i64 as u64;
            values.extend([v, v.wrapping_add(1), v.wrapping_sub(1), insn.imm as u32 as u64]);
        }
        for v in [STACK_BYTES as u64, 0u64.wrapping_sub(STACK_BYTES as u64)] {
            values.insert(v);
        }
        Thresholds { values }
    }
    fn widen_range(&self, old: Range, new: Range) -> Range {
        let lo = if new.lo < old.lo { self.values.range(..=new.lo).next_back().copied().unwrap_or(0) } else { old.lo };
        let hi = if new.hi > old.hi { self.values.range(new.hi..).next().copied().unwrap_or(u64::MAX) } else { old.hi };
        Range { lo, hi }
    }
    fn widen_offsets(&self, old: Offsets, new: Offsets) -> Offsets {
        let signed: BTreeSet<i64> = self.values.iter().map(|v| *v as i64).collect();
        let lo =
            if new.lo < old.lo { signed.range(..=new.lo).next_back().copied().unwrap_or(i64::MIN) } else { old.lo };
        let hi = if new.hi > old.hi { signed.range(new.hi..).next().copied().unwrap_or(i64::MAX) } else { old.hi };
        Offsets { lo, hi }
    }
}

/// A map of the object as the checker needs it: from its `struct bpf_map_def`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    pub name: String,
    pub key_size: u32,
    pub value_size: u32,
}

/// Every map of the object, by index; `ld_imm64` slots refer to them.
#[derive(Clone, Debug, Default)]
pub struct ObjectMaps {
    pub maps: Vec<MapDef>,
}

impl ObjectMaps {
    fn by_name(&self, name: &str) -> Option<u16> {
        self.maps.iter().position(|m| m.name == name).and_then(|i| u16::try_from(i).ok())
    }
    fn get(&self, index: u16) -> Option<&MapDef> {
        self.maps.get(usize::from(index))
    }
}

/// One program as the analysis sees it.
pub struct Program<'a> {
    pub kind: ProgramKind,
    pub code: &'a [Insn],
    /// By `ld_imm64` slot: the index of the map it loads.
    pub map_refs: &'a BTreeMap<usize, u16>,
    pub maps: &'a ObjectMaps,
    /// Instruction 0 and every jump target: where straight-line reasoning stops.
    leaders: BTreeSet<usize>,
}

impl<'a> Program<'a> {
    pub fn new(
        kind: ProgramKind,
        code: &'a [Insn],
        map_refs: &'a BTreeMap<usize, u16>,
        maps: &'a ObjectMaps,
    ) -> Program<'a> {
        let leaders = Shape::of(code).leaders;
        Program { kind, code, map_refs, maps, leaders }
    }
}

// ---------------------------------------------------------------------------------------------
// Helper signatures: one line per helper; an unknown helper is refused by name.

/// What a helper requires of one argument register.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    /// A map reference (`ld_imm64` of a map).
    Map,
    /// A stack pointer to the map's `key_size` initialised bytes (the map is argument 1).
    MapKey,
    /// A stack pointer to the map's `value_size` initialised bytes.
    MapValue,
    /// A stack pointer to a buffer the helper fills, whose length is argument `len_arg`.
    OutBuffer { len_arg: u8 },
    /// A stack pointer to a buffer the helper reads, all of whose bytes (as many as argument
    /// `len_arg`, a constant) must be initialised.
    InBuffer { len_arg: u8 },
    /// A length: a scalar in `1..=512` (it sizes a stack buffer).
    Length,
    /// The program's context pointer, unmoved.
    Context,
    /// Any initialised value (flags, an unsafe pointer the helper reads with fault handling).
    Any,
}

/// What a helper returns in `r0`.
#[derive(Clone, Copy, Debug)]
pub enum Returns {
    Scalar(Range),
    /// Null or a pointer to a value of the map in argument 1.
    MapValueOrNull,
}

/// The contract of one helper, as the kernel states it in its `bpf_func_proto`.
#[derive(Clone, Copy, Debug)]
pub struct HelperSignature {
    pub id: i32,
    pub name: &'static str,
    /// Arguments `r1, r2, ...`.
    pub args: &'static [Arg],
    pub returns: Returns,
}

/// Every helper the checker knows. Adding a helper is one line here (and one in the program
/// type's allow-list in `pcc`).
pub const HELPERS: &[HelperSignature] = &[
    HelperSignature {
        id: helper::MAP_LOOKUP_ELEM,
        name: "map_lookup_elem",
        args: &[Arg::Map, Arg::MapKey],
        returns: Returns::MapValueOrNull,
    },
    HelperSignature {
        id: helper::MAP_UPDATE_ELEM,
        name: "map_update_elem",
        args: &[Arg::Map, Arg::MapKey, Arg::MapValue, Arg::Any],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature {
        id: helper::MAP_DELETE_ELEM,
        name: "map_delete_elem",
        args: &[Arg::Map, Arg::MapKey],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature { id: helper::KTIME_GET_NS, name: "ktime_get_ns", args: &[], returns: Returns::Scalar(Range::TOP) },
    HelperSignature {
        id: helper::GET_SMP_PROCESSOR_ID,
        name: "get_smp_processor_id",
        args: &[],
        returns: Returns::Scalar(Range { lo: 0, hi: u32::MAX as u64 }),
    },
    HelperSignature {
        id: helper::GET_CURRENT_PID_TGID,
        name: "get_current_pid_tgid",
        args: &[],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature {
        id: helper::GET_CURRENT_UID_GID,
        name: "get_current_uid_gid",
        args: &[],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature {
        id: helper::GET_CURRENT_COMM,
        name: "get_current_comm",
        args: &[Arg::OutBuffer { len_arg: 2 }, Arg::Length],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature {
        id: helper::PROBE_READ_USER_STR,
        name: "probe_read_user_str",
        args: &[Arg::OutBuffer { len_arg: 2 }, Arg::Length, Arg::Any],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature {
        id: helper::GET_STACKID,
        name: "get_stackid",
        args: &[Arg::Context, Arg::Map, Arg::Any],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature {
        id: helper::PROBE_READ_KERNEL_STR,
        name: "probe_read_kernel_str",
        args: &[Arg::OutBuffer { len_arg: 2 }, Arg::Length, Arg::Any],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature {
        id: helper::PROBE_READ_USER,
        name: "probe_read_user",
        args: &[Arg::OutBuffer { len_arg: 2 }, Arg::Length, Arg::Any],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature {
        id: helper::PROBE_READ_KERNEL,
        name: "probe_read_kernel",
        args: &[Arg::OutBuffer { len_arg: 2 }, Arg::Length, Arg::Any],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature {
        id: helper::GET_CURRENT_CGROUP_ID,
        name: "get_current_cgroup_id",
        args: &[],
        returns: Returns::Scalar(Range::TOP),
    },
    HelperSignature {
        id: helper::RINGBUF_OUTPUT,
        name: "ringbuf_output",
        args: &[Arg::Map, Arg::InBuffer { len_arg: 3 }, Arg::Length, Arg::Any],
        returns: Returns::Scalar(Range::TOP),
    },
];

/// The signature of helper `id`, if the checker knows it.
pub fn helper_signature(id: i32) -> Option<&'static HelperSignature> {
    HELPERS.iter().find(|h| h.id == id)
}

// ---------------------------------------------------------------------------------------------
// The transfer function.

const OP_ADD: u8 = 0x00;
const OP_SUB: u8 = 0x10;
const OP_MUL: u8 = 0x20;
const OP_DIV: u8 = 0x30;
const OP_OR: u8 = 0x40;
const OP_AND: u8 = 0x50;
const OP_LSH: u8 = 0x60;
const OP_RSH: u8 = 0x70;
const OP_NEG: u8 = 0x80;
const OP_MOD: u8 = 0x90;
const OP_XOR: u8 = 0xa0;
const OP_MOV: u8 = 0xb0;
const OP_ARSH: u8 = 0xc0;
const OP_END: u8 = 0xd0;
const SRC_REG: u8 = 0x08;

const J_JA: u8 = 0x00;
const J_EQ: u8 = 0x10;
const J_GT: u8 = 0x20;
const J_GE: u8 = 0x30;
const J_NE: u8 = 0x50;
const J_SGT: u8 = 0x60;
const J_SGE: u8 = 0x70;
const J_LT: u8 = 0xa0;
const J_LE: u8 = 0xb0;
const J_SLT: u8 = 0xc0;
const J_SLE: u8 = 0xd0;

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;
const LDX_DW: u8 = 0x79;
const STX_DW: u8 = 0x7b;

fn access_bytes(opcode: u8) -> u32 {
    match opcode & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

/// Where an instruction's successors go, with the state on each edge (`None`: the edge
/// cannot be taken in this state).
pub struct Successors {
    pub edges: Vec<(usize, Option<State>)>,
}

impl Program<'_> {
    /// Slot index following instruction `pc`.
    fn next(&self, pc: usize) -> usize {
        pc + if self.code[pc].opcode == LD_IMM64 { 2 } else { 1 }
    }

    fn read(&self, pc: usize, state: &State, r: u8) -> Result<Value, AccError> {
        let v = state.reg(r);
        if v.is_initialised() {
            Ok(v)
        } else {
            Err(fault(pc, format!("reads r{r}, which may be uninitialised")))
        }
    }

    /// Applies instruction `pc` to `state`. Errors name what is unsafe.
    pub fn step(&self, pc: usize, state: &State) -> Result<Successors, AccError> {
        let insn = self.code[pc];
        let next = self.next(pc);
        let mut out = state.clone();
        match insn.class() {
            CLASS_ALU | CLASS_ALU64 => {
                self.alu(pc, &insn, &mut out)?;
                Ok(Successors { edges: vec![(next, Some(out))] })
            }
            CLASS_LD => {
                let value = match self.map_refs.get(&pc) {
                    Some(&map) => Value::Map(map),
                    None => {
                        let high = self.code.get(pc + 1).map_or(0, |s| s.imm as u32 as u64);
                        Value::Scalar(Range::exact(insn.imm as u32 as u64 | high << 32))
                    }
                };
                out.regs[usize::from(insn.dst)] = value;
                Ok(Successors { edges: vec![(next, Some(out))] })
            }
            CLASS_LDX => {
                let bytes = access_bytes(insn.opcode);
                let base = self.read(pc, state, insn.src)?;
                let value = self.load(pc, state, base, insn.offset, bytes)?;
                out.regs[usize::from(insn.dst)] = value;
                Ok(Successors { edges: vec![(next, Some(out))] })
            }
            CLASS_ST | CLASS_STX => {
                let bytes = access_bytes(insn.opcode);
                let value = if insn.class() == CLASS_ST {
                    Value::Scalar(Range::exact(insn.imm as i64 as u64))
                } else {
                    self.read(pc, state, insn.src)?
                };
                let base = self.read(pc, state, insn.dst)?;
                self.store(pc, &mut out, base, insn.offset, bytes, value)?;
                Ok(Successors { edges: vec![(next, Some(out))] })
            }
            CLASS_JMP | CLASS_JMP32 => {
                if insn.is_exit() {
                    return match state.reg(0) {
                        Value::Scalar(_) => Ok(Successors { edges: vec![] }),
                        other => Err(fault(pc, format!("exits with r0 = {}, not a number", show(other, self.maps)))),
                    };
                }
                if insn.is_call() {
                    self.call(pc, &insn, &mut out)?;
                    return Ok(Successors { edges: vec![(next, Some(out))] });
                }
                let target = insn.jump_target(pc).and_then(|t| usize::try_from(t).ok()).unwrap_or(usize::MAX);
                if insn.jump_op() == J_JA {
                    return Ok(Successors { edges: vec![(target, Some(out))] });
                }
                let (taken, fallthrough) = self.branch(pc, &insn, state)?;
                Ok(Successors { edges: vec![(next, fallthrough), (target, taken)] })
            }
            _ => Err(fault(pc, format!("opcode {:#04x} has no transfer function", insn.opcode))),
        }
    }

    fn alu(&self, pc: usize, insn: &Insn, out: &mut State) -> Result<(), AccError> {
        let is64 = insn.class() == CLASS_ALU64;
        let op = insn.opcode & 0xf0;
        let d = usize::from(insn.dst);
        let src = if insn.opcode & SRC_REG != 0 && op != OP_NEG && op != OP_END {
            self.read(pc, out, insn.src)?
        } else if is64 {
            Value::Scalar(Range::exact(insn.imm as i64 as u64))
        } else {
            Value::Scalar(Range::exact(insn.imm as u32 as u64))
        };
        if op == OP_MOV {
            out.regs[d] = match src {
                // `movsx` (offset ≠ 0) sign-extends: nothing useful is kept.
                _ if insn.offset != 0 => Value::Scalar(if is64 { Range::TOP } else { Range::width(4) }),
                v if is64 => v,
                Value::Scalar(r) if r.fits_u32() => Value::Scalar(r),
                _ => Value::Scalar(Range::width(4)),
            };
            return Ok(());
        }
        let dst = self.read(pc, out, insn.dst)?;
        if matches!(op, OP_DIV | OP_MOD) {
            let divisor = match src {
                Value::Scalar(r) if is64 => r,
                Value::Scalar(r) if r.fits_u32() => r,
                // A 32-bit division uses the low half, which may be zero.
                Value::Scalar(_) => Range::width(4),
                _ => Range::TOP,
            };
            if divisor.has_zero() {
                let what = if insn.opcode & SRC_REG != 0 { format!("r{}", insn.src) } else { "0".into() };
                return Err(fault(pc, format!("divides by {what}, which may be zero ({})", show(src, self.maps))));
            }
        }
        let result = match (dst, src) {
            (Value::Scalar(a), Value::Scalar(b)) => {
                let (a, b) = if is64 {
                    (a, b)
                } else {
                    (if a.fits_u32() { a } else { Range::width(4) }, if b.fits_u32() { b } else { Range::width(4) })
                };
                let r = scalar_op(op, insn, a, b).unwrap_or(Range::TOP);
                Value::Scalar(if is64 || r.fits_u32() { r } else { Range::width(4) })
            }
            (pointer, Value::Scalar(b)) if is64 && matches!(op, OP_ADD | OP_SUB) => {
                offset_pointer(pointer, b, op == OP_SUB)
            }
            (Value::Scalar(a), pointer) if is64 && op == OP_ADD => offset_pointer(pointer, a, false),
            _ => Value::Unknown,
        };
        out.regs[d] = result;
        Ok(())
    }

    fn load(&self, pc: usize, state: &State, base: Value, offset: i16, bytes: u32) -> Result<Value, AccError> {
        let width = Value::Scalar(Range::width(bytes));
        match base {
            Value::Stack(off) => {
                let at = self.stack_offset(pc, off, offset, bytes)?;
                let (slot, byte) = slot_of(at);
                let mask = byte_mask(byte, bytes);
                let s = state.stack[slot];
                if s.init & mask != mask {
                    return Err(fault(pc, format!("reads {bytes} bytes at fp{at}, not all initialised")));
                }
                Ok(if bytes == 8 { s.value } else { width })
            }
            Value::Ctx(off) => {
                self.ctx_access(pc, off, offset, bytes)?;
                Ok(width)
            }
            Value::MapValue { size, off } => {
                map_value_access(pc, size, off, offset, bytes)?;
                Ok(width)
            }
            Value::MapValueOrNull { .. } => {
                Err(fault(pc, "dereferences a map value that may be null (no null check on this path)"))
            }
            other => Err(fault(pc, format!("loads through {}, which is not a pointer", show(other, self.maps)))),
        }
    }

    fn store(
        &self,
        pc: usize,
        state: &mut State,
        base: Value,
        offset: i16,
        bytes: u32,
        value: Value,
    ) -> Result<(), AccError> {
        match base {
            Value::Stack(off) => {
                let at = self.stack_offset(pc, off, offset, bytes)?;
                let (slot, byte) = slot_of(at);
                let s = &mut state.stack[slot];
                let init = s.init | byte_mask(byte, bytes);
                let stored = if bytes == 8 {
                    value
                } else if s.init == 0xff && matches!(s.value, Value::Scalar(_)) {
                    // Part of a known scalar overwritten: still a number, value unknown.
                    Value::Scalar(Range::TOP)
                } else {
                    Value::Scalar(Range::TOP)
                };
                *s = Slot::normalised(init, stored);
                Ok(())
            }
            Value::MapValue { size, off } => {
                map_value_access(pc, size, off, offset, bytes)?;
                if matches!(value, Value::Stack(_) | Value::Ctx(_) | Value::MapValue { .. } | Value::Map(_)) {
                    return Err(fault(pc, "stores a kernel pointer into a map value"));
                }
                Ok(())
            }
            Value::Ctx(_) => Err(fault(pc, "stores into the read-only context")),
            Value::MapValueOrNull { .. } => {
                Err(fault(pc, "stores into a map value that may be null (no null check on this path)"))
            }
            other => Err(fault(pc, format!("stores through {}, which is not a pointer", show(other, self.maps)))),
        }
    }

    /// The single stack offset an access at `off + insn_offset` of `bytes` bytes touches,
    /// checked to lie inside the 512-byte frame.
    fn stack_offset(&self, pc: usize, off: Offsets, insn_offset: i16, bytes: u32) -> Result<i64, AccError> {
        let Some(base) = off.singleton() else {
            return Err(fault(pc, format!("accesses the stack at a variable offset fp[{},{}]", off.lo, off.hi)));
        };
        let at = base.saturating_add(i64::from(insn_offset));
        if at < -STACK_BYTES || at.saturating_add(i64::from(bytes)) > 0 {
            return Err(fault(pc, format!("accesses {bytes} bytes at fp{at:+}, outside the 512-byte stack")));
        }
        if at.rem_euclid(i64::from(bytes)) != 0 {
            return Err(fault(pc, format!("accesses {bytes} bytes at fp{at:+}, not aligned")));
        }
        Ok(at)
    }

    fn ctx_access(&self, pc: usize, off: Offsets, insn_offset: i16, bytes: u32) -> Result<(), AccError> {
        let Some(base) = off.singleton() else {
            return Err(fault(pc, "reads the context at a variable offset"));
        };
        let at = base.saturating_add(i64::from(insn_offset));
        let limit = i64::from(self.kind.context_bytes());
        if at < 0 || at.saturating_add(i64::from(bytes)) > limit {
            return Err(fault(
                pc,
                format!(
                    "reads {bytes} bytes at context offset {at}, outside the {limit}-byte {} context",
                    self.kind.name()
                ),
            ));
        }
        Ok(())
    }

    fn call(&self, pc: usize, insn: &Insn, out: &mut State) -> Result<(), AccError> {
        let Some(signature) = helper_signature(insn.imm) else {
            return Err(fault(pc, format!("calls helper #{}, which has no signature in the checker", insn.imm)));
        };
        let name = signature.name;
        let mut map: Option<&MapDef> = None;
        for (index, arg) in signature.args.iter().enumerate() {
            let r = index as u8 + 1;
            let value = self.read(pc, out, r).map_err(|e| fault(pc, format!("{name}: {}", e.message)))?;
            let bad = |what: &str| fault(pc, format!("{name}: r{r} is {}, {what}", show(value, self.maps)));
            match *arg {
                Arg::Map => match value {
                    Value::Map(m) => map = self.maps.get(m),
                    _ => return Err(bad("not a map")),
                },
                Arg::MapKey | Arg::MapValue => {
                    let Some(def) = map else { return Err(bad("but no map was passed before it")) };
                    let len = if matches!(arg, Arg::MapKey) { def.key_size } else { def.value_size };
                    self.stack_bytes_initialised(pc, out, value, len).map_err(|e| {
                        fault(pc, format!("{name}: r{r} ({} bytes of map {}): {}", len, def.name, e.message))
                    })?;
                }
                Arg::OutBuffer { len_arg } => {
                    let Value::Scalar(len) = out.reg(len_arg) else {
                        return Err(fault(pc, format!("{name}: the length in r{len_arg} is not a number")));
                    };
                    let Value::Stack(off) = value else { return Err(bad("not a stack buffer")) };
                    let Some(at) = off.singleton() else { return Err(bad("a stack buffer at a variable offset")) };
                    if len.lo == 0 || len.hi > STACK_BYTES as u64 || at < -STACK_BYTES || at + len.hi as i64 > 0 {
                        return Err(fault(
                            pc,
                            format!(
                                "{name}: a buffer of [{}, {}] bytes at fp{at:+} does not fit the stack",
                                len.lo, len.hi
                            ),
                        ));
                    }
                    // The helper writes (or zeroes) at least the shortest possible length.
                    for byte_at in at..at + len.lo as i64 {
                        let (slot, byte) = slot_of(byte_at);
                        let s = out.stack[slot];
                        out.stack[slot] = Slot::normalised(s.init | 1 << byte, Value::Scalar(Range::TOP));
                    }
                    for byte_at in at + len.lo as i64..at + len.hi as i64 {
                        let (slot, _) = slot_of(byte_at);
                        let s = out.stack[slot];
                        out.stack[slot] = Slot::normalised(s.init, Value::Scalar(Range::TOP));
                    }
                }
                Arg::InBuffer { len_arg } => {
                    let len = match out.reg(len_arg) {
                        Value::Scalar(len) if len.lo == len.hi && (1..=STACK_BYTES as u64).contains(&len.lo) => len.lo,
                        _ => {
                            let what = format!("the length in r{len_arg} is not a constant of 1 to {STACK_BYTES}");
                            return Err(fault(pc, format!("{name}: {what}")));
                        }
                    };
                    self.stack_bytes_initialised(pc, out, value, len as u32)
                        .map_err(|e| fault(pc, format!("{name}: r{r} ({len} bytes): {}", e.message)))?;
                }
                Arg::Length => {
                    if !matches!(value, Value::Scalar(_)) {
                        return Err(bad("not a length"));
                    }
                }
                Arg::Context => {
                    if value != Value::Ctx(Offsets::exact(0)) {
                        return Err(bad("not the context"));
                    }
                }
                Arg::Any => {}
            }
        }
        if matches!(signature.returns, Returns::MapValueOrNull) {
            // The copies of this call's previous result (an earlier loop iteration) are another
            // value than the one it returns now: they lose the id that ties them together.
            forget_lookup(out, pc as u32);
        }
        out.regs[0] = match signature.returns {
            Returns::Scalar(range) => Value::Scalar(range),
            Returns::MapValueOrNull => match map {
                Some(def) => Value::MapValueOrNull { size: def.value_size, id: pc as u32 },
                None => Value::Unknown,
            },
        };
        for r in 1..=5 {
            out.regs[r] = Value::Uninit;
        }
        Ok(())
    }

    fn stack_bytes_initialised(&self, pc: usize, state: &State, pointer: Value, len: u32) -> Result<(), AccError> {
        let Value::Stack(off) = pointer else { return Err(fault(pc, "not a stack pointer")) };
        let Some(at) = off.singleton() else { return Err(fault(pc, "a variable stack offset")) };
        if at < -STACK_BYTES || at + i64::from(len) > 0 {
            return Err(fault(pc, format!("fp{at:+} is outside the 512-byte stack")));
        }
        for byte_at in at..at + i64::from(len) {
            let (slot, byte) = slot_of(byte_at);
            if state.stack[slot].init & 1 << byte == 0 {
                return Err(fault(pc, format!("byte fp{byte_at:+} is not initialised")));
            }
        }
        Ok(())
    }

    /// The states on the taken and fall-through edges of a conditional jump.
    fn branch(&self, pc: usize, insn: &Insn, state: &State) -> Result<(Option<State>, Option<State>), AccError> {
        let is32 = insn.class() == CLASS_JMP32;
        let op = insn.jump_op();
        let dst = self.read(pc, state, insn.dst)?;
        let by_reg = insn.opcode & SRC_REG != 0;
        let src = if by_reg {
            self.read(pc, state, insn.src)?
        } else if is32 {
            Value::Scalar(Range::exact(insn.imm as u32 as u64))
        } else {
            Value::Scalar(Range::exact(insn.imm as i64 as u64))
        };
        // Null checks: `if rX == 0` / `if rX != 0` on a lookup result.
        if let (Value::MapValueOrNull { size, id }, Value::Scalar(Range { lo: 0, hi: 0 })) = (dst, src) {
            if !is32 && matches!(op, J_EQ | J_NE) {
                let null = refine_lookup(state, id, Value::Scalar(Range::exact(0)));
                let valid = refine_lookup(state, id, Value::MapValue { size, off: Offsets::exact(0) });
                return Ok(if op == J_EQ { (Some(null), Some(valid)) } else { (Some(valid), Some(null)) });
            }
        }
        let (Value::Scalar(a), Value::Scalar(b)) = (dst, src) else {
            return Ok((Some(state.clone()), Some(state.clone())));
        };
        if is32 && !(a.fits_u32() && b.fits_u32()) {
            return Ok((Some(state.clone()), Some(state.clone())));
        }
        // A register just loaded from a stack slot equals it: refine the slot too (a loop
        // counter the code generator keeps on the stack is compared through a register).
        let dst_slot = self.linked_slot(pc, insn.dst);
        let src_slot = if by_reg { self.linked_slot(pc, insn.src) } else { None };
        let edge = |cond: Option<(Range, Range)>| {
            cond.map(|(na, nb)| {
                let mut s = state.clone();
                s.regs[usize::from(insn.dst)] = Value::Scalar(na);
                if by_reg && usize::from(insn.src) != FRAME_POINTER {
                    s.regs[usize::from(insn.src)] = Value::Scalar(nb);
                }
                for (slot, range) in [(dst_slot, na), (src_slot, nb)] {
                    if let Some(k) = slot {
                        if s.stack[k].init == 0xff && matches!(s.stack[k].value, Value::Scalar(_)) {
                            s.stack[k].value = Value::Scalar(range);
                        }
                    }
                }
                s
            })
        };
        let signed_ok = a.hi <= i64::MAX as u64 && b.hi <= i64::MAX as u64;
        let (taken, fallthrough) = match op {
            J_EQ => (refine_eq(a, b), refine_ne(a, b)),
            J_NE => (refine_ne(a, b), refine_eq(a, b)),
            J_GT => (refine_lt(b, a).map(swap), refine_le(a, b)),
            J_GE => (refine_le(b, a).map(swap), refine_lt(a, b)),
            J_LT => (refine_lt(a, b), refine_le(b, a).map(swap)),
            J_LE => (refine_le(a, b), refine_lt(b, a).map(swap)),
            // With both sides in [0, i64::MAX] signed and unsigned order agree.
            J_SGT if signed_ok => (refine_lt(b, a).map(swap), refine_le(a, b)),
            J_SGE if signed_ok => (refine_le(b, a).map(swap), refine_lt(a, b)),
            J_SLT if signed_ok => (refine_lt(a, b), refine_le(b, a).map(swap)),
            J_SLE if signed_ok => (refine_le(a, b), refine_lt(b, a).map(swap)),
            _ => (Some((a, b)), Some((a, b))),
        };
        Ok((edge(taken), edge(fallthrough)))
    }
}

impl Program<'_> {
    /// The instruction before `pc` in straight-line code: `None` at a leader (another path may
    /// come in) or at the start.
    fn straight_line_previous(&self, pc: usize) -> Option<usize> {
        if self.leaders.contains(&pc) || pc == 0 {
            return None;
        }
        let previous = if pc >= 2 && self.code[pc - 1].is_second_slot { pc - 2 } else { pc - 1 };
        Some(previous)
    }

    /// The stack slot register `r` holds a copy of before instruction `pc`: `r` was loaded
    /// from that 8-byte slot in straight-line code, and neither changed since (no store in
    /// between that could reach the slot, no call).
    fn linked_slot(&self, pc: usize, r: u8) -> Option<usize> {
        let mut at = pc;
        while let Some(previous) = self.straight_line_previous(at) {
            let insn = self.code[previous];
            if matches!(insn.class(), CLASS_ST | CLASS_STX) || insn.is_call() {
                return None;
            }
            if insn.writes(r) {
                let is_stack_load = insn.opcode == LDX_DW && usize::from(insn.src) == FRAME_POINTER;
                let offset = i64::from(insn.offset);
                return (is_stack_load && offset % 8 == 0 && (-STACK_BYTES..0).contains(&offset))
                    .then(|| slot_of(offset).0);
            }
            at = previous;
        }
        None
    }

    /// The stack bytes `[lo, hi)` (frame-pointer relative) instruction `pc` may write in
    /// `state`: a store through a stack pointer, or a helper filling a stack buffer.
    pub fn stack_writes(&self, pc: usize, state: &State) -> Option<(i64, i64)> {
        let insn = self.code[pc];
        match insn.class() {
            CLASS_ST | CLASS_STX => match state.reg(insn.dst) {
                Value::Stack(off) => Some((
                    off.lo.saturating_add(i64::from(insn.offset)),
                    off.hi.saturating_add(i64::from(insn.offset)).saturating_add(i64::from(access_bytes(insn.opcode))),
                )),
                _ => None,
            },
            _ if insn.is_call() => {
                let signature = helper_signature(insn.imm)?;
                signature.args.iter().enumerate().find_map(|(index, arg)| match (*arg, state.reg(index as u8 + 1)) {
                    (Arg::OutBuffer { len_arg }, Value::Stack(off)) => {
                        let len = match state.reg(len_arg) {
                            Value::Scalar(r) => i64::try_from(r.hi).unwrap_or(i64::MAX),
                            _ => STACK_BYTES,
                        };
                        Some((off.lo, off.hi.saturating_add(len)))
                    }
                    _ => None,
                })
            }
            _ => None,
        }
    }
}

/// Per instruction, the hull of the stack bytes it may write (see [`Program::stack_writes`]).
pub type StackWrites = BTreeMap<usize, (i64, i64)>;

fn record_stack_writes(program: &Program, pc: usize, state: &State, writes: &mut StackWrites) {
    if let Some((lo, hi)) = program.stack_writes(pc, state) {
        let entry = writes.entry(pc).or_insert((lo, hi));
        *entry = (entry.0.min(lo), entry.1.max(hi));
    }
}

fn swap((a, b): (Range, Range)) -> (Range, Range) {
    (b, a)
}

fn nonempty(r: Range) -> Option<Range> {
    (r.lo <= r.hi).then_some(r)
}

fn refine_eq(a: Range, b: Range) -> Option<(Range, Range)> {
    let both = nonempty(Range { lo: a.lo.max(b.lo), hi: a.hi.min(b.hi) })?;
    Some((both, both))
}

fn refine_ne(a: Range, b: Range) -> Option<(Range, Range)> {
    let trim = |x: Range, k: u64| -> Option<Range> {
        if x.lo == k && x.hi == k {
            None
        } else if x.lo == k {
            Some(Range { lo: k + 1, hi: x.hi })
        } else if x.hi == k {
            Some(Range { lo: x.lo, hi: k - 1 })
        } else {
            Some(x)
        }
    };
    match (a.singleton(), b.singleton()) {
        (_, Some(k)) => Some((trim(a, k)?, b)),
        (Some(k), _) => Some((a, trim(b, k)?)),
        _ => Some((a, b)),
    }
}

/// Refines `a < b`.
fn refine_lt(a: Range, b: Range) -> Option<(Range, Range)> {
    let na = nonempty(Range { lo: a.lo, hi: a.hi.min(b.hi.checked_sub(1)?) })?;
    let nb = nonempty(Range { lo: b.lo.max(a.lo.checked_add(1)?), hi: b.hi })?;
    Some((na, nb))
}

/// Refines `a <= b`.
fn refine_le(a: Range, b: Range) -> Option<(Range, Range)> {
    let na = nonempty(Range { lo: a.lo, hi: a.hi.min(b.hi) })?;
    let nb = nonempty(Range { lo: b.lo.max(a.lo), hi: b.hi })?;
    Some((na, nb))
}

fn forget_lookup(state: &mut State, id: u32) {
    let is_it = |v: &Value| matches!(v, Value::MapValueOrNull { id: i, .. } if *i == id);
    for r in state.regs.iter_mut().filter(|v| is_it(v)) {
        *r = Value::Unknown;
    }
    for slot in state.stack.iter_mut().filter(|slot| is_it(&slot.value)) {
        slot.value = Value::Unknown;
    }
}

/// After a null check: every copy of lookup `id` (registers and spilled slots) becomes `to`.
fn refine_lookup(state: &State, id: u32, to: Value) -> State {
    let mut s = state.clone();
    let is_it = |v: &Value| matches!(v, Value::MapValueOrNull { id: i, .. } if *i == id);
    for r in s.regs.iter_mut().filter(|v| is_it(v)) {
        *r = to;
    }
    for slot in s.stack.iter_mut().filter(|slot| is_it(&slot.value)) {
        slot.value = to;
    }
    s
}

fn scalar_op(op: u8, insn: &Insn, a: Range, b: Range) -> Option<Range> {
    let shift = |b: Range| b.singleton().filter(|k| *k < 64).map(|k| k as u32);
    Some(match op {
        OP_ADD => Range { lo: a.lo.checked_add(b.lo)?, hi: a.hi.checked_add(b.hi)? },
        OP_SUB => Range { lo: a.lo.checked_sub(b.hi)?, hi: a.hi.checked_sub(b.lo)? },
        OP_MUL => Range { lo: a.lo.checked_mul(b.lo)?, hi: a.hi.checked_mul(b.hi)? },
        // Signed division (offset 1) is not modelled: only its divisor is checked.
        OP_DIV if insn.offset == 0 => Range { lo: a.lo / b.hi, hi: a.hi / b.lo },
        OP_MOD if insn.offset == 0 => Range::up_to(a.hi.min(b.hi - 1)),
        OP_AND => Range::up_to(a.hi.min(b.hi)),
        OP_OR | OP_XOR => Range::up_to(all_ones_covering(a.hi.max(b.hi))),
        OP_LSH => {
            let k = shift(b)?;
            (a.hi.leading_zeros() >= k).then(|| Range { lo: a.lo << k, hi: a.hi << k })?
        }
        OP_RSH => {
            let k = shift(b)?;
            Range { lo: a.lo >> k, hi: a.hi >> k }
        }
        OP_ARSH if a.hi <= i64::MAX as u64 => {
            let k = shift(b)?;
            Range { lo: a.lo >> k, hi: a.hi >> k }
        }
        OP_NEG => Range::exact(a.singleton()?.wrapping_neg()),
        OP_END => match insn.imm {
            16 => Range::width(2),
            32 => Range::width(4),
            _ => Range::TOP,
        },
        _ => return None,
    })
}

fn all_ones_covering(v: u64) -> u64 {
    if v == 0 {
        0
    } else {
        u64::MAX >> v.leading_zeros()
    }
}

fn offset_pointer(pointer: Value, by: Range, subtract: bool) -> Value {
    let Some(delta) = by.as_offsets() else { return Value::Unknown };
    let shift = |off: Offsets| if subtract { off.sub(delta) } else { off.add(delta) };
    match pointer {
        Value::Stack(off) => shift(off).map_or(Value::Unknown, Value::Stack),
        Value::Ctx(off) => shift(off).map_or(Value::Unknown, Value::Ctx),
        Value::MapValue { size, off } => shift(off).map_or(Value::Unknown, |off| Value::MapValue { size, off }),
        _ => Value::Unknown,
    }
}

fn map_value_access(pc: usize, size: u32, off: Offsets, insn_offset: i16, bytes: u32) -> Result<(), AccError> {
    let lo = off.lo.saturating_add(i64::from(insn_offset));
    let hi = off.hi.saturating_add(i64::from(insn_offset)).saturating_add(i64::from(bytes));
    if lo < 0 || hi > i64::from(size) {
        return Err(fault(pc, format!("accesses bytes [{lo}, {hi}) of a {size}-byte map value: out of bounds")));
    }
    Ok(())
}

fn slot_of(at: i64) -> (usize, u32) {
    let from_bottom = (at + STACK_BYTES) as usize;
    (from_bottom / 8, (from_bottom % 8) as u32)
}

fn byte_mask(byte: u32, bytes: u32) -> u8 {
    let ones: u16 = (1u16 << bytes) - 1;
    ((ones << byte) & 0xff) as u8
}

// ---------------------------------------------------------------------------------------------
// Control flow shared by producer and consumer.

/// Leaders (instruction 0 and jump targets), back edges, predecessors.
pub struct Shape {
    pub leaders: BTreeSet<usize>,
    /// `(source, header)` of every backward jump.
    pub back_edges: Vec<(usize, usize)>,
    pub successors: Vec<Vec<usize>>,
    pub predecessors: Vec<Vec<usize>>,
}

impl Shape {
    /// The CFG of code whose jumps `pcc::control_flow` already checked to land on instructions.
    pub fn of(code: &[Insn]) -> Shape {
        let n = code.len();
        let mut leaders = BTreeSet::from([0]);
        let mut back_edges = Vec::new();
        let mut successors = vec![Vec::new(); n];
        let mut predecessors = vec![Vec::new(); n];
        for (pc, insn) in code.iter().enumerate().filter(|(_, i)| !i.is_second_slot) {
            if insn.is_exit() {
                continue;
            }
            let next = pc + if insn.opcode == LD_IMM64 { 2 } else { 1 };
            if let Some(target) = insn.jump_target(pc).and_then(|t| usize::try_from(t).ok()).filter(|t| *t < n) {
                leaders.insert(target);
                successors[pc].push(target);
                if target <= pc {
                    back_edges.push((pc, target));
                }
            }
            let unconditional = insn.is_jump_class() && insn.jump_op() == J_JA;
            if !unconditional && next < n {
                successors[pc].push(next);
            }
        }
        for (pc, succ) in successors.iter().enumerate() {
            for s in succ {
                predecessors[*s].push(pc);
            }
        }
        Shape { leaders, back_edges, successors, predecessors }
    }

    /// The natural loop of back edge `source → header`: the header and every instruction that
    /// reaches `source` without passing through the header.
    pub fn natural_loop(&self, source: usize, header: usize) -> BTreeSet<usize> {
        let mut body = BTreeSet::from([header, source]);
        let mut queue = VecDeque::from([source]);
        while let Some(pc) = queue.pop_front() {
            if pc == header {
                continue;
            }
            for p in &self.predecessors[pc] {
                if body.insert(*p) {
                    queue.push_back(*p);
                }
            }
        }
        body
    }
}

/// A loop's certified bound: how often its back edge may be taken per entry into the loop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopBound {
    pub header: usize,
    pub back_edge: usize,
    pub max_trips: u64,
}

/// Re-derives a bound on the back edge `source → header` from the code and the (checked)
/// state at the header: a register `r` that the loop writes only with `r += c` (`c > 0`) at an
/// instruction on every path from the header to the back edge and in no inner loop, so `r`
/// strictly grows by `c` between visits of the header; its stated interval `[lo, hi]` there
/// then allows at most `(hi - lo) / c` back edges (and `hi + c` may not wrap around).
pub fn derive_trip_bound(
    program: &Program,
    shape: &Shape,
    stack_writes: &StackWrites,
    header_state: &State,
    source: usize,
    header: usize,
) -> Result<u64, String> {
    let code = program.code;
    if shape.back_edges.iter().filter(|(_, h)| *h == header).count() != 1 {
        return Err(format!("insn {header} is the target of several back edges: not a counted loop"));
    }
    let body = shape.natural_loop(source, header);
    // One entry: every edge into the loop from outside goes to the header.
    for pc in body.iter().filter(|pc| **pc != header) {
        if let Some(p) = shape.predecessors[*pc].iter().find(|p| !body.contains(p)) {
            return Err(format!("insn {p} jumps into the loop at insn {pc}, bypassing its header {header}"));
        }
    }
    let inner: Vec<BTreeSet<usize>> = shape
        .back_edges
        .iter()
        .filter(|(s, h)| *h != header && body.contains(s))
        .map(|(s, h)| shape.natural_loop(*s, *h))
        .collect();
    let mut best: Option<u64> = None;
    let mut why = String::from(
        "no register or stack slot of the loop is a counter (written only by `+= c`, c > 0, once per iteration)",
    );
    for r in 0u8..10 {
        let writers: Vec<usize> = body.iter().copied().filter(|pc| code[*pc].writes(r)).collect();
        let [w] = writers[..] else { continue };
        let insn = code[w];
        if insn.opcode != 0x07 || insn.imm <= 0 {
            continue;
        }
        let step = insn.imm as u64;
        if inner.iter().any(|l| l.contains(&w)) {
            why = format!("the counter r{r} is stepped at insn {w}, inside an inner loop");
            continue;
        }
        if !on_every_path(shape, &body, header, source, w) {
            why = format!("the counter r{r} step at insn {w} is not on every path round the loop");
            continue;
        }
        let Value::Scalar(range) = header_state.regs[usize::from(r)] else {
            why = format!("the counter r{r} has no stated interval at the loop header");
            continue;
        };
        if range.hi.checked_add(step).is_none() {
            why = format!("the counter r{r} in [{}, {}] may wrap around when stepped by {step}", range.lo, range.hi);
            continue;
        }
        let bound = (range.hi - range.lo) / step;
        best = Some(best.map_or(bound, |b: u64| b.min(bound)));
    }
    // A counter kept in a stack slot: one store in the loop may write the slot, and it
    // stores `slot + c`, loaded, stepped and stored in straight-line code.
    for k in 0..SLOTS {
        let (lo, hi) = (slot_offset(k), slot_offset(k) + 8);
        let writers: Vec<usize> = body
            .iter()
            .copied()
            .filter(|pc| stack_writes.get(pc).is_some_and(|(from, to)| *from < hi && lo < *to))
            .collect();
        let [w] = writers[..] else { continue };
        let Some(step) = slot_step(program, w, lo) else { continue };
        if inner.iter().any(|l| l.contains(&w)) || !on_every_path(shape, &body, header, source, w) {
            continue;
        }
        let slot = header_state.stack[k];
        let (0xff, Value::Scalar(range)) = (slot.init, slot.value) else { continue };
        if range.hi.checked_add(step).is_none() {
            continue;
        }
        let bound = (range.hi - range.lo) / step;
        best = Some(best.map_or(bound, |b: u64| b.min(bound)));
    }
    best.ok_or(why)
}

/// The step `c > 0` when instruction `w` stores `r` to the slot at `offset` and, in the
/// straight-line code before it, `r = *(u64 *)(r10 + offset); r += c` with nothing else
/// writing `r` in between.
fn slot_step(program: &Program, w: usize, offset: i64) -> Option<u64> {
    let store = program.code[w];
    if store.opcode != STX_DW || usize::from(store.dst) != FRAME_POINTER || i64::from(store.offset) != offset {
        return None;
    }
    let r = store.src;
    let mut step = None;
    let mut at = w;
    while let Some(previous) = program.straight_line_previous(at) {
        let insn = program.code[previous];
        if insn.writes(r) {
            match step {
                None if insn.opcode == 0x07 && insn.imm > 0 => step = Some(insn.imm as u64),
                Some(_)
                    if insn.opcode == LDX_DW
                        && usize::from(insn.src) == FRAME_POINTER
                        && i64::from(insn.offset) == offset =>
                {
                    return step;
                }
                _ => return None,
            }
        }
        at = previous;
    }
    None
}

/// Whether every path from `header` to `source` inside `body` passes `via`.
fn on_every_path(shape: &Shape, body: &BTreeSet<usize>, header: usize, source: usize, via: usize) -> bool {
    if via == header || via == source {
        return true;
    }
    let mut seen = BTreeSet::from([header]);
    let mut queue = VecDeque::from([header]);
    while let Some(pc) = queue.pop_front() {
        if pc == source {
            return false;
        }
        for s in &shape.successors[pc] {
            let back = pc == source && *s == header;
            if *s != via && !back && body.contains(s) && seen.insert(*s) {
                queue.push_back(*s);
            }
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// The producer: a worklist fixpoint over leaders.

/// The invariants of one program: the state at every reachable leader and each loop's bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invariants {
    pub states: BTreeMap<usize, State>,
    pub loops: Vec<LoopBound>,
}

/// Runs the analysis to a fixpoint and derives the loop bounds: what `ppisc` ships.
pub fn analyse(program: &Program) -> Result<Invariants, AccError> {
    let mut stack_writes = StackWrites::new();
    let code = program.code;
    let shape = Shape::of(code);
    let thresholds = Thresholds::of(code);
    let headers: BTreeSet<usize> = shape.back_edges.iter().map(|(_, h)| *h).collect();
    let mut states: BTreeMap<usize, State> = BTreeMap::from([(0, State::entry())]);
    let mut visits: BTreeMap<usize, u32> = BTreeMap::new();
    let mut work: BTreeSet<usize> = BTreeSet::from([0]);
    let mut live_back_edges = BTreeSet::new();
    let mut budget = FIXPOINT_STEPS_PER_INSN.saturating_mul(code.len().max(1));
    while let Some(leader) = work.pop_first() {
        let mut pc = leader;
        let mut state = states[&leader].clone();
        loop {
            budget = budget.checked_sub(1).ok_or_else(|| fault(pc, "the fixpoint does not converge"))?;
            let successors = program.step(pc, &state)?;
            record_stack_writes(program, pc, &state, &mut stack_writes);
            let mut fallthrough = None;
            for (target, edge) in successors.edges {
                let Some(edge) = edge else { continue };
                if target >= code.len() {
                    return Err(fault(pc, format!("jumps to {target}, outside the program")));
                }
                if target <= pc {
                    live_back_edges.insert((pc, target));
                }
                if !shape.leaders.contains(&target) {
                    fallthrough = Some(edge);
                    continue;
                }
                let merged = match states.get(&target) {
                    None => edge,
                    Some(old) => {
                        let count = visits.entry(target).or_insert(0);
                        *count += 1;
                        if headers.contains(&target) && *count > WIDEN_AFTER {
                            old.widen(&edge, &thresholds)
                        } else {
                            old.join(&edge)
                        }
                    }
                };
                if states.get(&target) != Some(&merged) {
                    states.insert(target, merged);
                    work.insert(target);
                }
            }
            match fallthrough {
                Some(next) => {
                    pc = program.next(pc);
                    state = next;
                }
                None => break,
            }
        }
    }
    let mut loops = Vec::new();
    for &(source, header) in &live_back_edges {
        let header_state = &states[&header];
        let trips = derive_trip_bound(program, &shape, &stack_writes, header_state, source, header)
            .map_err(|e| fault(source, e))?;
        loops.push(LoopBound { header, back_edge: source, max_trips: trips });
    }
    Ok(Invariants { states, loops })
}

// ---------------------------------------------------------------------------------------------
// The consumer: one linear pass.

/// Checks stated invariants against the code in one pass; returns the loop bounds the loader
/// may use for the cost (the stated ones, each at least what the code justifies).
pub fn check(program: &Program, stated: &Invariants) -> Result<Vec<LoopBound>, AccError> {
    check_with_dead_edges(program, stated).map(|(bounds, _)| bounds)
}

/// [`check`], also returning the edges `(from, to)` that no state the invariants allow can
/// take (a branch whose condition they decide): the load-time checker may leave them out of
/// the heaviest path, as the verifier left the paths it proved infeasible out of its bound.
pub fn check_with_dead_edges(
    program: &Program,
    stated: &Invariants,
) -> Result<(Vec<LoopBound>, BTreeSet<(usize, usize)>), AccError> {
    let mut dead_edges = BTreeSet::new();
    let code = program.code;
    let shape = Shape::of(code);
    if let Some(pc) = stated.states.keys().find(|pc| !shape.leaders.contains(pc)) {
        return Err(fault(*pc, "the invariants state a state here, but it is not a jump target"));
    }
    let Some(stated_entry) = stated.states.get(&0) else {
        return Err(fault(0, "the invariants give no entry state"));
    };
    State::entry()
        .leq(stated_entry, program.maps)
        .map_err(|why| fault(0, format!("the stated entry state is not the program's real entry state: {why}")))?;
    let mut stack_writes = StackWrites::new();
    // Taken back edges (a source the pass reaches, with a feasible edge).
    let mut live_back_edges = BTreeSet::new();
    // The state falling through into the next instruction, when that is not a leader.
    let mut incoming: Option<State> = None;
    for pc in (0..code.len()).filter(|pc| !code[*pc].is_second_slot) {
        let current = if shape.leaders.contains(&pc) { stated.states.get(&pc).cloned() } else { incoming.take() };
        incoming = None;
        let Some(current) = current else { continue };
        let successors = program.step(pc, &current)?;
        record_stack_writes(program, pc, &current, &mut stack_writes);
        for (target, edge) in successors.edges {
            let Some(edge) = edge else {
                dead_edges.insert((pc, target));
                continue;
            };
            if target >= code.len() {
                return Err(fault(pc, format!("jumps to {target}, outside the program")));
            }
            if target <= pc {
                live_back_edges.insert((pc, target));
            }
            if !shape.leaders.contains(&target) {
                // Only the fall-through reaches a non-leader.
                incoming = Some(edge);
                continue;
            }
            let Some(target_state) = stated.states.get(&target) else {
                if let Some((source, _)) = shape.back_edges.iter().find(|(_, header)| *header == target) {
                    return Err(fault(
                        *source,
                        format!(
                            "jumps back to insn {target}: the bytecode has a loop that the invariants do not bound \
                             (they give its head no state)"
                        ),
                    ));
                }
                return Err(fault(pc, format!("reaches insn {target}, to which the invariants give no state")));
            };
            edge.leq(target_state, program.maps).map_err(|why| {
                fault(pc, format!("the state flowing to insn {target} is not within the one stated there: {why}"))
            })?;
        }
    }
    // Loops: exactly the back edges, each with a bound the code justifies.
    let mut bounds = Vec::new();
    for &(source, header) in &shape.back_edges {
        let claimed = stated.loops.iter().find(|l| l.back_edge == source && l.header == header);
        if !live_back_edges.contains(&(source, header)) {
            // Never taken in any state the invariants allow.
            bounds.push(LoopBound { header, back_edge: source, max_trips: 0 });
            continue;
        }
        let Some(claimed) = claimed else {
            return Err(fault(
                source,
                format!("jumps back to insn {header}: the bytecode has a loop that the invariants do not bound"),
            ));
        };
        if claimed.max_trips > MAX_TRIPS {
            return Err(fault(
                source,
                format!("the loop claims {} trips, over the limit {MAX_TRIPS}", claimed.max_trips),
            ));
        }
        let derived = derive_trip_bound(program, &shape, &stack_writes, &stated.states[&header], source, header)
            .map_err(|why| {
                fault(source, format!("the loop at insn {header} has no bound the code justifies: {why}"))
            })?;
        if claimed.max_trips < derived {
            return Err(fault(
                source,
                format!(
                    "the loop at insn {header} is stated to run at most {} times, but the code only justifies {derived}",
                    claimed.max_trips
                ),
            ));
        }
        bounds.push(claimed.clone());
    }
    if let Some(extra) = stated.loops.iter().find(|l| !shape.back_edges.contains(&(l.back_edge, l.header))) {
        return Err(fault(
            extra.back_edge,
            format!("the invariants bound a loop back to insn {} that is not a back edge", extra.header),
        ));
    }
    Ok((bounds, dead_edges))
}

// ---------------------------------------------------------------------------------------------
// Text encoding: every location's value as a short string, so the entry is readable and diffs
// of tampered invariants are obvious.

fn show(v: Value, maps: &ObjectMaps) -> String {
    match v {
        Value::Uninit => "uninit".into(),
        Value::Unknown => "?".into(),
        Value::Scalar(r) => format!("s[{},{}]", r.lo, r.hi),
        Value::Ctx(o) => format!("ctx[{},{}]", o.lo, o.hi),
        Value::Stack(o) => format!("fp[{},{}]", o.lo, o.hi),
        Value::MapValue { size, off } => format!("mv{size}[{},{}]", off.lo, off.hi),
        Value::MapValueOrNull { size, id } => format!("mv{size}?#{id}"),
        Value::Map(m) => format!("map:{}", maps.get(m).map_or("?", |d| d.name.as_str())),
    }
}

fn show_slot(s: Slot, maps: &ObjectMaps) -> String {
    if s.init == 0xff {
        format!("ff:{}", show(s.value, maps))
    } else {
        format!("{:02x}", s.init)
    }
}

fn parse_value(text: &str, maps: &ObjectMaps) -> Option<Value> {
    fn pair<T: std::str::FromStr>(s: &str) -> Option<(T, T)> {
        let inner = s.strip_prefix('[')?.strip_suffix(']')?;
        let (a, b) = inner.split_once(',')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }
    let offsets = |s: &str| pair::<i64>(s).filter(|(lo, hi)| lo <= hi).map(|(lo, hi)| Offsets { lo, hi });
    if text == "?" {
        return Some(Value::Unknown);
    }
    if text == "uninit" {
        return Some(Value::Uninit);
    }
    if let Some(rest) = text.strip_prefix("s") {
        return pair::<u64>(rest).filter(|(lo, hi)| lo <= hi).map(|(lo, hi)| Value::Scalar(Range { lo, hi }));
    }
    if let Some(rest) = text.strip_prefix("ctx") {
        return offsets(rest).map(Value::Ctx);
    }
    if let Some(rest) = text.strip_prefix("fp") {
        return offsets(rest).map(Value::Stack);
    }
    if let Some(name) = text.strip_prefix("map:") {
        return maps.by_name(name).map(Value::Map);
    }
    if let Some(rest) = text.strip_prefix("mv") {
        if let Some((size, id)) = rest.split_once("?#") {
            return Some(Value::MapValueOrNull { size: size.parse().ok()?, id: id.parse().ok()? });
        }
        let open = rest.find('[')?;
        return Some(Value::MapValue { size: rest[..open].parse().ok()?, off: offsets(&rest[open..])? });
    }
    None
}

/// The JSON of [`INVARIANTS_ENTRY`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvariantsFile {
    pub format: String,
    pub version: u64,
    pub programs: BTreeMap<String, ProgramInvariants>,
}

/// One program's invariants as text: leader pc → location (`r0`…`r9`, `fp-8`…`fp-512`) → value.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramInvariants {
    pub states: BTreeMap<usize, BTreeMap<String, String>>,
    pub loops: Vec<LoopBound>,
}

impl Invariants {
    pub fn encode(&self, maps: &ObjectMaps) -> ProgramInvariants {
        let states = self
            .states
            .iter()
            .map(|(pc, state)| {
                let mut locations = BTreeMap::new();
                for (r, v) in state.regs.iter().enumerate().filter(|(_, v)| **v != Value::Uninit) {
                    locations.insert(format!("r{r}"), show(*v, maps));
                }
                for (k, slot) in state.stack.iter().enumerate().filter(|(_, s)| s.init != 0) {
                    locations.insert(format!("fp{}", slot_offset(k)), show_slot(*slot, maps));
                }
                (*pc, locations)
            })
            .collect();
        ProgramInvariants { states, loops: self.loops.clone() }
    }

    /// Parses one program's invariants; `Err` names the bad location.
    pub fn decode(text: &ProgramInvariants, maps: &ObjectMaps) -> Result<Invariants, AccError> {
        let mut states = BTreeMap::new();
        for (pc, locations) in &text.states {
            let mut state = State { regs: [Value::Uninit; 10], stack: [Slot::EMPTY; SLOTS] };
            for (location, value) in locations {
                let bad =
                    || fault(*pc, format!("the invariants' {location} = {value:?} is not a valid location and value"));
                if let Some(r) = location.strip_prefix('r').and_then(|r| r.parse::<usize>().ok()).filter(|r| *r < 10) {
                    state.regs[r] = parse_value(value, maps).ok_or_else(bad)?;
                } else if let Some(off) = location.strip_prefix("fp").and_then(|o| o.parse::<i64>().ok()) {
                    if !(-STACK_BYTES..0).contains(&off) || off % 8 != 0 {
                        return Err(bad());
                    }
                    let (k, _) = slot_of(off);
                    state.stack[k] = match value.split_once(':') {
                        Some(("ff", v)) => Slot { init: 0xff, value: parse_value(v, maps).ok_or_else(bad)? },
                        Some(_) => return Err(bad()),
                        None => {
                            let init = u8::from_str_radix(value, 16).map_err(|_| bad())?;
                            if init == 0xff {
                                return Err(bad());
                            }
                            Slot::normalised(init, Value::Unknown)
                        }
                    };
                } else {
                    return Err(bad());
                }
            }
            states.insert(*pc, state);
        }
        Ok(Invariants { states, loops: text.loops.clone() })
    }
}
