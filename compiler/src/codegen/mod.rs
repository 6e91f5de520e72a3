//! eBPF code generation: translates one `ppis_ir::Function` to eBPF instructions that the
//! kernel verifier accepts.
//!
//! Pipeline: blocks are laid out in reverse post-order (the IR is acyclic, so every jump is
//! forward), the IR is checked for what the encoding needs (widths, offsets, slot sizes),
//! `regalloc` maps every value to r1-r4/r6-r9 or a spill slot, then each op expands to a short
//! fixed pattern and jumps are patched once every block's address is known.
//!
//! Stack frame (r10 is the top, the stack grows down): the IR slots in order, each 8-byte
//! aligned, then one 8-byte spill slot per spilled value; 512 bytes at most.
//!
//! Scratch registers: r0 (`SCRATCH_A`) and r5 (`SCRATCH_B`) are never allocated; an op reads
//! a spilled left operand into r0 and a spilled or wide right operand into r5, and computes a
//! spilled result in r0 before storing it.

pub mod insn;
mod regalloc;

pub use insn::Insn;

use insn::*;
use ppis_ir::{
    AddressSpace, AluOp, Block, Cond, CtxKind, Function, Helper, MapId, Module, Op, Operand, Slot, Span, Terminator,
    Vreg, VregType,
};
use regalloc::{Allocation, Location};

/// eBPF's per-program stack limit in bytes.
pub const MAX_STACK_SIZE: u32 = 512;

const SCRATCH_A: u8 = R0;
const SCRATCH_B: u8 = R5;

/// One probe compiled to eBPF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledProgram {
    pub name: String,
    pub insns: Vec<Insn>,
    /// Map references the loader must patch (each an `ld_imm64` of 0).
    pub map_relocs: Vec<MapReloc>,
    /// Bytes of stack used below r10 (slots and spills).
    pub stack_size: u32,
}

impl CompiledProgram {
    /// `(insn index, map name)` pairs for [`crate::disasm::disassemble`].
    pub fn reloc_names(&self, maps: &[ppis_ir::Map]) -> Vec<(usize, String)> {
        self.map_relocs
            .iter()
            .map(|r| (r.insn_index, maps.get(r.map).map_or_else(|| format!("m{}", r.map), |m| m.name.clone())))
            .collect()
    }
}

/// A map reference: the `ld_imm64` at `insn_index` (its first half) loads map `map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapReloc {
    pub insn_index: usize,
    pub map: MapId,
}

/// Why a function cannot be turned into a loadable program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodegenError {
    pub message: String,
    pub span: Span,
}

impl std::fmt::Display for CodegenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodegenError {}

fn error<T>(span: Span, message: impl Into<String>) -> Result<T, CodegenError> {
    Err(CodegenError { message: message.into(), span })
}

