//! Exports a probe's IR as a Coq proof file that `proofs/` (logical path `Ppis`) checks.
//!
//! The file holds the function as a Coq term, the cost table it is priced with, and theorems
//! proved by running the Coq checkers (`check_acyclic`, `wcet`, `check_bounds`) inside Coq;
//! combined with the library's soundness theorems they say that every run of the probe
//! terminates, stays within the given cost bound and never accesses memory out of bounds.
//!
//! Boundary: this module only prints text; `coqc` does the checking. Blocks are renumbered in
//! a reverse post-order from the entry (so block 0 is the entry and, when the control flow is
//! acyclic, every edge goes forward); unreachable blocks are left out since they never run.
//! [`structural_wcet`] computes exactly what the Coq `wcet` computes on the exported term, so
//! a caller can pass a bound Coq will accept.
//!
//! A probe with loops is exported with untrusted hints that `proofs/Loops.v` checks (per
//! block, intervals known on entry; per loop, its blocks, latch, counter, step, limit, start
//! and trip count) and potentials for the step count and the cost; its bound is the entry's
//! cost potential, which is what the Coq `loop_bound` computes.
//!
//! Not every probe fits the Coq model ([`unsupported`]): one with a loop of another shape is
//! exported as a file holding only a comment that says why; the verifier's certificate alone
//! covers it, and its structural bound is `u64::MAX` (none). See docs/proofs.md.

use std::fmt::Write;

use ppis_ir::{AddressSpace, AluOp, Block, Cond, Function, Helper, Map, MapType, Op, Operand, Terminator, VregType};

/// A helper's identity without its arguments: what helpers are priced by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HelperKind {
    GetCurrentPidTgid,
    GetCurrentUidGid,
    GetCurrentComm,
    KtimeGetNs,
    GetSmpProcessorId,
    /// `bpf_probe_read_user_str`.
    ProbeReadUserStr,
    /// `bpf_probe_read_kernel_str`.
    ProbeReadKernelStr,
    /// `bpf_ringbuf_output` (`emit`, `print`): reads its record's `len` bytes from a slot,
    /// priced `Helper + len × HelperPerByte` like a read of `len` bytes.
    RingbufOutput,
    /// `bpf_get_stackid` (`ustack`/`kstack` keys): an oracle scalar (a stack id or a negative
    /// errno), no slot access.
    GetStackId,
    /// `bpf_get_current_cgroup_id` (`cgroup`): an oracle scalar, like `ktime_get_ns`.
    GetCurrentCgroupId,
    /// `bpf_probe_read_{user,kernel}` (`buf(ptr, N)`): one Coq kind for both spaces, priced at
    /// the costlier of the two (a sound over-approximation).
    ProbeRead,
}

impl HelperKind {
    /// The helpers of the Coq cost table (`helper_kind` in `proofs/IR.v`), in its order.
    pub const ALL: [HelperKind; 11] = [
        HelperKind::GetCurrentPidTgid,
        HelperKind::GetCurrentUidGid,
        HelperKind::GetCurrentComm,
        HelperKind::KtimeGetNs,
        HelperKind::GetSmpProcessorId,
        HelperKind::ProbeReadUserStr,
        HelperKind::ProbeReadKernelStr,
        HelperKind::GetCurrentCgroupId,
        HelperKind::ProbeRead,
        HelperKind::RingbufOutput,
        HelperKind::GetStackId,
    ];

    /// The helper's kind.
    pub fn of(helper: Helper) -> HelperKind {
        match helper {
            Helper::GetCurrentPidTgid => HelperKind::GetCurrentPidTgid,
            Helper::GetCurrentUidGid => HelperKind::GetCurrentUidGid,
            Helper::GetCurrentComm { .. } => HelperKind::GetCurrentComm,
            Helper::KtimeGetNs => HelperKind::KtimeGetNs,
            Helper::GetSmpProcessorId => HelperKind::GetSmpProcessorId,
            Helper::ProbeReadStr { space: AddressSpace::User, .. } => HelperKind::ProbeReadUserStr,
            Helper::ProbeReadStr { space: AddressSpace::Kernel, .. } => HelperKind::ProbeReadKernelStr,
            Helper::RingbufOutput { .. } => HelperKind::RingbufOutput,
            Helper::GetStackId { .. } => HelperKind::GetStackId,
            Helper::GetCurrentCgroupId => HelperKind::GetCurrentCgroupId,
            Helper::ProbeRead { .. } => HelperKind::ProbeRead,
        }
    }

    fn coq(self) -> &'static str {
        match self {
            HelperKind::GetCurrentPidTgid => "HPidTgid",
            HelperKind::GetCurrentUidGid => "HUidGid",
            HelperKind::GetCurrentComm => "HComm",
            HelperKind::KtimeGetNs => "HKtime",
            HelperKind::GetSmpProcessorId => "HSmpId",
            HelperKind::ProbeReadUserStr => "HReadUserStr",
            HelperKind::ProbeReadKernelStr => "HReadKernelStr",
            HelperKind::RingbufOutput => "HRingbufOutput",
            HelperKind::GetStackId => "HGetStackId",
            HelperKind::GetCurrentCgroupId => "HCgroup",
            HelperKind::ProbeRead => "HProbeRead",
        }
    }
}

/// One entry of the cost table the Coq file prices a probe with (the record `cost_table` of
/// `proofs/IR.v`): an instruction class, an ALU operation, a helper, a map operation on a
/// kind of map, or a terminator. Costs never depend on run-time values: a string read with
/// bound `len` costs `Helper(kind) + len × HelperPerByte(kind)` (`op_cost` in `proofs/IR.v`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostItem {
    Mov,
    Alu(AluOp),
    Neg,
    SetCond,
    Extend,
    LoadCtx,
    LoadSlot,
    StoreSlot,
    ZeroSlot,
    /// A helper call's fixed part (the whole cost of a helper without a byte bound).
    Helper(HelperKind),
    /// What each byte a helper reads or writes adds (a string or raw read's bound `len`, a ring
    /// buffer record's `len`); 0 for other helpers.
    HelperPerByte(HelperKind),
    MapLookup(MapType),
    MapUpdate(MapType),
    MapDelete(MapType),
    LoadPtr,
    StorePtr,
    Jump,
    Branch,
    BranchNull,
    Return,
}

const ALU_OPS: [AluOp; 11] = [
    AluOp::Add,
    AluOp::Sub,
    AluOp::Mul,
    AluOp::UDiv,
    AluOp::UMod,
    AluOp::And,
    AluOp::Or,
    AluOp::Xor,
    AluOp::Shl,
    AluOp::LShr,
    AluOp::AShr,
];

/// The Coq `map_kind`s, one per constructor.
const MAP_TYPES: [MapType; 8] = [
    MapType::Hash,
    MapType::Array,
    MapType::PerCpuHash,
    MapType::PerCpuArray,
    MapType::RingBuf,
    MapType::StackTrace,
    MapType::LruHash,
    MapType::LruPerCpuHash,
];

