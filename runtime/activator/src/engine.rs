//! The decision engine the daemon calls every tick: signals are observed, each dormant probe's
//! P(anomaly | evidence) is the chance that any of its signals is anomalous, and the gates plus
//! host-cap arbitration turn posteriors into attach / detach / stay decisions with reasons.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::policy::{Gate, GateTiming, Reason, ScoreReading, Want};
use crate::priors::{IncidentHistory, PriorsError};
use crate::signal::{ModelConfig, Observation, ObserveError, SignalEvidence, SignalKind, SignalModel, SignalPrior};

#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    pub model: ModelConfig,
    /// Prior for signals without an entry in `signal_priors`.
    pub default_prior: SignalPrior,
    pub signal_priors: BTreeMap<String, SignalPrior>,
    /// Release threshold = attach threshold − hysteresis.
    pub hysteresis: f64,
    /// After the maximum active time, a probe re-arms when the episode ends or after this long.
    pub rearm_s: f64,
    /// An attached probe keeps its place under the host cap unless a newcomer's value per cost
    /// is this many times better (avoids churn between near-equal probes).
    pub preempt_margin: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            model: ModelConfig::default(),
            default_prior: SignalPrior::default(),
            signal_priors: BTreeMap::new(),
            hysteresis: 0.25,
            rearm_s: 1800.0,
            preempt_margin: 1.5,
        }
    }
}

impl EngineConfig {
    /// Use priors derived from a file of past incidents (see `priors.rs` for the format).
    pub fn with_incident_history(mut self, history_json: &str) -> Result<EngineConfig, PriorsError> {
        self.signal_priors = IncidentHistory::parse(history_json)?.priors(self.default_prior);
        Ok(self)
    }
}

/// A verified, loaded, not-yet-attached probe.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DormantProbe {
    pub signals: Vec<String>,
    /// Attach when P(anomaly) ≥ threshold (0.85 by default in the language).
    pub threshold: f64,
    /// The language's `for Ns`: how long the posterior must hold above the threshold.
    pub sustain_s: f64,
    pub dwell_s: f64,
    pub max_active_s: f64,
    /// Certified CPU overhead while attached, percent.
    pub overhead_percent: f64,
    /// Diagnostic value of having the probe attached during an anomaly, in the same unit as
    /// the overhead (overhead-percent it is worth). Expected value = P(anomaly) × value_weight.
    pub value_weight: f64,
}

impl DormantProbe {
    pub fn new(signals: Vec<String>, overhead_percent: f64) -> DormantProbe {
        DormantProbe {
            signals,
            threshold: 0.85,
            sustain_s: 0.0,
            dwell_s: 60.0,
            max_active_s: 1200.0,
            overhead_percent,
            value_weight: 100.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("signal `{0}` is already registered")]
    DuplicateSignal(String),
    #[error("probe `{0}` is already registered")]
    DuplicateProbe(String),
    #[error("probe `{probe}` watches unknown signal `{signal}`")]
    UnknownSignal { probe: String, signal: String },
    #[error("probe `{probe}`: {problem}")]
    BadProbe { probe: String, problem: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Action {
    Attach,
    Detach,
    Stay,
}

/// One probe's decision for one tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub probe: String,
    pub action: Action,
    /// State after the action.
    pub attached: bool,
    pub posterior: f64,
    pub explanation: Explanation,
}

/// Everything needed to answer "why is this probe on (or off)?".
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Explanation {
    pub probe: String,
    pub t: f64,
    pub posterior: f64,
    /// Resting P(anomaly) implied by the priors (what the posterior is without evidence).
    pub prior: f64,
    pub threshold: f64,
    pub release_threshold: f64,
    pub action: Action,
    pub attached: bool,
    pub reason: Reason,
    pub expected_value: f64,
    pub overhead_percent: f64,
    /// Per signal, most anomalous first.
    pub evidence: Vec<SignalEvidence>,
}

/// Numbers the daemon exports as metrics (`ppis_activation_probability{probe}` and the
/// activation / deactivation counters).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeMetrics {
    pub probe: String,
    pub activation_probability: f64,
    pub attached: bool,
    pub activations_total: u64,
    pub deactivations_total: u64,
    pub active_seconds_total: f64,
    /// Active seconds × certified overhead fraction: CPU-seconds spent on the probe.
    pub overhead_cpu_seconds_total: f64,
}

struct ProbeState {
    spec: DormantProbe,
    gate: Gate,
    posterior: f64,
    explanation: Option<Explanation>,
}

pub struct Engine {
    config: EngineConfig,
    signals: BTreeMap<String, SignalModel>,
    probes: BTreeMap<String, ProbeState>,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine { config, signals: BTreeMap::new(), probes: BTreeMap::new() }
    }