/// Compiles one function of `module` to eBPF.
pub fn compile_function(func: &Function, module: &Module) -> Result<CompiledProgram, CodegenError> {
    if func.cfg.node_weight(func.entry).is_none() {
        return error(func.span, format!("probe `{}` has no entry block", func.name));
    }
    // Reverse post-order: every forward edge points later in the layout; the back edges of
    // the bounded loops the verifier accepted point earlier and become backward jumps, which
    // the kernel verifier accepts for bounded loops (since Linux 5.3).
    let layout = func.reverse_postorder();
    validate(func, module, &layout)?;

    // Slots first so that their size limit is reported before spills are even considered.
    let mut slot_start = Vec::with_capacity(func.slots.len());
    let mut slots_total: u32 = 0;
    for size in &func.slots {
        slots_total = slots_total.saturating_add(size.div_ceil(8).saturating_mul(8));
        slot_start.push(-(slots_total.min(i32::MAX as u32) as i32));
    }
    if slots_total > MAX_STACK_SIZE {
        return error(
            func.span,
            format!(
                "probe `{}` needs {slots_total} bytes of stack for its slots, over the eBPF limit of {MAX_STACK_SIZE} bytes",
                func.name
            ),
        );
    }
    let alloc = regalloc::allocate(func, &layout);
    let stack_size = slots_total + 8 * alloc.spill_slots;
    if stack_size > MAX_STACK_SIZE {
        return error(
            func.span,
            format!(
                "probe `{}` needs {stack_size} bytes of stack ({slots_total} for slots, {} for {} spilled values), over the eBPF limit of {MAX_STACK_SIZE} bytes",
                func.name,
                8 * alloc.spill_slots,
                alloc.spill_slots
            ),
        );
    }

    let mut emitter = Emitter {
        func,
        alloc,
        slot_start,
        slots_total,
        insns: Vec::new(),
        map_relocs: Vec::new(),
        jump_fixups: Vec::new(),
        block_address: vec![usize::MAX; func.cfg.node_count()],
    };
    emitter.prologue();
    for (i, &b) in layout.iter().enumerate() {
        emitter.block_address[b.index()] = emitter.insns.len();
        for inst in &func.cfg[b].insts {
            emitter.op(&inst.op, inst.span)?;
        }
        emitter.terminator(&func.cfg[b].term, layout.get(i + 1).copied());
    }
    emitter.patch_jumps(func.span)?;
    Ok(CompiledProgram { name: func.name.clone(), insns: emitter.insns, map_relocs: emitter.map_relocs, stack_size })
}

