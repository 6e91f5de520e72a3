//! A hash map that is inserted into and never deleted from gets exactly one warning, the
//! verifier's W0400 with its fill rate: the checker's lints (W0002-W0005) deliberately do not
//! repeat it (`lang/src/check/lints.rs`), and stay silent on this otherwise clean program.

use ppis_compiler::driver::{compile, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_compiler::targets::HostTargets;

#[test]
fn a_growing_hash_map_is_reported_once_by_the_verifier() {
    if !std::path::Path::new("/sys/kernel/tracing/events/raw_syscalls").is_dir() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "tracefs is needed under CI");
        eprintln!("skipping: tracefs is not mounted (raw_syscalls tracepoints unknown)");
        return;
    }
    let source = "map started: hash[u32] -> u64 max 4096;\n\n\
                  probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s {\n    started[tid] = nsecs;\n}\n";
    let (compiled, diagnostics) =
        compile(source, &HostTargets, &CompileOptions::for_this_host(LowerOptions::default()));
    assert!(compiled.is_some(), "{diagnostics:?}");
    let codes: Vec<&str> = diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["W0400"], "{diagnostics:#?}");
    assert!(
        diagnostics[0].message.contains("fill"),
        "the verifier's message carries the fill rate: {}",
        diagnostics[0].message
    );
}
