//! Ports of bpftrace's classic tools (`examples/*.ppl`), each run as shipped against a
//! workload with a known answer. The workload is copied under a name of the test's own, so
//! the tool's per-process-name maps single out exactly the events the workload made, even
//! while other tests run.

use std::path::{Path, PathBuf};

use ppis_tests::{child_command, parse_maps, require_kernel, run_ppisc, scratch_dir, workload, workspace_root};
use serde_json::{Map, Value};

/// The workload binary copied into `dir` as `name` (at most 15 bytes: the kernel's `comm`).
fn named_workload(dir: &Path, name: &str) -> PathBuf {
    assert!(name.len() <= 15, "{name:?} would be truncated in comm");
    let copy = dir.join(name);
    std::fs::copy(workload(env!("CARGO_BIN_EXE_ppis-workload")), &copy)
        .unwrap_or_else(|error| panic!("cannot copy the workload to {}: {error}", copy.display()));
    copy
}

/// Runs `examples/TOOL.ppl` with `-c` on the workload and returns its maps.
fn run_tool(dir: &Path, tool: &str, child: &str) -> Map<String, Value> {
    run_tool_with_events(dir, tool, child).0
}

/// Runs `examples/TOOL.ppl` with `-c` on the workload; returns its maps and the events it
/// emitted (the JSON lines `ppisc run` prints as they arrive).
fn run_tool_with_events(dir: &Path, tool: &str, child: &str) -> (Map<String, Value>, Vec<Value>) {
    let example = workspace_root().join("examples").join(format!("{tool}.ppl"));
    let outcome = run_ppisc(dir, ["run", &example.to_string_lossy(), "--format", "json", "-c", child]);
    outcome.assert_success();
    let events = outcome
        .stdout
        .lines()
        .filter(|line| line.starts_with("{\"event\""))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad event line {line:?}: {e}")))
        .collect();
    (parse_maps(&outcome), events)
}

/// The events named `name` whose field `field` is `value`.
fn events_where<'a>(events: &'a [Value], name: &str, field: &str, value: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name && e[field] == value).collect()
}

/// `maps[map][key]` of a map keyed by one string (`{"key": value}` in the JSON output).
fn by_name(maps: &Map<String, Value>, map: &str, key: &str) -> u64 {
    maps.get(map)
        .and_then(|entries| entries.get(key))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {map}[{key:?}] in {maps:?}"))
}

/// The value at a tuple key (`[{"key": [..], "value": v}]` in the JSON output).
fn by_tuple(maps: &Map<String, Value>, map: &str, key: &[Value]) -> u64 {
    maps.get(map)
        .and_then(Value::as_array)
        .and_then(|entries| entries.iter().find(|entry| entry["key"].as_array().is_some_and(|k| k == key)))
        .and_then(|entry| entry["value"].as_u64())
        .unwrap_or_else(|| panic!("no {map}{key:?} in {maps:?}"))
}

/// The number of values a histogram recorded (sum of its buckets' counts).
fn hist_total(maps: &Map<String, Value>, map: &str) -> u64 {
    let buckets = maps.get(map).and_then(Value::as_array).unwrap_or_else(|| panic!("no histogram {map} in {maps:?}"));
    buckets.iter().map(|bucket| bucket["count"].as_u64().expect("a bucket count")).sum()
}

#[test]
fn syncsnoop_counts_every_fsync() {
    if !require_kernel("syncsnoop_counts_every_fsync") {
        return;
    }
    const FSYNCS: u64 = 40;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "tool_syncsnoop");
    let program = named_workload(&dir, "wl-syncsnoop");
    let file = dir.join("synced");
    let maps =
        run_tool(&dir, "syncsnoop", &child_command(&program, &["fsync", &FSYNCS.to_string(), &file.to_string_lossy()]));
    assert_eq!(by_name(&maps, "syncs", "wl-syncsnoop"), FSYNCS);
}

