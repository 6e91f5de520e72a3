//! The daemon loop: every poll interval, pick up added, changed and removed bundles (each one
//! verified: signature and hashes, then the load-time PCC check, then the kernel), measure
//! every attached probe and trip breakers, re-arm those whose back-off passed, and publish
//! metrics. On stop, everything is detached and unloaded.
//!
//! Invariant: every accept, refuse, attach, detach and trip is in the audit log before the
//! next one happens; a refused bundle leaves nothing loaded.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ppis_bundle::pcc::{self, HostPolicy, PccReport};
use ppis_bundle::{load_bundle_file, read_bundle, sha256_hex, TrustList};
use ppis_manifest::profile::CostProfile;
use ppis_runtime::{enable_run_time_stats, ProgramStats, RunTimeStats, Session};
use serde_json::json;

use crate::audit::AuditLog;
use crate::breaker::{check_limits, host_cap_victims, measure, Breaker, Limits, TripReason};
use crate::config::Config;
use crate::metrics::{self, MapMetrics, MetricsState, ProbeMetrics, SharedState};
use crate::otlp::{Origin, OtlpExporter, ProbeEvent};

/// The cost profile shipped with ppis, used when the config names none.
pub const SHIPPED_PROFILE: &str = include_str!("../../../profiles/default.json");

/// How often the wait between intervals looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// One line on stderr: the daemon's log (the audit log is the record).
pub fn log(message: impl std::fmt::Display) {
    eprintln!("ppisd: {message}");
}

/// Size and modification time: a changed file is re-verified, an unchanged one is not.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
}

impl Fingerprint {
    fn of(path: &Path) -> Option<Fingerprint> {
        let metadata = std::fs::metadata(path).ok()?;
        metadata.is_file().then(|| Fingerprint { len: metadata.len(), modified: metadata.modified().ok() })
    }
}

/// One probe of a loaded bundle.
struct ProbeRun {
    program: String,
    attach: String,
    limits: Limits,
    trigger_ns: f64,
    breaker: Breaker,
    /// The last reading and when it was taken, while attached.
    last: Option<(ProgramStats, Instant)>,
    events_total: u64,
    overhead_ratio: f64,
    tripped_total: u64,
    /// Why the probe never attached; such a probe is not retried.
    failed: Option<String>,
}

/// A bundle that passed every check and runs.
struct Loaded {
    fingerprint: Fingerprint,
    name: String,
    sha256: String,
    session: Session,
    probes: Vec<ProbeRun>,
    /// Its counters count from here (the start time of OTLP cumulative points).
    loaded_at: SystemTime,
}

/// OTLP export, when configured.
struct OtlpExport {
    exporter: OtlpExporter,
    interval: Duration,
    last: Option<Instant>,
}

/// The running daemon.
pub struct Daemon {
    config: Config,
    trust: TrustList,
    profile: CostProfile,
    cpus: u32,
    audit: AuditLog,
    loaded: BTreeMap<PathBuf, Loaded>,
    refused: BTreeMap<PathBuf, Fingerprint>,
    metrics: SharedState,
    otlp: Option<OtlpExport>,
    /// Keeps the kernel counting program run time for as long as the daemon lives.
    _stats: RunTimeStats,
}

/// Online CPUs: the overhead of a probe is a share of all of them.
pub fn online_cpus() -> u32 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(online).ok().filter(|n| *n > 0).unwrap_or(1)
}

/// The union of the trust lists in `files`.
pub fn load_trust(files: &[PathBuf]) -> Result<TrustList, String> {
    let mut trust = TrustList::new();
    for file in files {
        let text = std::fs::read(file).map_err(|error| format!("{}: {error}", file.display()))?;
        let keys = TrustList::parse(&text).map_err(|error| format!("{}: {error}", file.display()))?;
        for key in keys.keys() {
            trust.add(*key);
        }
    }
    Ok(trust)
}

/// The profile the config names, or the shipped one.
pub fn load_profile(config: &Config) -> Result<CostProfile, String> {
    match &config.cost_profile {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
            CostProfile::from_json(&text).map_err(|error| format!("{}: {error}", path.display()))
        }
        None => CostProfile::from_json(SHIPPED_PROFILE),
    }
}

