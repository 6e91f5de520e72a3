//! Conjugate models of "normal": Normal-Inverse-Gamma over a real-valued signal (log-latency
//! quantiles, KPIs) and Beta over an error ratio. Both keep exponentially discounted sufficient
//! statistics so the notion of normal can drift slowly, and both give closed-form posterior
//! predictives (Student-t and Beta-Binomial).

use crate::special::{beta_binomial_ln_pmf, StudentT};

/// Weighted sufficient statistics of a real-valued stream: effective count, mean and sum of
/// squared deviations (weighted Welford, numerically stable).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SuffStats {
    pub count: f64,
    pub mean: f64,
    pub sum_sq_dev: f64,
}

impl SuffStats {
    pub fn observe(&mut self, y: f64, weight: f64) {
        if weight <= 0.0 || !y.is_finite() {
            return;
        }
        let new_count = self.count + weight;
        let delta = y - self.mean;
        self.mean += weight * delta / new_count;
        self.sum_sq_dev += weight * delta * (y - self.mean);
        self.count = new_count;
    }

    /// Exponential forgetting: old observations keep `factor` of their weight. The mean is
    /// unchanged because every observation is discounted alike.
    pub fn discount(&mut self, factor: f64) {
        self.count *= factor;
        self.sum_sq_dev *= factor;
    }

    pub fn variance(&self) -> Option<f64> {
        (self.count > 1.0).then(|| self.sum_sq_dev / self.count)
    }
}

/// Normal-Inverse-Gamma prior: σ² ~ InvGamma(α, β), μ | σ² ~ N(μ₀, σ²/κ).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nig {
    pub mean: f64,
    pub kappa: f64,
    pub alpha: f64,
    pub beta: f64,
}

impl Nig {
    /// A weak prior centred on `mean` whose expected variance is `variance`, worth
    /// `pseudo_count` observations.
    pub fn weak(mean: f64, variance: f64, pseudo_count: f64) -> Nig {
        let pseudo_count = pseudo_count.max(1e-3);
        let alpha = 1.0 + pseudo_count / 2.0;
        Nig { mean, kappa: pseudo_count, alpha, beta: variance.max(1e-12) * (alpha - 1.0) }
    }

    /// Closed-form conjugate update with a batch summarised by its sufficient statistics.
    pub fn posterior(&self, stats: &SuffStats) -> Nig {
        let n = stats.count;
        if n <= 0.0 {
            return *self;
        }
        let kappa = self.kappa + n;
        let mean = (self.kappa * self.mean + n * stats.mean) / kappa;
        let alpha = self.alpha + n / 2.0;
        let shift = stats.mean - self.mean;
        let beta = self.beta + 0.5 * stats.sum_sq_dev + self.kappa * n * shift * shift / (2.0 * kappa);
        Nig { mean, kappa, alpha, beta }
    }

    /// Posterior predictive of the next observation: Student-t with 2α degrees of freedom,
    /// location μ and scale² = β(κ+1)/(ακ).
    pub fn predictive(&self) -> StudentT {
        StudentT {
            degrees_of_freedom: 2.0 * self.alpha,
            location: self.mean,
            scale: (self.beta * (self.kappa + 1.0) / (self.alpha * self.kappa)).sqrt(),
        }
    }

    /// Expected variance E[σ²] = β/(α−1), defined for α > 1.
    pub fn expected_variance(&self) -> f64 {
        self.beta / (self.alpha - 1.0).max(1e-9)
    }
}

/// Beta-distributed error ratio with discounted counts. The concentration a+b is capped: the
/// error ratio of a service is itself a wandering quantity, so no amount of history makes a
/// window's ratio exactly predictable (this is what keeps the Beta-Binomial overdispersed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BetaRate {
    pub prior_a: f64,
    pub prior_b: f64,
    pub errors: f64,
    pub successes: f64,
    pub max_concentration: f64,
}

impl BetaRate {
    pub fn new(prior_a: f64, prior_b: f64, max_concentration: f64) -> BetaRate {
        BetaRate { prior_a, prior_b, errors: 0.0, successes: 0.0, max_concentration }
    }

    pub fn observe(&mut self, errors: u64, trials: u64, weight: f64) {
        let errors = errors.min(trials) as f64;
        self.errors += weight * errors;
        self.successes += weight * (trials as f64 - errors);
    }

    pub fn discount(&mut self, factor: f64) {
        self.errors *= factor;
        self.successes *= factor;
    }

    /// Posterior Beta(a, b), rescaled to the concentration cap if history exceeds it.
    pub fn posterior(&self) -> (f64, f64) {
        let a = self.prior_a + self.errors;
        let b = self.prior_b + self.successes;
        let concentration = a + b;
        if concentration > self.max_concentration {
            let scale = self.max_concentration / concentration;
            (a * scale, b * scale)
        } else {
            (a, b)
        }
    }

    pub fn mean(&self) -> f64 {
        let (a, b) = self.posterior();
        a / (a + b)
    }

    /// Posterior predictive of `errors` out of `trials`: Beta-Binomial(trials, a, b).
    pub fn predictive_ln_pmf(&self, errors: u64, trials: u64) -> f64 {
        let (a, b) = self.posterior();
        beta_binomial_ln_pmf(errors.min(trials), trials, a, b)
    }

