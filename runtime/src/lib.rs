//! ppis runtime: loads a compiled object into the kernel with aya, attaches its probes as the
//! manifest lists them, waits (for a duration, a command started with `-c`, or Ctrl-C),
//! detaches, and reads and renders every map.
//!
//! Boundary: aya makes the BPF program and link syscalls; the runtime's own syscalls (raw map
//! reads, fork/exec of a paused command) live in `sys`. `host` only reads files and is shared
//! with the compiler for resolving probe targets.

pub mod bench;
pub mod child;
pub mod clear;
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
pub mod usdt;

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
/// the child ends, or SIGINT/SIGTERM arrives, then detaches and returns every map. Everything
/// goes through a [`Session`]; the policy is `ppisc run`'s: the first probe that cannot attach
/// fails the run, `begin` runs before the other probes attach and `end` after they detach.
pub fn run(object: &[u8], manifest: &Manifest, opts: RunOptions) -> Result<Snapshot, RuntimeError> {
    let stop = StopOnSignals::install()?;
    let session = Session::open(object, manifest)?;
    drive(SessionRun { session, events: None }, opts, &|| stop.requested())
}

/// The steps of a run on a loaded object, in the order [`drive`] takes them. [`SessionRun`]
/// is the one real implementation; the tests drive a recording fake.
trait RunSteps {
    fn manifest(&self) -> &Manifest;
    /// Loads `begin`/`end` and runs every `begin` once.
    fn run_begin(&mut self) -> Result<(), RuntimeError>;
    /// Loads and attaches probe `index` (manifest order).
    fn attach(&mut self, index: usize) -> Result<(), RuntimeError>;
    /// Starts reading `emit`/`print` records (after the probes are attached).
    fn start_events(&mut self) -> Result<(), RuntimeError>;
    /// Writes the records that arrived so far to stdout.
    fn write_events(&mut self);
    /// Remembers the memory maps of the processes in user stack keys, and of `child` (all
    /// known ones again with `refresh`), while they are alive.
    fn observe_processes(&mut self, child: Option<u32>, refresh: bool);
    /// Detaches every probe; nothing but `end` writes to the maps afterwards.
    fn detach_all(&mut self) -> Result<(), RuntimeError>;
    /// Runs every `end` once (after the detach).
    fn finish(&mut self) -> Result<(), RuntimeError>;
    /// Writes the last records and reports what a full ring buffer lost.
    fn flush_events(&mut self);
    /// Reads and decodes every map, stack keys symbolised.
    fn read_maps(&mut self) -> Result<Vec<(String, MapValue)>, RuntimeError>;
}

/// A [`Session`] driven by `ppisc run`, with the event stream it writes to stdout.
struct SessionRun {
    session: Session,
    events: Option<events::EventStream>,
}

impl RunSteps for SessionRun {
    fn manifest(&self) -> &Manifest {
        self.session.manifest()
    }

    fn run_begin(&mut self) -> Result<(), RuntimeError> {
        self.session.run_begin()
    }

    fn attach(&mut self, index: usize) -> Result<(), RuntimeError> {
        self.session.attach(index)
    }

    fn start_events(&mut self) -> Result<(), RuntimeError> {
        self.events = self.session.take_events()?;
        Ok(())
    }

    fn write_events(&mut self) {
        if let Some(stream) = self.events.as_mut() {
            events::write_to_stdout(stream);
        }
    }

    fn observe_processes(&mut self, child: Option<u32>, refresh: bool) {
        if !self.session.has_stack_keys() {
            return;
        }
        // The `-c` command is re-read on every poll: the first reads may still see the image
        // before its exec, and it may exit before its pid shows up in a key.
        if let Some(pid) = child {
            self.session.remember_process(pid);
        }
        self.session.observe_stack_processes(refresh);
    }

    fn detach_all(&mut self) -> Result<(), RuntimeError> {
        self.session.detach_all().into_iter().next().map_or(Ok(()), Err)
    }

