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
//! Not every probe fits the Coq model ([`unsupported`]): one with a loop (the Coq checker
//! proves termination by `check_acyclic`) is exported as a file holding only a comment that
//! says why; the verifier's certificate alone covers it, and its structural bound is
//! `u64::MAX` (none). See docs/proofs.md.

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
}

impl HelperKind {
    pub const ALL: [HelperKind; 7] = [
        HelperKind::GetCurrentPidTgid,
        HelperKind::GetCurrentUidGid,
        HelperKind::GetCurrentComm,
        HelperKind::KtimeGetNs,
        HelperKind::GetSmpProcessorId,
        HelperKind::ProbeReadUserStr,
        HelperKind::ProbeReadKernelStr,
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
    /// What each byte of a helper's bound adds (a string read's `len`); 0 for other helpers.
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

const MAP_TYPES: [MapType; 4] = [MapType::Hash, MapType::Array, MapType::PerCpuHash, MapType::PerCpuArray];

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

/// `op`'s price as the Coq `op_cost` computes it: its item's, plus for a string read
/// [`CostItem::HelperPerByte`] times its bound.
pub fn op_cost(op: &Op, maps: &[Map], cost: &dyn Fn(CostItem) -> u64) -> u64 {
    let fixed = CostItem::of_op(op, maps).map_or(0, cost);
    let per_byte = match op {
        Op::Call { helper: h @ Helper::ProbeReadStr { len, .. }, .. } => {
            cost(CostItem::HelperPerByte(HelperKind::of(*h))).saturating_mul(u64::from(*len))
        }
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
/// entry. Infeasible paths count too, so this is at least any path-sensitive bound. For
/// cyclic control flow the number means nothing (Coq's `check_acyclic` fails on it anyway).
/// Sums saturate at `u64::MAX`, where Coq's unbounded numbers would go on.
pub fn structural_wcet(func: &Function, maps: &[Map], cost: &dyn Fn(CostItem) -> u64) -> u64 {
    if unsupported(func).is_some() {
        return u64::MAX;
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
    }
}

/// Why the Coq model cannot express `func`, if it cannot: a loop (the Coq `check_acyclic`
/// proves termination only for acyclic control flow; the verifier proves loops bounded
/// instead).
pub fn unsupported(func: &Function) -> Option<String> {
    let blocks = ordered_blocks(func);
    if blocks.iter().enumerate().any(|(i, b)| b.successors.iter().any(|&s| s <= i)) {
        return Some("it contains a loop, and the Coq checker proves termination only for acyclic control flow".into());
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
