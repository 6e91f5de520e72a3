//! One watched signal: its model of normal, a two-state (normal / anomalous) Bayesian filter
//! that turns each observation's likelihood ratio into P(anomaly), a change-point detector over
//! the standardised residual, and the bookkeeping that makes every posterior explainable.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::baseline::{BaselineConfig, SeasonalBaseline};
use crate::bocpd::Bocpd;
use crate::conjugate::{BetaRate, Nig};
use crate::special::{ln_sum_exp, logit, sigmoid};

/// What a signal measures, which fixes its transform and its model of normal.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum SignalKind {
    /// A latency quantile per window (e.g. p99, seconds). Modelled on the log scale; higher is bad.
    LatencyQuantile,
    /// Errors out of requests per window. Modelled as Beta-Binomial; higher is bad.
    ErrorRatio,
    /// Any other key performance indicator, modelled on its own scale.
    Kpi { higher_is_bad: bool },
}

/// One observation of a signal for one window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Observation {
    Value(f64),
    Counts { errors: u64, total: u64 },
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ObserveError {
    #[error("unknown signal `{0}`")]
    UnknownSignal(String),
    #[error("signal `{signal}` is {kind:?} and cannot take {observation:?}")]
    WrongObservation { signal: String, kind: SignalKind, observation: Observation },
    #[error("signal `{signal}`: value {value} is not usable (must be finite{positive})")]
    BadValue { signal: String, value: f64, positive: &'static str },
    #[error("signal `{signal}`: {errors} errors out of {total} requests")]
    BadCounts { signal: String, errors: u64, total: u64 },
    #[error("signal `{signal}`: time {t} is before the previous observation at {previous}")]
    TimeWentBackwards { signal: String, t: f64, previous: f64 },
}

/// Prior belief about incidents on a signal: how often they start and how long they last.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalPrior {
    pub incidents_per_day: f64,
    pub mean_incident_s: f64,
}

impl Default for SignalPrior {
    fn default() -> Self {
        SignalPrior { incidents_per_day: 0.5, mean_incident_s: 600.0 }
    }
}

impl SignalPrior {
    /// Long-run fraction of time in an incident: the filter's resting posterior.
    pub fn stationary_probability(&self) -> f64 {
        let busy = self.incidents_per_day.max(0.0) * self.mean_incident_s.max(1.0) / 86_400.0;
        busy / (1.0 + busy)
    }
}

/// Knobs of the per-signal models (defaults are what `docs/activator.md` derives and the
/// simulator measures).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub baseline: BaselineConfig,
    /// Degrees-of-freedom cap of every predictive: one outlier cannot carry the posterior.
    pub robust_dof: f64,
    /// Observations learned before the filter is allowed to leave its prior.
    pub warmup_observations: f64,
    /// Anomalous hypotheses for latency: the quantile is this many times its normal value.
    pub latency_factors: Vec<f64>,
    /// Anomalous hypotheses for KPIs: shifted by this many predictive scales in the bad direction.
    pub kpi_shift_scales: Vec<f64>,
    /// Anomalous hypotheses for error ratios: this many times the normal ratio...
    pub error_ratio_factors: Vec<f64>,
    /// ...where the normal ratio is taken as at least this (tiny ratios are noise, not signal).
    pub error_ratio_floor: f64,
    /// Concentration cap of the error-ratio Beta (overdispersion between windows).
    pub error_ratio_max_concentration: f64,
    /// Change-point prior: expected segment length in observations, and truncation.
    pub changepoint_expected_run: f64,
    pub changepoint_max_run: usize,
    /// An anomaly that persists this long as one stable regime becomes the new normal.
    pub accept_regime_s: f64,
    /// Window over which "the evidence that moved it" is summed for explanations.
    pub evidence_window_s: f64,
    /// Bound on one observation's |log likelihood ratio| (keeps explanations readable; the
    /// filter saturates long before).
    pub max_log_likelihood_ratio: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            baseline: BaselineConfig::default(),
            robust_dof: 3.0,
            warmup_observations: 60.0,
            latency_factors: vec![1.5, 2.0, 3.0, 5.0],
            kpi_shift_scales: vec![3.0, 5.0, 8.0],
            error_ratio_factors: vec![2.0, 4.0, 10.0],
            error_ratio_floor: 0.001,
            error_ratio_max_concentration: 2000.0,
            changepoint_expected_run: 2000.0,
            changepoint_max_run: 120,
            accept_regime_s: 1800.0,
            evidence_window_s: 60.0,
            max_log_likelihood_ratio: 40.0,
        }
    }
}

enum NormalModel {
    Continuous(SeasonalBaseline),
    Ratio { rate: BetaRate, updated_at: Option<f64>, observations: f64 },
}