/// Reads, verifies and PCC-checks one bundle file without loading anything.
pub fn check_file(
    path: &Path,
    trust: &TrustList,
    policy: &HostPolicy,
) -> Result<(ppis_bundle::Bundle, PccReport, String), String> {
    let bytes = load_bundle_file(path).map_err(|error| error.to_string())?;
    let sha256 = sha256_hex(&bytes);
    let bundle = read_bundle(&bytes, trust).map_err(|error| error.to_string())?;
    let report = pcc::check_bundle(&bundle, policy).map_err(|error| format!("proof check failed: {error}"))?;
    Ok((bundle, report, sha256))
}

impl Daemon {
    /// Everything that can fail before the loop starts: keys, profile, statistics, audit log,
    /// metrics socket.
    pub fn start(config: Config) -> Result<Daemon, String> {
        let trust = load_trust(&config.trusted_keys)?;
        let profile = load_profile(&config)?;
        let stats = enable_run_time_stats().map_err(|error| error.to_string())?;
        let (mut audit, broken) = AuditLog::open(&config.audit_log)?;
        if let Some(error) = broken {
            log(format!("audit log chain is broken: {error}"));
            audit.append("audit_chain_broken", json!({"reason": error.to_string()}))?;
        }
        let listener = TcpListener::bind(config.metrics_listen)
            .map_err(|error| format!("cannot listen on {} for metrics: {error}", config.metrics_listen))?;
        let metrics: SharedState = Arc::new(Mutex::new(MetricsState::default()));
        metrics::serve(listener, Arc::clone(&metrics));
        let cpus = online_cpus();
        let otlp = match &config.otlp {
            Some(otlp) => Some(OtlpExport {
                exporter: OtlpExporter::start(otlp.clone(), Origin::this_process())?,
                interval: otlp.export_interval,
                last: None,
            }),
            None => None,
        };
        audit.append(
            "daemon_started",
            json!({
                "pid": std::process::id(),
                "bundle_dir": config.bundle_dir,
                "trusted_keys": trust.keys().iter().map(|k| k.id().to_string()).collect::<Vec<_>>(),
                "cost_profile": profile.hash(),
                "cpus": cpus,
                "host_overhead_cap_percent": config.host_overhead_cap_percent,
                "otlp_endpoint": config.otlp.as_ref().map(|otlp| otlp.endpoint.to_string()),
            }),
        )?;
        log(format!(
            "started: {} trusted key(s), bundles in {}, metrics on http://{}/metrics, {cpus} CPUs",
            trust.keys().len(),
            config.bundle_dir.display(),
            config.metrics_listen
        ));
        if let Some(otlp) = &config.otlp {
            log(format!("exporting OTLP to {} every {:?}", otlp.endpoint, otlp.export_interval));
        }
        Ok(Daemon {
            config,
            trust,
            profile,
            cpus,
            audit,
            loaded: BTreeMap::new(),
            refused: BTreeMap::new(),
            metrics,
            otlp,
            _stats: stats,
        })
    }

