//! Seasonality-aware baseline for real-valued signals: a "recent" Normal-Inverse-Gamma model
//! with a short memory and a time-of-day model (one bucket per hour by default) with a memory of
//! days, combined by Bayesian model averaging whose weights follow each model's recent predictive
//! performance. Buckets borrow strength from the recent model through their prior, so a bucket
//! never seen before predicts like the recent model.

use crate::conjugate::{Nig, SuffStats};
use crate::special::{ln_sum_exp, StudentT};

#[derive(Clone, Debug, PartialEq)]
pub struct BaselineConfig {
    /// Half-life of the recent model's memory.
    pub recent_half_life_s: f64,
    /// Half-life of each time-of-day bucket's memory (measured in wall time, so days).
    pub seasonal_half_life_s: f64,
    /// Length of the season (a day) and number of buckets in it.
    pub season_period_s: f64,
    pub season_buckets: usize,
    /// How many observations the recent model's opinion is worth inside a bucket's prior.
    pub bucket_prior_pseudo_count: f64,
    /// Half-life of the model-averaging weights.
    pub model_weight_half_life_s: f64,
    /// Floor on the noise variance (transformed units), so a perfectly flat signal still yields a
    /// proper predictive.
    pub min_variance: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            recent_half_life_s: 1800.0,
            seasonal_half_life_s: 3.0 * 86_400.0,
            season_period_s: 86_400.0,
            season_buckets: 24,
            bucket_prior_pseudo_count: 5.0,
            model_weight_half_life_s: 7200.0,
            min_variance: 1e-4,
        }
    }
}

/// One predictive component of the normal model with its model-averaging weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightedPredictive {
    pub weight: f64,
    pub predictive: StudentT,
}

#[derive(Clone, Debug)]
pub struct SeasonalBaseline {
    config: BaselineConfig,
    robust_dof: f64,
    recent: SuffStats,
    recent_updated_at: Option<f64>,
    buckets: Vec<(SuffStats, Option<f64>)>,
    /// ln weights of [seasonal, recent], kept normalised.
    ln_model_weight: [f64; 2],
    weights_updated_at: Option<f64>,
}

fn decay_factor(elapsed_s: f64, half_life_s: f64) -> f64 {
    if elapsed_s <= 0.0 || half_life_s <= 0.0 {
        return 1.0;
    }
    0.5f64.powf(elapsed_s / half_life_s)
}

impl SeasonalBaseline {
    pub fn new(config: BaselineConfig, robust_dof: f64) -> SeasonalBaseline {
        let buckets = vec![(SuffStats::default(), None); config.season_buckets.max(1)];
        SeasonalBaseline {
            config,
            robust_dof,
            recent: SuffStats::default(),
            recent_updated_at: None,
            buckets,
            ln_model_weight: [0.5f64.ln(), 0.5f64.ln()],
            weights_updated_at: None,
        }
    }

    /// Effective number of observations behind the recent model.
    pub fn effective_count(&self) -> f64 {
        self.recent.count
    }

    fn bucket_index(&self, t: f64) -> usize {
        let period = self.config.season_period_s.max(1.0);
        let phase = t.rem_euclid(period) / period;
        ((phase * self.buckets.len() as f64) as usize).min(self.buckets.len() - 1)
    }

    fn recent_posterior(&self) -> Nig {
        // Vague prior centred on the data: the recent model is driven by its observations.
        let variance = self.recent.variance().unwrap_or(self.config.min_variance).max(self.config.min_variance);
        Nig::weak(self.recent.mean, variance, 0.5).posterior(&self.recent)
    }

    fn robust(&self, predictive: StudentT) -> StudentT {
        let scale = predictive.scale.max(self.config.min_variance.sqrt());
        StudentT { degrees_of_freedom: predictive.degrees_of_freedom.min(self.robust_dof), scale, ..predictive }
    }

    /// The two components of the normal predictive at time `t`: [seasonal, recent].
    pub fn predictive(&self, t: f64) -> [WeightedPredictive; 2] {
        let recent = self.recent_posterior();
        let bucket_prior = Nig::weak(recent.mean, recent.expected_variance(), self.config.bucket_prior_pseudo_count);
        let (bucket_stats, bucket_updated_at) = self.buckets[self.bucket_index(t)];
        let mut bucket_stats = bucket_stats;
        if let Some(updated_at) = bucket_updated_at {
            bucket_stats.discount(decay_factor(t - updated_at, self.config.seasonal_half_life_s));
        }
        let seasonal = bucket_prior.posterior(&bucket_stats);
        let weights = self.model_weights();
        [
            WeightedPredictive { weight: weights[0], predictive: self.robust(seasonal.predictive()) },
            WeightedPredictive { weight: weights[1], predictive: self.robust(recent.predictive()) },
        ]
    }

