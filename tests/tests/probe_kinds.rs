//! The probe kinds beyond tracepoints and uprobes against the real kernel: `begin`/`end` run
//! exactly once around the other probes, raw tracepoints count exact syscalls, `profile`
//! samples at its frequency, `interval` ticks at its period, and a wildcard tracepoint attaches
//! to every match with `probe` telling them apart.

use ppis_tests::{child_command, map_number, parse_maps, require_kernel, run_ppisc, scratch_dir, workload, write_file};

/// Per marked syscall of `ppis-workload getp N`.
const GETP_ROUNDS: u64 = 250;

#[test]
fn begin_and_end_each_run_exactly_once_around_the_other_probes() {
    if !require_kernel("begin_and_end_each_run_exactly_once_around_the_other_probes") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "begin_end");
    let getppid = libc::SYS_getppid;
    let probe = write_file(
        &dir,
        "begin_end.ppl",
        format!(
            "map begins: count;\n\
             map ends: count;\n\
             map events: count;\n\
             map begin_at: max;\n\
             map end_at: max;\n\
             map first_event_at: min;\n\
             map last_event_at: max;\n\
             probe begin {{ begins.inc(); begin_at.record(nsecs); }}\n\
             probe rawtracepoint:sys_enter rate <= 5k/s when pid == cpid && arg1 == {getppid} {{\n\
             \x20   events.inc(); first_event_at.record(nsecs); last_event_at.record(nsecs);\n\
             }}\n\
             probe end {{ ends.inc(); end_at.record(nsecs); }}\n"
        ),
    );
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let child = child_command(&workload, &["getp", &GETP_ROUNDS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    // begin and end are run, not attached: only the raw tracepoint counts.
    assert!(outcome.stderr.contains("Attached 1 probe"), "{}", outcome.transcript());
    let maps = parse_maps(&outcome);
    assert_eq!(map_number(&maps, "begins"), 1, "{}", outcome.transcript());
    assert_eq!(map_number(&maps, "ends"), 1, "{}", outcome.transcript());
    assert_eq!(map_number(&maps, "events"), GETP_ROUNDS, "{}", outcome.transcript());
    let (begin_at, end_at) = (map_number(&maps, "begin_at"), map_number(&maps, "end_at"));
    let (first, last) = (map_number(&maps, "first_event_at"), map_number(&maps, "last_event_at"));
    assert!(begin_at < first, "begin ran at {begin_at}, after the first event at {first}");
    assert!(last < end_at, "end ran at {end_at}, before the last event at {last}");
}

#[test]
fn begin_and_end_run_once_in_a_timed_run_with_text_output() {
    if !require_kernel("begin_and_end_run_once_in_a_timed_run_with_text_output") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "begin_end_text");
    let probe = write_file(
        &dir,
        "once.ppl",
        "map runs: count[str[8]] max 4;\nprobe begin { runs[probe].inc(); }\nprobe end { runs[probe].inc(); }\n",
    );
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--for", "100ms"]);
    outcome.assert_success();
    insta::assert_snapshot!(outcome.stdout);
}

