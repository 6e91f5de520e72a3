//! Checks the Coq proof artifacts end to end: `proofs/` builds with no axiom, exported probes
//! are accepted by `coqc`, tampered ones (bound too low, program changed) are rejected, and
//! the Coq semantics of an exported probe agrees with a Rust interpreter of the IR.
//!
//! Needs `coqc` and `make`: without them the tests print why and pass, except when `CI=true`,
//! where they fail.

#[path = "../src/coq.rs"]
#[allow(dead_code)] // the harness does not use every public item
mod coq;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use coq::{export_function, proof_file_name, structural_wcet, CostItem, HelperKind};
use ppis_ir::{parse_module, AluOp, Block, Cond, Function, Helper, Map, MapType, Module, Op, Operand, Terminator};

/// Insert-then-aggregate (tests/filetests/verify/null_check_join.ir): its blocks are not in a
/// topological order (bb2 jumps back to bb1), so the exporter must renumber them.
const NULL_CHECK_JOIN: &str = "map m0 calls: percpu_hash key 16 value 8 max 1024

fn probe0(ctx: tracepoint) {
  slot s0: 16
  slot s1: 8
  v0: *calls?
bb0:
  zero s0
  v0 = map.lookup calls, s0
  br.null v0, bb2, bb1
bb1:
  v1 = load v0+0 u64
  v2 = add v1, 1
  store v0+0 u64, v2
  jump bb3
bb2:
  zero s1
  map.update calls, s0, s1, 1
  v0 = map.lookup calls, s0
  br.null v0, bb3, bb1
bb3:
  ret
}
";

/// Every instruction, helper and terminator kind, signed and unsigned arithmetic, an array
/// map written through a pointer and a hash map filled to capacity.
const ARITH: &str = "map m0 counts: array key 4 value 16 max 4
map m1 seen: hash key 8 value 8 max 2

fn arith(ctx: tracepoint) {
  slot s0: 8
  slot s1: 16
  slot s2: 8
  v10: *counts?
bb0:
  v0 = load.ctx 8 u32
  v1 = load.ctx.s 4 u16
  v2 = call ktime_get_ns()
  v3 = call get_current_pid_tgid()
  call get_current_comm(s1, 16)
  v4 = add v0, v1
  v5 = mul v2, v3
  v6 = udiv v5, v0
  v7 = umod v5, 0
  v8 = xor v6, -1
  v9 = shl v8, 67
  v11 = ashr v9, 7
  v12 = lshr v9, v1
  v13 = and v12, 65535
  v14 = or v13, v11
  v15 = sub v14, v4
  v16 = neg v15
  v17 = sext8 v16
  v18 = zext16 v17
  v19 = set.slt v17, v18
  v27 = call get_current_uid_gid()
  br.sge v1, 0, bb1, bb2
bb1:
  store s0+0 u32, v18
  v20 = load s0+2 u16
  v21 = umod v20, 4
  store s2+0 u32, v21
  v10 = map.lookup counts, s2
  br.null v10, bb3, bb4
bb2:
  zero s0
  store s0+4 u8, v19
  v22 = load s0+0 u64
  map.update seen, s0, s0, 0
  map.update seen, s0, s2, 1
  jump bb3
bb3:
  v23 = call get_smp_processor_id()
  v28 = call get_current_cgroup_id()
  call probe_read_user(s1, 12, v3)
  ret
bb4:
  v24 = load v10+8 u64
  v25 = add v24, v19
  store v10+8 u64, v25
  store v10+0 u16, v17
  v26 = load s1+0 u64
  br.ugt v26, v24, bb5, bb3
bb5:
  map.delete seen, s0
  ret
}
";

/// A map value read with no null check: a run faults (not out of bounds, so still certified).
const NULL_DEREF: &str = "map m0 start: hash key 8 value 8 max 10240

fn probe0(ctx: tracepoint) {
  slot s0: 8
  v0: *start?
bb0:
  zero s0
  v0 = map.lookup start, s0
  v1 = load v0+0 u64
  ret
}
";

/// `str(args.filename, 64)`-style reads: a user string into a 64-byte slot used as a map key,
/// and a kernel string of bound 16 into the first half of a 32-byte slot (whose second half
/// keeps its old bytes). Their results come from the environment.
const STR_READ: &str = "map m0 opens: hash key 64 value 8 max 1024

fn probe0(ctx: pt_regs) trigger uprobe {
  slot s0: 64
  slot s1: 8
  slot s2: 32
bb0:
  zero s0
  v0 = load.ctx 112 u64
  v1 = call probe_read_user_str(s0, 64, v0)
  v2 = load.ctx 104 u64
  call probe_read_kernel_str(s2, 16, v2)
  br.slt v1, 0, bb1, bb2
bb1:
  ret
bb2:
  v3 = load s0+0 u64
  v4 = load s2+8 u64
  store s1+0 u64, v4
  map.update opens, s0, s1, 0
  ret
}
";

/// What `emit` lowers to (tests/filetests/verify/ringbuf_record.ir): a record built in a
/// 16-byte slot, its first 12 bytes sent to the ring buffer, and the drop counter incremented
/// when the helper fails. The record is the first helper call, so its result is 0 (success)
/// in the environment with seed 0 and not in the others.
const EMIT: &str = "map m0 ppis.drops: percpu_array key 4 value 8 max 1
map m1 ppis.events: ringbuf key 0 value 0 max 262144

fn probe0(ctx: tracepoint) trigger tracepoint rate 1000 {
  slot s0: 16
  slot s1: 8
  v2: *ppis.drops?
bb0:
  zero s0
  store s0+0 u32, 7
  v0 = load.ctx 8 u64
  store s0+8 u64, v0
  v1 = call ringbuf_output(ppis.events, s0, 12)
  br.eq v1, 0, bb3, bb1
bb1:
  store s1+0 u32, 0
  v2 = map.lookup ppis.drops, s1
  br.null v2, bb3, bb2
bb2:
  v3 = load v2+0 u64
  v4 = add v3, 1
  store v2+0 u64, v4
  jump bb3
bb3:
  ret
}
";

/// `ustack`/`kstack` keys (examples/profile.ppl): two stack ids, the user one tested for an
/// error (negative as a signed 32-bit value) before both go into a hash map's key.
const STACKS: &str = "map m0 users: hash key 8 value 8 max 1024
map m1 ustack.127: stack_trace key 4 value 1016 max 2048
map m2 kstack.127: stack_trace key 4 value 1016 max 2048

fn probe0(ctx: perf_event) trigger perf_event rate 99 {
  slot s0: 8
  slot s1: 8
bb0:
  v0 = call get_stackid(ctx, ustack.127, user)
  v1 = sext32 v0
  br.slt v1, 0, bb2, bb1
bb1:
  v2 = call get_stackid(ctx, kstack.127, kernel)
  v3 = zext32 v2
  v4 = zext32 v0
  v5 = shl v3, 32
  v6 = or v4, v5
  store s0+0 u64, v6
  store s1+0 u64, 1
  map.update users, s0, s1, 0
  ret
bb2:
  ret
}
";

/// A counting loop (tests/filetests/verify/loop.ir).
const LOOP: &str = "fn probe0(ctx: tracepoint) {
bb0:
  v0 = 0
  jump bb1
bb1:
  v0 = add v0, 1
  br.ult v0, 10, bb1, bb2
bb2:
  ret
}
";

/// `for i in 0..4 { total += vals[i] ?? 0 }` as `for` lowers it: preheader, header test, body
/// with a null check, latch; the total is stored into a slot at the end.
const FOR_SUM: &str = "map m0 vals: array key 4 value 8 max 4

fn probe0(ctx: tracepoint) {
  slot s0: 8
  v2: *vals?
bb0:
  v0 = 0
  v1 = 0
  jump bb1
bb1:
  br.ult v0, 4, bb2, bb5
bb2:
  store s0+0 u32, v0
  v2 = map.lookup vals, s0
  br.null v2, bb4, bb3
bb3:
  v3 = load v2+0 u64
  v1 = add v1, v3
  jump bb4
bb4:
  v0 = add v0, 1
  jump bb1
bb5:
  store s0+0 u64, v1
  ret
}
";

/// A data-dependent bound clamped first (`if n > 5 { n = 5 }`): the facts must carry `n <= 5`
/// from the guard to the loop's header.
const GUARDED_LOOP: &str = "map m0 counts: percpu_array key 4 value 8 max 16

fn probe0(ctx: tracepoint) {
  slot s0: 8
  slot s1: 8
bb0:
  v0 = 0
  v1 = load.ctx 16 u8
  br.ugt v1, 5, bb1, bb2
bb1:
  v1 = 5
  jump bb2
bb2:
  jump bb3
bb3:
  br.ult v0, v1, bb4, bb6
bb4:
  store s0+0 u32, v0
  store s1+0 u64, v1
  map.update counts, s0, s1, 0
  jump bb5
bb5:
  v0 = add v0, 1
  jump bb3
bb6:
  ret
}
";

/// Nested loops (4 × 3) with an early exit from the inner body (tests/filetests/verify/
/// loop_nested.ir, reading one context byte so that the exit can be taken).
const NESTED_LOOP: &str = "fn probe0(ctx: tracepoint) {
bb0:
  v0 = 0
  v2 = load.ctx 16 u8
  jump bb1
bb1:
  br.ult v0, 4, bb2, bb7