/// Checks everything the encoding relies on, so that emission cannot go out of range.
fn validate(func: &Function, module: &Module, layout: &[Block]) -> Result<(), CodegenError> {
    let vreg_count = func.vregs.len();
    for &b in layout {
        let bb = &func.cfg[b];
        let check_vregs = |vregs: Vec<Vreg>, span: Span| -> Result<(), CodegenError> {
            match vregs.iter().find(|v| v.0 as usize >= vreg_count) {
                Some(v) => error(span, format!("v{} is not declared in probe `{}`", v.0, func.name)),
                None => Ok(()),
            }
        };
        for inst in &bb.insts {
            let span = inst.span;
            check_vregs(inst.op.uses().into_iter().chain(inst.op.def()).collect(), span)?;
            let slot_size = |slot: Slot| -> Result<u32, CodegenError> {
                match func.slots.get(slot.0 as usize) {
                    Some(size) => Ok(*size),
                    None => error(span, format!("slot s{} is not declared in probe `{}`", slot.0, func.name)),
                }
            };
            let map = |id: MapId| match module.maps.get(id) {
                Some(m) => Ok(m),
                None => error(span, format!("map m{id} is not declared in the module")),
            };
            let check_width = |width: u8| match size_code(width) {
                Some(_) => Ok(()),
                None => error(span, format!("access width {width} is not 1, 2, 4 or 8 bytes")),
            };
            let check_in_slot = |slot: Slot, offset: u32, width: u8| -> Result<(), CodegenError> {
                check_width(width)?;
                let size = slot_size(slot)?;
                if !matches!(offset.checked_add(width as u32), Some(end) if end <= size) {
                    return error(
                        span,
                        format!(
                            "access of {width} bytes at offset {offset} is outside slot s{} ({size} bytes)",
                            slot.0
                        ),
                    );
                }
                Ok(())
            };
            let check_slot_holds = |slot: Slot, needed: u32, what: &str| -> Result<(), CodegenError> {
                let size = slot_size(slot)?;
                if size < needed {
                    return error(span, format!("slot s{} has {size} bytes but {what} needs {needed}", slot.0));
                }
                Ok(())
            };
            let check_pointer = |ptr: Vreg, offset: u32, width: u8| -> Result<(), CodegenError> {
                check_width(width)?;
                let VregType::MapValue(m) = func.vregs[ptr.0 as usize] else {
                    return error(span, format!("v{} is dereferenced but is not a map value pointer", ptr.0));
                };
                let value_size = map(m)?.value_size;
                if !matches!(offset.checked_add(width as u32), Some(end) if end <= value_size) {
                    return error(
                        span,
                        format!("access of {width} bytes at offset {offset} is outside the {value_size}-byte value"),
                    );
                }
                Ok(())
            };
            match inst.op {
                Op::LoadCtx { offset, width, .. } => {
                    check_width(width)?;
                    if offset > i16::MAX as u32 - 8 {
                        return error(span, format!("context offset {offset} is too large"));
                    }
                    // The verifier only allows naturally aligned context reads, and hides the
                    // first 8 bytes of a tracepoint record (the common_* fields) entirely.
                    if offset % width as u32 != 0 {
                        return error(
                            span,
                            format!("context read of {width} bytes at offset {offset} is not aligned to its size"),
                        );
                    }
                    if func.ctx == CtxKind::Tracepoint && offset < 8 {
                        return error(
                            span,
                            format!(
                                "tracepoint field at offset {offset} is one of the common fields, which the kernel does not let eBPF programs read"
                            ),
                        );
                    }
                }
                Op::LoadSlot { slot, offset, width, .. } | Op::StoreSlot { slot, offset, width, .. } => {
                    check_in_slot(slot, offset, width)?
                }
                Op::ZeroSlot { slot } => {
                    slot_size(slot)?;
                }
                Op::Call { helper: Helper::GetCurrentComm { slot }, .. } => {
                    check_slot_holds(slot, 16, "get_current_comm")?
                }
                Op::Call { helper: Helper::ProbeRead { slot, len, .. }, .. } => {
                    if len == 0 || len > i32::MAX as u32 {
                        return error(span, format!("buffer read of {len} bytes"));
                    }
                    check_slot_holds(slot, len, "the buffer read")?
                }
                Op::Call { helper: Helper::ProbeReadStr { slot, len, .. }, .. } => {
                    if len == 0 || len > i32::MAX as u32 {
                        return error(span, format!("string read of {len} bytes"));
                    }
                    check_slot_holds(slot, len, "the string read")?
                }
                Op::Call { helper: Helper::RingbufOutput { map, slot, len }, .. } => {
                    if len == 0 || len > i32::MAX as u32 {
                        return error(span, format!("ring buffer record of {len} bytes"));
                    }
                    if module.maps.get(map).map(|m| m.kind) != Some(ppis_ir::MapType::RingBuf) {
                        return error(span, format!("ring buffer output to map m{map}, which is not a ring buffer"));
                    }
                    check_slot_holds(slot, len, "the ring buffer record")?
                }
                Op::Call { helper: Helper::GetStackId { map, .. }, .. }
                    if module.maps.get(map).map(|m| m.kind) != Some(ppis_ir::MapType::StackTrace) =>
                {
                    return error(span, format!("get_stackid on map m{map}, which is not a stack trace map"));
                }
                Op::Call { .. } => {}
                Op::MapLookup { map: m, key, .. } | Op::MapDelete { map: m, key } => {
                    check_slot_holds(key, map(m)?.key_size, "the map key")?
                }
                Op::MapUpdate { map: m, key, value, .. } => {
                    check_slot_holds(key, map(m)?.key_size, "the map key")?;
                    check_slot_holds(value, map(m)?.value_size, "the map value")?;
                }
                Op::LoadPtr { ptr, offset, width, .. } | Op::StorePtr { ptr, offset, width, .. } => {
                    check_pointer(ptr, offset, width)?
                }
                Op::Extend { width, .. } => check_width(width)?,
                Op::Mov { .. } | Op::Alu { .. } | Op::Neg { .. } | Op::SetCond { .. } => {}
            }
        }
        check_vregs(bb.term.uses(), bb.term_span)?;
    }
    Ok(())
}

/// The right operand of an ALU op or comparison once it is in encodable form.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rhs {
    Reg(u8),
    Imm(i32),
}

struct Emitter<'a> {
    func: &'a Function,
    alloc: Allocation,
    /// Frame offset (negative, from r10) of each slot's first byte.
    slot_start: Vec<i32>,
    slots_total: u32,
    insns: Vec<Insn>,
    map_relocs: Vec<MapReloc>,
    /// Jumps whose offset is patched once every block has an address.
    jump_fixups: Vec<(usize, Block)>,
    block_address: Vec<usize>,
}

