//! The verifier's cost bounds against the real kernel: every example runs under a workload that
//! fires its probes, with the kernel's run-time statistics on, and for every program the
//! measured mean run time per event plus the profile's trigger cost must stay under the
//! verifier's proven per-event bound (`Verdict.functions[i].cost.bound_ns`). Costs come from
//! the shipped, measured profile (`profiles/default.json`).
//!
//! Every attach point also gets an empty probe, measured on the same events: its run time is
//! the kernel's per-run cost on this host right now (`instructions.run`, or `run_perf_event`
//! on perf events, prices it). That gives
//! the honest comparison of what the program itself does: measured run time minus the empty
//! probe's, against the bound minus the trigger and the profile's per-run cost. Both must hold,
//! and so must the empty probe's own bound.
//!
//! Prints a table: probe, runs, measured ns/event (run time + trigger), bound, tightness, and
//! the program part (measured − per-run against bound − trigger − per-run) with its tightness.
//!
//! Besides the examples: a raw tracepoint, and probes with `emit`, `print` and stack keys
//! (`new_kind_cases`); `interval` and `profile` probes are measured by a separate test.
//!
//! `PPIS_REALITY_PROFILE=FILE` checks another profile than the shipped one.
//!
//! Needs root and tracefs. Without them the tests print why and pass, except under `CI=true`,
//! where they fail instead.

mod kernel_guard;

use std::hint::black_box;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ppis_compiler::driver::{self, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_compiler::targets::HostTargets;
use ppis_manifest::profile::{CostProfile, TriggerKind};
use ppis_manifest::Attach;

/// A cost profile to check instead of the shipped one (e.g. one just measured by
/// `ppisc calibrate -o FILE`, before it replaces `profiles/default.json`).
const PROFILE_ENV: &str = "PPIS_REALITY_PROFILE";

/// Fewest runs per program for its mean to count: fewer and one slow run dominates.
const MIN_RUNS: u64 = 1_000;

/// Events each workload round produces (rounds repeat until every program ran `MIN_RUNS`
/// times, or `WORKLOAD_TIMEOUT` passes).
const EVENTS_PER_ROUND: u64 = 5_000;
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Name of the workload thread; the `comm`-filtered examples are rewritten to trace it.
const WORKLOAD_COMM: &str = "ppis-reality";

/// The user-space function the uprobe variant of `readline.ppl` traces (bash's `readline` is
/// only called interactively). Unmangled so the uprobe finds it by name.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ppis_reality_readline(value: u64) -> u64 {
    black_box(value).wrapping_mul(3)
}

/// True when the test may run (see `kernel_guard`).
fn kernel_ready() -> bool {
    kernel_guard::kernel_ready(&["raw_syscalls/sys_enter", "syscalls/sys_enter_openat", "sched/sched_wakeup"], &[])
}

/// How to make a probe fire.
#[derive(Clone, Copy, Debug)]
enum Workload {
    /// `getppid` calls: raw syscall tracepoints.
    Syscalls,
    /// Opening `/dev/null`: `sys_enter_openat`.
    Opens,
    /// Two threads waking each other through channels: `sched_wakeup`.
    Wakeups,
    /// Calls of [`ppis_reality_readline`]: its uprobe and uretprobe.
    Calls,
    /// Sleeping: `interval` timers fire by themselves.
    Idle,
    /// A busy loop without system calls: `profile` samples land in it (and elsewhere).
    Spin,
    /// Running `/bin/true`: `sched_process_exec`.
    Execs,
    /// `kill(self, 0)` (no signal delivered): `sys_enter_kill`.
    Kills,
    /// `fsync`, `fdatasync`, `syncfs` and `sync` in turn, on a small file: the four
    /// `sys_enter_*sync*` tracepoints, and libc's `fsync` for a uprobe.
    Syncs,
    /// TCP connections to a closed loopback port: `sock:inet_sock_set_state` (to SYN_SENT,
    /// then to CLOSE when refused).
    Connects,
    /// Starting and joining threads: `sched_wakeup_new`, `sched_wakeup`, `sched_switch`.
    Threads,
    /// `O_DIRECT` reads of a file on the root block device: `block_rq_issue` and
    /// `block_rq_complete`.
    DirectReads,
}

