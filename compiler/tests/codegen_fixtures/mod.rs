//! Hand-built IR functions shared by the codegen tests: together they use every `Op` and
//! every `Terminator`, and they record what each stored result must be once the kernel has run
//! them on `syscalls:sys_enter_getpid` (ctx: `common_pid` at offset 4, `__syscall_nr` at 8).

#![allow(dead_code)] // each test binary uses a different subset

use ppis_compiler::codegen::{self, CompiledProgram};
use ppis_compiler::elf::{self, ObjectProgram};
use ppis_ir::{
    AluOp, Block, Cond, CtxKind, FunctionBuilder, Helper, Map, MapType, Module, Op, Operand, Slot, Span, Terminator,
    Vreg, VregType,
};

/// Map ids in [`module`].
pub const COUNTS: usize = 0;
pub const RESULTS: usize = 1;
pub const SCRATCH: usize = 2;
pub const PRESSURE_OUT: usize = 3;
pub const PER_THREAD: usize = 4;

/// What one 8-byte field of the `results` map must hold after the probe ran.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    Exact(u64),
    NonZero,
    /// `bpf_get_smp_processor_id()`: below the number of possible CPUs.
    Cpu,
    /// `__syscall_nr` of getpid.
    SyscallNr,
    /// `gid << 32 | uid` of the test process.
    UidGid,
    /// The first 8 bytes of the thread's comm.
    Comm8,
}

/// Number of 8-byte fields in the `results` value.
pub const RESULT_FIELDS: u32 = 40;

/// Builder shorthand.
struct Fb {
    b: FunctionBuilder,
}

const SPAN: Span = Span { start: 0, end: 0 };

impl Fb {
    fn new(name: &str, ctx: CtxKind) -> Fb {
        Fb { b: FunctionBuilder::new(name, ctx, SPAN) }
    }
    fn vreg(&mut self) -> Vreg {
        self.b.new_vreg(VregType::Scalar)
    }
    fn op(&mut self, op: Op) {
        self.b.push(op, SPAN);
    }
    fn term(&mut self, term: Terminator) {
        self.b.terminate(term, SPAN);
    }
    fn mov(&mut self, imm: i64) -> Vreg {
        let dst = self.vreg();
        self.op(Op::Mov { dst, src: Operand::Imm(imm) });
        dst
    }
    fn alu(&mut self, op: AluOp, lhs: Vreg, rhs: Operand) -> Vreg {
        let dst = self.vreg();
        self.op(Op::Alu { op, dst, lhs, rhs });
        dst
    }
    fn call(&mut self, helper: Helper) -> Vreg {
        let dst = self.vreg();
        self.op(Op::Call { dst: Some(dst), helper });
        dst
    }
    fn load_ctx(&mut self, offset: u32, width: u8, signed: bool) -> Vreg {
        let dst = self.vreg();
        self.op(Op::LoadCtx { dst, offset, width, signed });
        dst
    }
    fn lookup(&mut self, map: usize, key: Slot) -> Vreg {
        let dst = self.b.new_vreg(VregType::MapValue(map));
        self.op(Op::MapLookup { dst, map, key });
        dst
    }
    fn store_slot(&mut self, slot: Slot, offset: u32, width: u8, src: Operand) {
        self.op(Op::StoreSlot { slot, offset, width, src });
    }
    /// Returns when the current thread is not `tid`: continues in a fresh block otherwise.
    fn only_thread(&mut self, tid: u32) {
        let pid_tgid = self.call(Helper::GetCurrentPidTgid);
        // 0xffff_ffff does not fit an i32 immediate: exercises a materialised constant.
        let thread = self.alu(AluOp::And, pid_tgid, Operand::Imm(0xffff_ffff));
        let ret = self.b.new_block();
        let body = self.b.new_block();
        self.term(Terminator::Branch {
            cond: Cond::Ne,
            lhs: thread,
            rhs: Operand::Imm(tid as i64),
            then: ret,
            otherwise: body,
        });
        self.b.switch_to(ret);
        self.term(Terminator::Return);
        self.b.switch_to(body);
    }
    fn new_block(&mut self) -> Block {
        self.b.new_block()
    }
    fn finish(self) -> ppis_ir::Function {
        self.b.finish()
    }
}