impl CostItem {
    /// What `op` is priced as (for a string read, its fixed part: see [`op_cost`]); `None`
    /// for a map operation on a map that does not exist, which the Coq `op_cost` prices at 0
    /// (and `check_bounds` rejects).
    pub fn of_op(op: &Op, maps: &[Map]) -> Option<CostItem> {
        let map_kind = |m: usize| maps.get(m).map(|map| map.kind);
        Some(match op {
            Op::Mov { .. } => CostItem::Mov,
            Op::Alu { op, .. } => CostItem::Alu(*op),
            Op::Neg { .. } => CostItem::Neg,
            Op::SetCond { .. } => CostItem::SetCond,
            Op::Extend { .. } => CostItem::Extend,
            Op::LoadCtx { .. } => CostItem::LoadCtx,
            Op::LoadSlot { .. } => CostItem::LoadSlot,
            Op::StoreSlot { .. } => CostItem::StoreSlot,
            Op::ZeroSlot { .. } => CostItem::ZeroSlot,
            Op::Call { helper, .. } => CostItem::Helper(HelperKind::of(*helper)),
            Op::MapLookup { map, .. } => CostItem::MapLookup(map_kind(*map)?),
            Op::MapUpdate { map, .. } => CostItem::MapUpdate(map_kind(*map)?),
            Op::MapDelete { map, .. } => CostItem::MapDelete(map_kind(*map)?),
            Op::LoadPtr { .. } => CostItem::LoadPtr,
            Op::StorePtr { .. } => CostItem::StorePtr,
        })
    }

    pub fn of_terminator(term: &Terminator) -> CostItem {
        match term {
            Terminator::Jump(_) => CostItem::Jump,
            Terminator::Branch { .. } => CostItem::Branch,
            Terminator::BranchNull { .. } => CostItem::BranchNull,
            Terminator::Return => CostItem::Return,
        }
    }
}

/// A block as exported: its place in the exported order and its successors' places (a
/// successor missing from the graph gets the out-of-range place `blocks.len()`, which the Coq
/// `check_acyclic` rejects).
struct OrderedBlock {
    block: Block,
    successors: Vec<usize>,
}

/// The reachable blocks in reverse post-order from the entry, following the terminators (the
/// graph's edges are meant to equal them, but the terminators are what runs).
fn ordered_blocks(func: &Function) -> Vec<OrderedBlock> {
    let exists = |b: Block| func.cfg.node_weight(b).is_some();
    let mut postorder = Vec::new();
    if exists(func.entry) {
        let mut visited = vec![false; func.cfg.node_count()];
        visited[func.entry.index()] = true;
        // Each frame: a block and how many of its successors have been looked at.
        let mut stack = vec![(func.entry, 0usize)];
        while let Some((block, next)) = stack.pop() {
            let successors = func.cfg[block].term.successors();
            match successors.get(next) {
                Some(&succ) => {
                    stack.push((block, next + 1));
                    if exists(succ) && !visited[succ.index()] {
                        visited[succ.index()] = true;
                        stack.push((succ, 0));
                    }
                }
                None => postorder.push(block),
            }
        }
    }
    postorder.reverse();
    let mut place = vec![None; func.cfg.node_count()];
    for (i, b) in postorder.iter().enumerate() {
        place[b.index()] = Some(i);
    }
    let missing = postorder.len();
    postorder
        .iter()
        .map(|&block| OrderedBlock {
            block,
            successors: func.cfg[block]
                .term
                .successors()
                .iter()
                .map(|s| place.get(s.index()).copied().flatten().unwrap_or(missing))
                .collect(),
        })
        .collect()
}

/// `op`'s price as the Coq `op_cost` computes it: its item's, plus for a string or raw-byte
/// read [`CostItem::HelperPerByte`] times its bound, and for a ring buffer output times its
/// record's size.
pub fn op_cost(op: &Op, maps: &[Map], cost: &dyn Fn(CostItem) -> u64) -> u64 {
    let fixed = CostItem::of_op(op, maps).map_or(0, cost);
    let per_byte = match op {
        Op::Call {
            helper:
                h @ (Helper::ProbeReadStr { len, .. } | Helper::ProbeRead { len, .. } | Helper::RingbufOutput { len, .. }),
            ..
        } => cost(CostItem::HelperPerByte(HelperKind::of(*h))).saturating_mul(u64::from(*len)),
        _ => 0,
    };
    fixed.saturating_add(per_byte)
}

fn block_cost(func: &Function, block: Block, maps: &[Map], cost: &dyn Fn(CostItem) -> u64) -> u64 {
    let bb = &func.cfg[block];
    bb.insts
        .iter()
        .fold(0u64, |acc, inst| acc.saturating_add(op_cost(&inst.op, maps, cost)))
        .saturating_add(cost(CostItem::of_terminator(&bb.term)))
}

/// The costliest path from the entry under `cost`, computed exactly as the Coq `wcet`
/// computes it on the exported function (`wcet_from` in `proofs/Checker.v`): one pass from
/// the last block to the first, each block adding its cost to the costliest successor's
/// entry. Infeasible paths count too, so this is at least any path-sensitive bound. For a
/// probe with loops it is the entry's cost potential of its loop certificate (what the Coq
/// `loop_bound` computes: trips × costliest iteration, nested loops composed); `u64::MAX`
/// for an [`unsupported`] probe. Sums saturate at `u64::MAX`, where Coq's unbounded numbers
/// would go on.
pub fn structural_wcet(func: &Function, maps: &[Map], cost: &dyn Fn(CostItem) -> u64) -> u64 {
    if unsupported(func).is_some() {
        return u64::MAX;
    }
    match loop_certificate(func, maps, cost) {
        Ok(Some(certificate)) => {
            // What the Coq `loop_bound` computes: the entry's potential.
            let entry = certificate.cost.blocks.first().copied().unwrap_or(0);
            return u64::try_from(entry).unwrap_or(u64::MAX);
        }
        Err(_) => return u64::MAX,
        Ok(None) => {}
    }
    let blocks = ordered_blocks(func);
    let mut table = vec![0u64; blocks.len()];
    for i in (0..blocks.len()).rev() {
        let later = &table[i + 1..];
        // Coq's `nth (t - S i) later 0`: truncated subtraction, 0 past the end.
        let costliest_next =
            blocks[i].successors.iter().map(|&t| later.get(t.saturating_sub(i + 1)).copied().unwrap_or(0)).max();
        table[i] = block_cost(func, blocks[i].block, maps, cost).saturating_add(costliest_next.unwrap_or(0));
    }
    table.first().copied().unwrap_or(0)
}

/// Names the generated file may not define: Coq keywords and the library's own names.
const RESERVED: &[&str] = &[
    "as",
    "at",
    "cofix",
    "else",
    "end",
    "exists",
    "exists2",
    "fix",
    "for",
    "forall",
    "fun",
    "if",
    "IF",
    "in",
    "let",
    "match",
    "mod",
    "return",
    "then",
    "using",
    "where",
    "with",
    "Prop",
    "Set",
    "SProp",
    "Type",
    "nat",
    "N",
    "Z",
    "bool",
    "list",
    "option",
    "function",
    "block",
    "op",
    "operand",
    "terminator",
    "map_decl",
    "cost_table",
    "env",
    "state",
    "value",
    "result",
    "run",
    "exec",
    "wcet",
    "wcet_from",
    "wcet_table",
    "check_acyclic",
    "check_bounds",
    "guarantees",
    "certify",
    "IR",
    "Semantics",
    "Checker",
    "Soundness",
    "Assumptions",
    "Ppis",
    "Coq",
    "Loops",
    "hints",
    "potentials",
    "loop_bound",
    "within",
    "one",
    "guarantees_within",
    "certify_loops",
];

