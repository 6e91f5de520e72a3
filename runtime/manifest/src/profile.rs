//! Host cost profiles: what one probe event costs on a given machine, per attach trigger,
//! per instruction class and per kernel helper, in nanoseconds. The verifier turns a probe's
//! worst path into a cost bound with it; certificates name the profile by its hash.
//!
//! Boundary: plain data, its JSON form and its hash; no measuring and no IR knowledge.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped whenever a field changes meaning.
pub const PROFILE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostProfile {
    pub version: u32,
    pub host: HostInfo,
    /// When (RFC 3339) and how the numbers were obtained, e.g. "2025-01-01T00:00:00Z".
    pub measured_at: String,
    /// Fixed cost of delivering one event to a program, before its first instruction.
    pub triggers: TriggerCosts,
    pub instructions: InstructionCosts,
    pub helpers: HelperCosts,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostInfo {
    pub cpus: u32,
    /// `uname -r`.
    pub kernel: String,
    pub cpu_model: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerCosts {
    pub tracepoint: f64,
    pub uprobe: f64,
    pub uretprobe: f64,
    /// `rawtracepoint:NAME`. Optional in profile files (older ones predate it): the reference
    /// number applies when absent, and it is left out of the canonical JSON when equal to
    /// the reference, so existing hashes still hold. Same for every optional field below.
    #[serde(default = "reference::raw_tracepoint", skip_serializing_if = "reference::is_raw_tracepoint")]
    pub raw_tracepoint: f64,
    /// A perf event overflow (`profile:hz:N`, `interval:..`): the sampling interrupt and
    /// the dispatch to the program.
    #[serde(default = "reference::perf_event", skip_serializing_if = "reference::is_perf_event")]
    pub perf_event: f64,
}

/// Per executed IR instruction, by class (ns).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstructionCosts {
    /// Moves, arithmetic, comparisons, extensions.
    pub alu: f64,
    pub load_ctx: f64,
    /// Per 8-byte word (a `zero sN` of 16 bytes costs two stores).
    pub load_stack: f64,
    pub store_stack: f64,
    pub load_map_value: f64,
    pub store_map_value: f64,
    /// Conditional and unconditional jumps, and the final exit.
    pub branch: f64,
    /// Overhead of any helper call (argument set-up, call, return), on top of the helper.
    pub call: f64,
    /// The kernel's fixed cost of one program run, paid once per event whatever the program
    /// does: the call into the JIT image, prologue and exit, and the run-time statistics'
    /// clock reads around it (what an empty program costs). Every run leaves through exactly
    /// one exit, so it is charged there, on top of that exit's `branch`. Optional: profiles
    /// that predate it priced it into `branch`, so absent means 0 and their bounds and
    /// hashes stay what they were (see [`TriggerCosts`] for how optional fields hash).
    #[serde(default = "reference::run", skip_serializing_if = "reference::is_run")]
    pub run: f64,
    /// The per-run cost on a perf event (`profile`, `interval`): the program runs from the
    /// timer interrupt, often on a CPU that was idle, with cold caches, dearer than `run`
    /// (measured on tracepoints and uprobes). Optional: absent means `run`, so older
    /// profiles keep their bounds and hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_perf_event: Option<f64>,
}

/// The attach mechanisms, as the profile prices them: what decides an event's fixed costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerKind {
    Tracepoint,
    Uprobe,
    Uretprobe,
    RawTracepoint,
    /// `profile` and `interval` probes.
    PerfEvent,
}

/// A map helper's cost depends on the map's implementation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapHelperCost {
    pub hash: f64,
    pub array: f64,
    pub percpu_hash: f64,
    pub percpu_array: f64,
    /// `lru_hash` maps; optional, defaults to the reference (see [`TriggerCosts`]).
    #[serde(default = "reference::lru_hash", skip_serializing_if = "reference::is_lru_hash")]
    pub lru_hash: f64,
}

impl MapHelperCost {
    pub fn max(&self) -> f64 {
        self.hash.max(self.array).max(self.percpu_hash).max(self.percpu_array).max(self.lru_hash)
    }
}