    pub fn model_weights(&self) -> [f64; 2] {
        let total = ln_sum_exp(&self.ln_model_weight);
        [(self.ln_model_weight[0] - total).exp(), (self.ln_model_weight[1] - total).exp()]
    }

    /// Fold in `y` with importance `weight` (0 = ignore, e.g. an observation believed anomalous).
    /// `component_ln_densities` are the components' log predictive densities of `y`, used to
    /// update the model-averaging weights.
    pub fn learn(&mut self, t: f64, y: f64, weight: f64, component_ln_densities: Option<[f64; 2]>) {
        if !y.is_finite() {
            return;
        }
        if let Some(updated_at) = self.recent_updated_at {
            self.recent.discount(decay_factor(t - updated_at, self.config.recent_half_life_s));
        }
        self.recent_updated_at = Some(t);
        self.recent.observe(y, weight);
        let index = self.bucket_index(t);
        let seasonal_half_life_s = self.config.seasonal_half_life_s;
        let (stats, updated_at) = &mut self.buckets[index];
        if let Some(previous) = *updated_at {
            stats.discount(decay_factor(t - previous, seasonal_half_life_s));
        }
        *updated_at = Some(t);
        stats.observe(y, weight);
        if let Some(ln_densities) = component_ln_densities {
            let keep = self
                .weights_updated_at
                .map(|previous| decay_factor(t - previous, self.config.model_weight_half_life_s))
                .unwrap_or(1.0);
            self.weights_updated_at = Some(t);
            for (ln_weight, ln_density) in self.ln_model_weight.iter_mut().zip(ln_densities) {
                *ln_weight = keep * *ln_weight + weight * ln_density;
            }
            let total = ln_sum_exp(&self.ln_model_weight);
            // Keep a floor so a model that fell behind can win back weight.
            for ln_weight in &mut self.ln_model_weight {
                *ln_weight = (*ln_weight - total).max(0.01f64.ln());
            }
        }
    }

    /// Move the whole notion of normal by `delta` (a regime change accepted as the new normal).
    pub fn shift(&mut self, delta: f64) {
        if !delta.is_finite() {
            return;
        }
        self.recent.mean += delta;
        for (stats, _) in &mut self.buckets {
            stats.mean += delta;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn mixture_location(components: &[WeightedPredictive; 2]) -> f64 {
        components.iter().map(|c| c.weight * c.predictive.location).sum()
    }

    #[test]
    fn learns_the_time_of_day_profile_and_prefers_it_after_a_few_days() {
        let mut baseline = SeasonalBaseline::new(BaselineConfig::default(), 5.0);
        let mut rng = SplitMix64::new(9);
        // Level alternates between 0 (night, 00-12) and 1 (day, 12-24) with a sharp switch.
        let level = |t: f64| if t.rem_euclid(86_400.0) < 43_200.0 { 0.0 } else { 1.0 };
        // Four days and the following night; stop just before the switch to "day".
        let morning = 4.0 * 86_400.0 + 43_200.0;
        let mut t = 0.0;
        while t < morning {
            let y = level(t) + 0.05 * rng.standard_normal();
            let components = baseline.predictive(t);
            let densities = [components[0].predictive.ln_pdf(y), components[1].predictive.ln_pdf(y)];
            baseline.learn(t, y, 1.0, Some(densities));
            t += 10.0;
        }
        // Right after the switch to "day", the seasonal bucket already knows the level while the
        // recent model still remembers the night.
        let components = baseline.predictive(morning + 10.0);
        assert!((components[0].predictive.location - 1.0).abs() < 0.05, "{components:?}");
        assert!(components[1].predictive.location < 0.05, "{components:?}");
        // Both agree during the night, so the mixture sits on the night level.
        assert!(mixture_location(&baseline.predictive(morning - 10.0)).abs() < 0.05);
    }

    #[test]
    fn shift_moves_every_component() {
        let mut baseline = SeasonalBaseline::new(BaselineConfig::default(), 5.0);
        for i in 0..100 {
            baseline.learn(i as f64 * 5.0, 2.0, 1.0, None);
        }
        baseline.shift(0.5);
        let components = baseline.predictive(505.0);
        assert!((components[0].predictive.location - 2.5).abs() < 1e-6);
        assert!((components[1].predictive.location - 2.5).abs() < 1e-6);
    }
}
