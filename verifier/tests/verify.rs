//! Verifier checks on hand-built IR: each function names the codes it must produce.

mod common;

use ppis_ir::*;
use ppis_verifier::{verify, Obligation, Status, Verdict, VerifyOptions};

fn run(module: &Module) -> Verdict {
    let profile = common::test_profile();
    verify(module, &VerifyOptions { profile: &profile, budget_percent: 0.5, cpus: 2 })
}

/// A builder for a tracepoint probe declaring 10 events/s, so the overhead check passes.
fn builder() -> FunctionBuilder {
    let mut b = FunctionBuilder::new("f", CtxKind::Tracepoint, span(0));
    b.set_probe(ProbeMeta { trigger: Trigger::Tracepoint, rate: Some((10, span(0))) });
    b
}

fn span(n: u32) -> Span {
    Span { start: n, end: n + 1 }
}

fn map() -> Map {
    Map { name: "m".into(), kind: MapType::Hash, key_size: 8, value_size: 8, max_entries: 16 }
}

/// Runs the verifier on one function and returns the diagnostic codes with their span starts.
fn check(func: Function) -> Vec<(&'static str, u32)> {
    let module = Module { maps: vec![map()], functions: vec![func] };
    run(&module).diagnostics.iter().map(|d| (d.code, d.primary.span.start)).collect()
}

/// `lookup; [null check]; load` with the key in a zeroed slot.
fn lookup_then_load(null_check: bool) -> Function {
    let mut b = builder();
    let key = b.new_slot(8);
    let p = b.new_vreg(VregType::MapValue(0));
    let v = b.new_vreg(VregType::Scalar);
    b.push(Op::ZeroSlot { slot: key }, span(1));
    b.push(Op::MapLookup { dst: p, map: 0, key }, span(2));
    if null_check {
        let (found, missing) = (b.new_block(), b.new_block());
        b.terminate(Terminator::BranchNull { ptr: p, is_null: missing, not_null: found }, span(3));
        b.switch_to(found);
        b.push(Op::LoadPtr { dst: v, ptr: p, offset: 0, width: 8 }, span(4));
    } else {
        b.push(Op::LoadPtr { dst: v, ptr: p, offset: 0, width: 8 }, span(5));
    }
    b.finish()
}

#[test]
fn unchecked_lookup_is_rejected_at_the_access() {
    assert_eq!(check(lookup_then_load(false)), vec![("E0401", 5)]);
}

#[test]
fn checked_lookup_is_accepted() {
    assert_eq!(check(lookup_then_load(true)), vec![]);
}

#[test]
fn access_on_the_null_edge_is_rejected() {
    let mut b = builder();
    let key = b.new_slot(8);
    let p = b.new_vreg(VregType::MapValue(0));
    b.push(Op::ZeroSlot { slot: key }, span(1));
    b.push(Op::MapLookup { dst: p, map: 0, key }, span(2));
    let (found, missing) = (b.new_block(), b.new_block());
    b.terminate(Terminator::BranchNull { ptr: p, is_null: missing, not_null: found }, span(3));
    b.switch_to(missing);
    b.push(Op::StorePtr { ptr: p, offset: 0, width: 8, src: Operand::Imm(1) }, span(7));
    assert_eq!(check(b.finish()), vec![("E0401", 7)]);
}

/// Two lookups into the same register, each checked, joining at one access: proven on
/// every path, so accepted (the shape lowering uses for insert-then-aggregate).
#[test]
fn join_of_two_checked_paths_is_accepted_but_reassignment_kills_the_proof() {
    let build = |reassign_after_check: bool| {
        let mut b = builder();
        let key = b.new_slot(8);
        let p = b.new_vreg(VregType::MapValue(0));
        b.push(Op::ZeroSlot { slot: key }, span(1));
        b.push(Op::MapLookup { dst: p, map: 0, key }, span(2));
        let (apply, insert, done) = (b.new_block(), b.new_block(), b.new_block());
        b.terminate(Terminator::BranchNull { ptr: p, is_null: insert, not_null: apply }, span(3));
        b.switch_to(insert);
        b.push(Op::MapLookup { dst: p, map: 0, key }, span(4));
        b.terminate(Terminator::BranchNull { ptr: p, is_null: done, not_null: apply }, span(5));
        b.switch_to(apply);
        if reassign_after_check {
            b.push(Op::MapLookup { dst: p, map: 0, key }, span(6));
        }
        b.push(Op::StorePtr { ptr: p, offset: 0, width: 8, src: Operand::Imm(1) }, span(8));
        b.terminate(Terminator::Jump(done), span(9));
        b.finish()
    };
    assert_eq!(check(build(false)), vec![]);
    assert_eq!(check(build(true)), vec![("E0401", 8)]);
}

