//! `ppisd-bench`: what running `ppisd` costs. Builds N one-probe bundles with `ppisc`, then
//! measures (root needed):
//!
//! 1. load-to-attached latency per bundle, in process (signature and hashes, proof check,
//!    kernel load and attach, timed separately) and end to end through a running daemon
//!    (rename into the bundle directory → `loaded` log line);
//! 2. the daemon's resident memory (VmRSS) and CPU (utime + stime from `/proc/PID/stat`) with
//!    no bundles, with N probes at idle and with N probes under a paced syscall load, scraping
//!    `/metrics` once a second as Prometheus would; the difference between the first two is
//!    the CPU the daemon's own monitoring of N probes costs;
//! 3. with `--soak SECS`, RSS and open fds every 10 s under a light load, and whether they
//!    stay flat (exit 1 if not).
//!
//! `cargo build -p ppisd -p ppis-compiler && sudo target/debug/ppisd-bench`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use ppis_bundle::pcc::{check_bundle, HostPolicy};
use ppis_bundle::{read_bundle, TrustList};
use ppis_manifest::profile::CostProfile;
use ppis_runtime::Session;
use ppisd::daemon::{load_trust, online_cpus, SHIPPED_PROFILE};

#[derive(Parser)]
#[command(name = "ppisd-bench", about = "Measure ppisd: load latency, memory, CPU, monitoring overhead, soak")]
struct Cli {
    /// The ppisd binary (default: next to this one).
    #[arg(long)]
    ppisd: Option<PathBuf>,
    /// The ppisc binary (default: next to this one).
    #[arg(long)]
    ppisc: Option<PathBuf>,
    /// Bundles (one probe each, on distinct syscall tracepoints).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10))]
    probes: u32,
    /// Length of each CPU/memory measurement phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Syscalls per second per traced syscall during the load phase (probes declare 8k/s).
    #[arg(long, default_value_t = 4000)]
    load_rate: u32,
    /// Instead of the benchmark: run this many seconds with N probes under a light load and
    /// report whether RSS and the fd count stay flat.
    #[arg(long)]
    soak: Option<u64>,
}

/// One syscall per probe: rare on an idle host, cheap, without side effects.
const SYSCALLS: [(&str, libc::c_long); 10] = [
    ("getppid", libc::SYS_getppid),
    ("getuid", libc::SYS_getuid),
    ("geteuid", libc::SYS_geteuid),
    ("getgid", libc::SYS_getgid),
    ("getegid", libc::SYS_getegid),
    ("getpgid", libc::SYS_getpgid),
    ("getsid", libc::SYS_getsid),
    ("getpriority", libc::SYS_getpriority),
    ("gettid", libc::SYS_gettid),
    ("getcwd", libc::SYS_getcwd),
];

/// Declared rate of every bench probe; the default profile allows it within the 0.5 % budget.
const DECLARED_RATE: &str = "8k/s";

fn bundle_source(syscall: &str) -> String {
    format!(
        "//! ppisd-bench: counts {syscall} calls, by process name.\nmap calls: count;\n\
         map by_comm: count[str[16]] max 64;\n\
         probe tracepoint:syscalls:sys_enter_{syscall} rate <= {DECLARED_RATE} {{\n    calls.inc();\n    \
         by_comm[comm].inc();\n}}\n"
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ppisd-bench: error: {error}");
            ExitCode::from(2)
        }
    }
}

