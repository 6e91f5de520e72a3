//! ppis runtime: loads a compiled object into the kernel with aya, attaches its probes as the
//! manifest lists them, waits (for a duration, a command started with `-c`, or Ctrl-C),
//! detaches, and reads and renders every map.
//!
//! Boundary: aya makes the BPF program and link syscalls; the runtime's own syscalls (raw map
//! reads, fork/exec of a paused command) live in `sys`. `host` only reads files and is shared
//! with the compiler for resolving probe targets.

pub mod bench;
pub mod child;
pub mod events;
pub mod flame;
pub mod host;
pub mod kernel_maps;
mod preflight;
mod probe_kinds;
pub mod render;
pub mod session;
pub mod snapshot;
pub mod stacks;
pub mod stats;
pub mod symbolize;
mod sys;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aya::maps::{Map, MapData};
use aya::programs::{ProbeKind, ProgramError, TracePoint, UProbe};
use aya::Ebpf;
use ppis_manifest::{Attach, Manifest, MapInfo, ProbeInfo};

pub use child::PausedChild;
pub use preflight::preflight;
pub use render::{render_json, render_text};
pub use session::Session;
pub use snapshot::{Bucket, KeyPart, MapValue, Snapshot, Value};
pub use stats::{attach, enable_run_time_stats, AttachedProbes, ProgramStats, RunTimeStats};
pub use sys::ExitStatus;

/// How many lines of a verifier log an error keeps: the end is where the rejection is.
const VERIFIER_LOG_TAIL_LINES: usize = 40;
/// How often the wait loop looks at the stop flag, the clock and the child.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long a `-c` command gets to end after SIGTERM when the run stops first.
const CHILD_TERM_GRACE: Duration = Duration::from_secs(1);

/// Why a run failed. Every message names what it is about (attach point, map, command).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The host cannot run probes at all (privileges, tracefs).
    #[error("{0}")]
    Preflight(String),
    /// The object could not be parsed or its maps created.
    #[error("cannot load the object: {0}")]
    Load(String),
    /// One probe could not be loaded or attached.
    #[error("{attach} (line {line}): {message}")]
    Probe { attach: String, line: u32, message: String },
    /// A map could not be found, read or decoded.
    #[error("{0}")]
    Map(String),
    /// The `-c` command could not be started or waited for.
    #[error("{0}")]
    Child(String),
    /// Signal handlers could not be installed.
    #[error("cannot handle signals: {0}")]
    Signal(String),
}

/// How long to run.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// A paused command to release once the probes are attached; the run ends when it does.
    pub child: Option<PausedChild>,
}

