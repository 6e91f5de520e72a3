//! A long-lived loaded object, for the daemon: every probe loaded and attached once (a probe
//! that fails is reported and skipped, the others run), maps read live without detaching,
//! per-program kernel statistics, and single probes detached and re-attached on demand
//! (the overhead circuit breaker). Dropping the session detaches and unloads everything.
//!
//! Boundary: aya makes the BPF calls; the session keeps no policy (when to detach is the
//! caller's decision).

use std::path::Path;

use aya::maps::Map;
use aya::programs::trace_point::TracePointLinkId;
use aya::programs::uprobe::UProbeLinkId;
use aya::programs::{TracePoint, UProbe};
use aya::Ebpf;
use ppis_manifest::{Attach, Manifest, ProbeInfo};

use crate::snapshot::MapValue;
use crate::stats::ProgramStats;
use crate::{error_chain, host, load_probe, probe_error, read_maps, take_maps, RuntimeError};

/// The link of one attached probe, to detach exactly it.
enum Link {
    Tracepoint(TracePointLinkId),
    Uprobe(UProbeLinkId),
    /// Raw tracepoints and perf events (`profile`, `interval`).
    Other(crate::probe_kinds::Link),
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
}

impl Session {
    /// Loads `object` and tries to attach every probe of `manifest`. Fails only when the
    /// object or its maps cannot be loaded; each probe that cannot be loaded or attached is
    /// returned as an error and left detached, the rest run.
    pub fn start(object: &[u8], manifest: &Manifest) -> Result<(Session, Vec<RuntimeError>), RuntimeError> {
        let mut ebpf = Ebpf::load(object).map_err(|error| RuntimeError::Load(error_chain(&error)))?;
        // Maps are created by `Ebpf::load`; taking them now does not affect the programs,
        // which reference them by the fds relocated into their code at load time.
        let maps = take_maps(&mut ebpf, manifest)?;
        let mut session = Session {
            ebpf,
            manifest: manifest.clone(),
            probes: manifest.probes.iter().map(|info| ProbeSlot { info: info.clone(), link: None }).collect(),
            maps,
            stack_pids: Default::default(),
            symbolizer: Default::default(),
        };
        let mut failures = Vec::new();
        for index in 0..session.probes.len() {
            if let Err(error) = session.attach(index) {
                failures.push(error);
            }
        }
        Ok((session, failures))
    }

    /// Like [`Session::start`], but a probe with an activation rule (a dormant probe) is only
    /// loaded (the kernel verifies it), not attached: the activator attaches it later. Its
    /// load failure is returned with the attach failures of the others.
    pub fn start_with_dormant(
        object: &[u8],
        manifest: &Manifest,
    ) -> Result<(Session, Vec<RuntimeError>), RuntimeError> {
        let mut ebpf = Ebpf::load(object).map_err(|error| RuntimeError::Load(error_chain(&error)))?;
        let maps = take_maps(&mut ebpf, manifest)?;
        let mut session = Session {
            ebpf,
            manifest: manifest.clone(),
            probes: manifest.probes.iter().map(|info| ProbeSlot { info: info.clone(), link: None }).collect(),
            maps,
            stack_pids: Default::default(),
            symbolizer: Default::default(),
        };
        let mut failures = Vec::new();
        for index in 0..session.probes.len() {
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
        crate::events::EventStream::take(&mut self.ebpf, &self.manifest)
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
                    "{} probes run once around a `ppisc run`; a long-lived session has no begin or end",
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
        if !crate::stacks::stack_kinds(&self.manifest).is_empty() {
            // Stack keys get their frames: the processes of user stacks are remembered as
            // soon as a read sees them, and symbolised from what was remembered.
            let mut pids = self.stack_pids.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let with_info: Vec<(&ppis_manifest::MapInfo, &Map)> = self.manifest.maps.iter().zip(&self.maps).collect();
            pids.observe(&with_info, false);
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
mod tests {
    use super::*;

    #[test]
    fn a_garbage_object_does_not_start() {
        let manifest = Manifest { version: 1, budget_percent: 1.0, probes: vec![], maps: vec![], events: None };
        let error = Session::start(b"not an elf", &manifest).err().expect("garbage must not load");
        assert!(matches!(error, RuntimeError::Load(_)), "{error}");
    }
}