    pub fn add_signal(&mut self, name: impl Into<String>, kind: SignalKind) -> Result<(), EngineError> {
        let name = name.into();
        if self.signals.contains_key(&name) {
            return Err(EngineError::DuplicateSignal(name));
        }
        let prior = self.config.signal_priors.get(&name).copied().unwrap_or(self.config.default_prior);
        let model = SignalModel::new(name.clone(), kind, prior, &self.config.model);
        self.signals.insert(name, model);
        Ok(())
    }

    pub fn add_probe(&mut self, name: impl Into<String>, probe: DormantProbe) -> Result<(), EngineError> {
        let name = name.into();
        if self.probes.contains_key(&name) {
            return Err(EngineError::DuplicateProbe(name));
        }
        let bad = |problem: &str| EngineError::BadProbe { probe: name.clone(), problem: problem.to_string() };
        if probe.signals.is_empty() {
            return Err(bad("watches no signal"));
        }
        if let Some(signal) = probe.signals.iter().find(|signal| !self.signals.contains_key(*signal)) {
            return Err(EngineError::UnknownSignal { probe: name, signal: signal.clone() });
        }
        if !(probe.threshold > 0.0 && probe.threshold < 1.0) {
            return Err(bad("threshold must be strictly between 0 and 1"));
        }
        let non_negative =
            [probe.sustain_s, probe.dwell_s, probe.max_active_s, probe.overhead_percent, probe.value_weight];
        if non_negative.iter().any(|value| !(value.is_finite() && *value >= 0.0)) {
            return Err(bad("times, overhead and value weight must be finite and non-negative"));
        }
        self.probes.insert(name, ProbeState { spec: probe, gate: Gate::default(), posterior: 0.0, explanation: None });
        Ok(())
    }

    /// Forgets a probe (its bundle was unloaded); `false` when it was not registered.
    pub fn remove_probe(&mut self, name: &str) -> bool {
        self.probes.remove(name).is_some()
    }

    /// Forgets a signal and its learned baseline; refused (`false`) while a probe watches it.
    pub fn remove_signal(&mut self, name: &str) -> bool {
        if self.probes.values().any(|state| state.spec.signals.iter().any(|signal| signal == name)) {
            return false;
        }
        self.signals.remove(name).is_some()
    }

    /// Whether the probe is attached as far as the engine's decisions go (`false` if unknown).
    pub fn is_attached(&self, probe: &str) -> bool {
        self.probes.get(probe).is_some_and(|state| state.gate.attached)
    }

    /// Whether a signal of this name is registered.
    pub fn has_signal(&self, name: &str) -> bool {
        self.signals.contains_key(name)
    }

    /// Feed one window's observation of a signal. Times are seconds on any monotonic clock.
    pub fn observe(&mut self, t: f64, signal: &str, value: Observation) -> Result<(), ObserveError> {
        let model = self.signals.get_mut(signal).ok_or_else(|| ObserveError::UnknownSignal(signal.to_string()))?;
        model.observe(t, value, &self.config.model)
    }

    /// P(anomaly) of a probe: the chance that at least one of its signals is anomalous, treating
    /// the signals' filters as independent.
    fn probe_posterior(&self, spec: &DormantProbe) -> f64 {
        let all_normal: f64 = spec
            .signals
            .iter()
            .filter_map(|signal| self.signals.get(signal))
            .map(|model| 1.0 - model.posterior())
            .product();
        1.0 - all_normal
    }

    fn probe_prior(&self, spec: &DormantProbe) -> f64 {
        let all_normal: f64 = spec
            .signals
            .iter()
            .filter_map(|signal| self.signals.get(signal))
            .map(|model| 1.0 - model.prior().stationary_probability())
            .product();
        1.0 - all_normal
    }

