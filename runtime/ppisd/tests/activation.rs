//! Dormant probes under the activator, with the real kernel (root): a sentinel histogram of a
//! thread's sleep latency moves from normal to anomalous and back, and ppisd attaches the
//! dormant probe (metrics, audit, `/explain`, `ppisd explain`) and detaches it after recovery;
//! a KPI feed reads a real Prometheus that scrapes an exporter the test serves.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, kernel_available, sample, scrape, wait_for, Daemon, Fixture};

/// Kernel tests attach to the same tracepoints: one at a time.
static KERNEL: Mutex<()> = Mutex::new(());

/// The thread whose sleeps are the sentinel.
const SLEEPER: &str = "ppisd_sleeper";
/// The thread whose getresuid calls the dormant probe counts (a syscall no other test makes
/// often: the probe's breaker would trip on another process's storm of a common one).
const DEEP: &str = "ppisd_deep";

/// Sentinel: the latency (µs) of `clock_nanosleep` in the sleeper thread, in 5 ms buckets.
/// Dormant: counts the deep thread's getresuid calls, attached only while the sentinel is
/// anomalous.
fn source() -> String {
    let pid = std::process::id();
    format!(
        "//! A dormant probe behind a sleep-latency sentinel.\n\
         map sleep_start: hash[u32] -> u64 max 64;\n\
         map sleep_us: lhist(0, 200000, 5000);\n\
         map deep_calls: count;\n\n\
         probe tracepoint:syscalls:sys_enter_clock_nanosleep rate <= 5k/s when comm == \"{SLEEPER}\" && pid == {pid} {{\n\
         \x20   sleep_start[tid] = nsecs;\n}}\n\n\
         probe tracepoint:syscalls:sys_exit_clock_nanosleep rate <= 5k/s when comm == \"{SLEEPER}\" && pid == {pid} {{\n\
         \x20   if let t0 = sleep_start[tid] {{\n\
         \x20       sleep_us.record((nsecs - t0) / 1000);\n\
         \x20       delete sleep_start[tid];\n\
         \x20   }}\n}}\n\n\
         probe tracepoint:syscalls:sys_enter_getresuid rate <= 5k/s\n\
         \x20   activate when anomaly(sleep_us) > 0.85 for 2s\n\
         \x20   when comm == \"{DEEP}\" && pid == {pid}\n{{\n\
         \x20   deep_calls.inc();\n}}\n"
    )
}