fn sibling(name: &str, given: &Option<PathBuf>) -> Result<PathBuf, String> {
    let path = match given {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name(name),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} not found: `cargo build -p ppisd -p ppis-compiler` or pass --{name}", path.display()))
    }
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root (BPF, tracefs, BPF_ENABLE_STATS)".into());
    }
    let ppisd = sibling("ppisd", &cli.ppisd)?;
    let ppisc = sibling("ppisc", &cli.ppisc)?;
    let work = std::env::temp_dir().join(format!("ppisd-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let bundles = build_bundles(&ppisc, &work, cli.probes as usize)?;
    let result = match cli.soak {
        Some(seconds) => soak(&ppisd, &work, &bundles, seconds),
        None => benchmark(cli, &ppisd, &work, &bundles),
    };
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn build_bundles(ppisc: &Path, work: &Path, count: usize) -> Result<Vec<PathBuf>, String> {
    let key = work.join("key");
    command_ok(Command::new(ppisc).arg("keygen").arg("-o").arg(&key))?;
    let mut bundles = Vec::new();
    for (index, (syscall, _)) in SYSCALLS.iter().take(count).enumerate() {
        let source = work.join(format!("bench{index}.ppl"));
        std::fs::write(&source, bundle_source(syscall)).map_err(|e| e.to_string())?;
        let output = work.join(format!("bench{index}.ppb"));
        command_ok(Command::new(ppisc).arg("build").arg(&source).arg("-o").arg(&output).arg("--key").arg(&key))?;
        bundles.push(output);
    }
    Ok(bundles)
}

fn command_ok(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// A daemon child whose stderr lines are kept with the time they arrived.
struct DaemonProcess {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    metrics: String,
    bundle_dir: PathBuf,
}

impl DaemonProcess {
    fn start(ppisd: &Path, work: &Path, name: &str, poll_ms: u64) -> Result<DaemonProcess, String> {
        let dir = work.join(name);
        let bundle_dir = dir.join("bundles");
        std::fs::create_dir_all(&bundle_dir).map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let metrics = format!("127.0.0.1:{port}");
        let config = dir.join("ppisd.toml");
        std::fs::write(
            &config,
            format!(
                "trusted_keys = [\"{}\"]\nbundle_dir = \"bundles\"\naudit_log = \"audit.log\"\n\
                 metrics_listen = \"{metrics}\"\npoll_interval_ms = {poll_ms}\n",
                work.join("key.pub").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut child = Command::new(ppisd)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", ppisd.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push((Instant::now(), line));
            }
        });
        let daemon = DaemonProcess { child, lines, metrics, bundle_dir };
        daemon.wait_for_line("ppisd: started", Duration::from_secs(10))?;
        Ok(daemon)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When the first line containing `needle` arrived.
    fn wait_for_line(&self, needle: &str, within: Duration) -> Result<Instant, String> {
        let deadline = Instant::now() + within;
        loop {
            {
                let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((when, _)) = lines.iter().find(|(_, line)| line.contains(needle)) {
                    return Ok(*when);
                }
            }
            if Instant::now() > deadline {
                let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
                let log: Vec<&str> = lines.iter().map(|(_, line)| line.as_str()).collect();
                return Err(format!("ppisd never logged `{needle}`:\n{}", log.join("\n")));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Deploys a bundle the documented way (rename into the directory); returns when.
    fn deploy(&self, bundle: &Path) -> Result<Instant, String> {
        let name = bundle.file_name().ok_or("bundle without a name")?;
        let staging = self.bundle_dir.join(format!(".{}.tmp", name.to_string_lossy()));
        std::fs::copy(bundle, &staging).map_err(|e| e.to_string())?;
        let started = Instant::now();
        std::fs::rename(&staging, self.bundle_dir.join(name)).map_err(|e| e.to_string())?;
        Ok(started)
    }

    fn scrape(&self) -> String {
        let mut response = String::new();
        if let Ok(mut stream) = TcpStream::connect(&self.metrics) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(stream, "GET /metrics HTTP/1.1\r\nHost: ppisd\r\n\r\n");
            let _ = stream.read_to_string(&mut response);
        }
        response
    }

    fn stop(mut self) -> Result<(), String> {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return if status.success() { Ok(()) } else { Err(format!("ppisd exited with {status}")) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("ppisd did not stop within 10 s".into())
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) of a process, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // The command name is in parentheses and may contain spaces: count fields after it.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or("malformed stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks = |index: usize| fields.get(index - 3).and_then(|f| f.parse::<u64>().ok()).ok_or("malformed stat");
    let total = ticks(14)? + ticks(15)?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100).max(1);
    Ok(Duration::from_nanos(total * 1_000_000_000 / per_second))
}

/// Time on CPU of every thread of a process, nanosecond-precise (first field of
/// `/proc/PID/task/TID/schedstat`), where `/proc/PID/stat` counts 10 ms ticks.
fn run_time(pid: u32) -> Result<Duration, String> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| e.to_string())?.flatten() {
        // A thread that exited between listing and reading no longer counts.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        total += text.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()).unwrap_or(0);
    }
    Ok(Duration::from_nanos(total))
}

/// Resident memory in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_string())
}

fn open_fds(pid: u32) -> Result<usize, String> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| e.to_string())?.count())
}

