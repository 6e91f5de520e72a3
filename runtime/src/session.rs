//! The one loader of the runtime: a loaded object whose probes are attached, detached and
//! re-attached one by one, whose maps are read live, and whose `begin`/`end` programs run once
//! on request. `ppisc run` (through [`crate::run`]) and the daemon `ppisd` both load through
//! it; only their policies differ (`run` stops at the first probe that cannot attach, the
//! daemon skips a failing probe and runs `begin`/`end` per bundle load and unload). Dropping
//! the session detaches and unloads everything.
//!
//! Boundary: aya makes the BPF calls; the session keeps no policy (when to attach, detach or
//! give up is the caller's decision).

use std::path::Path;

use aya::maps::Map;
use aya::programs::trace_point::TracePointLinkId;
use aya::programs::uprobe::UProbeLinkId;
use aya::programs::{TracePoint, UProbe};
use aya::Ebpf;
use ppis_manifest::{Attach, Manifest, ProbeInfo};

use crate::probe_kinds::OnceProbes;
use crate::snapshot::MapValue;
use crate::stats::ProgramStats;
use crate::{error_chain, host, load_probe, probe_error, read_maps, take_maps, RuntimeError};

/// The link of one attached probe, to detach exactly it.
enum Link {
    Tracepoint(TracePointLinkId),
    Uprobe(UProbeLinkId),
    /// Raw tracepoints and perf events (`profile`, `interval`).
    Other(crate::probe_kinds::Link),
    /// A USDT site guarded by a semaphore: its own uprobe perf event and BPF link.
    UsdtGuarded(crate::usdt::GuardedLink),
}

/// One probe of the session.
struct ProbeSlot {
    info: ProbeInfo,
    link: Option<Link>,
}

/// A loaded object whose probes run until detached or the session is dropped.
pub struct Session {
    ebpf: Ebpf,
    manifest: Manifest,
    probes: Vec<ProbeSlot>,
    /// Taken out of the loader after the programs were loaded, so they can be read while the
    /// programs run and outlive a detach.
    maps: Vec<Map>,
    /// Memory maps of the processes seen in user stack keys, kept across reads (a process may
    /// exit between two reads); behind a mutex because reading maps takes `&self`.
    stack_pids: std::sync::Mutex<crate::stacks::PidMapsCache>,
    /// Kept across reads: it caches parsed ELF files and kallsyms, which a daemon would
    /// otherwise re-read every poll interval.
    symbolizer: std::sync::Mutex<crate::symbolize::BlazeSymbolizer>,
    /// The loaded `begin` and `end` programs once [`Session::run_begin`] ran; taken by
    /// [`Session::finish`], so `end` runs at most once.
    once: Option<OnceProbes>,
    /// Whether [`Session::run_begin`] ran: `begin` never runs twice, even with no program.
    begun: bool,
}

impl Session {
    /// Loads `object` and creates its maps; no program is loaded and nothing is attached yet.
    pub fn open(object: &[u8], manifest: &Manifest) -> Result<Session, RuntimeError> {
        #[cfg(test)]
        tests::OPENED_ON_THIS_THREAD.with(|opened| opened.set(opened.get() + 1));
        let mut ebpf = Ebpf::load(object).map_err(|error| RuntimeError::Load(error_chain(&error)))?;
        // Maps are created by `Ebpf::load`; taking them now does not affect the programs,
        // which reference them by the fds relocated into their code at load time.
        let maps = take_maps(&mut ebpf, manifest)?;
        Ok(Session {
            ebpf,
            manifest: manifest.clone(),
            probes: manifest.probes.iter().map(|info| ProbeSlot { info: info.clone(), link: None }).collect(),
            maps,
            stack_pids: Default::default(),
            symbolizer: Default::default(),
            once: None,
            begun: false,
        })
    }

