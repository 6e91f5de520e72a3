//! Tracepoints filtered to the child started with `-c`: exact syscall counts, and the
//! enter/exit pairing pattern (hash map of start times plus a latency histogram).

use ppis_tests::{
    child_command, map_number, parse_maps, require_kernel, run_ppisc, scratch_dir, workload, write_file,
    MARKER_OPEN_FLAGS,
};

#[test]
fn openat_of_the_child_is_counted_exactly() {
    if !require_kernel("openat_of_the_child_is_counted_exactly") {
        return;
    }
    const OPENS: u64 = 37;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "openat_count");
    // Created here, before the workload starts, so that the workload's only opens of it are
    // the counted ones.
    let marker = write_file(&dir, "marker", "");
    // `pid == cpid` alone also counts the opens the dynamic loader and std make while the
    // child starts (ld.so.cache, libc.so.6, /proc/self/maps: 4 here, verified with strace), so
    // the exact count also requires the workload's own flag combination.
    let probe = write_file(
        &dir,
        "openat.ppl",
        format!(
            "map opens: count;\n\
             map opens_any: count;\n\
             probe tracepoint:syscalls:sys_enter_openat rate <= 1000/s when pid == cpid {{\n\
             \x20   opens_any.inc();\n\
             \x20   if args.flags == {MARKER_OPEN_FLAGS} {{ opens.inc(); }}\n\
             }}\n"
        ),
    );
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let child = child_command(&workload, &["openat", &OPENS.to_string(), &marker.to_string_lossy()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    assert!(outcome.stderr.contains("Attached 1 probe"), "{}", outcome.transcript());

    let maps = parse_maps(&outcome);
    assert_eq!(map_number(&maps, "opens"), OPENS, "{}", outcome.transcript());
    let any = map_number(&maps, "opens_any");
    // Bounded above too: a filter that let other processes through would count far more.
    assert!((OPENS..OPENS + 20).contains(&any), "opens_any = {any}, expected {OPENS} plus startup opens");
}

#[test]
fn syscall_latency_pairs_every_enter_with_its_exit() {
    if !require_kernel("syscall_latency_pairs_every_enter_with_its_exit") {
        return;
    }
    const GETPIDS: u64 = 500;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "syscall_latency");
    // exit_group never returns, so its sys_enter has no sys_exit: recording it would leave
    // one entry in `start` forever. The single-threaded workload makes no plain exit().
    let exit_group = libc::SYS_exit_group;
    let probe = write_file(
        &dir,
        "latency.ppl",
        format!(
            "map start: hash[u32] -> u64 max 10240;\n\
             map lat: hist[u64] max 512;\n\
             probe tracepoint:raw_syscalls:sys_enter rate <= 1000/s when pid == cpid {{\n\
             \x20   if args.id != {exit_group} {{ start[tid] = nsecs; }}\n\
             }}\n\
             probe tracepoint:raw_syscalls:sys_exit rate <= 1000/s when pid == cpid {{\n\
             \x20   if let t0 = start[tid] {{ lat[args.id].record(nsecs - t0); delete start[tid]; }}\n\
             }}\n"
        ),
    );
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let child = child_command(&workload, &["syscalls", &GETPIDS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    assert!(outcome.stderr.contains("Attached 2 probes"), "{}", outcome.transcript());

    let maps = parse_maps(&outcome);
    assert_eq!(maps.get("start"), Some(&serde_json::json!({})), "every enter must be paired\n{}", outcome.transcript());
    let lat = maps.get("lat").and_then(|lat| lat.as_object());
    let lat = lat.unwrap_or_else(|| panic!("lat is not an object\n{}", outcome.transcript()));
    assert!(!lat.is_empty(), "lat is empty\n{}", outcome.transcript());
    let getpid_key = libc::SYS_getpid.to_string();
    let getpid_buckets = lat.get(&getpid_key).and_then(|buckets| buckets.as_array());
    let getpid_buckets =
        getpid_buckets.unwrap_or_else(|| panic!("no histogram for getpid ({getpid_key})\n{}", outcome.transcript()));
    let mut recorded = 0;
    for bucket in getpid_buckets {
        let field = |name: &str| bucket.get(name).and_then(serde_json::Value::as_u64);
        let (Some(lo), Some(hi), Some(count)) = (field("lo"), field("hi"), field("count")) else {
            panic!("bucket {bucket} lacks lo/hi/count");
        };
        assert!(lo <= hi, "bucket {bucket} has lo > hi");
        recorded += count;
    }
    // At least the workload's own getpids; the runtime or libc may add a few.
    assert!((GETPIDS..GETPIDS + 20).contains(&recorded), "getpid recorded {recorded} times, expected {GETPIDS}");
}
