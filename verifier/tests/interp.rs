//! The verifier's claims checked against the reference interpreter: accepted functions never
//! fault, and no execution costs more than the static bound.
//!
//! Inputs come from a seeded generator (proptest picks and reports the seeds), so a failure
//! names the seed that reproduces it.

mod common;

use ppis_ir::*;
use ppis_manifest::profile::CostProfile;
use ppis_verifier::interp::{self, Env, Fault, MapState};
use ppis_verifier::{verify, Verdict, VerifyOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// xorshift64*: small, seedable, good enough to spread test inputs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Contexts are as large as x86-64 `struct pt_regs` (168 bytes); generated `load.ctx` stays
/// inside (context bounds come from the attach point, which the IR alone does not carry).
const CTX_BYTES: usize = 168;

fn verify_module(module: &Module, profile: &CostProfile) -> Verdict {
    verify(module, &VerifyOptions { profile, budget_percent: 0.5, cpus: 2 })
}

/// Random context, helper results and map contents; keys drawn from a small space so that
/// lookups hit as well as miss.
fn random_inputs(module: &Module, rng: &mut Rng) -> (Vec<u8>, Env, MapState) {
    // All-zero contexts now and then: small fields drive programs down their `<=` branches.
    let zeroes = if rng.chance(10) { 100 } else { 30 };
    let ctx: Vec<u8> = (0..CTX_BYTES).map(|_| if rng.chance(zeroes) { 0 } else { rng.next() as u8 }).collect();
    let mut comm = [0u8; 16];
    comm.iter_mut().take(rng.below(16) as usize).for_each(|c| *c = b'a' + rng.below(26) as u8);
    let env = Env {
        pid_tgid: rng.below(4),
        uid_gid: rng.next(),
        comm,
        ktime_ns: rng.next(),
        cpu: rng.below(2) as u32,
        cgroup: rng.next(),
        // Stack walks that succeed and fail, a ring buffer with room and a full one.
        stack_id: rng.chance(50).then(|| rng.below(64) as u32),
        ringbuf_full: rng.chance(30),
    };
    let mut state = MapState::new(&module.maps);
    for (id, map) in module.maps.iter().enumerate() {
        for _ in 0..rng.below(4) {
            let mut key = vec![0u8; map.key_size as usize];
            // A ring buffer has no keys (key size 0).
            if rng.chance(50) && !key.is_empty() {
                key[0] = rng.below(4) as u8;
            }
            let value: Vec<u8> = (0..map.value_size).map(|_| rng.next() as u8).collect();
            state.insert(&module.maps, id, &key, &value);
        }
    }
    (ctx, env, state)
}

// ---------------------------------------------------------------------------------------
// Accepted file tests: executed cost never exceeds the bound.

fn accepted_filetests() -> Vec<(String, Module)> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(common::filetests_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "ir")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let ir = text.split("; expect:").next().unwrap();
        let Ok(module) = parse_module(ir) else { continue };
        if !verify_module(&module, &common::test_profile()).has_errors() {
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), module));
        }
    }
    out
}

