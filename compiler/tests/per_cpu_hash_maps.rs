//! Per-CPU hash maps (`percpu_hash`, `lru_percpu_hash`) end to end through the compiler: the
//! kernel map types and manifest entries, the verifier's race check (a read-modify-write is
//! not a race: each CPU has its own value), its growth check (W0400 for `percpu_hash` without
//! `delete`, as for `hash`; never for the LRU variant nor for keyed aggregations, which are
//! per-CPU hashes too), the cost profile's `percpu_hash` / `lru_hash` prices and the load-time
//! checker (`ppis_bundle::pcc`).

#[path = "../../lang/tests/common/mod.rs"]
mod common;
mod loader_check;

use ppis_compiler::driver::{compile, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_ir::MapType;
use ppis_manifest::profile::CostProfile;

fn options() -> CompileOptions {
    CompileOptions { lower: LowerOptions::default(), profile: CostProfile::reference(), cpus: 2 }
}

const SOURCE: &str = "map bytes: percpu_hash[u32] -> u64 max 1024;\n\
                      map recent: lru_percpu_hash[u32] -> u64 max 64;\n\
                      map flagged: percpu_hash[u32] -> u64 max 64 lru;\n\
                      map calls: count[u32] max 64;\n\
                      probe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    \
                          bytes[tid] = (bytes[tid] ?? 0) + 1;\n    \
                          recent[tid] = (recent[tid] ?? 0) + 1;\n    \
                          flagged[pid] = 1;\n    \
                          calls[pid].inc();\n\
                      }\n";

#[test]
fn per_cpu_hashes_get_per_cpu_kernel_types_and_per_cpu_manifest_entries() {
    let (compiled, diagnostics) = compile(SOURCE, &common::FakeTargets, &options());
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:#?}"));
    let kinds: Vec<(&str, MapType)> =
        compiled.lowered.module.maps.iter().take(4).map(|map| (map.name.as_str(), map.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("bytes", MapType::PerCpuHash),
            ("recent", MapType::LruPerCpuHash),
            ("flagged", MapType::LruPerCpuHash),
            ("calls", MapType::PerCpuHash)
        ],
        "{:#?}",
        compiled.lowered.module.maps
    );
    for info in compiled.lowered.manifest.maps.iter().take(3) {
        // Read as plain maps whose per-CPU values the runtime sums.
        assert_eq!(info.kind, ppis_manifest::MapKind::Hash, "{info:#?}");
        assert!(info.per_cpu, "{info:#?}");
    }
}

#[test]
fn read_modify_write_is_no_race_and_only_the_non_lru_user_map_can_only_grow() {
    let (compiled, diagnostics) = compile(SOURCE, &common::FakeTargets, &options());
    assert!(compiled.is_some(), "{diagnostics:#?}");
    assert!(!diagnostics.iter().any(|d| d.code == "E0411"), "{diagnostics:#?}");
    // `bytes` only grows; `recent` and `flagged` evict; `calls` is an aggregation.
    let growth: Vec<&str> = diagnostics.iter().filter(|d| d.code == "W0400").map(|d| d.message.as_str()).collect();
    assert_eq!(growth.len(), 1, "{diagnostics:#?}");
    assert!(growth[0].contains("`bytes`"), "{growth:?}");
    let help = diagnostics.iter().find(|d| d.code == "W0400").and_then(|d| d.help.clone()).unwrap_or_default();
    assert!(help.contains("lru_percpu_hash"), "{help}");

    // A `delete` somewhere bounds it.
    let deleting = SOURCE.replace("calls[pid].inc();", "calls[pid].inc();\n    delete bytes[tid];");
    let (_, diagnostics) = compile(&deleting, &common::FakeTargets, &options());
    assert!(!diagnostics.iter().any(|d| d.code == "W0400"), "{diagnostics:#?}");

    // The same read-modify-write on a shared hash map is a race.
    let shared = SOURCE.replace("percpu_hash[u32] -> u64 max 1024", "hash[u32] -> u64 max 1024");
    let (compiled, diagnostics) = compile(&shared, &common::FakeTargets, &options());
    assert!(compiled.is_none() && diagnostics.iter().any(|d| d.code == "E0411"), "{diagnostics:#?}");
}

#[test]
fn per_cpu_hash_operations_are_priced_from_the_profiles_percpu_hash_and_lru_hash_fields() {
    let cost = |source: &str, opts: &CompileOptions| {
        let (compiled, diagnostics) = compile(source, &common::FakeTargets, opts);
        let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:#?}"));
        compiled.verdict.functions[0].cost.as_ref().expect("bounded").bound_ns
    };
    let store = |kind: &str| {
        format!(
            "map m: {kind}[u32] -> u64 max 1024;\n\
             probe uprobe:/usr/bin/app:handle_request rate <= 10/s {{\n    m[tid] = nsecs;\n    delete m[tid];\n}}\n"
        )
    };
    let (mut cheap, mut dear) = (options(), options());
    cheap.profile.helpers.map_update_elem.percpu_hash = 10.0;
    dear.profile.helpers.map_update_elem.percpu_hash = 10_000.0;
    let (cheap_ns, dear_ns) = (cost(&store("percpu_hash"), &cheap), cost(&store("percpu_hash"), &dear));
    assert!(dear_ns - cheap_ns >= 9_990.0 - 1e-6, "percpu_hash: cheap {cheap_ns} ns, dear {dear_ns} ns");
    // The LRU variant costs what the profile's LRU prices say.
    let (mut cheap, mut dear) = (options(), options());
    cheap.profile.helpers.map_update_elem.lru_hash = 10.0;
    dear.profile.helpers.map_update_elem.lru_hash = 10_000.0;
    let (cheap_ns, dear_ns) = (cost(&store("lru_percpu_hash"), &cheap), cost(&store("lru_percpu_hash"), &dear));
    assert!(dear_ns - cheap_ns >= 9_990.0 - 1e-6, "lru_percpu_hash: cheap {cheap_ns} ns, dear {dear_ns} ns");
}

#[test]
fn the_load_time_checker_accepts_per_cpu_hash_maps() {
    let source = SOURCE.replace("calls[pid].inc();", "calls[pid].inc();\n    delete bytes[tid];");
    let profile = CostProfile::reference();
    let (compiled, diagnostics) = compile(&source, &common::FakeTargets, &options());
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:#?}"));
    loader_check::assert_loader_accepts(&compiled, &source, &profile);
}