    /// The same predictive, but with the mean rate replaced by `rate` at the same concentration:
    /// the anomalous hypotheses "the ratio is f times normal".
    pub fn shifted_ln_pmf(&self, errors: u64, trials: u64, rate: f64) -> f64 {
        let (a, b) = self.posterior();
        let concentration = a + b;
        let rate = rate.clamp(1e-9, 1.0 - 1e-9);
        beta_binomial_ln_pmf(errors.min(trials), trials, rate * concentration, (1.0 - rate) * concentration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn sequential_welford_equals_batch_statistics() {
        let data = [1.0, 4.0, 2.5, -3.0, 7.25, 0.5];
        let mut stats = SuffStats::default();
        for y in data {
            stats.observe(y, 1.0);
        }
        let n = data.len() as f64;
        let mean = data.iter().sum::<f64>() / n;
        let sum_sq: f64 = data.iter().map(|y| (y - mean).powi(2)).sum();
        assert!((stats.count - n).abs() < 1e-12);
        assert!((stats.mean - mean).abs() < 1e-12);
        assert!((stats.sum_sq_dev - sum_sq).abs() < 1e-9);
    }

    #[test]
    fn nig_update_matches_textbook_closed_form() {
        // Murphy (2007), "Conjugate Bayesian analysis of the Gaussian distribution", eq. 85-89.
        let prior = Nig { mean: 0.5, kappa: 2.0, alpha: 3.0, beta: 1.5 };
        let data = [1.2, 0.7, 2.1, 1.6];
        let mut stats = SuffStats::default();
        data.iter().for_each(|y| stats.observe(*y, 1.0));
        let posterior = prior.posterior(&stats);
        let n = 4.0;
        let mean = data.iter().sum::<f64>() / n;
        let ss: f64 = data.iter().map(|y| (y - mean).powi(2)).sum();
        assert!((posterior.kappa - 6.0).abs() < 1e-12);
        assert!((posterior.mean - (2.0 * 0.5 + n * mean) / 6.0).abs() < 1e-12);
        assert!((posterior.alpha - 5.0).abs() < 1e-12);
        let beta = 1.5 + 0.5 * ss + 2.0 * n * (mean - 0.5f64).powi(2) / (2.0 * 6.0);
        assert!((posterior.beta - beta).abs() < 1e-12);
        // Updating one observation at a time gives the same posterior as the batch.
        let mut sequential = prior;
        for y in data {
            let mut one = SuffStats::default();
            one.observe(y, 1.0);
            sequential = sequential.posterior(&one);
        }
        assert!((sequential.mean - posterior.mean).abs() < 1e-12);
        assert!((sequential.beta - posterior.beta).abs() < 1e-12);
    }

    #[test]
    fn nig_predictive_is_the_student_t_obtained_by_integrating_out_mu_and_sigma() {
        // p(y) = ∫ N(y | μ_n, σ²(1 + 1/κ)) InvGamma(σ²; α, β) dσ², integrated numerically on a
        // log grid, must equal the closed-form Student-t density.
        let posterior = Nig { mean: 0.3, kappa: 4.0, alpha: 2.5, beta: 0.8 };
        let t = posterior.predictive();
        let ln_inv_gamma = |s2: f64| {
            posterior.alpha * posterior.beta.ln()
                - crate::special::ln_gamma(posterior.alpha)
                - (posterior.alpha + 1.0) * s2.ln()
                - posterior.beta / s2
        };
        for y in [-2.0, 0.0, 0.3, 1.1, 4.0] {
            let mut integral = 0.0;
            let step = 1e-3;
            let mut u: f64 = -12.0; // u = ln σ², dσ² = σ² du
            while u < 12.0 {
                let s2 = u.exp();
                let variance = s2 * (1.0 + 1.0 / posterior.kappa);
                let normal = (-(y - posterior.mean).powi(2) / (2.0 * variance)).exp()
                    / (2.0 * std::f64::consts::PI * variance).sqrt();
                integral += normal * ln_inv_gamma(s2).exp() * s2 * step;
                u += step;
            }
            let closed = t.ln_pdf(y).exp();
            assert!((integral - closed).abs() < 1e-6 * closed.max(1e-3), "y={y}: {integral} vs {closed}");
        }
    }

    #[test]
    fn beta_binomial_mean_and_variance_match_closed_forms() {
        let mut rate = BetaRate::new(1.0, 1.0, 1e9);
        rate.observe(3, 40, 1.0);
        let (a, b) = rate.posterior();
        assert_eq!((a, b), (4.0, 38.0));
        let n = 25u64;
        let pmf: Vec<f64> = (0..=n).map(|k| rate.predictive_ln_pmf(k, n).exp()).collect();
        let mean: f64 = pmf.iter().enumerate().map(|(k, p)| k as f64 * p).sum();
        let variance: f64 = pmf.iter().enumerate().map(|(k, p)| (k as f64 - mean).powi(2) * p).sum();
        let nf = n as f64;
        assert!((mean - nf * a / (a + b)).abs() < 1e-9);
        let closed_variance = nf * a * b * (a + b + nf) / ((a + b).powi(2) * (a + b + 1.0));
        assert!((variance - closed_variance).abs() < 1e-9);
    }

    #[test]
    fn discounting_forgets_old_regime_and_concentration_cap_holds() {
        let mut rate = BetaRate::new(1.0, 99.0, 500.0);
        let mut rng = SplitMix64::new(3);
        for _ in 0..200 {
            rate.discount(0.95);
            rate.observe(rng.binomial(1000, 0.01), 1000, 1.0);
        }
        let (a, b) = rate.posterior();
        assert!((a + b - 500.0).abs() < 1e-9);
        assert!((rate.mean() - 0.01).abs() < 0.002, "mean {}", rate.mean());
        for _ in 0..200 {
            rate.discount(0.95);
            rate.observe(rng.binomial(1000, 0.05), 1000, 1.0);
        }
        assert!((rate.mean() - 0.05).abs() < 0.005, "mean after shift {}", rate.mean());
    }
}
