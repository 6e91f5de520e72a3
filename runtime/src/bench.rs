//! Raw benchmark programs for cost calibration (`ppisc calibrate`): programs loaded straight
//! from eBPF bytecode (helpers and map kinds the ppis IR may not express yet), maps created
//! without an object file, and the kernel's ways of running them without an ELF loader:
//! `BPF_PROG_TEST_RUN`, a raw tracepoint link, or a perf event.
//!
//! Boundary: loads, runs and reads counters; the caller writes the bytecode and interprets
//! the numbers. The system calls themselves are in `sys`.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use crate::{sys, RuntimeError};

/// Kernel program types the benchmarks use (`enum bpf_prog_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawProgramType {
    /// `BPF_PROG_TYPE_PERF_EVENT`.
    PerfEvent,
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT` (also runnable by `BPF_PROG_TEST_RUN`).
    RawTracepoint,
}

impl RawProgramType {
    fn kernel_id(self) -> u32 {
        match self {
            RawProgramType::PerfEvent => 7,
            RawProgramType::RawTracepoint => 17,
        }
    }
}

/// Kernel map types the benchmarks use (`enum bpf_map_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawMapType {
    Hash,
    StackTrace,
    LruHash,
    /// Key and value size 0; `max_entries` is the size in bytes (a power of 2, ≥ a page).
    Ringbuf,
}

impl RawMapType {
    fn kernel_id(self) -> u32 {
        match self {
            RawMapType::Hash => 1,
            RawMapType::StackTrace => 7,
            RawMapType::LruHash => 9,
            RawMapType::Ringbuf => 27,
        }
    }
}

/// A map created for a benchmark; programs name it by [`RawMap::fd_number`] in an
/// `ld_imm64` with `src = 1` (`BPF_PSEUDO_MAP_FD`).
pub struct RawMap {
    fd: OwnedFd,
    ringbuf: Option<sys::RingbufPositions>,
}

impl RawMap {
    pub fn create(kind: RawMapType, key_size: u32, value_size: u32, max_entries: u32) -> Result<RawMap, RuntimeError> {
        let fd = sys::map_create(kind.kernel_id(), key_size, value_size, max_entries)
            .map_err(|error| RuntimeError::Load(format!("cannot create a {kind:?} benchmark map: {error}")))?;
        let ringbuf = match kind {
            RawMapType::Ringbuf => Some(
                sys::RingbufPositions::map(fd.as_fd())
                    .map_err(|error| RuntimeError::Load(format!("cannot map the ring buffer's positions: {error}")))?,
            ),
            _ => None,
        };
        Ok(RawMap { fd, ringbuf })
    }

    /// The descriptor number bytecode refers to this map by.
    pub fn fd_number(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// For a ring buffer: frees every record written so far, so that writes keep succeeding
    /// (a full buffer refuses records, which costs less than writing them). No-op otherwise.
    pub fn consume_all(&self) {
        if let Some(positions) = &self.ringbuf {
            positions.consume_all();
        }
    }
}

/// A program loaded from bytecode.
pub struct RawProgram {
    fd: OwnedFd,
    name: String,
}

/// Run time and runs the kernel counted for one program (while statistics were enabled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RawRunStats {
    pub run_time_ns: u64,
    pub run_count: u64,
}

impl RawRunStats {
    pub fn since(&self, earlier: &RawRunStats) -> RawRunStats {
        RawRunStats {
            run_time_ns: self.run_time_ns.saturating_sub(earlier.run_time_ns),
            run_count: self.run_count.saturating_sub(earlier.run_count),
        }
    }

    /// Mean nanoseconds per run; `None` before the first counted run.
    pub fn ns_per_run(&self) -> Option<f64> {
        (self.run_count > 0).then(|| self.run_time_ns as f64 / self.run_count as f64)
    }
}

/// Bytes of verifier log kept when a program is refused.
const VERIFIER_LOG_BYTES: usize = 64 * 1024;

