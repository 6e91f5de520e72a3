//! eBPF instruction encoding: the 8-byte `Insn` slot, opcode constants and constructors.
//!
//! Constants follow the kernel's `include/uapi/linux/bpf.h` / `bpf_common.h` names so that the
//! encoder and the disassembler share one vocabulary.

/// Instruction classes (low 3 bits of the opcode).
pub const CLASS_LD: u8 = 0x00;
pub const CLASS_LDX: u8 = 0x01;
pub const CLASS_ST: u8 = 0x02;
pub const CLASS_STX: u8 = 0x03;
pub const CLASS_ALU: u8 = 0x04;
pub const CLASS_JMP: u8 = 0x05;
pub const CLASS_JMP32: u8 = 0x06;
pub const CLASS_ALU64: u8 = 0x07;

/// Operand source bit of ALU and JMP opcodes: immediate (`K`) or register (`X`).
pub const SRC_K: u8 = 0x00;
pub const SRC_X: u8 = 0x08;

/// Memory access sizes (bits 3-4 of load/store opcodes).
pub const SIZE_W: u8 = 0x00;
pub const SIZE_H: u8 = 0x08;
pub const SIZE_B: u8 = 0x10;
pub const SIZE_DW: u8 = 0x18;

/// Memory access modes (bits 5-7 of load/store opcodes).
pub const MODE_IMM: u8 = 0x00;
pub const MODE_MEM: u8 = 0x60;

/// ALU operations (high 4 bits).
pub const ALU_ADD: u8 = 0x00;
pub const ALU_SUB: u8 = 0x10;
pub const ALU_MUL: u8 = 0x20;
pub const ALU_DIV: u8 = 0x30;
pub const ALU_OR: u8 = 0x40;
pub const ALU_AND: u8 = 0x50;
pub const ALU_LSH: u8 = 0x60;
pub const ALU_RSH: u8 = 0x70;
pub const ALU_NEG: u8 = 0x80;
pub const ALU_MOD: u8 = 0x90;
pub const ALU_XOR: u8 = 0xa0;
pub const ALU_MOV: u8 = 0xb0;
pub const ALU_ARSH: u8 = 0xc0;

/// Jump operations (high 4 bits).
pub const JMP_JA: u8 = 0x00;
pub const JMP_JEQ: u8 = 0x10;
pub const JMP_JGT: u8 = 0x20;
pub const JMP_JGE: u8 = 0x30;
pub const JMP_JSET: u8 = 0x40;
pub const JMP_JNE: u8 = 0x50;
pub const JMP_JSGT: u8 = 0x60;
pub const JMP_JSGE: u8 = 0x70;
pub const JMP_CALL: u8 = 0x80;
pub const JMP_EXIT: u8 = 0x90;
pub const JMP_JLT: u8 = 0xa0;
pub const JMP_JLE: u8 = 0xb0;
pub const JMP_JSLT: u8 = 0xc0;
pub const JMP_JSLE: u8 = 0xd0;

/// Opcode of the first half of the two-slot `ld_imm64` instruction.
pub const LD_IMM64: u8 = CLASS_LD | SIZE_DW | MODE_IMM;

/// Register numbers with a fixed role in the calling convention.
pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R4: u8 = 4;
pub const R5: u8 = 5;
pub const R6: u8 = 6;
pub const R7: u8 = 7;
pub const R8: u8 = 8;
pub const R9: u8 = 9;
/// Read-only frame pointer.
pub const R10: u8 = 10;

