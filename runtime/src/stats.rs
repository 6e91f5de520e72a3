//! Measuring attached probes: the kernel's per-program run-time statistics
//! (`kernel.bpf_stats_enabled`, turned on through `BPF_ENABLE_STATS` for as long as a guard
//! lives) and an attach session that keeps probes attached while a workload runs.
//!
//! Boundary: reads what the kernel counts (`run_time_ns`, `run_cnt` of `bpf_prog_info`); it
//! neither drives workloads nor interprets the numbers (that is `ppisc calibrate`'s job).

use std::os::fd::OwnedFd;

use aya::Ebpf;
use ppis_manifest::{Manifest, ProbeInfo};

use crate::snapshot::MapValue;
use crate::{attach_probe, error_chain, read_maps, take_maps, RuntimeError};

/// Keeps the kernel counting run time and runs of every BPF program while it lives. The
/// kernel reference-counts these requests, so a guard never turns off statistics someone
/// else asked for (the `kernel.bpf_stats_enabled` sysctl stays as it was).
#[derive(Debug)]
pub struct RunTimeStats {
    _enabled: OwnedFd,
}

/// Asks the kernel to count run time and runs of every BPF program (`BPF_ENABLE_STATS`,
/// kernel 5.8+, needs `CAP_SYS_ADMIN`), until the returned guard is dropped.
pub fn enable_run_time_stats() -> Result<RunTimeStats, RuntimeError> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime).map(|fd| RunTimeStats { _enabled: fd }).map_err(|error| {
        RuntimeError::Preflight(format!("cannot enable BPF run-time statistics: {}", error_chain(&error)))
    })
}

/// What the kernel counted for one program since it was loaded (only while statistics were
/// enabled): total nanoseconds spent in it and how many times it ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramStats {
    /// Program (function symbol) name in the object.
    pub program: String,
    pub run_time_ns: u64,
    pub run_count: u64,
}

impl ProgramStats {
    /// The runs and time between `earlier` (a previous reading of the same program) and `self`.
    pub fn since(&self, earlier: &ProgramStats) -> ProgramStats {
        ProgramStats {
            program: self.program.clone(),
            run_time_ns: self.run_time_ns.saturating_sub(earlier.run_time_ns),
            run_count: self.run_count.saturating_sub(earlier.run_count),
        }
    }

    /// Mean nanoseconds per run; `None` before the first counted run.
    pub fn ns_per_run(&self) -> Option<f64> {
        (self.run_count > 0).then(|| self.run_time_ns as f64 / self.run_count as f64)
    }
}

/// Probes loaded and attached as a manifest lists them, until [`AttachedProbes::detach`] or
/// drop. Unlike [`crate::run`] it does not wait: the caller runs a workload meanwhile.
pub struct AttachedProbes {
    ebpf: Ebpf,
    probes: Vec<ProbeInfo>,
}

/// Loads `object` and attaches every probe of `manifest`.
pub fn attach(object: &[u8], manifest: &Manifest) -> Result<AttachedProbes, RuntimeError> {
    let mut ebpf = Ebpf::load(object).map_err(|error| RuntimeError::Load(error_chain(&error)))?;
    for probe in &manifest.probes {
        attach_probe(&mut ebpf, probe)?;
    }
    Ok(AttachedProbes { ebpf, probes: manifest.probes.clone() })
}

impl AttachedProbes {
    /// The kernel's counters of every attached program, in manifest order.
    pub fn stats(&self) -> Result<Vec<ProgramStats>, RuntimeError> {
        self.probes
            .iter()
            .map(|probe| {
                let fail = |message: String| RuntimeError::Probe {
                    attach: probe.attach.to_string(),
                    line: probe.line,
                    message,
                };
                let program = self
                    .ebpf
                    .program(&probe.program)
                    .ok_or_else(|| fail(format!("program {} is not in the object", probe.program)))?;
                let info = program
                    .info()
                    .map_err(|error| fail(format!("cannot read program statistics: {}", error_chain(&error))))?;
                Ok(ProgramStats {
                    program: probe.program.clone(),
                    run_time_ns: u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX),
                    run_count: info.run_count(),
                })
            })
            .collect()
    }

    /// Detaches and unloads every probe, then reads and decodes every map of `manifest`.
    pub fn detach_and_read_maps(mut self, manifest: &Manifest) -> Result<Vec<(String, MapValue)>, RuntimeError> {
        let maps = take_maps(&mut self.ebpf, manifest)?;
        // Dropping the loader detaches the links; the taken maps stay open to be read.
        drop(self);
        read_maps(manifest, &maps)
    }

    /// Detaches and unloads every probe.
    pub fn detach(self) {
        drop(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(run_time_ns: u64, run_count: u64) -> ProgramStats {
        ProgramStats { program: "probe0".into(), run_time_ns, run_count }
    }

    #[test]
    fn differences_and_means() {
        let delta = stats(5_000, 40).since(&stats(1_000, 20));
        assert_eq!(delta, stats(4_000, 20));
        assert_eq!(delta.ns_per_run(), Some(200.0));
        assert_eq!(stats(0, 0).ns_per_run(), None);
        // A reading from another program (counters reset) never underflows.
        assert_eq!(stats(10, 1).since(&stats(20, 2)), stats(0, 0));
    }

    #[test]
    fn a_garbage_object_is_a_load_error() {
        let manifest = Manifest { version: 1, budget_percent: 1.0, probes: vec![], maps: vec![], events: None };
        let error = attach(b"not an elf", &manifest).err().expect("garbage must not load");
        assert!(matches!(error, RuntimeError::Load(_)), "{error}");
        let error = crate::load_check(b"not an elf", &manifest).unwrap_err();
        assert!(matches!(error, RuntimeError::Load(_)), "{error}");
    }
}