/// Sum of the samples of `family` (e.g. `ppis_probe_overhead_ratio{`) in a scrape.
fn metric_sum(metrics: &str, family: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(family))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Calls every traced syscall `rate` times a second from a thread named `ppisd-bench-ld`,
/// paced against the clock, until stopped.
struct Load {
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Load {
    fn start(probes: usize, rate: u32) -> Load {
        let running = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&running);
        let thread = std::thread::Builder::new()
            .name("ppisd-bench-ld".into())
            .spawn(move || {
                let started = Instant::now();
                let mut rounds = 0u64;
                let mut buffer = [0u8; 256];
                while flag.load(Ordering::Relaxed) {
                    let due = (started.elapsed().as_secs_f64() * f64::from(rate)) as u64;
                    while rounds < due {
                        for (_, number) in SYSCALLS.iter().take(probes) {
                            // SAFETY: read-only syscalls; getcwd writes into `buffer` of the
                            // given size, the others ignore their (zero) arguments.
                            unsafe { libc::syscall(*number, buffer.as_mut_ptr(), buffer.len(), 0) };
                        }
                        rounds += 1;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                rounds
            })
            .expect("the load thread starts");
        Load { running, thread: Some(thread) }
    }

    fn stop(mut self) -> u64 {
        self.running.store(false, Ordering::Relaxed);
        self.thread.take().and_then(|thread| thread.join().ok()).unwrap_or(0)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

/// One measured phase of a running daemon.
struct Phase {
    name: String,
    rss_kib: u64,
    cpu_ms_per_s: f64,
    /// The same from the scheduler's nanosecond counters (live threads only).
    run_ms_per_s: f64,
    probes_overhead_percent: f64,
    events_per_s: f64,
}

/// Measures `pid` for `seconds`, scraping once a second; RSS is the last sample.
fn measure_phase(daemon: &DaemonProcess, name: &str, seconds: u64) -> Result<Phase, String> {
    let pid = daemon.pid();
    let first = daemon.scrape();
    let (cpu0, run0, t0) = (cpu_time(pid)?, run_time(pid)?, Instant::now());
    let mut overhead = Vec::new();
    for _ in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        overhead.push(metric_sum(&daemon.scrape(), "ppis_probe_overhead_ratio{"));
    }
    let (cpu1, run1, elapsed) = (cpu_time(pid)?, run_time(pid)?, t0.elapsed());
    let last = daemon.scrape();
    let events = metric_sum(&last, "ppis_probe_events_total{") - metric_sum(&first, "ppis_probe_events_total{");
    let tripped = metric_sum(&last, "ppis_probes_tripped_total{");
    if tripped > 0.0 {
        eprintln!("ppisd-bench: warning: {tripped} breaker trip(s) during `{name}`");
    }
    Ok(Phase {
        name: name.to_string(),
        rss_kib: rss_kib(pid)?,
        cpu_ms_per_s: cpu1.saturating_sub(cpu0).as_secs_f64() * 1000.0 / elapsed.as_secs_f64(),
        run_ms_per_s: run1.saturating_sub(run0).as_secs_f64() * 1000.0 / elapsed.as_secs_f64(),
        // `+ 0.0`: an empty f64 sum is -0.0, which would print as "-0.000".
        probes_overhead_percent: overhead.iter().sum::<f64>() / overhead.len().max(1) as f64 * 100.0 + 0.0,
        events_per_s: events / elapsed.as_secs_f64(),
    })
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn benchmark(cli: &Cli, ppisd: &Path, work: &Path, bundles: &[PathBuf]) -> Result<ExitCode, String> {
    let cpus = online_cpus();
    println!("ppisd-bench: {} bundle(s), {cpus} CPU(s), kernel {}", bundles.len(), kernel_release());

    // 1a. In process: each step of accepting a bundle, timed.
    let trust = load_trust(&[work.join("key.pub")])?;
    let profile = CostProfile::from_json(SHIPPED_PROFILE)?;
    println!("\nload-to-attached, in process (ms)");
    println!("{:<10} {:>10} {:>11} {:>14} {:>8}", "bundle", "signature", "proof check", "load+attach", "total");
    let mut totals = Vec::new();
    for bundle in bundles {
        let (signature, check, kernel) = time_load(bundle, &trust, &profile, cpus)?;
        let total = signature + check + kernel;
        totals.push(total);
        println!(
            "{:<10} {:>10.2} {:>11.2} {:>14.2} {:>8.2}",
            bundle.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned()),
            millis(signature),
            millis(check),
            millis(kernel),
            millis(total)
        );
    }
    print_spread("in-process total", &totals);

    // 1b. End to end: rename into the directory of a daemon polling every 100 ms.
    let poll_ms = 100;
    let daemon = DaemonProcess::start(ppisd, work, "latency", poll_ms)?;
    let mut latencies = Vec::new();
    for bundle in bundles {
        let name = bundle.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
        let deployed = daemon.deploy(bundle)?;
        let loaded = daemon.wait_for_line(&format!("loaded {name} "), Duration::from_secs(10))?;
        latencies.push(loaded.duration_since(deployed));
    }
    daemon.stop()?;
    println!("\nload-to-attached through the daemon (rename → `loaded` line, poll interval {poll_ms} ms)");
    print_spread("end to end", &latencies);

    // 2. Memory and CPU at the default poll interval (1 s).
    let daemon = DaemonProcess::start(ppisd, work, "steady", 1000)?;
    std::thread::sleep(Duration::from_secs(2));
    let mut phases = vec![measure_phase(&daemon, "no bundles, idle", cli.seconds)?];
    for bundle in bundles {
        daemon.deploy(bundle)?;
    }
    for bundle in bundles {
        let name = bundle.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
        daemon.wait_for_line(&format!("loaded {name} "), Duration::from_secs(20))?;
    }
    std::thread::sleep(Duration::from_secs(2));
    let probes = bundles.len();
    phases.push(measure_phase(&daemon, &format!("{probes} probes, idle"), cli.seconds)?);
    let load = Load::start(probes, cli.load_rate);
    std::thread::sleep(Duration::from_secs(2));
    let name = format!("{probes} probes, {}/s syscalls", u64::from(cli.load_rate) * probes as u64);
    phases.push(measure_phase(&daemon, &name, cli.seconds)?);
    load.stop();
    daemon.stop()?;

    println!("\nppisd process, {} s per phase, /metrics scraped every second, poll interval 1 s", cli.seconds);
    println!(
        "{:<32} {:>8} {:>13} {:>17} {:>10} {:>20}",
        "phase", "RSS MiB", "stat ms/s", "schedstat ms/s", "events/s", "probes' cost % CPUs"
    );
    for phase in &phases {
        println!(
            "{:<32} {:>8.1} {:>13.2} {:>9.3} ({:.3}%) {:>10.0} {:>20.3}",
            phase.name,
            phase.rss_kib as f64 / 1024.0,
            phase.cpu_ms_per_s,
            phase.run_ms_per_s,
            phase.run_ms_per_s / 10.0,
            phase.events_per_s,
            phase.probes_overhead_percent
        );
    }
    println!("(stat: utime + stime of /proc/PID/stat, 10 ms ticks; schedstat: ns; % of one CPU)");
    let monitoring = phases[1].run_ms_per_s - phases[0].run_ms_per_s;
    println!(
        "\nmonitoring {probes} probes costs ppisd {monitoring:.2} ms CPU per second ({:.3} % of one CPU, {:.3} % of all {cpus})",
        monitoring / 10.0,
        monitoring / 10.0 / f64::from(cpus)
    );
    Ok(ExitCode::SUCCESS)
}

/// Signature and hashes, proof check, kernel load and attach of one bundle, in this process.
fn time_load(
    bundle: &Path,
    trust: &TrustList,
    profile: &CostProfile,
    cpus: u32,
) -> Result<(Duration, Duration, Duration), String> {
    let started = Instant::now();
    let bytes = ppis_bundle::load_bundle_file(bundle).map_err(|e| e.to_string())?;
    let read = read_bundle(&bytes, trust).map_err(|e| e.to_string())?;
    let signed = Instant::now();
    let policy = HostPolicy { profile, cpus, require_profile_match: true };
    check_bundle(&read, &policy).map_err(|e| format!("proof check: {e}"))?;
    let checked = Instant::now();
    let (session, failures) = Session::start(&read.object, &read.manifest).map_err(|e| e.to_string())?;
    let attached = Instant::now();
    if let Some(failure) = failures.first() {
        return Err(format!("{}: {failure}", bundle.display()));
    }
    drop(session);
    Ok((signed - started, checked - signed, attached - checked))
}

fn print_spread(what: &str, samples: &[Duration]) {
    let mut sorted: Vec<f64> = samples.iter().copied().map(millis).collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return;
    }
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    println!(
        "{what}: min {:.2} ms, median {:.2} ms, mean {mean:.2} ms, max {:.2} ms",
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "?".into(), |text| text.trim().to_string())
}

/// Samples every this often in soak mode.
const SOAK_SAMPLE: Duration = Duration::from_secs(10);

fn soak(ppisd: &Path, work: &Path, bundles: &[PathBuf], seconds: u64) -> Result<ExitCode, String> {
    let daemon = DaemonProcess::start(ppisd, work, "soak", 1000)?;
    for bundle in bundles {
        daemon.deploy(bundle)?;
    }
    for bundle in bundles {
        let name = bundle.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
        daemon.wait_for_line(&format!("loaded {name} "), Duration::from_secs(20))?;
    }
    // A light load (1k/s per probe) so maps, stats and scrapes all keep working.
    let load = Load::start(bundles.len(), 1000);
    let pid = daemon.pid();
    let started = Instant::now();
    let mut samples: Vec<(u64, u64, usize)> = Vec::new();
    println!("{:>6} {:>9} {:>5}", "t (s)", "RSS KiB", "fds");
    while started.elapsed() < Duration::from_secs(seconds) {
        let _ = daemon.scrape();
        let sample = (started.elapsed().as_secs(), rss_kib(pid)?, open_fds(pid)?);
        println!("{:>6} {:>9} {:>5}", sample.0, sample.1, sample.2);
        samples.push(sample);
        std::thread::sleep(SOAK_SAMPLE);
    }
    load.stop();
    daemon.stop()?;
    let verdict = soak_verdict(&samples.iter().map(|(_, rss, fds)| (*rss, *fds)).collect::<Vec<_>>());
    println!("{}", verdict.1);
    Ok(if verdict.0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Flat: the fd count never changes, and the mean RSS of the last third exceeds that of the
/// first third by at most 5 % and at most 1 MiB (allocator warm-up happens in the first).
fn soak_verdict(samples: &[(u64, usize)]) -> (bool, String) {
    if samples.len() < 3 {
        return (false, "too few samples for a verdict (soak at least 30 s)".into());
    }
    let third = samples.len() / 3;
    let mean = |part: &[(u64, usize)]| part.iter().map(|(rss, _)| *rss as f64).sum::<f64>() / part.len() as f64;
    let (early, late) = (mean(&samples[..third]), mean(&samples[samples.len() - third..]));
    let growth = late - early;
    let fds: Vec<usize> = samples.iter().map(|(_, fds)| *fds).collect();
    let (fd_min, fd_max) = (fds.iter().min().copied().unwrap_or(0), fds.iter().max().copied().unwrap_or(0));
    let rss_flat = growth <= (early * 0.05).min(1024.0);
    let fds_flat = fd_min == fd_max;
    let verdict = format!(
        "RSS: first third {early:.0} KiB, last third {late:.0} KiB ({growth:+.0} KiB): {}; fds: {fd_min}..{fd_max}: {}",
        if rss_flat { "flat" } else { "GROWING" },
        if fds_flat { "flat" } else { "CHANGING" }
    );
    (rss_flat && fds_flat, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soak_verdicts() {
        let steady: Vec<(u64, usize)> = (0..9).map(|i| (20_000 + i % 2 * 100, 40)).collect();
        assert!(soak_verdict(&steady).0, "{}", soak_verdict(&steady).1);
        let leaking: Vec<(u64, usize)> = (0..9).map(|i| (20_000 + i * 1000, 40)).collect();
        let (flat, text) = soak_verdict(&leaking);
        assert!(!flat && text.contains("GROWING"), "{text}");
        let fd_leak: Vec<(u64, usize)> = (0..9).map(|i| (20_000, 40 + i as usize)).collect();
        let (flat, text) = soak_verdict(&fd_leak);
        assert!(!flat && text.contains("fds: 40..48: CHANGING"), "{text}");
        assert!(!soak_verdict(&steady[..2]).0);
    }

    #[test]
    fn bench_sources_trace_their_syscall() {
        let source = bundle_source("getppid");
        assert!(source.contains("tracepoint:syscalls:sys_enter_getppid rate <= 8k/s"), "{source}");
    }

    #[test]
    fn metric_sums_add_every_series() {
        let text = "ppis_probe_events_total{bundle=\"a\"} 3\nppis_probe_events_total{bundle=\"b\"} 4\nother 9\n";
        assert_eq!(metric_sum(text, "ppis_probe_events_total{"), 7.0);
    }
}