    /// Loads `object` and tries to attach every probe of `manifest`. Fails only when the
    /// object or its maps cannot be loaded; each probe that cannot be loaded or attached is
    /// returned as an error and left detached, the rest run. `begin`/`end` probes are among
    /// the failures (they are never attached; see [`Session::run_begin`]).
    pub fn start(object: &[u8], manifest: &Manifest) -> Result<(Session, Vec<RuntimeError>), RuntimeError> {
        let mut session = Session::open(object, manifest)?;
        let mut failures = Vec::new();
        for index in 0..session.probes.len() {
            if let Err(error) = session.attach(index) {
                failures.push(error);
            }
        }
        Ok((session, failures))
    }

    /// The daemon's start: like [`Session::start`], but `begin` probes run first (once, before
    /// anything is attached; `end` is loaded then too, and runs in [`Session::finish`]), and a
    /// probe with an activation rule (a dormant probe) is only loaded (the kernel verifies
    /// it), not attached: the activator attaches it later. Its load failure is returned with
    /// the attach failures of the others; a `begin` or `end` the kernel refuses fails the start.
    pub fn start_with_dormant(
        object: &[u8],
        manifest: &Manifest,
    ) -> Result<(Session, Vec<RuntimeError>), RuntimeError> {
        let mut session = Session::open(object, manifest)?;
        session.run_begin()?;
        let mut failures = Vec::new();
        for index in 0..session.probes.len() {
            if session.runs_once(index) {
                continue;
            }
            let result = if session.probes[index].info.activation.is_some() {
                session.load_dormant(index)
            } else {
                session.attach(index)
            };
            if let Err(error) = result {
                failures.push(error);
            }
        }
        Ok((session, failures))
    }

    /// Loads every `begin` and `end` program (so an `end` the kernel refuses fails before
    /// anything ran), then runs each `begin` once with `BPF_PROG_TEST_RUN`, in manifest order.
    /// Call it before attaching the other probes, so they see no event before `begin`. Does
    /// nothing the second time.
    pub fn run_begin(&mut self) -> Result<(), RuntimeError> {
        if self.begun {
            return Ok(());
        }
        self.begun = true;
        let once = OnceProbes::load(&mut self.ebpf, &self.manifest)?;
        let ran = once.run_begin();
        self.once = Some(once);
        ran
    }

    /// Detaches every probe, then (if [`Session::run_begin`] ran) runs each `end` program
    /// once, so `end` sees the maps as the other probes left them. The programs and maps stay
    /// until the session is dropped, so the maps can still be read. `end` never runs twice.
    pub fn finish(&mut self) -> Result<(), RuntimeError> {
        if let Some(error) = self.detach_all().into_iter().next() {
            return Err(error);
        }
        match self.once.take() {
            Some(once) => once.run_end(),
            None => Ok(()),
        }
    }

    /// Whether probe `index` is a `begin` or `end`: run once, never attached.
    pub fn runs_once(&self, index: usize) -> bool {
        self.probes.get(index).is_some_and(|slot| slot.info.attach.runs_once())
    }

    /// Loads probe `index`'s program into the kernel without attaching it (a no-op when it
    /// is loaded already), so that a later [`Session::attach`] cannot fail verification.
    pub fn load_dormant(&mut self, index: usize) -> Result<(), RuntimeError> {
        let slot = self.probes.get(index).ok_or_else(|| no_such_probe(index))?;
        let info = slot.info.clone();
        if self.ebpf.program(&info.program).is_some_and(|program| program.fd().is_ok()) {
            return Ok(());
        }
        load_probe(&mut self.ebpf, &info)
    }

    /// The ring buffer and drop counter of the object's `emit`/`print` records, taken out of
    /// the session (the programs keep writing to them); `None` when the object sends none, or
    /// when they were taken already.
    pub fn take_events(&mut self) -> Result<Option<crate::events::EventStream>, RuntimeError> {
        let Some(info) = self.manifest.events.as_ref() else { return Ok(None) };
        if self.ebpf.map(&info.ring_buffer).is_none() {
            return Ok(None);
        }
        let mut stream = crate::events::EventStream::take(&mut self.ebpf, &self.manifest)?;
        if let Some(stream) = &mut stream {
            let clearer = crate::clear::MapClearer::new(&self.maps, &self.manifest)
                .map_err(|error| RuntimeError::Map(format!("cannot prepare `clear`: {error}")))?;
            stream.set_clearer(clearer);
        }
        Ok(stream)
    }