/// Fewer of the slow events per round (an exec, a thread, a disk read cost far more than a
/// system call), so that a round stays well under a second.
const SLOW_EVENTS_PER_ROUND: u64 = 1_000;

impl Workload {
    fn round(self) {
        match self {
            Workload::Syscalls => {
                for _ in 0..EVENTS_PER_ROUND {
                    black_box(std::os::unix::process::parent_id());
                }
            }
            Workload::Opens => {
                for _ in 0..EVENTS_PER_ROUND {
                    drop(black_box(std::fs::File::open("/dev/null").expect("/dev/null opens")));
                }
            }
            Workload::Wakeups => {
                let (ping, pong) = (mpsc::channel::<u64>(), mpsc::channel::<u64>());
                let (to_echo, from_main) = ping;
                let (to_main, from_echo) = pong;
                let echo = std::thread::spawn(move || {
                    while let Ok(value) = from_main.recv() {
                        if to_main.send(value).is_err() {
                            break;
                        }
                    }
                });
                for i in 0..EVENTS_PER_ROUND / 2 {
                    to_echo.send(i).expect("echo thread alive");
                    from_echo.recv().expect("echo thread answers");
                }
                drop(to_echo);
                echo.join().expect("echo thread ends");
            }
            Workload::Calls => {
                for i in 0..EVENTS_PER_ROUND {
                    black_box(ppis_reality_readline(black_box(i)));
                }
            }
            Workload::Execs => {
                for _ in 0..SLOW_EVENTS_PER_ROUND / 4 {
                    let status = std::process::Command::new("/bin/true").status().expect("/bin/true runs");
                    assert!(status.success());
                }
            }
            Workload::Kills => {
                for _ in 0..EVENTS_PER_ROUND {
                    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
                    assert_eq!(unsafe { libc::kill(libc::getpid(), 0) }, 0);
                }
            }
            Workload::Syncs => {
                use std::os::fd::AsRawFd;
                let path = std::env::temp_dir().join(format!("ppis-reality-sync-{}", std::process::id()));
                let file = std::fs::File::create(&path).expect("a scratch file");
                for _ in 0..SLOW_EVENTS_PER_ROUND {
                    file.sync_all().expect("fsync");
                    file.sync_data().expect("fdatasync");
                    // SAFETY: a valid descriptor of this file; syncfs and sync take no memory.
                    assert_eq!(unsafe { libc::syncfs(file.as_raw_fd()) }, 0);
                    unsafe { libc::sync() };
                }
                drop(file);
                let _ = std::fs::remove_file(path);
            }
            Workload::Connects => {
                let port = {
                    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
                    listener.local_addr().expect("its address").port()
                };
                for _ in 0..SLOW_EVENTS_PER_ROUND {
                    let refused = std::net::TcpStream::connect(("127.0.0.1", port));
                    assert!(refused.is_err(), "port {port} was taken meanwhile");
                }
            }
            Workload::Threads => {
                for i in 0..SLOW_EVENTS_PER_ROUND {
                    std::thread::spawn(move || black_box(i)).join().expect("a thread runs");
                }
            }
            Workload::DirectReads => direct_reads(SLOW_EVENTS_PER_ROUND),
            Workload::Idle => std::thread::sleep(TIMED_ROUND),
            Workload::Spin => {
                let started = Instant::now();
                let mut value = 0u64;
                while started.elapsed() < TIMED_ROUND {
                    value = black_box(value.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
        }
    }
}

/// One program's result.
struct Row {
    case: String,
    probe: String,
    attach: String,
    runs: u64,
    run_ns: f64,
    trigger_ns: f64,
    bound_ns: f64,
    /// The profile's per-run cost (charged once per event, on the exit).
    per_run_ns: f64,
    /// Mean run time of the empty probe on the same attach point and events: the per-run
    /// cost as measured now. `None` for the empty probes themselves.
    empty_run_ns: Option<f64>,
}

impl Row {
    /// Measured run time plus the trigger: what one event cost.
    fn measured(&self) -> f64 {
        self.run_ns + self.trigger_ns
    }

    /// What the program's own instructions cost, measured and bounded: run time minus the
    /// measured per-run cost, against the bound minus the trigger and the per-run cost.
    fn program_part(&self) -> Option<(f64, f64)> {
        self.empty_run_ns.map(|empty| (self.run_ns - empty, self.bound_ns - self.trigger_ns - self.per_run_ns))
    }
}

/// `count` `O_DIRECT` reads of 4 KiB blocks, each a block request: from a file in this
/// test's target directory (on the root block device; `/tmp` may be a RAM disk), written and
/// synced once.
fn direct_reads(count: u64) {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    const BLOCK: usize = 4096;
    const BLOCKS: u64 = 256;
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ppis-reality-blocks.dat");
    if std::fs::metadata(&path).map_or(true, |m| m.len() != BLOCKS * BLOCK as u64) {
        std::fs::write(&path, vec![0x5a_u8; BLOCKS as usize * BLOCK]).expect("a data file");
        std::fs::File::open(&path).and_then(|file| file.sync_all()).expect("the data file synced");
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .expect("the data file opens with O_DIRECT");
    // O_DIRECT needs a buffer aligned to the logical block size.
    #[repr(C, align(4096))]
    struct Aligned([u8; BLOCK]);
    let mut buffer = Box::new(Aligned([0; BLOCK]));
    for i in 0..count {
        let read = file.read_at(&mut buffer.0, (i % BLOCKS) * BLOCK as u64).expect("a direct read");
        assert_eq!(read, BLOCK);
    }
}

/// The declared rate of the added empty probes (any rate fits: see `opts.cpus` below). They
/// are appended to the source, so they are the last probes of the manifest.
const EMPTY_PROBE_RATE: &str = "rate <= 1/s";

/// How long one `Idle` or `Spin` round lasts: timers and samples fire by time, not by events.
const TIMED_ROUND: Duration = Duration::from_millis(100);

/// The rate clause of the empty probe on `attach`: `profile` and `interval` fire at a rate
/// the checker knows, and declaring less would be an error (E0113).
fn empty_probe_rate(attach: &str) -> &'static str {
    if attach.starts_with("profile:") || attach.starts_with("interval:") {
        ""
    } else {
        EMPTY_PROBE_RATE
    }
}

/// Perf-event probes (`interval`, `profile`), each with the workload that fires it.
fn perf_event_cases() -> Vec<(String, String, Workload)> {
    vec![
        (
            "interval:ms:1".into(),
            "map ticks: count[u32] max 64;\nmap last: lru_hash[u32] -> u64 max 64;\n\
             probe interval:ms:1 {\n    ticks[cpu].inc();\n    last[cpu] = nsecs;\n}\n"
                .into(),
            Workload::Idle,
        ),
        (
            "profile.ppl at 997 Hz".into(),
            rewrite(&example("profile.ppl"), "profile:hz:99", "profile:hz:997"),
            Workload::Spin,
        ),
    ]
}

/// The ports of bpftrace's classic tools among the examples, each with a workload that fires
/// every probe it has. `funclatency` traces libc's `fsync`, which this binary calls through
/// `File::sync_all`.
fn tool_cases() -> Vec<(String, String, Workload)> {
    [
        ("opensnoop.ppl", Workload::Opens),
        ("execsnoop.ppl", Workload::Execs),
        ("killsnoop.ppl", Workload::Kills),
        ("syncsnoop.ppl", Workload::Syncs),
        ("funclatency.ppl", Workload::Syncs),
        ("tcpconnect.ppl", Workload::Connects),
        ("runqlat.ppl", Workload::Threads),
        ("biolatency.ppl", Workload::DirectReads),
        ("loop_sum.ppl", Workload::Syscalls),
    ]
    .into_iter()
    .map(|(name, workload)| (name.to_string(), example(name), workload))
    .collect()
}

/// Probes of the newer kinds and features, each with the workload that fires it (the
/// examples above cover tracepoints, uprobes and uretprobes; perf events are separate, see
/// [`perf_event_cases`]).
fn new_kind_cases() -> Vec<(String, String, Workload)> {
    let syscalls_of_workload = format!("comm == \"{WORKLOAD_COMM}\"");
    vec![
        (
            "rawtracepoint:sys_enter".into(),
            format!(
                "map by_id: count[u64] max 1024;\n\
                 probe rawtracepoint:sys_enter rate <= 10k/s when {syscalls_of_workload} {{\n    \
                 by_id[arg1].inc();\n}}\n"
            ),
            Workload::Syscalls,
        ),
        // Stack walks and ring-buffer records. Nothing reads the ring buffer here, so once it
        // is full the records are dropped and counted: both paths are measured.
        (
            "emit, print and stack keys".into(),
            format!(
                "map user_stacks: count[ustack] max 1024;\n\
                 map kernel_by_comm: count[str[16], kstack[16]] max 1024;\n\
                 probe tracepoint:raw_syscalls:sys_enter rate <= 10k/s when {syscalls_of_workload} {{\n    \
                 emit syscall {{ id: args.id, pid: pid, who: comm }};\n    \
                 user_stacks[ustack].inc();\n    \
                 kernel_by_comm[comm, kstack(16)].inc();\n}}\n\
                 probe tracepoint:raw_syscalls:sys_exit rate <= 10k/s when {syscalls_of_workload} {{\n    \
                 print(\"%s left syscall %d\\n\", comm, args.ret);\n}}\n"
            ),
            Workload::Syscalls,
        ),
    ]
}

/// The attach points of every `probe` of `source` (the comma-separated list after `probe`,
/// over several lines if need be, where a quoted path may hold spaces), once each.
fn attach_points(source: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("probe ") {
        let at_line_start = rest[..at].rsplit('\n').next().is_some_and(|before| before.trim().is_empty());
        rest = &rest[at + "probe ".len()..];
        if !at_line_start {
            continue;
        }
        loop {
            let list = rest.trim_start();
            let mut quoted = false;
            let end = list
                .char_indices()
                .find(|&(_, c)| {
                    quoted ^= c == '"';
                    (c.is_whitespace() || c == ',') && !quoted
                })
                .map_or(list.len(), |(end, _)| end);
            let attach = list[..end].to_string();
            if !attach.is_empty() && !out.contains(&attach) {
                out.push(attach);
            }
            rest = list[end..].trim_start();
            match rest.strip_prefix(',') {
                Some(next) => rest = next,
                None => break,
            }
        }
    }
    out
}

/// Compiles `source` plus an empty probe per attach point, attaches them, runs `workload` in
/// a thread named [`WORKLOAD_COMM`] until every program ran [`MIN_RUNS`] times, and returns
/// each program's numbers (the example's probes, then the empty ones).
fn measure(case: &str, source: &str, workload: Workload) -> Vec<Row> {
    // One measurement at a time: the tests of this file run in parallel threads, and another
    // test's workload (a spinning CPU, 997 Hz samples) would perturb the runs measured here.
    static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut opts = CompileOptions::for_this_host(LowerOptions::default());
    if let Some(path) = std::env::var_os(PROFILE_ENV) {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
        opts.profile = CostProfile::from_json(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    }
    // Only the per-event bound matters here, not whether the declared rate fits the budget
    // (`tests/examples.rs` checks that); the overhead share is the bound over the CPUs, so
    // with very many CPUs every rate fits and the bound is unchanged.
    opts.cpus = 1 << 20;
    let profile = opts.profile.clone();
    let attaches = attach_points(source);
    assert!(!attaches.is_empty(), "{case}: no probe lines");
    let mut full = source.to_string();
    for attach in &attaches {
        full += &format!("\nprobe {attach} {} {{ }}\n", empty_probe_rate(attach));
    }
    let (compiled, diags) = driver::compile(&full, &HostTargets, &opts);
    let Some(compiled) = compiled else {
        let errors: Vec<String> = diags.iter().map(|d| format!("{}: {}", d.code, d.message)).collect();
        panic!("{case} does not compile:\n{}\n{full}", errors.join("\n"));
    };
    let object = driver::object(&compiled);
    let manifest = &compiled.lowered.manifest;
    let example_probes = manifest.probes.len() - attaches.len();
    let _stats = ppis_runtime::enable_run_time_stats().expect("run-time statistics can be enabled");
    let probes = ppis_runtime::attach(&object, manifest).unwrap_or_else(|e| panic!("{case}: cannot attach: {e}"));
    let before = probes.stats().expect("statistics are readable");
    let started = Instant::now();
    let after = loop {
        std::thread::Builder::new()
            .name(WORKLOAD_COMM.into())
            .spawn(move || workload.round())
            .expect("workload thread starts")
            .join()
            .expect("workload thread does not panic");
        let now = probes.stats().expect("statistics are readable");
        let fewest = now.iter().zip(&before).map(|(now, before)| now.since(before).run_count).min().unwrap_or(0);
        if fewest >= MIN_RUNS || started.elapsed() > WORKLOAD_TIMEOUT {
            break now;
        }
    };
    probes.detach();
    let mut rows: Vec<Row> = manifest
        .probes
        .iter()
        .zip(after.iter().zip(&before))
        .enumerate()
        .map(|(index, (probe, (after, before)))| {
            let delta = after.since(before);
            let facts = compiled
                .verdict
                .functions
                .iter()
                .find(|f| f.name == probe.program)
                .unwrap_or_else(|| panic!("{case}: no verdict for {}", probe.program));
            let bound_ns = facts.cost.as_ref().map(|c| c.bound_ns).unwrap_or_else(|| panic!("{case}: no cost bound"));
            let kind = match probe.attach {
                Attach::Tracepoint { .. } => Some(TriggerKind::Tracepoint),
                // A USDT probe is a uprobe on the probe's address.
                Attach::Uprobe { .. } | Attach::Usdt { .. } => Some(TriggerKind::Uprobe),
                Attach::Uretprobe { .. } => Some(TriggerKind::Uretprobe),
                Attach::RawTracepoint { .. } => Some(TriggerKind::RawTracepoint),
                Attach::Profile { .. } | Attach::Interval { .. } => Some(TriggerKind::PerfEvent),
                Attach::Begin | Attach::End => None,
            };
            let trigger_ns = kind.map_or(0.0, |kind| profile.trigger(kind));
            let empty = index >= example_probes;
            Row {
                case: if empty { format!("{case} (empty probe)") } else { case.to_string() },
                probe: probe.program.clone(),
                attach: probe.attach.to_string(),
                runs: delta.run_count,
                run_ns: delta.ns_per_run().unwrap_or(0.0),
                trigger_ns,
                bound_ns,
                per_run_ns: profile.run(kind),
                empty_run_ns: None,
            }
        })
        .collect();
    let empty_by_attach: Vec<(String, f64)> =
        rows[example_probes..].iter().map(|row| (row.attach.clone(), row.run_ns)).collect();
    for row in &mut rows[..example_probes] {
        row.empty_run_ns = empty_by_attach.iter().find(|(attach, _)| *attach == row.attach).map(|(_, ns)| *ns);
        assert!(row.empty_run_ns.is_some(), "{case}: no empty probe on {}", row.attach);
    }
    rows
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `source` with `from` replaced, insisting that it occurs (a silent no-op would test less).
fn rewrite(source: &str, from: &str, to: &str) -> String {
    assert!(source.contains(from), "`{from}` is not in the example any more; update this test");
    source.replace(from, to)
}

#[test]
fn measured_cost_per_event_stays_under_the_proven_bound() {
    if !kernel_ready() {
        return;
    }
    let exe = std::env::current_exe().and_then(std::fs::canonicalize).expect("this test binary's path");
    let exe = exe.to_str().expect("UTF-8 path");
    let latency = example("syscall_latency.ppl");
    let readline = example("readline.ppl");
    let cases: Vec<(String, String, Workload)> = vec![
        ("opens.ppl".into(), example("opens.ppl"), Workload::Opens),
        ("syscount.ppl".into(), example("syscount.ppl"), Workload::Syscalls),
        ("sched_wakeups.ppl".into(), example("sched_wakeups.ppl"), Workload::Wakeups),
        ("syscall_latency.ppl".into(), latency.clone(), Workload::Syscalls),
        // The shipped program filters on bash; tracing the workload thread takes the long path.
        (
            format!("syscall_latency.ppl, TARGET = {WORKLOAD_COMM}"),
            rewrite(&latency, "const TARGET = \"bash\";", &format!("const TARGET = \"{WORKLOAD_COMM}\";")),
            Workload::Syscalls,
        ),
        // bash calls readline only interactively: trace a function of this binary instead.
        (
            "readline.ppl on ppis_reality_readline".into(),
            rewrite(&readline, "/bin/bash:readline", &format!("\"{exe}\":ppis_reality_readline")),
            Workload::Calls,
        ),
    ];
    let cases: Vec<(String, String, Workload)> =
        cases.into_iter().chain(tool_cases()).chain(new_kind_cases()).collect();
    let mut rows = Vec::new();
    for (case, source, workload) in &cases {
        rows.extend(measure(case, source, *workload));
    }

    print_and_check(&rows);
}

/// Prints the table of `rows` and fails, naming each, if any program ran too few times or
/// cost more than its bound (whole event or program part).
fn print_and_check(rows: &[Row]) {
    println!(
        "\n{:<44} {:<8} {:<42} {:>8} {:>8} {:>9} {:>9} {:>6} | {:>8} {:>8} {:>6}",
        "case", "probe", "attach", "runs", "run ns", "+trigger", "bound ns", "tight", "program", "bound", "tight"
    );
    let mut failures = Vec::new();
    for row in rows {
        let measured = row.measured();
        let program = row.program_part();
        let program_text = program.map_or_else(String::new, |(measured, bound)| {
            format!("{measured:>8.1} {bound:>8.1} {:>6.3}", measured / bound)
        });
        println!(
            "{:<44} {:<8} {:<42} {:>8} {:>8.1} {:>9.1} {:>9.1} {:>6.3} | {program_text}",
            row.case,
            row.probe,
            row.attach,
            row.runs,
            row.run_ns,
            measured,
            row.bound_ns,
            measured / row.bound_ns
        );
        if row.runs < MIN_RUNS {
            failures.push(format!("{} {}: only {} runs (want {MIN_RUNS})", row.case, row.probe, row.runs));
        }
        if measured > row.bound_ns {
            failures.push(format!(
                "{} {} ({}): measured {:.1} ns run + {:.1} ns trigger = {measured:.1} ns > bound {:.1} ns",
                row.case, row.probe, row.attach, row.run_ns, row.trigger_ns, row.bound_ns
            ));
        }
        if let Some((measured, bound)) = program {
            if measured > bound {
                failures.push(format!(
                    "{} {} ({}): the program part, {:.1} ns run − {:.1} ns per run = {measured:.1} ns, exceeds \
                     bound − trigger − per-run = {bound:.1} ns",
                    row.case,
                    row.probe,
                    row.attach,
                    row.run_ns,
                    row.empty_run_ns.unwrap_or(0.0)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `interval` and `profile` probes, measured like the others. A perf-event program runs from
/// the timer interrupt, often on an idle CPU with cold caches: an empty one costs 84–127 ns
/// per run here, over the plain per-run price calibrated on tracepoints and uprobes, so the
/// profile prices those runs apart (`instructions.run_perf_event`) and the verifier, the
/// load-time checker and the Coq cost table charge it on perf-event exits.
#[test]
fn measured_cost_of_perf_event_probes_stays_under_the_proven_bound() {
    if !kernel_ready() {
        return;
    }
    let mut rows = Vec::new();
    for (case, source, workload) in &perf_event_cases() {
        rows.extend(measure(case, source, *workload));
    }
    print_and_check(&rows);
}

/// Every example is measured by one of the cases above (named by its file name first), so a
/// new example cannot go unmeasured.
#[test]
fn every_example_is_measured() {
    let measured =
        ["opens.ppl", "syscount.ppl", "sched_wakeups.ppl", "syscall_latency.ppl", "readline.ppl", "profile.ppl"]
            .into_iter()
            .map(String::from)
            .chain(tool_cases().into_iter().map(|(name, _, _)| name))
            .chain(perf_event_cases().into_iter().map(|(case, _, _)| case))
            .collect::<Vec<String>>();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for entry in std::fs::read_dir(&dir).expect("the examples directory") {
        let name = entry.expect("a directory entry").file_name().to_string_lossy().into_owned();
        if name.ends_with(".ppl") {
            assert!(measured.iter().any(|case| case.starts_with(&name)), "{name} is not measured by kernel_reality");
        }
    }
}

#[test]
fn attach_points_are_read_from_probe_lines_once_each() {
    let source =
        "probe tracepoint:a:b rate <= 1/s { }\nprobe uprobe:\"/x y\":f\n rate <= 1/s { }\n  probe tracepoint:a:b { }\n";
    assert_eq!(attach_points(source), ["tracepoint:a:b", "uprobe:\"/x y\":f"]);
    let listed = "probe tracepoint:a:b,\n      tracepoint:a:c\n    rate <= 1/s { }\nprobe a:d, tracepoint:a:b { }\n";
    assert_eq!(attach_points(listed), ["tracepoint:a:b", "tracepoint:a:c", "a:d"]);
}
