//! Harness for the end-to-end tests: finds (and builds) `ppisc`, runs it with a deadline,
//! checks that it did not crash, decides whether kernel tests can run, and parses map output.
//!
//! Boundary: talks to `ppisc` only through its command line, exactly like a user, so these
//! tests hold the CLI contract in place whatever the crates behind it do.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Flags of every `openat` that `ppis-workload openat` makes. The dynamic loader and std also
/// call `openat` while the process starts (ld.so.cache, libc.so.6, /proc/self/maps), always
/// with `O_RDONLY|O_CLOEXEC`; this combination is one they never use, so a probe that also
/// checks `args.flags` counts exactly the workload's own opens.
pub const MARKER_OPEN_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NOFOLLOW;

/// How long one `ppisc` invocation may take before the harness kills it and fails the test.
/// Generous because debug builds on a shared two-core machine are slow, but finite so that a
/// hang is a failure rather than a stuck CI run.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let tests_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests_crate.parent().unwrap_or(tests_crate).to_path_buf()
}

/// Path to an up-to-date `ppisc`.
///
/// `$PPISC` wins when set. Otherwise the binary lives in the same profile directory as the
/// running test executable (`target/<profile>/deps/test-xxxx` → `target/<profile>/ppisc`), and
/// is (re)built once per test process with the same profile: `cargo test -p ppis-tests` alone
/// does not build other packages' binaries, and a stale `ppisc` would test old code.
pub fn ppisc() -> PathBuf {
    static PPISC: OnceLock<PathBuf> = OnceLock::new();
    PPISC.get_or_init(locate_and_build_ppisc).clone()
}

fn locate_and_build_ppisc() -> PathBuf {
    if let Some(explicit) = std::env::var_os("PPISC") {
        return PathBuf::from(explicit);
    }
    let profile_dir = profile_dir();
    let binary = profile_dir.join("ppisc");
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.current_dir(workspace_root()).args(["build", "--quiet", "-p", "ppis-compiler", "--bin", "ppisc"]);
    build.args(["--profile", &profile]);
    if let Some(target_dir) = profile_dir.parent() {
        build.arg("--target-dir").arg(target_dir);
    }
    match build.output() {
        Ok(output) if output.status.success() => {}
        // Locally an older ppisc is better than nothing while someone else's crate is
        // mid-edit; under CI a stale binary would test code that is not being submitted.
        Ok(output) if binary.exists() && !in_ci() => eprintln!(
            "warning: rebuilding ppisc failed, testing the existing {}:\n{}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        ),
        Ok(output) => panic!("cannot build ppisc:\n{}", String::from_utf8_lossy(&output.stderr)),
        Err(error) if binary.exists() && !in_ci() => {
            eprintln!("warning: cannot run cargo ({error}), testing the existing {}", binary.display())
        }
        Err(error) => panic!("cannot run cargo to build ppisc: {error}"),
    }
    binary
}

/// `target/<profile>`, derived from where the running test executable lives.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|error| panic!("cannot find the test executable: {error}"));
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.pop();
    }
    dir
}

/// True when running under CI, where a test that cannot run must fail, not skip: a skipped
/// kernel test on CI would be a silent hole in coverage.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// Whether tests that load programs into the kernel can run here. Prepares what it can
/// (mounts tracefs, enables BPF run-time statistics) the first time. When they cannot run it
/// prints `skipping <test>: <reason>` and returns false, except under CI, where it panics.
pub fn require_kernel(test_name: &str) -> bool {
    static KERNEL: OnceLock<Result<(), String>> = OnceLock::new();
    match KERNEL.get_or_init(prepare_kernel) {
        Ok(()) => true,
        Err(reason) if in_ci() => panic!("{test_name} cannot run under CI: {reason}"),
        Err(reason) => {
            eprintln!("skipping {test_name}: {reason}");
            false
        }
    }
}

fn prepare_kernel() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("loading eBPF programs needs root".into());
    }
    mount_tracefs()?;
    // Best effort: the runtime reports per-probe cost only when stats are on, but probes
    // load and run without them.
    let _ = std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1");
    load_trivial_program()
}

const TRACEFS: &str = "/sys/kernel/tracing";

