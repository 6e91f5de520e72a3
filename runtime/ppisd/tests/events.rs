//! `ppisd` forwards `emit`/`print` events (root, kernel): a bundle emitting one event per
//! `getpgid` call of a test thread; the daemon appends each to its event log as a JSON line
//! and exports each as an OTLP log record to a receiver decoding the official protobuf.

mod common;

use std::time::Duration;

use common::{kernel_available, run_exact_workload, wait_for, Daemon, Fixture};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use ppisd::otlp_receiver::OtlpReceiver;

/// One `emit call` and one `print` per `syscall` call of the thread named `comm` in this
/// process. Each test traces its own syscall: the breaker counts every run of a program, the
/// ones its `when` filters out too, so one test's flood would trip another's probe.
fn emitting_source(syscall: &str, comm: &str) -> String {
    let pid = std::process::id();
    format!(
        "//! Emits each {syscall} call of one thread.\n\
         probe tracepoint:syscalls:sys_enter_{syscall} rate <= 5k/s when comm == \"{comm}\" && pid == {pid} {{\n\
         emit call {{ tid: tid, who: comm }};\n    print(\"call by %s\\n\", comm);\n}}\n"
    )
}

fn records(received: &[ExportLogsServiceRequest]) -> Vec<LogRecord> {
    received
        .iter()
        .flat_map(|request| &request.resource_logs)
        .flat_map(|resource| &resource.scope_logs)
        .flat_map(|scope| scope.log_records.clone())
        .collect()
}

fn string_attribute(record: &LogRecord, key: &str) -> Option<String> {
    record.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(text.clone()),
        _ => None,
    })
}

#[test]
fn the_daemon_writes_and_exports_every_emitted_event() {
    if !kernel_available() {
        return;
    }
    let receiver = OtlpReceiver::start().unwrap();
    let comm = "ppisd_emit";
    let config = format!(
        "event_log = \"events.jsonl\"\n[otlp]\nendpoint = \"http://{}\"\nexport_interval_ms = 500\n",
        receiver.address()
    );
    let fixture = Fixture::with_config("events", &config);
    let bundle = fixture.build("emitter", &emitting_source("getpgid", comm));
    std::fs::copy(&bundle, fixture.dir.join("bundles/emitter.ppb")).unwrap();
    let daemon = Daemon::start(&fixture);
    assert!(daemon.wait_for_log("loaded emitter", Duration::from_secs(10)), "{}", daemon.log());

    let calls = 100;
    run_exact_workload(comm, calls);
    let calls = calls as usize;
    let is_call = |record: &LogRecord| string_attribute(record, "event").as_deref() == Some("call");
    let exported = wait_for(Duration::from_secs(10), || {
        let records = records(&receiver.received().logs);
        (records.iter().filter(|r| is_call(r)).count() >= calls).then_some(records)
    });
    let Some(exported) = exported else {
        panic!("not every event exported: {:?}\n{}", records(&receiver.received().logs).len(), daemon.log())
    };
    let log = daemon.stop();

    // Exactly one OTLP record per emit and per print, with the emitted fields as attributes.
    let received = records(&receiver.received().logs);
    assert!(received.len() >= exported.len());
    let call_records: Vec<&LogRecord> = received.iter().filter(|r| is_call(r)).collect();
    assert_eq!(call_records.len(), calls, "{log}");
    assert!(call_records.iter().all(|r| string_attribute(r, "who").as_deref() == Some(comm)), "{call_records:?}");
    assert!(call_records.iter().all(|r| string_attribute(r, "ppis.bundle").as_deref() == Some("emitter")));
    let printed = received.iter().filter(|r| string_attribute(r, "print").is_some()).count();
    assert_eq!(printed, calls, "{log}");

    // The event log holds the same events as JSON lines.
    let lines = std::fs::read_to_string(fixture.dir.join("events.jsonl")).unwrap();
    let call_lines: Vec<serde_json::Value> = lines
        .lines()
        .filter(|line| line.contains("\"event\":\"call\""))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(call_lines.len(), calls, "{lines}");
    assert!(call_lines.iter().all(|event| event["bundle"] == "emitter" && event["who"] == comm), "{lines}");
    let print_lines = lines.lines().filter(|line| line.contains(&format!("\"print\":\"call by {comm}\\n\""))).count();
    assert_eq!(print_lines, calls, "{lines}");
}

/// Far more records than the ring buffer holds between two drains: the daemon delivers some
/// to its event log and counts the rest in `ppis_events_lost_total`, and the two add up to
/// exactly the records the probe sent (one `emit` and one `print` per call).
#[test]
fn events_lost_to_a_full_ring_buffer_are_counted_exactly() {
    if !kernel_available() {
        return;
    }
    const CALLS: u64 = 200_000;
    let comm = "ppisd_flood";
    let fixture = Fixture::with_config("events_lost", "event_log = \"events.jsonl\"\n");
    let bundle = fixture.build("flood", &emitting_source("getsid", comm));
    std::fs::copy(&bundle, fixture.dir.join("bundles/flood.ppb")).unwrap();
    let daemon = Daemon::start(&fixture);
    assert!(daemon.wait_for_log("loaded flood", Duration::from_secs(10)), "{}", daemon.log());
    std::thread::Builder::new()
        .name(comm.into())
        .spawn(|| {
            for _ in 0..CALLS {
                // SAFETY: getsid(0) only reads the caller's session id.
                unsafe { libc::getsid(0) };
            }
        })
        .unwrap()
        .join()
        .unwrap();
    let delivered = || {
        let lines = std::fs::read_to_string(fixture.dir.join("events.jsonl")).unwrap_or_default();
        lines.lines().filter(|line| line.contains("\"bundle\":\"flood\"")).count() as u64
    };
    let lost =
        || common::sample(&common::scrape(&fixture.metrics_address()), "ppis_events_lost_total{bundle=\"flood\"}");
    // Settled: two scrapes a second apart agree and the counts add up.
    let settled = wait_for(Duration::from_secs(15), || {
        let (before, lost_before) = (delivered(), lost()?);
        std::thread::sleep(Duration::from_millis(1100));
        let (after, lost_after) = (delivered(), lost()?);
        (before == after && lost_before == lost_after && after + lost_after as u64 == 2 * CALLS)
            .then_some((after, lost_after as u64))
    });
    let log = daemon.stop();
    let (delivered, lost) = settled
        .unwrap_or_else(|| panic!("delivered {} + lost {:?} never reached {}\n{log}", delivered(), lost(), 2 * CALLS));
    assert!(lost > 0, "the ring buffer never filled: {delivered} delivered\n{log}");
    assert!(log.contains("events lost: its ring buffer was full"), "{log}");
}
