//! Measuring attached probes: the kernel's per-program run-time statistics
//! (`kernel.bpf_stats_enabled`, turned on through `BPF_ENABLE_STATS` for as long as a guard
//! lives) and an attach session that keeps probes attached while a workload runs.
//!
//! Boundary: reads what the kernel counts (`run_time_ns`, `run_cnt` of `bpf_prog_info`); it
//! neither drives workloads nor interprets the numbers (that is `ppisc calibrate`'s job).

use std::os::fd::OwnedFd;

use ppis_manifest::Manifest;

use crate::snapshot::MapValue;
use crate::{error_chain, RuntimeError, Session};

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
    session: Session,
}

/// Loads `object` and attaches every probe of `manifest` through a [`Session`]; the first
/// probe that cannot attach is the error.
pub fn attach(object: &[u8], manifest: &Manifest) -> Result<AttachedProbes, RuntimeError> {
    let mut session = Session::open(object, manifest)?;
    (0..session.probe_count()).try_for_each(|index| session.attach(index))?;
    Ok(AttachedProbes { session })
}

impl AttachedProbes {
    /// The kernel's counters of every attached program, in manifest order.
    pub fn stats(&self) -> Result<Vec<ProgramStats>, RuntimeError> {
        (0..self.session.probe_count()).map(|index| self.session.stats(index)).collect()
    }

    /// Detaches every probe, then reads and decodes every map of the manifest.
    pub fn detach_and_read_maps(mut self, _manifest: &Manifest) -> Result<Vec<(String, MapValue)>, RuntimeError> {
        if let Some(error) = self.session.detach_all().into_iter().next() {
            return Err(error);
        }
        self.session.read_maps()
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
