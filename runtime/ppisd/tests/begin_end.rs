//! `ppisd` runs a bundle's `begin` probe once when it loads the bundle, before any other probe
//! is attached, and its `end` probe once when it unloads it, after the others are detached, as
//! DTrace's BEGIN and END (root, kernel).

mod common;

use std::time::Duration;

use common::{kernel_available, run_exact_workload, sample, scrape, wait_for, Daemon, Fixture};
use serde_json::Value;

/// Counts `begin` runs and `getpgid` calls of one thread; `begin` and `end` each emit an event
/// stamped with the time they ran, and every counted call emits its time too.
fn once_source(comm: &str) -> String {
    let pid = std::process::id();
    format!(
        "//! begin and end around counted getpgid calls.\n\
         map begins: count;\n\
         map calls: count;\n\
         probe begin {{\n    begins.inc();\n    emit started {{ at: nsecs }};\n}}\n\
         probe tracepoint:syscalls:sys_enter_getpgid rate <= 1k/s when comm == \"{comm}\" && pid == {pid} {{\n\
         \x20   calls.inc();\n    emit call {{ at: nsecs }};\n}}\n\
         probe end {{\n    emit stopped {{ at: nsecs }};\n}}\n"
    )
}

/// The event log's events named `event`, in order.
fn events(fixture: &Fixture, event: &str) -> Vec<Value> {
    let lines = std::fs::read_to_string(fixture.dir.join("events.jsonl")).unwrap_or_default();
    lines
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|value| value["event"] == event)
        .collect()
}

fn at(event: &Value) -> u64 {
    event["at"].as_u64().unwrap_or_else(|| panic!("no `at` in {event}"))
}

#[test]
fn begin_runs_once_at_load_and_end_once_at_unload() {
    if !kernel_available() {
        return;
    }
    const CALLS: u32 = 40;
    let comm = "ppisd_once";
    let fixture = Fixture::with_config("begin_end", "event_log = \"events.jsonl\"\n");
    let bundle = fixture.build("once", &once_source(comm));
    let (ok, report) = fixture.check(&bundle);
    assert!(ok, "{report}");
    assert!(report.contains("runs once"), "{report}");
    std::fs::copy(&bundle, fixture.dir.join("bundles/once.ppb")).unwrap();
    let daemon = Daemon::start(&fixture);
    assert!(daemon.wait_for_log("loaded once", Duration::from_secs(10)), "{}", daemon.log());

    let metrics = scrape(&fixture.metrics_address());
    assert_eq!(sample(&metrics, "ppis_map_once_begins_total "), Some(1.0), "{metrics}");
    run_exact_workload(comm, CALLS);
    let counted = wait_for(Duration::from_secs(10), || {
        let metrics = scrape(&fixture.metrics_address());
        (sample(&metrics, "ppis_map_once_calls_total ") == Some(f64::from(CALLS))).then_some(())
    });
    assert!(counted.is_some(), "{}\n{}", scrape(&fixture.metrics_address()), daemon.log());
    // Forwarded within a tick; `end` has not run while the bundle is loaded.
    let forwarded =
        wait_for(Duration::from_secs(10), || (events(&fixture, "call").len() == CALLS as usize).then_some(()));
    assert!(forwarded.is_some(), "{:?}\n{}", events(&fixture, "call").len(), daemon.log());
    assert!(events(&fixture, "stopped").is_empty(), "{}", daemon.log());
    let metrics = scrape(&fixture.metrics_address());
    assert_eq!(sample(&metrics, "ppis_map_once_begins_total "), Some(1.0), "{metrics}");

    let log = daemon.stop();
    let (started, calls, stopped) =
        (events(&fixture, "started"), events(&fixture, "call"), events(&fixture, "stopped"));
    assert_eq!(started.len(), 1, "{log}");
    assert_eq!(stopped.len(), 1, "{log}");
    assert_eq!(calls.len(), CALLS as usize, "{log}");
    let first_call = calls.iter().map(at).min().unwrap();
    let last_call = calls.iter().map(at).max().unwrap();
    assert!(at(&started[0]) < first_call, "begin ran at {}, after a call at {first_call}", at(&started[0]));
    assert!(last_call < at(&stopped[0]), "end ran at {}, before a call at {last_call}", at(&stopped[0]));

    // The audit log records both runs; `end`'s after the other probe's detach.
    let audit = std::fs::read_to_string(fixture.dir.join("audit.log")).unwrap();
    let entries: Vec<Value> = audit.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let position = |event: &str, attach: Option<&str>| {
        entries.iter().position(|e| e["event"] == event && attach.is_none_or(|attach| e["attach"] == attach))
    };
    let begin_ran = position("probe_ran", Some("begin")).unwrap_or_else(|| panic!("{audit}"));
    let attached = position("probe_attached", None).unwrap_or_else(|| panic!("{audit}"));
    let detached = position("probe_detached", None).unwrap_or_else(|| panic!("{audit}"));
    let end_ran = position("probe_ran", Some("end")).unwrap_or_else(|| panic!("{audit}"));
    assert!(begin_ran < attached && attached < detached && detached < end_ran, "{audit}");
}
