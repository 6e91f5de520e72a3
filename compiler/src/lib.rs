//! ppis compiler: checked programs to IR, IR to eBPF, eBPF to an ELF object.
//!
//! Boundary: never loads anything into the kernel (that is `ppis-runtime`'s job); it only
//! reads host facts (tracefs formats, ELF symbols) through `targets`.

pub mod calibrate;
pub mod codegen;
pub mod coq;
pub mod disasm;
pub mod driver;
pub mod elf;
pub mod lower;
pub mod modules;
pub mod targets;