    /// Decide every probe for time `t` under the host overhead cap (percent). Call once per tick.
    pub fn decide(&mut self, t: f64, host_cap_percent: f64) -> Vec<Decision> {
        let cap = if host_cap_percent.is_finite() { host_cap_percent.max(0.0) } else { 0.0 };
        let names: Vec<String> = self.probes.keys().cloned().collect();
        let mut wants: BTreeMap<String, Want> = BTreeMap::new();
        for name in &names {
            let spec = self.probes[name].spec.clone();
            let posterior = self.probe_posterior(&spec);
            let expected_value = posterior * spec.value_weight;
            let reading = ScoreReading {
                above_attach: posterior >= spec.threshold,
                below_release: posterior < spec.threshold - self.config.hysteresis,
                worth_cost: expected_value >= spec.overhead_percent,
                expected_value,
                overhead_percent: spec.overhead_percent,
            };
            let timing = GateTiming {
                sustain_s: spec.sustain_s,
                dwell_s: spec.dwell_s,
                max_active_s: spec.max_active_s,
                rearm_s: self.config.rearm_s,
            };
            if let Some(state) = self.probes.get_mut(name) {
                state.posterior = posterior;
                wants.insert(name.clone(), state.gate.evaluate(t, reading, &timing));
            }
        }
        let wants = self.arbitrate(wants, cap);
        let mut decisions = Vec::with_capacity(names.len());
        for name in names {
            let Some(want) = wants.get(&name).cloned() else { continue };
            let (action, reason) = match want {
                Want::Attach(reason) => (Action::Attach, reason),
                Want::Detach(reason) => (Action::Detach, reason),
                Want::Stay(reason) => (Action::Stay, reason),
            };
            let mut evidence: Vec<SignalEvidence> = {
                let spec = &self.probes[&name].spec;
                spec.signals
                    .iter()
                    .filter_map(|s| self.signals.get(s))
                    .map(|m| m.evidence(&self.config.model))
                    .collect()
            };
            evidence.sort_by(|a, b| b.posterior.total_cmp(&a.posterior).then_with(|| a.signal.cmp(&b.signal)));
            let prior = self.probe_prior(&self.probes[&name].spec);
            let hysteresis = self.config.hysteresis;
            let Some(state) = self.probes.get_mut(&name) else { continue };
            let exhausted = matches!(reason, Reason::MaxActiveReached { .. });
            match action {
                Action::Attach => state.gate.commit(t, true, false),
                Action::Detach => state.gate.commit(t, false, exhausted),
                Action::Stay => {}
            }
            let explanation = Explanation {
                probe: name.clone(),
                t,
                posterior: state.posterior,
                prior,
                threshold: state.spec.threshold,
                release_threshold: state.spec.threshold - hysteresis,
                action,
                attached: state.gate.attached,
                reason,
                expected_value: state.posterior * state.spec.value_weight,
                overhead_percent: state.spec.overhead_percent,
                evidence,
            };
            state.explanation = Some(explanation.clone());
            decisions.push(Decision {
                probe: name,
                action,
                attached: state.gate.attached,
                posterior: state.posterior,
                explanation,
            });
        }
        decisions
    }

