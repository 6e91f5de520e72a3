//! The probe kinds beyond tracepoints and uprobes: raw tracepoints, perf events (`profile`
//! samples on every online CPU, `interval` a timer on one CPU, both on the software cpu-clock
//! as bpftrace does) and `begin`/`end`, which are never attached but run exactly once with
//! `BPF_PROG_TEST_RUN` (see [`OnceProbes`]).
//!
//! Boundary: aya makes the load and attach calls; the one test-run call is in `sys`.

use std::os::fd::AsFd;

use aya::programs::perf_event::{PerfEventLinkId, PerfEventScope, PerfTypeId, SamplePolicy};
use aya::programs::raw_trace_point::RawTracePointLinkId;
use aya::programs::{PerfEvent, Program, ProgramFd, RawTracePoint};
use aya::Ebpf;
use ppis_manifest::{Attach, Manifest, ProbeInfo};

use crate::{error_chain, load_error_message, load_probe, probe_error, RuntimeError};

/// `PERF_COUNT_SW_CPU_CLOCK`: the per-CPU high-resolution timer, which fires whether the CPU
/// is busy or idle (unlike the task clock), so `interval` ticks on an idle machine too.
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;

/// Nanoseconds per millisecond: the cpu-clock event's period is in nanoseconds.
const NANOS_PER_MILLI: u64 = 1_000_000;

/// The links of one attached probe of a kind handled here.
pub(crate) enum Link {
    RawTracepoint(RawTracePointLinkId),
    /// One perf event per CPU it samples on.
    PerfEvent(Vec<PerfEventLinkId>),
}

/// Whether this module loads and attaches `attach`.
pub(crate) fn handles(attach: &Attach) -> bool {
    matches!(
        attach,
        Attach::RawTracepoint { .. } | Attach::Profile { .. } | Attach::Interval { .. } | Attach::Begin | Attach::End
    )
}

/// Loads (kernel verifier included) the program of a probe this module handles, after
/// checking that its program type is the one the attach point needs.
pub(crate) fn load(program: &mut Program, probe: &ProbeInfo) -> Result<(), String> {
    match &probe.attach {
        Attach::RawTracepoint { .. } | Attach::Begin | Attach::End => {
            let raw: &mut RawTracePoint =
                program.try_into().map_err(|_| format!("program {} is not a raw tracepoint program", probe.program))?;
            raw.load().map_err(|error| load_error_message(&error))
        }
        Attach::Profile { .. } | Attach::Interval { .. } => {
            let perf: &mut PerfEvent =
                program.try_into().map_err(|_| format!("program {} is not a perf event program", probe.program))?;
            perf.load().map_err(|error| load_error_message(&error))
        }
        other => Err(format!("{other} is not a raw tracepoint, perf event, begin or end probe")),
    }
}

/// Attaches a loaded program where the manifest says. `begin`/`end` are not attached (they
/// are run by [`OnceProbes`]), so they are an error here.
pub(crate) fn attach(program: &mut Program, probe: &ProbeInfo) -> Result<Link, String> {
    match &probe.attach {
        Attach::RawTracepoint { name } => {
            let raw: &mut RawTracePoint =
                program.try_into().map_err(|_| format!("program {} is not a raw tracepoint program", probe.program))?;
            raw.attach(name).map(Link::RawTracepoint).map_err(|error| {
                format!(
                    "cannot attach raw tracepoint {name} (is it in /sys/kernel/tracing/available_events?): {}",
                    error_chain(&error)
                )
            })
        }
        Attach::Profile { hz } => {
            let cpus = online_cpus()?;
            attach_perf(program, probe, &cpus, SamplePolicy::Frequency(*hz))
        }
        Attach::Interval { period_ms } => {
            let cpus = online_cpus()?;
            let first = cpus.first().copied().ok_or("no CPU is online")?;
            let period_ns = period_ms.saturating_mul(NANOS_PER_MILLI);
            attach_perf(program, probe, &[first], SamplePolicy::Period(period_ns))
        }
        Attach::Begin | Attach::End => Err(format!("{} runs once and is never attached", probe.attach)),
        other => Err(format!("{other} is not a raw tracepoint or perf event probe")),
    }
}

