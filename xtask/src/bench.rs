//! Compile benchmark: wall time and peak memory of `ppisc build` against
//! `bpftrace --emit-elf` on equivalent scripts.
//!
//! Pairs are found by name: every `bench/bpftrace/NAME.bt` is compared with `examples/NAME.ppl`
//! when that exists, else with `bench/ppl/NAME.ppl`. Examples without a bpftrace twin are timed
//! alone. Memory is the child's peak RSS from wait4(), so no external `time` is needed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo, examples, run, target_dir, workspace_root};

pub struct Options {
    /// Benchmark a release build of ppisc (what users run) rather than the dev build.
    release: bool,
    /// Timed runs per compiler and script; the median is reported.
    runs: usize,
}

pub fn options(args: &[String]) -> Result<Options, String> {
    let mut options = Options { release: false, runs: 5 };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--release" => options.release = true,
            "--runs" => {
                let value = args.next().ok_or("--runs needs a number")?;
                options.runs = value.parse().ok().filter(|&runs| runs > 0).ok_or(format!("bad --runs {value:?}"))?;
            }
            other => return Err(format!("unknown bench option {other:?}")),
        }
    }
    Ok(options)
}

/// One script compiled by one or both compilers.
struct Case {
    name: String,
    ppl: Option<PathBuf>,
    bpftrace: Option<PathBuf>,
}

/// What one compiler did with one script: median wall time and the largest peak RSS seen.
struct Measurement {
    median: Duration,
    peak_rss_kib: u64,
}

