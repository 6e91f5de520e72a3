//! Shared by the `ppisd` integration tests: a fixture directory with a key, a config and
//! bundles built by the real `ppisc`; the daemon as a child process; the skip-or-fail rule for
//! tests that need the kernel; scraping `/metrics`.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The `ppisc` next to the `ppisd` under test, built if missing.
pub fn ppisc() -> PathBuf {
    let ppisd = PathBuf::from(env!("CARGO_BIN_EXE_ppisd"));
    let path = ppisd.with_file_name("ppisc");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "ppis-compiler", "--bin", "ppisc"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building ppisc failed");
    }
    path
}

pub struct Fixture {
    pub dir: PathBuf,
    pub key: PathBuf,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        Fixture::with_config(name, "")
    }

    /// A fixture whose config ends with `extra` (TOML, e.g. an `[otlp]` table).
    pub fn with_config(name: &str, extra: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("ppisd-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bundles")).unwrap();
        let key = dir.join("key");
        let out = Command::new(ppisc()).arg("keygen").arg("-o").arg(&key).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let config = format!(
            "trusted_keys = [\"key.pub\"]\nbundle_dir = \"bundles\"\naudit_log = \"audit.log\"\n\
             cost_profile = \"{}\"\nmetrics_listen = \"127.0.0.1:{}\"\n{extra}",
            workspace_root().join("profiles/reference.json").display(),
            free_port()
        );
        std::fs::write(dir.join("ppisd.toml"), config).unwrap();
        Fixture { dir, key }
    }

    /// Builds `source` into `NAME.ppb` (outside the bundle directory) with the reference profile.
    pub fn build(&self, name: &str, source: &str) -> PathBuf {
        let source_path = self.dir.join(format!("{name}.ppl"));
        std::fs::write(&source_path, source).unwrap();
        let output = self.dir.join(format!("{name}.ppb"));
        let out = Command::new(ppisc())
            .arg("--profile")
            .arg(workspace_root().join("profiles/reference.json"))
            .arg("build")
            .arg(&source_path)
            .arg("-o")
            .arg(&output)
            .arg("--key")
            .arg(&self.key)
            .output()
            .unwrap();
        assert!(out.status.success(), "ppisc build failed: {}", String::from_utf8_lossy(&out.stderr));
        output
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("ppisd.toml")
    }

    pub fn metrics_address(&self) -> String {
        let text = std::fs::read_to_string(self.config()).unwrap();
        text.lines().find_map(|l| l.strip_prefix("metrics_listen = ")).unwrap().trim_matches('"').to_string()
    }

    pub fn check(&self, bundle: &Path) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_ppisd"))
            .arg("check")
            .arg("--config")
            .arg(self.config())
            .arg(bundle)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Root, tracefs and BPF are needed; without them skip, unless `CI=true`.
pub fn kernel_available() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tracefs = Path::new("/sys/kernel/tracing/events/syscalls").exists()
        || Path::new("/sys/kernel/debug/tracing/events/syscalls").exists();
    if root && tracefs {
        return true;
    }
    let why = if root { "tracefs with syscall tracepoints is not mounted" } else { "not running as root" };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("kernel test cannot run: {why}");
    }
    eprintln!("skipping kernel test: {why}");
    false
}

pub struct Daemon {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn start(fixture: &Fixture) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ppisd"))
            .arg("run")
            .arg("--config")
            .arg(fixture.config())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Daemon { child, stderr }
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn stop(mut self) -> String {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "ppisd exited with {status}: {}", self.log());
                break;
            }
            assert!(Instant::now() < deadline, "ppisd did not stop: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.log()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn scrape(address: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: ppisd\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// The value of the sample line starting with `prefix` (name and labels).
pub fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics.lines().find(|line| line.starts_with(prefix)).and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// A bundle source counting `getpgid` calls of threads named `comm` in this test process
/// (getpgid is rare; the `when` filter makes the count exactly a workload's calls, even when
/// another copy of the same test runs at the same time): maps `calls` and `by_comm`.
pub fn exact_source(comm: &str) -> String {
    let pid = std::process::id();
    format!(
        "//! Counts getpgid calls of one thread.\nmap calls: count;\nmap by_comm: count[str[16]] max 16;\n\
         probe tracepoint:syscalls:sys_enter_getpgid rate <= 5k/s when comm == \"{comm}\" && pid == {pid} {{\n\
         calls.inc();\n    by_comm[comm].inc();\n}}\n"
    )
}

/// Exactly `calls` getpgid calls from a thread named `comm`, 1 ms apart (well under the
/// probe's declared rate), returning when they are done.
pub fn run_exact_workload(comm: &str, calls: u32) {
    std::thread::Builder::new()
        .name(comm.into())
        .spawn(move || {
            for _ in 0..calls {
                // SAFETY: getpgid(0) only reads the caller's process group.
                unsafe { libc::getpgid(0) };
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .expect("a workload thread starts")
        .join()
        .expect("the workload thread does not panic");
}

/// Polls `check` every 100 ms until it gives a value or `within` passes.
pub fn wait_for<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
