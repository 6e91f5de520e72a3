//! The object writer's ELF conventions, read back with the `object` crate: what aya 0.13
//! needs to find maps, programs and map relocations (see `ppis_compiler::elf`).

mod codegen_fixtures;

use codegen_fixtures as fx;
use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget, SectionKind, SymbolKind};
use ppis_compiler::elf::{self, ObjectProgram};

#[test]
fn object_follows_the_conventions_aya_reads() {
    let (module, _) = fx::module(1);
    let compiled = fx::compile_all(&module);
    let bytes = fx::object(&module, &compiled);
    let file = object::File::parse(&*bytes).expect("valid ELF");
    assert_eq!(file.architecture(), object::Architecture::Bpf);
    assert!(file.is_little_endian());

    let license = file.section_by_name("license").expect("license section");
    assert_eq!(license.data().unwrap(), b"GPL\0");

    let maps = file.section_by_name("maps").expect("maps section");
    let map_symbols: Vec<_> = file.symbols().filter(|s| s.section_index() == Some(maps.index())).collect();
    assert_eq!(map_symbols.len(), module.maps.len(), "only map symbols may live in `maps`");
    for (symbol, map) in map_symbols.iter().zip(&module.maps) {
        assert_eq!(symbol.name().unwrap(), map.name);
        assert_eq!(symbol.size(), elf::MAP_DEF_SIZE as u64);
        assert_eq!(symbol.kind(), SymbolKind::Data);
        assert!(symbol.is_global());
        let def = &maps.data().unwrap()[symbol.address() as usize..][..20];
        let field = |i: usize| u32::from_le_bytes(def[4 * i..4 * i + 4].try_into().unwrap());
        assert_eq!(
            [field(0), field(1), field(2), field(3), field(4)],
            [elf::map_type_id(map.kind), map.key_size, map.value_size, map.max_entries, 0]
        );
    }

    for (func, program) in module.functions.iter().zip(&compiled) {
        let section = file.section_by_name(&fx::section_for(func)).expect("program section");
        assert_eq!(section.kind(), SectionKind::Text, "aya only treats executable sections as programs");
        let symbol = file.symbol_by_name(&func.name).expect("program symbol");
        assert_eq!(symbol.kind(), SymbolKind::Text);
        assert_eq!(symbol.section_index(), Some(section.index()));
        assert_eq!(symbol.size(), 8 * program.insns.len() as u64);
        let relocations: Vec<_> = section.relocations().collect();
        assert_eq!(relocations.len(), program.map_relocs.len());
        for ((offset, reloc), expected) in relocations.iter().zip(&program.map_relocs) {
            assert_eq!(*offset, 8 * expected.insn_index as u64);
            assert_eq!(reloc.flags(), RelocationFlags::Elf { r_type: object::elf::R_BPF_64_64 });
            let RelocationTarget::Symbol(target) = reloc.target() else { panic!("relocation against a symbol") };
            assert_eq!(file.symbol_by_index(target).unwrap().name().unwrap(), module.maps[expected.map].name);
            // The loader patches an `ld_imm64 rX, 0`.
            assert_eq!(program.insns[expected.insn_index].code, 0x18);
            assert_eq!(program.insns[expected.insn_index].imm, 0);
        }
    }

    let manifest = file.section_by_name(elf::MANIFEST_SECTION).expect("manifest section");
    assert_eq!(manifest.data().unwrap(), fx::MANIFEST_JSON.as_bytes());
    assert_ne!(manifest.kind(), SectionKind::Text, "aya must not mistake the manifest for a program");
}

#[test]
fn programs_may_share_a_section() {
    let (module, _) = fx::module(1);
    let compiled = fx::compile_all(&module);
    let programs: Vec<ObjectProgram> =
        compiled.iter().take(2).map(|program| ObjectProgram { section: "tracepoint/shared".into(), program }).collect();
    let bytes = elf::write_object(&module.maps, &programs, "{}");
    let file = object::File::parse(&*bytes).expect("valid ELF");
    let section = file.section_by_name("tracepoint/shared").expect("one shared section");
    let second = file.symbol_by_name(&compiled[1].name).expect("second program");
    assert_eq!(second.address(), 8 * compiled[0].insns.len() as u64);
    let first_reloc_of_second =
        section.relocations().map(|(offset, _)| offset).filter(|o| *o >= second.address()).min();
    assert_eq!(first_reloc_of_second, Some(second.address() + 8 * compiled[1].map_relocs[0].insn_index as u64));
}

#[test]
fn unsafe_names_become_kernel_safe_symbols() {
    assert_eq!(elf::object_symbol_name("calls"), "calls");
    assert_eq!(elf::object_symbol_name("lat-by pid"), "lat_by_pid");
    assert_eq!(elf::object_symbol_name(""), "_");
}