#[test]
fn executed_cost_never_exceeds_the_bound_on_accepted_filetests() {
    let profile = common::test_profile();
    let programs = accepted_filetests();
    assert!(programs.len() >= 5, "expected several accepted file tests, found {}", programs.len());
    let mut runner = TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    for (name, module) in &programs {
        let verdict = verify_module(module, &profile);
        runner
            .run(&any::<u64>(), |seed| {
                let mut rng = Rng::new(seed);
                for (func, facts) in module.functions.iter().zip(&verdict.functions) {
                    let bound = facts.cost.as_ref().expect("accepted functions have a bound").bound_ps;
                    let (ctx, env, mut state) = random_inputs(module, &mut rng);
                    // Run twice on the same maps: the second run sees the first one's inserts.
                    for _ in 0..2 {
                        let exec = interp::run(func, &module.maps, &profile, &ctx, &mut state, &env)
                            .map_err(|f| TestCaseError::fail(format!("{name}: accepted but faulted: {f:?}")))?;
                        prop_assert!(exec.cost_ps <= bound, "{name}: executed {} ps > bound {bound} ps", exec.cost_ps);
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}

/// Bound / worst observed cost per accepted file test, over fixed seeds (so the snapshot is
/// stable): 1.00 means some input drives the probe down its worst path.
#[test]
fn tightness_of_the_bounds() {
    let profile = common::test_profile();
    let mut report = String::new();
    for (name, module) in accepted_filetests() {
        let verdict = verify_module(&module, &profile);
        for (func, facts) in module.functions.iter().zip(&verdict.functions) {
            let bound = facts.cost.as_ref().unwrap().bound_ps;
            let mut rng = Rng::new(42);
            let mut worst = 0;
            for _ in 0..200 {
                let (ctx, env, mut state) = random_inputs(&module, &mut rng);
                for _ in 0..2 {
                    let exec = interp::run(func, &module.maps, &profile, &ctx, &mut state, &env).unwrap();
                    worst = worst.max(exec.cost_ps);
                }
            }
            assert!(worst <= bound);
            report.push_str(&format!(
                "{name} {}: bound {} ns, worst observed {} ns, tightness {:.2}\n",
                func.name,
                bound as f64 / 1000.0,
                worst as f64 / 1000.0,
                bound as f64 / worst as f64
            ));
        }
    }
    insta::assert_snapshot!("tightness", report);
}

#[test]
fn the_interpreter_faults_where_the_verifier_rejects() {
    let profile = common::test_profile();
    let cases = [
        ("null_check_missing.ir", Fault::NullDereference),
        ("slot_out_of_bounds.ir", Fault::SlotOutOfBounds { slot: 0, end: 12 }),
        ("uninit_register.ir", Fault::UnsetRegister { reg: 1 }),
        ("uninit_key.ir", Fault::UninitialisedStack { slot: 0, byte: 4 }),
    ];
    for (file, fault) in cases {
        let text = std::fs::read_to_string(common::filetests_dir().join(file)).unwrap();
        let module = parse_module(text.split("; expect:").next().unwrap()).unwrap();
        assert!(verify_module(&module, &profile).has_errors(), "{file} must be rejected");
        // An all-zero context takes the failing path in each of these programs.
        let ctx = vec![0u8; CTX_BYTES];
        let mut state = MapState::new(&module.maps);
        let got = interp::run(&module.functions[0], &module.maps, &profile, &ctx, &mut state, &Env::default());
        assert_eq!(got, Err(fault), "{file}");
    }
}

// ---------------------------------------------------------------------------------------
// Random well-formed acyclic functions: the verifier never panics, and what it accepts
// never faults and never exceeds its bound.

const SCALARS: u32 = 8;

fn random_module(rng: &mut Rng) -> Module {
    let maps = vec![
        Map { name: "h".into(), kind: MapType::Hash, key_size: 8, value_size: 16, max_entries: 64 },
        Map { name: "a".into(), kind: MapType::PerCpuArray, key_size: 4, value_size: 8, max_entries: 4 },
        Map { name: "p".into(), kind: MapType::PerCpuHash, key_size: 16, value_size: 8, max_entries: 64 },
        // Written only by helpers, never looked up: a stack-trace map of 8-frame stacks and a
        // ring buffer of one page.
        Map { name: "stacks".into(), kind: MapType::StackTrace, key_size: 4, value_size: 64, max_entries: 64 },
        Map { name: "events".into(), kind: MapType::RingBuf, key_size: 0, value_size: 0, max_entries: 4096 },
    ];
    let (stack_map, ring_map): (MapId, MapId) = (3, 4);
    // Map values are read and written only through lookups of the first three.
    let lookup_maps = 3;
    let mut next_span = 0u32;
    let mut span = || {
        next_span += 1;
        Span { start: next_span, end: next_span + 1 }
    };
    let mut b = FunctionBuilder::new("f", CtxKind::Tracepoint, span());
    b.set_probe(ProbeMeta { trigger: Trigger::Tracepoint, rate: Some((1, span())) });
    let regs: Vec<Vreg> = (0..SCALARS).map(|_| b.new_vreg(VregType::Scalar)).collect();
    let ptrs: Vec<(Vreg, MapId)> = (0..lookup_maps).map(|m| (b.new_vreg(VregType::MapValue(m)), m)).collect();
    let slot_sizes = [8u32, 16, 16];
    let slots: Vec<Slot> = slot_sizes.iter().map(|s| b.new_slot(*s)).collect();
    let block_count = 1 + rng.below(6) as usize;
    let blocks: Vec<Block> = std::iter::once(b.current()).chain((1..block_count).map(|_| b.new_block())).collect();
    // Most functions start by initialising everything, so that many are accepted.
    if rng.chance(70) {
        for r in &regs {
            b.push(Op::Mov { dst: *r, src: Operand::Imm(rng.below(8) as i64) }, span());
        }
        for s in &slots {
            b.push(Op::ZeroSlot { slot: *s }, span());
        }
    }
    let widths = [1u8, 2, 4, 8];
    let alus = [
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
    let conds =
        [Cond::Eq, Cond::Ne, Cond::Ult, Cond::Ule, Cond::Ugt, Cond::Uge, Cond::Slt, Cond::Sle, Cond::Sgt, Cond::Sge];
    for (i, &block) in blocks.iter().enumerate() {
        b.switch_to(block);
        for _ in 0..rng.below(7) {
            let r = rng.pick(&regs);
            let operand = |rng: &mut Rng| {
                if rng.chance(50) {
                    Operand::Reg(rng.pick(&regs))
                } else {
                    Operand::Imm(rng.pick(&[0i64, 1, 2, 7, 64, -1, 255]))
                }
            };
            let slot_index = rng.below(slots.len() as u64) as usize;
            let slot = slots[slot_index];
            let width = rng.pick(&widths);
            // Offsets mostly in bounds, sometimes past the end.
            let slot_offset = (rng.below(slot_sizes[slot_index] as u64 + 2) as u32) & !(width as u32 - 1);
            let (ptr, map) = rng.pick(&ptrs);
            let value_offset = rng.below(maps[map].value_size as u64 + 2) as u32 & !(width as u32 - 1);
            let op = match rng.below(17) {
                0 => Op::Mov { dst: r, src: operand(rng) },
                1 => Op::Alu { op: rng.pick(&alus), dst: r, lhs: rng.pick(&regs), rhs: operand(rng) },
                2 => Op::Neg { dst: r, src: rng.pick(&regs) },
                3 => Op::SetCond { cond: rng.pick(&conds), dst: r, lhs: rng.pick(&regs), rhs: operand(rng) },
                4 => Op::Extend { dst: r, src: rng.pick(&regs), width, signed: rng.chance(50) },
                5 => Op::LoadCtx {
                    dst: r,
                    offset: rng.below((CTX_BYTES - 8) as u64) as u32,
                    width,
                    signed: rng.chance(30),
                },
                6 => Op::LoadSlot { dst: r, slot, offset: slot_offset, width },
                7 => Op::StoreSlot { slot, offset: slot_offset, width, src: operand(rng) },
                8 => Op::ZeroSlot { slot },
                9 => Op::Call {
                    dst: Some(r),
                    helper: match rng.below(8) {
                        0 => Helper::GetCurrentPidTgid,
                        1 => Helper::GetCurrentUidGid,
                        2 => Helper::KtimeGetNs,
                        3 => Helper::GetSmpProcessorId,
                        4 => Helper::GetStackId { map: stack_map, user: rng.chance(50) },
                        5 => Helper::GetCurrentCgroupId,
                        // Records of the whole slot or part of it, sometimes past its end
                        // (which the verifier must reject).
                        6 => Helper::RingbufOutput { map: ring_map, slot, len: rng.pick(&[4u32, 8, 8, 16, 24]) },
                        _ => Helper::GetCurrentComm { slot },
                    },
                },
                10 => Op::MapLookup { dst: ptr, map, key: slot },
                11 => Op::MapUpdate { map, key: slot, value: slots[rng.below(3) as usize], flags: rng.below(3) },
                12 => Op::MapDelete { map, key: slot },
                13 => Op::LoadPtr { dst: r, ptr, offset: value_offset, width },
                // The stack and ring-buffer helpers once more, so that enough accepted
                // functions use them (see the counts asserted below).
                14 => Op::Call { dst: Some(r), helper: Helper::GetStackId { map: stack_map, user: rng.chance(50) } },
                15 => Op::Call {
                    dst: Some(r),
                    helper: Helper::RingbufOutput { map: ring_map, slot, len: rng.pick(&[4u32, 8, 8, 16, 24]) },
                },
                _ => Op::StorePtr { ptr, offset: value_offset, width, src: operand(rng) },
            };
            b.push(op, span());
        }
        let later = |rng: &mut Rng| blocks[i + 1 + rng.below((block_count - i - 1) as u64) as usize];
        let term = if i + 1 == block_count || rng.chance(15) {
            Terminator::Return
        } else {
            match rng.below(3) {
                0 => Terminator::Jump(later(rng)),
                1 => {
                    let rhs =
                        if rng.chance(50) { Operand::Reg(rng.pick(&regs)) } else { Operand::Imm(rng.below(4) as i64) };
                    Terminator::Branch {
                        cond: rng.pick(&conds),
                        lhs: rng.pick(&regs),
                        rhs,
                        then: later(rng),
                        otherwise: later(rng),
                    }
                }
                _ => Terminator::BranchNull { ptr: rng.pick(&ptrs).0, is_null: later(rng), not_null: later(rng) },
            }
        };
        b.terminate(term, span());
    }
    Module { maps, functions: vec![b.finish()] }
}

#[test]
fn random_acyclic_functions_accepted_never_fault_nor_exceed_the_bound() {
    let profile = common::test_profile();
    let accepted = std::cell::Cell::new(0u32);
    // Accepted functions that call the stack-id and ring-buffer helpers: both must be among
    // them, or their costs and faults go unchecked.
    let accepted_with_stack_id = std::cell::Cell::new(0u32);
    let accepted_with_ringbuf = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config { cases: 1500, failure_persistence: None, ..Config::default() });
    runner
        .run(&any::<u64>(), |seed| {
            let mut rng = Rng::new(seed);
            let module = random_module(&mut rng);
            let verdict = verify_module(&module, &profile);
            if verdict.has_errors() {
                return Ok(());
            }
            accepted.set(accepted.get() + 1);
            let func = &module.functions[0];
            let calls = |wanted: fn(&Helper) -> bool| {
                func.cfg
                    .node_weights()
                    .flat_map(|block| &block.insts)
                    .any(|inst| matches!(&inst.op, Op::Call { helper, .. } if wanted(helper)))
            };
            if calls(|h| matches!(h, Helper::GetStackId { .. })) {
                accepted_with_stack_id.set(accepted_with_stack_id.get() + 1);
            }
            if calls(|h| matches!(h, Helper::RingbufOutput { .. })) {
                accepted_with_ringbuf.set(accepted_with_ringbuf.get() + 1);
            }
            let bound = verdict.functions[0].cost.as_ref().expect("accepted functions have a bound").bound_ps;
            for _ in 0..8 {
                let (ctx, env, mut state) = random_inputs(&module, &mut rng);
                let exec = interp::run(func, &module.maps, &profile, &ctx, &mut state, &env).map_err(|f| {
                    TestCaseError::fail(format!(
                        "seed {seed}: accepted but faulted with {f:?}:\n{}",
                        ppis_ir::print_module(&module)
                    ))
                })?;
                prop_assert!(exec.cost_ps <= bound, "seed {seed}: cost {} > bound {bound}", exec.cost_ps);
            }
            Ok(())
        })
        .unwrap();
    // The property is vacuous unless a fair share of the generated functions is accepted.
    assert!(accepted.get() >= 150, "only {} of 1500 random functions were accepted", accepted.get());
    eprintln!(
        "{} accepted, {} of them walk a stack, {} output a record",
        accepted.get(),
        accepted_with_stack_id.get(),
        accepted_with_ringbuf.get()
    );
    assert!(accepted_with_stack_id.get() >= 10, "{} accepted functions walk a stack", accepted_with_stack_id.get());
    assert!(accepted_with_ringbuf.get() >= 10, "{} accepted functions output a record", accepted_with_ringbuf.get());
}