fn alu_code(op: AluOp) -> u8 {
    match op {
        AluOp::Add => ALU_ADD,
        AluOp::Sub => ALU_SUB,
        AluOp::Mul => ALU_MUL,
        AluOp::UDiv => ALU_DIV,
        AluOp::UMod => ALU_MOD,
        AluOp::And => ALU_AND,
        AluOp::Or => ALU_OR,
        AluOp::Xor => ALU_XOR,
        AluOp::Shl => ALU_LSH,
        AluOp::LShr => ALU_RSH,
        AluOp::AShr => ALU_ARSH,
    }
}

fn jump_code(cond: Cond) -> u8 {
    match cond {
        Cond::Eq => JMP_JEQ,
        Cond::Ne => JMP_JNE,
        Cond::Ult => JMP_JLT,
        Cond::Ule => JMP_JLE,
        Cond::Ugt => JMP_JGT,
        Cond::Uge => JMP_JGE,
        Cond::Slt => JMP_JSLT,
        Cond::Sle => JMP_JSLE,
        Cond::Sgt => JMP_JSGT,
        Cond::Sge => JMP_JSGE,
    }
}

/// Access size code of a width `validate` has accepted.
fn size_of_width(width: u8) -> u8 {
    size_code(width).unwrap_or(SIZE_DW)
}

