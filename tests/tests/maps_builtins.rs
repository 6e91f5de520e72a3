//! The later maps and builtins against the kernel: `cgroup`, `lru_hash`, `percpu_hash`,
//! `lru_percpu_hash`, `stats`, `clear` and `buf`, each with a workload that makes a known number of
//! events.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use ppis_tests::{child_command, map_number, parse_maps, require_kernel, run_ppisc, scratch_dir, workload, write_file};

const SYSCALLS: u64 = 100;

/// Where cgroup v2 is mounted (from `/proc/self/mountinfo`), if it is.
fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Fields: id parent major:minor root mount-point options.. - fstype source super-options.
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        before.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// The inode number of `pid`'s cgroup v2 directory: what `bpf_get_current_cgroup_id` returns
/// for its tasks. `None` (with the reason) when cgroup v2 is not mounted here.
fn cgroup_v2_id(pid: u32) -> Result<u64, String> {
    let mount = cgroup2_mount().ok_or("cgroup v2 is not mounted")?;
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
    // The v2 line is `0::/PATH`.
    let path = membership
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("the process has no cgroup v2 membership line")?;
    let directory = mount.join(path.trim_start_matches('/'));
    std::fs::metadata(&directory).map(|meta| meta.ino()).map_err(|e| format!("stat {}: {e}", directory.display()))
}