/// Loads `object`, attaches every probe of `manifest`, waits until `opts.duration` passes,
/// the child ends, or SIGINT/SIGTERM arrives, then detaches and returns every map.
pub fn run(object: &[u8], manifest: &Manifest, opts: RunOptions) -> Result<Snapshot, RuntimeError> {
    let RunOptions { duration, mut child } = opts;
    let stop = StopOnSignals::install()?;
    let mut ebpf = Ebpf::load(object).map_err(|error| RuntimeError::Load(error_chain(&error)))?;
    // `begin` runs before any other probe is attached, so they see no event before it.
    let once = probe_kinds::OnceProbes::load(&mut ebpf, manifest)?;
    once.run_begin()?;
    for probe in manifest.probes.iter().filter(|probe| !probe.attach.runs_once()) {
        attach_probe(&mut ebpf, probe)?;
        if stop.requested() {
            // Ctrl-C while attaching: nothing ran yet worth reading; dropping `ebpf` detaches.
            return Err(RuntimeError::Signal("interrupted while attaching probes".to_string()));
        }
    }
    let count = manifest.probes.len() - once.len();
    eprintln!("Attached {count} probe{}", if count == 1 { "" } else { "s" });

    if let Some(child) = child.as_mut() {
        child.release()?;
    }
    let stack_maps = stacks::StackMaps::take(&mut ebpf, manifest)?;
    let mut pid_maps = stacks::PidMapsCache::default();
    // `emit`/`print` records are written to stdout as they arrive (read at every poll).
    let mut event_stream = events::EventStream::take(&mut ebpf, manifest)?;
    let deadline = duration.map(|duration| Instant::now() + duration);
    // Probes update maps synchronously in the traced task, so once the child has been reaped
    // all of its events are already counted: no drain delay is needed.
    let child_exit = loop {
        if let Some(child) = child.as_mut() {
            if let Some(exit) = child.try_wait()? {
                break Some(exit);
            }
        }
        if stop.requested() || deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            break None;
        }
        if !stack_maps.is_empty() {
            // The `-c` command is re-read on every poll: the first reads may still see the
            // image before its exec, and it may exit before its pid shows up in a key.
            if let Some(child) = child.as_ref() {
                pid_maps.remember(child.pid(), true);
            }
            observe_stack_pids(&mut ebpf, manifest, &mut pid_maps, false);
        }
        if let Some(stream) = event_stream.as_mut() {
            events::write_to_stdout(stream);
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    if !stack_maps.is_empty() {
        observe_stack_pids(&mut ebpf, manifest, &mut pid_maps, true);
    }

    let maps = take_maps(&mut ebpf, manifest)?;
    // Dropping the loader detaches every link and unloads the programs; the taken maps stay
    // open, and nothing writes to them any more while they are read.
    drop(ebpf);
    if let (None, Some(child)) = (child_exit, child.as_mut()) {
        end_child(child)?;
    }
    // Every other probe is detached now; `end` programs live on through their own fds.
    once.run_end()?;
    if let Some(stream) = event_stream.as_mut() {
        // The last records (`end` ones included), then what a full buffer cost.
        events::write_to_stdout(stream);
        events::report_drops(stream);
    }
    let mut snapshot = read_maps(manifest, &maps)?;
    if !stack_maps.is_empty() {
        let mut symbolizer = symbolize::BlazeSymbolizer::default();
        stacks::resolve(manifest, &mut snapshot, &stack_maps, &mut symbolizer, &pid_maps)?;
    }
    Ok(Snapshot { maps: snapshot, child_exit })
}

/// Remembers the memory maps of the processes in user stack keys so far (all known ones again
/// with `refresh`), reading the maps while the loader still owns them.
fn observe_stack_pids(ebpf: &mut Ebpf, manifest: &Manifest, pids: &mut stacks::PidMapsCache, refresh: bool) {
    let maps: Vec<(&MapInfo, &Map)> =
        manifest.maps.iter().filter_map(|info| Some((info, ebpf.map(&info.object_name)?))).collect();
    pids.observe(&maps, refresh);
}

/// Loads every program of `manifest` into the kernel, so that the kernel verifier checks each
/// one, without attaching any: nothing runs, and uprobe targets need not exist here. Maps are
/// created (programs reference them) and everything is unloaded again on return.
pub fn load_check(object: &[u8], manifest: &Manifest) -> Result<(), RuntimeError> {
    let mut ebpf = Ebpf::load(object).map_err(|error| RuntimeError::Load(error_chain(&error)))?;
    for probe in &manifest.probes {
        load_probe(&mut ebpf, probe)?;
    }
    Ok(())
}

/// The error of one probe, with its attach point and source line.
fn probe_error(probe: &ProbeInfo, message: String) -> RuntimeError {
    RuntimeError::Probe { attach: probe.attach.to_string(), line: probe.line, message }
}

/// Loads (kernel verifier included) the program of `probe`, after checking that its program
/// type is the one its attach point needs.
fn load_probe(ebpf: &mut Ebpf, probe: &ProbeInfo) -> Result<(), RuntimeError> {
    let fail = |message: String| probe_error(probe, message);
    let program = ebpf
        .program_mut(&probe.program)
        .ok_or_else(|| fail(format!("program {} is not in the object", probe.program)))?;
    match &probe.attach {
        Attach::Tracepoint { .. } => {
            let tracepoint: &mut TracePoint = program
                .try_into()
                .map_err(|_| fail(format!("program {} is not a tracepoint program", probe.program)))?;
            tracepoint.load().map_err(|error| fail(load_error_message(&error)))
        }
        Attach::Uprobe { .. } | Attach::Uretprobe { .. } => {
            let wants_return = matches!(probe.attach, Attach::Uretprobe { .. });
            let uprobe: &mut UProbe =
                program.try_into().map_err(|_| fail(format!("program {} is not a uprobe program", probe.program)))?;
            let is_return = matches!(uprobe.kind(), ProbeKind::URetProbe);
            if is_return != wants_return {
                let describe = |is_return: bool| if is_return { "uretprobe" } else { "uprobe" };
                return Err(fail(format!(
                    "program {} is a {} program, not a {}",
                    probe.program,
                    describe(is_return),
                    describe(wants_return)
                )));
            }
            uprobe.load().map_err(|error| fail(load_error_message(&error)))
        }
        attach if probe_kinds::handles(attach) => probe_kinds::load(program, probe).map_err(fail),
        other => Err(fail(format!("the runtime cannot load {other} probes"))),
    }
}

/// Loads the program of `probe` and attaches it where the manifest says.
pub(crate) fn attach_probe(ebpf: &mut Ebpf, probe: &ProbeInfo) -> Result<(), RuntimeError> {
    let fail = |message: String| probe_error(probe, message);
    if let Attach::Uprobe { path, symbol } | Attach::Uretprobe { path, symbol } = &probe.attach {
        // Checked before loading: a clear "not found" with suggestions, and no verifier work.
        host::check_symbol(Path::new(path), symbol).map_err(|missing| fail(missing.to_string()))?;
    }
    load_probe(ebpf, probe)?;
    let program = ebpf
        .program_mut(&probe.program)
        .ok_or_else(|| fail(format!("program {} is not in the object", probe.program)))?;
    match &probe.attach {
        Attach::Tracepoint { category, name } => {
            let tracepoint: &mut TracePoint = program
                .try_into()
                .map_err(|_| fail(format!("program {} is not a tracepoint program", probe.program)))?;
            tracepoint.attach(category, name).map_err(|error| {
                // Say "does not exist" with suggestions rather than aya's file error.
                match host::tracepoint_fields(category, name) {
                    Err(missing) if !missing.unavailable => fail(missing.to_string()),
                    _ => fail(format!("cannot attach: {}", error_chain(&error))),
                }
            })?;
        }
        Attach::Uprobe { path, symbol } | Attach::Uretprobe { path, symbol } => {
            let uprobe: &mut UProbe =
                program.try_into().map_err(|_| fail(format!("program {} is not a uprobe program", probe.program)))?;
            uprobe
                .attach(Some(symbol.as_str()), 0, path, None)
                .map_err(|error| fail(format!("cannot attach: {}", error_chain(&error))))?;
        }
        attach if probe_kinds::handles(attach) => {
            // The links live in the loader; dropping it detaches them.
            probe_kinds::attach(program, probe).map_err(fail)?;
        }
        other => return Err(fail(format!("the runtime cannot attach {other} probes"))),
    }
    Ok(())
}

/// A program load failure; for verifier rejections, with the end of the verifier log.
fn load_error_message(error: &ProgramError) -> String {
    match error {
        ProgramError::LoadError { io_error, verifier_log } => {
            let log = verifier_log.to_string();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(VERIFIER_LOG_TAIL_LINES)..];
            let elided = if tail.len() < lines.len() { "...\n" } else { "" };
            format!("the kernel verifier rejected the program ({io_error}):\n{elided}{}", tail.join("\n"))
        }
        other => format!("cannot load the program: {}", error_chain(other)),
    }
}