/// Why a signal's posterior is where it is, for explanations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalEvidence {
    pub signal: String,
    pub posterior: f64,
    /// Last observation in natural units (seconds, ratio, KPI units).
    pub last_value: Option<f64>,
    /// What the model of normal expected for it, in the same units.
    pub expected: Option<f64>,
    /// ln p(last | anomalous) − ln p(last | normal).
    pub last_log_likelihood_ratio: f64,
    /// How far the posterior's log-odds moved over the evidence window (what the evidence did).
    pub log_odds_change: f64,
    /// P(a change point within the evidence window), from the change-point detector.
    pub change_probability: f64,
    pub warming_up: bool,
    /// Time at which a persistent regime was last accepted as the new normal.
    pub regime_accepted_at: Option<f64>,
}

pub(crate) struct SignalModel {
    name: String,
    kind: SignalKind,
    prior: SignalPrior,
    normal: NormalModel,
    changepoints: Bocpd,
    posterior: f64,
    last_t: Option<f64>,
    last_value: Option<f64>,
    last_expected: Option<f64>,
    last_log_lr: f64,
    /// (time, log-odds after the observation) over the evidence window.
    recent_log_odds: VecDeque<(f64, f64)>,
    anomalous_since: Option<f64>,
    regime_accepted_at: Option<f64>,
    observations_in_window: f64,
}

struct Emission {
    ln_normal: f64,
    ln_anomalous: f64,
    /// Standardised residual against normal (for the change-point detector and robust weights).
    residual_z: f64,
    /// Residual scale in transformed units, to turn a standardised shift back into a level.
    residual_scale: f64,
    expected_natural: f64,
    component_ln_densities: Option<[f64; 2]>,
}

impl SignalModel {
    pub fn new(name: String, kind: SignalKind, prior: SignalPrior, config: &ModelConfig) -> SignalModel {
        let normal = match kind {
            SignalKind::ErrorRatio => NormalModel::Ratio {
                rate: BetaRate::new(0.5, 50.0, config.error_ratio_max_concentration),
                updated_at: None,
                observations: 0.0,
            },
            _ => NormalModel::Continuous(SeasonalBaseline::new(config.baseline.clone(), config.robust_dof)),
        };
        SignalModel {
            name,
            kind,
            prior,
            normal,
            changepoints: Self::fresh_changepoints(config),
            posterior: prior.stationary_probability(),
            last_t: None,
            last_value: None,
            last_expected: None,
            last_log_lr: 0.0,
            recent_log_odds: VecDeque::new(),
            anomalous_since: None,
            regime_accepted_at: None,
            observations_in_window: 1.0,
        }
    }

    fn fresh_changepoints(config: &ModelConfig) -> Bocpd {
        Bocpd::new(
            Nig::weak(0.0, 1.0, 2.0),
            config.changepoint_expected_run,
            config.changepoint_max_run,
            config.robust_dof,
        )
    }

    pub fn posterior(&self) -> f64 {
        self.posterior
    }

    pub fn prior(&self) -> SignalPrior {
        self.prior
    }

    fn warming_up(&self, config: &ModelConfig) -> bool {
        let learned = match &self.normal {
            NormalModel::Continuous(baseline) => baseline.effective_count(),
            NormalModel::Ratio { observations, .. } => *observations,
        };
        learned < config.warmup_observations
    }

    fn validate(&self, t: f64, observation: Observation) -> Result<(), ObserveError> {
        if let Some(previous) = self.last_t {
            // NaN `t` must fail too, hence not `t < previous`.
            if t.partial_cmp(&previous).is_none_or(|order| order.is_lt()) {
                return Err(ObserveError::TimeWentBackwards { signal: self.name.clone(), t, previous });
            }
        } else if !t.is_finite() {
            return Err(ObserveError::TimeWentBackwards { signal: self.name.clone(), t, previous: f64::NAN });
        }
        let wrong = || ObserveError::WrongObservation { signal: self.name.clone(), kind: self.kind, observation };
        match (self.kind, observation) {
            (SignalKind::ErrorRatio, Observation::Counts { errors, total }) => {
                if total == 0 || errors > total {
                    return Err(ObserveError::BadCounts { signal: self.name.clone(), errors, total });
                }
            }
            (SignalKind::LatencyQuantile, Observation::Value(value)) => {
                if !(value.is_finite() && value > 0.0) {
                    return Err(ObserveError::BadValue { signal: self.name.clone(), value, positive: " and > 0" });
                }
            }
            (SignalKind::Kpi { .. }, Observation::Value(value)) => {
                if !value.is_finite() {
                    return Err(ObserveError::BadValue { signal: self.name.clone(), value, positive: "" });
                }
            }
            _ => return Err(wrong()),
        }
        Ok(())
    }

