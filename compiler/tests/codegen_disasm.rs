//! Snapshot tests of the eBPF the code generator emits for hand-built IR (every op and
//! terminator), of the object writer's output, and of code generation errors. No kernel needed.

mod codegen_fixtures;

use codegen_fixtures as fx;
use ppis_compiler::codegen::{self, Insn};
use ppis_compiler::disasm::{disassemble, disassemble_object};
use ppis_ir::{CtxKind, FunctionBuilder, Module, Op, Operand, Span, Terminator, VregType};

/// The thread id baked into fixtures for snapshots (the kernel test uses the real one).
const SNAPSHOT_TID: u32 = 4242;

fn listing(name: &str) -> String {
    let (module, _) = fx::module(SNAPSHOT_TID);
    let func = module.functions.iter().find(|f| f.name == name).expect("fixture exists");
    let program = codegen::compile_function(func, &module).unwrap_or_else(|e| panic!("{name}: {}", e.message));
    format!(
        "; {} insns, stack {} bytes\n{}",
        program.insns.len(),
        program.stack_size,
        disassemble(&program.insns, &program.reloc_names(&module.maps))
    )
}

#[test]
fn counter_disassembly() {
    insta::assert_snapshot!(listing("counter"));
}

#[test]
fn all_ops_disassembly() {
    insta::assert_snapshot!(listing("all_ops"));
}

