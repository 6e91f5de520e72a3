//! The loader's proof-carrying-code check (`ppis_bundle::pcc`, no compiler) accepts what the
//! later maps and builtins compile to: LRU map types, `stats`, the `cgroup` and `buf(ptr, N)`
//! helpers, the ring buffer record of `clear` and USDT sites (uprobes reading their arguments
//! from registers and user memory), with the certificate's cost confirmed.

#[path = "../../lang/tests/common/mod.rs"]
mod common;
mod loader_check;

use ppis_compiler::driver::{self, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_manifest::profile::CostProfile;

const SOURCE: &str = "map last_seen: lru_hash[u32] -> u64 max 64;\n\
                      map recent: count[u32] max 64 lru;\n\
                      map sizes: stats[u32] max 16;\n\
                      map by_cgroup: count[u64] max 64;\n\
                      map prefixes: count[buf[8]] max 64;\n\
                      map same: count;\n\
                      probe uprobe:/usr/bin/app:handle_request rate <= 1k/s {\n    \
                          last_seen[tid] = nsecs;\n    \
                          recent[pid].inc();\n    \
                          sizes[pid].record(arg1);\n    \
                          by_cgroup[cgroup].inc();\n    \
                          let prefix = buf(arg0, 8);\n    \
                          prefixes[prefix].inc();\n    \
                          if prefix == buf(arg1, 8) { same.inc(); }\n\
                      }\n\
                      probe tracepoint:sched:sched_switch rate <= 1k/s {\n    \
                          prefixes[buf(args.prev_state, 8)].inc();\n\
                      }\n\
                      probe usdt:/usr/bin/app:app:request rate <= 1k/s {\n    \
                          by_cgroup[arg1].inc();\n    \
                          sizes[arg0 as u32].record(arg2);\n\
                      }\n\
                      probe interval:s:1 {\n    \
                          clear recent;\n    \
                          clear sizes;\n\
                      }\n";

#[test]
fn the_load_time_checker_accepts_lru_maps_stats_cgroup_buf_clear_and_usdt() {
    let profile = CostProfile::reference();
    let options = CompileOptions { lower: LowerOptions::default(), profile: profile.clone(), cpus: 2 };
    let (compiled, diagnostics) = driver::compile(SOURCE, &common::FakeTargets, &options);
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:#?}"));
    loader_check::assert_loader_accepts(&compiled, SOURCE, &profile);
}