bb2:
  v1 = 0
  jump bb3
bb3:
  br.ult v1, 3, bb4, bb6
bb4:
  br.eq v2, 99, bb7, bb5
bb5:
  v3 = mul v0, v1
  v1 = add v1, 1
  jump bb3
bb6:
  v0 = add v0, 1
  jump bb1
bb7:
  ret
}
";

/// A loop whose counter is reset in its body (tests/filetests/verify/loop_counter_written.ir):
/// no trip count exists, and the exporter says so.
const LOOP_COUNTER_RESET: &str = "fn probe0(ctx: tracepoint) {
bb0:
  v0 = 0
  jump bb1
bb1:
  br.ult v0, 8, bb2, bb4
bb2:
  v0 = 0
  jump bb3
bb3:
  v0 = add v0, 1
  jump bb1
bb4:
  ret
}
";

/// A counter that could wrap around below its bound (tests/filetests/verify/loop_wraps.ir).
const LOOP_WRAPS: &str = "fn probe0(ctx: tracepoint) {
bb0:
  v0 = 0
  v1 = -2
  jump bb1
bb1:
  br.ult v0, v1, bb2, bb3
bb2:
  v0 = add v0, 4
  jump bb1
bb3:
  ret
}
";

/// A loop entered in two places (tests/filetests/verify/loop_irreducible.ir): on the second
/// entry (bb0 to bb2, past the header) the counter is not tested.
const LOOP_IRREDUCIBLE: &str = "fn probe0(ctx: tracepoint) {
bb0:
  v0 = load.ctx 16 u64
  br.eq v0, 0, bb1, bb2
bb1:
  br.ult v0, 8, bb2, bb3
bb2:
  v0 = add v0, 1
  jump bb1
bb3:
  ret
}
";

/// A loop whose bound register grows in its body (tests/filetests/verify/loop_bound_written.ir).
const LOOP_BOUND_WRITTEN: &str = "fn probe0(ctx: tracepoint) {
bb0:
  v0 = 0
  v1 = 8
  jump bb1
bb1:
  br.ult v0, v1, bb2, bb4
bb2:
  v1 = add v1, 1
  jump bb3
bb3:
  v0 = add v0, 1
  jump bb1
bb4:
  ret
}
";

/// Reads 8 bytes at offset 4 of an 8-byte slot.
const SLOT_OVERRUN: &str = "fn probe0(ctx: tracepoint) {
  slot s0: 8
bb0:
  zero s0
  v0 = load s0+4 u64
  ret
}
";

/// A cost table in which every class has a different price, so that a mix-up shows.
fn cost(item: CostItem) -> u64 {
    match item {
        CostItem::Mov => 1,
        CostItem::Alu(AluOp::UDiv | AluOp::UMod) => 4,
        CostItem::Alu(AluOp::Mul) => 3,
        CostItem::Alu(_) => 2,
        CostItem::Neg => 5,
        CostItem::SetCond => 6,
        CostItem::Extend => 7,
        CostItem::LoadCtx => 8,
        CostItem::LoadSlot => 9,
        CostItem::StoreSlot => 10,
        CostItem::ZeroSlot => 11,
        CostItem::Helper(HelperKind::GetCurrentPidTgid) => 20,
        CostItem::Helper(HelperKind::GetCurrentUidGid) => 21,
        CostItem::Helper(HelperKind::GetCurrentComm) => 35,
        CostItem::Helper(HelperKind::KtimeGetNs) => 23,
        CostItem::Helper(HelperKind::GetSmpProcessorId) => 12,
        CostItem::Helper(HelperKind::ProbeReadUserStr) => 40,
        CostItem::Helper(HelperKind::ProbeReadKernelStr) => 45,
        CostItem::Helper(HelperKind::GetCurrentCgroupId) => 17,
        CostItem::Helper(HelperKind::ProbeRead) => 33,
        CostItem::Helper(HelperKind::RingbufOutput) => 55,
        CostItem::Helper(HelperKind::GetStackId) => 47,
        CostItem::HelperPerByte(HelperKind::ProbeReadUserStr) => 3,
        CostItem::HelperPerByte(HelperKind::ProbeReadKernelStr) => 5,
        CostItem::HelperPerByte(HelperKind::ProbeRead) => 7,
        CostItem::HelperPerByte(HelperKind::RingbufOutput) => 9,
        // Priced so that a per-byte cost where none belongs would show.
        CostItem::HelperPerByte(_) => 1000,
        CostItem::MapLookup(MapType::Hash) => 60,
        CostItem::MapLookup(MapType::PerCpuHash) => 65,
        CostItem::MapLookup(MapType::LruHash) => 61,
        CostItem::MapUpdate(MapType::LruPerCpuHash) => 93,
        CostItem::MapLookup(_) => 15,
        CostItem::MapUpdate(MapType::Array | MapType::PerCpuArray) => 30,
        CostItem::MapUpdate(_) => 90,
        CostItem::MapDelete(_) => 70,
        CostItem::LoadPtr => 13,
        CostItem::StorePtr => 14,
        CostItem::Jump => 1,
        CostItem::Branch => 2,
        CostItem::BranchNull => 3,
        CostItem::Return => 4,
    }
}

fn module(text: &str) -> Module {
    parse_module(text).unwrap_or_else(|e| panic!("test IR does not parse: {e}"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("compiler/ has a parent").to_path_buf()
}

fn proofs_dir() -> PathBuf {
    repo_root().join("proofs")
}

/// Whether Coq can be used; when not, says why, and fails under `CI=true`.
fn coq_available(test: &str) -> bool {
    let found = |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if found("coqc") && found("make") {
        return true;
    }
    let why = format!("{test}: coqc or make not found (install Coq: `apt-get install coq`)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; CI=true, so this is a failure rather than a skip");
    }
    eprintln!("skipping {why}");
    false
}

/// Builds `proofs/` once per test run (the Makefile serialises concurrent builds with flock).
fn build_proofs() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let output = Command::new("make").arg("-C").arg(proofs_dir()).output().map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
        }
    });
    if let Err(log) = result {
        panic!("`make -C proofs` failed:\n{log}");
    }
}

/// A fresh directory for one test's files.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ppis-coq-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    dir
}

/// Runs `coqc -Q proofs Ppis FILE` on `text` saved as `dir/file_name`.
fn coqc(dir: &Path, file_name: &str, text: &str) -> Output {
    let path = dir.join(file_name);
    std::fs::write(&path, text).expect("write the Coq file");
    Command::new("coqc").arg("-Q").arg(proofs_dir()).arg("Ppis").arg(&path).current_dir(dir).output().expect("run coqc")
}