impl RawProgram {
    /// Loads little-endian eBPF instruction bytes (8 per slot) as a GPL program of `kind`;
    /// `name` only labels errors.
    pub fn load(kind: RawProgramType, name: &str, insns: &[u8]) -> Result<RawProgram, RuntimeError> {
        if insns.is_empty() || !insns.len().is_multiple_of(8) {
            return Err(RuntimeError::Load(format!(
                "benchmark {name}: {} bytes is not whole instructions",
                insns.len()
            )));
        }
        let mut log = vec![0u8; VERIFIER_LOG_BYTES];
        match sys::prog_load(kind.kernel_id(), insns, &mut log) {
            Ok(fd) => Ok(RawProgram { fd, name: name.to_string() }),
            Err(error) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                let tail: Vec<&str> = text.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
                Err(RuntimeError::Load(format!("benchmark {name} refused: {error}\n{}", tail.join("\n"))))
            }
        }
    }

    /// Runs the program once through `BPF_PROG_TEST_RUN` (raw tracepoint programs: `ctx` is
    /// the array of tracepoint arguments) in the calling thread; its return value.
    pub fn test_run(&self, ctx: &[u8]) -> Result<u32, RuntimeError> {
        sys::prog_test_run(self.fd.as_fd(), ctx)
            .map_err(|error| RuntimeError::Load(format!("cannot test-run benchmark {}: {error}", self.name)))
    }

    /// What the kernel counted for this program so far.
    pub fn stats(&self) -> Result<RawRunStats, RuntimeError> {
        let (run_time_ns, run_count) = sys::prog_run_stats(self.fd.as_fd())
            .map_err(|error| RuntimeError::Load(format!("cannot read statistics of {}: {error}", self.name)))?;
        Ok(RawRunStats { run_time_ns, run_count })
    }

    /// Attaches this raw tracepoint program to raw tracepoint `tracepoint` (e.g. `sys_enter`)
    /// until the returned link is dropped.
    pub fn attach_raw_tracepoint(&self, tracepoint: &str) -> Result<RawLink, RuntimeError> {
        let name = CString::new(tracepoint)
            .map_err(|_| RuntimeError::Load(format!("bad raw tracepoint name {tracepoint:?}")))?;
        let fd = sys::raw_tracepoint_open(&name, self.fd.as_fd()).map_err(|error| RuntimeError::Probe {
            attach: format!("rawtracepoint:{tracepoint}"),
            line: 0,
            message: format!("cannot attach benchmark {}: {error}", self.name),
        })?;
        Ok(RawLink { _fd: fd })
    }

    /// Attaches this perf event program to a software `cpu-clock` event of the calling thread
    /// that overflows every `period_ns` of the thread's CPU time; enabled until dropped.
    pub fn attach_thread_cpu_clock(&self, period_ns: u64) -> Result<RawLink, RuntimeError> {
        let fail = |what: &str, error: std::io::Error| RuntimeError::Probe {
            attach: format!("perf_event:cpu-clock:{period_ns}ns"),
            line: 0,
            message: format!("{what}: {error}"),
        };
        let event = sys::perf_event_open_thread_cpu_clock(period_ns).map_err(|e| fail("cannot open the event", e))?;
        sys::perf_event_set_bpf(event.as_fd(), self.fd.as_fd()).map_err(|e| fail("cannot attach the program", e))?;
        sys::perf_event_enable(event.as_fd(), true).map_err(|e| fail("cannot enable the event", e))?;
        Ok(RawLink { _fd: event })
    }
}

impl RawProgram {
    /// Attaches the program to a `cpu-clock` event on each CPU of `cpus` that overflows every
    /// `period_ns` whatever runs there (idle included), as `profile` and `interval` probes do.
    pub fn attach_cpu_clock_on_cpus(&self, cpus: &[u32], period_ns: u64) -> Result<Vec<RawLink>, RuntimeError> {
        cpus.iter()
            .map(|&cpu| {
                let fail = |what: &str, error: std::io::Error| RuntimeError::Probe {
                    attach: format!("perf_event:cpu-clock:{period_ns}ns on cpu {cpu}"),
                    line: 0,
                    message: format!("{what}: {error}"),
                };
                let event = sys::perf_event_open_cpu_clock_on_cpu(cpu, period_ns)
                    .map_err(|e| fail("cannot open the event", e))?;
                sys::perf_event_set_bpf(event.as_fd(), self.fd.as_fd())
                    .map_err(|e| fail("cannot attach the program", e))?;
                sys::perf_event_enable(event.as_fd(), true).map_err(|e| fail("cannot enable the event", e))?;
                Ok(RawLink { _fd: event })
            })
            .collect()
    }
}

/// An attachment that lasts as long as this value.
pub struct RawLink {
    _fd: OwnedFd,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_differences_and_means() {
        let later = RawRunStats { run_time_ns: 900, run_count: 30 };
        let earlier = RawRunStats { run_time_ns: 300, run_count: 10 };
        assert_eq!(later.since(&earlier), RawRunStats { run_time_ns: 600, run_count: 20 });
        assert_eq!(later.since(&earlier).ns_per_run(), Some(30.0));
        assert_eq!(RawRunStats::default().ns_per_run(), None);
    }

    #[test]
    fn partial_instructions_are_refused_before_the_kernel_sees_them() {
        let error = RawProgram::load(RawProgramType::RawTracepoint, "bad", &[0u8; 12]).err().expect("refused");
        assert!(error.to_string().contains("whole instructions"), "{error}");
    }
}