pub fn maps() -> Vec<Map> {
    vec![
        Map { name: "counts".into(), kind: MapType::PerCpuArray, key_size: 4, value_size: 8, max_entries: 1 },
        Map {
            name: "results".into(),
            kind: MapType::Array,
            key_size: 4,
            value_size: 8 * RESULT_FIELDS,
            max_entries: 1,
        },
        Map { name: "scratch".into(), kind: MapType::Hash, key_size: 8, value_size: 8, max_entries: 16 },
        Map { name: "pressure_out".into(), kind: MapType::Array, key_size: 4, value_size: 8, max_entries: 1 },
        Map { name: "per_thread".into(), kind: MapType::PerCpuHash, key_size: 8, value_size: 8, max_entries: 64 },
    ]
}

/// `counts[0] += 1` (per CPU) for every getpid of thread `tid`.
pub fn counter(tid: u32) -> ppis_ir::Function {
    let mut f = Fb::new("counter", CtxKind::Tracepoint);
    f.only_thread(tid);
    let key = f.b.new_slot(4);
    f.op(Op::ZeroSlot { slot: key });
    let value = f.lookup(COUNTS, key);
    let missing = f.new_block();
    let found = f.new_block();
    f.term(Terminator::BranchNull { ptr: value, is_null: missing, not_null: found });
    f.b.switch_to(missing);
    f.term(Terminator::Return);
    f.b.switch_to(found);
    let old = f.vreg();
    f.op(Op::LoadPtr { dst: old, ptr: value, offset: 0, width: 8 });
    let new = f.alu(AluOp::Add, old, Operand::Imm(1));
    f.op(Op::StorePtr { ptr: value, offset: 0, width: 8, src: Operand::Reg(new) });
    f.term(Terminator::Return);
    f.finish()
}

