//! `cargo xtask`: project automation in Rust rather than shell, so it runs the same on every
//! machine and fails loudly.
//!
//! - `setup`: installs the system tools the project uses and prepares the kernel interfaces.
//! - `demo`: builds `ppisc` and runs a probe against a workload, printing real numbers.
//! - `test`: setup, then the whole test suite the way CI runs it, then 60 s of fuzzing.
//! - `fuzz [SECONDS]`: fuzz the front end (`lang_check`), keeping crash inputs as regression tests.
//! - `bench [--release] [--runs N]`: compile time and peak memory of `ppisc build` against
//!   `bpftrace --emit-elf` on equivalent scripts.

mod bench;
mod fuzz;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str =
    "usage: cargo xtask <setup | demo | test [CARGO TEST ARGS...] | fuzz [SECONDS] | bench [--release] [--runs N]>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") if args.len() == 1 => setup::setup(setup::Strictness::Strict),
        Some("demo") if args.len() == 1 => demo(),
        Some("test") => test(&args[1..]),
        Some("fuzz") => fuzz::options(&args[1..]).and_then(fuzz::fuzz),
        Some("bench") => bench::options(&args[1..]).and_then(|options| bench::bench(&options)),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(format!("unrecognised arguments {args:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask's manifest directory is `<root>/xtask`.
pub fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

/// The cargo that is running us, so that a rustup toolchain override is respected.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

/// Runs a command with inherited stdio, echoing it first; an unsuccessful exit is an error.
pub fn run(command: &mut Command) -> Result<(), String> {
    let description = describe(command);
    eprintln!("xtask: $ {description}");
    let status = command.status().map_err(|error| format!("cannot run `{description}`: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{description}` failed ({status})"))
    }
}

pub fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|arg| arg.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Builds ppisc and the workload with the dev profile; returns (ppisc, ppis-workload).
fn build_tools() -> Result<(PathBuf, PathBuf), String> {
    run(cargo().args([
        "build",
        "-p",
        "ppis-compiler",
        "--bin",
        "ppisc",
        "-p",
        "ppis-tests",
        "--bin",
        "ppis-workload",
    ]))?;
    let profile_dir = target_dir().join("debug");
    Ok((profile_dir.join("ppisc"), profile_dir.join("ppis-workload")))
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR` or `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The bundled examples, sorted.
pub fn examples() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(workspace_root().join("examples")) else {
        return Vec::new();
    };
    let mut examples: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "ppl"))
        .collect();
    examples.sort();
    examples
}

/// How long the demo's workload keeps generating events.
const DEMO_SECONDS: u32 = 3;

fn demo() -> Result<(), String> {
    setup::setup(setup::Strictness::Lenient)?;
    let (ppisc, workload) = build_tools()?;
    let examples = examples();
    if !examples.is_empty() {
        eprintln!("\nxtask: checking the bundled examples");
        run(Command::new(&ppisc).arg("check").args(&examples))?;
    }
    // The demo probe names the workload by absolute path, so it is written here rather than
    // shipped: uprobes attach to a file, and where the file is depends on the checkout.
    let demo_dir = target_dir().join("ppis-demo");
    std::fs::create_dir_all(&demo_dir).map_err(|error| format!("cannot create {}: {error}", demo_dir.display()))?;
    let probe = demo_dir.join("demo.ppl");
    let workload_path = std::fs::canonicalize(&workload).map_err(|error| format!("{}: {error}", workload.display()))?;
    std::fs::write(&probe, demo_probe(&workload_path)).map_err(|error| format!("{}: {error}", probe.display()))?;
    eprintln!("\nxtask: the demo probe, {}:\n", probe.display());
    eprintln!("{}", demo_probe(&workload_path));
    run(Command::new(&ppisc).arg("check").arg(&probe))?;
    let child = format!("{} spin {DEMO_SECONDS}", workload_path.display());
    run(Command::new(&ppisc).arg("run").arg(&probe).args(["-c", &child]))
}

fn demo_probe(workload: &Path) -> String {
    let workload = workload.display();
    format!(
        "// The workload calls ppis_workload_add up to 1,000 times a second and makes up to 4,000
// syscalls a second (see `spin` in tests/src/bin/ppis-workload.rs).
// Calls into the workload's ppis_workload_add, and the latency of its syscalls.
map calls: count;
map total: sum;
map start: hash[u32] -> u64 max 10240;
map syscall_ns: hist[u64] max 512;

probe uprobe:{workload}:ppis_workload_add rate <= 2000/s {{ calls.inc(); total.add(arg0); }}

probe tracepoint:raw_syscalls:sys_enter rate <= 4000/s when pid == cpid {{ start[tid] = nsecs; }}

probe tracepoint:raw_syscalls:sys_exit rate <= 4000/s when pid == cpid {{
    if let t0 = start[tid] {{
        syscall_ns[args.id].record(nsecs - t0);
        delete start[tid];
    }}
}}
"
    )
}

/// Setup, then every test in the workspace, then a bounded fuzz run (`fuzz::CI_SECONDS`) that
/// fails on a crash. Extra arguments go to `cargo test` (put test binary arguments after
/// `--`). When the tests fail the exit code is cargo's (the fuzz run still happens first).
fn test(extra: &[String]) -> Result<(), String> {
    setup::setup(setup::Strictness::Lenient)?;
    // --locked: CI must test exactly the committed dependency versions.
    // --no-fail-fast: one red test binary must not hide the results of the others.
    let mut command = cargo();
    command.args(["test", "--workspace", "--locked", "--no-fail-fast"]).args(extra);
    let description = describe(&command);
    eprintln!("xtask: $ {description}");
    let status = command.status().map_err(|error| format!("cannot run `{description}`: {error}"))?;
    let fuzzed = fuzz::fuzz(fuzz::CI_SECONDS);
    if status.success() {
        return fuzzed;
    }
    if let Err(message) = fuzzed {
        eprintln!("xtask: error: {message}");
    }
    // Propagate cargo's own exit code, not just "failed".
    std::process::exit(status.code().unwrap_or(1));
}