/// One 8-byte eBPF instruction slot (`ld_imm64` occupies two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    /// Little-endian encoding as the kernel and ELF objects expect on x86-64 / arm64.
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut bytes = [0u8; 8];
        bytes[0] = self.code;
        bytes[1] = (self.dst & 0x0f) | ((self.src & 0x0f) << 4);
        bytes[2..4].copy_from_slice(&self.off.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.imm.to_le_bytes());
        bytes
    }

    /// Decodes one little-endian slot (inverse of [`Insn::to_bytes`]).
    pub fn from_bytes(bytes: [u8; 8]) -> Insn {
        Insn {
            code: bytes[0],
            dst: bytes[1] & 0x0f,
            src: bytes[1] >> 4,
            off: i16::from_le_bytes([bytes[2], bytes[3]]),
            imm: i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }

    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }

    /// `dst OP= src` (64-bit, register operand).
    pub fn alu64_reg(op: u8, dst: u8, src: u8) -> Insn {
        Insn::new(CLASS_ALU64 | SRC_X | op, dst, src, 0, 0)
    }

    /// `dst OP= imm` (64-bit; `imm` is sign-extended to 64 bits).
    pub fn alu64_imm(op: u8, dst: u8, imm: i32) -> Insn {
        Insn::new(CLASS_ALU64 | SRC_K | op, dst, 0, 0, imm)
    }

    /// `dst = src` (64-bit).
    pub fn mov64_reg(dst: u8, src: u8) -> Insn {
        Insn::alu64_reg(ALU_MOV, dst, src)
    }

    /// `dst = imm` (sign-extended to 64 bits).
    pub fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn::alu64_imm(ALU_MOV, dst, imm)
    }

    /// `wdst = wsrc`: copies the low 32 bits and zeroes the upper 32.
    pub fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn::new(CLASS_ALU | SRC_X | ALU_MOV, dst, src, 0, 0)
    }

    /// `dst = -dst` (64-bit).
    pub fn neg64(dst: u8) -> Insn {
        Insn::new(CLASS_ALU64 | SRC_K | ALU_NEG, dst, 0, 0, 0)
    }

    /// Both halves of `dst = imm64` (with `src` = 0: a plain constant, or a map reference
    /// once a loader patches it through a relocation).
    pub fn ld_imm64(dst: u8, imm: i64) -> [Insn; 2] {
        [Insn::new(LD_IMM64, dst, 0, 0, imm as i32), Insn::new(0, 0, 0, 0, (imm >> 32) as i32)]
    }

    /// `dst = *(size *)(src + off)`, zero-extended.
    pub fn load(size: u8, dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(CLASS_LDX | MODE_MEM | size, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store_reg(size: u8, dst: u8, off: i16, src: u8) -> Insn {
        Insn::new(CLASS_STX | MODE_MEM | size, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn store_imm(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
        Insn::new(CLASS_ST | MODE_MEM | size, dst, 0, off, imm)
    }

    /// `if dst OP src goto +off` (64-bit compare).
    pub fn jmp_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(CLASS_JMP | SRC_X | op, dst, src, off, 0)
    }

    /// `if dst OP imm goto +off` (64-bit compare against the sign-extended immediate).
    pub fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(CLASS_JMP | SRC_K | op, dst, 0, off, imm)
    }

    /// `goto +off`.
    pub fn ja(off: i16) -> Insn {
        Insn::new(CLASS_JMP | JMP_JA, 0, 0, off, 0)
    }

    /// `call helper#id`.
    pub fn call(helper_id: i32) -> Insn {
        Insn::new(CLASS_JMP | JMP_CALL, 0, 0, 0, helper_id)
    }

    pub fn exit() -> Insn {
        Insn::new(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0)
    }

    /// True for the first half of an `ld_imm64` (the next slot belongs to it).
    pub fn is_ld_imm64(&self) -> bool {
        self.code == LD_IMM64
    }
}

/// The load/store size code for an access of `width` bytes (1, 2, 4 or 8).
pub fn size_code(width: u8) -> Option<u8> {
    match width {
        1 => Some(SIZE_B),
        2 => Some(SIZE_H),
        4 => Some(SIZE_W),
        8 => Some(SIZE_DW),
        _ => None,
    }
}

/// Kernel helper function ids (`enum bpf_func_id`), shared with the bundle loader.
pub use ppis_manifest::helper_ids as helper_id;
