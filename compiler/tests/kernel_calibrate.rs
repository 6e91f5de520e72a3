//! `ppisc calibrate` against the real kernel, briefly (few events, one trial): every field the
//! profile has is measured (none is left at its reference value by accident), the per-run
//! cost is split from the branch price, and the profile is valid and round-trips.
//!
//! Needs root and tracefs. Without them the test prints why and passes, except under
//! `CI=true`, where it fails instead.

mod kernel_guard;

use ppis_compiler::calibrate::{calibrate, CalibrateOptions};
use ppis_manifest::profile::{reference, CostProfile, StrReadCost};

#[test]
fn a_short_calibration_measures_every_field() {
    if !kernel_guard::kernel_ready(
        &["syscalls/sys_enter_getppid", "raw_syscalls/sys_enter", "raw_syscalls/sys_exit"],
        &[],
    ) {
        return;
    }
    let profile = calibrate(&CalibrateOptions { events: 2_000, trials: 1 }).expect("calibration runs");
    let back = CostProfile::from_json(&profile.to_json()).expect("the measured profile is valid");
    assert_eq!(back, profile);

    let i = &profile.instructions;
    // An empty run costs tens of ns (clock reads, the call into the JIT image); a branch is a
    // cycle or two. Before the split the branch carried the whole run.
    assert!(i.run >= 5.0, "per-run cost {} ns", i.run);
    assert!(i.branch < i.run, "branch {} ns is not below the per-run cost {} ns", i.branch, i.run);

    let (t, h) = (&profile.triggers, &profile.helpers);
    // The raw tracepoint's own dispatch is a few tens of ns, within the wall-clock noise of
    // so short a run: it may come out as 0 here (it is measured, not the reference, below).
    for (name, value) in [
        ("triggers.perf_event", t.perf_event),
        ("helpers.get_stackid", h.get_stackid),
        ("helpers.get_current_cgroup_id", h.get_current_cgroup_id),
        ("helpers.map_lookup_elem.lru_hash", h.map_lookup_elem.lru_hash),
        ("helpers.map_update_elem.lru_hash", h.map_update_elem.lru_hash),
        ("helpers.map_delete_elem.lru_hash", h.map_delete_elem.lru_hash),
    ] {
        assert!(value > 0.0, "{name} = {value}");
    }
    let reference = CostProfile::reference();
    assert_ne!(t.raw_tracepoint, reference::raw_tracepoint(), "raw tracepoint trigger not measured");
    assert_ne!(t.perf_event, reference::perf_event(), "perf event trigger not measured");
    assert_ne!(h.get_stackid, reference.helpers.get_stackid, "get_stackid not measured");
    assert_ne!(h.probe_read_user, StrReadCost::reference_user(), "probe_read_user not measured");
    assert_ne!(h.ringbuf_output, reference::ringbuf_output(), "ringbuf_output not measured");
    // Walking and hashing a stack is far dearer than reading a cgroup id.
    assert!(h.get_stackid > h.get_current_cgroup_id, "{} vs {}", h.get_stackid, h.get_current_cgroup_id);
    // A longer record or read never costs less.
    assert!(h.probe_read_user.cost(128) >= h.probe_read_user.cost(16));
    assert!(h.ringbuf_output.cost(256) >= h.ringbuf_output.cost(16));
}