/// Exactly `calls` getresuid calls from a thread named [`DEEP`].
fn deep_workload(calls: u32) {
    std::thread::Builder::new()
        .name(DEEP.into())
        .spawn(move || {
            for _ in 0..calls {
                let (mut real, mut effective, mut saved) = (0, 0, 0);
                // SAFETY: three valid pointers for getresuid to fill.
                unsafe { libc::getresuid(&mut real, &mut effective, &mut saved) };
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// A thread named [`SLEEPER`] sleeping `sleep_us` at a time (changeable) until stopped.
struct Sleeper {
    sleep_us: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sleeper {
    fn start(sleep_us: u64) -> Sleeper {
        let (sleep, running) = (Arc::new(AtomicU64::new(sleep_us)), Arc::new(AtomicBool::new(true)));
        let (thread_sleep, thread_running) = (Arc::clone(&sleep), Arc::clone(&running));
        let thread = std::thread::Builder::new()
            .name(SLEEPER.into())
            .spawn(move || {
                while thread_running.load(Ordering::Relaxed) {
                    let micros = thread_sleep.load(Ordering::Relaxed);
                    let request = libc::timespec {
                        tv_sec: (micros / 1_000_000) as libc::time_t,
                        tv_nsec: ((micros % 1_000_000) * 1000) as libc::c_long,
                    };
                    // SAFETY: valid timespec; clock_nanosleep makes the syscall the sentinel watches.
                    unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &request, std::ptr::null_mut()) };
                }
            })
            .unwrap();
        Sleeper { sleep_us: sleep, running, thread: Some(thread) }
    }

    fn set(&self, sleep_us: u64) {
        self.sleep_us.store(sleep_us, Ordering::Relaxed);
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn audit_events(fixture: &Fixture) -> Vec<serde_json::Value> {
    std::fs::read_to_string(fixture.dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn http_get(address: &str, path: &str) -> Result<String, String> {
    let url = ppisd::feeds::HttpUrl::parse(&format!("http://{address}"))?;
    ppisd::feeds::http_get(&url, path, Duration::from_secs(5))
}

const ACTIVE: &str = "ppis_probe_active{bundle=\"act\",probe=\"probe2\"} ";

#[test]
fn a_dormant_probe_is_attached_during_an_anomaly_and_detached_after_it() {
    let _serial = KERNEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !kernel_available() {
        return;
    }
    let fixture = Fixture::with_config("activation", "[activator]\ndwell_secs = 3\nwarmup_windows = 8\n");
    let bundle = fixture.build("act", &source());
    let address = fixture.metrics_address();
    let sleeper = Sleeper::start(1000);
    std::fs::copy(&bundle, fixture.dir.join("bundles/act.ppb")).unwrap();
    let daemon = Daemon::start(&fixture);
    assert!(daemon.wait_for_log("loaded act", Duration::from_secs(10)), "{}", daemon.log());
    assert!(
        daemon.wait_for_log("probe probe2 is dormant until anomaly(sleep_us) > 0.85 for 2s", Duration::from_secs(2))
    );

    // 1. Normal sleeps: the probe stays dormant, so the deep thread's calls are not counted.
    std::thread::sleep(Duration::from_secs(14));
    deep_workload(50);
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = scrape(&address);
    assert_eq!(sample(&metrics, ACTIVE), Some(0.0), "{metrics}\n{}", daemon.log());
    assert_eq!(sample(&metrics, "ppis_map_act_deep_calls_total "), Some(0.0), "{metrics}");
    let resting = sample(&metrics, "ppis_activation_probability{bundle=\"act\",probe=\"probe2\"} ").unwrap();
    assert!(resting < 0.5, "P(anomaly) {resting} while normal\n{}", daemon.log());
    assert!(!audit_events(&fixture).iter().any(|e| e["event"] == "probe_activated"), "{}", daemon.log());

    // 2. Sleeps 60x longer: attached within seconds.
    let anomaly_started = Instant::now();
    sleeper.set(60_000);
    let attached = wait_for(Duration::from_secs(20), || {
        (sample(&scrape(&address), ACTIVE) == Some(1.0)).then(|| anomaly_started.elapsed())
    });
    let attached_after = attached.unwrap_or_else(|| panic!("never attached:\n{}", daemon.log()));
    assert!(attached_after >= Duration::from_secs(2), "attached before `for 2s` could hold: {attached_after:?}");
    // Exactly the calls made while attached are counted.
    deep_workload(200);
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = scrape(&address);
    assert_eq!(sample(&metrics, ACTIVE), Some(1.0), "{metrics}\n{}", daemon.log());
    assert_eq!(sample(&metrics, "ppis_map_act_deep_calls_total "), Some(200.0), "{metrics}");
    assert_eq!(sample(&metrics, "ppis_activations_total{bundle=\"act\",probe=\"probe2\"} "), Some(1.0), "{metrics}");
    let posterior = sample(&metrics, "ppis_activation_probability{bundle=\"act\",probe=\"probe2\"} ").unwrap();
    assert!(posterior >= 0.6, "P(anomaly) {posterior} while attached");

    // `/explain` and `ppisd explain` say why.
    let explain: serde_json::Value = serde_json::from_str(&http_get(&address, "/explain").unwrap()).unwrap();
    let probe = &explain["dormant_probes"][0];
    assert_eq!(probe["program"], "probe2", "{explain}");
    assert_eq!(probe["attached"], true, "{explain}");
    assert_eq!(probe["signal"], "sleep_us");
    let evidence = &probe["explanation"]["evidence"][0];
    assert_eq!(evidence["signal"], "act::sleep_us", "{explain}");
    assert!(evidence["last_value"].as_f64().unwrap() > 50_000.0, "{explain}");
    let table =
        Command::new(env!("CARGO_BIN_EXE_ppisd")).args(["explain", "--config"]).arg(fixture.config()).output().unwrap();
    let table_text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{table_text}{}", String::from_utf8_lossy(&table.stderr));
    eprintln!("ppisd explain:\n{table_text}");
    assert!(table_text.contains("act/probe2") && table_text.contains("attached"), "{table_text}");
    assert!(table_text.contains("act::sleep_us: P="), "{table_text}");

    // 3. Back to normal: detached after the dwell, and no longer counting.
    sleeper.set(1000);
    let detached = wait_for(Duration::from_secs(40), || (sample(&scrape(&address), ACTIVE) == Some(0.0)).then_some(()));
    assert!(detached.is_some(), "never detached:\n{}", daemon.log());
    deep_workload(30);
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = scrape(&address);
    assert_eq!(sample(&metrics, "ppis_map_act_deep_calls_total "), Some(200.0), "{metrics}");
    assert_eq!(sample(&metrics, "ppis_deactivations_total{bundle=\"act\",probe=\"probe2\"} "), Some(1.0), "{metrics}");
    drop(sleeper);
    daemon.stop();

    // 4. The audit log has the dormant registration, and each transition with its evidence.
    let events = audit_events(&fixture);
    let find =
        |kind: &str| events.iter().find(|e| e["event"] == kind).unwrap_or_else(|| panic!("no {kind}: {events:?}"));
    assert_eq!(find("probe_dormant")["signal"], "sleep_us");
    let activated = find("probe_activated");
    assert_eq!(activated["probe"], "probe2");
    assert!(activated["posterior"].as_f64().unwrap() >= 0.85, "{activated}");
    assert_eq!(activated["evidence"][0]["signal"], "act::sleep_us");
    let deactivated = find("probe_deactivated");
    assert!(deactivated["reason"].as_str().unwrap().contains("release"), "{deactivated}");
    assert_eq!(events.iter().filter(|e| e["event"] == "probe_activated").count(), 1);
    assert!(ppisd::audit::verify(&fixture.dir.join("audit.log")).is_ok());
}

/// A cross-bundle sentinel that is not loaded: the dormant probe waits, with one log line
/// and one audit entry, and is resolved when the sentinel's bundle arrives.
#[test]
fn a_cross_bundle_sentinel_is_resolved_when_its_bundle_is_loaded() {
    let _serial = KERNEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !kernel_available() {
        return;
    }
    let fixture = Fixture::new("cross");
    let pid = std::process::id();
    let deep = fixture.build(
        "deep",
        &format!(
            "map calls: count;\nprobe tracepoint:syscalls:sys_enter_getppid rate <= 5k/s \
             activate when anomaly(front::requests) > 0.9 for 5s when pid == {pid} {{\n    calls.inc();\n}}\n"
        ),
    );
    let front = fixture.build(
        "front",
        &format!("map requests: count;\nprobe tracepoint:syscalls:sys_enter_getpgid rate <= 5k/s when pid == {pid} {{\n    requests.inc();\n}}\n"),
    );
    std::fs::copy(&deep, fixture.dir.join("bundles/deep.ppb")).unwrap();
    let daemon = Daemon::start(&fixture);
    let waiting = "deep/probe0: dormant probe cannot be activated yet: sentinel bundle front is not loaded";
    assert!(daemon.wait_for_log(waiting, Duration::from_secs(10)), "{}", daemon.log());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(daemon.log().matches(waiting).count(), 1, "logged once: {}", daemon.log());
    std::fs::copy(&front, fixture.dir.join("bundles/front.ppb")).unwrap();
    assert!(daemon.wait_for_log("deep/probe0: dormant, watching sentinel front::requests", Duration::from_secs(10)));
    daemon.stop();
    let events = audit_events(&fixture);
    let missing: Vec<_> = events.iter().filter(|e| e["event"] == "activation_sentinel_missing").collect();
    assert_eq!(missing.len(), 1, "{events:?}");
    assert_eq!(missing[0]["sentinel"], "front::requests");
    assert!(events.iter().any(|e| e["event"] == "activation_sentinel_resolved"));
}

/// `prometheus` on PATH; without it skip, unless `CI=true`.
fn prometheus_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).map(|dir| dir.join("prometheus")).find(|candidate| candidate.is_file());
    if found.is_none() {
        let why = "the prometheus binary is not installed (apt-get install prometheus)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("Prometheus test cannot run: {why}");
        }
        eprintln!("skipping Prometheus test: {why}");
    }
    found
}

/// A Prometheus server scraping `target` every second, killed when dropped.
struct Prometheus(Child);

impl Prometheus {
    fn start(binary: &Path, dir: &Path, target: &str, address: &str) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: kpi\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus starts");
        Prometheus(child)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A one-gauge exporter (`ppis_test_orders VALUE`) whose value the test changes.
fn serve_kpi(value: Arc<AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).map_or(false, |n| n == 1) {
                request.push(byte[0]);
            }
            let body = format!("# TYPE ppis_test_orders gauge\nppis_test_orders {}\n", value.load(Ordering::Relaxed));
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    address
}

#[test]
fn a_prometheus_feed_sees_the_value_prometheus_scraped() {
    let _serial = KERNEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !kernel_available() {
        return;
    }
    let Some(binary) = prometheus_binary() else { return };
    let value = Arc::new(AtomicU64::new(120));
    let exporter = serve_kpi(Arc::clone(&value));
    let prometheus_address = format!("127.0.0.1:{}", free_port());
    let feed = format!(
        "[[feed]]\nname = \"orders\"\nkind = \"prometheus\"\nurl = \"http://{prometheus_address}\"\n\
         query = \"ppis_test_orders{{job=\\\"kpi\\\"}}\"\nhigher_is_bad = false\n"
    );
    let fixture = Fixture::with_config("feed", &feed);
    let _prometheus = Prometheus::start(&binary, &fixture.dir, &exporter, &prometheus_address);
    let daemon = Daemon::start(&fixture);
    let address = fixture.metrics_address();
    let last_value = |address: &str| -> Option<f64> {
        let explain: serde_json::Value = serde_json::from_str(&http_get(address, "/explain").ok()?).ok()?;
        let feed = explain["feeds"].as_array()?.iter().find(|feed| feed["signal"] == "feed:orders")?.clone();
        feed["last_value"].as_f64()
    };
    let first = wait_for(Duration::from_secs(30), || (last_value(&address) == Some(120.0)).then_some(()));
    assert!(first.is_some(), "the feed never saw 120: {:?}\n{}", last_value(&address), daemon.log());
    value.store(75, Ordering::Relaxed);
    let second = wait_for(Duration::from_secs(15), || (last_value(&address) == Some(75.0)).then_some(()));
    assert!(second.is_some(), "the feed never saw 75: {:?}\n{}", last_value(&address), daemon.log());
    daemon.stop();
}

/// `ppis-workload` (crate `ppis-tests`) next to the `ppisd` under test, built if missing.
fn workload_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_ppisd")).with_file_name("ppis-workload");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "ppis-tests", "--bin", "ppis-workload"])
            .current_dir(common::workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building ppis-workload failed");
    }
    path
}

/// The end to end: a latency sentinel on the workload's request handler, and a dormant
/// CPU sampler (`profile:hz:99` keyed by `ustack`) that ppisd attaches once the handler turns
/// slow mid-run; its flame graph then names the slow function, and it is detached after the
/// workload recovers.
#[test]
fn a_dormant_profiler_is_woken_by_a_slow_handler_and_names_it() {
    let _serial = KERNEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !kernel_available() {
        return;
    }
    let fixture = Fixture::with_config("e2e", "[activator]\ndwell_secs = 3\nwarmup_windows = 5\n");
    // A private copy: the uprobes and the stack symboliser must see the very binary that runs,
    // even if the shared one is rebuilt meanwhile.
    let workload = fixture.dir.join("ppis-workload");
    std::fs::copy(workload_binary(), &workload).unwrap();
    let binary = workload.display();
    // Normal for 15 s, slow from 15 s to 40 s, normal again until 60 s. Started first, so that
    // the probes can filter on its pid (other tests may run the same workload binary).
    let started = Instant::now();
    let mut child =
        Command::new(&workload).args(["slow-midrun", "60", "15", "40"]).stdout(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let source = format!(
        "//! Samples the workload's stacks only while its request latency is anomalous.\n\
         map started: hash[u32] -> u64 max 64;\n\
         map request_us: lhist(0, 200000, 5000);\n\
         map samples: count[ustack] max 4096;\n\n\
         probe uprobe:{binary}:ppis_serve_request rate <= 2k/s when pid == {pid} {{\n    started[tid] = nsecs;\n}}\n\n\
         probe uretprobe:{binary}:ppis_serve_request rate <= 2k/s when pid == {pid} {{\n\
         \x20   if let t0 = started[tid] {{\n\
         \x20       request_us.record((nsecs - t0) / 1000);\n\
         \x20       delete started[tid];\n\
         \x20   }}\n}}\n\n\
         probe profile:hz:99 activate when anomaly(request_us) > 0.85 for 2s when pid == {pid} {{\n\
         \x20   samples[ustack].inc();\n}}\n"
    );
    let bundle = fixture.build("e2e", &source);
    std::fs::copy(&bundle, fixture.dir.join("bundles/e2e.ppb")).unwrap();
    let address = fixture.metrics_address();
    let daemon = Daemon::start(&fixture);
    assert!(daemon.wait_for_log("loaded e2e", Duration::from_secs(10)), "{}", daemon.log());
    let active = "ppis_probe_active{bundle=\"e2e\",probe=\"probe2\"} ";
    let until_slow = Duration::from_secs(14).saturating_sub(started.elapsed());
    assert!(until_slow >= Duration::from_secs(6), "the daemon took too long to start to learn normal");
    std::thread::sleep(until_slow);
    assert_eq!(sample(&scrape(&address), active), Some(0.0), "attached while normal:\n{}", daemon.log());
    let attached = wait_for(Duration::from_secs(20), || (sample(&scrape(&address), active) == Some(1.0)).then_some(()));
    assert!(attached.is_some(), "never attached:\n{}", daemon.log());
    let attached_at = started.elapsed();
    assert!(attached_at >= Duration::from_secs(15), "attached before the slow phase");
    assert!(attached_at < Duration::from_secs(35), "attached too late: {attached_at:?}\n{}", daemon.log());
    // A few seconds of samples, then the flame graph of the sampler's map names the slow function.
    let folded = wait_for(Duration::from_secs(5), || {
        let folded = http_get(&address, "/stacks/e2e/samples.folded").ok()?;
        (folded.lines().filter(|line| line.contains("ppis_request_slow")).count() > 0).then_some(folded)
    });
    let folded = folded.unwrap_or_else(|| {
        panic!(
            "no sample in ppis_request_slow: {:?}\n{}",
            http_get(&address, "/stacks/e2e/samples.folded"),
            daemon.log()
        )
    });
    std::thread::sleep(Duration::from_secs(2));
    let folded = http_get(&address, "/stacks/e2e/samples.folded").unwrap_or(folded);
    let count = |line: &str| line.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    let slow_samples: u64 = folded.lines().filter(|line| line.contains("ppis_request_slow")).map(count).sum();
    let all_samples: u64 = folded.lines().map(count).sum();
    assert!(slow_samples * 2 > all_samples, "the slow function is not where the time goes:\n{folded}");
    assert!(folded.contains("ppis_serve_request;ppis_request_slow"), "{folded}");
    let svg = http_get(&address, "/stacks/e2e/samples.svg").unwrap();
    assert!(svg.contains("ppis_request_slow"), "the flame graph does not name it");

    let detached = wait_for(Duration::from_secs(45), || (sample(&scrape(&address), active) == Some(0.0)).then_some(()));
    assert!(detached.is_some(), "never detached:\n{}", daemon.log());
    assert!(started.elapsed() >= Duration::from_secs(40), "detached while still slow:\n{}", daemon.log());
    let _ = child.kill();
    let _ = child.wait();
    daemon.stop();
    let events = audit_events(&fixture);
    assert_eq!(events.iter().filter(|e| e["event"] == "probe_activated").count(), 1, "{events:?}");
    assert_eq!(events.iter().filter(|e| e["event"] == "probe_deactivated").count(), 1, "{events:?}");
}
