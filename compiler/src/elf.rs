//! Writes compiled programs, their maps and the manifest into one relocatable eBPF ELF object
//! that aya 0.13 (`aya::Ebpf::load`) and libbpf-style loaders accept.
//!
//! Conventions (checked against aya-obj 0.2.1, the version aya 0.13.1 uses):
//! - `license` section: NUL-terminated "GPL" (GPL-only helpers need it).
//! - Legacy `maps` section: one 20-byte `struct bpf_map_def { u32 type, key_size, value_size,
//!   max_entries, map_flags }` per map, each covered by a global STT_OBJECT symbol whose name is
//!   the map name and whose size is 20; aya turns every symbol of that section into a map, so
//!   nothing else may live there. No BTF is needed for such maps.
//! - Each program lives in a section named after its kind (`tracepoint/...`, `uprobe/...`,
//!   `uretprobe/...`; aya reads only the part before the first `/`) and is covered by a global
//!   STT_FUNC symbol with the program's byte size; aya names the program after that symbol.
//! - A map reference is `ld_imm64 rX, 0` with an `R_BPF_64_64` relocation (in `.rel<section>`)
//!   against the map's symbol; aya rewrites it to `src = BPF_PSEUDO_MAP_FD, imm = fd`.
//! - `.ppis.manifest` is a non-allocated data section, which aya ignores.
//! - The kernel limits object names to 15 bytes of `[A-Za-z0-9_.]`; aya truncates longer names
//!   but passes other characters through (and the kernel then rejects them), so symbol names are
//!   made safe with [`object_symbol_name`].

use crate::codegen::CompiledProgram;
use object::write::{Object, Relocation, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};
use std::collections::HashMap;

/// One program to place in the object: its ELF section name and its code.
pub struct ObjectProgram<'a> {
    /// e.g. `tracepoint/probe0`, `uprobe/probe1`, `uretprobe/probe2`.
    pub section: String,
    pub program: &'a CompiledProgram,
}

/// Size of the legacy `struct bpf_map_def` prefix ppis writes (type, key, value, max, flags).
pub const MAP_DEF_SIZE: usize = 20;

/// Name of the section holding the manifest JSON.
pub const MANIFEST_SECTION: &str = ".ppis.manifest";

/// `bpf_map_type` values of the IR's map kinds.
pub fn map_type_id(kind: ppis_ir::MapType) -> u32 {
    match kind {
        ppis_ir::MapType::Hash => 1,
        ppis_ir::MapType::Array => 2,
        ppis_ir::MapType::PerCpuHash => 5,
        ppis_ir::MapType::PerCpuArray => 6,
        ppis_ir::MapType::StackTrace => 7,
        ppis_ir::MapType::RingBuf => 27,
        ppis_ir::MapType::LruHash => 9,
        ppis_ir::MapType::LruPerCpuHash => 10,
    }
}

/// The symbol name a map or program gets in the object, and so the name under which aya
/// (`Ebpf::map`, `Ebpf::program_mut`) finds it: characters the kernel rejects in object names
/// become `_`. Names that are already identifiers are unchanged.
pub fn object_symbol_name(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' }).collect();
    if safe.is_empty() {
        "_".to_string()
    } else {
        safe
    }
}

/// Builds the object file. Map references in `programs` are indices into `maps`.
pub fn write_object(maps: &[ppis_ir::Map], programs: &[ObjectProgram], manifest_json: &str) -> Vec<u8> {
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);

    let license = obj.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    obj.append_section_data(license, b"GPL\0", 1);

    let mut map_symbols = Vec::with_capacity(maps.len());
    if !maps.is_empty() {
        // aya rejects a `maps` section without symbols, so it only exists when there are maps.
        let section = obj.add_section(Vec::new(), b"maps".to_vec(), SectionKind::Data);
        for map in maps {
            let mut def = Vec::with_capacity(MAP_DEF_SIZE);
            for field in [map_type_id(map.kind), map.key_size, map.value_size, map.max_entries, 0] {
                def.extend_from_slice(&field.to_le_bytes());
            }
            let offset = obj.append_section_data(section, &def, 4);
            map_symbols.push(obj.add_symbol(Symbol {
                name: object_symbol_name(&map.name).into_bytes(),
                value: offset,
                size: MAP_DEF_SIZE as u64,
                kind: SymbolKind::Data,
                scope: SymbolScope::Dynamic,
                weak: false,
                section: SymbolSection::Section(section),
                flags: SymbolFlags::None,
            }));
        }
    }

    let mut sections = HashMap::new();
    for program in programs {
        let section = *sections
            .entry(program.section.clone())
            .or_insert_with(|| obj.add_section(Vec::new(), program.section.clone().into_bytes(), SectionKind::Text));
        let code: Vec<u8> = program.program.insns.iter().flat_map(|i| i.to_bytes()).collect();
        let start = obj.append_section_data(section, &code, 8);
        obj.add_symbol(Symbol {
            name: object_symbol_name(&program.program.name).into_bytes(),
            value: start,
            size: code.len() as u64,
            kind: SymbolKind::Text,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: SymbolSection::Section(section),
            flags: SymbolFlags::None,
        });
        for reloc in &program.program.map_relocs {
            // A reference to a map the module does not have cannot be resolved; the code
            // generator validated map ids against the same module, so this does not happen.
            let Some(&symbol) = map_symbols.get(reloc.map) else { continue };
            let added = obj.add_relocation(
                section,
                Relocation {
                    offset: start + 8 * reloc.insn_index as u64,
                    symbol,
                    addend: 0,
                    flags: RelocationFlags::Elf { r_type: object::elf::R_BPF_64_64 },
                },
            );
            debug_assert!(added.is_ok(), "R_BPF_64_64 with a zero addend is always representable");
        }
    }

    let manifest = obj.add_section(Vec::new(), MANIFEST_SECTION.as_bytes().to_vec(), SectionKind::Other);
    obj.append_section_data(manifest, manifest_json.as_bytes(), 1);

    // Writing only fails for constructs this function never creates (unsupported section or
    // relocation kinds, Mach-O/COFF limits), so a failure is a bug here, not bad input.
    obj.write().unwrap_or_else(|e| panic!("internal error: writing the eBPF object failed: {e}"))
}