fn log(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The theorem whose proof `coqc` stopped at: each generated proof sits on the line after its
/// statement, and coqc names the line of the error.
fn failing_theorem(file: &str, output: &Output) -> String {
    let log = log(output);
    // The location printed last before `Error:` (warnings carry locations too).
    let before_error = &log[..log.find("Error").unwrap_or(log.len())];
    let line: Option<usize> = before_error
        .rfind("line ")
        .and_then(|at| before_error[at + 5..].split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    let statement = line.and_then(|l| l.checked_sub(2)).and_then(|i| file.lines().nth(i)).unwrap_or("");
    statement
        .strip_prefix("Theorem ")
        .and_then(|rest| rest.split_whitespace().next())
        .map_or_else(|| format!("no theorem: line {line:?} of the file, coqc said:\n{log}"), str::to_string)
}

fn tight_export(m: &Module) -> (String, u64) {
    let func = &m.functions[0];
    let bound = structural_wcet(func, &m.maps, &cost);
    (export_function(func, &m.maps, &cost, bound), bound)
}

#[test]
fn proofs_build_without_axioms() {
    if !coq_available("proofs_build_without_axioms") {
        return;
    }
    build_proofs();
    let out = std::fs::read_to_string(proofs_dir().join("assumptions.out")).expect("make writes assumptions.out");
    let closed = out.lines().filter(|l| *l == "Closed under the global context").count();
    assert_eq!(closed, 8, "every main theorem must be closed under the global context:\n{out}");
    assert_eq!(closed, out.lines().count(), "assumptions.out mentions something else:\n{out}");
}

#[test]
fn exported_probes_are_accepted() {
    if !coq_available("exported_probes_are_accepted") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("accepted");
    for text in [NULL_CHECK_JOIN, ARITH, NULL_DEREF, STR_READ, EMIT, STACKS] {
        let m = module(text);
        let (file, _) = tight_export(&m);
        let output = coqc(&dir, &proof_file_name(&m.functions[0]), &file);
        assert!(output.status.success(), "coqc rejected the export of\n{text}\n{}\n{file}", log(&output));
    }
    // A looser bound is accepted too.
    let m = module(ARITH);
    let bound = structural_wcet(&m.functions[0], &m.maps, &cost) + 100;
    let output = coqc(&dir, "arith.v", &export_function(&m.functions[0], &m.maps, &cost, bound));
    assert!(output.status.success(), "{}", log(&output));
}

#[test]
fn export_text_is_stable() {
    let m = module(NULL_CHECK_JOIN);
    let (file, bound) = tight_export(&m);
    // zero+lookup+br.null, then the costlier of bb1 (load, add, store, jump) and bb2 (zero,
    // update, lookup, br.null, then bb1), then bb3 (ret).
    let bb0 = 11 + 65 + 3;
    let bb1 = 13 + 2 + 14 + 1;
    let bb2 = 11 + 90 + 65 + 3;
    assert_eq!(bound, bb0 + bb2 + bb1 + 4);
    insta::assert_snapshot!(file);
}

#[test]
fn structural_wcet_takes_the_costliest_path() {
    // A diamond whose left arm is costlier, then a join: the longest path goes left.
    let m = module(
        "fn probe0(ctx: tracepoint) {
bb0:
  v0 = load.ctx 0 u64
  br.eq v0, 0, bb1, bb2
bb1:
  v1 = mul v0, v0
  v1 = udiv v1, 3
  jump bb3
bb2:
  v1 = 1
  jump bb3
bb3:
  ret
}
",
    );
    let f = &m.functions[0];
    assert_eq!(structural_wcet(f, &m.maps, &cost), (8 + 2) + (3 + 4 + 1) + 4);
    // With everything priced 1 it counts instructions and terminators on the longest path.
    assert_eq!(structural_wcet(f, &m.maps, &|_| 1), 2 + 3 + 1);
}

#[test]
fn a_bound_below_the_wcet_is_rejected() {
    if !coq_available("a_bound_below_the_wcet_is_rejected") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("low-bound");
    // Plain map code, and probes that send events and record stacks.
    for text in [NULL_CHECK_JOIN, EMIT, STACKS] {
        let m = module(text);
        let (file, bound) = tight_export(&m);
        let needle = format!("{bound}%N");
        assert!(file.contains(&needle), "the bound appears in the file");
        let tampered = file.replace(&needle, &format!("{}%N", bound - 1));
        let output = coqc(&dir, "probe0.v", &tampered);
        assert!(!output.status.success(), "coqc accepted a bound one below the worst case:\n{tampered}");
        assert_eq!(failing_theorem(&tampered, &output), "probe0_cost");
        // Exporting with a bound below the structural one gives the same verdict.
        let low = export_function(&m.functions[0], &m.maps, &cost, bound - 1);
        assert!(!coqc(&dir, "probe0.v", &low).status.success());
    }
}

#[test]
fn a_tampered_program_is_rejected() {
    if !coq_available("a_tampered_program_is_rejected") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("tampered");
    let m = module(NULL_CHECK_JOIN);
    let (file, _) = tight_export(&m);
    let cases = [
        // One more instruction in the entry block, with the bound unchanged.
        ("(* 0: bb0 *) {| b_ops := [", "(* 0: bb0 *) {| b_ops := [\n        Mov 1 (Imm 0%Z);", "probe0_cost"),
        // A backward edge: the null edge of the entry's check goes back to the entry.
        ("BranchNull 0 1 2", "BranchNull 0 0 2", "probe0_terminates"),
        // A load past the end of the 8-byte map value.
        ("LoadPtr 1 0 0%N 8%N", "LoadPtr 1 0 4%N 8%N", "probe0_bounds"),
    ];
    for (from, to, failing) in cases {
        assert_eq!(file.matches(from).count(), 1, "`{from}` occurs once in\n{file}");
        let tampered = file.replacen(from, to, 1);
        let output = coqc(&dir, "probe0.v", &tampered);
        assert!(!output.status.success(), "coqc accepted a program tampered with `{to}`:\n{tampered}");
        assert_eq!(failing_theorem(&tampered, &output), failing);
    }
}

#[test]
fn string_reads_are_priced_by_their_bound() {
    let m = module(STR_READ);
    let func = &m.functions[0];
    assert_eq!(coq::unsupported(func), None);
    // Entry: zero 11, two ctx loads 2 × 8, the user read 40 + 64 × 3, the kernel read
    // 45 + 16 × 5, a branch 2; then the costlier successor: two slot loads 2 × 9, a store 10,
    // a hash update 90 and the return 4.
    let entry = 11 + 2 * 8 + (40 + 64 * 3) + (45 + 16 * 5) + 2;
    assert_eq!(structural_wcet(func, &m.maps, &cost), entry + 2 * 9 + 10 + 90 + 4);
    let file = export_function(func, &m.maps, &cost, 1 << 20);
    assert!(file.contains("Call (Some 1) (ProbeReadStr 0 64%N 0 UserSpace)"), "{file}");
    assert!(file.contains("Call None (ProbeReadStr 2 16%N 2 KernelSpace)"), "{file}");
    assert!(file.contains("c_helper_per_byte := fun x => match x with"), "{file}");
}

#[test]
fn a_string_read_past_its_slot_is_rejected() {
    if !coq_available("a_string_read_past_its_slot_is_rejected") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("string-overrun");
    let m = module(STR_READ);
    // A loose bound, so that the longer read's higher cost does not fail `probe0_cost` first.
    let bound = structural_wcet(&m.functions[0], &m.maps, &cost) + 10_000;
    let file = export_function(&m.functions[0], &m.maps, &cost, bound);
    let output = coqc(&dir, "probe0.v", &file);
    assert!(output.status.success(), "{}\n{file}", log(&output));
    let cases = [
        // One byte more than the 64-byte slot.
        ("ProbeReadStr 0 64%N", "ProbeReadStr 0 65%N"),
        // Within its length, but into the 8-byte slot.
        ("ProbeReadStr 2 16%N", "ProbeReadStr 1 16%N"),
        // A slot that does not exist.
        ("ProbeReadStr 2 16%N", "ProbeReadStr 3 16%N"),
    ];
    for (from, to) in cases {
        assert_eq!(file.matches(from).count(), 1, "`{from}` occurs once in\n{file}");
        let tampered = file.replacen(from, to, 1);
        let output = coqc(&dir, "probe0.v", &tampered);
        assert!(!output.status.success(), "coqc accepted a string read tampered to `{to}`:\n{tampered}");
        assert_eq!(failing_theorem(&tampered, &output), "probe0_bounds");
    }
}

/// Ring buffer output is priced `base + len × per_byte` by its record's size and stack ids at
/// their fixed price; neither makes a probe unsupported, and both are printed as Coq helpers.
#[test]
fn events_and_stacks_are_priced_and_exported() {
    let m = module(EMIT);
    let func = &m.functions[0];
    assert_eq!(coq::unsupported(func), None);
    // Entry: zero 11, two stores 2 × 10, a ctx load 8, the output 55 + 12 × 9, a branch 2;
    // then the drop counter: a store 10, an array lookup 15, a null branch 3; its increment:
    // a pointer load 13, an add 2, a pointer store 14, a jump 1; and the return 4.
    let entry = 11 + 2 * 10 + 8 + (55 + 12 * 9) + 2;
    assert_eq!(structural_wcet(func, &m.maps, &cost), entry + (10 + 15 + 3) + (13 + 2 + 14 + 1) + 4);
    let file = export_function(func, &m.maps, &cost, 1 << 20);
    assert!(file.contains("Call (Some 1) (RingbufOutput 1 0 12%N)"), "{file}");
    assert!(
        file.contains("map_type := RingBuf; key_size := 0%N; value_size := 0%N; max_entries := 262144%N"),
        "{file}"
    );
    assert!(file.contains("HRingbufOutput => 9%N"), "{file}");

    let m = module(STACKS);
    let func = &m.functions[0];
    assert_eq!(coq::unsupported(func), None);
    // Entry: a stack id 47, a sign extension 7, a branch 2; then the costlier arm: another
    // stack id 47, two extensions 2 × 7, a shift and an or 2 × 2, two stores 2 × 10, a hash
    // update 90 and the return 4.
    assert_eq!(structural_wcet(func, &m.maps, &cost), (47 + 7 + 2) + (47 + 2 * 7 + 2 * 2 + 2 * 10 + 90 + 4));
    let file = export_function(func, &m.maps, &cost, 1 << 20);
    assert!(file.contains("Call (Some 0) (GetStackId 1 true)"), "{file}");
    assert!(file.contains("Call (Some 2) (GetStackId 2 false)"), "{file}");
    assert_eq!(file.matches("map_type := StackTrace").count(), 2, "{file}");
    // A stack id has no per-byte part: the table's 1000 would show in the bound above.
    assert!(file.contains("HGetStackId => 1000%N"), "{file}");
}

/// LRU maps are kinds of their own in the Coq term, so their operations cost what the
/// verifier charges for LRU maps, not the plain hash maps' price; `coqc` accepts the export.
#[test]
fn lru_maps_are_priced_as_lru_maps() {
    let m = module(
        "map m0 recent: lru_hash key 8 value 8 max 64
map m1 per_cpu: lru_percpu_hash key 8 value 8 max 64

fn probe0(ctx: tracepoint) {
  slot s0: 8
  v0: *recent?
bb0:
  zero s0
  map.update per_cpu, s0, s0, 0
  v0 = map.lookup recent, s0
  ret
}
",
    );
    let func = &m.functions[0];
    // zero 11, an LRU per-CPU update 93, an LRU lookup 61, the return 4.
    assert_eq!(structural_wcet(func, &m.maps, &cost), 11 + 93 + 61 + 4);
    let (file, bound) = tight_export(&m);
    assert_eq!(bound, 11 + 93 + 61 + 4);
    assert!(file.contains("map_type := LruHash;") && file.contains("map_type := LruPerCpuHash;"), "{file}");
    assert!(file.contains("LruHash => 61%N") && file.contains("LruPerCpuHash => 93%N"), "{file}");
    if !coq_available("lru_maps_are_priced_as_lru_maps") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("lru");
    let output = coqc(&dir, "probe0.v", &file);
    assert!(output.status.success(), "{}\n{file}", log(&output));
    let tampered = file.replacen(&format!("<= {bound}%N"), &format!("<= {}%N", bound - 1), 1);
    let output = coqc(&dir, "probe0.v", &tampered);
    assert_eq!(failing_theorem(&tampered, &output), "probe0_cost");
}

/// A record read past its slot, from a smaller or missing slot, or sent to a map that is not
/// a ring buffer, and a stack id recorded into a map that is not a stack-trace map (or does
/// not exist), each make `NAME_bounds` fail.
#[test]
fn records_past_their_slot_and_wrong_maps_are_rejected() {
    if !coq_available("records_past_their_slot_and_wrong_maps_are_rejected") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("record-overrun");
    let cases: [(&str, &[(&str, &str)]); 2] = [
        (
            EMIT,
            &[
                // One byte past the 16-byte slot.
                ("RingbufOutput 1 0 12%N", "RingbufOutput 1 0 17%N"),
                // Within its length, but from the 8-byte slot.
                ("RingbufOutput 1 0 12%N", "RingbufOutput 1 1 12%N"),
                // A slot that does not exist.
                ("RingbufOutput 1 0 12%N", "RingbufOutput 1 2 12%N"),
                // The drop counter (an array), and a map that does not exist.
                ("RingbufOutput 1 0 12%N", "RingbufOutput 0 0 12%N"),
                ("RingbufOutput 1 0 12%N", "RingbufOutput 2 0 12%N"),
            ],
        ),
        (
            STACKS,
            &[
                // The hash map, and a map that does not exist.
                ("GetStackId 1 true", "GetStackId 0 true"),
                ("GetStackId 2 false", "GetStackId 3 false"),
            ],
        ),
    ];
    for (text, tamperings) in cases {
        let m = module(text);
        // A loose bound, so that a longer record's higher cost does not fail `probe0_cost` first.
        let bound = structural_wcet(&m.functions[0], &m.maps, &cost) + 10_000;
        let file = export_function(&m.functions[0], &m.maps, &cost, bound);
        let output = coqc(&dir, "probe0.v", &file);
        assert!(output.status.success(), "{}\n{file}", log(&output));
        for (from, to) in tamperings {
            assert_eq!(file.matches(from).count(), 1, "`{from}` occurs once in\n{file}");
            let tampered = file.replacen(from, to, 1);
            let output = coqc(&dir, "probe0.v", &tampered);
            assert!(!output.status.success(), "coqc accepted a helper tampered to `{to}`:\n{tampered}");
            assert_eq!(failing_theorem(&tampered, &output), "probe0_bounds");
        }
    }
}

/// The examples that send events (`opensnoop`, `execsnoop`: `emit`) and record stacks
/// (`profile`), compiled by `ppisc`: each certificate names a Coq file, not an unsupported
/// one, whose bound is at least the verifier's program cost; `coqc` accepts every file, and
/// rejects it with the bound one lower.
#[test]
fn compiled_events_and_stacks_are_certified_end_to_end() {
    let dir = scratch_dir("compiled-events-stacks");
    let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_string();
    let mut files = Vec::new();
    for (example, helper) in [("opensnoop", "RingbufOutput"), ("execsnoop", "RingbufOutput"), ("profile", "GetStackId")]
    {
        let src = repo_root().join("examples").join(format!("{example}.ppl"));
        let (cert, proofs) = (dir.join(format!("{example}.json")), dir.join(example));
        let output = Command::new(env!("CARGO_BIN_EXE_ppisc"))
            .args(["build", &path(&src), "-o", &path(&dir.join(format!("{example}.o"))), "--certificate", &path(&cert)])
            .args(["--emit-coq", &path(&proofs)])
            .output()
            .expect("ppisc runs");
        assert!(output.status.success(), "ppisc build {example} failed:\n{}", log(&output));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cert).expect("certificate written"))
                .expect("certificate JSON");
        let probes = json["probes"].as_array().expect("probes");
        assert!(!probes.is_empty(), "{example}: no probes");
        let mut uses_helper = false;
        for probe in probes {
            assert!(probe["coq"]["unsupported"].is_null(), "{example}: {:#}", probe["coq"]);
            let coq_ps = probe["coq"]["program_cost_bound_ps"].as_u64().unwrap_or_else(|| panic!("{:#}", probe["coq"]));
            let program_ns = probe["cost"]["bound_ns"].as_f64().unwrap_or(f64::NAN)
                - probe["cost"]["trigger_ns"].as_f64().unwrap_or(f64::NAN);
            assert!(
                coq_ps as f64 / 1000.0 >= program_ns - 1e-6,
                "{example}: Coq bound {coq_ps} ps below the verifier's {program_ns} ns"
            );
            let file_name =
                probe["coq"]["file"].as_str().and_then(|f| f.strip_prefix("proofs/")).expect("a proofs/ file");
            let text = std::fs::read_to_string(proofs.join(file_name)).expect("--emit-coq wrote the named file");
            assert!(text.contains(&format!("({coq_ps}%N)")) || text.contains(&format!(" {coq_ps}%N")), "{text}");
            uses_helper |= text.contains(helper);
            files.push((example, file_name.to_string(), text, coq_ps));
        }
        assert!(uses_helper, "{example}: no probe calls {helper}");
    }
    if !coq_available("compiled_events_and_stacks_are_certified_end_to_end") {
        return;
    }
    build_proofs();
    for (example, file_name, text, bound) in files {
        let output = coqc(&dir, &file_name, &text);
        assert!(output.status.success(), "{example}: {}\n{text}", log(&output));
        let tampered = text.replace(&format!("{bound}%N"), &format!("{}%N", bound - 1));
        let output = coqc(&dir, &file_name, &tampered);
        assert!(!output.status.success(), "{example}: coqc accepted a bound one below the worst case");
        assert_eq!(failing_theorem(&tampered, &output), format!("{}_cost", file_name.trim_end_matches(".v")));
    }
}