/// One cpu-clock perf event per CPU of `cpus`, for every process, with the program attached.
fn attach_perf(program: &mut Program, probe: &ProbeInfo, cpus: &[u32], policy: SamplePolicy) -> Result<Link, String> {
    let perf: &mut PerfEvent =
        program.try_into().map_err(|_| format!("program {} is not a perf event program", probe.program))?;
    let mut links = Vec::with_capacity(cpus.len());
    for &cpu in cpus {
        let link = perf
            .attach(
                PerfTypeId::Software,
                PERF_COUNT_SW_CPU_CLOCK,
                PerfEventScope::AllProcessesOneCpu { cpu },
                policy.clone(),
                false,
            )
            .map_err(|error| format!("cannot open the cpu-clock perf event on CPU {cpu}: {}", error_chain(&error)))?;
        links.push(link);
    }
    Ok(Link::PerfEvent(links))
}

/// Detaches what [`attach`] attached; the program stays loaded.
pub(crate) fn detach(program: &mut Program, link: Link) -> Result<(), String> {
    match link {
        Link::RawTracepoint(link) => {
            let raw: &mut RawTracePoint = program.try_into().map_err(|_| "not a raw tracepoint program".to_string())?;
            raw.detach(link).map_err(|error| error_chain(&error))
        }
        Link::PerfEvent(links) => {
            let perf: &mut PerfEvent = program.try_into().map_err(|_| "not a perf event program".to_string())?;
            for link in links {
                perf.detach(link).map_err(|error| error_chain(&error))?;
            }
            Ok(())
        }
    }
}

fn online_cpus() -> Result<Vec<u32>, String> {
    aya::util::online_cpus().map_err(|(path, error)| format!("cannot read the online CPUs from {path}: {error}"))
}

/// The loaded `begin` and `end` programs of a run. Each holds its own file descriptor, so an
/// `end` program outlives dropping the loader (which detaches and unloads the others) and can
/// run after every other probe is gone.
pub(crate) struct OnceProbes {
    begin: Vec<(ProbeInfo, ProgramFd)>,
    end: Vec<(ProbeInfo, ProgramFd)>,
}

impl OnceProbes {
    /// Loads every `begin` and `end` program of `manifest`.
    pub(crate) fn load(ebpf: &mut Ebpf, manifest: &Manifest) -> Result<OnceProbes, RuntimeError> {
        let mut once = OnceProbes { begin: Vec::new(), end: Vec::new() };
        for probe in manifest.probes.iter().filter(|probe| probe.attach.runs_once()) {
            load_probe(ebpf, probe)?;
            let fail = |message: String| probe_error(probe, message);
            let program = ebpf
                .program(&probe.program)
                .ok_or_else(|| fail(format!("program {} is not in the object", probe.program)))?;
            let fd = program
                .fd()
                .and_then(|fd| fd.try_clone().map_err(aya::programs::ProgramError::from))
                .map_err(|error| fail(format!("cannot keep the program: {}", error_chain(&error))))?;
            let list = if probe.attach == Attach::Begin { &mut once.begin } else { &mut once.end };
            list.push((probe.clone(), fd));
        }
        Ok(once)
    }

    /// Runs every `begin` program once, in manifest order.
    pub(crate) fn run_begin(&self) -> Result<(), RuntimeError> {
        run_each(&self.begin)
    }

    /// Runs every `end` program once, in manifest order.
    pub(crate) fn run_end(&self) -> Result<(), RuntimeError> {
        run_each(&self.end)
    }
}

fn run_each(programs: &[(ProbeInfo, ProgramFd)]) -> Result<(), RuntimeError> {
    for (probe, fd) in programs {
        crate::sys::prog_test_run(fd.as_fd(), &[])
            .map_err(|error| probe_error(probe, format!("cannot run the program once (BPF_PROG_TEST_RUN): {error}")))?;
    }
    Ok(())
}
