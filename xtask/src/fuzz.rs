//! `cargo xtask fuzz [SECONDS]` (and the last step of `cargo xtask test`): a time-bounded
//! libFuzzer run of the front end's `lang_check` target that fails on a crash and keeps the
//! crashing input in `fuzz/regressions/lang_check/`, which `cargo test -p ppis-lang` replays.
//!
//! cargo-fuzz needs unstable compiler flags (`-Zsanitizer`): nightly when installed, else
//! stable with `RUSTC_BOOTSTRAP=1` (which unlocks them on a stable compiler).

use crate::{describe, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How long `cargo xtask test` fuzzes.
pub const CI_SECONDS: u64 = 60;

/// The fuzz target run in CI and the directory its crash inputs are kept in.
const TARGET: &str = "lang_check";

pub fn options(args: &[String]) -> Result<u64, String> {
    match args {
        [] => Ok(CI_SECONDS),
        [seconds] => seconds.parse().map_err(|_| format!("`{seconds}` is not a number of seconds")),
        _ => Err(format!("unrecognised arguments {args:?}; usage: cargo xtask fuzz [SECONDS]")),
    }
}

/// Fuzzes `lang_check` for `seconds`; a crash copies its input into the regression directory
/// and is an error.
pub fn fuzz(seconds: u64) -> Result<(), String> {
    ensure_cargo_fuzz()?;
    let root = workspace_root();
    let toolchain = toolchain();
    let corpus = root.join("fuzz/corpus").join(TARGET);
    let artifacts = root.join("fuzz/artifacts").join(TARGET);
    let regressions = regression_dir();
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let before = crash_files(&artifacts);
    // The rustup proxy `cargo` (not `$CARGO`, which is one toolchain's cargo) understands `+toolchain`.
    let mut command = Command::new("cargo");
    command.current_dir(&root).arg(format!("+{}", toolchain.name));
    if toolchain.bootstrap {
        command.env("RUSTC_BOOTSTRAP", "1");
    }
    // Seeds: the examples (real programs) and every past crash.
    command
        .args(["fuzz", "run", TARGET])
        .arg(&corpus)
        .arg(root.join("examples"))
        .arg(&regressions)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()));
    let description = describe(&command);
    eprintln!("xtask: $ {}{description}", if toolchain.bootstrap { "RUSTC_BOOTSTRAP=1 " } else { "" });
    let status = command.status().map_err(|error| format!("cannot run `{description}`: {error}"))?;
    let new_crashes: Vec<PathBuf> = crash_files(&artifacts).into_iter().filter(|p| !before.contains(p)).collect();
    let mut kept = Vec::new();
    for crash in &new_crashes {
        let name = crash.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let destination = regressions.join(name);
        std::fs::copy(crash, &destination).map_err(|e| format!("cannot keep {}: {e}", crash.display()))?;
        kept.push(destination.display().to_string());
    }
    if !kept.is_empty() {
        return Err(format!(
            "the fuzzer found {} crash input(s), kept as regression tests: {}; fix the crash, then \
             `cargo test -p ppis-lang --test fuzz_regressions` passes",
            kept.len(),
            kept.join(", ")
        ));
    }
    if !status.success() {
        return Err(format!("`{description}` failed ({status}) without leaving a crash input"));
    }
    eprintln!("xtask: {TARGET}: no crash in {seconds} s");
    Ok(())
}

/// Where crash inputs are kept as regression tests.
pub fn regression_dir() -> PathBuf {
    workspace_root().join("fuzz/regressions").join(TARGET)
}

/// libFuzzer's crash, leak, timeout and out-of-memory inputs in `dir`.
fn crash_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|name| {
                ["crash-", "leak-", "timeout-", "oom-"].iter().any(|prefix| name.starts_with(prefix))
            })
        })
        .collect();
    files.sort();
    files
}

/// The toolchain cargo-fuzz runs under.
struct Toolchain {
    name: &'static str,
    /// Stable needs `RUSTC_BOOTSTRAP=1` for cargo-fuzz's `-Z` flags.
    bootstrap: bool,
}

fn toolchain() -> Toolchain {
    let installed = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    if std::env::var_os("PPIS_FUZZ_STABLE").is_none() && installed.lines().any(|line| line.starts_with("nightly")) {
        Toolchain { name: "nightly", bootstrap: false }
    } else {
        Toolchain { name: "stable", bootstrap: true }
    }
}

/// Installs cargo-fuzz (pinned by its own lock file) when `cargo fuzz` is not available.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|out| out.status.success());
    if present {
        return Ok(());
    }
    crate::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
}
