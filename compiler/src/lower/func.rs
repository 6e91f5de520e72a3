//! Lowers one checked probe to an IR function: expressions to registers and stack slots,
//! conditions to branches, map operations to explicit lookups, updates and null checks.

use super::layout::MapLayout;
use super::LowerOptions;
use ppis_ir::{
    AddressSpace, AluOp, Cond, CtxKind, FunctionBuilder, Helper, Op, Operand, ProbeMeta, Slot, Span, Terminator,
    Trigger, Vreg, VregType,
};
use ppis_lang::ast::{BinaryOp, UnaryOp};
use ppis_lang::hir::{self, Builtin, ExprKind, MapKind, StmtKind};
use ppis_lang::Ty;

/// Byte offsets of the x86-64 `struct pt_regs` registers that carry arguments and returns.
const PT_REGS_ARGS: [u32; 6] = [112, 104, 96, 88, 72, 64];
const PT_REGS_AX: u32 = 80;

/// `bpf_map_update_elem` flag: only insert when the key is absent.
const BPF_NOEXIST: u64 = 1;

/// A lowered expression value.
#[derive(Clone, Copy, Debug)]
enum Val {
    /// A scalar in a register, normalised to its type (zero- or sign-extended to 64 bits).
    Reg(Vreg),
    /// A string in a slot; bytes past `len` up to the slot's end are zero.
    Str { slot: Slot, len: u32 },
}

/// Where a local lives.
#[derive(Clone, Copy, Debug)]
enum LocalHome {
    Reg(Vreg),
    Str { slot: Slot, len: u32 },
}

pub struct FnLowerer<'a> {
    b: FunctionBuilder,
    maps: &'a [MapLayout],
    map_defs: &'a [hir::MapDef],
    locals: Vec<LocalHome>,
    opts: &'a LowerOptions,
}

/// Is `v` representable as an eBPF 32-bit immediate?
fn fits_imm(v: i64) -> bool {
    i32::try_from(v).is_ok()
}

impl<'a> FnLowerer<'a> {
    pub fn lower(
        name: String,
        probe: &hir::Probe,
        maps: &'a [MapLayout],
        map_defs: &'a [hir::MapDef],
        opts: &'a LowerOptions,
    ) -> ppis_ir::Function {
        let ctx = match probe.attach {
            hir::Attach::Tracepoint { .. } => CtxKind::Tracepoint,
            hir::Attach::Uprobe { .. } | hir::Attach::Uretprobe { .. } | hir::Attach::Usdt { .. } => CtxKind::PtRegs,
            hir::Attach::RawTracepoint { .. } | hir::Attach::Begin { .. } | hir::Attach::End { .. } => {
                CtxKind::RawTracepoint
            }
            hir::Attach::Profile { .. } | hir::Attach::Interval { .. } => CtxKind::PerfEvent,
        };
        let trigger = match probe.attach {
            hir::Attach::Tracepoint { .. } => Trigger::Tracepoint,
            hir::Attach::Uprobe { .. } | hir::Attach::Usdt { .. } => Trigger::Uprobe,
            hir::Attach::Uretprobe { .. } => Trigger::Uretprobe,
            hir::Attach::RawTracepoint { .. } => Trigger::RawTracepoint,
            hir::Attach::Profile { .. } | hir::Attach::Interval { .. } => Trigger::PerfEvent,
            hir::Attach::Begin { .. } | hir::Attach::End { .. } => Trigger::Once,
        };
        let mut l =
            FnLowerer { b: FunctionBuilder::new(name, ctx, probe.span), maps, map_defs, locals: Vec::new(), opts };
        l.b.set_probe(ProbeMeta { trigger, rate: probe.rate.map(|r| (r, probe.span)) });
        for local in &probe.locals {
            let home = match local.ty {
                Ty::Str { len } | Ty::Buf { len } => LocalHome::Str { slot: l.b.new_slot(len), len },
                _ => LocalHome::Reg(l.b.new_vreg(VregType::Scalar)),
            };
            l.locals.push(home);
        }
        let exit = l.b.new_block();
        if let Some(pred) = &probe.predicate {
            let body = l.b.new_block();
            l.cond(pred, body, exit);
            l.b.switch_to(body);
        }
        l.stmts(&probe.body);
        if !l.b.is_terminated() {
            l.b.terminate(Terminator::Jump(exit), probe.span);
        }
        l.b.switch_to(exit);
        l.b.terminate(Terminator::Return, probe.span);
        l.b.finish()
    }

    // ---- small emit helpers ----

    fn reg(&mut self) -> Vreg {
        self.b.new_vreg(VregType::Scalar)
    }

    fn emit(&mut self, op: Op, span: Span) {
        self.b.push(op, span);
    }

    fn imm(&mut self, v: i64, span: Span) -> Vreg {
        let r = self.reg();
        self.emit(Op::Mov { dst: r, src: Operand::Imm(v) }, span);
        r
    }

    /// An operand for `v`: an immediate when it fits, otherwise a register holding it.
    fn operand(&mut self, v: i64, span: Span) -> Operand {
        if fits_imm(v) {
            Operand::Imm(v)
        } else {
            Operand::Reg(self.imm(v, span))
        }
    }

    fn alu(&mut self, op: AluOp, lhs: Vreg, rhs: Operand, span: Span) -> Vreg {
        let dst = self.reg();
        self.emit(Op::Alu { op, dst, lhs, rhs }, span);
        dst
    }

    /// Re-normalises a register after arithmetic to the representation of `ty`.
    fn normalize(&mut self, v: Vreg, ty: Ty, span: Span) -> Vreg {
        match ty {
            Ty::Int { bytes, signed } if bytes < 8 => {
                let dst = self.reg();
                self.emit(Op::Extend { dst, src: v, width: bytes, signed }, span);
                dst
            }
            _ => v,
        }
    }

    fn call(&mut self, helper: Helper, span: Span) -> Vreg {
        let dst = self.reg();
        self.emit(Op::Call { dst: Some(dst), helper }, span);
        dst
    }

    fn jump_to(&mut self, target: ppis_ir::Block, span: Span) {
        if !self.b.is_terminated() {
            self.b.terminate(Terminator::Jump(target), span);
        }
    }

    /// Copies `words` 8-byte words from `src` to `dst` (both slots).
    fn copy_words(&mut self, dst: Slot, src: Slot, dst_offset: u32, words: u32, span: Span) {
        for i in 0..words {
            let t = self.reg();
            self.emit(Op::LoadSlot { dst: t, slot: src, offset: i * 8, width: 8 }, span);
            self.emit(Op::StoreSlot { slot: dst, offset: dst_offset + i * 8, width: 8, src: Operand::Reg(t) }, span);
        }
    }

