//! Machine setup: the Debian packages the project uses and the kernel interfaces it needs.
//! Idempotent and quick when everything is already in place.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::run;

/// bpftool: inspect loaded programs and maps while debugging; bpftrace: the benchmark's
/// baseline; strace: verifying what syscalls the workload makes.
/// libz3-dev: the verifier links Z3; coq and make: the proof library and per-probe proofs.
/// prometheus: ppisd's exporter test scrapes the daemon with a real server (run as a plain
/// binary; the Debian service is not used).
const PACKAGES: &[&str] = &["bpftool", "bpftrace", "strace", "libz3-dev", "coq", "make", "prometheus"];

const TRACEFS: &str = "/sys/kernel/tracing";
const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Whether a failed package install stops the caller. `setup` itself is strict; `test` and
/// `demo` only warn, because neither needs these packages to run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    Strict,
    Lenient,
}

pub fn setup(strictness: Strictness) -> Result<(), String> {
    if !is_root() {
        let message = "not root: cannot install packages, mount tracefs or load eBPF programs; \
                       tests that need the kernel will be skipped (or fail under CI=true)";
        return match strictness {
            Strictness::Strict => Err(message.into()),
            Strictness::Lenient => {
                eprintln!("xtask: warning: {message}");
                Ok(())
            }
        };
    }
    if let Err(message) = install_packages() {
        match strictness {
            Strictness::Strict => return Err(message),
            Strictness::Lenient => eprintln!("xtask: warning: {message}"),
        }
    }
    if let Err(message) = install_python_tools() {
        match strictness {
            Strictness::Strict => return Err(message),
            Strictness::Lenient => eprintln!("xtask: warning: {message}"),
        }
    }
    mount_tracefs()?;
    // Run-time statistics let the runtime report each probe's measured cost. Not fatal:
    // probes load and run without it.
    if let Err(error) = std::fs::write(BPF_STATS, "1") {
        eprintln!("xtask: warning: cannot enable {BPF_STATS}: {error}");
    }
    Ok(())
}

/// pre-commit: the pre-commit hook test runs the real tool.
fn install_python_tools() -> Result<(), String> {
    let works = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works("pre-commit") {
        return Ok(());
    }
    eprintln!("xtask: installing pre-commit (pip)");
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "pre-commit"])
        .status()
        .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    if !status.success() {
        return Err("pip install pre-commit failed".into());
    }
    // pyenv puts new console scripts on PATH only after a rehash.
    let _ = Command::new("pyenv").arg("rehash").status();
    if works("pre-commit") {
        Ok(())
    } else {
        Err("pre-commit was installed but is not on PATH".into())
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn install_packages() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|package| !is_installed(package)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    // Refreshing the package lists is slow, so only when apt does not know a package yet
    // (a fresh machine, or lists that were cleaned out), or when installing from the lists we
    // have fails (they can be stale: a superseded security update is gone from the mirror).
    let mut refreshed = false;
    if missing.iter().any(|package| !has_candidate(package)) {
        run(Command::new("apt-get").args(["update", "-q"]))?;
        refreshed = true;
    }
    let install = || {
        let mut install = Command::new("apt-get");
        install.env("DEBIAN_FRONTEND", "noninteractive").args(["install", "-y", "-q", "--no-install-recommends"]);
        run(install.args(&missing))
    };
    match install() {
        Err(message) if !refreshed => {
            eprintln!("xtask: {message}; refreshing the package lists and trying again");
            run(Command::new("apt-get").args(["update", "-q"]))?;
            install()
        }
        result => result,
    }
}

fn is_installed(package: &str) -> bool {
    let output = Command::new("dpkg-query").args(["-W", "-f", "${Status}", package]).stderr(Stdio::null()).output();
    output.is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("install ok installed"))
}

fn has_candidate(package: &str) -> bool {
    let output = Command::new("apt-cache").args(["policy", package]).stderr(Stdio::null()).output();
    output.is_ok_and(|output| {
        let policy = String::from_utf8_lossy(&output.stdout);
        policy.lines().any(|line| {
            let line = line.trim();
            line.starts_with("Candidate:") && !line.ends_with("(none)")
        })
    })
}

fn mount_tracefs() -> Result<(), String> {
    if Path::new(TRACEFS).join("events").is_dir() {
        return Ok(());
    }
    run(Command::new("mount").args(["-t", "tracefs", "nodev", TRACEFS]))
}
