//! The Bayesian activator: decides when dormant, costly probes are worth attaching. Cheap
//! sentinel signals feed per-signal conjugate models of "normal" (Normal-Inverse-Gamma on
//! log-latency quantiles and KPIs with a time-of-day baseline, Beta-Binomial on error ratios),
//! a two-state Bayesian filter turns the evidence into P(anomaly), a change-point detector
//! (Adams & MacKay 2007) recognises lasting regime changes, and a gate with hysteresis, dwell,
//! maximum active time, a cost term and host-cap arbitration turns posteriors into decisions.
//!
//! Boundary: pure computation. No syscalls, no clock (callers pass time), no randomness except
//! the seeded generator the simulator uses. The maths is in `docs/activator.md`.

pub mod baseline;
pub mod bocpd;
pub mod conjugate;
pub mod engine;
pub mod policy;
pub mod priors;
pub mod rng;
pub mod signal;
pub mod sim;
pub mod special;

pub use engine::{Action, Decision, DormantProbe, Engine, EngineConfig, EngineError, Explanation, ProbeMetrics};
pub use policy::Reason;
pub use priors::{IncidentHistory, PriorsError};
pub use signal::{ModelConfig, Observation, ObserveError, SignalEvidence, SignalKind, SignalPrior};
