//! ppisd, the production runtime: loads signed bundles from a directory after verifying their
//! signature, hashes and certificate (load-time PCC check), attaches their probes, enforces
//! each probe's rate and overhead budget and a host-wide cap with circuit breakers, exports
//! Prometheus metrics (and, when configured, OTLP metrics and logs) and keeps a hash-chained
//! audit log. See `docs/runtime.md`.

pub mod activation;
pub mod audit;
pub mod breaker;
pub mod config;
pub mod daemon;
pub mod events;
pub mod feeds;
pub mod metrics;
pub mod otlp;
pub mod otlp_receiver;