/// Per helper call, excluding [`InstructionCosts::call`] (ns).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelperCosts {
    pub map_lookup_elem: MapHelperCost,
    pub map_update_elem: MapHelperCost,
    pub map_delete_elem: MapHelperCost,
    pub ktime_get_ns: f64,
    pub get_current_pid_tgid: f64,
    pub get_current_uid_gid: f64,
    pub get_current_comm: f64,
    pub get_smp_processor_id: f64,
    /// `bpf_probe_read_user_str` (`str(ptr, N)` on user pointers). Optional in profile files
    /// (older ones predate it): the reference numbers apply when absent, and they are left
    /// out of the canonical JSON when equal to the reference, so existing hashes still hold.
    #[serde(default = "StrReadCost::reference_user", skip_serializing_if = "StrReadCost::is_reference_user")]
    pub probe_read_user_str: StrReadCost,
    /// `bpf_probe_read_kernel_str` (`str(ptr, N)` on kernel pointers); as above.
    #[serde(default = "StrReadCost::reference_kernel", skip_serializing_if = "StrReadCost::is_reference_kernel")]
    pub probe_read_kernel_str: StrReadCost,
    /// `bpf_probe_read_user` (`buf(ptr, N)` on user pointers); optional, as above.
    #[serde(default = "StrReadCost::reference_user", skip_serializing_if = "StrReadCost::is_reference_user")]
    pub probe_read_user: StrReadCost,
    /// `bpf_probe_read_kernel` (`buf(ptr, N)` on kernel pointers); optional, as above.
    #[serde(default = "StrReadCost::reference_kernel", skip_serializing_if = "StrReadCost::is_reference_kernel")]
    pub probe_read_kernel: StrReadCost,
    /// `bpf_get_stackid` (`ustack`/`kstack`): walks the stack and hashes it; optional.
    #[serde(default = "reference::get_stackid", skip_serializing_if = "reference::is_get_stackid")]
    pub get_stackid: f64,
    /// `bpf_get_current_cgroup_id` (`cgroup`); optional.
    #[serde(default = "reference::get_current_cgroup_id", skip_serializing_if = "reference::is_get_current_cgroup_id")]
    pub get_current_cgroup_id: f64,
    /// `bpf_ringbuf_output` (`emit`, `print`): a fixed part plus a part per byte of the
    /// record; optional.
    #[serde(default = "reference::ringbuf_output", skip_serializing_if = "reference::is_ringbuf_output")]
    pub ringbuf_output: StrReadCost,
}

/// Reference values of the optional profile fields: pessimistic, for a ~3 GHz x86-64 core.
pub mod reference {
    use super::StrReadCost;

    macro_rules! reference_f64 {
        ($($name:ident, $is:ident = $value:expr;)*) => {$(
            pub fn $name() -> f64 {
                $value
            }
            pub fn $is(value: &f64) -> bool {
                *value == $name()
            }
        )*};
    }
    reference_f64! {
        raw_tracepoint, is_raw_tracepoint = 60.0;
        perf_event, is_perf_event = 2000.0;
        lru_hash, is_lru_hash = 150.0;
        get_stackid, is_get_stackid = 2000.0;
        get_current_cgroup_id, is_get_current_cgroup_id = 20.0;
        // 0, not a pessimistic guess: a profile without it charges the per-run cost in
        // `branch` (every path has a branch-priced exit), so adding one would count it twice.
        run, is_run = 0.0;
    }

    pub fn ringbuf_output() -> StrReadCost {
        StrReadCost { base: 100.0, per_byte: 0.5 }
    }
    pub fn is_ringbuf_output(value: &StrReadCost) -> bool {
        *value == ringbuf_output()
    }
}

/// A bounded string read costs a fixed part plus a part per byte of its bound `N` (the
/// worst case copies `N - 1` bytes and the NUL).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrReadCost {
    pub base: f64,
    pub per_byte: f64,
}

