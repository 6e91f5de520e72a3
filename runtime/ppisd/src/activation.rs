//! Dormant probes under the Bayesian activator (`docs/activator.md`): every tick each
//! sentinel aggregation is read, its change since the last tick becomes one observation (the
//! p99 of a histogram's new values, the mean of an `avg`'s, the rate of a `count`/`sum`), the
//! KPI feeds add theirs, and the engine's decisions become attach/detach commands the daemon
//! carries out, each with its evidence for the audit log.
//!
//! Boundary: no syscalls here. Maps are read through [`SentinelSource`] (the daemon's loaded
//! sessions, or a fake in tests); attaching is the daemon's job.

use std::collections::BTreeMap;

use ppis_activator::{Action, DormantProbe, Engine, EngineConfig, Explanation, Observation, SignalKind};
use ppis_manifest::MapKind;
use ppis_runtime::{Bucket, MapValue, Value};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use crate::config::ActivatorConfig;
use crate::feeds::{Feed, FeedConfig};

/// Cumulative contents of a sentinel map, merged over its keys.
#[derive(Clone, Debug, PartialEq)]
pub enum SentinelTotals {
    /// `hist`/`lhist`: every bucket's count since load.
    Buckets(Vec<Bucket>),
    /// `count`/`sum`: the total since load.
    Total(f64),
    /// `avg`: the sum and the count of the recorded values since load.
    SumCount { sum: f64, count: f64 },
}

/// The engine's model for a sentinel of this kind, or `None` when the kind gives no
/// per-window signal (the load-time re-check of what the compiler checked).
pub fn sentinel_kind(kind: &MapKind) -> Option<SignalKind> {
    match kind {
        MapKind::Hist | MapKind::Lhist { .. } => Some(SignalKind::LatencyQuantile),
        MapKind::Avg | MapKind::Count | MapKind::Sum => Some(SignalKind::Kpi { higher_is_bad: true }),
        _ => None,
    }
}

fn number(value: &Value) -> f64 {
    match value {
        Value::Uint(number) => *number as f64,
        Value::Int(number) => *number as f64,
        Value::Bool(flag) => f64::from(u8::from(*flag)),
        Value::Stats { avg, .. } => number(avg),
        // Strings and stacks are keys, never aggregated values.
        _ => 0.0,
    }
}

/// Adds `more` into `into` bucket by bucket (keyed histograms share one bucket layout).
fn add_buckets(into: &mut Vec<Bucket>, more: &[Bucket]) {
    if into.is_empty() {
        *into = more.to_vec();
        return;
    }
    for (total, bucket) in into.iter_mut().zip(more) {
        total.count = total.count.saturating_add(bucket.count);
    }
}

/// Totals of a decoded `count`, `sum` or histogram map, merged over keys. `avg` needs its
/// sum and count, which the decoded value (their ratio) lost: see [`avg_totals`].
pub fn totals(kind: &MapKind, value: &MapValue) -> Option<SentinelTotals> {
    match (kind, value) {
        (MapKind::Hist | MapKind::Lhist { .. }, MapValue::Hist(buckets)) => {
            Some(SentinelTotals::Buckets(buckets.clone()))
        }
        (MapKind::Hist | MapKind::Lhist { .. }, MapValue::KeyedHist(entries)) => {
            let mut merged = Vec::new();
            for (_, buckets) in entries {
                add_buckets(&mut merged, buckets);
            }
            Some(SentinelTotals::Buckets(merged))
        }
        (MapKind::Count | MapKind::Sum, MapValue::Scalar(value)) => {
            Some(SentinelTotals::Total(value.as_ref().map_or(0.0, number)))
        }
        (MapKind::Count | MapKind::Sum, MapValue::Keyed(entries)) => {
            Some(SentinelTotals::Total(entries.iter().map(|(_, value)| number(value)).sum()))
        }
        _ => None,
    }
}