/// An error and all its sources, `: `-separated; aya keeps the useful part in the sources.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Takes every manifest map out of the loader, so the maps outlive the programs.
pub(crate) fn take_maps(ebpf: &mut Ebpf, manifest: &Manifest) -> Result<Vec<Map>, RuntimeError> {
    manifest
        .maps
        .iter()
        .map(|info| {
            ebpf.take_map(&info.object_name).ok_or_else(|| {
                RuntimeError::Map(format!("map {} ({}) is not in the object", info.name, info.object_name))
            })
        })
        .collect()
}

/// Reads and decodes every map, in manifest order.
pub(crate) fn read_maps(manifest: &Manifest, maps: &[Map]) -> Result<Vec<(String, MapValue)>, RuntimeError> {
    let cpu_count = kernel_maps::possible_cpu_count()
        .map_err(|error| RuntimeError::Map(format!("cannot count the possible CPUs: {error}")))?;
    manifest
        .maps
        .iter()
        .zip(maps)
        .map(|(info, map)| {
            let fail = |problem: String| RuntimeError::Map(format!("map {}: {problem}", info.name));
            let data = checked_map_data(info, map).map_err(fail)?;
            let entries = kernel_maps::read_entries(std::os::fd::AsFd::as_fd(data.fd()), info, cpu_count)
                .map_err(|error| fail(format!("cannot read: {error}")))?;
            let value = snapshot::decode_map(info, &entries).map_err(|error| RuntimeError::Map(error.to_string()))?;
            Ok((info.name.clone(), value))
        })
        .collect()
}

