//! The attach/detach state machine of one dormant probe: sustain before attaching, hysteresis
//! and a release dwell before detaching, a maximum active time followed by a re-arm condition.
//! It takes booleans ("score above the attach threshold", "score below the release threshold"),
//! so the simulator's baseline rules run through exactly the same machine as the Bayesian engine.

use serde::Serialize;

/// Timing of one probe's gate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GateTiming {
    /// The score must stay above the attach threshold this long before attaching (the
    /// language's `for 10s`).
    pub sustain_s: f64,
    /// Minimum dwell: once attached, the score must stay below the release threshold this long
    /// before detaching; once detached, the probe stays off at least this long.
    pub dwell_s: f64,
    /// Longest continuous attachment; afterwards the probe rests until the episode ends (score
    /// below release) or `rearm_s` passes.
    pub max_active_s: f64,
    pub rearm_s: f64,
}

/// Why a probe is (or is about to be) in its state. Rendered in explanations.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub enum Reason {
    /// The score is below the attach threshold.
    BelowThreshold,
    /// Above threshold since `since`, attaching once it has held for `sustain_s`.
    Sustaining { since: f64, sustain_s: f64 },
    /// Attaching: above threshold long enough and worth its cost.
    ThresholdCrossed { held_s: f64 },
    /// Attached and the evidence still supports it.
    EvidenceHolds,
    /// Attached, below the release threshold since `since`, detaching after `dwell_s`.
    Releasing { since: f64, dwell_s: f64 },
    /// Detaching: the score stayed below the release threshold for the dwell.
    Released { below_s: f64 },
    /// Recently detached; stays off for the dwell.
    OffDwell { until: f64 },
    /// Detaching: attached for the maximum active time.
    MaxActiveReached { active_s: f64 },
    /// Resting after reaching the maximum active time, until the episode ends or `until`.
    Exhausted { until: f64 },
    /// P(anomaly) × value weight does not cover the certified overhead.
    ValueBelowCost { expected_value: f64, overhead_percent: f64 },
    /// Would attach, but the host overhead cap is taken by probes with better value per cost.
    HostCapDenied { cap_percent: f64, needed_percent: f64, used_percent: f64, winners: Vec<String> },
    /// Detaching to make room under the host cap for probes with better value per cost.
    Preempted { by: Vec<String>, cap_percent: f64 },
}

/// What the gate would like to do this tick, before host-cap arbitration.
#[derive(Clone, Debug, PartialEq)]
pub enum Want {
    Attach(Reason),
    Detach(Reason),
    Stay(Reason),
}

/// What the score says this tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreReading {
    pub above_attach: bool,
    pub below_release: bool,
    /// The cost term: attaching is worth the probe's overhead.
    pub worth_cost: bool,
    pub expected_value: f64,
    pub overhead_percent: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Gate {
    pub attached: bool,
    attached_since: Option<f64>,
    detached_at: Option<f64>,
    above_since: Option<f64>,
    below_since: Option<f64>,
    exhausted_at: Option<f64>,
    last_t: Option<f64>,
    pub activations: u64,
    pub deactivations: u64,
    pub active_seconds: f64,
}

impl Gate {
    pub fn evaluate(&mut self, t: f64, reading: ScoreReading, timing: &GateTiming) -> Want {
        if self.attached {
            if let Some(last) = self.last_t {
                self.active_seconds += (t - last).max(0.0);
            }
        }
        self.last_t = Some(t);
        self.above_since = if reading.above_attach { Some(self.above_since.unwrap_or(t)) } else { None };
        self.below_since = if reading.below_release { Some(self.below_since.unwrap_or(t)) } else { None };

        if self.attached {
            let active_s = t - self.attached_since.unwrap_or(t);
            if active_s >= timing.max_active_s {
                return Want::Detach(Reason::MaxActiveReached { active_s });
            }
            if let Some(since) = self.below_since {
                return if t - since >= timing.dwell_s {
                    Want::Detach(Reason::Released { below_s: t - since })
                } else {
                    Want::Stay(Reason::Releasing { since, dwell_s: timing.dwell_s })
                };
            }
            if !reading.worth_cost && active_s >= timing.dwell_s {
                return Want::Detach(Reason::ValueBelowCost {
                    expected_value: reading.expected_value,
                    overhead_percent: reading.overhead_percent,
                });
            }
            return Want::Stay(Reason::EvidenceHolds);
        }

        if let Some(exhausted_at) = self.exhausted_at {
            let until = exhausted_at + timing.rearm_s;
            if reading.below_release || t >= until {
                self.exhausted_at = None;
            } else {
                return Want::Stay(Reason::Exhausted { until });
            }
        }
        if let Some(detached_at) = self.detached_at {
            if t - detached_at < timing.dwell_s {
                return Want::Stay(Reason::OffDwell { until: detached_at + timing.dwell_s });
            }
        }
        match self.above_since {
            None => Want::Stay(Reason::BelowThreshold),
            Some(since) if t - since < timing.sustain_s => {
                Want::Stay(Reason::Sustaining { since, sustain_s: timing.sustain_s })
            }
            Some(_) if !reading.worth_cost => Want::Stay(Reason::ValueBelowCost {
                expected_value: reading.expected_value,
                overhead_percent: reading.overhead_percent,
            }),
            Some(since) => Want::Attach(Reason::ThresholdCrossed { held_s: t - since }),
        }
    }