/// `v = 0; do { v += 1 } while v < bound`, the bound an immediate or a context value.
fn counting_loop(bound: Option<i64>) -> Module {
    let mut b = builder();
    let v = b.new_vreg(VregType::Scalar);
    let n = b.new_vreg(VregType::Scalar);
    b.push(Op::Mov { dst: v, src: Operand::Imm(0) }, span(1));
    let rhs = match bound {
        Some(bound) => Operand::Imm(bound),
        None => {
            b.push(Op::LoadCtx { dst: n, offset: 16, width: 8, signed: false }, span(1));
            Operand::Reg(n)
        }
    };
    let (head, exit) = (b.new_block(), b.new_block());
    b.terminate(Terminator::Jump(head), span(2));
    b.switch_to(head);
    b.push(Op::Alu { op: AluOp::Add, dst: v, lhs: v, rhs: Operand::Imm(1) }, span(3));
    b.terminate(Terminator::Branch { cond: Cond::Ult, lhs: v, rhs, then: head, otherwise: exit }, span(4));
    Module { maps: vec![], functions: vec![b.finish()] }
}

#[test]
fn an_unbounded_cycle_is_rejected_at_its_test() {
    let verdict = run(&counting_loop(None));
    let codes: Vec<_> = verdict.diagnostics.iter().map(|d| (d.code, d.primary.span.start)).collect();
    assert_eq!(codes, vec![("E0400", 4)]);
    assert!(!verdict.functions[0].acyclic);
    assert!(verdict.functions[0].cost.is_none());
}

#[test]
fn a_constant_bound_loop_is_accepted_with_its_trip_count() {
    let verdict = run(&counting_loop(Some(10)));
    assert!(!verdict.has_errors(), "{:?}", verdict.diagnostics);
    let facts = &verdict.functions[0];
    assert!(!facts.acyclic);
    assert_eq!(facts.loops.len(), 1);
    assert_eq!((facts.loops[0].trips, facts.loops[0].step, facts.loops[0].bound_hi), (10, 1, 10));
    let cost = facts.cost.as_ref().expect("a bounded loop has a cost");
    assert_eq!(cost.loops.len(), 1);
    assert_eq!(cost.loops[0].total_ps, 10 * cost.loops[0].iteration_ps + cost.loops[0].header_ps);
    // The explanation runs the loop block 10 times, then its test once more.
    let times: Vec<u64> = cost.worst_path.iter().filter(|s| s.block == cost.loops[0].header).map(|s| s.times).collect();
    assert!(times.contains(&10) && times.contains(&1), "{times:?}");
    let explained = ppis_verifier::explain_cost(facts, verdict.cpus, &|s: Span| format!("@{}", s.start));
    insta::assert_snapshot!("loop_explain_cost", explained);
}

#[test]
fn stack_and_instruction_limits() {
    let mut b = builder();
    for _ in 0..65 {
        let s = b.new_slot(8);
        b.push(Op::ZeroSlot { slot: s }, span(1));
    }
    assert_eq!(check(b.finish()), vec![("E0403", 0)]);

    let mut b = builder();
    let v = b.new_vreg(VregType::Scalar);
    for _ in 0..ppis_verifier::MAX_INSTRUCTIONS {
        b.push(Op::Mov { dst: v, src: Operand::Imm(1) }, span(1));
    }
    assert_eq!(check(b.finish()), vec![("E0402", 0)]);
}

