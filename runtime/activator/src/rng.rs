//! A tiny seeded random number generator (SplitMix64) so that synthetic traces are bit-for-bit
//! reproducible on every machine, with the few distributions the simulator draws from.

/// SplitMix64: 64-bit state, passes BigCrush, trivially seedable. Not for cryptography.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1): never exactly 0, so logarithms are safe.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal by Box-Muller (one of the pair is discarded to keep the state simple).
    pub fn standard_normal(&mut self) -> f64 {
        let radius = (-2.0 * self.uniform().ln()).sqrt();
        radius * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }

    /// Chi-square with an integer number of degrees of freedom, as a sum of squared normals.
    fn chi_square(&mut self, degrees_of_freedom: u32) -> f64 {
        (0..degrees_of_freedom).map(|_| self.standard_normal().powi(2)).sum()
    }

    /// Standard Student-t with integer degrees of freedom: heavy tails for the noise traces.
    pub fn student_t(&mut self, degrees_of_freedom: u32) -> f64 {
        let degrees_of_freedom = degrees_of_freedom.max(1);
        self.standard_normal() / (self.chi_square(degrees_of_freedom) / degrees_of_freedom as f64).sqrt()
    }

    /// Binomial draw by normal approximation with continuity (exact enough for n·p ≥ 5 traffic);
    /// falls back to summing Bernoulli trials for small n.
    pub fn binomial(&mut self, trials: u64, probability: f64) -> u64 {
        let p = probability.clamp(0.0, 1.0);
        if trials <= 64 {
            return (0..trials).filter(|_| self.uniform() < p).count() as u64;
        }
        let mean = trials as f64 * p;
        let deviation = (mean * (1.0 - p)).sqrt();
        (mean + deviation * self.standard_normal()).round().clamp(0.0, trials as f64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_sane_moments() {
        let mut first = SplitMix64::new(7);
        let mut second = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(first.next_u64(), second.next_u64());
        }
        let samples: Vec<f64> = (0..200_000).map(|_| first.standard_normal()).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.02, "variance {variance}");
    }
}
