//! Verifier checks on hand-built IR: each function names the codes it must produce.

use ppis_ir::*;
use ppis_verifier::verify;

fn span(n: u32) -> Span {
    Span { start: n, end: n + 1 }
}

fn map() -> Map {
    Map { name: "m".into(), kind: MapType::Hash, key_size: 8, value_size: 8, max_entries: 16 }
}

/// Runs the verifier on one function and returns the diagnostic codes with their span starts.
fn check(func: Function) -> Vec<(&'static str, u32)> {
    let module = Module { maps: vec![map()], functions: vec![func] };
    verify(&module).diagnostics.iter().map(|d| (d.code, d.primary.span.start)).collect()
}

/// `lookup; [null check]; load` with the key in a zeroed slot.
fn lookup_then_load(null_check: bool) -> Function {
    let mut b = FunctionBuilder::new("f", CtxKind::Tracepoint, span(0));
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
    let mut b = FunctionBuilder::new("f", CtxKind::Tracepoint, span(0));
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
        let mut b = FunctionBuilder::new("f", CtxKind::Tracepoint, span(0));
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

#[test]
fn a_cycle_is_rejected_at_the_back_edge() {
    let mut b = FunctionBuilder::new("f", CtxKind::Tracepoint, span(0));
    let v = b.new_vreg(VregType::Scalar);
    b.push(Op::Mov { dst: v, src: Operand::Imm(0) }, span(1));
    let (head, exit) = (b.new_block(), b.new_block());
    b.terminate(Terminator::Jump(head), span(2));
    b.switch_to(head);
    b.push(Op::Alu { op: AluOp::Add, dst: v, lhs: v, rhs: Operand::Imm(1) }, span(3));
    b.terminate(Terminator::Branch { cond: Cond::Ult, lhs: v, rhs: Operand::Imm(10), then: head, otherwise: exit }, span(4));
    let module = Module { maps: vec![], functions: vec![b.finish()] };
    let verdict = verify(&module);
    let codes: Vec<_> = verdict.diagnostics.iter().map(|d| (d.code, d.primary.span.start)).collect();
    assert_eq!(codes, vec![("E0400", 4)]);
    assert!(!verdict.functions[0].acyclic);
}

#[test]
fn stack_and_instruction_limits() {
    let mut b = FunctionBuilder::new("f", CtxKind::Tracepoint, span(0));
    for _ in 0..65 {
        let s = b.new_slot(8);
        b.push(Op::ZeroSlot { slot: s }, span(1));
    }
    assert_eq!(check(b.finish()), vec![("E0403", 0)]);

    let mut b = FunctionBuilder::new("f", CtxKind::Tracepoint, span(0));
    let v = b.new_vreg(VregType::Scalar);
    for _ in 0..ppis_verifier::MAX_INSTRUCTIONS {
        b.push(Op::Mov { dst: v, src: Operand::Imm(1) }, span(1));
    }
    assert_eq!(check(b.finish()), vec![("E0402", 0)]);
}

#[test]
fn facts_count_instructions_stack_and_longest_path() {
    let module = Module { maps: vec![map()], functions: vec![lookup_then_load(true)] };
    let facts = &verify(&module).functions[0];
    // entry: zero, lookup, br.null (3); found: load, ret (2); missing: ret (1).
    assert_eq!((facts.instructions, facts.stack_bytes, facts.longest_path, facts.acyclic), (6, 8, 5, true));
}
