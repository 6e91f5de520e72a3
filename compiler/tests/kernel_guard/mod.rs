//! The guard every kernel test of the compiler shares: it runs as root with the tracepoints
//! (and files) it needs; otherwise it is skipped with the reason, or fails under `CI=true`.

use std::path::Path;

fn unavailable(tracepoints: &[&str], files: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".to_string());
    }
    let events = Path::new("/sys/kernel/tracing/events");
    if !events.exists() {
        // tracefs may simply not be mounted yet.
        let _ = std::process::Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]).status();
    }
    for tracepoint in tracepoints {
        if !events.join(tracepoint).exists() {
            return Some(format!("tracepoint {} is not available in tracefs", tracepoint.replace('/', ":")));
        }
    }
    files.iter().find(|f| !Path::new(f).exists()).map(|f| format!("{f} does not exist"))
}

/// True when the test may run; otherwise skips (prints why) or, under CI, fails.
pub fn kernel_ready(tracepoints: &[&str], files: &[&str]) -> bool {
    match unavailable(tracepoints, files) {
        None => true,
        Some(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("kernel test cannot run under CI=true: {reason}")
        }
        Some(reason) => {
            eprintln!("skipping kernel test: {reason}");
            false
        }
    }
}
