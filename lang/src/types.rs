//! The types of the language: sized integers, bool and fixed-size strings.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// Integer of `bytes` (1, 2, 4, 8) bytes.
    Int {
        bytes: u8,
        signed: bool,
    },
    Bool,
    /// NUL-padded byte string of exactly `len` bytes (C `char[len]`).
    Str {
        len: u32,
    },
    /// A stack trace id (`ustack`/`kstack`), valid only as a map key: the kernel's signed
    /// stack id (`i32` at offset 0, negative when the walk failed) and, for user stacks, the
    /// process id needed to symbolise it later (`u32` at offset 4; 0 for kernel stacks).
    /// `depth` is the most frames kept (1..=127).
    Stack {
        user: bool,
        depth: u8,
    },
    /// `buf[N]`: exactly `len` raw bytes read from memory by `buf(ptr, N)` (no NUL, may hold
    /// any byte); compared with `==`/`!=` against a `buf` of the same length.
    Buf {
        len: u32,
    },
}

/// Frames kept by a plain `ustack`/`kstack` (bpftrace's default and the kernel's maximum
/// `perf_event_max_stack` default).
pub const DEFAULT_STACK_DEPTH: u8 = 127;

impl Ty {
    pub const U8: Ty = Ty::Int { bytes: 1, signed: false };
    pub const U16: Ty = Ty::Int { bytes: 2, signed: false };
    pub const U32: Ty = Ty::Int { bytes: 4, signed: false };
    pub const U64: Ty = Ty::Int { bytes: 8, signed: false };
    pub const I8: Ty = Ty::Int { bytes: 1, signed: true };
    pub const I16: Ty = Ty::Int { bytes: 2, signed: true };
    pub const I32: Ty = Ty::Int { bytes: 4, signed: true };
    pub const I64: Ty = Ty::Int { bytes: 8, signed: true };

    /// Size in bytes when stored in a map key or value.
    pub fn size(self) -> u32 {
        match self {
            Ty::Int { bytes, .. } => bytes as u32,
            Ty::Bool => 1,
            Ty::Str { len } => len,
            Ty::Stack { .. } => 8,
            Ty::Buf { len } => len,
        }
    }
    /// Alignment in bytes when stored in a map key or value.
    pub fn align(self) -> u32 {
        match self {
            Ty::Int { bytes, .. } => bytes as u32,
            Ty::Bool | Ty::Str { .. } | Ty::Buf { .. } => 1,
            Ty::Stack { .. } => 8,
        }
    }
    pub fn is_int(self) -> bool {
        matches!(self, Ty::Int { .. })
    }
    pub fn is_signed(self) -> bool {
        matches!(self, Ty::Int { signed: true, .. })
    }
    /// Parses `u8`..`u64`, `i8`..`i64`, `bool`.
    pub fn from_name(name: &str) -> Option<Ty> {
        Some(match name {
            "u8" => Ty::U8,
            "u16" => Ty::U16,
            "u32" => Ty::U32,
            "u64" => Ty::U64,
            "i8" => Ty::I8,
            "i16" => Ty::I16,
            "i32" => Ty::I32,
            "i64" => Ty::I64,
            "bool" => Ty::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Int { bytes, signed } => write!(f, "{}{}", if *signed { 'i' } else { 'u' }, *bytes as u32 * 8),
            Ty::Bool => f.write_str("bool"),
            Ty::Str { len } => write!(f, "str[{len}]"),
            Ty::Stack { user, depth } => write!(f, "{}stack[{depth}]", if *user { 'u' } else { 'k' }),
            Ty::Buf { len } => write!(f, "buf[{len}]"),
        }
    }
}