pub fn bench(options: &Options) -> Result<(), String> {
    let mut build = cargo();
    build.args(["build", "-p", "ppis-compiler", "--bin", "ppisc"]);
    if options.release {
        build.arg("--release");
    }
    run(&mut build)?;
    let ppisc = target_dir().join(if options.release { "release" } else { "debug" }).join("ppisc");
    let bpftrace = which("bpftrace");
    if bpftrace.is_none() {
        eprintln!("xtask: warning: bpftrace is not installed (run `cargo xtask setup`); timing ppisc alone");
    }
    let cases = cases();
    if cases.is_empty() {
        return Err("nothing to benchmark: no bench/bpftrace/*.bt, bench/ppl/*.ppl or examples/*.ppl".into());
    }
    let out_dir = target_dir().join("ppis-bench");
    std::fs::create_dir_all(&out_dir).map_err(|error| format!("cannot create {}: {error}", out_dir.display()))?;

    println!(
        "ppisc: {} build, {} runs each (median wall time, max peak RSS)\n",
        if options.release { "release" } else { "dev (unoptimised; use --release for user-facing numbers)" },
        options.runs
    );
    println!(
        "{:<24} {:>10} {:>12} {:>7} {:>13} {:>15}",
        "script", "ppisc ms", "bpftrace ms", "ratio", "ppisc MiB", "bpftrace MiB"
    );
    let mut failures = Vec::new();
    for case in &cases {
        let object = |suffix: &str| out_dir.join(format!("{}.{suffix}.o", case.name));
        let ppisc_result = case.ppl.as_ref().map(|ppl| {
            let mut command = Command::new(&ppisc);
            command.arg("build").arg(ppl).arg("-o").arg(object("ppisc"));
            measure(command, &object("ppisc"), options.runs, &out_dir)
        });
        let bpftrace_result = match (&bpftrace, &case.bpftrace) {
            (Some(bpftrace), Some(script)) => {
                let mut command = Command::new(bpftrace);
                command.arg("--emit-elf").arg(object("bpftrace")).arg(script);
                Some(measure(command, &object("bpftrace"), options.runs, &out_dir))
            }
            _ => None,
        };
        let mut cell = |result: &Option<Result<Measurement, String>>| match result {
            Some(Ok(measurement)) => Some((measurement.median, measurement.peak_rss_kib)),
            Some(Err(message)) => {
                failures.push(format!("{}: {message}", case.name));
                None
            }
            None => None,
        };
        let ours = cell(&ppisc_result);
        let theirs = cell(&bpftrace_result);
        let ms = |cell: Option<(Duration, u64)>| cell.map_or("-".into(), |(time, _)| format!("{:.1}", millis(time)));
        let mib =
            |cell: Option<(Duration, u64)>| cell.map_or("-".into(), |(_, kib)| format!("{:.1}", kib as f64 / 1024.0));
        let ratio = match (ours, theirs) {
            // How many times faster ppisc is than bpftrace (below 1: slower).
            (Some((ours, _)), Some((theirs, _))) if !ours.is_zero() => format!("{:.1}x", millis(theirs) / millis(ours)),
            _ => "-".into(),
        };
        println!(
            "{:<24} {:>10} {:>12} {:>7} {:>13} {:>15}",
            case.name,
            ms(ours),
            ms(theirs),
            ratio,
            mib(ours),
            mib(theirs)
        );
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("some compilations failed:\n{}", failures.join("\n")))
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn cases() -> Vec<Case> {
    let root = workspace_root();
    let bench_ppl = root.join("bench/ppl");
    let examples_dir = root.join("examples");
    let mut cases: Vec<Case> = files_with_extension(&root.join("bench/bpftrace"), "bt")
        .into_iter()
        .map(|script| {
            let name = stem(&script);
            let ppl = [examples_dir.join(format!("{name}.ppl")), bench_ppl.join(format!("{name}.ppl"))]
                .into_iter()
                .find(|path| path.is_file());
            Case { name, ppl, bpftrace: Some(script) }
        })
        .collect();
    for ppl in examples().into_iter().chain(files_with_extension(&bench_ppl, "ppl")) {
        let name = stem(&ppl);
        if !cases.iter().any(|case| case.name == name) {
            cases.push(Case { name, ppl: Some(ppl), bpftrace: None });
        }
    }
    cases
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default()
}

fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|found| found == extension))
        .collect();
    files.sort();
    files
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// One untimed warm-up run (page cache, dynamic linking), then `runs` timed ones. Each run
/// must leave a non-empty `object`, so a compiler that exits 0 without output is not timed.
fn measure(mut command: Command, object: &Path, runs: usize, out_dir: &Path) -> Result<Measurement, String> {
    let mut times = Vec::with_capacity(runs);
    let mut peak_rss_kib = 0;
    for run_index in 0..=runs {
        let _ = std::fs::remove_file(object);
        let (time, rss) = run_once(&mut command, out_dir)?;
        if std::fs::metadata(object).map_or(true, |metadata| metadata.len() == 0) {
            return Err(format!("`{}` exited 0 but wrote no {}", crate::describe(&command), object.display()));
        }
        if run_index > 0 {
            times.push(time);
            peak_rss_kib = peak_rss_kib.max(rss);
        }
    }
    times.sort();
    Ok(Measurement { median: times[times.len() / 2], peak_rss_kib })
}

/// Runs the command once; returns its wall time and peak RSS in KiB.
fn run_once(command: &mut Command, out_dir: &Path) -> Result<(Duration, u64), String> {
    let log_path = out_dir.join("last-run.log");
    let log = File::create(&log_path).map_err(|error| format!("{}: {error}", log_path.display()))?;
    let log_for_stderr = log.try_clone().map_err(|error| format!("{}: {error}", log_path.display()))?;
    command.stdin(Stdio::null()).stdout(log).stderr(log_for_stderr);
    let description = crate::describe(command);
    let started = Instant::now();
    let child = command.spawn().map_err(|error| format!("cannot run `{description}`: {error}"))?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 rather than Child::wait because only wait4 reports this child's own peak RSS.
    // SAFETY: the pid is our unreaped child; status and usage are valid for writes.
    let reaped = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    if reaped < 0 {
        return Err(format!("cannot wait for `{description}`: {}", std::io::Error::last_os_error()));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(format!("`{description}` failed (wait status {status}):\n{log}"));
    }
    // ru_maxrss is in KiB on Linux.
    Ok((elapsed, usage.ru_maxrss.max(0) as u64))
}
