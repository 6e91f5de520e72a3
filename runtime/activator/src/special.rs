//! Special functions and log-densities the conjugate models need (log-gamma, Student-t,
//! Beta-Binomial), written out so the crate stays dependency-free and deterministic.

use std::f64::consts::PI;

/// Natural log of the gamma function for `x > 0` (Lanczos, g = 7, 9 terms; |error| < 1e-13).
pub fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range; only reached for tiny pseudo-counts.
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut series = COEFFICIENTS[0];
    for (index, coefficient) in COEFFICIENTS.iter().enumerate().skip(1) {
        series += coefficient / (x + index as f64);
    }
    let shifted = x + 7.5;
    0.5 * (2.0 * PI).ln() + (x + 0.5) * shifted.ln() - shifted + series.ln()
}

/// Natural log of the beta function B(a, b).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// A location-scale Student-t distribution: the posterior predictive of a Normal-Inverse-Gamma model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StudentT {
    pub degrees_of_freedom: f64,
    pub location: f64,
    pub scale: f64,
}

impl StudentT {
    /// The part of the log-density that does not depend on the point; callers evaluating the
    /// same distribution many times (BOCPD) reuse it.
    pub fn ln_normaliser(&self) -> f64 {
        let nu = self.degrees_of_freedom;
        ln_gamma((nu + 1.0) / 2.0) - ln_gamma(nu / 2.0) - 0.5 * (nu * PI).ln() - self.scale.ln()
    }

    pub fn ln_pdf(&self, y: f64) -> f64 {
        self.ln_normaliser() + self.ln_kernel(y)
    }

    /// Log-density without the normaliser.
    pub fn ln_kernel(&self, y: f64) -> f64 {
        let nu = self.degrees_of_freedom;
        let z = (y - self.location) / self.scale;
        -(nu + 1.0) / 2.0 * (z * z / nu).ln_1p()
    }
}

/// Log of the Beta-Binomial probability of `errors` successes in `trials` with Beta(a, b) rate.
pub fn beta_binomial_ln_pmf(errors: u64, trials: u64, a: f64, b: f64) -> f64 {
    let (k, n) = (errors as f64, trials as f64);
    let ln_choose = ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0);
    ln_choose + ln_beta(k + a, n - k + b) - ln_beta(a, b)
}

/// log(exp(a) + exp(b)) without overflow.
pub fn ln_add_exp(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let high = a.max(b);
    high + (-(a - b).abs()).exp().ln_1p()
}

/// log(Σ exp(values)); `-inf` for an empty slice.
pub fn ln_sum_exp(values: &[f64]) -> f64 {
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if high == f64::NEG_INFINITY {
        return high;
    }
    high + values.iter().map(|value| (value - high).exp()).sum::<f64>().ln()
}

/// The logistic function, numerically safe at both ends.
pub fn sigmoid(log_odds: f64) -> f64 {
    if log_odds >= 0.0 {
        1.0 / (1.0 + (-log_odds).exp())
    } else {
        let e = log_odds.exp();
        e / (1.0 + e)
    }
}

pub fn logit(probability: f64) -> f64 {
    let p = probability.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials_and_half_integers() {
        let mut factorial = 1.0_f64;
        for n in 1..20 {
            assert!((ln_gamma(n as f64) - factorial.ln()).abs() < 1e-10, "Γ({n})");
            factorial *= n as f64;
        }
        assert!((ln_gamma(0.5) - PI.sqrt().ln()).abs() < 1e-12);
        assert!((ln_gamma(1.5) - (PI.sqrt() / 2.0).ln()).abs() < 1e-12);
        assert!((ln_gamma(0.1) - 2.252_712_651_734_206).abs() < 1e-10);
    }

    #[test]
    fn student_t_integrates_to_one_and_has_cauchy_special_case() {
        let t = StudentT { degrees_of_freedom: 3.0, location: 1.0, scale: 0.5 };
        let step = 1e-3;
        let total: f64 = (-200_000..200_000).map(|i| t.ln_pdf(1.0 + i as f64 * step).exp() * step).sum();
        assert!((total - 1.0).abs() < 1e-3, "integral {total}");
        let cauchy = StudentT { degrees_of_freedom: 1.0, location: 0.0, scale: 1.0 };
        assert!((cauchy.ln_pdf(0.0) - (1.0 / PI).ln()).abs() < 1e-12);
        assert!((cauchy.ln_pdf(1.0) - (0.5 / PI).ln()).abs() < 1e-12);
    }

    #[test]
    fn beta_binomial_sums_to_one_and_reduces_to_uniform() {
        let total: f64 = (0..=30).map(|k| beta_binomial_ln_pmf(k, 30, 2.5, 7.0).exp()).sum();
        assert!((total - 1.0).abs() < 1e-10);
        // Beta(1,1) makes every count equally likely: 1/(n+1).
        for k in 0..=10 {
            assert!((beta_binomial_ln_pmf(k, 10, 1.0, 1.0).exp() - 1.0 / 11.0).abs() < 1e-12);
        }
    }

    #[test]
    fn log_sum_helpers_are_stable() {
        assert!((ln_add_exp(1000.0, 1000.0) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(ln_add_exp(f64::NEG_INFINITY, 3.0), 3.0);
        assert!((ln_sum_exp(&[0.0, 0.0, 0.0]) - 3f64.ln()).abs() < 1e-12);
        assert!((sigmoid(logit(0.3)) - 0.3).abs() < 1e-12);
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) <= 1.0);
    }
}