fn mount_tracefs() -> Result<(), String> {
    let events = Path::new(TRACEFS).join("events");
    if events.is_dir() {
        return Ok(());
    }
    let status = Command::new("mount").args(["-t", "tracefs", "nodev", TRACEFS]).status();
    match status {
        Ok(_) if events.is_dir() => Ok(()),
        Ok(status) => Err(format!("tracefs is not mounted at {TRACEFS} and mounting it failed ({status})")),
        Err(error) => Err(format!("tracefs is not mounted at {TRACEFS} and `mount` cannot run: {error}")),
    }
}

/// Loads `r0 = 0; exit` as a socket filter: the cheapest proof that the bpf() syscall,
/// the verifier and program loading work for this process.
fn load_trivial_program() -> Result<(), String> {
    // struct bpf_insn as little-endian u64s: opcode in the low byte.
    const MOV64_R0_IMM0: u64 = 0xb7;
    const EXIT: u64 = 0x95;
    // From include/uapi/linux/bpf.h; the libc crate does not export the bpf() constants.
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_SOCKET_FILTER: u64 = 1;
    let instructions: [u64; 2] = [MOV64_R0_IMM0, EXIT];
    let license = c"GPL";
    // union bpf_attr, BPF_PROG_LOAD variant: prog_type u32, insn_cnt u32, insns u64,
    // license u64, then fields that stay zero. 128 bytes covers every field we leave zeroed.
    let mut attr = [0u64; 16];
    attr[0] = BPF_PROG_TYPE_SOCKET_FILTER | ((instructions.len() as u64) << 32);
    attr[1] = instructions.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    // SAFETY: attr is a correctly laid out, fully initialised bpf_attr that outlives the call,
    // and the pointers in it point at live data.
    let fd =
        unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.as_mut_ptr(), std::mem::size_of_val(&attr) as u32) };
    if fd < 0 {
        return Err(format!("the kernel refuses to load a trivial eBPF program: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is the program fd just returned, closed exactly once.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// What one command did.
#[derive(Debug)]
pub struct Outcome {
    /// The command line, for failure messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The exit code, or `None` when a signal killed the process.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Fails the test if the process panicked, was killed by a signal (stack overflow aborts
    /// with SIGSEGV/SIGABRT) or exited with Rust's panic code 101.
    pub fn assert_no_crash(&self) {
        if let Some(signal) = self.status.signal() {
            panic!("`{}` was killed by signal {signal}\n{}", self.command, self.transcript());
        }
        assert_ne!(self.code(), Some(101), "`{}` exited with the panic code\n{}", self.command, self.transcript());
        for stream in [&self.stdout, &self.stderr] {
            assert!(!stream.contains("panicked"), "`{}` panicked\n{}", self.command, self.transcript());
        }
    }

    /// Fails the test unless the command exited 0.
    pub fn assert_success(&self) {
        self.assert_no_crash();
        assert_eq!(self.code(), Some(0), "`{}` failed\n{}", self.command, self.transcript());
    }

    /// stdout and stderr together, for failure messages.
    pub fn transcript(&self) -> String {
        format!("--- status: {}\n--- stdout:\n{}\n--- stderr:\n{}", self.status, self.stdout, self.stderr)
    }
}

/// Runs `ppisc ARGS` in `dir` with [`DEFAULT_DEADLINE`]; see [`run_with_deadline`].
pub fn run_ppisc<I, S>(dir: &Path, args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(ppisc());
    // cargo test sets LD_LIBRARY_PATH to its own library directories; the dynamic loader of a
    // workload started with -c would then try each of them (dozens of failed openat calls)
    // before finding libc, which is noise in exactly the syscalls the tests count.
    command.current_dir(dir).args(args).env_remove("LD_LIBRARY_PATH");
    run_with_deadline(command, DEFAULT_DEADLINE)
}

/// Runs a command to completion, capturing its output; kills it and fails the test if it
/// outlives `deadline`. Colours are turned off so that output is stable for snapshots.
///
/// The command gets its own process group, and a deadline kills the whole group: `ppisc run
/// -c` forks the workload, and killing only ppisc would leave that child behind.
pub fn run_with_deadline(mut command: Command, deadline: Duration) -> Outcome {
    let description = describe(&command);
    command.env("NO_COLOR", "1").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.process_group(0);
    let mut child = command.spawn().unwrap_or_else(|error| panic!("cannot start `{description}`: {error}"));
    // Drain both pipes on their own threads: a child writing more than a pipe buffer of
    // output would otherwise block forever while we wait for it to exit.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > deadline => {
                // SAFETY: kill has no memory preconditions; the group id is our child's pid,
                // which stays reserved until we reap it below.
                unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                let _ = child.wait();
                panic!("`{description}` did not finish within {deadline:?}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(error) => panic!("cannot wait for `{description}`: {error}"),
        }
    };
    let join = |handle: std::thread::JoinHandle<String>| handle.join().unwrap_or_default();
    Outcome { command: description, status, stdout: join(stdout), stderr: join(stderr) }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|arg| arg.to_string_lossy().into_owned()));
    words.join(" ")
}