/// The Coq identifier (and file stem) for a probe name: letters, digits and `_` only, not
/// starting with a digit, and never a keyword or a library name.
pub fn coq_identifier(name: &str) -> String {
    let mut ident: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) || ident.starts_with('_') {
        ident.insert_str(0, "probe_");
    }
    if RESERVED.contains(&ident.as_str()) {
        ident.push_str("_probe");
    }
    ident
}

/// The file name `export_function` output must be saved under: Coq takes the module name
/// from it.
pub fn proof_file_name(func: &Function) -> String {
    format!("{}.v", coq_identifier(&func.name))
}

/// `text` made safe inside a Coq comment, where `(*`, `*)` and `"` are still lexed.
fn comment_text(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || "_-.:@/ ".contains(c) { c } else { '?' }).collect()
}

fn n(x: impl Into<u64>) -> String {
    format!("{}%N", x.into())
}

fn z(x: i128) -> String {
    if x < 0 {
        format!("({x})%Z")
    } else {
        format!("{x}%Z")
    }
}

fn operand(o: Operand) -> String {
    match o {
        Operand::Reg(r) => format!("(Reg {})", r.0),
        Operand::Imm(i) => format!("(Imm {})", z(i.into())),
    }
}

fn alu(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "Add",
        AluOp::Sub => "Sub",
        AluOp::Mul => "Mul",
        AluOp::UDiv => "UDiv",
        AluOp::UMod => "UMod",
        AluOp::And => "And",
        AluOp::Or => "Or",
        AluOp::Xor => "Xor",
        AluOp::Shl => "Shl",
        AluOp::LShr => "LShr",
        AluOp::AShr => "AShr",
    }
}

fn cond(c: Cond) -> &'static str {
    match c {
        Cond::Eq => "Ceq",
        Cond::Ne => "Cne",
        Cond::Ult => "Cult",
        Cond::Ule => "Cule",
        Cond::Ugt => "Cugt",
        Cond::Uge => "Cuge",
        Cond::Slt => "Cslt",
        Cond::Sle => "Csle",
        Cond::Sgt => "Csgt",
        Cond::Sge => "Csge",
    }
}

fn map_kind(kind: MapType) -> &'static str {
    match kind {
        MapType::Hash => "Hash",
        MapType::Array => "Array",
        MapType::PerCpuHash => "PerCpuHash",
        MapType::PerCpuArray => "PerCpuArray",
        MapType::RingBuf => "RingBuf",
        MapType::StackTrace => "StackTrace",
        // The Coq model has no eviction: an LRU map behaves as the hash map it otherwise is
        // (an insert that may fail is a sound over-approximation of one that evicts), but is
        // a kind of its own so that its operations are priced as the verifier prices them.
        MapType::LruHash => "LruHash",
        MapType::LruPerCpuHash => "LruPerCpuHash",
    }
}

fn helper(h: Helper) -> String {
    match h {
        Helper::GetCurrentPidTgid => "GetCurrentPidTgid".into(),
        Helper::GetCurrentUidGid => "GetCurrentUidGid".into(),
        Helper::GetCurrentComm { slot } => format!("(GetCurrentComm {})", slot.0),
        Helper::KtimeGetNs => "KtimeGetNs".into(),
        Helper::GetSmpProcessorId => "GetSmpProcessorId".into(),
        Helper::ProbeReadStr { slot, len, ptr, space } => {
            let space = match space {
                AddressSpace::User => "UserSpace",
                AddressSpace::Kernel => "KernelSpace",
            };
            format!("(ProbeReadStr {} {} {} {space})", slot.0, n(len), ptr.0)
        }
        Helper::RingbufOutput { map, slot, len } => format!("(RingbufOutput {map} {} {})", slot.0, n(len)),
        Helper::GetStackId { map, user } => format!("(GetStackId {map} {user})"),
        Helper::GetCurrentCgroupId => "GetCurrentCgroupId".into(),
        Helper::ProbeRead { slot, len, ptr, .. } => format!("(ProbeRead {} {} {})", slot.0, n(len), ptr.0),
    }
}

/// Why the Coq model cannot express `func`, if it cannot: a loop whose hints cannot be
/// computed (`proofs/Loops.v` handles loops whose header tests `counter < bound` unsigned,
/// whose counter only the latch steps, once, by a positive constant, and whose bound has a
/// known maximum: the shape `for` lowers to and the verifier accepts). Every helper is in the
/// model (ring buffer output and stack ids included).
pub fn unsupported(func: &Function) -> Option<String> {
    let blocks = ordered_blocks(func);
    if let Err(why) = loop_hints(func, &blocks) {
        return Some(format!("it contains a loop the Coq loop checker cannot certify: {why}"));
    }
    None
}

fn op(o: &Op) -> String {
    match *o {
        Op::Mov { dst, src } => format!("Mov {} {}", dst.0, operand(src)),
        Op::Alu { op, dst, lhs, rhs } => format!("Alu {} {} {} {}", alu(op), dst.0, lhs.0, operand(rhs)),
        Op::Neg { dst, src } => format!("Neg {} {}", dst.0, src.0),
        Op::SetCond { cond: c, dst, lhs, rhs } => format!("SetCond {} {} {} {}", cond(c), dst.0, lhs.0, operand(rhs)),
        Op::Extend { dst, src, width, signed } => format!("Extend {} {} {} {signed}", dst.0, src.0, n(width)),
        Op::LoadCtx { dst, offset, width, signed } => format!("LoadCtx {} {} {} {signed}", dst.0, n(offset), n(width)),
        Op::LoadSlot { dst, slot, offset, width } => {
            format!("LoadSlot {} {} {} {}", dst.0, slot.0, n(offset), n(width))
        }
        Op::StoreSlot { slot, offset, width, src } => {
            format!("StoreSlot {} {} {} {}", slot.0, n(offset), n(width), operand(src))
        }
        Op::ZeroSlot { slot } => format!("ZeroSlot {}", slot.0),
        Op::Call { dst, helper: h } => {
            let dst = dst.map_or("None".to_string(), |d| format!("(Some {})", d.0));
            format!("Call {dst} {}", helper(h))
        }
        Op::MapLookup { dst, map, key } => format!("MapLookup {} {map} {}", dst.0, key.0),
        Op::MapUpdate { map, key, value, flags } => {
            format!("MapUpdate {map} {} {} {}", key.0, value.0, z(flags.into()))
        }
        Op::MapDelete { map, key } => format!("MapDelete {map} {}", key.0),
        Op::LoadPtr { dst, ptr, offset, width } => format!("LoadPtr {} {} {} {}", dst.0, ptr.0, n(offset), n(width)),
        Op::StorePtr { ptr, offset, width, src } => {
            format!("StorePtr {} {} {} {}", ptr.0, n(offset), n(width), operand(src))
        }
    }
}

