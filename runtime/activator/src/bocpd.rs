//! Bayesian online change-point detection (Adams & MacKay 2007) over a standardised residual
//! stream, with a Normal-Inverse-Gamma model per segment and a constant hazard. The run-length
//! posterior is truncated at `max_run` hypotheses (the tail mass is merged into the last one), so
//! each observation costs O(max_run).
//!
//! Convention: a run length ℓ ≥ 1 is the number of observations in the current segment, the
//! newest included; "a change point just happened" is ℓ = 1.

use crate::conjugate::{Nig, SuffStats};
use crate::special::{ln_gamma, ln_sum_exp, StudentT};

#[derive(Clone, Debug)]
pub struct Bocpd {
    segment_prior: Nig,
    ln_hazard: f64,
    ln_survival: f64,
    max_run: usize,
    /// Degrees-of-freedom cap of each segment's predictive (robustness to single outliers).
    robust_dof: f64,
    /// ln P(run length = index + 1 | data), normalised.
    ln_run_probability: Vec<f64>,
    run_stats: Vec<SuffStats>,
    /// ln Γ((ν+1)/2) − ln Γ(ν/2) − ½ ln(νπ) for a segment holding `index` observations (unit
    /// weights make ν a function of the count alone, so this is computed once).
    ln_normaliser_by_count: Vec<f64>,
    observations: u64,
}

impl Bocpd {
    /// `expected_run` is the prior mean segment length in observations (hazard = 1/expected_run).
    pub fn new(segment_prior: Nig, expected_run: f64, max_run: usize, robust_dof: f64) -> Bocpd {
        let hazard = 1.0 / expected_run.max(1.0 + 1e-9);
        let max_run = max_run.max(2);
        let ln_normaliser_by_count = (0..=max_run)
            .map(|count| {
                let nu = (2.0 * segment_prior.alpha + count as f64).min(robust_dof);
                ln_gamma((nu + 1.0) / 2.0) - ln_gamma(nu / 2.0) - 0.5 * (nu * std::f64::consts::PI).ln()
            })
            .collect();
        Bocpd {
            segment_prior,
            ln_hazard: hazard.ln(),
            ln_survival: (-hazard).ln_1p(),
            max_run,
            robust_dof,
            ln_run_probability: Vec::new(),
            run_stats: Vec::new(),
            ln_normaliser_by_count,
            observations: 0,
        }
    }

    fn ln_predictive(&self, stats: &SuffStats, x: f64) -> f64 {
        let posterior = self.segment_prior.posterior(stats);
        let exact = posterior.predictive();
        let t = StudentT { degrees_of_freedom: exact.degrees_of_freedom.min(self.robust_dof), ..exact };
        let count = (stats.count.round() as usize).min(self.max_run);
        self.ln_normaliser_by_count[count] - t.scale.ln() + t.ln_kernel(x)
    }

    pub fn observe(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.observations += 1;
        if self.ln_run_probability.is_empty() {
            let mut stats = SuffStats::default();
            stats.observe(x, 1.0);
            self.ln_run_probability.push(0.0);
            self.run_stats.push(stats);
            return;
        }
        let ln_predictive: Vec<f64> = self.run_stats.iter().map(|stats| self.ln_predictive(stats, x)).collect();
        let ln_fresh = self.ln_predictive(&SuffStats::default(), x);
        let ln_previous_total = ln_sum_exp(&self.ln_run_probability);
        let mut grown = Vec::with_capacity(self.ln_run_probability.len() + 1);
        // ℓ = 1: the segment that generated x started with x.
        grown.push(self.ln_hazard + ln_previous_total + ln_fresh);
        for (ln_probability, ln_pred) in self.ln_run_probability.iter().zip(&ln_predictive) {
            grown.push(ln_probability + self.ln_survival + ln_pred);
        }
        let mut stats = Vec::with_capacity(grown.len());
        let mut fresh = SuffStats::default();
        fresh.observe(x, 1.0);
        stats.push(fresh);
        for old in &self.run_stats {
            let mut extended = *old;
            extended.observe(x, 1.0);
            stats.push(extended);
        }
        if grown.len() > self.max_run {
            // Merge the two oldest hypotheses; the merged one keeps the older statistics, which is
            // what "the segment is at least this long" means.
            let oldest = grown.pop().unwrap_or(f64::NEG_INFINITY);
            let last = grown.len() - 1;
            grown[last] = crate::special::ln_add_exp(grown[last], oldest);
            let oldest_stats = stats.pop().unwrap_or_default();
            stats[last] = oldest_stats;
        }
        let normaliser = ln_sum_exp(&grown);
        grown.iter_mut().for_each(|value| *value -= normaliser);
        self.ln_run_probability = grown;
        self.run_stats = stats;
    }