/// A fresh, empty directory for one test's files under `parent` (pass the integration test's
/// `env!("CARGO_TARGET_TMPDIR")`), so tests never see each other's leftovers.
pub fn scratch_dir(parent: &str, test_name: &str) -> PathBuf {
    let dir = Path::new(parent).join(test_name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
    dir
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    path
}

/// Parses the `--format json` output of `ppisc run`: one document `{"maps": {NAME: VALUE}}`.
/// A child started with `-c` shares ppisc's stdout, so its lines may come first: the document
/// is the text from the first line that starts with `{` and parses as JSON to the end.
/// Returns the `maps` object; fails the test, showing the whole transcript, if there is none.
pub fn parse_maps(outcome: &Outcome) -> serde_json::Map<String, serde_json::Value> {
    let text = &outcome.stdout;
    let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(at, _)| at + 1));
    let document = line_starts
        .filter(|&start| text[start..].starts_with('{'))
        .find_map(|start| serde_json::from_str::<serde_json::Value>(&text[start..]).ok());
    match document.as_ref().and_then(|document| document.get("maps")) {
        Some(serde_json::Value::Object(maps)) => maps.clone(),
        _ => panic!("`{}` printed no JSON document with a \"maps\" object\n{}", outcome.command, outcome.transcript()),
    }
}

/// The number a map holds: an unkeyed count or sum. Fails the test if the map is missing or
/// not a number.
pub fn map_number(maps: &serde_json::Map<String, serde_json::Value>, name: &str) -> u64 {
    match maps.get(name).and_then(serde_json::Value::as_u64) {
        Some(number) => number,
        None => panic!("map {name:?} is missing or not an unsigned number in {maps:?}"),
    }
}

/// Path to the workload binary, given the integration test's `env!("CARGO_BIN_EXE_ppis-workload")`.
/// Canonicalised because uprobe attach points must be absolute paths.
pub fn workload(compiled_in_path: &str) -> PathBuf {
    std::fs::canonicalize(compiled_in_path)
        .unwrap_or_else(|error| panic!("workload binary {compiled_in_path} is missing: {error}"))
}

/// The command `ppisc run -c` should start, as one string of space-separated words. Paths with
/// spaces would be split, so refuse them rather than run the wrong command.
pub fn child_command(program: &Path, args: &[&str]) -> String {
    let program = program.to_string_lossy();
    assert!(!program.contains(' '), "the workload path {program:?} contains a space; -c would split it");
    std::iter::once(program.as_ref()).chain(args.iter().copied()).collect::<Vec<_>>().join(" ")
}

/// One bad-input case: the bytes of a source file and what `ppisc check` must say about it.
pub struct BadInput {
    /// File name, also the snapshot name.
    pub name: &'static str,
    pub contents: Vec<u8>,
}