fn terminator(term: &Terminator, successors: &[usize]) -> String {
    // `successors` lists the exported places in the order of `Terminator::successors`.
    let at = |i: usize| successors.get(i).copied().unwrap_or(successors.len());
    match *term {
        Terminator::Jump(_) => format!("Jump {}", at(0)),
        Terminator::Branch { cond: c, lhs, rhs, .. } => {
            format!("Branch {} {} {} {} {}", cond(c), lhs.0, operand(rhs), at(0), at(1))
        }
        Terminator::BranchNull { ptr, .. } => format!("BranchNull {} {} {}", ptr.0, at(0), at(1)),
        Terminator::Return => "Return".into(),
    }
}

/// `fun x => match x with A => a | B => b end`, pricing each of `items`.
fn cost_match(items: impl IntoIterator<Item = (&'static str, CostItem)>, cost: &dyn Fn(CostItem) -> u64) -> String {
    let arms: Vec<String> = items.into_iter().map(|(name, item)| format!("{name} => {}", n(cost(item)))).collect();
    format!("fun x => match x with {} end", arms.join(" | "))
}

/// The Coq term of `func` (named `ident`), without the surrounding file.
fn function_term(func: &Function, maps: &[Map], ident: &str) -> String {
    let mut out = String::new();
    let slots: Vec<String> = func.slots.iter().map(|&s| n(s)).collect();
    // Every map, in order, so that map `m` of the IR is map `m` of the Coq term.
    let map_decls: Vec<String> = maps
        .iter()
        .map(|m| {
            format!(
                "\n    (* {} *) {{| map_type := {}; key_size := {}; value_size := {}; max_entries := {} |}}",
                comment_text(&m.name),
                map_kind(m.kind),
                n(m.key_size),
                n(m.value_size),
                n(m.max_entries)
            )
        })
        .collect();
    let reg_types: Vec<String> = func
        .vregs
        .iter()
        .map(|t| match t {
            VregType::Scalar => "None".to_string(),
            VregType::MapValue(m) => format!("(Some {m})"),
        })
        .collect();
    let blocks: Vec<String> = ordered_blocks(func)
        .iter()
        .enumerate()
        .map(|(i, ob)| {
            let bb = &func.cfg[ob.block];
            let ops: Vec<String> = bb.insts.iter().map(|inst| format!("\n        {}", op(&inst.op))).collect();
            let ops = if ops.is_empty() { "[]".to_string() } else { format!("[{}\n      ]", ops.join(";")) };
            format!(
                "\n    (* {i}: bb{} *) {{| b_ops := {ops};\n      b_term := {} |}}",
                ob.block.index(),
                terminator(&bb.term, &ob.successors)
            )
        })
        .collect();
    let list =
        |items: &[String]| if items.is_empty() { "[]".to_string() } else { format!("[{}\n  ]", items.join(";")) };
    writeln!(out, "Definition {ident} : function := {{|").ok();
    writeln!(out, "  fn_slots := [{}];", slots.join("; ")).ok();
    writeln!(out, "  fn_maps := {};", list(&map_decls)).ok();
    writeln!(out, "  fn_reg_types := [{}];", reg_types.join("; ")).ok();
    writeln!(out, "  fn_blocks := {}", list(&blocks)).ok();
    writeln!(out, "|}}.").ok();
    out
}

fn cost_table_term(ident: &str, cost: &dyn Fn(CostItem) -> u64) -> String {
    let per_map = |make: fn(MapType) -> CostItem| cost_match(MAP_TYPES.map(|k| (map_kind(k), make(k))), cost);
    let fields = [
        ("c_mov", n(cost(CostItem::Mov))),
        ("c_alu", cost_match(ALU_OPS.map(|o| (alu(o), CostItem::Alu(o))), cost)),
        ("c_neg", n(cost(CostItem::Neg))),
        ("c_set_cond", n(cost(CostItem::SetCond))),
        ("c_extend", n(cost(CostItem::Extend))),
        ("c_load_ctx", n(cost(CostItem::LoadCtx))),
        ("c_load_slot", n(cost(CostItem::LoadSlot))),
        ("c_store_slot", n(cost(CostItem::StoreSlot))),
        ("c_zero_slot", n(cost(CostItem::ZeroSlot))),
        ("c_helper", cost_match(HelperKind::ALL.map(|h| (h.coq(), CostItem::Helper(h))), cost)),
        ("c_helper_per_byte", cost_match(HelperKind::ALL.map(|h| (h.coq(), CostItem::HelperPerByte(h))), cost)),
        ("c_map_lookup", per_map(CostItem::MapLookup)),
        ("c_map_update", per_map(CostItem::MapUpdate)),
        ("c_map_delete", per_map(CostItem::MapDelete)),
        ("c_load_ptr", n(cost(CostItem::LoadPtr))),
        ("c_store_ptr", n(cost(CostItem::StorePtr))),
        ("c_jump", n(cost(CostItem::Jump))),
        ("c_branch", n(cost(CostItem::Branch))),
        ("c_branch_null", n(cost(CostItem::BranchNull))),
        ("c_return", n(cost(CostItem::Return))),
    ];
    let fields: Vec<String> = fields.iter().map(|(name, value)| format!("  {name} := {value}")).collect();
    format!("Definition {ident}_costs : cost_table := {{|\n{}\n|}}.\n", fields.join(";\n"))
}

/// The Coq proof file for one probe, to be saved as [`proof_file_name`] and checked with
/// `coqc -Q <proofs dir> Ppis FILE.v`. It states and proves, by running the checkers in Coq:
/// `NAME_terminates : check_acyclic NAME = true`, `NAME_cost : (wcet NAME_costs NAME <= bound)%N`,
/// `NAME_bounds : check_bounds NAME = true`, and from them with the library's `certify`,
/// `NAME_sound : guarantees NAME_costs NAME bound` (every run, in every environment, stops
/// within as many block steps as there are blocks, costs at most `bound` and never accesses
/// memory out of bounds). Coq rejects the file when any of them is false, e.g. when `bound` is
/// below [`structural_wcet`].
///
/// A probe with loops gets its loop certificate instead (hints and potentials, checked by
/// `proofs/Loops.v`): `NAME_terminates` (every run stops within the stated number of block
/// steps, [`loop_step_bound`]), `NAME_cost`, `NAME_bounds` and `NAME_sound :
/// guarantees_within NAME_costs NAME steps bound` (by `certify_loops`).
pub fn export_function(func: &Function, maps: &[Map], cost: &dyn Fn(CostItem) -> u64, bound: u64) -> String {
    let ident = coq_identifier(&func.name);
    if let Some(reason) = unsupported(func) {
        return format!(
            "(* Proof artifact for probe `{}`, generated by ppisc from its IR. *)\n\
             (* Not exported to Coq: {}. The verifier's certificate is this probe's only proof \
             (see docs/proofs.md); this file states no theorem. *)\n",
            comment_text(&func.name),
            // Fixed texts of `unsupported`, free of `(*`, `*)` and quotes: safe in a comment.
            reason
        );
    }
    match loop_certificate(func, maps, cost) {
        Ok(Some(certificate)) => return export_with_loops(func, maps, cost, bound, &certificate),
        Err(why) => {
            return format!(
                "(* Proof artifact for probe `{}`, generated by ppisc from its IR. *)\n\
                 (* Not exported to Coq: {}. The verifier's certificate is this probe's only proof \
                 (see docs/proofs.md); this file states no theorem. *)\n",
                comment_text(&func.name),
                comment_text(&why)
            )
        }
        Ok(None) => {}
    }
    let block_count = ordered_blocks(func).len();
    let plain_bound = bound;
    let bound = n(bound);
    let mut out = String::new();
    writeln!(out, "(* Proof artifact for probe `{}`, generated by ppisc from its IR. *)", comment_text(&func.name))
        .ok();
    writeln!(out, "(* Check with: coqc -Q <ppis>/proofs Ppis {ident}.v  (after `make -C <ppis>/proofs`) *)").ok();
    out.push_str("From Coq Require Import ZArith NArith List.\n");
    out.push_str("From Ppis Require Import IR Semantics Checker Soundness.\n");
    out.push_str("Import ListNotations.\n\n");
    out.push_str(&function_term(func, maps, &ident));
    out.push('\n');
    out.push_str(&cost_table_term(&ident, cost));
    let _ = write!(
        out,
        "
Theorem {ident}_terminates : check_acyclic {ident} = true.
Proof. vm_compute. reflexivity. Qed.

Theorem {ident}_cost : (wcet {ident}_costs {ident} <= {bound})%N.
Proof. apply N.leb_le. vm_compute. reflexivity. Qed.

Theorem {ident}_bounds : check_bounds {ident} = true.
Proof. vm_compute. reflexivity. Qed.

(* Every run of the probe, whatever the kernel returns, stops within {block_count} block steps,
   costs at most {plain_bound} and accesses no slot or map value out of bounds. *)
Corollary {ident}_sound : guarantees {ident}_costs {ident} {bound}.
Proof. exact (certify {ident}_costs {ident} {bound} {ident}_terminates {ident}_cost {ident}_bounds). Qed.
"
    );
    out
}

// ---------------------------------------------------------------------------------------
// Loops: the hints `proofs/Loops.v` checks (see docs/proofs.md, "Probes with loops").
// ---------------------------------------------------------------------------------------

/// 2^64 as a Coq `Z`: the abstract interpretation below works on unbounded integers exactly as
/// the Coq checker does, so that an empty narrowed interval such as `(0, -1)` is the same here.
const MODULUS: i128 = 1 << 64;

/// What any `set_int` writes: a normalised 64-bit integer (the Coq `full`).
const FULL: Interval = (0, MODULUS - 1);

/// A register's integer value lies in `lo..=hi` (the Coq `interval`).
type Interval = (i128, i128);

/// Registers with a known interval; a register not in the map is unknown (the Coq `astate`).
type AbstractState = std::collections::BTreeMap<u32, Interval>;

/// One loop as the Coq `loop_hint` states it, over exported block places.
#[derive(Clone, Debug, PartialEq)]
struct LoopHint {
    /// The loop's blocks (header included), ascending.
    blocks: Vec<usize>,
    header: usize,
    latch: usize,
    counter: u32,
    step: i128,
    /// The counter is below it on entry to the latch.
    limit: i128,
    /// The counter is at least this whenever the loop is entered.
    start: i128,
    /// `ceil((limit - start) / step)`: the most runs of the latch per entry into the loop.
    trips: i128,
}

/// The Coq `hints`: per exported block the facts on entry, and the loops.
#[derive(Clone, Debug)]
struct LoopHints {
    facts: Vec<AbstractState>,
    loops: Vec<LoopHint>,
}

/// The Coq `potentials`: a number per block and a weight per loop (same order as the hints).
#[derive(Clone, Debug, PartialEq)]
struct Potentials {
    blocks: Vec<i128>,
    loops: Vec<i128>,
}

/// `z` reduced modulo 2^64 (the Coq `norm` of an immediate).
fn norm(z: i64) -> i128 {
    i128::from(z).rem_euclid(MODULUS)
}

/// The Coq `op_interval`: what is known of the register `op` writes, from `state` before it.
fn op_interval(state: &AbstractState, op: &Op) -> Option<Interval> {
    match *op {
        Op::Mov { src: Operand::Imm(z), .. } => Some((norm(z), norm(z))),
        Op::Mov { src: Operand::Reg(r), .. } => state.get(&r.0).copied(),
        Op::Alu { op: AluOp::Add, lhs, rhs: Operand::Imm(k), .. } => match state.get(&lhs.0) {
            Some(&(lo, hi)) if hi + norm(k) < MODULUS => Some((lo + norm(k), hi + norm(k))),
            _ => Some(FULL),
        },
        Op::MapLookup { .. } => None,
        _ => Some(FULL),
    }
}

/// The Coq `transfer_op`.
fn transfer(state: &mut AbstractState, op: &Op) {
    if let Some(dst) = op.def() {
        match op_interval(state, op) {
            Some(interval) => state.insert(dst.0, interval),
            None => state.remove(&dst.0),
        };
    }
}

/// The Coq `narrow`: what taking (or not) `lhs cond rhs` says about `lhs`.
fn narrow(state: &AbstractState, cond: Cond, taken: bool, lhs: u32, rhs: Operand) -> AbstractState {
    let mut out = state.clone();
    let rhs_interval = match rhs {
        Operand::Imm(z) => Some((norm(z), norm(z))),
        Operand::Reg(r) => state.get(&r.0).copied(),
    };
    if let (Some(&(lo, hi)), Some((ylo, yhi))) = (state.get(&lhs), rhs_interval) {
        let interval = match (cond, taken) {
            (Cond::Ult, true) | (Cond::Uge, false) => (lo, hi.min(yhi - 1)),
            (Cond::Ult, false) | (Cond::Uge, true) => (lo.max(ylo), hi),
            (Cond::Ugt, true) | (Cond::Ule, false) => (lo.max(ylo + 1), hi),
            (Cond::Ugt, false) | (Cond::Ule, true) => (lo, hi.min(yhi)),
            _ => (lo, hi),
        };
        out.insert(lhs, interval);
    }
    out
}

/// The Coq `out_edges`: each successor place with what is known on that edge, given `facts`
/// on entry to the block.
fn out_edges(func: &Function, block: &OrderedBlock, facts: &AbstractState) -> Vec<(usize, AbstractState)> {
    let bb = &func.cfg[block.block];
    let mut state = facts.clone();
    for inst in &bb.insts {
        transfer(&mut state, &inst.op);
    }
    let at = |i: usize| block.successors.get(i).copied().unwrap_or(block.successors.len());
    match bb.term {
        Terminator::Jump(_) => vec![(at(0), state)],
        Terminator::Branch { cond, lhs, rhs, .. } => {
            vec![(at(0), narrow(&state, cond, true, lhs.0, rhs)), (at(1), narrow(&state, cond, false, lhs.0, rhs))]
        }
        Terminator::BranchNull { .. } => vec![(at(0), state.clone()), (at(1), state)],
        Terminator::Return => vec![],
    }
}

/// The Coq `rem_z`: how many more runs of the latch a counter at `x` allows.
fn remaining_trips(limit: i128, step: i128, x: i128) -> i128 {
    if x < limit {
        (limit - x + step - 1) / step
    } else {
        0
    }
}

/// Whether `state` implies every fact of `facts` (the Coq `implies`).
fn implies(state: &AbstractState, facts: &AbstractState) -> bool {
    facts.iter().all(|(r, &(lo, hi))| state.get(r).is_some_and(|&(lo2, hi2)| lo <= lo2 && hi2 <= hi))
}

/// The interval hull of what every incoming edge knows, for the `tracked` registers.
fn join(incoming: &[&AbstractState], tracked: &std::collections::BTreeSet<u32>) -> AbstractState {
    let mut out = AbstractState::new();
    if incoming.is_empty() {
        return out;
    }
    for &r in tracked {
        let intervals: Option<Vec<Interval>> = incoming.iter().map(|s| s.get(&r).copied()).collect();
        if let Some(intervals) = intervals {
            let lo = intervals.iter().map(|i| i.0).min().unwrap_or(0);
            let hi = intervals.iter().map(|i| i.1).max().unwrap_or(0);
            out.insert(r, (lo, hi));
        }
    }
    out
}

/// The loop of back edge `latch -> header`: the header and every block that reaches the latch
/// without passing through the header (in exported places).
fn natural_loop(blocks: &[OrderedBlock], header: usize, latch: usize) -> Vec<usize> {
    let mut predecessors = vec![Vec::new(); blocks.len()];
    for (i, b) in blocks.iter().enumerate() {
        for &s in &b.successors {
            if s < blocks.len() {
                predecessors[s].push(i);
            }
        }
    }
    let mut inside = std::collections::BTreeSet::from([header]);
    let mut work = vec![latch];
    while let Some(b) = work.pop() {
        if inside.insert(b) {
            work.extend(predecessors[b].iter().copied());
        }
    }
    inside.into_iter().collect()
}

/// The loop hints of `func`: `Ok(None)` when it has no loop, an error saying why when a loop
/// does not have the shape the Coq checker handles (the header tests `counter < bound`
/// unsigned, only the latch writes the counter, once, by a positive constant step, and the
/// bound is a constant or a register whose maximum the facts establish).
fn loop_hints(func: &Function, blocks: &[OrderedBlock]) -> Result<Option<LoopHints>, String> {
    let n = blocks.len();
    let back_edges: Vec<(usize, usize)> = blocks
        .iter()
        .enumerate()
        .flat_map(|(i, b)| b.successors.iter().filter(move |&&t| t <= i).map(move |&t| (i, t)))
        .collect();
    if back_edges.is_empty() {
        return Ok(None);
    }
    // Shape of each loop, before any fact is known.
    struct Shape {
        blocks: Vec<usize>,
        header: usize,
        latch: usize,
        counter: u32,
        bound: Operand,
        step: i128,
        written: std::collections::BTreeSet<u32>,
    }
    let mut shapes = Vec::new();
    for &(latch, header) in &back_edges {
        if back_edges.iter().filter(|&&(l, h)| h == header || l == latch).count() > 1 {
            return Err("a loop has more than one back edge".into());
        }
        let body = natural_loop(blocks, header, latch);
        if body.contains(&0) {
            // The entry reaches the latch without passing the header: a second way in.
            return Err("a loop can be entered other than through its header".into());
        }
        let inside = |place: usize| body.contains(&place);
        let header_bb = &func.cfg[blocks[header].block];
        let (counter, bound) = match (header_bb.term, blocks[header].successors.as_slice()) {
            (Terminator::Branch { cond: Cond::Ult, lhs, rhs, .. }, &[then, otherwise])
                if inside(then) && !inside(otherwise) =>
            {
                (lhs.0, rhs)
            }
            (Terminator::Branch { cond: Cond::Uge, lhs, rhs, .. }, &[then, otherwise])
                if !inside(then) && inside(otherwise) =>
            {
                (lhs.0, rhs)
            }
            _ => return Err("a loop's header does not test `counter < bound` (unsigned)".into()),
        };
        let mut written = std::collections::BTreeSet::new();
        let mut steps = Vec::new();
        for &place in &body {
            for inst in &func.cfg[blocks[place].block].insts {
                let Some(dst) = inst.op.def() else { continue };
                written.insert(dst.0);
                if dst.0 == counter {
                    steps.push((place, inst.op.clone()));
                }
            }
        }
        let step = match steps.as_slice() {
            [(place, Op::Alu { op: AluOp::Add, dst, lhs, rhs: Operand::Imm(k) })]
                if *place == latch && dst.0 == counter && lhs.0 == counter && *k > 0 =>
            {
                i128::from(*k)
            }
            _ => return Err(format!("loop counter v{counter} is not stepped once, by a constant, in the latch")),
        };
        shapes.push(Shape { blocks: body, header, latch, counter, bound, step, written });
    }
    // The registers whose intervals matter: counters and bounds, and what they are copied or
    // stepped from.
    let mut tracked: std::collections::BTreeSet<u32> = shapes
        .iter()
        .flat_map(|s| {
            let bound = match s.bound {
                Operand::Reg(r) => Some(r.0),
                Operand::Imm(_) => None,
            };
            std::iter::once(s.counter).chain(bound)
        })
        .collect();
    loop {
        let before = tracked.len();
        for bb in func.cfg.node_weights() {
            for inst in &bb.insts {
                match inst.op {
                    Op::Mov { dst, src: Operand::Reg(src) } if tracked.contains(&dst.0) => {
                        tracked.insert(src.0);
                    }
                    Op::Alu { op: AluOp::Add, dst, lhs, rhs: Operand::Imm(_) } if tracked.contains(&dst.0) => {
                        tracked.insert(lhs.0);
                    }
                    _ => {}
                }
            }
        }
        if tracked.len() == before {
            break;
        }
    }
    // One forward pass in the exported order: a block's facts join its incoming forward
    // edges; a header keeps what its loop does not write, and the counter's range.
    let mut facts: Vec<AbstractState> = vec![AbstractState::new(); n];
    let mut incoming: Vec<Vec<(usize, AbstractState)>> = vec![Vec::new(); n];
    let mut loops: Vec<Option<LoopHint>> = vec![None; shapes.len()];
    for place in 0..n {
        let forward: Vec<&AbstractState> =
            incoming[place].iter().filter(|(from, _)| *from < place).map(|(_, s)| s).collect();
        let mut here = if place == 0 { AbstractState::new() } else { join(&forward, &tracked) };
        for (k, shape) in shapes.iter().enumerate().filter(|(_, s)| s.header == place) {
            let entry = here.clone();
            here.retain(|r, _| !shape.written.contains(r));
            let Some(&(start, entry_hi)) = entry.get(&shape.counter) else {
                return Err(format!("loop counter v{} has no known value on entry", shape.counter));
            };
            let limit = match shape.bound {
                Operand::Imm(b) => norm(b),
                Operand::Reg(r) if !shape.written.contains(&r.0) => match entry.get(&r.0) {
                    Some(&(_, hi)) => hi,
                    None => return Err(format!("loop bound v{} has no known maximum", r.0)),
                },
                Operand::Reg(r) => return Err(format!("loop bound v{} changes inside the loop", r.0)),
            };
            let counter_hi = if shape.header == shape.latch {
                // The test follows the step (a do-while): the counter is below the limit on
                // every entry to the header, which is also the latch.
                if entry_hi >= limit {
                    return Err(format!("loop counter v{} may start at or past its bound", shape.counter));
                }
                limit - 1
            } else {
                entry_hi.max(limit - 1 + shape.step)
            };
            if limit < 0 || limit - 1 + shape.step >= MODULUS || shape.step >= MODULUS {
                return Err(format!("loop counter v{} may wrap around", shape.counter));
            }
            here.insert(shape.counter, (start, counter_hi));
            loops[k] = Some(LoopHint {
                blocks: shape.blocks.clone(),
                header: shape.header,
                latch: shape.latch,
                counter: shape.counter,
                step: shape.step,
                limit,
                start,
                trips: remaining_trips(limit, shape.step, start),
            });
        }
        here.retain(|r, _| tracked.contains(r));
        for (target, state) in out_edges(func, &blocks[place], &here) {
            if target < n {
                incoming[target].push((place, state));
            }
        }
        facts[place] = here;
    }
    let loops: Vec<LoopHint> = loops.into_iter().flatten().collect();
    let hints = LoopHints { facts, loops };
    validate_hints(func, blocks, &hints)?;
    Ok(Some(hints))
}

/// The Coq `check_hints`, so that an export never states a theorem its own hints fail; the
/// error names the first check that fails.
fn validate_hints(func: &Function, blocks: &[OrderedBlock], hints: &LoopHints) -> Result<(), String> {
    let n = blocks.len();
    if hints.facts.first().is_some_and(|f| !f.is_empty()) {
        return Err("the entry block would need facts".into());
    }
    for l in &hints.loops {
        let latch_ok = hints.facts[l.latch].get(&l.counter).is_some_and(|&(_, hi)| hi < l.limit);
        if !latch_ok {
            return Err(format!("loop counter v{} is not shown below {} in the latch", l.counter, l.limit));
        }
    }
    for (place, block) in blocks.iter().enumerate() {
        for (target, state) in out_edges(func, block, &hints.facts[place]) {
            if target >= n {
                return Err("an edge leads to a block that does not exist".into());
            }
            if !implies(&state, &hints.facts[target]) {
                return Err(format!("the facts of block {target} do not follow on its edge from block {place}"));
            }
            for l in &hints.loops {
                let entering = !l.blocks.contains(&place) && l.blocks.contains(&target);
                let starts_high_enough = state.get(&l.counter).is_some_and(|&(lo, _)| lo >= l.start);
                if entering && !starts_high_enough {
                    return Err(format!("loop counter v{} is not shown at least {} on entry", l.counter, l.start));
                }
            }
        }
    }
    Ok(())
}

/// The Coq `guaranteed` of one loop: its weight when `place` is in the loop and the facts put
/// the counter below the limit there (one more run of the latch is sure to come), else 0.
fn guaranteed_weight(hints: &LoopHints, l: &LoopHint, weight: i128, place: usize) -> i128 {
    let below_limit = hints.facts[place].get(&l.counter).is_some_and(|&(_, hi)| hi < l.limit);
    if l.blocks.contains(&place) && below_limit {
        weight
    } else {
        0
    }
}

/// The Coq `delta`: what edge `from -> to` adds to the potential (entering a loop: its trips
/// times its weight; running a latch: minus the weight; leaving: minus what `from` is sure
/// to hold).
fn potential_delta(hints: &LoopHints, weights: &[i128], from: usize, to: usize) -> Result<i128, String> {
    hints.loops.iter().zip(weights).try_fold(0i128, |sum, (l, &w)| {
        let delta = match (l.blocks.contains(&from), l.blocks.contains(&to)) {
            (true, true) if from == l.latch => Some(-w),
            (true, true) => Some(0),
            (false, true) => l.trips.checked_mul(w),
            (_, false) => Some(-guaranteed_weight(hints, l, w, from)),
        };
        delta.and_then(|d| sum.checked_add(d)).ok_or_else(too_large)
    })
}

/// Why potentials are not computed: numbers past what `i128` holds (loops nested with
/// astronomic trip counts, which the verifier rejects long before).
fn too_large() -> String {
    "the loop bounds are too large to write down".into()
}

/// Potentials that `check_potentials` accepts for block weights `weight` (1 per block for the
/// step count, `block_cost` for the cost): a loop's weight is its costliest iteration (header
/// to latch, inner loops entered at their trips × weight, innermost first), and each block's
/// number is the longest path to a return with those edge weights (Bellman-Ford: every cycle
/// runs a latch, which gives back at least the iteration, so the longest paths exist).
fn potentials(
    func: &Function,
    blocks: &[OrderedBlock],
    hints: &LoopHints,
    weight: &dyn Fn(usize) -> i128,
) -> Result<Potentials, String> {
    let n = blocks.len();
    let mut weights = vec![0i128; hints.loops.len()];
    let mut order: Vec<usize> = (0..hints.loops.len()).collect();
    order.sort_by_key(|&k| hints.loops[k].blocks.len());
    for k in order {
        let l = &hints.loops[k];
        let mut longest: Vec<Option<i128>> = vec![None; n];
        longest[l.header] = Some(weight(l.header));
        for &place in &l.blocks {
            let Some(so_far) = longest[place] else { continue };
            for &t in &blocks[place].successors {
                if t > place && t < n && l.blocks.contains(&t) {
                    let through = potential_delta(hints, &weights, place, t)?
                        .checked_add(so_far)
                        .and_then(|x| x.checked_add(weight(t)))
                        .ok_or_else(too_large)?;
                    longest[t] = Some(longest[t].map_or(through, |old| old.max(through)));
                }
            }
        }
        weights[k] = longest[l.latch].ok_or("a loop's latch is not reached from its header")?.max(0);
    }
    let targets: Vec<Vec<usize>> = blocks
        .iter()
        .enumerate()
        .map(|(place, b)| out_edges(func, b, &hints.facts[place]).into_iter().map(|(t, _)| t).collect())
        .collect();
    // The Coq `guaranteed`: where the facts put a loop's counter below its limit, one more run
    // of the latch (worth the loop's weight) is sure to come, so the block's own number may
    // be that much lower.
    let guaranteed = |place: usize| -> Option<i128> {
        hints
            .loops
            .iter()
            .zip(&weights)
            .try_fold(0i128, |sum, (l, &w)| sum.checked_add(guaranteed_weight(hints, l, w, place)))
    };
    let floor = (0..n)
        .map(|place| guaranteed(place).and_then(|g| weight(place).checked_sub(g)).ok_or_else(too_large))
        .collect::<Result<Vec<i128>, String>>()?;
    let mut values = floor.clone();
    for _round in 0..=n + 1 {
        let mut changed = false;
        for place in (0..n).rev() {
            let mut best = floor[place];
            for &target in &targets[place] {
                if target >= n {
                    return Err("an edge leads to a block that does not exist".into());
                }
                let via = potential_delta(hints, &weights, place, target)?
                    .checked_add(values[target])
                    .and_then(|x| x.checked_add(weight(place)))
                    .ok_or_else(too_large)?;
                best = best.max(via);
            }
            if best != values[place] {
                values[place] = best;
                changed = true;
            }
        }
        if !changed {
            return Ok(Potentials { blocks: values, loops: weights });
        }
    }
    Err("the loop potentials do not converge".into())
}

/// A probe's full loop certificate: hints and the potentials for steps and for cost.
struct LoopCertificate {
    hints: LoopHints,
    steps: Potentials,
    cost: Potentials,
}

fn loop_certificate(
    func: &Function,
    maps: &[Map],
    cost: &dyn Fn(CostItem) -> u64,
) -> Result<Option<LoopCertificate>, String> {
    let blocks = ordered_blocks(func);
    let Some(hints) = loop_hints(func, &blocks)? else { return Ok(None) };
    let costs: Vec<i128> = blocks.iter().map(|b| i128::from(block_cost(func, b.block, maps, cost))).collect();
    let steps = potentials(func, &blocks, &hints, &|_| 1)?;
    let cost = potentials(func, &blocks, &hints, &|place| costs[place])?;
    Ok(Some(LoopCertificate { hints, steps, cost }))
}

/// For a probe with loops, the bound on the blocks a run enters that its proof file states
/// (`NAME_terminates`), and how many loops it has; `None` for an acyclic or unsupported probe.
pub fn loop_step_bound(func: &Function, maps: &[Map], cost: &dyn Fn(CostItem) -> u64) -> Option<(u64, usize)> {
    if unsupported(func).is_some() {
        return None;
    }
    let certificate = loop_certificate(func, maps, cost).ok()??;
    let steps = certificate.steps.blocks.first().copied().unwrap_or(0);
    Some((u64::try_from(steps).unwrap_or(u64::MAX), certificate.hints.loops.len()))
}

fn z_literal(x: i128) -> String {
    if x < 0 {
        format!("({x})%Z")
    } else {
        format!("{x}%Z")
    }
}

fn hints_term(ident: &str, hints: &LoopHints) -> String {
    let facts: Vec<String> = hints
        .facts
        .iter()
        .enumerate()
        .map(|(place, f)| {
            let entries: Vec<String> =
                f.iter().map(|(r, &(lo, hi))| format!("({r}, Some ({}, {}))", z_literal(lo), z_literal(hi))).collect();
            format!("\n    (* {place} *) [{}]", entries.join("; "))
        })
        .collect();
    let loops: Vec<String> = hints
        .loops
        .iter()
        .map(|l| {
            let blocks: Vec<String> = l.blocks.iter().map(|b| b.to_string()).collect();
            format!(
                "\n    (* header {} *) {{| lp_blocks := [{}]; lp_latch := {}; lp_counter := {}; lp_step := {}; \
                 lp_limit := {}; lp_start := {}; lp_trips := {}%N |}}",
                l.header,
                blocks.join("; "),
                l.latch,
                l.counter,
                z_literal(l.step),
                z_literal(l.limit),
                z_literal(l.start),
                l.trips
            )
        })
        .collect();
    format!(
        "Definition {ident}_hints : hints := {{|\n  h_facts := [{}\n  ];\n  h_loops := [{}\n  ]\n|}}.\n",
        facts.join(";"),
        loops.join(";")
    )
}

fn potentials_term(name: &str, potentials: &Potentials) -> String {
    let blocks: Vec<String> = potentials.blocks.iter().map(|&x| z_literal(x)).collect();
    let loops: Vec<String> = potentials.loops.iter().map(|x| format!("{x}%N")).collect();
    format!(
        "Definition {name} : potentials := {{|\n  pot_blocks := [{}];\n  pot_loops := [{}]\n|}}.\n",
        blocks.join("; "),
        loops.join("; ")
    )
}

/// The proof file of a probe with loops (see [`export_function`]).
fn export_with_loops(
    func: &Function,
    maps: &[Map],
    cost: &dyn Fn(CostItem) -> u64,
    bound: u64,
    certificate: &LoopCertificate,
) -> String {
    let ident = coq_identifier(&func.name);
    let steps = certificate.steps.blocks.first().copied().unwrap_or(0);
    let mut out = String::new();
    writeln!(out, "(* Proof artifact for probe `{}`, generated by ppisc from its IR. *)", comment_text(&func.name))
        .ok();
    writeln!(out, "(* Check with: coqc -Q <ppis>/proofs Ppis {ident}.v  (after `make -C <ppis>/proofs`) *)").ok();
    out.push_str("From Coq Require Import ZArith NArith List.\n");
    out.push_str("From Ppis Require Import IR Semantics Checker Soundness Loops.\n");
    out.push_str("Import ListNotations.\n\n");
    out.push_str(&function_term(func, maps, &ident));
    out.push('\n');
    out.push_str(&cost_table_term(&ident, cost));
    out.push_str(
        "\n(* Untrusted hints, checked by `check_hints`: per block, intervals known on entry; per loop,\n   \
         its blocks, latch, counter, step, the limit the counter stays below in the latch, its\n   \
         least start and the trip count ceil((limit - start) / step). *)\n",
    );
    out.push_str(&hints_term(&ident, &certificate.hints));
    out.push_str("\n(* Potentials checked by `check_potentials`: one per block and a weight per loop. *)\n");
    out.push_str(&potentials_term(&format!("{ident}_steps"), &certificate.steps));
    out.push_str(&potentials_term(&format!("{ident}_cost_potentials"), &certificate.cost));
    let _ = write!(
        out,
        "
Theorem {ident}_terminates : within (loop_bound one {ident} {ident}_hints {ident}_steps) {steps}%N = true.
Proof. vm_compute. reflexivity. Qed.

Theorem {ident}_cost : within (loop_bound (block_cost {ident}_costs {ident}) {ident} {ident}_hints {ident}_cost_potentials) {bound}%N = true.
Proof. vm_compute. reflexivity. Qed.

Theorem {ident}_bounds : check_bounds {ident} = true.
Proof. vm_compute. reflexivity. Qed.

(* Every run of the probe, whatever the kernel returns, stops within {steps} block steps,
   costs at most {bound} and accesses no slot or map value out of bounds. *)
Corollary {ident}_sound : guarantees_within {ident}_costs {ident} {steps}%N {bound}%N.
Proof.
  exact (certify_loops {ident}_costs {ident} {ident}_hints {ident}_steps {ident}_cost_potentials {steps}%N {bound}%N
           {ident}_terminates {ident}_cost {ident}_bounds).
Qed.
"
    );
    out
}