/// An `avg` map's totals from its raw elements: each CPU's chunk holds the sum at byte 0 and
/// the count at byte 8 (`ValueLayout::SumCount`), over every key.
pub fn avg_totals(chunks: impl IntoIterator<Item = Vec<u8>>, signed: bool) -> SentinelTotals {
    let (mut sum, mut count) = (0.0, 0.0);
    for chunk in chunks {
        let word = |at: usize| chunk.get(at..at + 8).and_then(|bytes| bytes.try_into().ok()).map(u64::from_ne_bytes);
        if let (Some(raw_sum), Some(raw_count)) = (word(0), word(8)) {
            sum += if signed { raw_sum as i64 as f64 } else { raw_sum as f64 };
            count += raw_count as f64;
        }
    }
    SentinelTotals::SumCount { sum, count }
}

/// The value at quantile `q` of the values counted in `buckets`, interpolating linearly
/// inside the bucket it falls in; `None` when the buckets are empty. Unbounded ends use the
/// bounded one.
pub fn bucket_quantile(buckets: &[Bucket], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().map(|bucket| bucket.count).sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0.0;
    for bucket in buckets {
        let count = bucket.count as f64;
        if bucket.count > 0 && below + count >= rank {
            let fraction = ((rank - below) / count).clamp(0.0, 1.0);
            return Some(match (bucket.lo, bucket.hi) {
                (Some(lo), Some(hi)) => lo as f64 + fraction * (hi - lo) as f64,
                (Some(lo), None) => lo as f64,
                (None, Some(hi)) => hi as f64,
                (None, None) => 0.0,
            });
        }
        below += count;
    }
    None
}

/// Smallest latency observation: a quantile in the `[0, 1)` bucket (or below) would have no
/// logarithm, and the model works on log-latency.
const LATENCY_FLOOR: f64 = 0.5;

/// The observation of one window: the change from `previous` to `current` over `elapsed_s`
/// seconds. `None` when the window recorded nothing (a histogram or average without new
/// values says nothing about latency) or the two readings do not match. A total that went
/// down (the map was recreated) counts from zero.
pub fn window_observation(
    previous: &SentinelTotals,
    current: &SentinelTotals,
    elapsed_s: f64,
    quantile: f64,
) -> Option<f64> {
    match (previous, current) {
        (SentinelTotals::Buckets(before), SentinelTotals::Buckets(now)) => {
            let reset = before.len() != now.len() || before.iter().zip(now).any(|(b, n)| n.count < b.count);
            let delta: Vec<Bucket> = if reset {
                now.clone()
            } else {
                now.iter().zip(before).map(|(n, b)| Bucket { count: n.count - b.count, ..*n }).collect()
            };
            bucket_quantile(&delta, quantile).map(|value| value.max(LATENCY_FLOOR))
        }
        (SentinelTotals::Total(before), SentinelTotals::Total(now)) => {
            if !(elapsed_s > 0.0) {
                return None;
            }
            let delta = if now < before { *now } else { now - before };
            Some(delta / elapsed_s)
        }
        (
            SentinelTotals::SumCount { sum: sum_before, count: count_before },
            SentinelTotals::SumCount { sum, count },
        ) => {
            let (window_sum, window_count) =
                if count < count_before { (*sum, *count) } else { (sum - sum_before, count - count_before) };
            (window_count > 0.0).then(|| window_sum / window_count)
        }
        _ => None,
    }
}

/// Where sentinel maps are read from: the daemon's loaded bundles.
pub trait SentinelSource {
    /// `None` when no bundle of that name is loaded; `Some(None)` when it has no such map.
    fn map_kind(&self, bundle: &str, map: &str) -> Option<Option<MapKind>>;
    /// The map's cumulative totals now.
    fn read(&self, bundle: &str, map: &str) -> Result<SentinelTotals, String>;
}

/// A dormant probe as the manifest and the load-time check describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct DormantSpec {
    pub bundle: String,
    pub program: String,
    pub attach: String,
    /// The manifest's signal: `map` (same bundle) or `bundle::map`.
    pub signal: String,
    pub threshold: f64,
    pub for_seconds: f64,
    /// Certified CPU overhead while attached, percent of all CPUs.
    pub overhead_percent: f64,
}