/// Runs `ppisc check` on one bad input (in `dir`, by relative name so that messages do not
/// contain machine-specific paths) and holds it to the contract for bad input: exit 1
/// (findings) or 2 (usage or I/O error), at least one diagnostic with an `E0...` code, no crash.
pub fn check_bad_input(dir: &Path, case: &BadInput) -> Outcome {
    write_file(dir, case.name, &case.contents);
    let outcome = run_ppisc(dir, ["check", case.name]);
    outcome.assert_no_crash();
    assert!(
        matches!(outcome.code(), Some(1 | 2)),
        "`ppisc check {}` must exit 1 or 2 on bad input\n{}",
        case.name,
        outcome.transcript()
    );
    let all_output = format!("{}{}", outcome.stdout, outcome.stderr);
    assert!(
        contains_error_code(&all_output),
        "`ppisc check {}` printed no error code E0...\n{}",
        case.name,
        outcome.transcript()
    );
    outcome
}

/// Whether `text` contains an error code: `E0` followed by three digits.
pub fn contains_error_code(text: &str) -> bool {
    text.as_bytes().windows(5).any(|w| w[0] == b'E' && w[1] == b'0' && w[2..].iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_recognised_only_with_four_digits() {
        assert!(contains_error_code("error[E0102]: undeclared map"));
        assert!(contains_error_code("E0000"));
        assert!(!contains_error_code("error: E01 x"));
        assert!(!contains_error_code("W0101 unused map"));
        assert!(!contains_error_code(""));
    }

    #[test]
    fn deadline_kills_a_hanging_command() {
        let result = std::panic::catch_unwind(|| {
            let mut sleeper = Command::new("sleep");
            sleeper.arg("30");
            run_with_deadline(sleeper, Duration::from_millis(200))
        });
        assert!(result.is_err(), "a command past its deadline must fail the test");
    }

    #[test]
    fn deadline_kills_the_children_too() {
        let marker = std::env::temp_dir().join(format!("ppis-deadline-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let result = std::panic::catch_unwind(|| {
            let mut command = Command::new("sh");
            // The grandchild would create the marker after the deadline unless it is killed.
            command.args(["-c", &format!("(sleep 1; touch {}) & wait", marker.display())]);
            run_with_deadline(command, Duration::from_millis(200))
        });
        assert!(result.is_err());
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "a child of the timed-out command survived the deadline");
    }

    #[test]
    fn outcome_captures_output_larger_than_a_pipe_buffer() {
        let mut command = Command::new("sh");
        command.args(["-c", "head -c 1000000 /dev/zero | tr '\\0' x; echo oops >&2; exit 3"]);
        let outcome = run_with_deadline(command, DEFAULT_DEADLINE);
        assert_eq!(outcome.stdout.len(), 1_000_000);
        assert_eq!(outcome.stderr, "oops\n");
        assert_eq!(outcome.code(), Some(3));
    }

    fn outcome_with_stdout(stdout: &str) -> Outcome {
        Outcome {
            command: "test".into(),
            status: ExitStatus::from_raw(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn maps_are_found_after_the_child_output() {
        let outcome = outcome_with_stdout("sum_args=3 sum_rets=8\n{\n  \"maps\": {\"calls\": 2, \"h\": {}}\n}\n");
        let maps = parse_maps(&outcome);
        assert_eq!(map_number(&maps, "calls"), 2);
        assert_eq!(maps["h"], serde_json::json!({}));
    }

    #[test]
    fn output_without_maps_fails_the_test() {
        for stdout in ["", "sum_args=1", "{\"other\": 1}", "{\"maps\": 3}", "{\"maps\": {} trailing"] {
            let outcome = outcome_with_stdout(stdout);
            assert!(std::panic::catch_unwind(|| parse_maps(&outcome)).is_err(), "accepted {stdout:?}");
        }
    }

    #[test]
    fn a_signal_death_counts_as_a_crash() {
        let mut command = Command::new("sh");
        command.args(["-c", "kill -SEGV $$"]);
        let outcome = run_with_deadline(command, DEFAULT_DEADLINE);
        assert!(std::panic::catch_unwind(|| outcome.assert_no_crash()).is_err());
    }

    #[test]
    fn kernel_check_agrees_with_privilege() {
        // As root on a BPF-capable kernel the trivial load must succeed; as a normal user it
        // must refuse. Either way prepare_kernel must return, not crash.
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let verdict = prepare_kernel();
        if !root {
            assert!(verdict.is_err());
        } else if let Err(reason) = verdict {
            assert!(!in_ci(), "root under CI but BPF does not work: {reason}");
        }
    }
}
