//! Checks made before anything is loaded, so that a run that cannot work says why in one
//! message instead of failing halfway with a bare `EPERM`.

use ppis_manifest::{Attach, Manifest};

use crate::host::{self, HostError};
use crate::RuntimeError;

/// Capability numbers from `linux/capability.h`.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Checks that this process may load and attach BPF programs, and that tracefs is mounted
/// when a probe of `manifest` is a tracepoint. The error lists everything that is missing.
pub fn preflight(manifest: &Manifest) -> Result<(), RuntimeError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let facts = HostFacts {
        effective_uid: crate::sys::effective_uid(),
        effective_capabilities: effective_capabilities(&status),
        tracefs: host::tracefs_root().map(|_| ()),
    };
    check(manifest, &facts)
}

/// What preflight looks at, gathered so the decision can be tested without the host.
struct HostFacts {
    effective_uid: u32,
    /// The `CapEff` mask; `None` when `/proc/self/status` could not be read.
    effective_capabilities: Option<u64>,
    tracefs: Result<(), HostError>,
}

fn check(manifest: &Manifest, facts: &HostFacts) -> Result<(), RuntimeError> {
    let mut missing = Vec::new();
    let has = |capability: u32| facts.effective_capabilities.is_some_and(|mask| mask & (1 << capability) != 0);
    // Root without the capabilities (e.g. in a restricted container) still cannot load
    // programs, so the capability mask decides whenever it is known.
    let privileged = match facts.effective_capabilities {
        Some(_) => has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)),
        None => facts.effective_uid == 0,
    };
    if !privileged {
        missing.push(
            "loading eBPF programs needs root, or the capabilities CAP_BPF and CAP_PERFMON (run it with sudo)"
                .to_string(),
        );
    }
    let needs_tracefs = manifest.probes.iter().any(|probe| matches!(probe.attach, Attach::Tracepoint { .. }));
    if let (true, Err(error)) = (needs_tracefs, &facts.tracefs) {
        missing.push(format!("tracepoint probes need tracefs, but {}", error.message));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::Preflight(format!("cannot run probes here: {}", missing.join("; "))))
    }
}

/// The effective capability mask from the text of `/proc/self/status`.
fn effective_capabilities(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppis_manifest::{ProbeInfo, MANIFEST_VERSION};

    fn manifest_with(attach: Attach) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            budget_percent: 1.0,
            probes: vec![ProbeInfo { program: "probe0".into(), attach, rate_per_sec: None, line: 1, activation: None }],
            maps: vec![],
            events: None,
        }
    }

    fn tracepoint() -> Manifest {
        manifest_with(Attach::Tracepoint { category: "raw_syscalls".into(), name: "sys_enter".into() })
    }

    fn no_tracefs() -> Result<(), HostError> {
        Err(HostError {
            message: "tracefs is not mounted at /sys/kernel/tracing (mount it with: mount -t tracefs nodev /sys/kernel/tracing)".into(),
            suggestions: vec![],
            unavailable: true,
        })
    }

    const ALL_CAPABILITIES: u64 = 0x1ff_ffff_ffff;

    #[test]
    fn reads_the_effective_capability_mask() {
        let status = "Name:\tppisc\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\nCapBnd:\t0\n";
        assert_eq!(effective_capabilities(status), Some(ALL_CAPABILITIES));
        assert_eq!(effective_capabilities("Name: x\n"), None);
    }

    #[test]
    fn root_with_capabilities_and_tracefs_passes() {
        let facts = HostFacts { effective_uid: 0, effective_capabilities: Some(ALL_CAPABILITIES), tracefs: Ok(()) };
        assert!(check(&tracepoint(), &facts).is_ok());
        let bpf_and_perfmon = (1 << CAP_BPF) | (1 << CAP_PERFMON);
        let facts = HostFacts { effective_uid: 1000, effective_capabilities: Some(bpf_and_perfmon), tracefs: Ok(()) };
        assert!(check(&tracepoint(), &facts).is_ok());
    }

    #[test]
    fn unprivileged_without_tracefs_lists_both_problems() {
        let facts =
            HostFacts { effective_uid: 1000, effective_capabilities: Some(1 << CAP_BPF), tracefs: no_tracefs() };
        insta::assert_snapshot!(check(&tracepoint(), &facts).unwrap_err().to_string());
    }

    #[test]
    fn tracefs_only_matters_for_tracepoints() {
        let facts = HostFacts { effective_uid: 0, effective_capabilities: None, tracefs: no_tracefs() };
        let uprobe = manifest_with(Attach::Uprobe { path: "/bin/sh".into(), symbol: "main".into() });
        assert!(check(&uprobe, &facts).is_ok());
        let error = check(&tracepoint(), &facts).unwrap_err().to_string();
        assert_eq!(
            error,
            "cannot run probes here: tracepoint probes need tracefs, but tracefs is not mounted at /sys/kernel/tracing (mount it with: mount -t tracefs nodev /sys/kernel/tracing)"
        );
    }

    #[test]
    fn root_without_capabilities_is_refused() {
        let facts = HostFacts { effective_uid: 0, effective_capabilities: Some(0), tracefs: Ok(()) };
        let error = check(&tracepoint(), &facts).unwrap_err().to_string();
        assert!(error.contains("needs root, or the capabilities CAP_BPF and CAP_PERFMON"), "{error}");
    }
}
