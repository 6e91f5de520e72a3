//! `clear m;` becomes a record of the reserved event type the runtime acts on: the language
//! and the runtime spell its name and field the same way (neither depends on the other), and
//! the manifest describes it as a `u32` map index right after the record id.

#[path = "../../lang/tests/common/mod.rs"]
mod common;

use ppis_compiler::driver::{compile, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_manifest::profile::CostProfile;
use ppis_manifest::ScalarType;

#[test]
fn the_language_and_the_runtime_agree_on_the_clear_record() {
    assert_eq!(ppis_lang::hir::CLEAR_EVENT, ppis_runtime::clear::CLEAR_EVENT);
    assert_eq!(ppis_lang::hir::CLEAR_EVENT_MAP_FIELD, ppis_runtime::clear::CLEAR_EVENT_MAP_FIELD);
}

#[test]
fn clear_sends_the_map_index_through_the_event_ring_buffer() {
    let source = "map first: count;\nmap second: count[u32] max 64;\n\
                  probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s { first.inc(); second[pid].inc(); }\n\
                  probe interval:s:1 { clear second; }\n";
    let options = CompileOptions { lower: LowerOptions::default(), profile: CostProfile::reference(), cpus: 2 };
    let (compiled, diagnostics) = compile(source, &common::FakeTargets, &options);
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:#?}"));
    let events = compiled.lowered.manifest.events.as_ref().expect("clear needs the ring buffer");
    let [clear] = &events.types[..] else { panic!("one record type: {:#?}", events.types) };
    assert_eq!(clear.name, ppis_runtime::clear::CLEAR_EVENT);
    assert_eq!(clear.program, "probe1");
    let fields: Vec<(&str, u32, ScalarType)> = clear.fields.iter().map(|f| (f.name.as_str(), f.offset, f.ty)).collect();
    assert_eq!(fields, [("map", 4, ScalarType::Int { bytes: 4, signed: false })]);
    // The index the record carries is `second`'s: its place in the manifest's maps.
    assert_eq!(compiled.lowered.manifest.maps[1].name, "second");
    // Only the clearing probe sends records.
    let sends = |index: usize| {
        compiled.lowered.module.functions[index]
            .cfg
            .node_weights()
            .flat_map(|block| &block.insts)
            .any(|inst| matches!(inst.op, ppis_ir::Op::Call { helper: ppis_ir::Helper::RingbufOutput { .. }, .. }))
    };
    assert!(!sends(0) && sends(1));
}