impl StrReadCost {
    /// Pessimistic: a user read may fault in a page-table walk; copying is ~1 ns per byte.
    pub fn reference_user() -> StrReadCost {
        StrReadCost { base: 80.0, per_byte: 1.0 }
    }
    pub fn reference_kernel() -> StrReadCost {
        StrReadCost { base: 40.0, per_byte: 0.5 }
    }
    pub fn is_reference_user(&self) -> bool {
        *self == StrReadCost::reference_user()
    }
    pub fn is_reference_kernel(&self) -> bool {
        *self == StrReadCost::reference_kernel()
    }
    /// The worst-case cost of reading at most `len` bytes (ns).
    pub fn cost(&self, len: u32) -> f64 {
        self.base + self.per_byte * len as f64
    }
}

impl CostProfile {
    /// Conservative, deliberately pessimistic numbers for a ~3 GHz x86-64 core, used when no
    /// measured profile is given. `profiles/reference.json` holds the same values.
    pub fn reference() -> CostProfile {
        let map = |hash: f64, array: f64, percpu_hash: f64, percpu_array: f64| MapHelperCost {
            hash,
            array,
            percpu_hash,
            percpu_array,
            lru_hash: reference::lru_hash(),
        };
        CostProfile {
            version: PROFILE_VERSION,
            host: HostInfo { cpus: 2, kernel: "reference".into(), cpu_model: "generic x86-64, ~3 GHz".into() },
            measured_at: "reference values, not measured".into(),
            triggers: TriggerCosts {
                tracepoint: 60.0,
                uprobe: 1000.0,
                uretprobe: 1500.0,
                raw_tracepoint: reference::raw_tracepoint(),
                perf_event: reference::perf_event(),
            },
            instructions: InstructionCosts {
                alu: 0.5,
                load_ctx: 1.0,
                load_stack: 0.5,
                store_stack: 0.5,
                load_map_value: 1.0,
                store_map_value: 1.0,
                branch: 1.0,
                call: 2.0,
                run: reference::run(),
                run_perf_event: None,
            },
            helpers: HelperCosts {
                map_lookup_elem: map(40.0, 10.0, 45.0, 12.0),
                map_update_elem: map(120.0, 20.0, 135.0, 22.0),
                map_delete_elem: map(100.0, 20.0, 110.0, 22.0),
                ktime_get_ns: 25.0,
                get_current_pid_tgid: 10.0,
                get_current_uid_gid: 10.0,
                get_current_comm: 20.0,
                get_smp_processor_id: 5.0,
                probe_read_user_str: StrReadCost::reference_user(),
                probe_read_kernel_str: StrReadCost::reference_kernel(),
                probe_read_user: StrReadCost::reference_user(),
                probe_read_kernel: StrReadCost::reference_kernel(),
                get_stackid: reference::get_stackid(),
                get_current_cgroup_id: reference::get_current_cgroup_id(),
                ringbuf_output: reference::ringbuf_output(),
            },
        }
    }

    /// The fixed cost of delivering one event of `kind` to a program (ns): outside the
    /// program's run time, so the kernel's statistics never see it.
    pub fn trigger(&self, kind: TriggerKind) -> f64 {
        let t = &self.triggers;
        match kind {
            TriggerKind::Tracepoint => t.tracepoint,
            TriggerKind::Uprobe => t.uprobe,
            TriggerKind::Uretprobe => t.uretprobe,
            TriggerKind::RawTracepoint => t.raw_tracepoint,
            TriggerKind::PerfEvent => t.perf_event,
        }
    }

    /// The kernel's fixed cost of one run of a program on `kind` (ns), charged once per
    /// event on the exit; `None` is a run without a trigger (`begin`/`end`, through
    /// `BPF_PROG_TEST_RUN`), priced like one on a tracepoint.
    pub fn run(&self, kind: Option<TriggerKind>) -> f64 {
        let i = &self.instructions;
        match kind {
            Some(TriggerKind::PerfEvent) => i.run_perf_event.unwrap_or(i.run),
            _ => i.run,
        }
    }