#[test]
fn funclatency_times_every_libc_fsync() {
    if !require_kernel("funclatency_times_every_libc_fsync") {
        return;
    }
    const FSYNCS: u64 = 30;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "tool_funclatency");
    let program = named_workload(&dir, "wl-funclat");
    let file = dir.join("synced");
    let maps = run_tool(
        &dir,
        "funclatency",
        &child_command(&program, &["fsync", &FSYNCS.to_string(), &file.to_string_lossy()]),
    );
    assert_eq!(by_name(&maps, "fsyncs_by", "wl-funclat"), FSYNCS);
    // Nothing else on an idle test machine calls libc's fsync through a uprobe'd libc while the
    // workload runs, but another test's process could: at least every one of ours is timed.
    let timed = hist_total(&maps, "fsync_latency_ns");
    assert!(timed >= FSYNCS, "{timed} fsync latencies recorded, expected at least {FSYNCS}");
    assert_eq!(maps["entered"], Value::Object(Map::new()), "every entry was paired with its return");
}

#[test]
fn killsnoop_counts_signals_by_sender_and_number() {
    if !require_kernel("killsnoop_counts_signals_by_sender_and_number") {
        return;
    }
    const KILLS: u64 = 33;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "tool_killsnoop");
    let program = named_workload(&dir, "wl-killsnoop");
    let maps = run_tool(&dir, "killsnoop", &child_command(&program, &["kill", &KILLS.to_string()]));
    assert_eq!(by_tuple(&maps, "kills", &["wl-killsnoop".into(), 0.into()]), KILLS);
}

#[test]
fn execsnoop_counts_every_exec_by_new_name() {
    if !require_kernel("execsnoop_counts_every_exec_by_new_name") {
        return;
    }
    const EXECS: u64 = 7;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "tool_execsnoop");
    let parent = named_workload(&dir, "wl-execsnoop");
    let child = named_workload(&dir, "wl-exec-child");
    let maps =
        run_tool(&dir, "execsnoop", &child_command(&parent, &["exec", &EXECS.to_string(), &child.to_string_lossy()]));
    assert_eq!(by_name(&maps, "execs", "wl-exec-child"), EXECS);
    // `-c` execs the parent itself once.
    assert_eq!(by_name(&maps, "execs", "wl-execsnoop"), 1);
}

#[test]
fn tcpconnect_counts_connections_by_destination_port() {
    if !require_kernel("tcpconnect_counts_connections_by_destination_port") {
        return;
    }
    const CONNECTS: u64 = 21;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "tool_tcpconnect");
    let program = named_workload(&dir, "wl-tcpconnect");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
    let port = listener.local_addr().expect("a bound address").port();
    // Accept (and drop) connections until the test ends, so none waits in the backlog.
    std::thread::spawn(move || for _ in listener.incoming() {});
    let maps =
        run_tool(&dir, "tcpconnect", &child_command(&program, &["connect", &CONNECTS.to_string(), &port.to_string()]));
    assert_eq!(by_name(&maps, "connects", &port.to_string()), CONNECTS);
    assert_eq!(by_name(&maps, "connectors", "wl-tcpconnect"), CONNECTS);
}

#[test]
fn opensnoop_counts_opens_by_process_and_path() {
    if !require_kernel("opensnoop_counts_opens_by_process_and_path") {
        return;
    }
    const OPENS: u64 = 17;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "tool_opensnoop");
    let program = named_workload(&dir, "wl-opensnoop");
    // A relative name: the path the probe reads is exactly what the workload passes.
    std::fs::write(dir.join("opened.txt"), "").expect("a file to open");
    let (maps, events) = run_tool_with_events(
        &dir,
        "opensnoop",
        &child_command(&program, &["openat", &OPENS.to_string(), "opened.txt"]),
    );
    assert_eq!(by_tuple(&maps, "opened", &["wl-opensnoop".into(), "opened.txt".into()]), OPENS);
    let opens = events_where(&events, "open", "path", "opened.txt");
    assert_eq!(opens.len() as u64, OPENS, "one event per open: {opens:?}");
    let flags = ppis_tests::MARKER_OPEN_FLAGS as u64;
    assert!(opens.iter().all(|e| e["comm"] == "wl-opensnoop" && e["flags"] == flags), "{opens:?}");
}