    /// Apply the final decision (after host-cap arbitration).
    pub fn commit(&mut self, t: f64, attach: bool, exhausted: bool) {
        if attach && !self.attached {
            self.attached = true;
            self.attached_since = Some(t);
            self.activations += 1;
        } else if !attach && self.attached {
            self.attached = false;
            self.attached_since = None;
            self.detached_at = Some(t);
            self.deactivations += 1;
            if exhausted {
                self.exhausted_at = Some(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: GateTiming = GateTiming { sustain_s: 10.0, dwell_s: 60.0, max_active_s: 300.0, rearm_s: 600.0 };

    fn reading(score: f64) -> ScoreReading {
        ScoreReading {
            above_attach: score >= 0.85,
            below_release: score < 0.6,
            worth_cost: true,
            expected_value: score,
            overhead_percent: 1.0,
        }
    }

    /// Feeds a score per 5-second tick and returns the attached state after each tick.
    fn run(scores: &[f64]) -> Vec<bool> {
        let mut gate = Gate::default();
        scores
            .iter()
            .enumerate()
            .map(|(index, score)| {
                let t = index as f64 * 5.0;
                let attach = match gate.evaluate(t, reading(*score), &TIMING) {
                    Want::Attach(_) => true,
                    Want::Detach(reason) => {
                        gate.commit(t, false, matches!(reason, Reason::MaxActiveReached { .. }));
                        return gate.attached;
                    }
                    Want::Stay(_) => gate.attached,
                };
                gate.commit(t, attach, false);
                gate.attached
            })
            .collect()
    }

    #[test]
    fn sustain_then_attach_and_hysteresis_keeps_it_on() {
        // 0.9 at ticks 2..; attach once held 10 s (tick 4). Dips to 0.7 (between release and
        // attach thresholds) never detach.
        let mut scores = vec![0.1, 0.1];
        scores.extend([0.9; 6]);
        scores.extend([0.7; 30]);
        let states = run(&scores);
        assert_eq!(states.iter().position(|on| *on), Some(4));
        assert!(states[4..].iter().all(|on| *on));
    }

    #[test]
    fn flapping_below_the_dwell_does_not_detach() {
        // 30 s high / 30 s low for 10 minutes, release dwell is 60 s: one activation, never released.
        let scores: Vec<f64> = (0..120).map(|i| if (i / 6) % 2 == 0 { 0.95 } else { 0.1 }).collect();
        let timing = GateTiming { max_active_s: 3600.0, ..TIMING };
        let mut gate = Gate::default();
        for (index, score) in scores.iter().enumerate() {
            let t = index as f64 * 5.0;
            let want = gate.evaluate(t, reading(*score), &timing);
            let attach = match want {
                Want::Attach(_) => true,
                Want::Detach(_) => false,
                Want::Stay(_) => gate.attached,
            };
            gate.commit(t, attach, false);
        }
        assert_eq!((gate.activations, gate.deactivations), (1, 0));
        assert!(gate.attached);
    }

    #[test]
    fn releases_after_dwell_below_release_threshold() {
        let mut scores = vec![0.9; 4];
        scores.extend([0.2; 20]);
        let states = run(&scores);
        // Attached at tick 2 (held 10 s), below from tick 4, released once below for 60 s (tick 16).
        assert!(states[2..16].iter().all(|on| *on), "{states:?}");
        assert!(!states[16], "{states:?}");
    }

    #[test]
    fn max_active_then_rest_until_episode_ends() {
        let mut scores = vec![0.99; 120];
        scores.extend([0.1; 4]);
        scores.extend([0.99; 20]);
        let states = run(&scores);
        let first_off = states.iter().enumerate().skip(2).find(|(_, on)| !**on).map(|(i, _)| i);
        // Attached at tick 2 (t = 10); the maximum of 300 s detaches it at t = 310 (tick 62).
        assert_eq!(first_off, Some(62));
        // Exhausted while the anomaly persists (re-arm would take 600 s).
        assert!(states[62..124].iter().all(|on| !*on), "{states:?}");
        // The episode ends at tick 120 (score 0.1), which re-arms the gate; the next episode
        // attaches after its 10 s sustain.
        assert!(!states[125] && states[126], "{:?}", &states[118..]);
    }

    #[test]
    fn cost_term_blocks_attachment() {
        let mut gate = Gate::default();
        let mut expensive = reading(0.99);
        expensive.worth_cost = false;
        for i in 0..10 {
            let want = gate.evaluate(i as f64 * 5.0, expensive, &TIMING);
            assert!(matches!(want, Want::Stay(Reason::ValueBelowCost { .. }) | Want::Stay(Reason::Sustaining { .. })));
        }
    }
}