#[test]
fn cgroup_builtin_is_the_inode_of_the_workloads_cgroup_v2_directory() {
    if !require_kernel("cgroup_builtin_is_the_inode_of_the_workloads_cgroup_v2_directory") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "cgroup_builtin");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let probe = write_file(
        &dir,
        "cgroup.ppl",
        "map by_cgroup: count[u64] max 64;\n\
         probe tracepoint:syscalls:sys_enter_getpid rate <= 1k/s when pid == cpid {\n    \
             by_cgroup[cgroup].inc();\n\
         }\n",
    );
    let child = child_command(&workload, &["syscalls", &SYSCALLS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    let maps = parse_maps(&outcome);
    let by_cgroup = maps["by_cgroup"].as_object().expect("a keyed count is a JSON object");
    assert_eq!(by_cgroup.len(), 1, "the workload ran in one cgroup\n{}", outcome.transcript());
    let (cgroup, count) = by_cgroup.iter().next().expect("one entry");
    assert_eq!(count.as_u64(), Some(SYSCALLS), "{}", outcome.transcript());
    let cgroup: u64 = cgroup.parse().expect("the key is a number");
    // The child is ppisc's, in ppisc's (and so this test's) cgroup.
    match cgroup_v2_id(std::process::id()) {
        Ok(expected) => assert_eq!(cgroup, expected, "{}", outcome.transcript()),
        Err(reason) => {
            eprintln!("cgroup id not compared with the cgroup v2 directory: {reason}; only checking it is non-zero");
            assert_ne!(cgroup, 0, "{}", outcome.transcript());
        }
    }
}

#[test]
fn lru_maps_keep_the_most_recent_keys_and_stats_keep_count_total_and_average() {
    if !require_kernel("lru_maps_keep_the_most_recent_keys_and_stats_keep_count_total_and_average") {
        return;
    }
    const CALLS: u64 = 200;
    const LRU_ENTRIES: u64 = 8;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "lru_and_stats");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let target = workload.display();
    // 200 distinct keys into maps of 8 entries: a plain hash would refuse 192 inserts; the
    // LRU maps evict instead, so the last key is always there.
    let probe = write_file(
        &dir,
        "lru.ppl",
        format!(
            "map last: lru_hash[u64] -> u64 max {LRU_ENTRIES};\n\
             map recent: count[u64] max {LRU_ENTRIES} lru;\n\
             map sizes: stats;\n\
             map sizes_by_parity: stats[u64] max 2;\n\
             probe uprobe:{target}:ppis_workload_add rate <= 1000/s {{\n    \
                 last[arg0] = arg0 * 10;\n    \
                 recent[arg0].inc();\n    \
                 sizes.record(arg0);\n    \
                 sizes_by_parity[arg0 % 2].record(arg0);\n\
             }}\n"
        ),
    );
    let child = child_command(&workload, &["calls", &CALLS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    // No growth warning: an LRU map never fills up.
    assert!(!outcome.stderr.contains("W0400"), "{}", outcome.transcript());
    let maps = parse_maps(&outcome);
    for name in ["last", "recent"] {
        let entries = maps[name].as_object().expect("a keyed map is a JSON object");
        assert!(
            !entries.is_empty() && entries.len() as u64 <= LRU_ENTRIES,
            "{name} holds at most {LRU_ENTRIES} keys\n{}",
            outcome.transcript()
        );
        // The last call's key was inserted last, so it was not evicted.
        assert!(entries.contains_key(&CALLS.to_string()), "{name} lost the newest key\n{}", outcome.transcript());
    }
    assert_eq!(maps["last"][CALLS.to_string()].as_u64(), Some(CALLS * 10), "{}", outcome.transcript());
    let total = CALLS * (CALLS + 1) / 2;
    assert_eq!(maps["sizes"], serde_json::json!({"count": CALLS, "sum": total, "avg": total / CALLS}));
    // Odd x in 1..=200: 100 of them summing to 100^2; even: 100 summing to 100 * 101.
    assert_eq!(
        maps["sizes_by_parity"],
        serde_json::json!({
            "0": {"count": 100, "sum": 10100, "avg": 101},
            "1": {"count": 100, "sum": 10000, "avg": 100},
        }),
        "{}",
        outcome.transcript()
    );
}

#[test]
fn clear_empties_maps_between_two_phases_of_the_workload() {
    if !require_kernel("clear_empties_maps_between_two_phases_of_the_workload") {
        return;
    }
    const BEFORE: u64 = 30;
    const AFTER: u64 = 12;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "clear_maps");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let target = workload.display();
    let probe = write_file(
        &dir,
        "clear.ppl",
        format!(
            "map calls: count;\n\
             map by_pid: count[u32] max 16;\n\
             map sizes: stats;\n\
             map slots: array[4] -> u64;\n\
             probe tracepoint:syscalls:sys_enter_getpid rate <= 1k/s when pid == cpid {{\n    \
                 calls.inc();\n    \
                 by_pid[pid].inc();\n    \
                 sizes.record(2);\n\
             }}\n\
             probe uprobe:{target}:ppis_workload_add rate <= 10/s {{\n    \
                 slots[1] = 7;\n    \
                 clear calls;\n    \
                 clear by_pid;\n    \
                 clear sizes;\n    \
                 clear slots;\n\
             }}\n"
        ),
    );
    let child = child_command(&workload, &["clear-phases", &BEFORE.to_string(), &AFTER.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    assert!(!outcome.stderr.contains("warning"), "{}", outcome.transcript());
    let maps = parse_maps(&outcome);
    // The workload waits 2 s after the clearing call, time for the runtime (polling every
    // 20 ms) to read the record even on a loaded machine: only the second phase's syscalls
    // remain. A runtime starved for longer would clear the second phase too (calls 0).
    assert_eq!(map_number(&maps, "calls"), AFTER, "{}", outcome.transcript());
    let by_pid = maps["by_pid"].as_object().expect("a keyed count is a JSON object");
    assert_eq!(by_pid.len(), 1, "{}", outcome.transcript());
    assert_eq!(by_pid.values().next().and_then(|v| v.as_u64()), Some(AFTER), "{}", outcome.transcript());
    assert_eq!(maps["sizes"], serde_json::json!({"count": AFTER, "sum": 2 * AFTER, "avg": 2}));
    // The array slot was set before the clear in the same event: zeroed, so not shown.
    assert_eq!(maps["slots"].get("1").and_then(|v| v.as_u64()).unwrap_or(0), 0, "{}", outcome.transcript());
}

#[test]
fn buf_reads_raw_bytes_that_key_maps_compare_and_print_as_hex() {
    if !require_kernel("buf_reads_raw_bytes_that_key_maps_compare_and_print_as_hex") {
        return;
    }
    const CALLS: u64 = 10;
    // The workload's KNOWN_BYTES; a NUL in the middle, which a string read would stop at.
    const KNOWN_HEX: &str = "010200fe417f80ff";
    const KNOWN_ESCAPED: &str = r"\x01\x02\x00\xfe\x41\x7f\x80\xff";
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "buf_bytes");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let target = workload.display();
    let probe = write_file(
        &dir,
        "buf.ppl",
        format!(
            "map seen: count[buf[8]] max 16;\n\
             map same: count;\n\
             map differ: count;\n\
             probe uprobe:{target}:ppis_workload_bytes rate <= 1k/s {{\n    \
                 let data = buf(arg0, 8);\n    \
                 seen[data].inc();\n    \
                 if data == buf(arg1, 8) {{ same.inc(); }}\n    \
                 if data != buf(arg1, 8) {{ differ.inc(); }}\n\
             }}\n"
        ),
    );
    let child = child_command(&workload, &["bytes", &CALLS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    let maps = parse_maps(&outcome);
    assert_eq!(maps["seen"], serde_json::json!({ KNOWN_HEX: CALLS }), "{}", outcome.transcript());
    // Every other call's `expected` differs in its last byte only.
    assert_eq!(map_number(&maps, "same"), CALLS / 2, "{}", outcome.transcript());
    assert_eq!(map_number(&maps, "differ"), CALLS / 2, "{}", outcome.transcript());

    let text = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "-c", &child]);
    text.assert_success();
    assert!(
        text.stdout.contains(&format!("@seen[{KNOWN_ESCAPED}]: {CALLS}")),
        "bytes print hex-escaped like bpftrace\n{}",
        text.transcript()
    );
}

#[test]
fn per_cpu_hash_maps_sum_every_cpus_values_per_key() {
    if !require_kernel("per_cpu_hash_maps_sum_every_cpus_values_per_key") {
        return;
    }
    const CALLS: u64 = 200;
    const KEYS: u64 = 4;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "per_cpu_hashes");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let target = workload.display();
    // The workload calls with x = 1..=200, moving to the next CPU every 4 calls: each key
    // `x % 4` is written on every CPU, each CPU's read-modify-write sees only its own value,
    // and only the sum over the CPUs is the per-key total.
    let probe = write_file(
        &dir,
        "per_cpu_hashes.ppl",
        format!(
            "map totals: percpu_hash[u64] -> u64 max 16;\n\
             map hits: lru_percpu_hash[u64] -> u32 max 16;\n\
             map on_cpu: count[u32] max 1024;\n\
             probe uprobe:{target}:ppis_workload_add rate <= 1000/s {{\n    \
                 totals[arg0 % {KEYS}] = (totals[arg0 % {KEYS}] ?? 0) + arg0;\n    \
                 if let n = hits[arg0 % {KEYS}] {{\n        \
                     hits[arg0 % {KEYS}] = (n + 1) as u32;\n    \
                 }} else {{\n        \
                     hits[arg0 % {KEYS}] = 1;\n    \
                 }}\n    \
                 on_cpu[cpu].inc();\n\
             }}\n"
        ),
    );
    let child = child_command(&workload, &["calls-across-cpus", &CALLS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    // A read-modify-write of a per-CPU map is no race (no E0411); the plain `percpu_hash`
    // without `delete` can only grow (W0400), the LRU one evicts.
    assert!(outcome.stderr.contains("W0400") && outcome.stderr.contains("`totals`"), "{}", outcome.transcript());
    assert!(!outcome.stderr.contains("`hits`"), "{}", outcome.transcript());
    let maps = parse_maps(&outcome);
    let expected_totals: serde_json::Map<String, serde_json::Value> =
        (0..KEYS).map(|key| (key.to_string(), (1..=CALLS).filter(|x| x % KEYS == key).sum::<u64>().into())).collect();
    assert_eq!(maps["totals"], serde_json::Value::Object(expected_totals), "{}", outcome.transcript());
    let expected_hits: serde_json::Map<String, serde_json::Value> =
        (0..KEYS).map(|key| (key.to_string(), (CALLS / KEYS).into())).collect();
    assert_eq!(maps["hits"], serde_json::Value::Object(expected_hits), "{}", outcome.transcript());
    // The events really ran on every CPU the workload says it moved to (a sum over one CPU
    // would prove nothing on a multi-CPU host).
    let cpus_line = outcome.stdout.lines().find_map(|line| line.strip_prefix("cpus=")).unwrap_or_else(|| {
        panic!("the workload printed no `cpus=` line\n{}", outcome.transcript());
    });
    let workload_cpus: Vec<String> =
        cpus_line.trim_matches(|c| c == '[' || c == ']').split(", ").map(str::to_string).collect();
    let on_cpu = maps["on_cpu"].as_object().expect("a keyed count is a JSON object");
    let mut seen_cpus: Vec<String> = on_cpu.keys().cloned().collect();
    let mut expected_cpus = workload_cpus.clone();
    seen_cpus.sort();
    expected_cpus.sort();
    assert_eq!(seen_cpus, expected_cpus, "{}", outcome.transcript());
    assert_eq!(on_cpu.values().filter_map(serde_json::Value::as_u64).sum::<u64>(), CALLS, "{}", outcome.transcript());
}