impl DormantSpec {
    /// The sentinel's bundle and map.
    pub fn sentinel(&self) -> (String, String) {
        match self.signal.split_once("::") {
            Some((bundle, map)) => (bundle.to_string(), map.to_string()),
            None => (self.bundle.clone(), self.signal.clone()),
        }
    }

    /// The engine's name of the probe.
    pub fn key(&self) -> String {
        probe_key(&self.bundle, &self.program)
    }
}

/// Why a manifest's activation rule cannot be used, if it cannot: the load-time re-check of
/// what the compiler checked (threshold in (0, 1), positive duration, a sentinel name).
pub fn rule_problem(rule: &ppis_manifest::Activation) -> Option<String> {
    let name_ok =
        |name: &str| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let signal_ok = match rule.signal.split_once("::") {
        Some((bundle, map)) => name_ok(bundle) && name_ok(map),
        None => name_ok(&rule.signal),
    };
    if !signal_ok {
        Some(format!("activation signal `{}` is not `map` or `bundle::map`", rule.signal))
    } else if !(rule.threshold > 0.0 && rule.threshold < 1.0) {
        Some(format!("activation threshold {} is not strictly between 0 and 1", rule.threshold))
    } else if !(rule.for_seconds.is_finite() && rule.for_seconds > 0.0) {
        Some(format!("activation duration {}s is not positive", rule.for_seconds))
    } else {
        None
    }
}

/// `bundle/program`: how probes are named to the engine, in `/explain` and in audit entries.
pub fn probe_key(bundle: &str, program: &str) -> String {
    format!("{bundle}/{program}")
}

/// The engine's name of a sentinel signal.
fn sentinel_signal(bundle: &str, map: &str) -> String {
    format!("{bundle}::{map}")
}

/// Where a dormant probe stands with its sentinel.
#[derive(Clone, Debug, PartialEq)]
enum Registration {
    /// Registered with the engine.
    Active,
    /// The sentinel cannot be used yet (its bundle is not loaded); retried every tick.
    Waiting(String),
}

struct DormantState {
    spec: DormantSpec,
    registration: Registration,
    /// Feed signals the probe also watches.
    feeds: Vec<String>,
}

struct SentinelState {
    bundle: String,
    map: String,
    previous: Option<(SentinelTotals, f64)>,
    last_error: Option<String>,
}

/// What the daemon must do after a tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub bundle: String,
    pub program: String,
    pub attach: bool,
    pub explanation: Explanation,
}

/// Everything a tick produced besides commands: audit entries and log lines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TickReport {
    pub commands: Vec<Command>,
    pub audit: Vec<(&'static str, Json)>,
    pub logs: Vec<String>,
}

/// One dormant probe in `/explain`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeExplanation {
    pub bundle: String,
    pub program: String,
    pub attach: String,
    pub signal: String,
    pub threshold: f64,
    pub for_seconds: f64,
    pub overhead_percent: f64,
    /// Attached now (the daemon's view, after this tick's commands).
    pub attached: bool,
    /// Why the probe cannot be decided on yet (its sentinel bundle is missing).
    pub waiting: Option<String>,
    /// The engine's latest explanation (posterior, reason, evidence per signal).
    pub explanation: Option<Explanation>,
}

/// The activator as the daemon runs it.
pub struct Activator {
    engine: Engine,
    config: ActivatorConfig,
    probes: BTreeMap<String, DormantState>,
    sentinels: BTreeMap<String, SentinelState>,
    feeds: Vec<Feed>,
}