    /// Enforce the host cap: if the probes that would be attached after this tick exceed it, keep
    /// the best value per cost (P(anomaly) × value weight / overhead), attached ones favoured by the
    /// preemption margin, and turn the rest into denials or preemptions.
    fn arbitrate(&self, mut wants: BTreeMap<String, Want>, cap: f64) -> BTreeMap<String, Want> {
        let mut contenders: Vec<(String, f64, bool)> = Vec::new();
        for (name, want) in &wants {
            let state = &self.probes[name];
            let attached = state.gate.attached;
            let wants_on = matches!(want, Want::Attach(_)) || (attached && !matches!(want, Want::Detach(_)));
            if !wants_on {
                continue;
            }
            let cost = state.spec.overhead_percent;
            let value = state.posterior * state.spec.value_weight;
            let value_per_cost = if cost > 0.0 { value / cost } else { f64::INFINITY };
            let key = if attached { value_per_cost * self.config.preempt_margin } else { value_per_cost };
            contenders.push((name.clone(), key, attached));
        }
        let total: f64 = contenders.iter().map(|(name, _, _)| self.probes[name].spec.overhead_percent).sum();
        if total <= cap + 1e-12 {
            return wants;
        }
        contenders.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.2.cmp(&a.2)).then_with(|| a.0.cmp(&b.0)));
        let mut used = 0.0;
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for (name, _, attached) in contenders {
            let cost = self.probes[&name].spec.overhead_percent;
            if used + cost <= cap + 1e-12 {
                used += cost;
                winners.push(name);
            } else {
                losers.push((name, attached));
            }
        }
        for (name, attached) in losers {
            let want = if attached {
                Want::Detach(Reason::Preempted { by: winners.clone(), cap_percent: cap })
            } else {
                let needed_percent = self.probes[&name].spec.overhead_percent;
                Want::Stay(Reason::HostCapDenied {
                    cap_percent: cap,
                    needed_percent,
                    used_percent: used,
                    winners: winners.clone(),
                })
            };
            wants.insert(name, want);
        }
        wants
    }

    /// The explanation of the probe's latest decision (None before the first `decide` or for an
    /// unknown probe).
    pub fn explain(&self, probe: &str) -> Option<Explanation> {
        self.probes.get(probe).and_then(|state| state.explanation.clone())
    }

    pub fn activation_probability(&self, probe: &str) -> Option<f64> {
        self.probes.get(probe).map(|state| self.probe_posterior(&state.spec))
    }

    /// Per-signal evidence right now (for dashboards and the daemon's `explain` command).
    pub fn signal_evidence(&self, signal: &str) -> Option<SignalEvidence> {
        self.signals.get(signal).map(|model| model.evidence(&self.config.model))
    }

    pub fn metrics(&self) -> Vec<ProbeMetrics> {
        self.probes
            .iter()
            .map(|(name, state)| ProbeMetrics {
                probe: name.clone(),
                activation_probability: self.probe_posterior(&state.spec),
                attached: state.gate.attached,
                activations_total: state.gate.activations,
                deactivations_total: state.gate.deactivations,
                active_seconds_total: state.gate.active_seconds,
                overhead_cpu_seconds_total: state.gate.active_seconds * state.spec.overhead_percent / 100.0,
            })
            .collect()
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Attach => "ATTACH",
            Action::Detach => "DETACH",
            Action::Stay => "STAY",
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::BelowThreshold => write!(f, "posterior below the attach threshold"),
            Reason::Sustaining { since, sustain_s } => {
                write!(f, "above threshold since t={since:.0}s, must hold {sustain_s:.0}s")
            }
            Reason::ThresholdCrossed { held_s } if *held_s <= 0.0 => {
                write!(f, "posterior crossed the attach threshold")
            }
            Reason::ThresholdCrossed { held_s } => write!(f, "posterior held above threshold for {held_s:.0}s"),
            Reason::EvidenceHolds => write!(f, "evidence still supports the anomaly"),
            Reason::Releasing { since, dwell_s } => {
                write!(f, "below release threshold since t={since:.0}s, detaching after {dwell_s:.0}s")
            }
            Reason::Released { below_s } => write!(f, "below release threshold for {below_s:.0}s"),
            Reason::OffDwell { until } => write!(f, "recently detached, stays off until t={until:.0}s"),
            Reason::MaxActiveReached { active_s } => write!(f, "maximum active time reached ({active_s:.0}s)"),
            Reason::Exhausted { until } => {
                write!(f, "resting after maximum active time until the episode ends or t={until:.0}s")
            }
            Reason::ValueBelowCost { expected_value, overhead_percent } => {
                write!(f, "expected value {expected_value:.2} does not cover certified overhead {overhead_percent:.2}%")
            }
            Reason::HostCapDenied { cap_percent, needed_percent, used_percent, winners } => write!(
                f,
                "needs {needed_percent:.2}% but {used_percent:.2}% of the {cap_percent:.2}% host cap is taken by \
                 better value per cost: {}",
                winners.join(", ")
            ),
            Reason::Preempted { by, cap_percent } => {
                write!(f, "preempted under host cap {cap_percent:.2}% by better value per cost: {}", by.join(", "))
            }
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "t={:.0}s probe {}: {} ({}) — P(anomaly)={:.3} (prior {:.4}, attach ≥ {:.2}, release < {:.2}); \
             expected value {:.1} vs overhead {:.2}%; {}",
            self.t,
            self.probe,
            self.action,
            if self.attached { "attached" } else { "detached" },
            self.posterior,
            self.prior,
            self.threshold,
            self.release_threshold,
            self.expected_value,
            self.overhead_percent,
            self.reason
        )?;
        for evidence in &self.evidence {
            write!(f, "\n  {}: P={:.3}", evidence.signal, evidence.posterior)?;
            if evidence.warming_up {
                write!(f, " (warming up)")?;
            }
            if let (Some(value), Some(expected)) = (evidence.last_value, evidence.expected) {
                write!(f, ", last {value:.4} vs expected {expected:.4}")?;
            }
            write!(
                f,
                ", log LR of last {:+.2}, log-odds moved {:+.2} over the evidence window, P(change point in window)={:.2}",
                evidence.last_log_likelihood_ratio, evidence.log_odds_change, evidence.change_probability
            )?;
            if let Some(at) = evidence.regime_accepted_at {
                write!(f, ", new normal accepted at t={at:.0}s")?;
            }
        }
        Ok(())
    }
}
