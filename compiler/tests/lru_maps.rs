//! LRU maps (`lru_hash`, the `lru` flag) end to end through the compiler: the kernel map
//! types, the verifier's growth check (an LRU map is bounded: no W0400), and the cost
//! profile's `lru_hash` prices.

#[path = "../../lang/tests/common/mod.rs"]
mod common;

use ppis_compiler::driver::{compile, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_ir::MapType;
use ppis_manifest::profile::CostProfile;

fn options() -> CompileOptions {
    CompileOptions { lower: LowerOptions::default(), profile: CostProfile::reference(), cpus: 2 }
}

const SOURCE: &str = "map start: lru_hash[u32] -> u64 max 1024;\n\
                      map seen: count[u32] max 64 lru;\n\
                      map plain: hash[u32] -> u64 max 1024;\n\
                      probe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    \
                          start[tid] = nsecs;\n    \
                          seen[pid].inc();\n    \
                          plain[tid] = nsecs;\n\
                      }\n";

#[test]
fn lru_maps_get_lru_kernel_types_and_no_growth_warning() {
    let (compiled, diagnostics) = compile(SOURCE, &common::FakeTargets, &options());
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:#?}"));
    let kinds: Vec<(&str, MapType)> =
        compiled.lowered.module.maps.iter().take(3).map(|map| (map.name.as_str(), map.kind)).collect();
    assert_eq!(
        kinds,
        [("start", MapType::LruHash), ("seen", MapType::LruPerCpuHash), ("plain", MapType::Hash)],
        "{:#?}",
        compiled.lowered.module.maps
    );
    // Only the plain hash map can only grow; the two LRU maps are bounded by eviction.
    let growth: Vec<&str> = diagnostics.iter().filter(|d| d.code == "W0400").map(|d| d.message.as_str()).collect();
    assert_eq!(growth.len(), 1, "{diagnostics:#?}");
    assert!(growth[0].contains("`plain`"), "{growth:?}");
}

#[test]
fn lru_map_operations_are_priced_from_the_profiles_lru_hash_fields() {
    let mut cheap = options();
    let mut dear = options();
    cheap.profile.helpers.map_update_elem.lru_hash = 10.0;
    dear.profile.helpers.map_update_elem.lru_hash = 10_000.0;
    let source = "map start: lru_hash[u32] -> u64 max 1024;\n\
                  probe uprobe:/usr/bin/app:handle_request rate <= 10/s {\n    start[tid] = nsecs;\n}\n";
    let cost = |opts: &CompileOptions| {
        let (compiled, diagnostics) = compile(source, &common::FakeTargets, opts);
        let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:#?}"));
        compiled.verdict.functions[0].cost.as_ref().expect("bounded").bound_ns
    };
    let (cheap_ns, dear_ns) = (cost(&cheap), cost(&dear));
    assert!(dear_ns - cheap_ns >= 9_990.0 - 1e-6, "cheap {cheap_ns} ns, dear {dear_ns} ns");
}