/// A probe that reads a string, compiled by `ppisc` from source: its certificate names a Coq
/// file (not an unsupported one) whose bound covers the verifier's, and `coqc` accepts it.
#[test]
fn a_compiled_string_read_is_certified_end_to_end() {
    let dir = scratch_dir("compiled-string-read");
    let src = dir.join("opens.ppl");
    std::fs::write(
        &src,
        "map opened: count[str[64]] max 1024;\n\
         probe tracepoint:syscalls:sys_enter_openat rate <= 1k/s {\n\
         \x20   let path = str(args.filename, 64);\n\
         \x20   opened[path].inc();\n\
         }\n",
    )
    .expect("write the source");
    let (cert, proofs) = (dir.join("cert.json"), dir.join("proofs"));
    let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_ppisc"))
        .args(["build", &path(&src), "-o", &path(&dir.join("opens.o")), "--certificate", &path(&cert)])
        .args(["--emit-coq", &path(&proofs)])
        .output()
        .expect("ppisc runs");
    assert!(output.status.success(), "ppisc build failed:\n{}", log(&output));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cert).expect("certificate written")).expect("certificate JSON");
    let probe = &json["probes"][0];
    assert!(probe["coq"]["unsupported"].is_null(), "{:#}", probe["coq"]);
    let coq_ps = probe["coq"]["program_cost_bound_ps"].as_u64().unwrap_or_else(|| panic!("{:#}", probe["coq"]));
    let program_ns = probe["cost"]["bound_ns"].as_f64().unwrap_or(f64::NAN)
        - probe["cost"]["trigger_ns"].as_f64().unwrap_or(f64::NAN);
    assert!(coq_ps as f64 / 1000.0 >= program_ns - 1e-6, "Coq bound {coq_ps} ps below the verifier's {program_ns} ns");
    let file_name = probe["coq"]["file"].as_str().and_then(|f| f.strip_prefix("proofs/")).expect("a proofs/ file");
    let text = std::fs::read_to_string(proofs.join(file_name)).expect("--emit-coq wrote the named file");
    assert!(text.contains("ProbeReadStr") && text.contains("64%N"), "{text}");
    if !coq_available("a_compiled_string_read_is_certified_end_to_end") {
        return;
    }
    build_proofs();
    let output = coqc(&dir, file_name, &text);
    assert!(output.status.success(), "{}\n{text}", log(&output));
}