    /// The canonical JSON: compact, fields in declaration order. What [`Self::hash`] hashes.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("a cost profile serialises")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a cost profile serialises")
    }

    /// Parses and validates: the version must match and every cost must be finite and ≥ 0.
    pub fn from_json(text: &str) -> Result<CostProfile, String> {
        let profile: CostProfile = serde_json::from_str(text).map_err(|e| format!("bad cost profile: {e}"))?;
        if profile.version != PROFILE_VERSION {
            return Err(format!(
                "cost profile version {} is not supported (expected {PROFILE_VERSION})",
                profile.version
            ));
        }
        if profile.host.cpus == 0 {
            return Err("bad cost profile: host.cpus must be at least 1".into());
        }
        if let Some((name, value)) = profile.costs().into_iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
            return Err(format!("bad cost profile: `{name}` is {value}, costs must be finite and non-negative"));
        }
        Ok(profile)
    }

    /// `sha256:` and the hex SHA-256 of the canonical JSON: names the profile in certificates.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.canonical_json().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// Every cost with its JSON path, for validation.
    fn costs(&self) -> Vec<(&'static str, f64)> {
        let (t, i, h) = (&self.triggers, &self.instructions, &self.helpers);
        let mut all = vec![
            ("triggers.tracepoint", t.tracepoint),
            ("triggers.uprobe", t.uprobe),
            ("triggers.uretprobe", t.uretprobe),
            ("triggers.raw_tracepoint", t.raw_tracepoint),
            ("triggers.perf_event", t.perf_event),
            ("instructions.alu", i.alu),
            ("instructions.load_ctx", i.load_ctx),
            ("instructions.load_stack", i.load_stack),
            ("instructions.store_stack", i.store_stack),
            ("instructions.load_map_value", i.load_map_value),
            ("instructions.store_map_value", i.store_map_value),
            ("instructions.branch", i.branch),
            ("instructions.call", i.call),
            ("instructions.run", i.run),
            ("instructions.run_perf_event", i.run_perf_event.unwrap_or(0.0)),
            ("helpers.ktime_get_ns", h.ktime_get_ns),
            ("helpers.get_current_pid_tgid", h.get_current_pid_tgid),
            ("helpers.get_current_uid_gid", h.get_current_uid_gid),
            ("helpers.get_current_comm", h.get_current_comm),
            ("helpers.get_smp_processor_id", h.get_smp_processor_id),
            ("helpers.probe_read_user_str.base", h.probe_read_user_str.base),
            ("helpers.probe_read_user_str.per_byte", h.probe_read_user_str.per_byte),
            ("helpers.probe_read_kernel_str.base", h.probe_read_kernel_str.base),
            ("helpers.probe_read_kernel_str.per_byte", h.probe_read_kernel_str.per_byte),
            ("helpers.probe_read_user.base", h.probe_read_user.base),
            ("helpers.probe_read_user.per_byte", h.probe_read_user.per_byte),
            ("helpers.probe_read_kernel.base", h.probe_read_kernel.base),
            ("helpers.probe_read_kernel.per_byte", h.probe_read_kernel.per_byte),
            ("helpers.get_stackid", h.get_stackid),
            ("helpers.get_current_cgroup_id", h.get_current_cgroup_id),
            ("helpers.ringbuf_output.base", h.ringbuf_output.base),
            ("helpers.ringbuf_output.per_byte", h.ringbuf_output.per_byte),
        ];
        for (name, m) in [
            ("helpers.map_lookup_elem", h.map_lookup_elem),
            ("helpers.map_update_elem", h.map_update_elem),
            ("helpers.map_delete_elem", h.map_delete_elem),
        ] {
            all.extend([
                (name, m.hash),
                (name, m.array),
                (name, m.percpu_hash),
                (name, m.percpu_array),
                (name, m.lru_hash),
            ]);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_the_hash() {
        let p = CostProfile::reference();
        let back = CostProfile::from_json(&p.to_json()).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.hash(), p.hash());
        assert!(p.hash().starts_with("sha256:") && p.hash().len() == 7 + 64);
    }

    /// The checked-in file is what `reference()` says, so either can be read.
    #[test]
    fn the_reference_file_matches_the_built_in_reference() {
        let file = include_str!("../../../profiles/reference.json");
        assert_eq!(CostProfile::from_json(file).unwrap(), CostProfile::reference());
    }

    /// Profiles written before the string-read helpers existed still load, with the
    /// reference costs, and keep their hash; a measured value is part of the hash.
    #[test]
    fn string_read_costs_default_and_only_count_in_the_hash_when_set() {
        let p = CostProfile::reference();
        let json = p.to_json();
        assert!(!json.contains("probe_read_user_str"), "{json}");
        let back = CostProfile::from_json(&json).unwrap();
        assert_eq!(back.helpers.probe_read_user_str, StrReadCost::reference_user());
        assert_eq!(back.helpers.probe_read_kernel_str, StrReadCost::reference_kernel());
        let mut measured = p.clone();
        measured.helpers.probe_read_user_str.per_byte = 0.25;
        assert_ne!(measured.hash(), p.hash());
        let reread = CostProfile::from_json(&measured.to_json()).unwrap();
        assert_eq!(reread.helpers.probe_read_user_str.per_byte, 0.25);
        assert_eq!(StrReadCost { base: 10.0, per_byte: 0.5 }.cost(64), 42.0);
    }

    /// Profiles written before the per-run cost existed load with 0 (they priced it into
    /// `branch`) and keep their hash; a measured per-run cost is part of the hash.
    #[test]
    fn per_run_cost_defaults_to_zero_and_only_counts_in_the_hash_when_set() {
        let p = CostProfile::reference();
        let json = p.to_json();
        assert!(!json.contains("\"run\""), "{json}");
        assert_eq!(CostProfile::from_json(&json).unwrap().instructions.run, 0.0);
        let mut measured = p.clone();
        measured.instructions.run = 45.5;
        assert_ne!(measured.hash(), p.hash());
        let reread = CostProfile::from_json(&measured.to_json()).unwrap();
        assert_eq!(reread.instructions.run, 45.5);
        let mut negative = p.clone();
        negative.instructions.run = -1.0;
        let err = CostProfile::from_json(&negative.to_json()).unwrap_err();
        assert!(err.contains("instructions.run"), "{err}");
    }

    /// A perf-event run has its own price when the profile gives one, and the plain per-run
    /// price otherwise; other triggers and trigger-less runs always pay the plain one.
    #[test]
    fn perf_event_runs_pay_their_own_price_when_the_profile_has_one() {
        let mut p = CostProfile::reference();
        p.instructions.run = 50.0;
        assert!(!p.to_json().contains("run_perf_event"));
        assert_eq!(p.run(Some(TriggerKind::PerfEvent)), 50.0);
        let plain_hash = p.hash();
        p.instructions.run_perf_event = Some(80.0);
        assert_ne!(p.hash(), plain_hash);
        let reread = CostProfile::from_json(&p.to_json()).unwrap();
        assert_eq!(reread.run(Some(TriggerKind::PerfEvent)), 80.0);
        for kind in [TriggerKind::Tracepoint, TriggerKind::Uprobe, TriggerKind::Uretprobe, TriggerKind::RawTracepoint] {
            assert_eq!(reread.run(Some(kind)), 50.0, "{kind:?}");
        }
        assert_eq!(reread.run(None), 50.0);
        p.instructions.run_perf_event = Some(-1.0);
        let err = CostProfile::from_json(&p.to_json()).unwrap_err();
        assert!(err.contains("run_perf_event"), "{err}");
    }

    #[test]
    fn any_change_changes_the_hash() {
        let p = CostProfile::reference();
        let mut q = p.clone();
        q.helpers.map_lookup_elem.hash += 1.0;
        assert_ne!(p.hash(), q.hash());
    }

    #[test]
    fn rejects_bad_versions_negative_costs_and_unknown_fields() {
        let p = CostProfile::reference();
        let json = p.to_json();
        let bumped = json.replacen("\"version\": 1", "\"version\": 7", 1);
        assert!(CostProfile::from_json(&bumped).unwrap_err().contains("version 7"));
        let mut negative = p.clone();
        negative.instructions.alu = -1.0;
        let err = CostProfile::from_json(&negative.to_json()).unwrap_err();
        assert!(err.contains("instructions.alu"), "{err}");
        let extra = json.replacen("\"version\": 1", "\"version\": 1, \"bogus\": 2", 1);
        assert!(CostProfile::from_json(&extra).unwrap_err().contains("bogus"));
    }
}