    /// The manifest the session was started with.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// How many probes the manifest lists (attached or not).
    pub fn probe_count(&self) -> usize {
        self.probes.len()
    }

    /// Whether probe `index` (manifest order) is attached now.
    pub fn is_attached(&self, index: usize) -> bool {
        self.probes.get(index).is_some_and(|slot| slot.link.is_some())
    }

    /// Attaches probe `index`, loading its program first if that has not happened yet. Does
    /// nothing when it is attached already.
    pub fn attach(&mut self, index: usize) -> Result<(), RuntimeError> {
        let slot = self.probes.get(index).ok_or_else(|| no_such_probe(index))?;
        if slot.link.is_some() {
            return Ok(());
        }
        let info = slot.info.clone();
        let fail = |message: String| probe_error(&info, message);
        if let Attach::Uprobe { path, symbol } | Attach::Uretprobe { path, symbol } = &info.attach {
            host::check_symbol(Path::new(path), symbol).map_err(|missing| fail(missing.to_string()))?;
        }
        let loaded = self.ebpf.program(&info.program).is_some_and(|program| program.fd().is_ok());
        if !loaded {
            load_probe(&mut self.ebpf, &info)?;
        }
        let program = self
            .ebpf
            .program_mut(&info.program)
            .ok_or_else(|| fail(format!("program {} is not in the object", info.program)))?;
        let link = match &info.attach {
            Attach::Tracepoint { category, name } => {
                let tracepoint: &mut TracePoint = program
                    .try_into()
                    .map_err(|_| fail(format!("program {} is not a tracepoint program", info.program)))?;
                let link = tracepoint.attach(category, name).map_err(|error| {
                    match host::tracepoint_fields(category, name) {
                        Err(missing) if !missing.unavailable => fail(missing.to_string()),
                        _ => fail(format!("cannot attach: {}", error_chain(&error))),
                    }
                })?;
                Link::Tracepoint(link)
            }
            Attach::Usdt { path, provider, name, address } => {
                let offsets = crate::usdt::attach_offsets(Path::new(path), provider, name, *address).map_err(fail)?;
                let uprobe: &mut UProbe = program
                    .try_into()
                    .map_err(|_| fail(format!("program {} is not a uprobe program", info.program)))?;
                if let Some(semaphore) = offsets.semaphore {
                    // aya cannot pass the semaphore to the kernel: the site gets its own event.
                    let program_fd = uprobe
                        .fd()
                        .map_err(|error| fail(format!("the program is not loaded: {}", error_chain(&error))))?;
                    let guarded = crate::usdt::attach_guarded(
                        std::os::fd::AsFd::as_fd(program_fd),
                        path,
                        offsets.site,
                        semaphore,
                    )
                    .map_err(fail)?;
                    Link::UsdtGuarded(guarded)
                } else {
                    let link = uprobe
                        .attach(None, offsets.site, path, None)
                        .map_err(|error| fail(format!("cannot attach: {}", error_chain(&error))))?;
                    Link::Uprobe(link)
                }
            }
            Attach::Uprobe { path, symbol } | Attach::Uretprobe { path, symbol } => {
                let uprobe: &mut UProbe = program
                    .try_into()
                    .map_err(|_| fail(format!("program {} is not a uprobe program", info.program)))?;
                let link = uprobe
                    .attach(Some(symbol.as_str()), 0, path, None)
                    .map_err(|error| fail(format!("cannot attach: {}", error_chain(&error))))?;
                Link::Uprobe(link)
            }
            Attach::Begin | Attach::End => {
                return Err(fail(format!(
                    "{} probes are never attached: they run once around a `ppisc run` (Session::run_begin, \
                     Session::finish)",
                    info.attach
                )))
            }
            attach if crate::probe_kinds::handles(attach) => {
                Link::Other(crate::probe_kinds::attach(program, &info).map_err(fail)?)
            }
            other => return Err(fail(format!("the runtime cannot attach {other} probes"))),
        };
        self.probes[index].link = Some(link);
        Ok(())
    }