    /// Runs intervals until `stop` is set, then unloads everything.
    pub fn run(mut self, stop: &AtomicBool) -> Result<(), String> {
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            self.tick()?;
            while !stop.load(Ordering::SeqCst) && started.elapsed() < self.config.poll_interval {
                std::thread::sleep(STOP_CHECK.min(self.config.poll_interval));
            }
        }
        self.shutdown()
    }

    /// One interval: directory, measurements, re-arming, metrics.
    pub fn tick(&mut self) -> Result<(), String> {
        self.scan()?;
        let now = Instant::now();
        self.measure(now)?;
        self.enforce_host_cap(now)?;
        self.rearm_due(now)?;
        let state = self.publish();
        self.export_otlp(state, now, false);
        Ok(())
    }

    fn policy(&self) -> HostPolicy<'_> {
        HostPolicy { profile: &self.profile, cpus: self.cpus, require_profile_match: self.config.require_profile_match }
    }

    fn scan(&mut self) -> Result<(), String> {
        let mut present = BTreeMap::new();
        match std::fs::read_dir(&self.config.bundle_dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.extension().is_some_and(|ext| ext == "ppb") {
                        if let Some(fingerprint) = Fingerprint::of(&path) {
                            present.insert(path, fingerprint);
                        }
                    }
                }
            }
            // A missing directory is an empty one: bundles may be deployed later.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(format!("{}: {error}", self.config.bundle_dir.display())),
        }
        let gone: Vec<PathBuf> = self.loaded.keys().filter(|path| !present.contains_key(*path)).cloned().collect();
        for path in gone {
            self.unload(&path, "bundle file removed")?;
        }
        self.refused.retain(|path, _| present.contains_key(path));
        for (path, fingerprint) in present {
            if self.loaded.get(&path).is_some_and(|loaded| loaded.fingerprint == fingerprint)
                || self.refused.get(&path) == Some(&fingerprint)
            {
                continue;
            }
            if self.loaded.contains_key(&path) {
                self.unload(&path, "bundle file changed")?;
            }
            self.refused.remove(&path);
            self.load(&path, fingerprint)?;
        }
        Ok(())
    }

    fn refuse(
        &mut self,
        path: &Path,
        fingerprint: Fingerprint,
        sha256: Option<&str>,
        reason: &str,
    ) -> Result<(), String> {
        log(format!("refused {}: {reason}", path.display()));
        self.refused.insert(path.to_path_buf(), fingerprint);
        self.audit.append("bundle_refused", json!({"file": path, "sha256": sha256, "reason": reason}))
    }

    fn load(&mut self, path: &Path, fingerprint: Fingerprint) -> Result<(), String> {
        let (bundle, report, sha256) = match check_file(path, &self.trust, &self.policy()) {
            Ok(checked) => checked,
            Err(reason) => {
                let sha256 = std::fs::read(path).ok().map(|bytes| sha256_hex(&bytes));
                return self.refuse(path, fingerprint, sha256.as_deref(), &reason);
            }
        };
        let name = bundle.header.name.clone();
        if let Some((other, _)) = self.loaded.iter().find(|(_, loaded)| loaded.name == name) {
            let reason = format!("a bundle named {name} is already loaded from {}", other.display());
            return self.refuse(path, fingerprint, Some(&sha256), &reason);
        }
        let (mut session, failures) = match Session::start(&bundle.object, &bundle.manifest) {
            Ok(started) => started,
            Err(error) => return self.refuse(path, fingerprint, Some(&sha256), &format!("cannot load: {error}")),
        };
        let manifest = bundle.manifest.clone();
        if (0..session.probe_count()).all(|index| !session.is_attached(index)) {
            let reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
            drop(session);
            let reason = format!("no probe could be attached: {}", reasons.join("; "));
            return self.refuse(path, fingerprint, Some(&sha256), &reason);
        }
        let now = Instant::now();
        let mut probes = Vec::new();
        for (index, info) in manifest.probes.iter().enumerate() {
            let checked = report.probes.iter().find(|p| p.program == info.program);
            let failed = (!session.is_attached(index)).then(|| {
                failures
                    .iter()
                    .find(|error| matches!(error, ppis_runtime::RuntimeError::Probe { line, .. } if *line == info.line))
                    .map_or_else(|| "not attached".to_string(), ToString::to_string)
            });
            let last = session.stats(index).ok().map(|stats| (stats, now));
            probes.push(ProbeRun {
                program: info.program.clone(),
                attach: info.attach.to_string(),
                limits: Limits {
                    rate_per_sec: info.rate_per_sec.unwrap_or(0),
                    budget_percent: manifest.budget_percent,
                    rate_tolerance_percent: self.config.rate_tolerance_percent,
                },
                trigger_ns: checked.map_or(0.0, |p| p.trigger_ns),
                breaker: Breaker::new(self.config.breaker_backoff, self.config.breaker_max_backoff, now),
                last,
                events_total: 0,
                overhead_ratio: 0.0,
                tripped_total: 0,
                failed,
            });
        }
        let attached = probes.iter().filter(|p| p.failed.is_none()).count();
        log(format!(
            "loaded {name} from {} ({attached} of {} probes attached, signed by {})",
            path.display(),
            probes.len(),
            bundle.signer.id()
        ));
        self.audit.append(
            "bundle_accepted",
            json!({
                "file": path,
                "bundle": name,
                "sha256": sha256,
                "signer": bundle.signer.id().to_string(),
                "probes": report.probes.iter().map(|p| json!({
                    "probe": p.program,
                    "bytecode_bound_ns": p.bytecode_bound_ns,
                    "certified_bound_ns": p.certified_bound_ns,
                    "allowed_ns": p.allowed_ns,
                    "rate_per_sec": p.rate_per_sec,
                })).collect::<Vec<_>>(),
            }),
        )?;
        for probe in &probes {
            match &probe.failed {
                None => self.audit.append(
                    "probe_attached",
                    json!({"bundle": name, "probe": probe.program, "attach": probe.attach}),
                )?,
                Some(reason) => {
                    log(format!("{name}: probe {} not attached: {reason}", probe.program));
                    self.audit.append(
                        "probe_attach_failed",
                        json!({"bundle": name, "probe": probe.program, "attach": probe.attach, "reason": reason}),
                    )?;
                }
            }
        }
        // Detached probes (failed ones) stay detached; make sure the session agrees.
        for (index, probe) in probes.iter().enumerate() {
            if probe.failed.is_some() {
                let _ = session.detach(index);
            }
        }
        let loaded_at = SystemTime::now();
        self.loaded.insert(path.to_path_buf(), Loaded { fingerprint, name, sha256, session, probes, loaded_at });
        Ok(())
    }

    fn unload(&mut self, path: &Path, reason: &str) -> Result<(), String> {
        let Some(loaded) = self.loaded.remove(path) else { return Ok(()) };
        let attached: Vec<String> = (0..loaded.session.probe_count())
            .filter(|index| loaded.session.is_attached(*index))
            .map(|index| loaded.probes[index].program.clone())
            .collect();
        // Dropping the session detaches every link and unloads programs and maps.
        drop(loaded.session);
        for probe in &attached {
            self.audit.append("probe_detached", json!({"bundle": loaded.name, "probe": probe, "reason": reason}))?;
        }
        log(format!("unloaded {} ({}): {reason}", loaded.name, path.display()));
        self.audit.append(
            "bundle_unloaded",
            json!({"file": path, "bundle": loaded.name, "sha256": loaded.sha256, "reason": reason}),
        )
    }

    fn measure(&mut self, now: Instant) -> Result<(), String> {
        let mut trips = Vec::new();
        for (path, loaded) in &mut self.loaded {
            for (index, probe) in loaded.probes.iter_mut().enumerate() {
                if !loaded.session.is_attached(index) {
                    probe.overhead_ratio = 0.0;
                    continue;
                }
                let stats = match loaded.session.stats(index) {
                    Ok(stats) => stats,
                    Err(error) => {
                        log(format!("{}: {error}", loaded.name));
                        continue;
                    }
                };
                probe.events_total = stats.run_count;
                if let Some((previous, when)) = &probe.last {
                    let delta = stats.since(previous);
                    let measured = measure(
                        delta.run_count,
                        delta.run_time_ns,
                        now.duration_since(*when),
                        probe.trigger_ns,
                        self.cpus,
                    );
                    probe.overhead_ratio = measured.overhead_ratio;
                    if let Some(reason) = check_limits(&measured, &probe.limits) {
                        trips.push((path.clone(), index, reason));
                    }
                }
                probe.last = Some((stats, now));
            }
        }
        for (path, index, reason) in trips {
            self.trip(&path, index, reason, now)?;
        }
        Ok(())
    }

    fn enforce_host_cap(&mut self, now: Instant) -> Result<(), String> {
        let mut attached = Vec::new();
        for (path, loaded) in &self.loaded {
            for (index, probe) in loaded.probes.iter().enumerate() {
                if loaded.session.is_attached(index) {
                    attached.push(((path.clone(), index), probe.overhead_ratio));
                }
            }
        }
        for ((path, index), reason) in host_cap_victims(&attached, self.config.host_overhead_cap_percent) {
            self.trip(&path, index, reason, now)?;
        }
        Ok(())
    }

    fn trip(&mut self, path: &Path, index: usize, reason: TripReason, now: Instant) -> Result<(), String> {
        let Some(loaded) = self.loaded.get_mut(path) else { return Ok(()) };
        let detached = loaded.session.detach(index);
        let probe = &mut loaded.probes[index];
        let backoff = probe.breaker.trip(now);
        probe.tripped_total += 1;
        probe.last = None;
        let (name, program) = (loaded.name.clone(), probe.program.clone());
        if let Err(error) = detached {
            log(format!("{name}: probe {program}: {error}"));
        }
        log(format!("{name}: breaker tripped for probe {program}: {reason}; re-arming in {}s", backoff.as_secs()));
        self.audit.append(
            "breaker_tripped",
            json!({
                "bundle": name,
                "probe": program,
                "kind": reason.kind(),
                "reason": reason.to_string(),
                "rearm_after_secs": backoff.as_secs(),
            }),
        )?;
        self.audit.append("probe_detached", json!({"bundle": name, "probe": program, "reason": "breaker tripped"}))
    }

    fn rearm_due(&mut self, now: Instant) -> Result<(), String> {
        let mut events = Vec::new();
        for loaded in self.loaded.values_mut() {
            for (index, probe) in loaded.probes.iter_mut().enumerate() {
                if probe.failed.is_some() || !probe.breaker.due(now) {
                    continue;
                }
                match loaded.session.attach(index) {
                    Ok(()) => {
                        probe.breaker.rearm(now);
                        probe.last = loaded.session.stats(index).ok().map(|stats| (stats, now));
                        events.push((loaded.name.clone(), probe.program.clone(), probe.attach.clone(), None));
                    }
                    Err(error) => {
                        probe.breaker.postpone(now);
                        events.push((
                            loaded.name.clone(),
                            probe.program.clone(),
                            probe.attach.clone(),
                            Some(error.to_string()),
                        ));
                    }
                }
            }
        }
        for (bundle, probe, attach, error) in events {
            match error {
                None => {
                    log(format!("{bundle}: breaker re-armed, probe {probe} attached again"));
                    self.audit.append("breaker_rearmed", json!({"bundle": bundle, "probe": probe}))?;
                    self.audit.append("probe_attached", json!({"bundle": bundle, "probe": probe, "attach": attach}))?;
                }
                Some(reason) => {
                    log(format!("{bundle}: probe {probe} could not be attached again: {reason}"));
                    self.audit
                        .append("probe_attach_failed", json!({"bundle": bundle, "probe": probe, "reason": reason}))?;
                }
            }
        }
        Ok(())
    }

    /// Builds this interval's metrics, hands them to `/metrics` and returns them.
    fn publish(&mut self) -> MetricsState {
        let mut state = MetricsState::default();
        for loaded in self.loaded.values() {
            state.loaded_at.insert(loaded.name.clone(), loaded.loaded_at);
            for (index, probe) in loaded.probes.iter().enumerate() {
                state.probes.push(ProbeMetrics {
                    bundle: loaded.name.clone(),
                    probe: probe.program.clone(),
                    overhead_ratio: probe.overhead_ratio,
                    events_total: probe.events_total,
                    active: loaded.session.is_attached(index),
                    tripped_total: probe.tripped_total,
                });
            }
            match loaded.session.read_maps() {
                Ok(maps) => {
                    for (name, value) in maps {
                        if let Some(info) = loaded.session.manifest().map(&name) {
                            state.maps.push(MapMetrics { bundle: loaded.name.clone(), info: info.clone(), value });
                        }
                    }
                }
                Err(error) => log(format!("{}: cannot read maps: {error}", loaded.name)),
            }
        }
        *self.metrics.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = state.clone();
        state
    }

    /// Queues `state` for OTLP when the export interval has passed (or `force`). The sender
    /// thread does the network part, so a slow collector cannot delay the next interval.
    fn export_otlp(&mut self, state: MetricsState, now: Instant, force: bool) {
        let Some(otlp) = &mut self.otlp else { return };
        if !force && otlp.last.is_some_and(|last| now.duration_since(last) < otlp.interval) {
            return;
        }
        otlp.last = Some(now);
        if !otlp.exporter.export_metrics(state, SystemTime::now()) {
            log("OTLP export skipped: the previous exports are still being sent");
        }
    }

    /// Hands probe events to the OTLP logs export (a no-op without `[otlp]`). For `emit`,
    /// once the language has it; `false` when they were dropped.
    pub fn export_events(&self, events: Vec<ProbeEvent>) -> bool {
        self.otlp.as_ref().is_none_or(|otlp| otlp.exporter.export_events(events))
    }

    fn shutdown(mut self) -> Result<(), String> {
        // The final totals, while the maps still exist; the exporter flushes when dropped.
        if self.otlp.is_some() {
            let state = self.publish();
            self.export_otlp(state, Instant::now(), true);
        }
        let paths: Vec<PathBuf> = self.loaded.keys().cloned().collect();
        for path in paths {
            self.unload(&path, "daemon stopping")?;
        }
        self.audit.append("daemon_stopped", json!({"pid": std::process::id()}))?;
        log("stopped: every probe detached");
        Ok(())
    }
}