/// The kernel map behind `map`, after checking that its kind and sizes are those the
/// manifest describes; reading with the wrong sizes would misread or overrun.
fn checked_map_data<'a>(info: &MapInfo, map: &'a Map) -> Result<&'a MapData, String> {
    let (data, per_cpu) = match map {
        Map::Array(data) | Map::HashMap(data) | Map::LruHashMap(data) => (data, false),
        Map::PerCpuArray(data) | Map::PerCpuHashMap(data) | Map::PerCpuLruHashMap(data) => (data, true),
        _ => return Err("is neither an array nor a hash map".to_string()),
    };
    if per_cpu != info.per_cpu {
        let describe = |per_cpu: bool| if per_cpu { "per-CPU" } else { "shared" };
        return Err(format!(
            "the object has a {} map, the manifest a {} one",
            describe(per_cpu),
            describe(info.per_cpu)
        ));
    }
    let kernel = data.info().map_err(|error| format!("cannot query the kernel map: {}", error_chain(&error)))?;
    if (kernel.key_size(), kernel.value_size()) != (info.key_size, info.value_size) {
        return Err(format!(
            "the kernel map has {}-byte keys and {}-byte values, the manifest says {} and {}",
            kernel.key_size(),
            kernel.value_size(),
            info.key_size,
            info.value_size
        ));
    }
    Ok(data)
}

/// Ends a `-c` command the run outlived (duration or Ctrl-C), as bpftrace does: SIGTERM,
/// then SIGKILL if it is still there after a grace period.
fn end_child(child: &mut PausedChild) -> Result<(), RuntimeError> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    child.signal(libc::SIGTERM)?;
    let give_up = Instant::now() + CHILD_TERM_GRACE;
    while Instant::now() < give_up {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    child.signal(libc::SIGKILL)?;
    child.wait().map(|_| ())
}

/// SIGINT and SIGTERM end the wait instead of the process, so the run can detach and print.
/// A second signal terminates as usual (for a run stuck somewhere), and so does any signal
/// after the run, when this guard is dropped.
struct StopOnSignals {
    stop: Arc<AtomicBool>,
    flag_handlers: Vec<signal_hook::SigId>,
}

impl StopOnSignals {
    fn install() -> Result<StopOnSignals, RuntimeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut flag_handlers = Vec::new();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let failed = |error: std::io::Error| RuntimeError::Signal(error.to_string());
            // Registered first, so it sees the flag as the previous signal left it.
            signal_hook::flag::register_conditional_default(signal, Arc::clone(&stop)).map_err(failed)?;
            flag_handlers.push(signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(failed)?);
        }
        Ok(StopOnSignals { stop, flag_handlers })
    }

    fn requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl Drop for StopOnSignals {
    fn drop(&mut self) {
        // With the flag set, the remaining conditional handlers give every later signal its
        // default action again.
        self.stop.store(true, Ordering::SeqCst);
        for handler in self.flag_handlers.drain(..) {
            signal_hook::low_level::unregister(handler);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_errors_keep_only_the_log_tail() {
        let log: String = (1..=100).map(|line| format!("insn {line}\n")).collect();
        let error = ProgramError::LoadError {
            io_error: std::io::Error::from_raw_os_error(libc::EACCES),
            verifier_log: aya_obj::VerifierLog::new(log),
        };
        let message = load_error_message(&error);
        assert!(message.starts_with("the kernel verifier rejected the program (Permission denied"), "{message}");
        assert!(message.contains("...\ninsn 61\n"), "{message}");
        assert!(!message.contains("insn 60\n"));
        assert!(message.ends_with("insn 100"));
    }

    #[test]
    fn error_chains_include_sources_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&error), "outer: inner");
    }

    #[test]
    fn a_garbage_object_is_a_load_error() {
        let manifest = Manifest { version: 1, budget_percent: 1.0, probes: vec![], maps: vec![], events: None };
        let error = run(b"not an elf", &manifest, RunOptions::default()).unwrap_err();
        assert!(matches!(error, RuntimeError::Load(_)), "{error}");
        assert!(error.to_string().starts_with("cannot load the object: "), "{error}");
    }
}