    /// P(the current segment holds at most `observations` observations): the probability that
    /// a change point happened within the last `observations` observations.
    pub fn change_probability_within(&self, observations: usize) -> f64 {
        if self.observations <= observations as u64 {
            return 0.0;
        }
        self.ln_run_probability.iter().take(observations).map(|value| value.exp()).sum::<f64>().min(1.0)
    }

    /// Most probable run length (observations in the current segment) and its probability.
    pub fn map_run_length(&self) -> Option<(usize, f64)> {
        self.ln_run_probability
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(index, ln_probability)| (index + 1, ln_probability.exp()))
    }

    /// Sufficient statistics of the segment of the given run length.
    pub fn segment_stats(&self, run_length: usize) -> Option<SuffStats> {
        run_length.checked_sub(1).and_then(|index| self.run_stats.get(index)).copied()
    }

    pub fn reset(&mut self) {
        self.ln_run_probability.clear();
        self.run_stats.clear();
        self.observations = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn detector() -> Bocpd {
        Bocpd::new(Nig::weak(0.0, 1.0, 1.0), 1000.0, 200, 8.0)
    }

    /// First index at which P(change within the last 10 observations) exceeds one half.
    fn first_detection(series: &[f64]) -> Option<usize> {
        let mut bocpd = detector();
        series.iter().enumerate().find_map(|(index, x)| {
            bocpd.observe(*x);
            (bocpd.change_probability_within(10) > 0.5).then_some(index)
        })
    }

    #[test]
    fn detects_a_mean_shift_promptly_and_locates_it() {
        for seed in 1..=10 {
            let mut rng = SplitMix64::new(seed);
            let shift_at = 300;
            let series: Vec<f64> =
                (0..500).map(|i| rng.standard_normal() + if i >= shift_at { 3.0 } else { 0.0 }).collect();
            let detected = first_detection(&series).unwrap_or_else(|| panic!("seed {seed}: no detection"));
            assert!(detected >= shift_at, "seed {seed}: false alarm at {detected}");
            assert!(detected <= shift_at + 5, "seed {seed}: detected at {detected}, shift at {shift_at}");
            let mut bocpd = detector();
            series[..shift_at + 50].iter().for_each(|x| bocpd.observe(*x));
            let (run_length, _) = bocpd.map_run_length().unwrap_or((0, 0.0));
            assert!(run_length.abs_diff(50) <= 2, "seed {seed}: MAP run length {run_length}, expected ~50");
            let segment = bocpd.segment_stats(run_length).unwrap_or_default();
            assert!((segment.mean - 3.0).abs() < 0.5, "seed {seed}: segment mean {}", segment.mean);
        }
    }

    #[test]
    fn stays_quiet_on_a_stationary_series() {
        for seed in 11..=20 {
            let mut rng = SplitMix64::new(seed);
            let series: Vec<f64> = (0..2000).map(|_| 5.0 + 0.5 * rng.standard_normal()).collect();
            assert_eq!(first_detection(&series[20..]), None, "seed {seed}");
        }
    }

    #[test]
    fn truncation_keeps_a_normalised_distribution() {
        let mut bocpd = Bocpd::new(Nig::weak(0.0, 1.0, 1.0), 100.0, 16, 8.0);
        let mut rng = SplitMix64::new(5);
        for _ in 0..100 {
            bocpd.observe(rng.standard_normal());
        }
        let total: f64 = bocpd.ln_run_probability.iter().map(|value| value.exp()).sum();
        assert_eq!(bocpd.ln_run_probability.len(), 16);
        assert!((total - 1.0).abs() < 1e-9);
    }
}