/// Computes one result per field of `results[0]` with every kind of op, and the expected
/// value of each field.
pub fn all_ops(tid: u32) -> (ppis_ir::Function, Vec<(&'static str, Expect)>) {
    let mut f = Fb::new("all_ops", CtxKind::Tracepoint);
    f.only_thread(tid);
    let out = f.b.new_slot(8 * RESULT_FIELDS);
    let key = f.b.new_slot(4);
    let tmp = f.b.new_slot(8);
    let comm = f.b.new_slot(16);
    f.op(Op::ZeroSlot { slot: out });
    f.op(Op::ZeroSlot { slot: key });
    let mut expected: Vec<(&'static str, Expect)> = Vec::new();
    let mut put = |f: &mut Fb, name: &'static str, v: Vreg, e: Expect| {
        let field = expected.len() as u32;
        f.store_slot(out, 8 * field, 8, Operand::Reg(v));
        expected.push((name, e));
    };

    let a = f.mov(1000);
    let b = f.mov(-7);
    let big = f.mov(0x1_0000_0005);
    let seven = f.mov(7);
    let a2 = f.vreg();
    f.op(Op::Mov { dst: a2, src: Operand::Reg(a) });
    let r = f.alu(AluOp::Add, a, Operand::Reg(b));
    put(&mut f, "add", r, Expect::Exact(993));
    let r = f.alu(AluOp::Sub, a, Operand::Imm(3000));
    put(&mut f, "sub", r, Expect::Exact(-2000i64 as u64));
    let r = f.alu(AluOp::Mul, b, Operand::Imm(3));
    put(&mut f, "mul", r, Expect::Exact(-21i64 as u64));
    let r = f.alu(AluOp::UDiv, a, Operand::Imm(7));
    put(&mut f, "udiv_imm", r, Expect::Exact(142));
    let r = f.alu(AluOp::UMod, a, Operand::Reg(seven));
    put(&mut f, "umod_reg", r, Expect::Exact(6));
    let r = f.alu(AluOp::UDiv, a, Operand::Imm(0));
    put(&mut f, "udiv_zero", r, Expect::Exact(0));
    let r = f.alu(AluOp::UMod, a, Operand::Imm(0));
    put(&mut f, "umod_zero", r, Expect::Exact(1000));
    let r = f.alu(AluOp::And, big, Operand::Imm(0xff));
    put(&mut f, "and_big_lhs", r, Expect::Exact(5));
    let r = f.alu(AluOp::Or, a, Operand::Imm(0x1_0000_0000));
    put(&mut f, "or_big_imm", r, Expect::Exact(0x1_0000_03e8));
    let r = f.alu(AluOp::Xor, a, Operand::Reg(b));
    put(&mut f, "xor", r, Expect::Exact((1000i64 ^ -7i64) as u64));
    let r = f.alu(AluOp::Shl, a, Operand::Imm(4));
    put(&mut f, "shl", r, Expect::Exact(16000));
    let r = f.alu(AluOp::LShr, b, Operand::Imm(60));
    put(&mut f, "lshr", r, Expect::Exact(0xf));
    let r = f.alu(AluOp::AShr, b, Operand::Imm(1));
    put(&mut f, "ashr", r, Expect::Exact(-4i64 as u64));
    let r = f.alu(AluOp::Shl, seven, Operand::Imm(65));
    put(&mut f, "shl_masked", r, Expect::Exact(14));
    let r = f.vreg();
    f.op(Op::Neg { dst: r, src: a });
    put(&mut f, "neg", r, Expect::Exact(-1000i64 as u64));
    for (name, cond, lhs, rhs, want) in [
        ("slt", Cond::Slt, b, Operand::Imm(0), 1),
        ("ult", Cond::Ult, b, Operand::Imm(0), 0),
        ("eq_reg", Cond::Eq, a, Operand::Reg(a2), 1),
        ("uge_big", Cond::Uge, a, Operand::Imm(0x1_0000_0000), 0),
        ("sle", Cond::Sle, a, Operand::Reg(b), 0),
    ] {
        let r = f.vreg();
        f.op(Op::SetCond { cond, dst: r, lhs, rhs });
        put(&mut f, name, r, Expect::Exact(want));
    }
    // The result written over its own operand (a non-SSA reassignment).
    let acc = f.mov(5);
    f.op(Op::SetCond { cond: Cond::Ugt, dst: acc, lhs: acc, rhs: Operand::Imm(4) });
    put(&mut f, "setcond_in_place", acc, Expect::Exact(1));
    for (name, width, signed, want) in [
        ("sext8", 1, true, -7i64 as u64),
        ("zext8", 1, false, 0xf9),
        ("zext16", 2, false, 0xfff9),
        ("zext32", 4, false, 0xffff_fff9),
        ("sext32", 4, true, -7i64 as u64),
    ] {
        let r = f.vreg();
        f.op(Op::Extend { dst: r, src: b, width, signed });
        put(&mut f, name, r, Expect::Exact(want));
    }
    let r = f.load_ctx(8, 4, true);
    put(&mut f, "ctx_syscall_nr", r, Expect::SyscallNr);
    let r = f.load_ctx(8, 4, false);
    put(&mut f, "ctx_unsigned", r, Expect::SyscallNr);
    let r = f.load_ctx(8, 2, false);
    put(&mut f, "ctx_narrow", r, Expect::SyscallNr);
    let r = f.call(Helper::KtimeGetNs);
    put(&mut f, "ktime", r, Expect::NonZero);
    let r = f.call(Helper::GetSmpProcessorId);
    put(&mut f, "cpu", r, Expect::Cpu);
    let r = f.call(Helper::GetCurrentUidGid);
    put(&mut f, "uid_gid", r, Expect::UidGid);
    f.op(Op::ZeroSlot { slot: comm });
    f.op(Op::Call { dst: None, helper: Helper::GetCurrentComm { slot: comm } });
    let r = f.vreg();
    f.op(Op::LoadSlot { dst: r, slot: comm, offset: 0, width: 8 });
    put(&mut f, "comm8", r, Expect::Comm8);
    // Narrow stores and loads: a u16 store of -1, read back zero-extended.
    f.store_slot(tmp, 0, 8, Operand::Imm(0));
    f.store_slot(tmp, 2, 2, Operand::Imm(-1));
    let r = f.vreg();
    f.op(Op::LoadSlot { dst: r, slot: tmp, offset: 2, width: 2 });
    put(&mut f, "narrow_slot", r, Expect::Exact(0xffff));
    f.store_slot(tmp, 0, 8, Operand::Imm(0x1234_5678_9abc_def0));
    let r = f.vreg();
    f.op(Op::LoadSlot { dst: r, slot: tmp, offset: 0, width: 8 });
    put(&mut f, "wide_store", r, Expect::Exact(0x1234_5678_9abc_def0));

    // A diamond on a register comparison, assigning one vreg on both paths.
    let picked = f.vreg();
    let (left, right, join) = (f.new_block(), f.new_block(), f.new_block());
    f.term(Terminator::Branch { cond: Cond::Sgt, lhs: b, rhs: Operand::Reg(a), then: left, otherwise: right });
    f.b.switch_to(left);
    f.op(Op::Mov { dst: picked, src: Operand::Imm(1) });
    f.term(Terminator::Jump(join));
    f.b.switch_to(right);
    f.op(Op::Mov { dst: picked, src: Operand::Imm(2) });
    f.term(Terminator::Jump(join));
    f.b.switch_to(join);
    put(&mut f, "diamond_reg", picked, Expect::Exact(2));
    // A branch on a constant too wide for an immediate.
    let picked = f.vreg();
    let (left, right, join) = (f.new_block(), f.new_block(), f.new_block());
    f.term(Terminator::Branch {
        cond: Cond::Ult,
        lhs: a,
        rhs: Operand::Imm(0x1_0000_0000),
        then: left,
        otherwise: right,
    });
    f.b.switch_to(left);
    f.op(Op::Mov { dst: picked, src: Operand::Imm(3) });
    f.term(Terminator::Jump(join));
    f.b.switch_to(right);
    f.op(Op::Mov { dst: picked, src: Operand::Imm(4) });
    f.term(Terminator::Jump(join));
    f.b.switch_to(join);
    put(&mut f, "branch_big_imm", picked, Expect::Exact(3));

    // Insert, delete, then look up: the lookup must miss.
    let skey = f.b.new_slot(8);
    let sval = f.b.new_slot(8);
    f.store_slot(skey, 0, 8, Operand::Imm(7));
    f.store_slot(sval, 0, 8, Operand::Imm(1));
    f.op(Op::MapUpdate { map: SCRATCH, key: skey, value: sval, flags: 0 });
    f.op(Op::MapDelete { map: SCRATCH, key: skey });
    let found = f.lookup(SCRATCH, skey);
    let missing = f.vreg();
    let (null, present, join) = (f.new_block(), f.new_block(), f.new_block());
    f.term(Terminator::BranchNull { ptr: found, is_null: null, not_null: present });
    f.b.switch_to(null);
    f.op(Op::Mov { dst: missing, src: Operand::Imm(1) });
    f.term(Terminator::Jump(join));
    f.b.switch_to(present);
    f.op(Op::Mov { dst: missing, src: Operand::Imm(0) });
    f.term(Terminator::Jump(join));
    f.b.switch_to(join);
    put(&mut f, "deleted_is_missing", missing, Expect::Exact(1));

    // Publish, then patch one field through the map value pointer.
    let patched = expected.len() as u32;
    expected.push(("patched_via_pointer", Expect::Exact(993 + 5)));
    f.op(Op::MapUpdate { map: RESULTS, key, value: out, flags: 0 });
    let ptr = f.lookup(RESULTS, key);
    let (null, present) = (f.new_block(), f.new_block());
    f.term(Terminator::BranchNull { ptr, is_null: null, not_null: present });
    f.b.switch_to(null);
    f.term(Terminator::Return);
    f.b.switch_to(present);
    let first = f.vreg();
    f.op(Op::LoadPtr { dst: first, ptr, offset: 0, width: 8 });
    let plus = f.alu(AluOp::Add, first, Operand::Imm(5));
    f.op(Op::StorePtr { ptr, offset: 8 * patched, width: 8, src: Operand::Reg(plus) });
    f.op(Op::StorePtr { ptr, offset: 8 * (patched + 1), width: 4, src: Operand::Imm(-1) });
    expected.push(("store_ptr_imm32", Expect::Exact(0xffff_ffff)));
    f.term(Terminator::Return);
    assert!(expected.len() as u32 <= RESULT_FIELDS);
    (f.finish(), expected)
}

/// Eight values live across a helper call (more than r6-r9 can hold), including the ctx and a
/// map value pointer that is null-checked only after the call. Stores
/// `sum(__syscall_nr + i, i = 1..=6) + 2 * __syscall_nr` into `pressure_out[0]`.
pub fn pressure(tid: u32) -> ppis_ir::Function {
    let mut f = Fb::new("pressure", CtxKind::Tracepoint);
    f.only_thread(tid);
    let key = f.b.new_slot(4);
    f.op(Op::ZeroSlot { slot: key });
    let ptr = f.lookup(PRESSURE_OUT, key);
    let base = f.load_ctx(8, 4, true);
    let nr = f.load_ctx(8, 4, true);
    let parts: Vec<Vreg> = (1..=6).map(|i| f.alu(AluOp::Add, base, Operand::Imm(i))).collect();
    f.op(Op::Call { dst: None, helper: Helper::KtimeGetNs });
    let nr_again = f.load_ctx(8, 4, true);
    let mut sum = f.alu(AluOp::Add, nr, Operand::Reg(nr_again));
    for p in parts {
        sum = f.alu(AluOp::Add, sum, Operand::Reg(p));
    }
    let (null, present) = (f.new_block(), f.new_block());
    f.term(Terminator::BranchNull { ptr, is_null: null, not_null: present });
    f.b.switch_to(null);
    f.term(Terminator::Return);
    f.b.switch_to(present);
    f.op(Op::StorePtr { ptr, offset: 0, width: 8, src: Operand::Reg(sum) });
    f.term(Terminator::Return);
    f.finish()
}

/// The value [`pressure`] stores.
pub fn pressure_expected(syscall_nr: i64) -> u64 {
    (1..=6).map(|i| syscall_nr as u64 + i).sum::<u64>() + 2 * syscall_nr as u64
}

/// A uprobe body: reads a register from `pt_regs`, inserts with NOEXIST, increments through
/// the pointer, then deletes the entry.
pub fn uprobe_body() -> ppis_ir::Function {
    let mut f = Fb::new("uprobe_body", CtxKind::PtRegs);
    let key = f.b.new_slot(8);
    let value = f.b.new_slot(8);
    let arg = f.load_ctx(112, 8, false);
    let pid_tgid = f.call(Helper::GetCurrentPidTgid);
    f.store_slot(key, 0, 8, Operand::Reg(pid_tgid));
    f.store_slot(value, 0, 8, Operand::Reg(arg));
    f.op(Op::MapUpdate { map: PER_THREAD, key, value, flags: 1 });
    let ptr = f.lookup(PER_THREAD, key);
    let (present, done) = (f.new_block(), f.new_block());
    f.term(Terminator::BranchNull { ptr, is_null: done, not_null: present });
    f.b.switch_to(present);
    let old = f.vreg();
    f.op(Op::LoadPtr { dst: old, ptr, offset: 0, width: 8 });
    let new = f.alu(AluOp::Add, old, Operand::Imm(1));
    f.op(Op::StorePtr { ptr, offset: 0, width: 8, src: Operand::Reg(new) });
    f.term(Terminator::Jump(done));
    f.b.switch_to(done);
    f.op(Op::MapDelete { map: PER_THREAD, key });
    f.term(Terminator::Return);
    f.finish()
}

/// Every fixture function in one module, with expectations for `all_ops`.
pub fn module(tid: u32) -> (Module, Vec<(&'static str, Expect)>) {
    let (all, expected) = all_ops(tid);
    let module = Module { maps: maps(), functions: vec![counter(tid), all, pressure(tid), uprobe_body()] };
    (module, expected)
}

/// The ELF section for a function, by its context kind.
pub fn section_for(func: &ppis_ir::Function) -> String {
    match func.ctx {
        CtxKind::Tracepoint => format!("tracepoint/{}", func.name),
        CtxKind::PtRegs => format!("uprobe/{}", func.name),
        CtxKind::RawTracepoint => format!("raw_tracepoint/{}", func.name),
        CtxKind::PerfEvent => format!("perf_event/{}", func.name),
    }
}

pub fn compile_all(module: &Module) -> Vec<CompiledProgram> {
    module
        .functions
        .iter()
        .map(|f| codegen::compile_function(f, module).unwrap_or_else(|e| panic!("{}: {}", f.name, e.message)))
        .collect()
}

pub const MANIFEST_JSON: &str = r#"{"fixture":true}"#;

pub fn object(module: &Module, compiled: &[CompiledProgram]) -> Vec<u8> {
    let programs: Vec<ObjectProgram> = module
        .functions
        .iter()
        .zip(compiled)
        .map(|(f, program)| ObjectProgram { section: section_for(f), program })
        .collect();
    elf::write_object(&module.maps, &programs, MANIFEST_JSON)
}

/// Number of vregs a [`random_program`] keeps live to the end (more than the 8 allocatable
/// registers, so it spills).
pub const RANDOM_VREGS: usize = 14;

/// A deterministic xorshift generator (tests must not depend on a crate for this).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Constants biased towards edge cases: small, negative, 32-bit boundaries, wide.
    fn constant(&mut self) -> i64 {
        match self.below(6) {
            0 => self.below(16) as i64,
            1 => -(self.below(16) as i64),
            2 => [i32::MAX as i64, i32::MIN as i64, u32::MAX as i64, 1 << 32][self.below(4) as usize],
            3 => self.next() as i64,
            _ => self.below(1000) as i64 - 500,
        }
    }
}

fn eval_alu(op: AluOp, l: u64, r: u64) -> u64 {
    match op {
        AluOp::Add => l.wrapping_add(r),
        AluOp::Sub => l.wrapping_sub(r),
        AluOp::Mul => l.wrapping_mul(r),
        AluOp::UDiv => l.checked_div(r).unwrap_or(0),
        AluOp::UMod => l.checked_rem(r).unwrap_or(l),
        AluOp::And => l & r,
        AluOp::Or => l | r,
        AluOp::Xor => l ^ r,
        AluOp::Shl => l << (r & 63),
        AluOp::LShr => l >> (r & 63),
        AluOp::AShr => ((l as i64) >> (r & 63)) as u64,
    }
}

fn eval_cond(cond: Cond, l: u64, r: u64) -> bool {
    let (sl, sr) = (l as i64, r as i64);
    match cond {
        Cond::Eq => l == r,
        Cond::Ne => l != r,
        Cond::Ult => l < r,
        Cond::Ule => l <= r,
        Cond::Ugt => l > r,
        Cond::Uge => l >= r,
        Cond::Slt => sl < sr,
        Cond::Sle => sl <= sr,
        Cond::Sgt => sl > sr,
        Cond::Sge => sl >= sr,
    }
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
const CONDS: [Cond; 10] =
    [Cond::Eq, Cond::Ne, Cond::Ult, Cond::Ule, Cond::Ugt, Cond::Uge, Cond::Slt, Cond::Sle, Cond::Sgt, Cond::Sge];

/// Emits one random scalar op over `vregs`, applying it to `state` when `live` (the path the
/// program will actually take).
fn random_op(f: &mut Fb, rng: &mut Rng, vregs: &[Vreg], state: &mut [u64], live: bool) {
    let pick = |rng: &mut Rng| rng.below(vregs.len() as u64) as usize;
    let (d, l, r) = (pick(rng), pick(rng), pick(rng));
    let (rhs, rhs_value) = if rng.below(2) == 0 {
        (Operand::Reg(vregs[r]), state[r])
    } else {
        let c = rng.constant();
        (Operand::Imm(c), c as u64)
    };
    let result = match rng.below(6) {
        0 | 1 => {
            let op = ALU_OPS[rng.below(ALU_OPS.len() as u64) as usize];
            f.op(Op::Alu { op, dst: vregs[d], lhs: vregs[l], rhs });
            eval_alu(op, state[l], rhs_value)
        }
        2 => {
            let cond = CONDS[rng.below(CONDS.len() as u64) as usize];
            f.op(Op::SetCond { cond, dst: vregs[d], lhs: vregs[l], rhs });
            eval_cond(cond, state[l], rhs_value) as u64
        }
        3 => {
            let width = [1u8, 2, 4, 8][rng.below(4) as usize];
            let signed = rng.below(2) == 0;
            f.op(Op::Extend { dst: vregs[d], src: vregs[l], width, signed });
            let bits = 8 * width as u32;
            let low = if bits == 64 { state[l] } else { state[l] & ((1u64 << bits) - 1) };
            if signed && bits < 64 {
                (((low << (64 - bits)) as i64) >> (64 - bits)) as u64
            } else {
                low
            }
        }
        4 => {
            f.op(Op::Neg { dst: vregs[d], src: vregs[l] });
            state[l].wrapping_neg()
        }
        _ => {
            f.op(Op::Mov { dst: vregs[d], src: rhs });
            rhs_value
        }
    };
    if live {
        state[d] = result;
    }
}

/// A random program of scalar ops, helper calls and diamonds (both arms reassign vregs) whose
/// final vreg values it stores in `results[index]`; returns them as computed here.
pub fn random_program(seed: u64, index: u32, tid: u32) -> (ppis_ir::Function, Vec<u64>) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut f = Fb::new(&format!("random{index}"), CtxKind::Tracepoint);
    f.only_thread(tid);
    let mut state = vec![0u64; RANDOM_VREGS];
    let vregs: Vec<Vreg> = (0..RANDOM_VREGS)
        .map(|i| {
            let c = rng.constant();
            state[i] = c as u64;
            let v = f.vreg();
            f.op(Op::Mov { dst: v, src: Operand::Imm(c) });
            v
        })
        .collect();
    for _ in 0..12 {
        match rng.below(4) {
            0 => f.op(Op::Call { dst: None, helper: Helper::GetSmpProcessorId }),
            1 => {
                let (l, r) = (rng.below(RANDOM_VREGS as u64) as usize, rng.below(RANDOM_VREGS as u64) as usize);
                let cond = CONDS[rng.below(CONDS.len() as u64) as usize];
                let taken = eval_cond(cond, state[l], state[r]);
                let (then, otherwise, join) = (f.new_block(), f.new_block(), f.new_block());
                f.term(Terminator::Branch { cond, lhs: vregs[l], rhs: Operand::Reg(vregs[r]), then, otherwise });
                for (block, live) in [(then, taken), (otherwise, !taken)] {
                    f.b.switch_to(block);
                    for _ in 0..1 + rng.below(3) {
                        random_op(&mut f, &mut rng, &vregs, &mut state, live);
                    }
                    f.term(Terminator::Jump(join));
                }
                f.b.switch_to(join);
            }
            _ => {
                for _ in 0..1 + rng.below(4) {
                    random_op(&mut f, &mut rng, &vregs, &mut state, true);
                }
            }
        }
    }
    let out = f.b.new_slot(8 * RANDOM_VREGS as u32);
    let key = f.b.new_slot(4);
    f.store_slot(key, 0, 4, Operand::Imm(index as i64));
    for (i, v) in vregs.iter().enumerate() {
        f.store_slot(out, 8 * i as u32, 8, Operand::Reg(*v));
    }
    f.op(Op::MapUpdate { map: 0, key, value: out, flags: 0 });
    f.term(Terminator::Return);
    (f.finish(), state)
}
