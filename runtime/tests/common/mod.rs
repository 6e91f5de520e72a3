//! Helpers shared by the kernel tests: the skip-or-fail rule, and hand-assembled objects
//! (the runtime is tested without the compiler).
// Each test file uses only some of the helpers.
#![allow(dead_code)]

use object::write::{Object, Relocation, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};
use ppis_manifest::{Attach, Manifest, MapInfo, MapKind, ProbeInfo, ScalarType, ValueLayout, MANIFEST_VERSION};

const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;

/// True when the kernel tests can run here; otherwise says why, and fails under `CI=true`.
pub fn kernel_available(test: &str) -> bool {
    let problem = if unsafe { libc::geteuid() } != 0 {
        Some("not running as root")
    } else if !std::path::Path::new("/sys/kernel/tracing/events").is_dir() {
        Some("tracefs is not mounted at /sys/kernel/tracing")
    } else {
        None
    };
    match problem {
        None => true,
        Some(problem) if std::env::var("CI").as_deref() == Ok("true") => panic!("{test}: {problem}, and CI=true"),
        Some(problem) => {
            eprintln!("skipping {test}: {problem}");
            false
        }
    }
}

/// One eBPF instruction: opcode, dst and src registers, offset, immediate.
pub fn insn(opcode: u8, dst: u8, src: u8, offset: i16, imm: i32) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes[0] = opcode;
    bytes[1] = (src << 4) | dst;
    bytes[2..4].copy_from_slice(&offset.to_le_bytes());
    bytes[4..8].copy_from_slice(&imm.to_le_bytes());
    bytes
}

/// `counts[0] += 1` on a per-CPU array called `map_name`, in section `section`, as
/// program `program`. Returns the ELF object.
pub fn counting_object(section: &str, program: &str, map_name: &str) -> Vec<u8> {
    let code: Vec<u8> = [
        insn(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0: the key
        insn(0xbf, 2, 10, 0, 0),  // r2 = r10
        insn(0x07, 2, 0, 0, -4),  // r2 += -4
        insn(0x18, 1, 0, 0, 0),   // r1 = map (ld_imm64, relocated)
        insn(0, 0, 0, 0, 0),
        insn(0x85, 0, 0, 0, 1), // call bpf_map_lookup_elem
        insn(0x15, 0, 0, 3, 0), // if r0 == 0 goto out
        insn(0x79, 1, 0, 0, 0), // r1 = *(u64 *)(r0 + 0)
        insn(0x07, 1, 0, 0, 1), // r1 += 1
        insn(0x7b, 0, 1, 0, 0), // *(u64 *)(r0 + 0) = r1
        insn(0xb7, 0, 0, 0, 0), // out: r0 = 0
        insn(0x95, 0, 0, 0, 0), // exit
    ]
    .concat();
    object_with(section, program, map_name, &code, Some(3 * 8))
}

/// An object with `code` as program `program` in `section`, a one-element per-CPU array
/// `map_name`, and, at `map_load_offset`, an `ld_imm64` relocated to that map.
pub fn object_with(section: &str, program: &str, map_name: &str, code: &[u8], map_load_offset: Option<u64>) -> Vec<u8> {
    let mut elf = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
    let text = elf.add_section(Vec::new(), section.as_bytes().to_vec(), SectionKind::Text);
    elf.append_section_data(text, code, 8);
    elf.add_symbol(Symbol {
        name: program.as_bytes().to_vec(),
        value: 0,
        size: code.len() as u64,
        kind: SymbolKind::Text,
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(text),
        flags: SymbolFlags::None,
    });
    let maps = elf.add_section(Vec::new(), b"maps".to_vec(), SectionKind::Data);
    // Legacy `struct bpf_map_def`: type, key size, value size, max entries, flags.
    let map_def: Vec<u8> =
        [BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 1, 0].iter().flat_map(|word: &u32| word.to_le_bytes()).collect();
    elf.append_section_data(maps, &map_def, 4);
    let map_symbol = elf.add_symbol(Symbol {
        name: map_name.as_bytes().to_vec(),
        value: 0,
        size: map_def.len() as u64,
        kind: SymbolKind::Data,
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(maps),
        flags: SymbolFlags::None,
    });
    let license = elf.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    elf.append_section_data(license, b"GPL\0", 1);
    if let Some(offset) = map_load_offset {
        let flags = RelocationFlags::Elf { r_type: object::elf::R_BPF_64_64 };
        elf.add_relocation(text, Relocation { offset, symbol: map_symbol, addend: 0, flags }).unwrap();
    }
    elf.write().unwrap()
}

pub fn manifest(attach: Attach) -> Manifest {
    Manifest {
        version: MANIFEST_VERSION,
        budget_percent: 1.0,
        probes: vec![ProbeInfo { program: "probe0".into(), attach, rate_per_sec: None, line: 1, activation: None }],
        maps: vec![MapInfo {
            name: "execs".into(),
            object_name: "execs".into(),
            kind: MapKind::Count,
            per_cpu: true,
            key: vec![],
            key_size: 4,
            bucket_offset: None,
            value_size: 8,
            value: ValueLayout::Scalar { ty: ScalarType::Int { bytes: 8, signed: false } },
        }],
        events: None,
    }
}

pub fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| word.to_string()).collect()
}
