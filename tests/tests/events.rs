//! `emit` and `print` against the kernel: a uprobe on the workload's `ppis_workload_add`,
//! called with 1..=N, sends exactly N records, decoded by `ppisc run` on stdout in order.
//! Tests run in parallel and a uprobe fires in every process of the binary, so each probe
//! only counts its own `-c` child (`when pid == cpid`).

use ppis_tests::{child_command, map_number, parse_maps, require_kernel, run_ppisc, scratch_dir, workload, write_file};

const CALLS: u64 = 500;

/// The `n` of every `{"event":"call",..}` line of `stdout`, in order, and each line's `pid`.
fn call_events(stdout: &str) -> Vec<(u64, u64)> {
    stdout
        .lines()
        .filter(|line| line.starts_with("{\"event\":\"call\""))
        .map(|line| {
            let event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|error| panic!("bad event line {line:?}: {error}"));
            let number = |key: &str| {
                event.get(key).and_then(serde_json::Value::as_u64).unwrap_or_else(|| panic!("no {key} in {line}"))
            };
            (number("n"), number("pid"))
        })
        .collect()
}

#[test]
fn emit_sends_one_json_line_per_call_with_its_argument() {
    if !require_kernel("emit_sends_one_json_line_per_call_with_its_argument") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "emit_calls");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let target = workload.display();
    let probe = write_file(
        &dir,
        "emit.ppl",
        format!(
            "map calls: count;\n\
             probe uprobe:{target}:ppis_workload_add rate <= 1000/s when pid == cpid {{\n    calls.inc();\n    emit call {{ n: arg0, pid: pid }};\n}}\n"
        ),
    );
    let child = child_command(&workload, &["calls", &CALLS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    let events = call_events(&outcome.stdout);
    let numbers: Vec<u64> = events.iter().map(|(n, _)| *n).collect();
    let expected: Vec<u64> = (1..=CALLS).collect();
    // One thread makes the calls, so the records arrive in call order.
    assert_eq!(numbers, expected, "{}", outcome.transcript());
    let pid = events[0].1;
    assert!(pid > 0 && events.iter().all(|(_, p)| *p == pid), "one workload process\n{}", outcome.transcript());
    assert!(
        outcome.stdout.contains(&format!("\"probe\":\"uprobe:{target}:ppis_workload_add\"")),
        "each event names its probe\n{}",
        outcome.transcript()
    );
    // With `--format json` the final document still holds the maps.
    assert_eq!(map_number(&parse_maps(&outcome), "calls"), CALLS, "{}", outcome.transcript());
}

#[test]
fn print_writes_one_formatted_line_per_call() {
    if !require_kernel("print_writes_one_formatted_line_per_call") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "print_calls");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let target = workload.display();
    let probe = write_file(
        &dir,
        "print.ppl",
        format!("probe uprobe:{target}:ppis_workload_add rate <= 1000/s when pid == cpid {{\n    print(\"n=%d\\n\", arg0);\n}}\n"),
    );
    let child = child_command(&workload, &["calls", &CALLS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "-c", &child]);
    outcome.assert_success();
    let lines: Vec<&str> = outcome.stdout.lines().filter(|line| line.starts_with("n=")).collect();
    let expected: Vec<String> = (1..=CALLS).map(|n| format!("n={n}")).collect();
    assert_eq!(lines, expected, "{}", outcome.transcript());
}

/// Far more records than the ring buffer holds between two reads: whatever is lost must be
/// reported, so records shown plus records reported lost is exactly the number of calls.
#[test]
fn a_full_ring_buffer_loses_no_event_silently() {
    if !require_kernel("a_full_ring_buffer_loses_no_event_silently") {
        return;
    }
    const MANY: u64 = 200_000;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "emit_drops");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let target = workload.display();
    let probe = write_file(
        &dir,
        "flood.ppl",
        format!(
            "probe uprobe:{target}:ppis_workload_add rate <= 1000/s when pid == cpid {{\n    emit call {{ n: arg0, pid: pid, who: comm }};\n}}\n"
        ),
    );
    let child = child_command(&workload, &["calls", &MANY.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "-c", &child]);
    outcome.assert_success();
    let shown = call_events(&outcome.stdout).len() as u64;
    let lost = outcome
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("warning: ")?.split_once(" event")?.0.parse::<u64>().ok())
        .unwrap_or(0);
    assert_eq!(shown + lost, MANY, "{shown} shown + {lost} reported lost\n{}", outcome.stderr);
}