/// Probes with loops compiled by `ppisc` from source (a clamped data-dependent bound, nested
/// loops, and the bundled loop example): the certificate's `coq` entry names the file, its
/// loops and step bound, the Coq bound is at least 95 % of the verifier's program cost (the
/// two price one iteration alike; Coq may be tighter, as it refunds the last header test on
/// leaving), and `coqc` accepts every file.
#[test]
fn compiled_loops_are_certified_end_to_end() {
    let dir = scratch_dir("compiled-loops");
    let src = dir.join("loops.ppl");
    std::fs::write(
        &src,
        "map counts: percpu_array[16] -> u64;\n\
         probe tracepoint:raw_syscalls:sys_enter rate <= 100/s {\n\
         \x20   let n = args.id as u64;\n\
         \x20   if n > 16 {\n\
         \x20       n = 16;\n\
         \x20   }\n\
         \x20   for i in 0..n {\n\
         \x20       counts[i] = i;\n\
         \x20   }\n\
         \x20   for j in 1..4 {\n\
         \x20       for k in 0..3 {\n\
         \x20           counts[k] = j;\n\
         \x20       }\n\
         \x20   }\n\
         }\n",
    )
    .expect("write the source");
    let example = repo_root().join("examples").join("loop_sum.ppl");
    let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_string();
    let mut files = Vec::new();
    for (name, source, loops) in [("loops", src.clone(), 3), ("loop_sum", example, 1)] {
        let (cert, proofs) = (dir.join(format!("{name}.json")), dir.join(format!("{name}-proofs")));
        let output = Command::new(env!("CARGO_BIN_EXE_ppisc"))
            .args(["build", &path(&source), "-o", &path(&dir.join(format!("{name}.o"))), "--certificate", &path(&cert)])
            .args(["--emit-coq", &path(&proofs)])
            .output()
            .expect("ppisc runs");
        assert!(output.status.success(), "ppisc build {name} failed:\n{}", log(&output));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cert).expect("certificate written"))
                .expect("certificate JSON");
        let coq = &json["probes"][0]["coq"];
        assert!(coq["unsupported"].is_null(), "{name}: {coq:#}");
        assert_eq!(coq["loops"].as_u64(), Some(loops), "{name}: {coq:#}");
        assert_eq!(coq["termination_theorem"].as_str(), Some("probe0_terminates"), "{name}: {coq:#}");
        let steps = coq["step_bound"].as_u64().unwrap_or_else(|| panic!("{name}: {coq:#}"));
        let coq_ps = coq["program_cost_bound_ps"].as_u64().unwrap_or_else(|| panic!("{name}: {coq:#}"));
        let cost = &json["probes"][0]["cost"];
        let program_ns =
            cost["bound_ns"].as_f64().unwrap_or(f64::NAN) - cost["trigger_ns"].as_f64().unwrap_or(f64::NAN);
        assert!(coq_ps as f64 / 1000.0 >= 0.95 * program_ns, "{name}: Coq bound {coq_ps} ps, verifier {program_ns} ns");
        let file_name = coq["file"].as_str().and_then(|f| f.strip_prefix("proofs/")).expect("a proofs/ file");
        let text = std::fs::read_to_string(proofs.join(file_name)).expect("--emit-coq wrote the named file");
        assert!(text.contains(&format!("probe0_steps) {steps}%N = true")), "{text}");
        assert!(text.contains(&format!("probe0_cost_potentials) {coq_ps}%N = true")), "{text}");
        files.push((file_name.to_string(), text));
    }
    if !coq_available("compiled_loops_are_certified_end_to_end") {
        return;
    }
    build_proofs();
    for (file_name, text) in files {
        let output = coqc(&dir, &file_name, &text);
        assert!(output.status.success(), "{}\n{text}", log(&output));
    }
}