#[test]
fn pressure_spills_values_live_across_a_call() {
    let text = listing("pressure");
    // More than four values (r6-r9) are live across the call, so some must be spilled to the
    // stack below the 4-byte key slot (rounded to 8).
    assert!(text.contains("*(u64 *)(r10 - 16) = "), "expected a spill store:\n{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn uprobe_disassembly() {
    insta::assert_snapshot!(listing("uprobe_body"));
}

#[test]
fn every_program_ends_in_exit_and_jumps_forward_inside_the_program() {
    let (module, _) = fx::module(SNAPSHOT_TID);
    for program in fx::compile_all(&module) {
        let insns = &program.insns;
        assert_eq!(insns.last().map(|i| i.code), Some(0x95), "{} must end with exit", program.name);
        for (i, insn) in insns.iter().enumerate() {
            let is_jump = insn.code & 0x07 == 0x05 && !matches!(insn.code, 0x85 | 0x95);
            if is_jump {
                let target = i as i64 + 1 + insn.off as i64;
                assert!(insn.off >= 0, "{}: backward jump at {i}", program.name);
                assert!(target < insns.len() as i64, "{}: jump at {i} leaves the program", program.name);
            }
        }
    }
}

#[test]
fn object_disassembly() {
    let (module, _) = fx::module(SNAPSHOT_TID);
    let compiled = fx::compile_all(&module);
    let bytes = fx::object(&module, &compiled);
    insta::assert_snapshot!(disassemble_object(&bytes).expect("object parses"));
}

#[test]
fn disassemble_object_rejects_garbage() {
    assert!(disassemble_object(b"not an elf").is_err());
}

#[test]
fn slots_over_512_bytes_are_an_error() {
    let span = Span::new(10, 20);
    let mut b = FunctionBuilder::new("huge", CtxKind::Tracepoint, span);
    let slot = b.new_slot(520);
    b.push(Op::ZeroSlot { slot }, span);
    b.terminate(Terminator::Return, span);
    let module = Module { maps: vec![], functions: vec![b.finish()] };
    let err = codegen::compile_function(&module.functions[0], &module).expect_err("520 bytes cannot fit");
    assert_eq!(err.span, span);
    insta::assert_snapshot!(err.message, @"probe `huge` needs 520 bytes of stack for its slots, over the eBPF limit of 512 bytes");
}

#[test]
fn spills_pushing_the_stack_over_512_bytes_are_an_error() {
    // 496 bytes of slots leave room for two spill slots; 12 values live across a call need 8.
    let span = Span::new(1, 2);
    let mut b = FunctionBuilder::new("crowded", CtxKind::Tracepoint, span);
    let slot = b.new_slot(496);
    b.push(Op::ZeroSlot { slot }, span);
    let values: Vec<_> = (0..12)
        .map(|i| {
            let v = b.new_vreg(VregType::Scalar);
            b.push(Op::Mov { dst: v, src: Operand::Imm(i) }, span);
            v
        })
        .collect();
    b.push(Op::Call { dst: None, helper: ppis_ir::Helper::KtimeGetNs }, span);
    for (i, v) in values.iter().enumerate() {
        b.push(Op::StoreSlot { slot, offset: 8 * i as u32, width: 8, src: Operand::Reg(*v) }, span);
    }
    b.terminate(Terminator::Return, span);
    let module = Module { maps: vec![], functions: vec![b.finish()] };
    let err = codegen::compile_function(&module.functions[0], &module).expect_err("spills cannot fit");
    insta::assert_snapshot!(err.message, @"probe `crowded` needs 560 bytes of stack (496 for slots, 64 for 8 spilled values), over the eBPF limit of 512 bytes");
}

#[test]
fn invalid_ir_is_an_error_not_a_panic() {
    let span = Span::new(3, 4);
    let mut b = FunctionBuilder::new("bad", CtxKind::Tracepoint, span);
    let slot = b.new_slot(8);
    let v = b.new_vreg(VregType::Scalar);
    b.push(Op::LoadSlot { dst: v, slot, offset: 4, width: 8 }, span);
    b.terminate(Terminator::Return, span);
    let module = Module { maps: vec![], functions: vec![b.finish()] };
    let err = codegen::compile_function(&module.functions[0], &module).expect_err("out of the slot");
    assert_eq!(err.span, span);
    insta::assert_snapshot!(err.message, @"access of 8 bytes at offset 4 is outside slot s0 (8 bytes)");

    let mut b = FunctionBuilder::new("bad_map", CtxKind::Tracepoint, span);
    let key = b.new_slot(8);
    let p = b.new_vreg(VregType::MapValue(3));
    b.push(Op::MapLookup { dst: p, map: 3, key }, span);
    b.terminate(Terminator::Return, span);
    let module = Module { maps: vec![], functions: vec![b.finish()] };
    let err = codegen::compile_function(&module.functions[0], &module).expect_err("no such map");
    insta::assert_snapshot!(err.message, @"map m3 is not declared in the module");
}

#[test]
fn tracepoint_common_fields_and_misaligned_ctx_reads_are_errors() {
    let span = Span::new(5, 6);
    for (offset, width, message) in [
        (4, 4, "tracepoint field at offset 4 is one of the common fields, which the kernel does not let eBPF programs read"),
        (10, 4, "context read of 4 bytes at offset 10 is not aligned to its size"),
    ] {
        let mut b = FunctionBuilder::new("ctx", CtxKind::Tracepoint, span);
        let v = b.new_vreg(VregType::Scalar);
        b.push(Op::LoadCtx { dst: v, offset, width, signed: false }, span);
        b.terminate(Terminator::Return, span);
        let module = Module { maps: vec![], functions: vec![b.finish()] };
        let err = codegen::compile_function(&module.functions[0], &module).expect_err("rejected");
        assert_eq!((err.message.as_str(), err.span), (message, span));
    }
}

#[test]
fn values_read_before_any_write_are_zeroed_in_the_prologue() {
    // v0 is assigned on one path only and read after the join: the kernel would reject the
    // read of an uninitialised register, so the prologue must zero it.
    let span = Span::default();
    let mut b = FunctionBuilder::new("maybe", CtxKind::Tracepoint, span);
    let slot = b.new_slot(8);
    let v = b.new_vreg(VregType::Scalar);
    let flag = b.new_vreg(VregType::Scalar);
    b.push(Op::LoadCtx { dst: flag, offset: 8, width: 4, signed: false }, span);
    let (set, join) = (b.new_block(), b.new_block());
    b.terminate(
        Terminator::Branch { cond: ppis_ir::Cond::Eq, lhs: flag, rhs: Operand::Imm(0), then: set, otherwise: join },
        span,
    );
    b.switch_to(set);
    b.push(Op::Mov { dst: v, src: Operand::Imm(9) }, span);
    b.terminate(Terminator::Jump(join), span);
    b.switch_to(join);
    b.push(Op::StoreSlot { slot, offset: 0, width: 8, src: Operand::Reg(v) }, span);
    b.terminate(Terminator::Return, span);
    let module = Module { maps: vec![], functions: vec![b.finish()] };
    let program = codegen::compile_function(&module.functions[0], &module).expect("compiles");
    insta::assert_snapshot!(disassemble(&program.insns, &[]));
}

#[test]
fn insn_encoding_round_trips() {
    let insn = Insn { code: 0x61, dst: 3, src: 10, off: -8, imm: -2 };
    assert_eq!(insn.to_bytes(), [0x61, 0xa3, 0xf8, 0xff, 0xfe, 0xff, 0xff, 0xff]);
    assert_eq!(Insn::from_bytes(insn.to_bytes()), insn);
}