#[test]
fn runqlat_sees_every_wakeup_of_a_sleeping_task() {
    if !require_kernel("runqlat_sees_every_wakeup_of_a_sleeping_task") {
        return;
    }
    const SLEEPS: u64 = 100;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "tool_runqlat");
    let program = named_workload(&dir, "wl-runqlat");
    let maps = run_tool(&dir, "runqlat", &child_command(&program, &["sleeps", &SLEEPS.to_string()]));
    // Each 1 ms sleep ends with one wake-up and one switch in; starting the process may add a
    // few more (exec, page-in). A timer can also fire while the task is still on its way to
    // sleep: it is woken without ever leaving the CPU, so an odd sleep may show no run.
    let runs = by_name(&maps, "runs_of", "wl-runqlat");
    assert!((SLEEPS - 5..SLEEPS + 10).contains(&runs), "{runs} runs after wake-up, expected about {SLEEPS}");
    assert!(hist_total(&maps, "runq_latency_ns") >= runs);
}

#[test]
fn biolatency_times_every_direct_read() {
    if !require_kernel("biolatency_times_every_direct_read") {
        return;
    }
    const READS: u64 = 50;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "tool_biolatency");
    let program = named_workload(&dir, "wl-biolatency");
    let data = dir.join("blocks.dat");
    std::fs::write(&data, vec![0x5au8; READS as usize * 4096]).expect("a data file");
    // On disk before the run, so the run's only I/O of the workload is its direct reads.
    std::fs::File::open(&data).and_then(|file| file.sync_all()).expect("the data file synced");
    let maps = run_tool(
        &dir,
        "biolatency",
        &child_command(&program, &["direct-reads", &READS.to_string(), &data.to_string_lossy()]),
    );
    // O_DIRECT reads bypass the page cache: one block request each, issued by the workload.
    // The kernel may issue a few more in the workload's name (paging in the freshly copied
    // binary, reading an inode table block): never fewer, and not many more.
    let issued = by_name(&maps, "issued_by", "wl-biolatency");
    assert!((READS..=READS + 4).contains(&issued), "{issued} requests issued, expected {READS} plus a few");
    let timed = hist_total(&maps, "io_latency_ns");
    assert!(timed >= READS, "{timed} request latencies recorded, expected at least {READS}");
}

#[test]
fn syscount_counts_system_calls_by_process_and_number() {
    if !require_kernel("syscount_counts_system_calls_by_process_and_number") {
        return;
    }
    const GETPIDS: u64 = 250;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "tool_syscount");
    let program = named_workload(&dir, "wl-syscount");
    let maps = run_tool(&dir, "syscount", &child_command(&program, &["syscalls", &GETPIDS.to_string()]));
    let getpid = libc::SYS_getpid as i64;
    assert_eq!(by_tuple(&maps, "by_comm_id", &["wl-syscount".into(), getpid.into()]), GETPIDS);
}

#[test]
fn profile_finds_where_the_workload_spends_its_cpu() {
    if !require_kernel("profile_finds_where_the_workload_spends_its_cpu") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "tool_profile");
    let program = named_workload(&dir, "wl-profile");
    let example = workspace_root().join("examples/profile.ppl");
    let folded = dir.join("cpu.folded");
    let svg = dir.join("cpu.svg");
    let child = child_command(&program, &["stack-busy", "1000"]);
    let outcome = run_ppisc(
        &dir,
        [
            "run",
            &example.to_string_lossy(),
            "-c",
            &child,
            "--folded",
            &folded.to_string_lossy(),
            "--flamegraph",
            &svg.to_string_lossy(),
        ],
    );
    outcome.assert_success();
    // The workload spins in `ppis_stack_busy` for one second of wall time: nearly every sample
    // of its process lands there (start-up and exit are a few ms).
    let folded = std::fs::read_to_string(&folded).expect("the folded stacks");
    let weight = |line: &str| line.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    let ours: Vec<&str> = folded.lines().filter(|line| line.starts_with("wl-profile;")).collect();
    let total: u64 = ours.iter().map(|line| weight(line)).sum();
    let busy: u64 = ours.iter().filter(|line| line.contains(";ppis_stack_busy")).map(|line| weight(line)).sum();
    // 99 Hz for ~1 s of CPU; the machine is shared, so the workload may get less than a CPU.
    assert!(total >= 30, "only {total} samples of the workload\n{folded}");
    assert!(busy * 10 >= total * 8, "ppis_stack_busy in {busy} of {total} samples\n{folded}");
    let svg = std::fs::read_to_string(&svg).expect("the flame graph");
    assert!(svg.contains("ppis_stack_busy"), "the flame graph does not name the busy function");
}