#[test]
fn facts_count_instructions_stack_and_longest_path() {
    let module = Module { maps: vec![map()], functions: vec![lookup_then_load(true)] };
    let facts = &run(&module).functions[0];
    // entry: zero, lookup, br.null (3); found: load, ret (2); missing: ret (1).
    assert_eq!((facts.instructions, facts.stack_bytes, facts.longest_path, facts.acyclic), (6, 8, 5, true));
}

/// An aggregation (insert-then-add on a per-CPU map) with a rate: every obligation holds.
const AGGREGATION: &str = "map m0 calls: percpu_hash key 16 value 8 max 1024

fn probe0(ctx: tracepoint) trigger tracepoint rate 20000 {
  slot s0: 16
  slot s1: 8
  v0: *calls?
bb0:
  call get_current_comm(s0, 16)
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

#[test]
fn every_obligation_of_an_aggregation_is_proven() {
    let module = parse_module(AGGREGATION).unwrap();
    let verdict = run(&module);
    assert!(verdict.diagnostics.is_empty(), "{:?}", verdict.diagnostics);
    let facts = &verdict.functions[0];
    let statuses: Vec<(Obligation, Status)> = facts.obligations.iter().map(|o| (o.obligation, o.status)).collect();
    assert!(statuses.iter().all(|(_, s)| *s == Status::Proven), "{statuses:?}");
    assert_eq!(statuses.len(), 11, "{statuses:?}");
    // 100 trigger + bb0 (5+30, 5+60, 1) + bb2 (1, 5+170, 5+60, 1) + bb1 (2, 1, 2, 1) + bb3 (1) = 450 ns
    let cost = facts.cost.as_ref().unwrap();
    assert_eq!(cost.bound_ps, 450_000);
    assert_eq!(cost.worst_blocks, vec![0, 2, 1, 3]);
    assert_eq!(cost.smt, ppis_verifier::smt::SmtOutcome::Confirmed);
}

#[test]
fn certificate_and_cost_explanation() {
    let module = parse_module(AGGREGATION).unwrap();
    let verdict = run(&module);
    let cert = ppis_verifier::certificate(
        &module,
        &verdict,
        &ppis_verifier::CertificateInputs { source: b"probe source", bytecode: b"\x95\0\0\0\0\0\0\0" },
    );
    assert!(cert.accepted);
    let json = cert.to_json();
    assert_eq!(ppis_verifier::Certificate::from_json(&json).unwrap(), cert);
    insta::assert_snapshot!("aggregation_certificate", json);
    let explained = ppis_verifier::explain_cost(&verdict.functions[0], verdict.cpus, &|s: Span| {
        let line = AGGREGATION[..s.start as usize].matches('\n').count() + 1;
        format!("line {line}")
    });
    insta::assert_snapshot!("aggregation_explain_cost", explained);
}

#[test]
fn a_rejected_probe_has_a_rejecting_certificate() {
    let text = AGGREGATION.replace("rate 20000 ", "rate 2000000 ");
    let module = parse_module(&text).unwrap();
    let verdict = run(&module);
    let cert =
        ppis_verifier::certificate(&module, &verdict, &ppis_verifier::CertificateInputs { source: b"", bytecode: b"" });
    assert!(!cert.accepted && !cert.probes[0].accepted);
    let overhead = cert.probes[0].obligations.iter().find(|o| o.obligation == Obligation::Overhead).unwrap();
    assert_eq!((overhead.status, overhead.detail.as_str()), (Status::Violated, "refuted: E0410"));
}

/// Bad input must give diagnostics, never a panic: dangling references built by hand.
#[test]
fn dangling_references_are_malformed_not_panics() {
    let mut b = builder();
    let p = b.new_vreg(VregType::MapValue(7));
    b.push(Op::MapLookup { dst: p, map: 7, key: Slot(3) }, span(1));
    b.push(Op::LoadPtr { dst: Vreg(40), ptr: p, offset: 0, width: 3 }, span(2));
    let codes = check(b.finish());
    assert!(!codes.is_empty() && codes.iter().all(|(c, _)| *c == "E0412"), "{codes:?}");
}