impl Activator {
    pub fn new(config: ActivatorConfig, feeds: &[FeedConfig]) -> Result<Activator, String> {
        let mut engine_config = EngineConfig::default();
        if let Some(path) = &config.incident_history {
            let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
            engine_config =
                engine_config.with_incident_history(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        }
        engine_config.model.warmup_observations = config.warmup_windows as f64;
        let mut engine = Engine::new(engine_config);
        let mut built = Vec::new();
        for feed in feeds {
            let feed = Feed::new(feed.clone());
            engine
                .add_signal(feed.signal(), SignalKind::Kpi { higher_is_bad: feed.config.higher_is_bad })
                .map_err(|error| format!("feed {}: {error}", feed.config.name))?;
            built.push(feed);
        }
        Ok(Activator { engine, config, probes: BTreeMap::new(), sentinels: BTreeMap::new(), feeds: built })
    }

    /// Whether a tick has anything to do: dormant probes to decide or feeds to read.
    pub fn has_work(&self) -> bool {
        !self.probes.is_empty() || !self.feeds.is_empty()
    }

    /// Whether `bundle`'s `program` is a dormant probe the activator manages.
    pub fn manages(&self, bundle: &str, program: &str) -> bool {
        self.probes.contains_key(&probe_key(bundle, program))
    }

    /// Whether the engine has `bundle`'s dormant `program` attached (its last decision).
    pub fn wants_attached(&self, bundle: &str, program: &str) -> bool {
        self.engine.is_attached(&probe_key(bundle, program))
    }

    /// Adds a dormant probe of a bundle being loaded. Its sentinel is resolved on the next
    /// tick (the sentinel's bundle may be loaded later).
    pub fn add(&mut self, spec: DormantSpec) {
        let feeds = self
            .feeds
            .iter()
            .filter(|feed| feed.config.applies_to(&spec.bundle, &spec.program))
            .map(Feed::signal)
            .collect();
        let waiting = Registration::Waiting("not resolved yet".to_string());
        self.probes.insert(spec.key(), DormantState { spec, registration: waiting, feeds });
    }

    /// Forgets every dormant probe of `bundle` (unloaded), and sentinels nobody watches.
    pub fn remove_bundle(&mut self, bundle: &str) {
        let gone: Vec<String> =
            self.probes.iter().filter(|(_, state)| state.spec.bundle == bundle).map(|(key, _)| key.clone()).collect();
        for key in gone {
            self.probes.remove(&key);
            self.engine.remove_probe(&key);
        }
        let unused: Vec<String> =
            self.sentinels.keys().filter(|signal| self.engine.remove_signal(signal)).cloned().collect();
        for signal in unused {
            self.sentinels.remove(&signal);
        }
        // Probes waiting on the unloaded bundle's sentinels re-resolve when it comes back.
        for state in self.probes.values_mut() {
            if state.spec.sentinel().0 == bundle {
                if state.registration == Registration::Active {
                    self.engine.remove_probe(&state.spec.key());
                }
                state.registration = Registration::Waiting(format!("bundle {bundle} was unloaded"));
            }
        }
    }

    /// Registers probes whose sentinel is now available; reports the ones that are not.
    fn resolve(&mut self, source: &dyn SentinelSource, report: &mut TickReport) {
        for state in self.probes.values_mut() {
            if state.registration == Registration::Active {
                continue;
            }
            let (bundle, map) = state.spec.sentinel();
            let problem = match source.map_kind(&bundle, &map) {
                None => Some(format!("sentinel bundle {bundle} is not loaded")),
                Some(None) => Some(format!("bundle {bundle} has no map {map}")),
                Some(Some(kind)) => match sentinel_kind(&kind) {
                    None => Some(format!("map {bundle}::{map} cannot be a sentinel (it gives no per-window signal)")),
                    Some(signal_kind) => {
                        let signal = sentinel_signal(&bundle, &map);
                        if !self.engine.has_signal(&signal) {
                            // Cannot fail: the name was checked to be new.
                            let _ = self.engine.add_signal(signal.clone(), signal_kind);
                            self.sentinels.insert(
                                signal.clone(),
                                SentinelState {
                                    bundle: bundle.clone(),
                                    map: map.clone(),
                                    previous: None,
                                    last_error: None,
                                },
                            );
                        }
                        let mut signals = vec![signal];
                        signals.extend(state.feeds.iter().cloned());
                        let probe = DormantProbe {
                            signals,
                            threshold: state.spec.threshold,
                            sustain_s: state.spec.for_seconds,
                            dwell_s: self.config.dwell_secs,
                            max_active_s: self.config.max_active_secs,
                            overhead_percent: state.spec.overhead_percent,
                            value_weight: self.config.value_weight,
                        };
                        match self.engine.add_probe(state.spec.key(), probe) {
                            Ok(()) => None,
                            Err(error) => Some(error.to_string()),
                        }
                    }
                },
            };
            let key = state.spec.key();
            match problem {
                None => {
                    report.logs.push(format!("{key}: dormant, watching sentinel {bundle}::{map}"));
                    report.audit.push((
                        "activation_sentinel_resolved",
                        json!({"bundle": state.spec.bundle, "probe": state.spec.program, "sentinel": format!("{bundle}::{map}")}),
                    ));
                    state.registration = Registration::Active;
                }
                Some(reason) => {
                    // Logged and audited once per distinct reason, not every tick.
                    if state.registration != Registration::Waiting(reason.clone()) {
                        report.logs.push(format!("{key}: dormant probe cannot be activated yet: {reason}"));
                        report.audit.push((
                            "activation_sentinel_missing",
                            json!({"bundle": state.spec.bundle, "probe": state.spec.program, "sentinel": state.spec.signal, "reason": reason}),
                        ));
                        state.registration = Registration::Waiting(reason);
                    }
                }
            }
        }
    }

    /// One tick at `t` seconds (monotonic): read sentinels and feeds, observe, decide under
    /// `cap_left_percent` (the host cap minus what always-on probes use).
    pub fn tick(&mut self, t: f64, source: &dyn SentinelSource, cap_left_percent: f64) -> TickReport {
        let mut report = TickReport::default();
        self.resolve(source, &mut report);
        for (signal, sentinel) in &mut self.sentinels {
            match source.read(&sentinel.bundle, &sentinel.map) {
                Ok(current) => {
                    sentinel.last_error = None;
                    if let Some((previous, at)) = &sentinel.previous {
                        if let Some(value) = window_observation(previous, &current, t - at, self.config.quantile) {
                            if let Err(error) = self.engine.observe(t, signal, Observation::Value(value)) {
                                report.logs.push(format!("sentinel {signal}: {error}"));
                            }
                        }
                    }
                    sentinel.previous = Some((current, t));
                }
                Err(error) => {
                    if sentinel.last_error.as_ref() != Some(&error) {
                        report.logs.push(format!("sentinel {signal}: cannot read: {error}"));
                    }
                    sentinel.last_error = Some(error);
                }
            }
        }
        for feed in &mut self.feeds {
            match feed.read() {
                Ok(Some(value)) => {
                    if let Err(error) = self.engine.observe(t, &feed.signal(), Observation::Value(value)) {
                        report.logs.push(format!("feed {}: {error}", feed.config.name));
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    if feed.last_error.as_ref() != Some(&error) {
                        report.logs.push(format!("feed {}: {error}", feed.config.name));
                    }
                    feed.last_error = Some(error);
                    continue;
                }
            }
            feed.last_error = None;
        }
        for decision in self.engine.decide(t, cap_left_percent) {
            let Some(state) = self.probes.get(&decision.probe) else { continue };
            let attach = match decision.action {
                Action::Attach => true,
                Action::Detach => false,
                Action::Stay => continue,
            };
            report.commands.push(Command {
                bundle: state.spec.bundle.clone(),
                program: state.spec.program.clone(),
                attach,
                explanation: decision.explanation,
            });
        }
        report
    }

    /// Per dormant probe: its rule, state and the engine's explanation. `attached` says
    /// whether the daemon has it attached.
    pub fn explain(&self, attached: impl Fn(&str, &str) -> bool) -> Vec<ProbeExplanation> {
        self.probes
            .values()
            .map(|state| ProbeExplanation {
                bundle: state.spec.bundle.clone(),
                program: state.spec.program.clone(),
                attach: state.spec.attach.clone(),
                signal: state.spec.signal.clone(),
                threshold: state.spec.threshold,
                for_seconds: state.spec.for_seconds,
                overhead_percent: state.spec.overhead_percent,
                attached: attached(&state.spec.bundle, &state.spec.program),
                waiting: match &state.registration {
                    Registration::Active => None,
                    Registration::Waiting(reason) => Some(reason.clone()),
                },
                explanation: self.engine.explain(&state.spec.key()),
            })
            .collect()
    }

    /// Each feed's evidence (its last value, what normal predicted, its P(anomaly)).
    pub fn feed_evidence(&self) -> Vec<ppis_activator::SignalEvidence> {
        self.feeds.iter().filter_map(|feed| self.engine.signal_evidence(&feed.signal())).collect()
    }

    /// The engine's counters per probe, keyed by `bundle/program`.
    pub fn metrics(&self) -> BTreeMap<String, ppis_activator::ProbeMetrics> {
        self.engine.metrics().into_iter().map(|metrics| (metrics.probe.clone(), metrics)).collect()
    }
}

/// The audit entry of an activation or deactivation: the decision and its evidence.
pub fn audit_evidence(command: &Command) -> Json {
    let explanation = &command.explanation;
    json!({
        "bundle": command.bundle,
        "probe": command.program,
        "posterior": explanation.posterior,
        "threshold": explanation.threshold,
        "release_threshold": explanation.release_threshold,
        "reason": explanation.reason.to_string(),
        "expected_value": explanation.expected_value,
        "overhead_percent": explanation.overhead_percent,
        "evidence": explanation.evidence,
    })
}

/// The human table of `ppisd explain`: one block per dormant probe.
pub fn render_table(probes: &[ProbeExplanation]) -> String {
    use std::fmt::Write;
    if probes.is_empty() {
        return "no dormant probes\n".to_string();
    }
    let mut out = String::new();
    let _ = writeln!(out, "{:<32} {:<8} {:>11} {:>9}  REASON", "PROBE", "STATE", "P(ANOMALY)", "THRESHOLD");
    for probe in probes {
        let name = probe_key(&probe.bundle, &probe.program);
        let state = if probe.attached { "attached" } else { "dormant" };
        match (&probe.explanation, &probe.waiting) {
            (_, Some(waiting)) => {
                let _ = writeln!(out, "{name:<32} {state:<8} {:>11} {:>9.2}  waiting: {waiting}", "-", probe.threshold);
            }
            (None, None) => {
                let _ = writeln!(out, "{name:<32} {state:<8} {:>11} {:>9.2}  no decision yet", "-", probe.threshold);
            }
            (Some(explanation), None) => {
                let _ = writeln!(
                    out,
                    "{name:<32} {state:<8} {:>11.4} {:>9.2}  {}",
                    explanation.posterior, probe.threshold, explanation.reason
                );
                for evidence in &explanation.evidence {
                    let value = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
                    let _ = writeln!(
                        out,
                        "    {}: P={:.4}, last {} vs expected {}, log LR {:+.2}, log-odds moved {:+.2}{}",
                        evidence.signal,
                        evidence.posterior,
                        value(evidence.last_value),
                        value(evidence.expected),
                        evidence.last_log_likelihood_ratio,
                        evidence.log_odds_change,
                        if evidence.warming_up { " (warming up)" } else { "" }
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(counts: &[(i128, i128, u64)]) -> SentinelTotals {
        SentinelTotals::Buckets(
            counts.iter().map(|&(lo, hi, count)| Bucket { lo: Some(lo), hi: Some(hi), count }).collect(),
        )
    }

    #[test]
    fn histogram_windows_use_only_the_new_values() {
        // 100 old values in [1000, 2000); the window adds 100 in [8000, 16000).
        let before = hist(&[(1000, 2000, 100), (8000, 16000, 0)]);
        let after = hist(&[(1000, 2000, 100), (8000, 16000, 100)]);
        let p99 = window_observation(&before, &after, 1.0, 0.99).unwrap();
        assert!((p99 - 15_920.0).abs() < 1e-6, "{p99}");
        // The cumulative p99 would have said ~15840; the window's median is in the new bucket too.
        let median = window_observation(&before, &after, 1.0, 0.5).unwrap();
        assert!((8000.0..16000.0).contains(&median), "{median}");
        // No new values: no observation.
        assert_eq!(window_observation(&after, &after, 1.0, 0.99), None);
    }

    #[test]
    fn a_recreated_histogram_counts_from_zero_and_zero_values_are_floored() {
        let before = hist(&[(-8, 0, 50), (0, 1, 50), (1, 2, 50)]);
        let after = hist(&[(-8, 0, 10), (0, 1, 0), (1, 2, 0)]);
        // Counts went down: the window is the new map's 10 negative values, floored.
        assert_eq!(window_observation(&before, &after, 1.0, 0.99), Some(LATENCY_FLOOR));
        let after = hist(&[(-8, 0, 50), (0, 1, 60), (1, 2, 50)]);
        assert_eq!(window_observation(&before, &after, 1.0, 0.99), Some(0.99));
    }

    #[test]
    fn counts_become_rates_and_averages_window_means() {
        let rate = window_observation(&SentinelTotals::Total(100.0), &SentinelTotals::Total(350.0), 2.5, 0.99);
        assert_eq!(rate, Some(100.0));
        assert_eq!(window_observation(&SentinelTotals::Total(5.0), &SentinelTotals::Total(5.0), 0.0, 0.99), None);
        let before = SentinelTotals::SumCount { sum: 1000.0, count: 10.0 };
        let after = SentinelTotals::SumCount { sum: 1600.0, count: 12.0 };
        assert_eq!(window_observation(&before, &after, 1.0, 0.99), Some(300.0));
        assert_eq!(window_observation(&after, &after, 1.0, 0.99), None);
    }

    #[test]
    fn decoded_maps_merge_over_keys() {
        let buckets =
            |n: u64| vec![Bucket { lo: Some(0), hi: Some(1), count: n }, Bucket { lo: Some(1), hi: Some(2), count: 1 }];
        let keyed = MapValue::KeyedHist(vec![(vec![Value::Uint(1)], buckets(2)), (vec![Value::Uint(2)], buckets(3))]);
        assert_eq!(
            totals(&MapKind::Hist, &keyed),
            Some(SentinelTotals::Buckets(vec![
                Bucket { lo: Some(0), hi: Some(1), count: 5 },
                Bucket { lo: Some(1), hi: Some(2), count: 2 }
            ]))
        );
        let counts =
            MapValue::Keyed(vec![(vec![Value::Uint(1)], Value::Uint(4)), (vec![Value::Uint(2)], Value::Uint(6))]);
        assert_eq!(totals(&MapKind::Count, &counts), Some(SentinelTotals::Total(10.0)));
        assert_eq!(totals(&MapKind::Count, &MapValue::Scalar(None)), Some(SentinelTotals::Total(0.0)));
        assert_eq!(totals(&MapKind::Max, &MapValue::Scalar(None)), None);
        assert_eq!(sentinel_kind(&MapKind::Max), None);
        assert_eq!(sentinel_kind(&MapKind::Hist), Some(SignalKind::LatencyQuantile));
    }

    #[test]
    fn avg_totals_read_sum_and_count_of_every_cpu() {
        let chunk = |sum: i64, count: u64| [sum.to_ne_bytes(), count.to_ne_bytes()].concat();
        assert_eq!(
            avg_totals([chunk(-30, 2), chunk(10, 2)], true),
            SentinelTotals::SumCount { sum: -20.0, count: 4.0 }
        );
        assert_eq!(avg_totals([vec![1, 2, 3]], false), SentinelTotals::SumCount { sum: 0.0, count: 0.0 });
    }

    #[test]
    fn manifest_rules_are_rechecked() {
        let rule = |signal: &str, threshold: f64, for_seconds: f64| ppis_manifest::Activation {
            signal: signal.into(),
            threshold,
            for_seconds,
        };
        assert_eq!(rule_problem(&rule("latency", 0.85, 10.0)), None);
        assert_eq!(rule_problem(&rule("front::requests", 0.5, 1.0)), None);
        assert!(rule_problem(&rule("latency", 1.0, 10.0)).unwrap().contains("threshold 1"));
        assert!(rule_problem(&rule("latency", f64::NAN, 10.0)).is_some());
        assert!(rule_problem(&rule("latency", 0.9, 0.0)).unwrap().contains("duration"));
        assert!(rule_problem(&rule("a::b::c", 0.9, 1.0)).is_some());
        assert!(rule_problem(&rule("", 0.9, 1.0)).is_some());
    }

    #[test]
    fn quantiles_interpolate_and_handle_open_ends() {
        let buckets = [
            Bucket { lo: None, hi: Some(0), count: 0 },
            Bucket { lo: Some(0), hi: Some(10), count: 50 },
            Bucket { lo: Some(10), hi: None, count: 50 },
        ];
        assert_eq!(bucket_quantile(&buckets, 0.25), Some(5.0));
        assert_eq!(bucket_quantile(&buckets, 0.99), Some(10.0));
        assert_eq!(bucket_quantile(&[], 0.5), None);
    }

    /// A fake bundle `app` with a `latency` histogram the test moves.
    struct FakeSource {
        loaded: bool,
        totals: std::cell::RefCell<Vec<u64>>,
    }

    impl SentinelSource for FakeSource {
        fn map_kind(&self, bundle: &str, map: &str) -> Option<Option<MapKind>> {
            (self.loaded && bundle == "app").then(|| (map == "latency").then_some(MapKind::Hist))
        }
        fn read(&self, _: &str, _: &str) -> Result<SentinelTotals, String> {
            let counts = self.totals.borrow();
            Ok(SentinelTotals::Buckets(
                counts
                    .iter()
                    .enumerate()
                    .map(|(i, count)| Bucket { lo: Some(1 << i), hi: Some(2 << i), count: *count })
                    .collect(),
            ))
        }
    }

    fn config() -> ActivatorConfig {
        ActivatorConfig { dwell_secs: 3.0, warmup_windows: 10, ..ActivatorConfig::default() }
    }

    #[test]
    fn a_slow_window_streak_attaches_and_recovery_detaches() {
        let mut activator = Activator::new(config(), &[]).unwrap();
        activator.add(DormantSpec {
            bundle: "deep".into(),
            program: "probe0".into(),
            attach: "uprobe:/bin/app:work".into(),
            signal: "app::latency".into(),
            threshold: 0.85,
            for_seconds: 2.0,
            overhead_percent: 0.5,
        });
        let source = FakeSource { loaded: false, totals: std::cell::RefCell::new(vec![0; 20]) };
        let first = activator.tick(0.0, &source, 2.0);
        assert_eq!(first.audit[0].0, "activation_sentinel_missing");
        assert_eq!(activator.tick(1.0, &source, 2.0).audit, vec![], "reported once");
        let source = FakeSource { loaded: true, ..source };
        let mut events = Vec::new();
        for second in 2..120u32 {
            // ~1-2 ms normally (bucket 10 = [1024, 2048)), ~16-32 ms from 60 s to 80 s.
            let slow = (60..80).contains(&second);
            let bucket = if slow { 14 } else { 10 + (second % 2) as usize };
            source.totals.borrow_mut()[bucket] += 100;
            let report = activator.tick(second as f64, &source, 2.0);
            for command in report.commands {
                events.push((second, command.attach));
            }
        }
        assert_eq!(events.len(), 2, "{events:?}");
        let (attached_at, detached_at) = (events[0].0, events[1].0);
        assert!(events[0].1 && !events[1].1);
        assert!((61..=70).contains(&attached_at), "attached at {attached_at}");
        assert!((80..=90).contains(&detached_at), "detached at {detached_at}");
        let explained = activator.explain(|_, _| false);
        assert_eq!(explained.len(), 1);
        assert!(explained[0].explanation.is_some());
        assert!(render_table(&explained).contains("deep/probe0"));
    }
}