    /// Detaches probe `index`; its program stays loaded (so its statistics and a later
    /// [`Session::attach`] keep working) and its maps keep their contents. Does nothing when
    /// it is not attached.
    pub fn detach(&mut self, index: usize) -> Result<(), RuntimeError> {
        let slot = self.probes.get_mut(index).ok_or_else(|| no_such_probe(index))?;
        let Some(link) = slot.link.take() else { return Ok(()) };
        let info = &slot.info;
        let fail = |message: String| probe_error(info, message);
        let program = self
            .ebpf
            .program_mut(&info.program)
            .ok_or_else(|| fail(format!("program {} is not in the object", info.program)))?;
        let detached = match link {
            Link::Tracepoint(link) => {
                let tracepoint: &mut TracePoint =
                    program.try_into().map_err(|_| fail("not a tracepoint program".to_string()))?;
                tracepoint.detach(link)
            }
            Link::Uprobe(link) => {
                let uprobe: &mut UProbe = program.try_into().map_err(|_| fail("not a uprobe program".to_string()))?;
                uprobe.detach(link)
            }
            Link::Other(link) => {
                return crate::probe_kinds::detach(program, link)
                    .map_err(|error| fail(format!("cannot detach: {error}")))
            }
            Link::UsdtGuarded(link) => {
                // Closing the link and the event detaches the program and lets the kernel
                // decrement the semaphore.
                drop(link);
                return Ok(());
            }
        };
        detached.map_err(|error| fail(format!("cannot detach: {}", error_chain(&error))))
    }

    /// Detaches every attached probe (programs stay loaded until the session is dropped).
    pub fn detach_all(&mut self) -> Vec<RuntimeError> {
        (0..self.probes.len()).filter_map(|index| self.detach(index).err()).collect()
    }

    /// The kernel's counters of probe `index`'s program (zero before it was loaded). They
    /// only advance while run-time statistics are enabled (`crate::enable_run_time_stats`).
    pub fn stats(&self, index: usize) -> Result<ProgramStats, RuntimeError> {
        let slot = self.probes.get(index).ok_or_else(|| no_such_probe(index))?;
        let info = &slot.info;
        let program = self
            .ebpf
            .program(&info.program)
            .ok_or_else(|| probe_error(info, format!("program {} is not in the object", info.program)))?;
        if program.fd().is_err() {
            return Ok(ProgramStats { program: info.program.clone(), run_time_ns: 0, run_count: 0 });
        }
        let kernel = program
            .info()
            .map_err(|error| probe_error(info, format!("cannot read program statistics: {}", error_chain(&error))))?;
        Ok(ProgramStats {
            program: info.program.clone(),
            run_time_ns: u64::try_from(kernel.run_time().as_nanos()).unwrap_or(u64::MAX),
            run_count: kernel.run_count(),
        })
    }

    /// Whether some map has a `ustack`/`kstack` key, whose frames reads symbolise.
    pub fn has_stack_keys(&self) -> bool {
        !crate::stacks::stack_kinds(&self.manifest).is_empty()
    }

    /// Remembers the memory maps of process `pid` now (again if known: it may have exec'd or
    /// `dlopen`ed since), so its user stacks are symbolised even after it exits.
    pub fn remember_process(&self, pid: u32) {
        self.lock_stack_pids().remember(pid, true);
    }

    /// Remembers the memory maps of the processes in user stack keys so far (all known ones
    /// again with `refresh`); a read does this too, but a process may exit between reads.
    pub fn observe_stack_processes(&self, refresh: bool) {
        if !self.has_stack_keys() {
            return;
        }
        let with_info: Vec<(&ppis_manifest::MapInfo, &Map)> = self.manifest.maps.iter().zip(&self.maps).collect();
        self.lock_stack_pids().observe(&with_info, refresh);
    }