impl Emitter<'_> {
    fn emit(&mut self, insn: Insn) {
        self.insns.push(insn);
    }

    fn spill_offset(&self, index: u32) -> i16 {
        // Bounded by MAX_STACK_SIZE, checked before emission.
        -((self.slots_total + 8 * (index + 1)) as i32) as i16
    }

    fn slot_offset(&self, slot: Slot, offset: u32) -> i16 {
        // Bounded by the slot size (validated) and MAX_STACK_SIZE.
        (self.slot_start[slot.0 as usize] + offset as i32) as i16
    }

    /// `dst = imm`, as a 32-bit immediate when it fits (it is sign-extended) or as `ld_imm64`.
    fn load_imm(&mut self, dst: u8, imm: i64) {
        match i32::try_from(imm) {
            Ok(small) => self.emit(Insn::mov64_imm(dst, small)),
            Err(_) => {
                let [lo, hi] = Insn::ld_imm64(dst, imm);
                self.emit(lo);
                self.emit(hi);
            }
        }
    }

    fn mov(&mut self, dst: u8, src: u8) {
        if dst != src {
            self.emit(Insn::mov64_reg(dst, src));
        }
    }

    /// A register holding `location`'s value, loading a spill into `scratch`.
    fn read_location(&mut self, location: Location, scratch: u8) -> u8 {
        match location {
            Location::Reg(r) => r,
            Location::Spill(i) => {
                let off = self.spill_offset(i);
                self.emit(Insn::load(SIZE_DW, scratch, R10, off));
                scratch
            }
        }
    }

    fn read(&mut self, v: Vreg, scratch: u8) -> u8 {
        self.read_location(self.alloc.vreg(v), scratch)
    }

    /// The right operand in encodable form: a register (a spill read into `SCRATCH_B`), a
    /// 32-bit immediate, or a wider constant materialised in `SCRATCH_B`.
    fn rhs(&mut self, operand: Operand) -> Rhs {
        match operand {
            Operand::Reg(v) => Rhs::Reg(self.read(v, SCRATCH_B)),
            Operand::Imm(imm) => match i32::try_from(imm) {
                Ok(small) => Rhs::Imm(small),
                Err(_) => {
                    self.load_imm(SCRATCH_B, imm);
                    Rhs::Reg(SCRATCH_B)
                }
            },
        }
    }

    /// The register to compute `v` into: its own, or `SCRATCH_A` when it is spilled.
    fn dst(&self, v: Vreg) -> u8 {
        match self.alloc.vreg(v) {
            Location::Reg(r) => r,
            Location::Spill(_) => SCRATCH_A,
        }
    }

    /// Makes `v` hold the value in register `reg`.
    fn commit(&mut self, v: Vreg, reg: u8) {
        match self.alloc.vreg(v) {
            Location::Reg(r) => self.mov(r, reg),
            Location::Spill(i) => {
                let off = self.spill_offset(i);
                self.emit(Insn::store_reg(SIZE_DW, R10, off, reg));
            }
        }
    }

    /// `reg = r10 + offset`: a pointer into the stack for a helper argument.
    fn stack_pointer(&mut self, reg: u8, offset: i16) {
        self.emit(Insn::mov64_reg(reg, R10));
        self.emit(Insn::alu64_imm(ALU_ADD, reg, offset as i32));
    }

    /// `reg = map` through a relocation the loader resolves to the map's fd.
    fn map_reference(&mut self, reg: u8, map: MapId) {
        self.map_relocs.push(MapReloc { insn_index: self.insns.len(), map });
        let [lo, hi] = Insn::ld_imm64(reg, 0);
        self.emit(lo);
        self.emit(hi);
    }

    fn alu(&mut self, op: u8, dst: u8, rhs: Rhs) {
        self.emit(match rhs {
            Rhs::Reg(r) => Insn::alu64_reg(op, dst, r),
            Rhs::Imm(imm) => Insn::alu64_imm(op, dst, imm),
        });
    }

    /// `if lhs cond rhs goto +off` (callers patch `off` later through `jump_fixups` when the
    /// target is a block).
    fn cond_jump(&mut self, cond: Cond, lhs: u8, rhs: Rhs, off: i16) {
        let code = jump_code(cond);
        self.emit(match rhs {
            Rhs::Reg(r) => Insn::jmp_reg(code, lhs, r, off),
            Rhs::Imm(imm) => Insn::jmp_imm(code, lhs, imm, off),
        });
    }

    /// Saves the ctx pointer where the allocator put it and zeroes values that some path
    /// reads before writing (the ctx moves first: a zeroed value may be given r1).
    fn prologue(&mut self) {
        if let Some(ctx) = self.alloc.ctx() {
            match ctx {
                Location::Reg(r) => self.mov(r, R1),
                Location::Spill(i) => {
                    let off = self.spill_offset(i);
                    self.emit(Insn::store_reg(SIZE_DW, R10, off, R1));
                }
            }
        }
        for v in self.alloc.zero_at_entry.clone() {
            match self.alloc.vreg(v) {
                Location::Reg(r) => self.emit(Insn::mov64_imm(r, 0)),
                Location::Spill(i) => {
                    let off = self.spill_offset(i);
                    self.emit(Insn::store_imm(SIZE_DW, R10, off, 0));
                }
            }
        }
    }

    fn op(&mut self, op: &Op, span: Span) -> Result<(), CodegenError> {
        match *op {
            Op::Mov { dst, src: Operand::Reg(src) } => {
                let s = self.read(src, SCRATCH_A);
                self.commit(dst, s);
            }
            Op::Mov { dst, src: Operand::Imm(imm) } => self.mov_imm(dst, imm),
            Op::Alu { op: AluOp::UDiv, dst, rhs: Operand::Imm(0), .. } => {
                // The verifier rejects a constant zero divisor; eBPF defines x / 0 = 0.
                self.mov_imm(dst, 0)
            }
            Op::Alu { op: AluOp::UMod, dst, lhs, rhs: Operand::Imm(0) } => {
                // Likewise x % 0 = x.
                let s = self.read(lhs, SCRATCH_A);
                self.commit(dst, s);
            }
            Op::Alu { op, dst, lhs, rhs } => {
                let rhs = match (op, rhs) {
                    // The verifier rejects constant shifts of 64 or more; a shift by a register
                    // uses the amount modulo 64, so constants follow the same rule.
                    (AluOp::Shl | AluOp::LShr | AluOp::AShr, Operand::Imm(amount)) => Operand::Imm(amount & 63),
                    _ => rhs,
                };
                let l = self.read(lhs, SCRATCH_A);
                let r = self.rhs(rhs);
                let d = self.dst(dst);
                // `d = l; d op= r` would clobber r first when the result shares its register.
                let target = if r == Rhs::Reg(d) && d != l { SCRATCH_A } else { d };
                self.mov(target, l);
                self.alu(alu_code(op), target, r);
                self.commit(dst, target);
            }
            Op::Neg { dst, src } => {
                let s = self.read(src, SCRATCH_A);
                let d = self.dst(dst);
                self.mov(d, s);
                self.emit(Insn::neg64(d));
                self.commit(dst, d);
            }
            Op::SetCond { cond, dst, lhs, rhs } => {
                let l = self.read(lhs, SCRATCH_A);
                let r = self.rhs(rhs);
                let d = self.dst(dst);
                if d != l && r != Rhs::Reg(d) {
                    self.emit(Insn::mov64_imm(d, 1));
                    self.cond_jump(cond, l, r, 1);
                    self.emit(Insn::mov64_imm(d, 0));
                } else {
                    // The result overwrites an operand: compare before writing anything.
                    self.cond_jump(cond, l, r, 2);
                    self.emit(Insn::mov64_imm(d, 0));
                    self.emit(Insn::ja(1));
                    self.emit(Insn::mov64_imm(d, 1));
                }
                self.commit(dst, d);
            }
            Op::Extend { dst, src, width, signed } => {
                let s = self.read(src, SCRATCH_A);
                let d = self.dst(dst);
                match (width, signed) {
                    (8, _) => self.mov(d, s),
                    (4, false) => self.emit(Insn::mov32_reg(d, s)),
                    (_, false) => {
                        self.mov(d, s);
                        let mask = if width == 1 { 0xff } else { 0xffff };
                        self.emit(Insn::alu64_imm(ALU_AND, d, mask));
                    }
                    (_, true) => {
                        self.mov(d, s);
                        self.sign_extend(d, width);
                    }
                }
                self.commit(dst, d);
            }
            Op::LoadCtx { dst, offset, width, signed } => {
                let Some(ctx) = self.alloc.ctx() else {
                    return error(span, "internal error: the context pointer was not allocated");
                };
                let p = self.read_location(ctx, SCRATCH_A);
                let d = self.dst(dst);
                self.emit(Insn::load(size_of_width(width), d, p, offset as i16));
                if signed {
                    self.sign_extend(d, width);
                }
                self.commit(dst, d);
            }
            Op::LoadSlot { dst, slot, offset, width } => {
                let d = self.dst(dst);
                let off = self.slot_offset(slot, offset);
                self.emit(Insn::load(size_of_width(width), d, R10, off));
                self.commit(dst, d);
            }
            Op::StoreSlot { slot, offset, width, src } => {
                let off = self.slot_offset(slot, offset);
                self.store(R10, off, width, src);
            }
            Op::ZeroSlot { slot } => {
                let size = self.func.slots[slot.0 as usize].div_ceil(8) * 8;
                for chunk in (0..size).step_by(8) {
                    let off = self.slot_offset(slot, chunk);
                    self.emit(Insn::store_imm(SIZE_DW, R10, off, 0));
                }
            }
            Op::Call { dst, helper } => {
                let id = match helper {
                    Helper::GetCurrentPidTgid => helper_id::GET_CURRENT_PID_TGID,
                    Helper::GetCurrentUidGid => helper_id::GET_CURRENT_UID_GID,
                    Helper::KtimeGetNs => helper_id::KTIME_GET_NS,
                    Helper::GetSmpProcessorId => helper_id::GET_SMP_PROCESSOR_ID,
                    Helper::GetCurrentCgroupId => helper_id::GET_CURRENT_CGROUP_ID,
                    Helper::ProbeRead { slot, len, ptr, space } => {
                        // As for `ProbeReadStr`: the pointer moves to r3 first.
                        let p = self.read(ptr, R3);
                        if p != R3 {
                            self.mov(R3, p);
                        }
                        let off = self.slot_offset(slot, 0);
                        self.stack_pointer(R1, off);
                        self.emit(Insn::mov64_imm(R2, len as i32));
                        match space {
                            AddressSpace::User => helper_id::PROBE_READ_USER,
                            AddressSpace::Kernel => helper_id::PROBE_READ_KERNEL,
                        }
                    }
                    Helper::GetCurrentComm { slot } => {
                        let off = self.slot_offset(slot, 0);
                        self.stack_pointer(R1, off);
                        self.emit(Insn::mov64_imm(R2, 16));
                        helper_id::GET_CURRENT_COMM
                    }
                    Helper::ProbeReadStr { slot, len, ptr, space } => {
                        // The pointer is the one helper argument that is a value: move it to
                        // r3 before r1 and r2 are overwritten, as it may live in either.
                        let p = self.read(ptr, R3);
                        if p != R3 {
                            self.mov(R3, p);
                        }
                        let off = self.slot_offset(slot, 0);
                        self.stack_pointer(R1, off);
                        self.emit(Insn::mov64_imm(R2, len as i32));
                        match space {
                            AddressSpace::User => helper_id::PROBE_READ_USER_STR,
                            AddressSpace::Kernel => helper_id::PROBE_READ_KERNEL_STR,
                        }
                    }
                    Helper::RingbufOutput { map, slot, len } => {
                        // bpf_ringbuf_output(map, data, size, flags = 0): no argument is a
                        // register value, so no order constraint.
                        self.map_reference(R1, map);
                        let off = self.slot_offset(slot, 0);
                        self.stack_pointer(R2, off);
                        self.emit(Insn::mov64_imm(R3, len as i32));
                        self.emit(Insn::mov64_imm(R4, 0));
                        helper_id::RINGBUF_OUTPUT
                    }
                    Helper::GetStackId { map, user } => {
                        // bpf_get_stackid(ctx, map, flags): the ctx moves to r1 first, as it
                        // may live in r2 or r3.
                        let Some(ctx) = self.alloc.ctx() else {
                            return error(span, "internal error: the context pointer was not allocated");
                        };
                        let p = self.read_location(ctx, R1);
                        self.mov(R1, p);
                        self.map_reference(R2, map);
                        const BPF_F_USER_STACK: i32 = 1 << 8;
                        self.emit(Insn::mov64_imm(R3, if user { BPF_F_USER_STACK } else { 0 }));
                        helper_id::GET_STACKID
                    }
                };
                self.emit(Insn::call(id));
                if let Some(dst) = dst {
                    self.commit(dst, R0);
                }
            }
            Op::MapLookup { dst, map, key } => {
                self.map_reference(R1, map);
                let off = self.slot_offset(key, 0);
                self.stack_pointer(R2, off);
                self.emit(Insn::call(helper_id::MAP_LOOKUP_ELEM));
                self.commit(dst, R0);
            }
            Op::MapUpdate { map, key, value, flags } => {
                self.map_reference(R1, map);
                let key_off = self.slot_offset(key, 0);
                self.stack_pointer(R2, key_off);
                let value_off = self.slot_offset(value, 0);
                self.stack_pointer(R3, value_off);
                self.load_imm(R4, flags as i64);
                self.emit(Insn::call(helper_id::MAP_UPDATE_ELEM));
            }
            Op::MapDelete { map, key } => {
                self.map_reference(R1, map);
                let off = self.slot_offset(key, 0);
                self.stack_pointer(R2, off);
                self.emit(Insn::call(helper_id::MAP_DELETE_ELEM));
            }
            Op::LoadPtr { dst, ptr, offset, width } => {
                let p = self.read(ptr, SCRATCH_A);
                let d = self.dst(dst);
                self.emit(Insn::load(size_of_width(width), d, p, offset as i16));
                self.commit(dst, d);
            }
            Op::StorePtr { ptr, offset, width, src } => {
                let p = self.read(ptr, SCRATCH_A);
                self.store(p, offset as i16, width, src);
            }
        }
        Ok(())
    }

    fn mov_imm(&mut self, dst: Vreg, imm: i64) {
        match (self.alloc.vreg(dst), i32::try_from(imm)) {
            (Location::Spill(i), Ok(small)) => {
                let off = self.spill_offset(i);
                self.emit(Insn::store_imm(SIZE_DW, R10, off, small));
            }
            _ => {
                let d = self.dst(dst);
                self.load_imm(d, imm);
                self.commit(dst, d);
            }
        }
    }

    /// `d = sign-extension of its low `width` bytes`.
    fn sign_extend(&mut self, d: u8, width: u8) {
        if width < 8 {
            let shift = 64 - 8 * width as i32;
            self.emit(Insn::alu64_imm(ALU_LSH, d, shift));
            self.emit(Insn::alu64_imm(ALU_ARSH, d, shift));
        }
    }

    /// `*(width *)(base + off) = src` (low bytes of `src`).
    fn store(&mut self, base: u8, off: i16, width: u8, src: Operand) {
        let size = size_of_width(width);
        let value = match src {
            // A store of 4 bytes or fewer keeps only the immediate's low bytes; an 8-byte one
            // sign-extends it, so only wider constants need a register.
            Operand::Imm(imm) if width < 8 || i32::try_from(imm).is_ok() => {
                self.emit(Insn::store_imm(size, base, off, imm as i32));
                return;
            }
            Operand::Imm(imm) => {
                self.load_imm(SCRATCH_B, imm);
                SCRATCH_B
            }
            Operand::Reg(v) => self.read(v, SCRATCH_B),
        };
        self.emit(Insn::store_reg(size, base, off, value));
    }

    fn jump_to(&mut self, target: Block) {
        self.jump_fixups.push((self.insns.len(), target));
        self.emit(Insn::ja(0));
    }

    fn terminator(&mut self, term: &Terminator, next: Option<Block>) {
        match *term {
            Terminator::Return => {
                self.emit(Insn::mov64_imm(R0, 0));
                self.emit(Insn::exit());
            }
            Terminator::Jump(target) => {
                if Some(target) != next {
                    self.jump_to(target);
                }
            }
            Terminator::Branch { cond, lhs, rhs, then, otherwise } => {
                let l = self.read(lhs, SCRATCH_A);
                let r = self.rhs(rhs);
                self.branch(cond, l, r, then, otherwise, next);
            }
            Terminator::BranchNull { ptr, is_null, not_null } => {
                let p = self.read(ptr, SCRATCH_A);
                self.branch(Cond::Eq, p, Rhs::Imm(0), is_null, not_null, next);
            }
        }
    }

    /// `if l cond r goto then else otherwise`, falling through to `next` where possible.
    fn branch(&mut self, cond: Cond, l: u8, r: Rhs, then: Block, otherwise: Block, next: Option<Block>) {
        if then == otherwise {
            if Some(then) != next {
                self.jump_to(then);
            }
            return;
        }
        let (cond, taken, fallthrough) =
            if Some(then) == next { (cond.negate(), otherwise, then) } else { (cond, then, otherwise) };
        self.jump_fixups.push((self.insns.len(), taken));
        self.cond_jump(cond, l, r, 0);
        if Some(fallthrough) != next {
            self.jump_to(fallthrough);
        }
    }

    fn patch_jumps(&mut self, span: Span) -> Result<(), CodegenError> {
        for &(at, target) in &self.jump_fixups {
            let distance = self.block_address[target.index()] as i64 - (at as i64 + 1);
            match i16::try_from(distance) {
                Ok(off) => self.insns[at].off = off,
                Err(_) => {
                    return error(span, format!("jump over {distance} instructions exceeds eBPF's 16-bit offsets"))
                }
            }
        }
        Ok(())
    }
}