    fn finish(&mut self) -> Result<(), RuntimeError> {
        self.session.finish()
    }

    fn flush_events(&mut self) {
        if let Some(stream) = self.events.as_mut() {
            // The probes are detached: the buffer only empties now.
            while events::write_to_stdout(stream) == events::MAX_RECORDS_PER_DRAIN {}
            events::report_drops(stream);
        }
    }

    fn read_maps(&mut self) -> Result<Vec<(String, MapValue)>, RuntimeError> {
        self.session.read_maps()
    }
}

/// `ppisc run` over a loaded object: `begin`, attach every other probe (the first failure
/// ends the run), release the child, wait while streaming events, detach, end the child if
/// it outlived the run, `end`, read the maps.
fn drive(
    mut steps: impl RunSteps,
    opts: RunOptions,
    stop_requested: &dyn Fn() -> bool,
) -> Result<Snapshot, RuntimeError> {
    let RunOptions { duration, mut child } = opts;
    // `begin` runs before any other probe is attached, so they see no event before it.
    steps.run_begin()?;
    let attachable: Vec<usize> = (0..steps.manifest().probes.len())
        .filter(|&index| !steps.manifest().probes[index].attach.runs_once())
        .collect();
    for &index in &attachable {
        steps.attach(index)?;
        if stop_requested() {
            // Ctrl-C while attaching: nothing ran yet worth reading; dropping the session
            // detaches.
            return Err(RuntimeError::Signal("interrupted while attaching probes".to_string()));
        }
    }
    let count = attachable.len();
    eprintln!("Attached {count} probe{}", if count == 1 { "" } else { "s" });

    if let Some(child) = child.as_mut() {
        child.release()?;
    }
    // `emit`/`print` records are written to stdout as they arrive (read at every poll).
    steps.start_events()?;
    let deadline = duration.map(|duration| Instant::now() + duration);
    // Probes update maps synchronously in the traced task, so once the child has been reaped
    // all of its events are already counted: no drain delay is needed.
    let child_exit = loop {
        if let Some(child) = child.as_mut() {
            if let Some(exit) = child.try_wait()? {
                break Some(exit);
            }
        }
        if stop_requested() || deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            break None;
        }
        steps.observe_processes(child.as_ref().map(PausedChild::pid), false);
        steps.write_events();
        std::thread::sleep(POLL_INTERVAL);
    };
    steps.observe_processes(None, true);
    // Nothing writes to the maps any more while they are read, except `end`.
    steps.detach_all()?;
    if let (None, Some(child)) = (child_exit, child.as_mut()) {
        end_child(child)?;
    }
    steps.finish()?;
    // The last records (`end` ones included), then what a full buffer cost.
    steps.flush_events();
    let maps = steps.read_maps()?;
    Ok(Snapshot { maps, child_exit })
}