    // ---- statements ----

    fn stmts(&mut self, stmts: &[hir::Stmt]) {
        for s in stmts {
            if self.b.is_terminated() {
                // Code after `return`: lower into a block nothing reaches; `finish` drops it.
                let dead = self.b.new_block();
                self.b.switch_to(dead);
            }
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &hir::Stmt) {
        let span = s.span;
        match &s.kind {
            StmtKind::Assign { local, value } => {
                let v = self.expr(value);
                match (self.locals[*local], v) {
                    (LocalHome::Reg(r), Val::Reg(src)) => self.emit(Op::Mov { dst: r, src: Operand::Reg(src) }, span),
                    (LocalHome::Str { slot, len }, Val::Str { slot: src, .. }) => {
                        self.copy_words(slot, src, 0, len.div_ceil(8), span)
                    }
                    _ => unreachable!("checker guarantees assignment types match"),
                }
            }
            StmtKind::MapUpdate { map, keys, value } => {
                let key = self.key(*map, keys, span);
                let layout = &self.maps[*map];
                let value_slot = self.b.new_slot(layout.kernel.value_size);
                if self.map_defs[*map].value.size() < layout.kernel.value_size {
                    // The kernel copies the whole value: its padding must be initialised too.
                    self.emit(Op::ZeroSlot { slot: value_slot }, span);
                }
                let v = self.expr(value);
                self.store_value(value_slot, 0, v, self.map_defs[*map].value, span);
                self.emit(Op::MapUpdate { map: *map, key, value: value_slot, flags: 0 }, span);
            }
            StmtKind::Aggregate { map, keys, value } => self.aggregate(*map, keys, value.as_ref(), span),
            StmtKind::Delete { map, keys } => {
                let key = self.key(*map, keys, span);
                self.emit(Op::MapDelete { map: *map, key }, span);
            }
            StmtKind::If { cond, then, otherwise } => {
                let (then_b, else_b, join) = (self.b.new_block(), self.b.new_block(), self.b.new_block());
                self.cond(cond, then_b, else_b);
                self.b.switch_to(then_b);
                self.stmts(then);
                self.jump_to(join, span);
                self.b.switch_to(else_b);
                self.stmts(otherwise);
                self.jump_to(join, span);
                self.b.switch_to(join);
            }
            StmtKind::IfLet { local, map, keys, then, otherwise } => {
                let key = self.key(*map, keys, span);
                let ptr = self.b.new_vreg(VregType::MapValue(*map));
                self.emit(Op::MapLookup { dst: ptr, map: *map, key }, span);
                let (found, missing, join) = (self.b.new_block(), self.b.new_block(), self.b.new_block());
                self.b.terminate(Terminator::BranchNull { ptr, is_null: missing, not_null: found }, span);
                self.b.switch_to(found);
                let value_ty = self.map_defs[*map].value;
                match self.locals[*local] {
                    LocalHome::Reg(r) => {
                        let v = self.load_value(ptr, value_ty, span);
                        self.emit(Op::Mov { dst: r, src: Operand::Reg(v) }, span);
                    }
                    LocalHome::Str { slot, len } => self.copy_from_ptr(slot, ptr, len, span),
                }
                self.stmts(then);
                self.jump_to(join, span);
                self.b.switch_to(missing);
                self.stmts(otherwise);
                self.jump_to(join, span);
                self.b.switch_to(join);
            }
            StmtKind::Return => {
                self.b.terminate(Terminator::Return, span);
            }
            StmtKind::For { local, start, end, body } => self.for_loop(*local, start, end, body, span),
            StmtKind::Emit { event, values } => self.send_record(*event as u32, values, span),
        }
    }

    /// `for i in start..end { body }` as the natural loop the verifier recognises (see
    /// docs/ir.md): the counter and the bound are set before the header, the header is the
    /// only entry and tests `i < bound`, the latch is the only back edge and the only place
    /// that writes the counter. The bound is copied to its own register (unless it is a small
    /// constant) so that the body cannot change it.
    /// `emit`/`print`: builds record `id` (header and `values` at their record offsets, the
    /// padding zeroed, as the whole record is copied out) on the stack and sends it to the
    /// ring buffer; when the buffer is full, adds 1 to this CPU's drop counter instead, so
    /// no record is lost without a trace.
    fn send_record(&mut self, id: u32, values: &[hir::Expr], span: Span) {
        let (offsets, size) = hir::record_layout(values.iter().map(|v| v.ty));
        let (drops, ring) = super::events::hidden_map_ids(self.map_defs);
        let record = self.b.new_slot(size);
        self.emit(Op::ZeroSlot { slot: record }, span);
        self.emit(Op::StoreSlot { slot: record, offset: 0, width: 4, src: Operand::Imm(id as i64) }, span);
        for (value, offset) in values.iter().zip(offsets) {
            let v = self.expr(value);
            self.store_value(record, offset, v, value.ty, span);
        }
        let status = self.call(Helper::RingbufOutput { map: ring, slot: record, len: size }, span);
        let (dropped, count, done) = (self.b.new_block(), self.b.new_block(), self.b.new_block());
        self.b.terminate(
            Terminator::Branch { cond: Cond::Eq, lhs: status, rhs: Operand::Imm(0), then: done, otherwise: dropped },
            span,
        );
        self.b.switch_to(dropped);
        let key = self.b.new_slot(4);
        self.emit(Op::StoreSlot { slot: key, offset: 0, width: 4, src: Operand::Imm(0) }, span);
        let counter = self.b.new_vreg(VregType::MapValue(drops));
        self.emit(Op::MapLookup { dst: counter, map: drops, key }, span);
        self.b.terminate(Terminator::BranchNull { ptr: counter, is_null: done, not_null: count }, span);
        self.b.switch_to(count);
        let one = self.imm(1, span);
        self.add_at(counter, 0, one, span);
        self.b.terminate(Terminator::Jump(done), span);
        self.b.switch_to(done);
    }

    fn for_loop(&mut self, local: usize, start: &hir::Expr, end: &hir::Expr, body: &[hir::Stmt], span: Span) {
        let LocalHome::Reg(counter) = self.locals[local] else { unreachable!("checker: loop variables are u64") };
        let first = self.scalar_operand(start);
        self.emit(Op::Mov { dst: counter, src: first }, span);
        let bound = match self.scalar_operand(end) {
            Operand::Imm(limit) => Operand::Imm(limit),
            Operand::Reg(value) => {
                let copy = self.reg();
                self.emit(Op::Mov { dst: copy, src: Operand::Reg(value) }, span);
                Operand::Reg(copy)
            }
        };
        let (header, body_block, latch, exit) =
            (self.b.new_block(), self.b.new_block(), self.b.new_block(), self.b.new_block());
        self.b.terminate(Terminator::Jump(header), span);
        self.b.switch_to(header);
        self.b.terminate(
            Terminator::Branch { cond: Cond::Ult, lhs: counter, rhs: bound, then: body_block, otherwise: exit },
            span,
        );
        self.b.switch_to(body_block);
        self.stmts(body);
        self.jump_to(latch, span);
        self.b.switch_to(latch);
        self.emit(Op::Alu { op: AluOp::Add, dst: counter, lhs: counter, rhs: Operand::Imm(1) }, span);
        self.b.terminate(Terminator::Jump(header), span);
        self.b.switch_to(exit);
    }

    /// Loads a map value of type `ty` at offset 0 of a non-null value pointer.
    fn load_value(&mut self, ptr: Vreg, ty: Ty, span: Span) -> Vreg {
        let dst = self.reg();
        let width = ty.size() as u8;
        self.emit(Op::LoadPtr { dst, ptr, offset: 0, width }, span);
        if ty.is_signed() && width < 8 {
            self.normalize(dst, ty, span)
        } else {
            dst
        }
    }

    fn copy_from_ptr(&mut self, slot: Slot, ptr: Vreg, len: u32, span: Span) {
        for i in 0..len.div_ceil(8) {
            let t = self.reg();
            self.emit(Op::LoadPtr { dst: t, ptr, offset: i * 8, width: 8 }, span);
            self.emit(Op::StoreSlot { slot, offset: i * 8, width: 8, src: Operand::Reg(t) }, span);
        }
    }

    /// Stores value `v` of type `ty` at `slot + offset` with `ty`'s width.
    fn store_value(&mut self, slot: Slot, offset: u32, v: Val, ty: Ty, span: Span) {
        match v {
            Val::Reg(r) => {
                self.emit(Op::StoreSlot { slot, offset, width: ty.size() as u8, src: Operand::Reg(r) }, span)
            }
            Val::Str { slot: src, len } => {
                // Keys are laid out with 1-byte alignment for strings: copy bytewise when the
                // destination offset is not word aligned.
                if offset % 8 == 0 {
                    self.copy_words(slot, src, offset, len.div_ceil(8), span);
                } else {
                    for i in 0..len {
                        let t = self.reg();
                        self.emit(Op::LoadSlot { dst: t, slot: src, offset: i, width: 1 }, span);
                        self.emit(Op::StoreSlot { slot, offset: offset + i, width: 1, src: Operand::Reg(t) }, span);
                    }
                }
            }
        }
    }

    /// The 8-byte stack key field (`manifest::ScalarType::Stack`): the low 32 bits of
    /// `bpf_get_stackid` (the id, or a negative errno kept as an `i32`, so a failed walk is
    /// counted under its error rather than dropped) and, for user stacks, the tgid above them.
    fn stack_key(&mut self, user: bool, depth: u8, span: Span) -> Vreg {
        let Some(map) = super::layout::stack_map_id(self.map_defs, user, depth) else {
            // The checker only makes a `StackId` for a key of a map whose key type is this
            // stack, and `stack_maps` has one map per such key type.
            unreachable!("internal error: no stack map for a stack key");
        };
        let id = self.call(Helper::GetStackId { map, user }, span);
        let low = self.reg();
        self.emit(Op::Extend { dst: low, src: id, width: 4, signed: false }, span);
        if !user {
            return low;
        }
        let pid_tgid = self.call(Helper::GetCurrentPidTgid, span);
        let tgid = self.alu(AluOp::LShr, pid_tgid, Operand::Imm(32), span);
        let high = self.alu(AluOp::Shl, tgid, Operand::Imm(32), span);
        self.alu(AluOp::Or, low, Operand::Reg(high), span)
    }

    /// Builds the kernel key of `map` for `keys` in a fresh zeroed slot (padding included, as
    /// the kernel hashes every key byte).
    fn key(&mut self, map: usize, keys: &[hir::Expr], span: Span) -> Slot {
        if let (MapKind::Array { .. }, [index]) = (self.map_defs[map].kind, keys) {
            // The kernel index is a `u32`; the verifier proves the `u64` below the length,
            // so keeping the low 4 bytes keeps the value.
            let slot = self.b.new_slot(4);
            let value = self.scalar_operand(index);
            self.emit(Op::StoreSlot { slot, offset: 0, width: 4, src: value }, span);
            return slot;
        }
        let layout = &self.maps[map];
        let key_size = layout.kernel.key_size;
        let offsets = layout.key_offsets.clone();
        let slot = self.b.new_slot(key_size);
        self.emit(Op::ZeroSlot { slot }, span);
        for (k, off) in keys.iter().zip(offsets) {
            let v = self.expr(k);
            self.store_value(slot, off, v, k.ty, span);
        }
        slot
    }

    fn aggregate(&mut self, map: usize, keys: &[hir::Expr], value: Option<&hir::Expr>, span: Span) {
        let def = &self.map_defs[map];
        let kind = def.kind;
        let signed = def.value.is_signed();
        let (is_array, bucket_offset) = (self.maps[map].is_array, self.maps[map].bucket_offset);
        let value_size = self.maps[map].kernel.value_size;
        let v = match value {
            Some(e) => match self.expr(e) {
                Val::Reg(r) => r,
                Val::Str { .. } => unreachable!("checker: aggregations record integers"),
            },
            None => self.imm(1, span),
        };
        let key = self.key(map, keys, span);
        if let Some(bucket) = self.bucket(kind, v, signed, span) {
            match bucket_offset {
                Some(off) => {
                    self.emit(Op::StoreSlot { slot: key, offset: off, width: 8, src: Operand::Reg(bucket) }, span)
                }
                None => self.emit(Op::StoreSlot { slot: key, offset: 0, width: 4, src: Operand::Reg(bucket) }, span),
            }
        }
        let ptr = self.b.new_vreg(VregType::MapValue(map));
        self.emit(Op::MapLookup { dst: ptr, map, key }, span);
        let (apply, done) = (self.b.new_block(), self.b.new_block());
        if is_array {
            self.b.terminate(Terminator::BranchNull { ptr, is_null: done, not_null: apply }, span);
        } else {
            // First sight of this key: insert a zero value (unless another CPU just did) and
            // look it up again; the aggregation below then treats it like any other.
            let insert = self.b.new_block();
            self.b.terminate(Terminator::BranchNull { ptr, is_null: insert, not_null: apply }, span);
            self.b.switch_to(insert);
            let zero = self.b.new_slot(value_size);
            self.emit(Op::ZeroSlot { slot: zero }, span);
            self.emit(Op::MapUpdate { map, key, value: zero, flags: BPF_NOEXIST }, span);
            self.emit(Op::MapLookup { dst: ptr, map, key }, span);
            self.b.terminate(Terminator::BranchNull { ptr, is_null: done, not_null: apply }, span);
        }
        self.b.switch_to(apply);
        match kind {
            MapKind::Count | MapKind::Sum | MapKind::Hist | MapKind::Lhist { .. } => {
                let add = if matches!(kind, MapKind::Hist | MapKind::Lhist { .. }) { self.imm(1, span) } else { v };
                self.add_at(ptr, 0, add, span);
            }
            MapKind::Avg | MapKind::Stats => {
                self.add_at(ptr, 0, v, span);
                let one = self.imm(1, span);
                self.add_at(ptr, 8, one, span);
            }
            MapKind::Min | MapKind::Max => {
                // Replace when this CPU has seen nothing yet, or when `v` beats the current value.
                let (store, check) = (self.b.new_block(), self.b.new_block());
                let seen = self.reg();
                self.emit(Op::LoadPtr { dst: seen, ptr, offset: 8, width: 8 }, span);
                self.b.terminate(
                    Terminator::Branch {
                        cond: Cond::Eq,
                        lhs: seen,
                        rhs: Operand::Imm(0),
                        then: store,
                        otherwise: check,
                    },
                    span,
                );
                self.b.switch_to(check);
                let cur = self.reg();
                self.emit(Op::LoadPtr { dst: cur, ptr, offset: 0, width: 8 }, span);
                let better = match (kind, signed) {
                    (MapKind::Min, true) => Cond::Slt,
                    (MapKind::Min, false) => Cond::Ult,
                    (_, true) => Cond::Sgt,
                    (_, false) => Cond::Ugt,
                };
                self.b.terminate(
                    Terminator::Branch { cond: better, lhs: v, rhs: Operand::Reg(cur), then: store, otherwise: done },
                    span,
                );
                self.b.switch_to(store);
                self.emit(Op::StorePtr { ptr, offset: 0, width: 8, src: Operand::Reg(v) }, span);
                self.emit(Op::StorePtr { ptr, offset: 8, width: 8, src: Operand::Imm(1) }, span);
            }
            MapKind::Hash | MapKind::Array { .. } => unreachable!("checker: no aggregation methods on plain maps"),
        }
        self.jump_to(done, span);
        self.b.switch_to(done);
    }

    /// `*(u64 *)(ptr + offset) += v`. Aggregation maps are per-CPU, so a plain
    /// read-modify-write is race-free.
    fn add_at(&mut self, ptr: Vreg, offset: u32, v: Vreg, span: Span) {
        let cur = self.reg();
        self.emit(Op::LoadPtr { dst: cur, ptr, offset, width: 8 }, span);
        let sum = self.alu(AluOp::Add, cur, Operand::Reg(v), span);
        self.emit(Op::StorePtr { ptr, offset, width: 8, src: Operand::Reg(sum) }, span);
    }

    /// The histogram bucket of `v`, for histogram kinds.
    fn bucket(&mut self, kind: MapKind, v: Vreg, signed: bool, span: Span) -> Option<Vreg> {
        match kind {
            MapKind::Hist => Some(self.log2_bucket(v, signed, span)),
            MapKind::Lhist { lo, hi, step } => Some(self.linear_bucket(v, lo, hi, step, span)),
            _ => None,
        }
    }

    /// 0 for negative values, 1 for zero, `2 + floor(log2(v))` otherwise: a binary search
    /// over the bit position, six compare-and-shift steps, no loop.
    fn log2_bucket(&mut self, v: Vreg, signed: bool, span: Span) -> Vreg {
        let bucket = self.reg();
        let done = self.b.new_block();
        self.emit(Op::Mov { dst: bucket, src: Operand::Imm(0) }, span);
        if signed {
            let nonneg = self.b.new_block();
            self.b.terminate(
                Terminator::Branch { cond: Cond::Slt, lhs: v, rhs: Operand::Imm(0), then: done, otherwise: nonneg },
                span,
            );
            self.b.switch_to(nonneg);
        }
        self.emit(Op::Mov { dst: bucket, src: Operand::Imm(1) }, span);
        let positive = self.b.new_block();
        self.b.terminate(
            Terminator::Branch { cond: Cond::Eq, lhs: v, rhs: Operand::Imm(0), then: done, otherwise: positive },
            span,
        );
        self.b.switch_to(positive);
        let x = self.reg();
        self.emit(Op::Mov { dst: x, src: Operand::Reg(v) }, span);
        self.emit(Op::Mov { dst: bucket, src: Operand::Imm(2) }, span);
        for shift in [32i64, 16, 8, 4, 2, 1] {
            let (take, next) = (self.b.new_block(), self.b.new_block());
            let limit = self.operand(1i64 << shift, span);
            self.b.terminate(
                Terminator::Branch { cond: Cond::Uge, lhs: x, rhs: limit, then: take, otherwise: next },
                span,
            );
            self.b.switch_to(take);
            self.emit(Op::Alu { op: AluOp::LShr, dst: x, lhs: x, rhs: Operand::Imm(shift) }, span);
            self.emit(Op::Alu { op: AluOp::Add, dst: bucket, lhs: bucket, rhs: Operand::Imm(shift) }, span);
            self.b.terminate(Terminator::Jump(next), span);
            self.b.switch_to(next);
        }
        self.b.terminate(Terminator::Jump(done), span);
        self.b.switch_to(done);
        bucket
    }

    /// 0 below `lo`, `1 + (v - lo) / step` inside, `n + 1` at or above `hi`.
    fn linear_bucket(&mut self, v: Vreg, lo: i64, hi: i64, step: i64, span: Span) -> Vreg {
        let inner = super::layout::lhist_inner_buckets(lo, hi, step) as i64;
        let bucket = self.reg();
        let (not_low, inside, done) = (self.b.new_block(), self.b.new_block(), self.b.new_block());
        self.emit(Op::Mov { dst: bucket, src: Operand::Imm(0) }, span);
        let lo_op = self.operand(lo, span);
        self.b.terminate(
            Terminator::Branch { cond: Cond::Slt, lhs: v, rhs: lo_op, then: done, otherwise: not_low },
            span,
        );
        self.b.switch_to(not_low);
        self.emit(Op::Mov { dst: bucket, src: Operand::Imm(inner + 1) }, span);
        // With `v >= lo` (signed), `v >= hi` exactly when the unsigned distance `v - lo` is at
        // least `hi - lo`; comparing the distance lets the verifier bound the bucket index
        // (`(v - lo) / step < inner`), which it must prove below the array's length.
        let lo_op = self.operand(lo, span);
        let off = self.alu(AluOp::Sub, v, lo_op, span);
        let width_op = self.operand(hi.wrapping_sub(lo), span);
        self.b.terminate(
            Terminator::Branch { cond: Cond::Uge, lhs: off, rhs: width_op, then: done, otherwise: inside },
            span,
        );
        self.b.switch_to(inside);
        let step_op = self.operand(step, span);
        let idx = self.alu(AluOp::UDiv, off, step_op, span);
        self.emit(Op::Alu { op: AluOp::Add, dst: bucket, lhs: idx, rhs: Operand::Imm(1) }, span);
        self.b.terminate(Terminator::Jump(done), span);
        self.b.switch_to(done);
        bucket
    }

    // ---- conditions ----

    /// Branches to `then` when the boolean `e` holds, else to `otherwise`; comparisons and
    /// `&&`/`||`/`!` become branches directly instead of materialised 0/1 values.
    fn cond(&mut self, e: &hir::Expr, then: ppis_ir::Block, otherwise: ppis_ir::Block) {
        let span = e.span;
        match &e.kind {
            ExprKind::Binary { op: BinaryOp::And, lhs, rhs } => {
                let mid = self.b.new_block();
                self.cond(lhs, mid, otherwise);
                self.b.switch_to(mid);
                self.cond(rhs, then, otherwise);
            }
            ExprKind::Binary { op: BinaryOp::Or, lhs, rhs } => {
                let mid = self.b.new_block();
                self.cond(lhs, then, mid);
                self.b.switch_to(mid);
                self.cond(rhs, then, otherwise);
            }
            ExprKind::Unary { op: UnaryOp::Not, operand } => self.cond(operand, otherwise, then),
            ExprKind::Bool(true) => self.b.terminate(Terminator::Jump(then), span),
            ExprKind::Bool(false) => self.b.terminate(Terminator::Jump(otherwise), span),
            ExprKind::Binary { op, lhs, rhs }
                if compare_cond(*op, lhs.ty).is_some() && !matches!(lhs.ty, Ty::Str { .. } | Ty::Buf { .. }) =>
            {
                let cond = compare_cond(*op, lhs.ty).expect("comparison");
                let l = self.scalar(lhs);
                let r = self.scalar_operand(rhs);
                self.b.terminate(Terminator::Branch { cond, lhs: l, rhs: r, then, otherwise }, span);
            }
            _ => {
                let v = self.scalar(e);
                self.b.terminate(
                    Terminator::Branch { cond: Cond::Ne, lhs: v, rhs: Operand::Imm(0), then, otherwise },
                    span,
                );
            }
        }
    }

    // ---- expressions ----

    fn scalar(&mut self, e: &hir::Expr) -> Vreg {
        match self.expr(e) {
            Val::Reg(r) => r,
            Val::Str { .. } => unreachable!("checker: scalar expected, found {}", e.ty),
        }
    }

    /// Like `scalar`, but a small constant stays an immediate.
    fn scalar_operand(&mut self, e: &hir::Expr) -> Operand {
        match e.kind {
            ExprKind::Int(bits) if fits_imm(bits as i64) => Operand::Imm(bits as i64),
            ExprKind::Bool(b) => Operand::Imm(b as i64),
            _ => Operand::Reg(self.scalar(e)),
        }
    }

    fn expr(&mut self, e: &hir::Expr) -> Val {
        let span = e.span;
        match &e.kind {
            ExprKind::Int(bits) => Val::Reg(self.imm(*bits as i64, span)),
            ExprKind::Bool(b) => Val::Reg(self.imm(*b as i64, span)),
            ExprKind::Str(bytes) => {
                let len = bytes.len() as u32;
                let slot = self.b.new_slot(len);
                for (i, chunk) in bytes.chunks(8).enumerate() {
                    let mut word = [0u8; 8];
                    word[..chunk.len()].copy_from_slice(chunk);
                    let src = self.operand(i64::from_le_bytes(word), span);
                    self.emit(Op::StoreSlot { slot, offset: i as u32 * 8, width: 8, src }, span);
                }
                Val::Str { slot, len }
            }
            ExprKind::Local(id) => match self.locals[*id] {
                LocalHome::Reg(r) => Val::Reg(r),
                LocalHome::Str { slot, len } => Val::Str { slot, len },
            },
            ExprKind::Builtin(b) => self.builtin(*b, span),
            ExprKind::StackId { user, depth } => Val::Reg(self.stack_key(*user, *depth, span)),
            ExprKind::Arg(n) => Val::Reg(self.load_ctx(PT_REGS_ARGS[*n as usize], 8, false, span)),
            ExprKind::Retval => Val::Reg(self.load_ctx(PT_REGS_AX, 8, false, span)),
            ExprKind::CtxField { offset, size, signed } => Val::Reg(self.load_ctx(*offset, *size as u8, *signed, span)),
            ExprKind::CtxStr { offset, len } => {
                let slot = self.b.new_slot(*len);
                self.emit(Op::ZeroSlot { slot }, span);
                // The tracepoint context and the stack both only allow naturally aligned
                // accesses: a width must divide the source and the destination offset.
                let mut i = 0;
                while i < *len {
                    let width = [8u32, 4, 2, 1]
                        .into_iter()
                        .find(|w| (offset + i) % w == 0 && i % w == 0 && i + w <= *len)
                        .unwrap_or(1);
                    let t = self.load_ctx(offset + i, width as u8, false, span);
                    self.emit(Op::StoreSlot { slot, offset: i, width: width as u8, src: Operand::Reg(t) }, span);
                    i += width;
                }
                Val::Str { slot, len: *len }
            }
            ExprKind::ReadStr { ptr, len, space } => {
                let ptr = self.scalar(ptr);
                let slot = self.b.new_slot(*len);
                // The helper stops at the NUL: zero first so the bytes after it are padding.
                self.emit(Op::ZeroSlot { slot }, span);
                let space = match space {
                    hir::AddressSpace::User => AddressSpace::User,
                    hir::AddressSpace::Kernel => AddressSpace::Kernel,
                };
                let helper = Helper::ProbeReadStr { slot, len: *len, ptr, space };
                self.emit(Op::Call { dst: None, helper }, span);
                Val::Str { slot, len: *len }
            }
            ExprKind::ReadInt { address, size, signed } => {
                let address = self.scalar(address);
                let slot = self.b.new_slot(8);
                let helper = Helper::ProbeRead { slot, len: u32::from(*size), ptr: address, space: AddressSpace::User };
                self.emit(Op::Call { dst: None, helper }, span);
                let raw = self.reg();
                self.emit(Op::LoadSlot { dst: raw, slot, offset: 0, width: *size }, span);
                if !*signed || *size == 8 {
                    return Val::Reg(raw);
                }
                let extended = self.reg();
                self.emit(Op::Extend { dst: extended, src: raw, width: *size, signed: true }, span);
                Val::Reg(extended)
            }
            ExprKind::ReadBuf { ptr, len, space } => {
                let ptr = self.scalar(ptr);
                let slot = self.b.new_slot(*len);
                let space = match space {
                    hir::AddressSpace::User => AddressSpace::User,
                    hir::AddressSpace::Kernel => AddressSpace::Kernel,
                };
                // The helper writes all `len` bytes (zeros on a fault), but the slot is whole
                // words and copies of it (into a local, a record) move whole words: zero the
                // padding first, or its bytes are read uninitialised (E0407).
                if *len % 8 != 0 {
                    self.emit(Op::ZeroSlot { slot }, span);
                }
                self.emit(Op::Call { dst: None, helper: Helper::ProbeRead { slot, len: *len, ptr, space } }, span);
                // Byte values are carried like strings (a slot and a length).
                Val::Str { slot, len: *len }
            }
            ExprKind::Coalesce { map, keys, default } => {
                let key = self.key(*map, keys, span);
                let ptr = self.b.new_vreg(VregType::MapValue(*map));
                self.emit(Op::MapLookup { dst: ptr, map: *map, key }, span);
                let (found, missing, join) = (self.b.new_block(), self.b.new_block(), self.b.new_block());
                self.b.terminate(Terminator::BranchNull { ptr, is_null: missing, not_null: found }, span);
                let value_ty = self.map_defs[*map].value;
                match e.ty {
                    Ty::Str { len } | Ty::Buf { len } => {
                        let out = self.b.new_slot(len);
                        self.b.switch_to(found);
                        self.copy_from_ptr(out, ptr, len, span);
                        self.b.terminate(Terminator::Jump(join), span);
                        self.b.switch_to(missing);
                        let d = self.expr(default);
                        self.store_value(out, 0, d, e.ty, span);
                        self.jump_to(join, span);
                        self.b.switch_to(join);
                        Val::Str { slot: out, len }
                    }
                    _ => {
                        let out = self.reg();
                        self.b.switch_to(found);
                        let v = self.load_value(ptr, value_ty, span);
                        self.emit(Op::Mov { dst: out, src: Operand::Reg(v) }, span);
                        self.b.terminate(Terminator::Jump(join), span);
                        self.b.switch_to(missing);
                        let d = self.scalar(default);
                        self.emit(Op::Mov { dst: out, src: Operand::Reg(d) }, span);
                        self.jump_to(join, span);
                        self.b.switch_to(join);
                        Val::Reg(out)
                    }
                }
            }
            ExprKind::Conditional { cond, then, otherwise } => {
                let (yes, no, join) = (self.b.new_block(), self.b.new_block(), self.b.new_block());
                self.cond(cond, yes, no);
                // Each branch evaluates only its own operand and copies it into one result.
                match e.ty {
                    Ty::Str { len } | Ty::Buf { len } => {
                        let out = self.b.new_slot(len);
                        for (block, branch) in [(yes, then), (no, otherwise)] {
                            self.b.switch_to(block);
                            let v = self.expr(branch);
                            self.store_value(out, 0, v, e.ty, span);
                            self.jump_to(join, span);
                        }
                        self.b.switch_to(join);
                        Val::Str { slot: out, len }
                    }
                    _ => {
                        let out = self.reg();
                        for (block, branch) in [(yes, then), (no, otherwise)] {
                            self.b.switch_to(block);
                            let v = self.scalar_operand(branch);
                            self.emit(Op::Mov { dst: out, src: v }, span);
                            self.jump_to(join, span);
                        }
                        self.b.switch_to(join);
                        Val::Reg(out)
                    }
                }
            }
            ExprKind::Unary { op, operand } => {
                let v = self.scalar(operand);
                let r = match op {
                    UnaryOp::Neg => {
                        let dst = self.reg();
                        self.emit(Op::Neg { dst, src: v }, span);
                        self.normalize(dst, e.ty, span)
                    }
                    UnaryOp::Not => self.alu(AluOp::Xor, v, Operand::Imm(1), span),
                    UnaryOp::BitNot => {
                        let x = self.alu(AluOp::Xor, v, Operand::Imm(-1), span);
                        self.normalize(x, e.ty, span)
                    }
                };
                Val::Reg(r)
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, e.ty, span),
            ExprKind::Cast(inner) => self.cast(inner, e.ty, span),
        }
    }

    fn load_ctx(&mut self, offset: u32, width: u8, signed: bool, span: Span) -> Vreg {
        let dst = self.reg();
        self.emit(Op::LoadCtx { dst, offset, width, signed }, span);
        dst
    }

    fn builtin(&mut self, b: Builtin, span: Span) -> Val {
        let r = match b {
            Builtin::Pid => {
                let v = self.call(Helper::GetCurrentPidTgid, span);
                self.alu(AluOp::LShr, v, Operand::Imm(32), span)
            }
            Builtin::Tid => {
                let v = self.call(Helper::GetCurrentPidTgid, span);
                self.normalize(v, Ty::U32, span)
            }
            Builtin::Uid => {
                let v = self.call(Helper::GetCurrentUidGid, span);
                self.normalize(v, Ty::U32, span)
            }
            Builtin::Gid => {
                let v = self.call(Helper::GetCurrentUidGid, span);
                self.alu(AluOp::LShr, v, Operand::Imm(32), span)
            }
            Builtin::Cpu => self.call(Helper::GetSmpProcessorId, span),
            Builtin::Nsecs => self.call(Helper::KtimeGetNs, span),
            Builtin::Cgroup => self.call(Helper::GetCurrentCgroupId, span),
            Builtin::Cpid => self.imm(self.opts.cpid.unwrap_or(0) as i64, span),
            Builtin::Comm => {
                let slot = self.b.new_slot(16);
                self.emit(Op::Call { dst: None, helper: Helper::GetCurrentComm { slot } }, span);
                return Val::Str { slot, len: 16 };
            }
        };
        Val::Reg(r)
    }

    fn cast(&mut self, inner: &hir::Expr, to: Ty, span: Span) -> Val {
        let from = inner.ty;
        let v = self.expr(inner);
        match (v, to) {
            (Val::Str { slot, len }, Ty::Str { len: new_len }) => {
                if new_len == len {
                    return v;
                }
                let out = self.b.new_slot(new_len);
                let words = len.min(new_len).div_ceil(8);
                self.copy_words(out, slot, 0, words, span);
                for i in words..new_len.div_ceil(8) {
                    self.emit(Op::StoreSlot { slot: out, offset: i * 8, width: 8, src: Operand::Imm(0) }, span);
                }
                Val::Str { slot: out, len: new_len }
            }
            (Val::Reg(r), Ty::Int { bytes, .. }) if bytes < 8 && from != to => Val::Reg(self.normalize(r, to, span)),
            (Val::Reg(r), Ty::Bool) if from != Ty::Bool => {
                let dst = self.reg();
                self.emit(Op::SetCond { cond: Cond::Ne, dst, lhs: r, rhs: Operand::Imm(0) }, span);
                Val::Reg(dst)
            }
            (v, _) => v,
        }
    }

    fn binary(&mut self, op: BinaryOp, lhs: &hir::Expr, rhs: &hir::Expr, ty: Ty, span: Span) -> Val {
        if matches!(op, BinaryOp::And | BinaryOp::Or)
            || (compare_cond(op, lhs.ty).is_some() && !matches!(lhs.ty, Ty::Str { .. } | Ty::Buf { .. }))
        {
            return Val::Reg(self.materialize_cond(op, lhs, rhs, ty, span));
        }
        if let (Ty::Buf { .. }, BinaryOp::Eq | BinaryOp::Ne) = (lhs.ty, op) {
            return Val::Reg(self.buf_eq(op, lhs, rhs, span));
        }
        if let (Ty::Str { .. }, BinaryOp::Eq | BinaryOp::Ne) = (lhs.ty, op) {
            return Val::Reg(self.str_eq(op, lhs, rhs, span));
        }
        let signed = ty.is_signed();
        let l = self.scalar(lhs);
        let r = self.scalar_operand(rhs);
        let out = match op {
            BinaryOp::Add => self.alu(AluOp::Add, l, r, span),
            BinaryOp::Sub => self.alu(AluOp::Sub, l, r, span),
            BinaryOp::Mul => self.alu(AluOp::Mul, l, r, span),
            BinaryOp::BitAnd => self.alu(AluOp::And, l, r, span),
            BinaryOp::BitOr => self.alu(AluOp::Or, l, r, span),
            BinaryOp::BitXor => self.alu(AluOp::Xor, l, r, span),
            BinaryOp::Shl => self.alu(AluOp::Shl, l, r, span),
            BinaryOp::Shr => self.alu(if signed { AluOp::AShr } else { AluOp::LShr }, l, r, span),
            BinaryOp::Div | BinaryOp::Rem if !signed => {
                self.alu(if op == BinaryOp::Div { AluOp::UDiv } else { AluOp::UMod }, l, r, span)
            }
            BinaryOp::Div | BinaryOp::Rem => self.signed_divrem(op, l, r, span),
            _ => unreachable!("comparisons and logic handled above"),
        };
        Val::Reg(self.normalize(out, ty, span))
    }

    /// Signed `/` and `%` from unsigned ones on magnitudes, branch-free:
    /// `|x| = (x ^ s) - s` with `s = x >> 63` (arithmetic); the quotient is negative when
    /// the signs differ, the remainder takes the dividend's sign (C semantics).
    fn signed_divrem(&mut self, op: BinaryOp, l: Vreg, r: Operand, span: Span) -> Vreg {
        let r = match r {
            Operand::Reg(r) => r,
            Operand::Imm(i) => self.imm(i, span),
        };
        let abs = |this: &mut Self, x: Vreg| {
            let s = this.alu(AluOp::AShr, x, Operand::Imm(63), span);
            let t = this.alu(AluOp::Xor, x, Operand::Reg(s), span);
            (this.alu(AluOp::Sub, t, Operand::Reg(s), span), s)
        };
        let (ul, sl) = abs(self, l);
        let (ur, sr) = abs(self, r);
        let (raw, sign) = if op == BinaryOp::Div {
            (self.alu(AluOp::UDiv, ul, Operand::Reg(ur), span), self.alu(AluOp::Xor, sl, Operand::Reg(sr), span))
        } else {
            (self.alu(AluOp::UMod, ul, Operand::Reg(ur), span), sl)
        };
        let t = self.alu(AluOp::Xor, raw, Operand::Reg(sign), span);
        self.alu(AluOp::Sub, t, Operand::Reg(sign), span)
    }

    /// A boolean expression as a 0/1 register, via branches.
    fn materialize_cond(&mut self, op: BinaryOp, lhs: &hir::Expr, rhs: &hir::Expr, ty: Ty, span: Span) -> Vreg {
        let e = hir::Expr {
            kind: ExprKind::Binary { op, lhs: Box::new(lhs.clone()), rhs: Box::new(rhs.clone()) },
            ty,
            span,
        };
        let dst = self.reg();
        let (yes, no, join) = (self.b.new_block(), self.b.new_block(), self.b.new_block());
        self.cond(&e, yes, no);
        self.b.switch_to(yes);
        self.emit(Op::Mov { dst, src: Operand::Imm(1) }, span);
        self.b.terminate(Terminator::Jump(join), span);
        self.b.switch_to(no);
        self.emit(Op::Mov { dst, src: Operand::Imm(0) }, span);
        self.b.terminate(Terminator::Jump(join), span);
        self.b.switch_to(join);
        dst
    }

    /// C-string equality of two NUL-padded buffers over the shorter length `n`: equal when
    /// the bytes match up to and including `lhs`'s first NUL, or over all `n` bytes when there
    /// is none. Compared a word (8 bytes, then 4/2/1 for the tail, every load naturally
    /// aligned) at a time rather than a byte at a time: two branches per word instead of two
    /// per byte, which keeps the CFG small for the verifier (Z3 path constraints grow with it).
    ///
    /// Per piece `x` (from `lhs`) and `y` (from `rhs`) of `w` bytes, little-endian:
    /// `z = (x - 0x01..01) & !x & 0x80..80` (over the `w` bytes) has its lowest set bit in the
    /// first zero byte of `x` and none when there is no zero byte (bits above the first zero
    /// byte may be wrong from the borrow, but only the lowest is used); `mask = z ^ (z - 1)`
    /// covers the bytes up to and including that one (every byte when `z = 0`). The strings
    /// differ when `(x ^ y) & mask != 0`; otherwise they are equal when `x` held a NUL (`z != 0`)
    /// and the comparison goes on with the next piece when it did not.
    fn str_eq(&mut self, op: BinaryOp, lhs: &hir::Expr, rhs: &hir::Expr, span: Span) -> Vreg {
        let (Val::Str { slot: a, len: la }, Val::Str { slot: b, len: lb }) = (self.expr(lhs), self.expr(rhs)) else {
            unreachable!("checker: string comparison of strings")
        };
        let (eq_val, ne_val) = if op == BinaryOp::Eq { (1, 0) } else { (0, 1) };
        let dst = self.reg();
        let (equal, differ, join) = (self.b.new_block(), self.b.new_block(), self.b.new_block());
        let n = la.min(lb);
        let mut offset = 0;
        while offset < n {
            let width = str_eq_piece_width(offset, n);
            let (ones, highs) = repeated_byte_constants(width);
            let x = self.reg();
            let y = self.reg();
            self.emit(Op::LoadSlot { dst: x, slot: a, offset, width: width as u8 }, span);
            self.emit(Op::LoadSlot { dst: y, slot: b, offset, width: width as u8 }, span);
            let borrowed = self.alu(AluOp::Sub, x, Operand::Imm(ones), span);
            let not_x = self.alu(AluOp::Xor, x, Operand::Imm(-1), span);
            let zero_candidates = self.alu(AluOp::And, borrowed, Operand::Reg(not_x), span);
            let zero_bytes = self.alu(AluOp::And, zero_candidates, Operand::Imm(highs), span);
            let below = self.alu(AluOp::Sub, zero_bytes, Operand::Imm(1), span);
            let mask = self.alu(AluOp::Xor, zero_bytes, Operand::Reg(below), span);
            let diff = self.alu(AluOp::Xor, x, Operand::Reg(y), span);
            let relevant = self.alu(AluOp::And, diff, Operand::Reg(mask), span);
            offset += width;
            let same = if offset < n { self.b.new_block() } else { equal };
            self.b.terminate(
                Terminator::Branch {
                    cond: Cond::Ne,
                    lhs: relevant,
                    rhs: Operand::Imm(0),
                    then: differ,
                    otherwise: same,
                },
                span,
            );
            if offset < n {
                self.b.switch_to(same);
                let next = self.b.new_block();
                self.b.terminate(
                    Terminator::Branch {
                        cond: Cond::Ne,
                        lhs: zero_bytes,
                        rhs: Operand::Imm(0),
                        then: equal,
                        otherwise: next,
                    },
                    span,
                );
                self.b.switch_to(next);
            }
        }
        if n == 0 {
            self.b.terminate(Terminator::Jump(equal), span);
        }
        self.b.switch_to(equal);
        self.emit(Op::Mov { dst, src: Operand::Imm(eq_val) }, span);
        self.b.terminate(Terminator::Jump(join), span);
        self.b.switch_to(differ);
        self.emit(Op::Mov { dst, src: Operand::Imm(ne_val) }, span);
        self.b.terminate(Terminator::Jump(join), span);
        self.b.switch_to(join);
        dst
    }
}

/// The width of the string-compare piece at `offset` of `n` bytes: the widest of 8/4/2/1 that
/// is naturally aligned there (stack loads must be) and does not run past `n`.
fn str_eq_piece_width(offset: u32, n: u32) -> u32 {
    [8u32, 4, 2, 1].into_iter().find(|&w| offset.is_multiple_of(w) && offset + w <= n).unwrap_or(1)
}

impl FnLowerer<'_> {
    /// `a == b` (or `!=`) on two `buf[N]` of one length: every byte counts (no NUL ends
    /// them), compared in the widest aligned pieces.
    fn buf_eq(&mut self, op: BinaryOp, lhs: &hir::Expr, rhs: &hir::Expr, span: Span) -> Vreg {
        let (Val::Str { slot: a, len }, Val::Str { slot: b, .. }) = (self.expr(lhs), self.expr(rhs)) else {
            unreachable!("checker: buffer comparison of buffers")
        };
        let (eq_val, ne_val) = if op == BinaryOp::Eq { (1, 0) } else { (0, 1) };
        let dst = self.reg();
        let (equal, differ, join) = (self.b.new_block(), self.b.new_block(), self.b.new_block());
        let mut offset = 0;
        while offset < len {
            let width = str_eq_piece_width(offset, len);
            let (x, y) = (self.reg(), self.reg());
            self.emit(Op::LoadSlot { dst: x, slot: a, offset, width: width as u8 }, span);
            self.emit(Op::LoadSlot { dst: y, slot: b, offset, width: width as u8 }, span);
            offset += width;
            let same = if offset < len { self.b.new_block() } else { equal };
            self.b.terminate(
                Terminator::Branch { cond: Cond::Ne, lhs: x, rhs: Operand::Reg(y), then: differ, otherwise: same },
                span,
            );
            if offset < len {
                self.b.switch_to(same);
            }
        }
        self.b.switch_to(equal);
        self.emit(Op::Mov { dst, src: Operand::Imm(eq_val) }, span);
        self.b.terminate(Terminator::Jump(join), span);
        self.b.switch_to(differ);
        self.emit(Op::Mov { dst, src: Operand::Imm(ne_val) }, span);
        self.b.terminate(Terminator::Jump(join), span);
        self.b.switch_to(join);
        dst
    }
}

/// `0x01` and `0x80` repeated over `width` bytes (as the IR's signed 64-bit immediates).
fn repeated_byte_constants(width: u32) -> (i64, i64) {
    let ones = (0..width).fold(0u64, |acc, byte| acc | 0x01 << (8 * byte));
    (ones as i64, (ones * 0x80) as i64)
}

/// The IR condition for a comparison operator on operands of type `ty`.
fn compare_cond(op: BinaryOp, ty: Ty) -> Option<Cond> {
    let s = ty.is_signed();
    Some(match op {
        BinaryOp::Eq => Cond::Eq,
        BinaryOp::Ne => Cond::Ne,
        BinaryOp::Lt => {
            if s {
                Cond::Slt
            } else {
                Cond::Ult
            }
        }
        BinaryOp::Le => {
            if s {
                Cond::Sle
            } else {
                Cond::Ule
            }
        }
        BinaryOp::Gt => {
            if s {
                Cond::Sgt
            } else {
                Cond::Ugt
            }
        }
        BinaryOp::Ge => {
            if s {
                Cond::Sge
            } else {
                Cond::Uge
            }
        }
        _ => return None,
    })
}