#[test]
fn overruns_and_unshaped_loops_cannot_be_certified() {
    // A loop whose counter is reset in its body, could wrap, is entered in two places or whose
    // bound grows has no certificate the Coq checker accepts: the export says why and states
    // no theorem, and there is no bound.
    let cases = [
        (LOOP_COUNTER_RESET, "is not stepped once"),
        (LOOP_WRAPS, "may wrap around"),
        (LOOP_IRREDUCIBLE, "entered other than through its header"),
        (LOOP_BOUND_WRITTEN, "loop bound v1 changes inside the loop"),
    ];
    for (text, why) in cases {
        let looping = module(text);
        let func = &looping.functions[0];
        assert!(coq::unsupported(func).is_some_and(|reason| reason.contains(why)), "{:?}", coq::unsupported(func));
        assert_eq!(structural_wcet(func, &looping.maps, &cost), u64::MAX);
        assert_eq!(coq::loop_step_bound(func, &looping.maps, &cost), None);
        let file = export_function(func, &looping.maps, &cost, 1000);
        assert!(file.contains("Not exported to Coq: it contains a loop the Coq loop checker cannot certify"), "{file}");
        assert!(!file.contains("Theorem"), "{file}");
    }
    if !coq_available("overruns_and_unshaped_loops_cannot_be_certified") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("uncertifiable");
    let m = module(SLOT_OVERRUN);
    let (file, _) = tight_export(&m);
    let output = coqc(&dir, "probe0.v", &file);
    assert!(!output.status.success(), "coqc certified\n{SLOT_OVERRUN}");
    assert_eq!(failing_theorem(&file, &output), "probe0_bounds");
    // The comment-only file is valid Coq (so `--emit-coq` output always compiles).
    let looping = module(LOOP_COUNTER_RESET);
    let looping_file = export_function(&looping.functions[0], &looping.maps, &cost, 1000);
    let output = coqc(&dir, "probe0.v", &looping_file);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Every loop shape the verifier accepts (do-while, `for` with a constant bound, a clamped
/// data-dependent bound, nested loops with an early exit) is exported with its hints, and
/// `coqc` accepts the tight bound.
#[test]
fn loop_probes_are_certified() {
    for text in [LOOP, FOR_SUM, GUARDED_LOOP, NESTED_LOOP] {
        let m = module(text);
        assert_eq!(coq::unsupported(&m.functions[0]), None, "{text}");
        let (file, bound) = tight_export(&m);
        assert!(bound < u64::MAX && file.contains("probe0_hints : hints"), "{file}");
    }
    if !coq_available("loop_probes_are_certified") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("loops");
    for text in [LOOP, FOR_SUM, GUARDED_LOOP, NESTED_LOOP] {
        let m = module(text);
        let (file, _) = tight_export(&m);
        let output = coqc(&dir, "probe0.v", &file);
        assert!(output.status.success(), "coqc rejected the export of\n{text}\n{}\n{file}", log(&output));
    }
}

/// Loop bounds worked out by hand.
#[test]
fn loop_bounds_count_trips_times_the_iteration() {
    // Do-while (tests/filetests/verify/loop.ir): the counter starts at 0 and the latch is the
    // header, so it runs 10 times: entry 2 (mov, jump) + 10 × (add, branch) + the return 1.
    // (The verifier's "longest path 25" charges the header's test once more.)
    let m = module(LOOP);
    let f = &m.functions[0];
    assert_eq!(structural_wcet(f, &m.maps, &|_| 1), 2 + 10 * 2 + 1);
    // Steps: the entry, 10 runs of the loop's one block, the return.
    assert_eq!(coq::loop_step_bound(f, &m.maps, &|_| 1), Some((1 + 10 + 1, 1)));
    // `for`: preheader (2 movs, jump) + 4 × iteration (header branch; store, lookup, br.null;
    // load, add, jump; add, jump) + the last test and the exit (branch; store, ret).
    let m = module(FOR_SUM);
    let f = &m.functions[0];
    let iteration = 1 + 3 + 3 + 2;
    assert_eq!(structural_wcet(f, &m.maps, &|_| 1), 3 + 4 * iteration + 1 + 2);
    // With the test table: preheader 1 + 1 + 1; iteration: branch 2; store 10, array lookup
    // 15, br.null 3; load.ptr 13, add 2, jump 1; add 2, jump 1; exit: branch 2, store 10, ret 4.
    let iteration = 2 + (10 + 15 + 3) + (13 + 2 + 1) + (2 + 1);
    assert_eq!(structural_wcet(f, &m.maps, &cost), 3 + 4 * iteration + 2 + 10 + 4);
    // Nested: 4 outer iterations, each 3 inner ones; the inner early exit costs no more.
    let m = module(NESTED_LOOP);
    let f = &m.functions[0];
    let inner = 1 + 1 + 3;
    let outer = 1 + 2 + (3 * inner + 1) + 2;
    assert_eq!(structural_wcet(f, &m.maps, &|_| 1), 3 + 4 * outer + 1 + 1);
    assert_eq!(coq::loop_step_bound(f, &m.maps, &|_| 1).map(|(_, loops)| loops), Some(2));
}

/// The loop hints are not trusted: a bound one too low, a lowered trip count, a wrong counter
/// fact, a counter that no longer steps, a lowered loop weight and an extra instruction in the
/// loop body each make `coqc` fail, on the theorem that should fail.
#[test]
fn tampered_loop_certificates_are_rejected() {
    if !coq_available("tampered_loop_certificates_are_rejected") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("loop-tampered");
    let m = module(FOR_SUM);
    let (file, bound) = tight_export(&m);
    let output = coqc(&dir, "probe0.v", &file);
    assert!(output.status.success(), "{}\n{file}", log(&output));
    let cost_statement = format!("probe0_cost_potentials) {bound}%N = true.");
    let lowered_statement = format!("probe0_cost_potentials) {}%N = true.", bound - 1);
    let weight = file
        .lines()
        .skip_while(|l| !l.starts_with("Definition probe0_cost_potentials"))
        .find_map(|l| l.trim().strip_prefix("pot_loops := ["))
        .and_then(|rest| rest.split('%').next())
        .expect("the cost potentials name a loop weight")
        .to_string();
    let weight_line = format!("pot_loops := [{weight}%N]");
    let lowered_weight = format!("pot_loops := [{}%N]", weight.parse::<u64>().expect("a number") - 1);
    let cases: Vec<(&str, String, &str)> = vec![
        (cost_statement.as_str(), lowered_statement, "probe0_cost"),
        ("lp_trips := 4%N", "lp_trips := 3%N".into(), "probe0_terminates"),
        // The latch's fact claims the counter is below 3, which its edge does not show.
        ("(* 5 *) [(0, Some (0%Z, 3%Z))", "(* 5 *) [(0, Some (0%Z, 2%Z))".into(), "probe0_terminates"),
        ("Alu Add 0 0 (Imm 1%Z)", "Alu Add 0 0 (Imm 0%Z)".into(), "probe0_terminates"),
        (weight_line.as_str(), lowered_weight, "probe0_cost"),
        // One more instruction in the loop body (bb3, exported fourth), bound and potentials
        // unchanged.
        ("(* 4: bb3 *) {| b_ops := [", "(* 4: bb3 *) {| b_ops := [\n        Mov 9 (Imm 0%Z);".into(), "probe0_cost"),
    ];
    for (from, to, failing) in cases {
        assert_eq!(file.matches(from).count(), 1, "`{from}` occurs once in\n{file}");
        let tampered = file.replacen(from, &to, 1);
        let output = coqc(&dir, "probe0.v", &tampered);
        assert!(!output.status.success(), "coqc accepted a loop certificate tampered with `{to}`:\n{tampered}");
        assert_eq!(failing_theorem(&tampered, &output), failing, "tampered with `{to}`");
    }
}

#[test]
fn identifiers_are_valid_coq() {
    assert_eq!(coq::coq_identifier("probe0"), "probe0");
    assert_eq!(coq::coq_identifier("sys_enter-read.v2"), "sys_enter_read_v2");
    assert_eq!(coq::coq_identifier("9lives"), "probe_9lives");
    assert_eq!(coq::coq_identifier(""), "probe_");
    assert_eq!(coq::coq_identifier("wcet"), "wcet_probe");
    assert_eq!(coq::coq_identifier("fun"), "fun_probe");
    assert_eq!(coq::coq_identifier("é"), "probe__");
}

/// Graphs the builder and parser never make (no blocks; an edge to a block that does not
/// exist) export without panicking, and Coq refuses to certify them.
#[test]
fn malformed_graphs_are_not_certified() {
    let mut empty = module(LOOP);
    empty.functions[0].cfg.clear();
    let mut dangling = module(LOOP);
    let entry = dangling.functions[0].entry;
    dangling.functions[0].cfg[entry].term = Terminator::Jump(Block::new(99));
    assert_eq!(structural_wcet(&empty.functions[0], &[], &cost), 0);
    let files: Vec<String> =
        [&empty, &dangling].iter().map(|m| export_function(&m.functions[0], &m.maps, &cost, 1000)).collect();
    assert!(files[0].contains("fn_blocks := []"), "{}", files[0]);
    assert!(files[1].contains("b_term := Jump 1 |}"), "the missing block gets the place past the end:\n{}", files[1]);
    if !coq_available("malformed_graphs_are_not_certified") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("malformed");
    for file in files {
        let output = coqc(&dir, "probe0.v", &file);
        assert!(!output.status.success(), "coqc certified\n{file}");
        assert_eq!(failing_theorem(&file, &output), "probe0_terminates");
    }
}

// ---------------------------------------------------------------------------------------
// Round trip: a Rust interpreter of the IR against Coq's `run` on the exported term.
// ---------------------------------------------------------------------------------------

const TWO_64: i128 = 1 << 64;

fn norm(z: i128) -> i128 {
    z.rem_euclid(TWO_64)
}

fn byte(z: i128) -> i128 {
    z.rem_euclid(256)
}

fn to_signed(z: i128) -> i128 {
    let u = norm(z);
    if u < 1 << 63 {
        u
    } else {
        u - TWO_64
    }
}

/// What the program cannot know in advance; the same formulas are written out in Coq by
/// [`TestEnv::coq`].
struct TestEnv {
    seed: i128,
    /// Initial contents per map: (key bytes, value bytes).
    maps: Vec<Vec<(Vec<i128>, Vec<i128>)>>,
}

impl TestEnv {
    fn ctx(&self, i: u64) -> i128 {
        (i as i128 * 7 + self.seed) % 256
    }
    fn helper(&self, call: usize) -> i128 {
        self.seed * 1_000_003 + call as i128 * 4_294_967_311
    }
    fn comm(&self, i: u64) -> i128 {
        65 + i as i128
    }
    /// The bytes the string read at helper call `call` copies: how many depends on the call,
    /// so some reads are cut by their bound and some are not.
    fn string(&self, call: usize) -> Vec<i128> {
        let len = (self.seed as usize * 7 + call * 13) % 40;
        (0..len).map(|i| ((i * 3 + call + self.seed as usize) % 256) as i128).collect()
    }
    fn reg(&self, r: u32) -> i128 {
        r as i128 * 3 - self.seed
    }
    fn stack(&self, slot: usize, i: u64) -> i128 {
        (slot as i128 * 31 + i as i128 * 5 + self.seed) % 256
    }

    fn coq(&self) -> String {
        let bytes = |b: &[i128]| format!("[{}]", b.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; "));
        let maps: Vec<String> = self
            .maps
            .iter()
            .map(|entries| {
                let entries: Vec<String> =
                    entries.iter().map(|(k, v)| format!("({}, {})", bytes(k), bytes(v))).collect();
                format!("[{}]", entries.join("; "))
            })
            .collect();
        let seed = self.seed;
        format!(
            "{{| env_ctx := fun i => (Z.modulo (Z.of_N i * 7 + {seed}) 256)%Z;
   env_helper := fun n => ({seed} * 1000003 + Z.of_nat n * 4294967311)%Z;
   env_comm := fun i => (65 + Z.of_N i)%Z;
   env_str := fun n => map (fun i => Z.of_nat (Nat.modulo (i * 3 + n + {seed}) 256))
                         (seq 0 (Nat.modulo ({seed} * 7 + n * 13) 40));
   env_regs := fun r => (Z.of_nat r * 3 - {seed})%Z;
   env_stack := fun s i => (Z.modulo (Z.of_nat s * 31 + Z.of_N i * 5 + {seed}) 256)%Z;
   env_maps := fun m => nth m ([{}]%Z : list (list (list Z * list Z))) [] |}}",
            maps.join("; ")
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i128),
    Null,
    Ptr(usize, Vec<i128>),
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    OutOfBounds = 0,
    NullDeref = 1,
    IllTyped = 2,
    BadBlock = 3,
}

type Entries = Vec<(Vec<i128>, Vec<i128>)>;

/// The IR's meaning as `proofs/Semantics.v` states it, written directly over `ppis_ir`.
struct Interp<'a> {
    func: &'a Function,
    maps: &'a [Map],
    env: &'a TestEnv,
    regs: HashMap<u32, Value>,
    stack: HashMap<(usize, u64), i128>,
    map_state: Vec<Entries>,
    calls: usize,
}

fn le_value(bytes: &[i128]) -> i128 {
    bytes.iter().rev().fold(0, |acc, &b| byte(b) + 256 * acc)
}

fn le_bytes(v: i128, width: u64) -> Vec<i128> {
    (0..width).map(|i| (v >> (8 * i)) & 255).collect()
}

fn extend(v: i128, width: u64, signed: bool) -> i128 {
    let bits = 8 * width as u32;
    let low = v.rem_euclid(1i128 << bits);
    if signed && low >= 1i128 << (bits - 1) {
        norm(low - (1i128 << bits))
    } else {
        norm(low)
    }
}

fn alu(op: AluOp, a: i128, b: i128) -> i128 {
    let (a, b) = (norm(a) as u64, norm(b) as u64);
    let shift = (b & 63) as u32;
    let r: u64 = match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::UDiv => a.checked_div(b).unwrap_or(0),
        AluOp::UMod => a.checked_rem(b).unwrap_or(a),
        AluOp::And => a & b,
        AluOp::Or => a | b,
        AluOp::Xor => a ^ b,
        AluOp::Shl => a << shift,
        AluOp::LShr => a >> shift,
        AluOp::AShr => ((a as i64) >> shift) as u64,
    };
    r as i128
}

fn eval_cond(c: Cond, a: i128, b: i128) -> bool {
    let (a, b) = (norm(a), norm(b));
    let (sa, sb) = (to_signed(a), to_signed(b));
    match c {
        Cond::Eq => a == b,
        Cond::Ne => a != b,
        Cond::Ult => a < b,
        Cond::Ule => a <= b,
        Cond::Ugt => a > b,
        Cond::Uge => a >= b,
        Cond::Slt => sa < sb,
        Cond::Sle => sa <= sb,
        Cond::Sgt => sa > sb,
        Cond::Sge => sa >= sb,
    }
}

fn is_array(kind: MapType) -> bool {
    matches!(kind, MapType::Array | MapType::PerCpuArray)
}

fn assoc_set(entries: &mut Entries, key: Vec<i128>, value: Vec<i128>) {
    match entries.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key, value)),
    }
}

/// Positions `offset..` of `value` overwritten by `bytes`, keeping its length.
fn list_write(value: &[i128], offset: u64, bytes: &[i128]) -> Vec<i128> {
    value
        .iter()
        .enumerate()
        .map(|(pos, &x)| {
            let pos = pos as u64;
            if pos >= offset && pos < offset + bytes.len() as u64 {
                byte(bytes[(pos - offset) as usize])
            } else {
                x
            }
        })
        .collect()
}