/// Loads every program of `manifest` into the kernel, so that the kernel verifier checks each
/// one, without attaching any: nothing runs, and uprobe targets need not exist here. Maps are
/// created (programs reference them) and everything is unloaded again on return.
pub fn load_check(object: &[u8], manifest: &Manifest) -> Result<(), RuntimeError> {
    let mut session = Session::open(object, manifest)?;
    (0..session.probe_count()).try_for_each(|index| session.load_dormant(index))
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
        Attach::Uprobe { .. } | Attach::Uretprobe { .. } | Attach::Usdt { .. } => {
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

    /// Records the steps `drive` takes; attaching the probe at `failing_attach` fails.
    struct RecordingSteps {
        manifest: Manifest,
        failing_attach: Option<usize>,
        log: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
    }

    impl RecordingSteps {
        fn note(&self, step: impl Into<String>) {
            self.log.borrow_mut().push(step.into());
        }
    }

    impl RunSteps for RecordingSteps {
        fn manifest(&self) -> &Manifest {
            &self.manifest
        }
        fn run_begin(&mut self) -> Result<(), RuntimeError> {
            self.note("begin");
            Ok(())
        }
        fn attach(&mut self, index: usize) -> Result<(), RuntimeError> {
            self.note(format!("attach {index}"));
            match self.failing_attach {
                Some(failing) if failing == index => {
                    Err(probe_error(&self.manifest.probes[index], "cannot attach: no such thing".to_string()))
                }
                _ => Ok(()),
            }
        }
        fn start_events(&mut self) -> Result<(), RuntimeError> {
            self.note("events");
            Ok(())
        }
        fn write_events(&mut self) {
            self.note("write");
        }
        fn observe_processes(&mut self, child: Option<u32>, refresh: bool) {
            self.note(format!("observe child={child:?} refresh={refresh}"));
        }
        fn detach_all(&mut self) -> Result<(), RuntimeError> {
            self.note("detach");
            Ok(())
        }
        fn finish(&mut self) -> Result<(), RuntimeError> {
            self.note("end");
            Ok(())
        }
        fn flush_events(&mut self) {
            self.note("flush");
        }
        fn read_maps(&mut self) -> Result<Vec<(String, MapValue)>, RuntimeError> {
            self.note("read");
            Ok(vec![])
        }
    }

    fn probe(program: &str, attach: Attach, line: u32) -> ProbeInfo {
        ProbeInfo { program: program.into(), attach, rate_per_sec: None, line, activation: None }
    }

    /// `begin`, a tracepoint, `end` and a uprobe, in that source order.
    fn mixed_manifest() -> Manifest {
        let tracepoint = Attach::Tracepoint { category: "syscalls".into(), name: "sys_enter_getppid".into() };
        let uprobe = Attach::Uprobe { path: "/bin/true".into(), symbol: "main".into() };
        Manifest {
            version: 1,
            budget_percent: 1.0,
            probes: vec![
                probe("probe0", Attach::Begin, 1),
                probe("probe1", tracepoint, 2),
                probe("probe2", Attach::End, 3),
                probe("probe3", uprobe, 4),
            ],
            maps: vec![],
            events: None,
        }
    }

    fn drive_recorded(
        failing_attach: Option<usize>,
        stop_requested: &dyn Fn() -> bool,
    ) -> (Result<Snapshot, RuntimeError>, Vec<String>) {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let steps = RecordingSteps { manifest: mixed_manifest(), failing_attach, log: log.clone() };
        let opts = RunOptions { duration: Some(Duration::ZERO), child: None };
        let result = drive(steps, opts, stop_requested);
        let log = log.borrow().clone();
        (result, log)
    }

    #[test]
    fn a_run_begins_attaches_the_others_then_detaches_ends_and_reads_last() {
        let (result, log) = drive_recorded(None, &|| false);
        result.expect("the run succeeds");
        let expected = [
            "begin",
            "attach 1",
            "attach 3",
            "events",
            "observe child=None refresh=true",
            "detach",
            "end",
            "flush",
            "read",
        ];
        assert_eq!(log, expected);
    }

    #[test]
    fn a_probe_that_cannot_attach_fails_the_run_and_nothing_after_it_happens() {
        let (result, log) = drive_recorded(Some(1), &|| false);
        let error = result.expect_err("ppisc run fails when a probe cannot attach");
        assert_eq!(error.to_string(), "tracepoint:syscalls:sys_enter_getppid (line 2): cannot attach: no such thing");
        assert_eq!(log, ["begin", "attach 1"]);
    }

    #[test]
    fn a_stop_request_while_attaching_ends_the_run_without_reading() {
        let (result, log) = drive_recorded(None, &|| true);
        let error = result.expect_err("interrupted");
        assert!(matches!(error, RuntimeError::Signal(_)), "{error}");
        assert_eq!(log, ["begin", "attach 1"]);
    }
}
