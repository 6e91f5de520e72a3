//! Priors from a file of past incidents: per signal, a Gamma-Poisson estimate of the incident
//! rate and a shrunk mean duration. Without a file every signal gets `SignalPrior::default()`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::signal::SignalPrior;

/// The incident history file (JSON):
/// `{"observed_days": 90, "incidents": [{"signals": ["checkout_p99"], "duration_s": 840}]}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentHistory {
    pub observed_days: f64,
    pub incidents: Vec<PastIncident>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastIncident {
    pub signals: Vec<String>,
    pub duration_s: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum PriorsError {
    #[error("incident history is not valid JSON of the expected shape: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("incident history: observed_days must be a positive number, got {0}")]
    ObservedDays(f64),
    #[error("incident history: incident {index} has duration {duration_s} s (must be positive and finite)")]
    Duration { index: usize, duration_s: f64 },
}

impl IncidentHistory {
    pub fn parse(text: &str) -> Result<IncidentHistory, PriorsError> {
        let history: IncidentHistory = serde_json::from_str(text)?;
        if !(history.observed_days.is_finite() && history.observed_days > 0.0) {
            return Err(PriorsError::ObservedDays(history.observed_days));
        }
        for (index, incident) in history.incidents.iter().enumerate() {
            if !(incident.duration_s.is_finite() && incident.duration_s > 0.0) {
                return Err(PriorsError::Duration { index, duration_s: incident.duration_s });
            }
        }
        Ok(history)
    }

    /// Per-signal priors. Rate: posterior mean of a Poisson rate under a Jeffreys Gamma(½, 0)
    /// prior, (k + ½) / days. Duration: the observed durations averaged with one pseudo-incident
    /// of the default duration, so a single odd incident does not dominate.
    pub fn priors(&self, fallback: SignalPrior) -> BTreeMap<String, SignalPrior> {
        let mut durations: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for incident in &self.incidents {
            for signal in &incident.signals {
                durations.entry(signal.as_str()).or_default().push(incident.duration_s);
            }
        }
        durations
            .into_iter()
            .map(|(signal, observed)| {
                let count = observed.len() as f64;
                let prior = SignalPrior {
                    incidents_per_day: (count + 0.5) / self.observed_days,
                    mean_incident_s: (observed.iter().sum::<f64>() + fallback.mean_incident_s) / (count + 1.0),
                };
                (signal.to_string(), prior)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_from_history() {
        let history = IncidentHistory::parse(
            r#"{"observed_days": 10, "incidents": [
                {"signals": ["p99"], "duration_s": 300},
                {"signals": ["p99", "errors"], "duration_s": 900}
            ]}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let priors = history.priors(SignalPrior { incidents_per_day: 0.5, mean_incident_s: 600.0 });
        assert_eq!(priors["p99"], SignalPrior { incidents_per_day: 0.25, mean_incident_s: 600.0 });
        assert_eq!(priors["errors"], SignalPrior { incidents_per_day: 0.15, mean_incident_s: 750.0 });
    }

    #[test]
    fn rejects_bad_files_with_a_message() {
        let error = IncidentHistory::parse(r#"{"observed_days": 0, "incidents": []}"#).err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some("incident history: observed_days must be a positive number, got 0")
        );
        assert!(IncidentHistory::parse(r#"{"observed_days": 3, "incidents": [{"signals": [], "duration_s": -1}]}"#)
            .is_err());
        assert!(IncidentHistory::parse("not json").is_err());
    }
}