    fn lock_stack_pids(&self) -> std::sync::MutexGuard<'_, crate::stacks::PidMapsCache> {
        self.stack_pids.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The undecoded elements of map `name` (per-CPU chunks unmerged), for readers that need
    /// more than the decoded value keeps (e.g. an `avg`'s sum and count, not just their ratio).
    pub fn read_raw_map(&self, name: &str) -> Result<Vec<crate::snapshot::RawEntry>, RuntimeError> {
        let position = self.manifest.maps.iter().position(|info| info.name == name);
        let (info, map) = match position.and_then(|at| Some((&self.manifest.maps[at], self.maps.get(at)?))) {
            Some(found) => found,
            None => return Err(RuntimeError::Map(format!("the session has no map {name}"))),
        };
        let fail = |problem: String| RuntimeError::Map(format!("map {}: {problem}", info.name));
        let cpu_count = crate::kernel_maps::possible_cpu_count()
            .map_err(|error| fail(format!("cannot count the possible CPUs: {error}")))?;
        let data = crate::checked_map_data(info, map).map_err(fail)?;
        crate::kernel_maps::read_entries(std::os::fd::AsFd::as_fd(data.fd()), info, cpu_count)
            .map_err(|error| fail(format!("cannot read: {error}")))
    }

    /// Reads and decodes every map now, while the probes keep running (values of per-CPU
    /// maps are summed as read, so a concurrent update may or may not be included).
    pub fn read_maps(&self) -> Result<Vec<(String, MapValue)>, RuntimeError> {
        let mut maps = read_maps(&self.manifest, &self.maps)?;
        if self.has_stack_keys() {
            // Stack keys get their frames: the processes of user stacks are remembered as
            // soon as a read sees them, and symbolised from what was remembered.
            self.observe_stack_processes(false);
            let pids = self.lock_stack_pids();
            let mut symbolizer = self.symbolizer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let source = crate::stacks::LoaderStackMaps(&self.ebpf);
            crate::stacks::resolve(&self.manifest, &mut maps, &source, &mut *symbolizer, &pids)?;
        }
        Ok(maps)
    }
}

fn no_such_probe(index: usize) -> RuntimeError {
    RuntimeError::Map(format!("the session has no probe #{index}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// How many times [`Session::open`] was called on this thread (each test has its
        /// own), so tests can tell which entry points load through a session.
        pub(crate) static OPENED_ON_THIS_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// How many sessions `action` opened on this thread.
    pub(crate) fn sessions_opened_by(action: impl FnOnce()) -> usize {
        let before = OPENED_ON_THIS_THREAD.with(|opened| opened.get());
        action();
        OPENED_ON_THIS_THREAD.with(|opened| opened.get()) - before
    }

    #[test]
    fn a_garbage_object_does_not_start() {
        let manifest = Manifest { version: 1, budget_percent: 1.0, probes: vec![], maps: vec![], events: None };
        let error = Session::start(b"not an elf", &manifest).err().expect("garbage must not load");
        assert!(matches!(error, RuntimeError::Load(_)), "{error}");
    }

    #[test]
    fn every_loading_entry_point_opens_a_session() {
        let manifest = Manifest { version: 1, budget_percent: 1.0, probes: vec![], maps: vec![], events: None };
        // Each fails at the object, after the session began to load it.
        let run = || {
            let _ = crate::run(b"not an elf", &manifest, crate::RunOptions::default());
        };
        assert_eq!(sessions_opened_by(run), 1, "`ppisc run` must load through a Session");
        assert_eq!(sessions_opened_by(|| drop(crate::load_check(b"not an elf", &manifest))), 1);
        assert_eq!(sessions_opened_by(|| drop(crate::attach(b"not an elf", &manifest))), 1);
        assert_eq!(sessions_opened_by(|| drop(Session::start(b"not an elf", &manifest))), 1);
        assert_eq!(sessions_opened_by(|| drop(Session::start_with_dormant(b"not an elf", &manifest))), 1);
    }
}