    /// Transformed value where "up" is always bad.
    fn transform(&self, value: f64) -> f64 {
        match self.kind {
            SignalKind::LatencyQuantile => value.ln(),
            SignalKind::Kpi { higher_is_bad: true } => value,
            SignalKind::Kpi { higher_is_bad: false } => -value,
            SignalKind::ErrorRatio => value,
        }
    }

    fn untransform(&self, y: f64) -> f64 {
        match self.kind {
            SignalKind::LatencyQuantile => y.exp(),
            SignalKind::Kpi { higher_is_bad: false } => -y,
            _ => y,
        }
    }

    fn continuous_emission(&self, baseline: &SeasonalBaseline, t: f64, y: f64, config: &ModelConfig) -> Emission {
        let components = baseline.predictive(t);
        // ln weight + ln normaliser per component, computed once for all hypotheses.
        let ln_prefix = components.map(|c| c.weight.ln() + c.predictive.ln_normaliser());
        let shifted_density = |shift: f64| {
            let terms = [
                ln_prefix[0] + components[0].predictive.ln_kernel(y - shift),
                ln_prefix[1] + components[1].predictive.ln_kernel(y - shift),
            ];
            ln_sum_exp(&terms)
        };
        let ln_normal = shifted_density(0.0);
        let dominant = if components[0].weight >= components[1].weight { components[0] } else { components[1] };
        let shifts: Vec<f64> = match self.kind {
            SignalKind::LatencyQuantile => config.latency_factors.iter().map(|f| f.max(1.0 + 1e-6).ln()).collect(),
            _ => config.kpi_shift_scales.iter().map(|k| k * dominant.predictive.scale).collect(),
        };
        let ln_share = -(shifts.len().max(1) as f64).ln();
        let alternatives: Vec<f64> = shifts.iter().map(|shift| ln_share + shifted_density(*shift)).collect();
        let location: f64 = components.iter().map(|c| c.weight * c.predictive.location).sum();
        Emission {
            ln_normal,
            ln_anomalous: ln_sum_exp(&alternatives),
            residual_z: (y - dominant.predictive.location) / dominant.predictive.scale,
            residual_scale: dominant.predictive.scale,
            expected_natural: self.untransform(location),
            component_ln_densities: Some([
                ln_prefix[0] - components[0].weight.ln() + components[0].predictive.ln_kernel(y),
                ln_prefix[1] - components[1].weight.ln() + components[1].predictive.ln_kernel(y),
            ]),
        }
    }

    fn ratio_emission(rate: &BetaRate, errors: u64, total: u64, config: &ModelConfig) -> Emission {
        let normal_rate = rate.mean();
        let ln_normal = rate.predictive_ln_pmf(errors, total);
        let base = normal_rate.max(config.error_ratio_floor);
        let ln_share = -(config.error_ratio_factors.len().max(1) as f64).ln();
        let alternatives: Vec<f64> = config
            .error_ratio_factors
            .iter()
            .map(|factor| ln_share + rate.shifted_ln_pmf(errors, total, (factor * base).min(0.95)))
            .collect();
        let (a, b) = rate.posterior();
        let n = total as f64;
        // Beta-Binomial standard deviation of the observed ratio.
        let scale = (normal_rate * (1.0 - normal_rate) * (1.0 / n + 1.0 / (a + b + 1.0))).sqrt().max(1e-9);
        Emission {
            ln_normal,
            ln_anomalous: ln_sum_exp(&alternatives),
            residual_z: (errors as f64 / n - normal_rate) / scale,
            residual_scale: scale,
            expected_natural: normal_rate,
            component_ln_densities: None,
        }
    }

