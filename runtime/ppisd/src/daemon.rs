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
use ppis_manifest::Attach;
use ppis_runtime::{enable_run_time_stats, ProgramStats, RunTimeStats, Session};
use serde_json::json;

use crate::activation::{self, Activator, DormantSpec, SentinelSource, SentinelTotals};
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
    /// Its `emit`/`print` records, when it sends any.
    events: Option<ppis_runtime::events::EventStream>,
    /// Records its full ring buffer refused, as last reported.
    events_lost: u64,
}

/// The loaded bundles as the activator reads its sentinels.
struct LoadedSentinels<'a>(&'a BTreeMap<PathBuf, Loaded>);

impl LoadedSentinels<'_> {
    fn bundle(&self, name: &str) -> Option<&Loaded> {
        self.0.values().find(|loaded| loaded.name == name)
    }
}

impl SentinelSource for LoadedSentinels<'_> {
    fn map_kind(&self, bundle: &str, map: &str) -> Option<Option<ppis_manifest::MapKind>> {
        let loaded = self.bundle(bundle)?;
        Some(loaded.session.manifest().map(map).map(|info| info.kind.clone()))
    }

    fn read(&self, bundle: &str, map: &str) -> Result<SentinelTotals, String> {
        let loaded = self.bundle(bundle).ok_or_else(|| format!("bundle {bundle} is not loaded"))?;
        let info = loaded.session.manifest().map(map).ok_or_else(|| format!("bundle {bundle} has no map {map}"))?;
        if let (ppis_manifest::MapKind::Avg, ppis_manifest::ValueLayout::SumCount { signed }) =
            (&info.kind, &info.value)
        {
            let entries = loaded.session.read_raw_map(map).map_err(|error| error.to_string())?;
            return Ok(activation::avg_totals(entries.into_iter().flat_map(|entry| entry.values), *signed));
        }
        let maps = loaded.session.read_maps().map_err(|error| error.to_string())?;
        let (_, value) = maps.iter().find(|(name, _)| name == map).ok_or_else(|| format!("map {map} was not read"))?;
        activation::totals(&info.kind, value).ok_or_else(|| format!("map {bundle}::{map} is not a usable sentinel"))
    }
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
    /// Decides when dormant probes are attached.
    activator: Activator,
    /// The activator's clock starts here.
    started: Instant,
    /// The activator's clock at `started`: seconds since the UTC midnight before it, so the
    /// engine's seasonal buckets (`t mod 1 day`) are hours of the day.
    activator_clock_at_start: f64,
    /// `event_log` of the config, open for appending.
    event_log: Option<crate::events::EventLog>,
}

