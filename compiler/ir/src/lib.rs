//! The ppis IR: each probe is a typed control-flow graph (petgraph) of simple instructions
//! over 64-bit virtual registers, stack slots and explicit map operations.
//!
//! Boundary: no eBPF encoding and no kernel knowledge beyond helper identities; the verifier
//! reasons about it and the code generator translates it, neither changes it.
//! Invariant: every block ends in exactly one terminator, and the graph's edges are exactly
//! the terminators' targets (the builder keeps them in sync).

pub mod builder;
mod parse;
mod print;

pub use builder::FunctionBuilder;
pub use ppis_lang::Span;

use petgraph::graph::{DiGraph, NodeIndex};

/// A whole compilation unit: maps shared by all probes, and one function per probe.
#[derive(Clone, Debug, Default)]
pub struct Module {
    pub maps: Vec<Map>,
    pub functions: Vec<Function>,
}

pub type MapId = usize;

/// A kernel map, described by what the kernel needs to create it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    /// Name in the object file (and, truncated, in the kernel).
    pub name: String,
    pub kind: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapType {
    Hash,
    Array,
    PerCpuHash,
    PerCpuArray,
    /// `BPF_MAP_TYPE_RINGBUF`: `max_entries` is the buffer size in bytes (a power-of-two
    /// multiple of the page size); key and value sizes are 0. Written only by `RingbufOutput`.
    RingBuf,
    /// `BPF_MAP_TYPE_STACK_TRACE`: `u32` stack id -> `value_size / 8` instruction pointers.
    /// Written only by `GetStackId`; never read by programs.
    StackTrace,
    /// `BPF_MAP_TYPE_LRU_HASH`: a shared hash map that, when full, evicts its least recently
    /// used entry on insert instead of failing (`lru_hash`).
    LruHash,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`: a per-CPU hash map with LRU eviction (keyed
    /// aggregations declared `lru`).
    LruPerCpuHash,
}

/// What a program's context (register r1 at entry) points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxKind {
    /// The tracepoint's raw record (fields at tracefs offsets).
    Tracepoint,
    /// `struct pt_regs` of a uprobe/uretprobe.
    PtRegs,
    /// `struct bpf_raw_tracepoint_args`: the raw tracepoint's arguments, one u64 each at
    /// offsets 0, 8, ... (also the context of `begin`/`end`, which read none).
    RawTracepoint,
    /// `struct bpf_perf_event_data` of a perf-event program (`profile`, `interval`); probes
    /// read nothing from it.
    PerfEvent,
}

/// A virtual register: holds one 64-bit value for the whole function (not SSA: it may be
/// assigned on several paths).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vreg(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VregType {
    /// A 64-bit integer.
    Scalar,
    /// A pointer to a value of map `MapId`, or null: only `BranchNull` may inspect it, and it
    /// may be dereferenced only where that branch proved it non-null.
    MapValue(MapId),
}

/// A fixed-size, 8-byte aligned region of the program's stack (map keys, values, strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(pub u32);

pub type Block = NodeIndex;

/// One probe's code.
#[derive(Clone, Debug)]
pub struct Function {
    /// Program name in the object file.
    pub name: String,
    pub ctx: CtxKind,
    pub vregs: Vec<VregType>,
    /// Size in bytes of each slot (a multiple of 8).
    pub slots: Vec<u32>,
    pub cfg: DiGraph<BasicBlock, ()>,
    pub entry: Block,
    /// Source span of the whole probe.
    pub span: Span,
    /// What triggers the probe and how often: the verifier's cost and overhead inputs.
    pub probe: ProbeMeta,
}

/// The attach mechanism, which decides the fixed cost of each event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Trigger {
    #[default]
    Tracepoint,
    Uprobe,
    Uretprobe,
    /// A raw tracepoint (`profile.triggers.raw_tracepoint`).
    RawTracepoint,
    /// A perf event overflow: `profile`, `interval` (`profile.triggers.perf_event`).
    PerfEvent,
    /// `begin`/`end`: run once through `BPF_PROG_TEST_RUN`; no trigger cost and no rate.
    Once,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProbeMeta {
    pub trigger: Trigger,
    /// Declared event rate (events per second, system-wide) and where it was declared.
    pub rate: Option<(u64, Span)>,
}

#[derive(Clone, Debug)]
pub struct BasicBlock {
    pub insts: Vec<Inst>,
    pub term: Terminator,
    /// Span of the terminator (the `if`, `return`, ...).
    pub term_span: Span,
}

/// An instruction with the source it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inst {
    pub op: Op,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    Reg(Vreg),
    Imm(i64),
}

/// Access width in bytes: 1, 2, 4 or 8.
pub type Width = u8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `dst = src`
    Mov {
        dst: Vreg,
        src: Operand,
    },
    /// `dst = lhs OP rhs`, 64-bit.
    Alu {
        op: AluOp,
        dst: Vreg,
        lhs: Vreg,
        rhs: Operand,
    },
    /// `dst = -src`
    Neg {
        dst: Vreg,
        src: Vreg,
    },
    /// `dst = (lhs CC rhs) ? 1 : 0`
    SetCond {
        cond: Cond,
        dst: Vreg,
        lhs: Vreg,
        rhs: Operand,
    },
    /// Keeps the low `width` bytes of `src`, zero- or sign-extended to 64 bits.
    Extend {
        dst: Vreg,
        src: Vreg,
        width: Width,
        signed: bool,
    },
    /// `dst = *(ctx + offset)`, `width` bytes, extended per `signed`.
    LoadCtx {
        dst: Vreg,
        offset: u32,
        width: Width,
        signed: bool,
    },
    /// `dst = *(slot + offset)`, `width` bytes, zero-extended.
    LoadSlot {
        dst: Vreg,
        slot: Slot,
        offset: u32,
        width: Width,
    },
    /// `*(slot + offset) = src`, low `width` bytes.
    StoreSlot {
        slot: Slot,
        offset: u32,
        width: Width,
        src: Operand,
    },
    /// Fills the whole slot with zero bytes.
    ZeroSlot {
        slot: Slot,
    },
    /// A kernel helper that returns a value (or fills a slot).
    Call {
        dst: Option<Vreg>,
        helper: Helper,
    },
    /// `dst = pointer to map[key]` or null. `key` holds the key in its first `key_size` bytes.
    MapLookup {
        dst: Vreg,
        map: MapId,
        key: Slot,
    },
    /// `map[key] = value`; `flags` as for `bpf_map_update_elem` (0 any, 1 no-exist, 2 exist).
    MapUpdate {
        map: MapId,
        key: Slot,
        value: Slot,
        flags: u64,
    },
    MapDelete {
        map: MapId,
        key: Slot,
    },
    /// `dst = *(ptr + offset)`, `width` bytes; `ptr` must be proven non-null.
    LoadPtr {
        dst: Vreg,
        ptr: Vreg,
        offset: u32,
        width: Width,
    },
    /// `*(ptr + offset) = src`; `ptr` must be proven non-null.
    StorePtr {
        ptr: Vreg,
        offset: u32,
        width: Width,
        src: Operand,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    Add,
    Sub,
    Mul,
    /// Unsigned division; division by zero gives 0 (eBPF semantics).
    UDiv,
    /// Unsigned remainder; `x % 0` gives `x` (eBPF semantics).
    UMod,
    And,
    Or,
    Xor,
    Shl,
    /// Logical shift right.
    LShr,
    /// Arithmetic shift right.
    AShr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq,
    Ne,
    /// Unsigned comparisons.
    Ult,
    Ule,
    Ugt,
    Uge,
    /// Signed comparisons.
    Slt,
    Sle,
    Sgt,
    Sge,
}

impl Cond {
    /// The condition that holds exactly when `self` does not.
    pub fn negate(self) -> Cond {
        use Cond::*;
        match self {
            Eq => Ne,
            Ne => Eq,
            Ult => Uge,
            Ule => Ugt,
            Ugt => Ule,
            Uge => Ult,
            Slt => Sge,
            Sle => Sgt,
            Sgt => Sle,
            Sge => Slt,
        }
    }
}

/// Kernel helpers the IR may call (besides the map operations, which are `Op`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Helper {
    /// `bpf_get_current_pid_tgid()`: tgid << 32 | pid.
    GetCurrentPidTgid,
    /// `bpf_get_current_uid_gid()`: gid << 32 | uid.
    GetCurrentUidGid,
    /// `bpf_get_current_comm(slot, 16)`: fills the first 16 bytes of `slot`; no result.
    GetCurrentComm { slot: Slot },
    /// `bpf_ktime_get_ns()`.
    KtimeGetNs,
    /// `bpf_get_smp_processor_id()`.
    GetSmpProcessorId,
    /// `bpf_probe_read_{user,kernel}_str(slot, len, ptr)`: copies the NUL-terminated string at
    /// `ptr` into the first `len` bytes of `slot` (at most `len - 1` bytes and a NUL; on a
    /// fault the `len` bytes are zeroed). Returns the length copied with the NUL, or < 0.
    ProbeReadStr { slot: Slot, len: u32, ptr: Vreg, space: AddressSpace },
    /// `bpf_ringbuf_output(map, slot, len, 0)`: copies the first `len` bytes of `slot` (which
    /// must be initialised) into ring buffer `map` as one record. Returns 0, or < 0 when the
    /// buffer is full (the record is then lost: the caller counts it).
    RingbufOutput { map: MapId, slot: Slot, len: u32 },
    /// `bpf_get_stackid(ctx, map, flags)`: walks the current user (`BPF_F_USER_STACK`) or
    /// kernel stack into stack-trace `map` and returns its id (`0..max_entries`), or a negative
    /// errno (`-EFAULT` no stack, `-ENOMEM`/`-EEXIST` map full or a hash collision). The result
    /// is a signed integer, never a pointer.
    GetStackId { map: MapId, user: bool },
    /// `bpf_get_current_cgroup_id()`: the id (inode number) of the current task's cgroup v2.
    GetCurrentCgroupId,
    /// `bpf_probe_read_{user,kernel}(slot, len, ptr)`: copies exactly `len` raw bytes at `ptr`
    /// into the first `len` bytes of `slot` (`buf(ptr, N)`); on a fault the `len` bytes are
    /// zeroed. Returns 0, or < 0 on a fault.
    ProbeRead { slot: Slot, len: u32, ptr: Vreg, space: AddressSpace },
}

/// The memory a pointer handed to a probe-read helper points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressSpace {
    User,
    Kernel,
}

impl Helper {
    /// The slot and byte count the helper writes, if it writes one.
    pub fn written_slot(&self) -> Option<(Slot, u32)> {
        match *self {
            Helper::GetCurrentComm { slot } => Some((slot, 16)),
            Helper::ProbeReadStr { slot, len, .. } => Some((slot, len)),
            Helper::ProbeRead { slot, len, .. } => Some((slot, len)),
            _ => None,
        }
    }

    /// The slot and byte count the helper reads, if it reads one.
    pub fn read_slot(&self) -> Option<(Slot, u32)> {
        match *self {
            Helper::RingbufOutput { slot, len, .. } => Some((slot, len)),
            _ => None,
        }
    }

    /// The map the helper operates on, if any.
    pub fn map(&self) -> Option<MapId> {
        match *self {
            Helper::RingbufOutput { map, .. } => Some(map),
            Helper::GetStackId { map, .. } => Some(map),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminator {
    Jump(Block),
    /// `if lhs COND rhs goto then else otherwise`
    Branch {
        cond: Cond,
        lhs: Vreg,
        rhs: Operand,
        then: Block,
        otherwise: Block,
    },
    /// Tests a `MapValue` pointer.
    BranchNull {
        ptr: Vreg,
        is_null: Block,
        not_null: Block,
    },
    /// Ends the program (returns 0 to the kernel).
    Return,
}

impl Terminator {
    pub fn successors(&self) -> Vec<Block> {
        match *self {
            Terminator::Jump(b) => vec![b],
            Terminator::Branch { then, otherwise, .. } => vec![then, otherwise],
            Terminator::BranchNull { is_null, not_null, .. } => vec![is_null, not_null],
            Terminator::Return => vec![],
        }
    }
}

impl Op {
    /// The register this instruction writes, if any.
    pub fn def(&self) -> Option<Vreg> {
        match *self {
            Op::Mov { dst, .. }
            | Op::Alu { dst, .. }
            | Op::Neg { dst, .. }
            | Op::SetCond { dst, .. }
            | Op::Extend { dst, .. }
            | Op::LoadCtx { dst, .. }
            | Op::LoadSlot { dst, .. }
            | Op::MapLookup { dst, .. }
            | Op::LoadPtr { dst, .. } => Some(dst),
            Op::Call { dst, .. } => dst,
            Op::StoreSlot { .. }
            | Op::ZeroSlot { .. }
            | Op::MapUpdate { .. }
            | Op::MapDelete { .. }
            | Op::StorePtr { .. } => None,
        }
    }

    /// The registers this instruction reads.
    pub fn uses(&self) -> Vec<Vreg> {
        fn opnd(o: Operand) -> Option<Vreg> {
            match o {
                Operand::Reg(r) => Some(r),
                Operand::Imm(_) => None,
            }
        }
        match *self {
            Op::Mov { src, .. } => opnd(src).into_iter().collect(),
            Op::Alu { lhs, rhs, .. } | Op::SetCond { lhs, rhs, .. } => std::iter::once(lhs).chain(opnd(rhs)).collect(),
            Op::Neg { src, .. } | Op::Extend { src, .. } => vec![src],
            Op::StoreSlot { src, .. } => opnd(src).into_iter().collect(),
            Op::LoadPtr { ptr, .. } => vec![ptr],
            Op::Call { helper: Helper::ProbeReadStr { ptr, .. }, .. } => vec![ptr],
            Op::StorePtr { ptr, src, .. } => std::iter::once(ptr).chain(opnd(src)).collect(),
            Op::LoadCtx { .. }
            | Op::LoadSlot { .. }
            | Op::ZeroSlot { .. }
            | Op::Call { .. }
            | Op::MapLookup { .. }
            | Op::MapUpdate { .. }
            | Op::MapDelete { .. } => vec![],
        }
    }
}

impl Terminator {
    /// The registers this terminator reads.
    pub fn uses(&self) -> Vec<Vreg> {
        match *self {
            Terminator::Branch { lhs, rhs: Operand::Reg(r), .. } => vec![lhs, r],
            Terminator::Branch { lhs, .. } => vec![lhs],
            Terminator::BranchNull { ptr, .. } => vec![ptr],
            Terminator::Jump(_) | Terminator::Return => vec![],
        }
    }
}

impl Function {
    /// Blocks in reverse post-order from the entry (a topological order when acyclic).
    pub fn reverse_postorder(&self) -> Vec<Block> {
        let mut dfs = petgraph::visit::DfsPostOrder::new(&self.cfg, self.entry);
        let mut order = Vec::new();
        while let Some(b) = dfs.next(&self.cfg) {
            order.push(b);
        }
        order.reverse();
        order
    }
}

pub use parse::{parse_module, ParseError};
pub use print::{print_function, print_module};