impl<'a> Interp<'a> {
    fn new(func: &'a Function, maps: &'a [Map], env: &'a TestEnv) -> Self {
        let mut map_state = env.maps.clone();
        map_state.resize(maps.len(), Vec::new());
        Interp { func, maps, env, regs: HashMap::new(), stack: HashMap::new(), map_state, calls: 0 }
    }

    fn reg(&self, r: u32) -> Value {
        self.regs.get(&r).cloned().unwrap_or(Value::Int(norm(self.env.reg(r))))
    }

    fn int(&self, r: u32) -> Result<i128, Fault> {
        match self.reg(r) {
            Value::Int(z) => Ok(z),
            _ => Err(Fault::IllTyped),
        }
    }

    fn operand(&self, o: Operand) -> Result<i128, Fault> {
        match o {
            Operand::Reg(r) => self.int(r.0),
            Operand::Imm(i) => Ok(norm(i.into())),
        }
    }

    fn set_int(&mut self, r: u32, z: i128) {
        self.regs.insert(r, Value::Int(norm(z)));
    }

    fn slot_byte(&self, slot: usize, i: u64) -> i128 {
        byte(self.stack.get(&(slot, i)).copied().unwrap_or_else(|| self.env.stack(slot, i)))
    }

    fn check_slot(&self, slot: usize, offset: u64, width: u64) -> Result<(), Fault> {
        match self.func.slots.get(slot) {
            Some(&size) if offset + width <= size as u64 => Ok(()),
            _ => Err(Fault::OutOfBounds),
        }
    }

    fn read_slot(&self, slot: usize, offset: u64, width: u64) -> Vec<i128> {
        (0..width).map(|i| self.slot_byte(slot, offset + i)).collect()
    }

    fn write_slot(&mut self, slot: usize, offset: u64, bytes: &[i128]) {
        for (i, &b) in bytes.iter().enumerate() {
            self.stack.insert((slot, offset + i as u64), byte(b));
        }
    }

