//! uprobes and uretprobes on the workload: exact call counts, argument and return sums.

use ppis_tests::{child_command, map_number, parse_maps, require_kernel, run_ppisc, scratch_dir, workload, write_file};

const CALLS: u64 = 1000;

#[test]
fn uprobe_and_uretprobe_see_every_call_with_its_argument_and_result() {
    if !require_kernel("uprobe_and_uretprobe_see_every_call_with_its_argument_and_result") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "uprobe_sums");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let target = workload.display();
    let probe = write_file(
        &dir,
        "add.ppl",
        format!(
            "map calls: count;\n\
             map total: sum;\n\
             map rets: sum;\n\
             probe uprobe:{target}:ppis_workload_add rate <= 1000/s {{ calls.inc(); total.add(arg0); }}\n\
             probe uretprobe:{target}:ppis_workload_add rate <= 1000/s {{ rets.add(retval); }}\n"
        ),
    );
    // `rate` is the declared steady-state rate the cost proof needs; it is not a throttle, so
    // the workload's burst of calls is still counted in full.
    let child = child_command(&workload, &["calls", &CALLS.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    assert!(outcome.stderr.contains("Attached 2 probes"), "expected both probes attached\n{}", outcome.transcript());

    let maps = parse_maps(&outcome);
    // The workload computes x * 2 + 1 for x in 1..=CALLS.
    let expected_args = CALLS * (CALLS + 1) / 2;
    let expected_rets = 2 * expected_args + CALLS;
    assert_eq!(map_number(&maps, "calls"), CALLS, "{}", outcome.transcript());
    assert_eq!(map_number(&maps, "total"), expected_args, "{}", outcome.transcript());
    assert_eq!(map_number(&maps, "rets"), expected_rets, "{}", outcome.transcript());
    // The child shares ppisc's stdout; when its line shows up, it must agree with the probe.
    let workload_line = format!("sum_args={expected_args} sum_rets={expected_rets}");
    assert!(
        !outcome.stdout.contains("sum_args=") || outcome.stdout.contains(&workload_line),
        "the workload computed other sums than expected\n{}",
        outcome.transcript()
    );
}