    pub fn observe(&mut self, t: f64, observation: Observation, config: &ModelConfig) -> Result<(), ObserveError> {
        self.validate(t, observation)?;
        let elapsed = self.last_t.map(|previous| t - previous).unwrap_or(0.0);
        self.last_t = Some(t);
        let warming_up = self.warming_up(config);
        let (natural_value, emission, y) = match (&self.normal, observation) {
            (NormalModel::Continuous(baseline), Observation::Value(value)) => {
                let y = self.transform(value);
                (value, self.continuous_emission(baseline, t, y, config), y)
            }
            (NormalModel::Ratio { rate, .. }, Observation::Counts { errors, total }) => {
                (errors as f64 / total as f64, Self::ratio_emission(rate, errors, total, config), 0.0)
            }
            _ => return Ok(()), // unreachable: validate() matched kind and observation
        };
        let limit = config.max_log_likelihood_ratio;
        let log_lr = (emission.ln_anomalous - emission.ln_normal).clamp(-limit, limit);
        self.last_value = Some(natural_value);
        self.last_expected = Some(emission.expected_natural);
        self.last_log_lr = if warming_up { 0.0 } else { log_lr };

        if warming_up {
            self.posterior = self.prior.stationary_probability();
        } else {
            // Two-state filter: predict with the incident start/end hazards, then weigh the evidence.
            let per_second_start = self.prior.incidents_per_day.max(0.0) / 86_400.0;
            let start = -(-per_second_start * elapsed).exp_m1();
            let end = -(-elapsed / self.prior.mean_incident_s.max(1.0)).exp_m1();
            let predicted = (self.posterior * (1.0 - end) + (1.0 - self.posterior) * start).clamp(1e-15, 1.0 - 1e-15);
            self.posterior = sigmoid(logit(predicted) + log_lr);
        }
        self.recent_log_odds.push_back((t, logit(self.posterior)));
        while self.recent_log_odds.front().is_some_and(|(at, _)| t - at > config.evidence_window_s) {
            self.recent_log_odds.pop_front();
        }
        self.observations_in_window = self.recent_log_odds.len().max(1) as f64;
        self.changepoints.observe(emission.residual_z);

        // Learn normal only from what looks normal; the Student-t scale-mixture weight
        // (ν+1)/(ν+z²) further discounts outliers, as in the EM fit of a t model.
        let nu = config.robust_dof;
        let robust_weight = (nu + 1.0) / (nu + emission.residual_z.powi(2));
        let learn_weight = if warming_up { robust_weight.max(0.2) } else { (1.0 - self.posterior) * robust_weight };
        match (&mut self.normal, observation) {
            (NormalModel::Continuous(baseline), _) => {
                baseline.learn(t, y, learn_weight, emission.component_ln_densities)
            }
            (NormalModel::Ratio { rate, updated_at, observations }, Observation::Counts { errors, total }) => {
                if let Some(previous) = *updated_at {
                    let half_life = config.baseline.recent_half_life_s;
                    rate.discount(0.5f64.powf((t - previous).max(0.0) / half_life));
                }
                *updated_at = Some(t);
                rate.observe(errors, total, learn_weight);
                *observations += learn_weight.min(1.0);
            }
            _ => {}
        }
        self.consider_new_regime(t, &emission, config);
        Ok(())
    }

    /// An anomaly that has lasted `accept_regime_s` as one stable segment (the change-point
    /// detector sees no newer change) is a new normal, not an incident: move the baseline to the
    /// segment's level and let the filter fall back to its prior.
    fn consider_new_regime(&mut self, t: f64, emission: &Emission, config: &ModelConfig) {
        if self.posterior < 0.5 {
            self.anomalous_since = None;
            return;
        }
        let since = *self.anomalous_since.get_or_insert(t);
        if t - since < config.accept_regime_s {
            return;
        }
        let Some((run_length, _)) = self.changepoints.map_run_length() else { return };
        let stable_observations = (config.changepoint_max_run / 2).max(2);
        if run_length < stable_observations {
            return;
        }
        let Some(segment) = self.changepoints.segment_stats(run_length) else { return };
        let shift = segment.mean * emission.residual_scale;
        match &mut self.normal {
            NormalModel::Continuous(baseline) => baseline.shift(shift),
            NormalModel::Ratio { rate, .. } => {
                let new_rate = (rate.mean() + shift).clamp(1e-6, 0.95);
                let concentration = 200.0;
                *rate =
                    BetaRate::new(new_rate * concentration, (1.0 - new_rate) * concentration, rate.max_concentration);
            }
        }
        self.changepoints = Self::fresh_changepoints(config);
        self.posterior = self.prior.stationary_probability();
        self.anomalous_since = None;
        self.regime_accepted_at = Some(t);
    }

    pub fn evidence(&self, config: &ModelConfig) -> SignalEvidence {
        let window_observations = self.observations_in_window.round() as usize;
        SignalEvidence {
            signal: self.name.clone(),
            posterior: self.posterior,
            last_value: self.last_value,
            expected: self.last_expected,
            last_log_likelihood_ratio: self.last_log_lr,
            log_odds_change: match (self.recent_log_odds.front(), self.recent_log_odds.back()) {
                (Some((_, first)), Some((_, last))) => last - first,
                _ => 0.0,
            },
            change_probability: self.changepoints.change_probability_within(window_observations.max(1)),
            warming_up: self.warming_up(config),
            regime_accepted_at: self.regime_accepted_at,
        }
    }
}