#[test]
fn raw_tracepoint_sys_enter_counts_the_marked_syscalls_exactly() {
    if !require_kernel("raw_tracepoint_sys_enter_counts_the_marked_syscalls_exactly") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "raw_sys_enter");
    // arg1 of the raw `sys_enter` tracepoint is the syscall number (arg0 the pt_regs pointer).
    let (getppid, getpgid) = (libc::SYS_getppid, libc::SYS_getpgid);
    let probe = write_file(
        &dir,
        "raw.ppl",
        format!(
            "map by_id: count[u64] max 512;\n\
             probe rawtracepoint:sys_enter rate <= 2500/s when pid == cpid {{ by_id[arg1].inc(); }}\n"
        ),
    );
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let child = child_command(&workload, &["getp", &GETP_ROUNDS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    let maps = parse_maps(&outcome);
    let by_id = maps.get("by_id").and_then(|v| v.as_object()).unwrap_or_else(|| panic!("{}", outcome.transcript()));
    let count = |id: i64| by_id.get(&id.to_string()).and_then(|v| v.as_u64()).unwrap_or(0);
    // Neither the dynamic loader nor Rust's start-up calls getppid or getpgid, so the counts
    // are exactly the workload's.
    assert_eq!(count(getppid), GETP_ROUNDS, "{}", outcome.transcript());
    assert_eq!(count(getpgid), GETP_ROUNDS, "{}", outcome.transcript());
    // Other syscalls of the child were seen too (execve's return, mmap, write, exit_group).
    assert!(by_id.len() > 3, "only {by_id:?}");
}

/// Sampling cannot give an exact count. `profile:hz:99` asks the kernel for 99 samples per
/// second of each CPU's clock, so a task gets about 99 samples per second of CPU time it
/// actually ran (the workload reports it: on a loaded machine it is less than the wall-clock
/// time it was busy for). The kernel's frequency mode re-derives the period from the observed
/// rate (the first samples come early while it adapts), and a sample only counts the task if
/// it is the one on the CPU when the timer fires, so the bound is ±30 % of the expected count
/// plus 3 samples for the start and end: still far from what a wrong frequency (9.9 or 990 Hz)
/// or sampling only some CPUs would give.
#[test]
fn profile_samples_a_busy_child_at_its_frequency() {
    if !require_kernel("profile_samples_a_busy_child_at_its_frequency") {
        return;
    }
    const HZ: u64 = 99;
    const BUSY_MS: u64 = 1500;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "profile_hz");
    let probe = write_file(
        &dir,
        "profile.ppl",
        format!("map samples: count;\nprobe profile:hz:{HZ} when pid == cpid {{ samples.inc(); }}\n"),
    );
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let child = child_command(&workload, &["busy", &BUSY_MS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    let cpu_ms: u64 = outcome
        .stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix("cpu_ms=")?.parse().ok())
        .unwrap_or_else(|| panic!("the workload did not report its CPU time\n{}", outcome.transcript()));
    assert!(cpu_ms >= BUSY_MS / 10, "the workload got only {cpu_ms} ms of CPU: too little to sample");
    let samples = map_number(&parse_maps(&outcome), "samples");
    let expected = HZ * cpu_ms / 1000;
    let (low, high) = ((expected * 7 / 10).saturating_sub(3), expected * 13 / 10 + 3);
    assert!(
        (low..=high).contains(&samples),
        "{samples} samples for {cpu_ms} ms of CPU, expected {low}..={high}\n{}",
        outcome.transcript()
    );
}

#[test]
fn interval_ticks_ten_times_a_second() {
    if !require_kernel("interval_ticks_ten_times_a_second") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "interval_ms");
    let probe = write_file(&dir, "interval.ppl", "map ticks: count;\nprobe interval:ms:100 { ticks.inc(); }\n");
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "--for", "1s"]);
    outcome.assert_success();
    let ticks = map_number(&parse_maps(&outcome), "ticks");
    // 1 s of a 100 ms timer: 10 ticks, one fewer or more depending on where the run's start
    // and stop fall between ticks (and the 20 ms polling of the stop deadline).
    assert!((9..=11).contains(&ticks), "{ticks} ticks\n{}", outcome.transcript());
}

#[test]
fn wildcard_tracepoint_attaches_to_every_match_and_probe_names_them() {
    if !require_kernel("wildcard_tracepoint_attaches_to_every_match_and_probe_names_them") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "wildcard_getp");
    let probe = write_file(
        &dir,
        "getp.ppl",
        "map hits: count[str[64]] max 64;\n\
         probe tracepoint:syscalls:sys_enter_getp* rate <= 1k/s when pid == cpid { hits[probe].inc(); }\n",
    );
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let child = child_command(&workload, &["getp", &GETP_ROUNDS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    assert!(
        outcome.stderr.contains("tracepoint:syscalls:sys_enter_getp* matched"),
        "the expansion is reported\n{}",
        outcome.transcript()
    );
    let maps = parse_maps(&outcome);
    let hits = maps.get("hits").and_then(|v| v.as_object()).unwrap_or_else(|| panic!("{}", outcome.transcript()));
    for name in ["getpid", "getppid", "getpgid"] {
        let key = format!("tracepoint:syscalls:sys_enter_{name}");
        assert_eq!(hits.get(&key).and_then(|v| v.as_u64()), Some(GETP_ROUNDS), "{key}\n{}", outcome.transcript());
    }
    // getpgrp, getpriority, getpeername, ... matched and were attached too, but the workload
    // makes none of them.
    assert_eq!(hits.len(), 3, "{hits:?}");
}