/// Seconds since the UTC midnight before `at` (0 for a time before 1970).
pub fn seconds_into_utc_day(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64().rem_euclid(86_400.0))
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
        let activator = Activator::new(config.activator.clone(), &config.feeds)?;
        let event_log = config.event_log.as_deref().map(crate::events::EventLog::open).transpose()?;
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
            activator,
            started: Instant::now(),
            activator_clock_at_start: seconds_into_utc_day(SystemTime::now()),
            event_log,
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
        self.activate(now)?;
        self.forward_events();
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
        let (mut session, failures) = match Session::start_with_dormant(&bundle.object, &bundle.manifest) {
            Ok(started) => started,
            Err(error) => return self.refuse(path, fingerprint, Some(&sha256), &format!("cannot load: {error}")),
        };
        let manifest = bundle.manifest.clone();
        let failed_line = |line: u32| {
            failures
                .iter()
                .any(|error| matches!(error, ppis_runtime::RuntimeError::Probe { line: at, .. } if *at == line))
        };
        // A dormant probe that loaded counts as running: the activator attaches it later.
        let dormant_ok = |index: usize| {
            manifest.probes.get(index).is_some_and(|info| {
                info.activation.as_ref().is_some_and(|rule| activation::rule_problem(rule).is_none())
                    && !failed_line(info.line)
            })
        };
        // `begin` ran in the start and `end` runs at unload: neither is ever attached.
        let running = |index: usize| session.is_attached(index) || dormant_ok(index) || session.runs_once(index);
        if !(0..session.probe_count()).any(running) {
            let reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
            drop(session);
            let reason = format!("no probe could be attached: {}", reasons.join("; "));
            return self.refuse(path, fingerprint, Some(&sha256), &reason);
        }
        let now = Instant::now();
        let mut probes = Vec::new();
        for (index, info) in manifest.probes.iter().enumerate() {
            let checked = report.probes.iter().find(|p| p.program == info.program);
            let failed = (!running(index)).then(|| {
                // The manifest is signed but was written by a compiler: its rule is re-checked.
                if let Some(problem) = info.activation.as_ref().and_then(activation::rule_problem) {
                    return problem;
                }
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
        for (index, probe) in probes.iter().enumerate() {
            let rule = manifest.probes.get(index).and_then(|info| info.activation.as_ref());
            if let (None, Some(rule)) = (&probe.failed, rule) {
                let checked = report.probes.iter().find(|p| p.program == probe.program);
                let overhead_percent = checked.map_or(manifest.budget_percent, |p| {
                    let per_event_ns = p.bytecode_bound_ns.max(p.certified_bound_ns);
                    let rate = p.rate_per_sec.unwrap_or(probe.limits.rate_per_sec);
                    if rate == 0 {
                        manifest.budget_percent
                    } else {
                        per_event_ns * rate as f64 / (f64::from(self.cpus) * 1e9) * 100.0
                    }
                });
                log(format!(
                    "{name}: probe {} is dormant until anomaly({}) > {} for {}s",
                    probe.program, rule.signal, rule.threshold, rule.for_seconds
                ));
                self.audit.append(
                    "probe_dormant",
                    json!({"bundle": name, "probe": probe.program, "attach": probe.attach, "signal": rule.signal,
                           "threshold": rule.threshold, "for_seconds": rule.for_seconds,
                           "overhead_percent": overhead_percent}),
                )?;
                self.activator.add(DormantSpec {
                    bundle: name.clone(),
                    program: probe.program.clone(),
                    attach: probe.attach.clone(),
                    signal: rule.signal.clone(),
                    threshold: rule.threshold,
                    for_seconds: rule.for_seconds,
                    overhead_percent,
                });
                continue;
            }
            let attach = manifest.probes.get(index).map(|info| &info.attach);
            match &probe.failed {
                // `end` is recorded when it runs, at unload.
                None if attach == Some(&Attach::End) => {}
                None if attach == Some(&Attach::Begin) => self
                    .audit
                    .append("probe_ran", json!({"bundle": name, "probe": probe.program, "attach": probe.attach}))?,
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
        let events = session.take_events().unwrap_or_else(|error| {
            log(format!("{name}: its events will not be forwarded: {error}"));
            None
        });
        self.loaded.insert(
            path.to_path_buf(),
            Loaded { fingerprint, name, sha256, session, probes, loaded_at, events, events_lost: 0 },
        );
        Ok(())
    }

    fn unload(&mut self, path: &Path, reason: &str) -> Result<(), String> {
        let Some(loaded) = self.loaded.get_mut(path) else { return Ok(()) };
        let attached: Vec<String> = (0..loaded.session.probe_count())
            .filter(|index| loaded.session.is_attached(*index))
            .map(|index| loaded.probes[index].program.clone())
            .collect();
        let ends: Vec<String> = (0..loaded.session.probe_count())
            .filter(|index| loaded.session.manifest().probes[*index].attach == Attach::End)
            .map(|index| loaded.probes[index].program.clone())
            .collect();
        // Detaches every probe, then runs each `end` once (DTrace's END), on the maps as the
        // others left them.
        let ended = loaded.session.finish();
        if loaded.events.is_some() {
            // Its last events (`end`'s among them), before its ring buffer goes away with it.
            self.forward_events();
        }
        let Some(loaded) = self.loaded.remove(path) else { return Ok(()) };
        self.activator.remove_bundle(&loaded.name);
        // Dropping the session unloads programs and maps.
        drop(loaded.session);
        for probe in &attached {
            self.audit.append("probe_detached", json!({"bundle": loaded.name, "probe": probe, "reason": reason}))?;
        }
        match ended {
            Ok(()) => {
                for probe in &ends {
                    self.audit.append("probe_ran", json!({"bundle": loaded.name, "probe": probe, "attach": "end"}))?;
                }
            }
            Err(error) => {
                log(format!("{}: end probes did not run: {error}", loaded.name));
                self.audit.append(
                    "probe_run_failed",
                    json!({"bundle": loaded.name, "probes": ends, "attach": "end", "reason": error.to_string()}),
                )?;
            }
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
                // A dormant probe the activator has released since the trip stays detached: the
                // breaker closes, and the activator attaches it when the evidence says so.
                if self.activator.manages(&loaded.name, &probe.program)
                    && !self.activator.wants_attached(&loaded.name, &probe.program)
                {
                    probe.breaker.rearm(now);
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
            if loaded.events.is_some() {
                state.events_lost.insert(loaded.name.clone(), loaded.events_lost);
            }
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
        let engine_metrics = self.activator.metrics();
        let explained = self.activator.explain(|bundle, program| self.is_attached(bundle, program));
        for probe in &explained {
            if let Some(numbers) = engine_metrics.get(&activation::probe_key(&probe.bundle, &probe.program)) {
                state.activations.push(metrics::ActivationMetrics {
                    bundle: probe.bundle.clone(),
                    probe: probe.program.clone(),
                    probability: numbers.activation_probability,
                    activations_total: numbers.activations_total,
                    deactivations_total: numbers.deactivations_total,
                });
            }
        }
        state.explain = json!({ "dormant_probes": explained, "feeds": self.activator.feed_evidence() });
        *self.metrics.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = state.clone();
        state
    }

    /// Whether `bundle`'s probe `program` is attached now.
    fn is_attached(&self, bundle: &str, program: &str) -> bool {
        self.loaded.values().filter(|loaded| loaded.name == bundle).any(|loaded| {
            loaded
                .probes
                .iter()
                .position(|probe| probe.program == program)
                .is_some_and(|i| loaded.session.is_attached(i))
        })
    }

    /// One activator tick: sentinels and feeds are read, and dormant probes attached or
    /// detached as the engine decides, under what the always-on probes leave of the host cap.
    fn activate(&mut self, now: Instant) -> Result<(), String> {
        if !self.activator.has_work() {
            return Ok(());
        }
        let mut always_on_percent = 0.0;
        for loaded in self.loaded.values() {
            for (index, probe) in loaded.probes.iter().enumerate() {
                if loaded.session.is_attached(index) && !self.activator.manages(&loaded.name, &probe.program) {
                    always_on_percent += probe.overhead_ratio * 100.0;
                }
            }
        }
        let cap_left = (self.config.host_overhead_cap_percent - always_on_percent).max(0.0);
        // Monotonic from the start, phased to the time of day.
        let t = self.activator_clock_at_start + now.duration_since(self.started).as_secs_f64();
        let report = self.activator.tick(t, &LoadedSentinels(&self.loaded), cap_left);
        for line in report.logs {
            log(line);
        }
        for (event, details) in report.audit {
            self.audit.append(event, details)?;
        }
        for command in report.commands {
            let found = self.loaded.values_mut().find(|loaded| loaded.name == command.bundle).and_then(|loaded| {
                let index = loaded.probes.iter().position(|probe| probe.program == command.program)?;
                Some((loaded, index))
            });
            let Some((loaded, index)) = found else { continue };
            let result = if command.attach { loaded.session.attach(index) } else { loaded.session.detach(index) };
            let probe = &mut loaded.probes[index];
            probe.last = if command.attach { loaded.session.stats(index).ok().map(|stats| (stats, now)) } else { None };
            let mut evidence = activation::audit_evidence(&command);
            log(format!("{}", command.explanation)
                .lines()
                .next()
                .map_or(String::new(), |line| format!("{}: {line}", command.bundle)));
            match (result, command.attach) {
                (Ok(()), true) => {
                    self.audit.append("probe_activated", evidence)?;
                    self.audit.append(
                        "probe_attached",
                        json!({"bundle": command.bundle, "probe": command.program, "attach": probe.attach}),
                    )?;
                }
                (Ok(()), false) => {
                    self.audit.append("probe_deactivated", evidence)?;
                    self.audit.append(
                        "probe_detached",
                        json!({"bundle": command.bundle, "probe": command.program, "reason": "activator released it"}),
                    )?;
                }
                (Err(error), _) => {
                    log(format!("{}: probe {}: {error}", command.bundle, command.program));
                    evidence["error"] = json!(error.to_string());
                    let event = if command.attach { "probe_activation_failed" } else { "probe_deactivation_failed" };
                    self.audit.append(event, evidence)?;
                }
            }
        }
        Ok(())
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

    /// Hands probe events to the OTLP logs export (a no-op without `[otlp]`): what `emit` and
    /// `print` sent (`forward_events`); `false` when they were dropped.
    pub fn export_events(&self, events: Vec<ProbeEvent>) -> bool {
        self.otlp.as_ref().is_none_or(|otlp| otlp.exporter.export_events(events))
    }

    /// Drains every bundle's ring buffer into the event log and the OTLP logs export, and
    /// logs records lost to a full buffer since the last interval.
    fn forward_events(&mut self) {
        let now = SystemTime::now();
        let exporting = self.otlp.is_some();
        let mut lines = Vec::new();
        let mut exported = Vec::new();
        for loaded in self.loaded.values_mut() {
            let Some(stream) = loaded.events.as_mut() else { continue };
            let name = &loaded.name;
            stream.drain(&mut |event| match event {
                Ok(event) => {
                    lines.push(crate::events::log_line(name, &event));
                    if exporting {
                        exported.push(crate::events::probe_event(name, &event, now));
                    }
                }
                Err(problem) => log(format!("{name}: {problem}")),
            });
            match stream.dropped() {
                Ok(lost) if lost > loaded.events_lost => {
                    log(format!("{name}: {} events lost: its ring buffer was full", lost - loaded.events_lost));
                    loaded.events_lost = lost;
                }
                Ok(_) => {}
                Err(error) => log(format!("{name}: {error}")),
            }
        }
        if let (Some(event_log), false) = (self.event_log.as_mut(), lines.is_empty()) {
            if let Err(error) = event_log.append(&lines) {
                log(format!("cannot write the event log: {error}"));
            }
        }
        if !exported.is_empty() && !self.export_events(exported) {
            log("OTLP export queue full: events dropped");
        }
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::seconds_into_utc_day;

    #[test]
    fn the_activator_clock_is_phased_to_the_utc_time_of_day() {
        let day = 86_400;
        // 2026-11-24T05:30:00Z is 20 781 days and 5.5 hours after the epoch.
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(20_781 * day + 5 * 3600 + 1800);
        assert_eq!(seconds_into_utc_day(at), 5.5 * 3600.0);
        assert_eq!(seconds_into_utc_day(SystemTime::UNIX_EPOCH + Duration::from_secs(3 * day)), 0.0);
        assert_eq!(seconds_into_utc_day(SystemTime::UNIX_EPOCH - Duration::from_secs(5)), 0.0);
    }
}