    fn map(&self, m: usize) -> Result<&'a Map, Fault> {
        self.maps.get(m).ok_or(Fault::OutOfBounds)
    }

    fn exists(&self, m: usize, key: &[i128]) -> bool {
        let map = &self.maps[m];
        if is_array(map.kind) {
            le_value(&key[..key.len().min(4)]) < map.max_entries as i128
        } else {
            self.map_state[m].iter().any(|(k, _)| k == key)
        }
    }

    /// The map, key and declaration a pointer access goes to, after its checks.
    fn ptr(&self, r: u32, offset: u64, width: u64) -> Result<(usize, Vec<i128>, &'a Map), Fault> {
        match self.reg(r) {
            Value::Null => Err(Fault::NullDeref),
            Value::Int(_) => Err(Fault::IllTyped),
            Value::Ptr(m, key) => {
                let map = self.map(m)?;
                if offset + width <= map.value_size as u64 {
                    Ok((m, key, map))
                } else {
                    Err(Fault::OutOfBounds)
                }
            }
        }
    }

    fn op(&mut self, op: &Op) -> Result<(), Fault> {
        match *op {
            Op::Mov { dst, src: Operand::Reg(src) } => {
                let v = self.reg(src.0);
                self.regs.insert(dst.0, v);
            }
            Op::Mov { dst, src: Operand::Imm(i) } => self.set_int(dst.0, i.into()),
            Op::Alu { op, dst, lhs, rhs } => {
                let (a, b) = (self.int(lhs.0)?, self.operand(rhs)?);
                self.set_int(dst.0, alu(op, a, b));
            }
            Op::Neg { dst, src } => {
                let a = self.int(src.0)?;
                self.set_int(dst.0, -a);
            }
            Op::SetCond { cond, dst, lhs, rhs } => {
                let (a, b) = (self.int(lhs.0)?, self.operand(rhs)?);
                self.set_int(dst.0, eval_cond(cond, a, b) as i128);
            }
            Op::Extend { dst, src, width, signed } => {
                let a = self.int(src.0)?;
                self.set_int(dst.0, extend(a, width.into(), signed));
            }
            Op::LoadCtx { dst, offset, width, signed } => {
                let bytes: Vec<i128> = (0..width as u64).map(|i| byte(self.env.ctx(offset as u64 + i))).collect();
                self.set_int(dst.0, extend(le_value(&bytes), width.into(), signed));
            }
            Op::LoadSlot { dst, slot, offset, width } => {
                self.check_slot(slot.0 as usize, offset.into(), width.into())?;
                let v = le_value(&self.read_slot(slot.0 as usize, offset.into(), width.into()));
                self.set_int(dst.0, v);
            }
            Op::StoreSlot { slot, offset, width, src } => {
                self.check_slot(slot.0 as usize, offset.into(), width.into())?;
                let v = self.operand(src)?;
                self.write_slot(slot.0 as usize, offset.into(), &le_bytes(v, width.into()));
            }
            Op::ZeroSlot { slot } => {
                let size = *self.func.slots.get(slot.0 as usize).ok_or(Fault::OutOfBounds)?;
                self.write_slot(slot.0 as usize, 0, &vec![0; size as usize]);
            }
            Op::Call { dst, helper } => {
                let result = match helper {
                    Helper::GetCurrentComm { slot } => {
                        self.check_slot(slot.0 as usize, 0, 16)?;
                        let comm: Vec<i128> = (0..16).map(|i| byte(self.env.comm(i))).collect();
                        self.write_slot(slot.0 as usize, 0, &comm);
                        0
                    }
                    Helper::ProbeReadStr { slot, len, .. } => {
                        self.check_slot(slot.0 as usize, 0, len.into())?;
                        let mut copied = self.env.string(self.calls);
                        copied.truncate(len as usize);
                        self.write_slot(slot.0 as usize, 0, &copied);
                        self.env.helper(self.calls)
                    }
                    Helper::ProbeRead { slot, len, .. } => {
                        self.check_slot(slot.0 as usize, 0, len.into())?;
                        let mut copied = self.env.string(self.calls);
                        copied.truncate(len as usize);
                        self.write_slot(slot.0 as usize, 0, &copied);
                        self.env.helper(self.calls)
                    }
                    // The record is the slot's first `len` bytes; the buffer keeps it when the
                    // helper succeeds (0), and loses it otherwise.
                    Helper::RingbufOutput { map, slot, len } => {
                        let decl = self.map(map)?;
                        self.check_slot(slot.0 as usize, 0, len.into())?;
                        if decl.kind != MapType::RingBuf {
                            return Err(Fault::IllTyped);
                        }
                        let result = self.env.helper(self.calls);
                        if norm(result) == 0 {
                            let record = self.read_slot(slot.0 as usize, 0, len.into());
                            self.map_state[map].push((Vec::new(), record));
                        }
                        result
                    }
                    // The id is the environment's; nothing the program reads changes.
                    Helper::GetStackId { map, .. } => {
                        if self.map(map)?.kind != MapType::StackTrace {
                            return Err(Fault::IllTyped);
                        }
                        self.env.helper(self.calls)
                    }
                    _ => self.env.helper(self.calls),
                };
                self.calls += 1;
                if let Some(d) = dst {
                    self.set_int(d.0, result);
                }
            }
            Op::MapLookup { dst, map, key } => {
                let decl = self.map(map)?;
                self.check_slot(key.0 as usize, 0, decl.key_size.into())?;
                let k = self.read_slot(key.0 as usize, 0, decl.key_size.into());
                let v = if self.exists(map, &k) { Value::Ptr(map, k) } else { Value::Null };
                self.regs.insert(dst.0, v);
            }
            Op::MapUpdate { map, key, value, flags } => {
                let decl = self.map(map)?;
                self.check_slot(key.0 as usize, 0, decl.key_size.into())?;
                self.check_slot(value.0 as usize, 0, decl.value_size.into())?;
                let k = self.read_slot(key.0 as usize, 0, decl.key_size.into());
                let v = self.read_slot(value.0 as usize, 0, decl.value_size.into());
                let exists = self.exists(map, &k);
                let allowed = match flags {
                    0 => true,
                    1 => !exists,
                    2 => exists,
                    _ => false,
                };
                let room = is_array(decl.kind) || exists || self.map_state[map].len() < decl.max_entries as usize;
                if allowed && room {
                    assoc_set(&mut self.map_state[map], k, v);
                }
            }
            Op::MapDelete { map, key } => {
                let decl = self.map(map)?;
                self.check_slot(key.0 as usize, 0, decl.key_size.into())?;
                let k = self.read_slot(key.0 as usize, 0, decl.key_size.into());
                if !is_array(decl.kind) {
                    self.map_state[map].retain(|(stored, _)| *stored != k);
                }
            }
            Op::LoadPtr { dst, ptr, offset, width } => {
                let (m, key, _) = self.ptr(ptr.0, offset.into(), width.into())?;
                let stored =
                    self.map_state[m].iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).unwrap_or_default();
                let bytes: Vec<i128> =
                    (0..width as usize).map(|i| stored.get(offset as usize + i).copied().unwrap_or(0)).collect();
                self.set_int(dst.0, le_value(&bytes));
            }
            Op::StorePtr { ptr, offset, width, src } => {
                let (m, key, decl) = self.ptr(ptr.0, offset.into(), width.into())?;
                let v = self.operand(src)?;
                let bytes = le_bytes(v, width.into());
                let stored = self.map_state[m].iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
                match stored {
                    Some(stored) => assoc_set(&mut self.map_state[m], key, list_write(&stored, offset.into(), &bytes)),
                    None if is_array(decl.kind) => {
                        let zeros = vec![0; decl.value_size as usize];
                        assoc_set(&mut self.map_state[m], key, list_write(&zeros, offset.into(), &bytes));
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }

    fn next(&self, term: &Terminator) -> Result<Option<Block>, Fault> {
        Ok(match *term {
            Terminator::Jump(b) => Some(b),
            Terminator::Branch { cond, lhs, rhs, then, otherwise } => {
                let (a, b) = (self.int(lhs.0).map_err(|_| Fault::IllTyped)?, self.operand(rhs)?);
                Some(if eval_cond(cond, a, b) { then } else { otherwise })
            }
            Terminator::BranchNull { ptr, is_null, not_null } => match self.reg(ptr.0) {
                Value::Null => Some(is_null),
                Value::Ptr(..) => Some(not_null),
                Value::Int(_) => return Err(Fault::IllTyped),
            },
            Terminator::Return => None,
        })
    }

    /// `observe` of `proofs/Semantics.v` for the run from the entry with `fuel` blocks.
    fn run(mut self, fuel: usize) -> Vec<i128> {
        let mut block = self.func.entry;
        let mut total = 0i128;
        for step in 1..=fuel {
            let Some(bb) = self.func.cfg.node_weight(block) else { return vec![1, Fault::BadBlock as i128] };
            for inst in &bb.insts {
                if let Err(f) = self.op(&inst.op) {
                    return vec![1, f as i128];
                }
                total += coq::op_cost(&inst.op, self.maps, &cost) as i128;
            }
            total += cost(CostItem::of_terminator(&bb.term)) as i128;
            match self.next(&bb.term) {
                Err(f) => return vec![1, f as i128],
                Ok(Some(next)) => block = next,
                Ok(None) => return self.observe(total, step),
            }
        }
        vec![2]
    }

    fn observe(&self, total: i128, steps: usize) -> Vec<i128> {
        let mut out = vec![0, total, steps as i128];
        for r in 0..self.func.vregs.len() as u32 {
            out.push(match self.reg(r) {
                Value::Int(z) => z,
                Value::Null => -1,
                Value::Ptr(..) => -2,
            });
        }
        for (slot, &size) in self.func.slots.iter().enumerate() {
            out.extend(self.read_slot(slot, 0, size.into()));
        }
        for entries in &self.map_state {
            out.push(entries.len() as i128);
            for (k, v) in entries {
                out.extend(k);
                out.extend(v);
            }
        }
        out
    }
}

/// The integers of each `= [ ... ]` that `Compute` printed, in order.
fn computed_lists(stdout: &str) -> Vec<Vec<i128>> {
    let mut lists = Vec::new();
    let mut rest = stdout;
    while let Some(start) = rest.find("= [") {
        let after = &rest[start + 3..];
        let end = after.find(']').expect("a computed list is closed");
        let items: String = after[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let list = items
            .split(';')
            .filter(|s| !s.is_empty())
            .map(|s| {
                let s = s.trim_end_matches("%Z").trim_start_matches('(').trim_end_matches(')');
                s.parse::<i128>().unwrap_or_else(|_| panic!("not an integer in Coq's output: `{s}`"))
            })
            .collect();
        lists.push(list);
        rest = &after[end..];
    }
    lists
}

#[test]
fn coq_semantics_agrees_with_a_rust_interpreter() {
    if !coq_available("coq_semantics_agrees_with_a_rust_interpreter") {
        return;
    }
    build_proofs();
    let dir = scratch_dir("round-trip");
    let present = |value: Vec<i128>| (vec![0; 16], value);
    let cases: Vec<(&str, Vec<TestEnv>)> = vec![
        (
            NULL_CHECK_JOIN,
            vec![
                TestEnv { seed: 3, maps: vec![vec![]] },
                TestEnv { seed: 5, maps: vec![vec![present(vec![255, 255, 255, 255, 255, 255, 255, 255])]] },
                TestEnv { seed: 9, maps: vec![vec![(vec![1; 16], vec![7; 8])]] },
            ],
        ),
        (
            ARITH,
            vec![
                TestEnv { seed: 0, maps: vec![vec![], vec![]] },
                TestEnv { seed: 100, maps: vec![vec![], vec![]] },
                TestEnv { seed: 100, maps: vec![vec![], vec![(vec![1; 8], vec![2; 8]), (vec![3; 8], vec![4; 8])]] },
                TestEnv { seed: 17, maps: vec![vec![(vec![2, 0, 0, 0], vec![9; 16])], vec![]] },
                TestEnv { seed: 200, maps: vec![vec![], vec![(vec![0; 8], vec![1; 8])]] },
            ],
        ),
        (
            NULL_DEREF,
            vec![
                TestEnv { seed: 1, maps: vec![vec![]] },
                TestEnv { seed: 2, maps: vec![vec![(vec![0; 8], vec![42, 0, 0, 0, 0, 0, 0, 0])]] },
            ],
        ),
        (
            STR_READ,
            vec![
                // seed 0: the user string is empty, the kernel one 13 bytes (within its bound).
                TestEnv { seed: 0, maps: vec![vec![]] },
                // seed 5: 35 and 8 bytes; the helper result is positive, so the map is updated.
                TestEnv { seed: 5, maps: vec![vec![]] },
                // seed 7: the kernel string (22 bytes) is cut at its bound of 16.
                TestEnv { seed: 7, maps: vec![vec![(vec![1; 64], vec![2; 8])]] },
            ],
        ),
        (
            FOR_SUM,
            vec![
                TestEnv { seed: 0, maps: vec![vec![]] },
                TestEnv {
                    seed: 1,
                    maps: vec![vec![(vec![1, 0, 0, 0], vec![5, 1, 0, 0, 0, 0, 0, 0]), (vec![3, 0, 0, 0], vec![7; 8])]],
                },
            ],
        ),
        (
            GUARDED_LOOP,
            vec![
                // ctx byte 16 is (112 + seed) mod 256: 112 clamped to 5 runs, 1 run, none.
                TestEnv { seed: 0, maps: vec![vec![]] },
                TestEnv { seed: 145, maps: vec![vec![]] },
                TestEnv { seed: 144, maps: vec![vec![(vec![0, 0, 0, 0], vec![9; 8])]] },
            ],
        ),
        (
            NESTED_LOOP,
            vec![
                // seed 243 makes ctx byte 16 equal 99: the inner body leaves at once.
                TestEnv { seed: 0, maps: vec![] },
                TestEnv { seed: 243, maps: vec![] },
            ],
        ),
        (LOOP, vec![TestEnv { seed: 4, maps: vec![] }]),
        (
            EMIT,
            vec![
                // seed 0: the output (the first call) returns 0, so the buffer keeps the record.
                TestEnv { seed: 0, maps: vec![vec![], vec![]] },
                // seed 3: it fails; the drop counter's element, unwritten, becomes 1.
                TestEnv { seed: 3, maps: vec![vec![], vec![]] },
                // seed 4: it fails with an earlier record kept and the counter at 255.
                TestEnv {
                    seed: 4,
                    maps: vec![vec![(vec![0; 4], vec![255, 0, 0, 0, 0, 0, 0, 0])], vec![(vec![], vec![9; 3])]],
                },
            ],
        ),
        (
            STACKS,
            vec![
                // seed 2: a user stack id of 2000006, then the kernel one: the map is updated.
                TestEnv { seed: 2, maps: vec![vec![], vec![], vec![]] },
                // seed 3000: 3000009000 is negative as a signed 32-bit value: an error, no update.
                TestEnv { seed: 3000, maps: vec![vec![], vec![], vec![]] },
            ],
        ),
    ];
    let mut compared = 0;
    for (text, envs) in cases {
        let m = module(text);
        let func = &m.functions[0];
        let (mut file, _) = tight_export(&m);
        let ident = coq::coq_identifier(&func.name);
        // Enough for every loop below to run to its end.
        let fuel = func.cfg.node_count() + 200;
        let mut expected = Vec::new();
        for (i, env) in envs.iter().enumerate() {
            file.push_str(&format!("\nDefinition test_env_{i} : env := {}.\n", env.coq()));
            file.push_str(&format!(
                "Compute observe {ident} {} (run {ident}_costs {ident} test_env_{i} {fuel}).\n",
                func.vregs.len()
            ));
            expected.push(Interp::new(func, &m.maps, env).run(fuel));
        }
        let output = coqc(&dir, &proof_file_name(func), &file);
        assert!(output.status.success(), "{}\n{file}", log(&output));
        let computed = computed_lists(&String::from_utf8_lossy(&output.stdout));
        assert_eq!(computed.len(), expected.len(), "one Compute per environment:\n{}", log(&output));
        for (i, (coq, rust)) in computed.iter().zip(&expected).enumerate() {
            assert_eq!(
                coq, rust,
                "`{}` in environment {i}: Coq (left) and the Rust interpreter (right) differ",
                func.name
            );
            compared += 1;
        }
        // The runs are not all alike: the environments reach different outcomes.
        if envs.len() > 1 {
            assert!(
                expected.windows(2).any(|w| w[0] != w[1]),
                "environments of `{}` all give {:?}",
                func.name,
                expected[0]
            );
        }
    }
    assert_eq!(compared, 26);
}
