//! Overhead enforcement, as pure arithmetic over the kernel's per-program counters: what a
//! probe cost in the last interval, whether that breaks its declared rate or its budget, the
//! circuit breaker's back-off, and which probes to shed when all of them together exceed the
//! host cap.
//!
//! Boundary: no clocks read and no syscalls; the daemon passes instants and counter deltas.

use std::time::{Duration, Instant};

/// After this long attached without a trip, a probe's back-off starts again from the base.
pub const CLEAN_RUN_RESETS_BACKOFF: Duration = Duration::from_secs(300);

/// What one probe did in one interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    pub events_per_sec: f64,
    /// Share of all CPUs spent on the probe: (run time + trigger cost × events) / (cpus × interval).
    pub overhead_ratio: f64,
}

/// Turns counter deltas over `interval` into a [`Measurement`]. The kernel's run time does not
/// include delivering the event to the program, so the profile's trigger cost is added per run.
pub fn measure(
    run_count_delta: u64,
    run_time_delta_ns: u64,
    interval: Duration,
    trigger_ns: f64,
    cpus: u32,
) -> Measurement {
    let seconds = interval.as_secs_f64();
    if seconds <= 0.0 || cpus == 0 {
        return Measurement { events_per_sec: 0.0, overhead_ratio: 0.0 };
    }
    let busy_ns = run_time_delta_ns as f64 + trigger_ns.max(0.0) * run_count_delta as f64;
    Measurement {
        events_per_sec: run_count_delta as f64 / seconds,
        overhead_ratio: busy_ns / (f64::from(cpus) * seconds * 1e9),
    }
}

/// What a probe promised: its declared rate and the overhead budget it was verified against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub rate_per_sec: u64,
    pub budget_percent: f64,
    /// Allowed excess over the declared rate within one interval, percent.
    pub rate_tolerance_percent: f64,
}

/// Why a breaker tripped.
#[derive(Clone, Debug, PartialEq)]
pub enum TripReason {
    Rate { events_per_sec: f64, declared: u64 },
    Budget { overhead_percent: f64, budget_percent: f64 },
    HostCap { total_percent: f64, cap_percent: f64 },
}

impl TripReason {
    /// Short machine-friendly kind, for metrics labels and audit events.
    pub fn kind(&self) -> &'static str {
        match self {
            TripReason::Rate { .. } => "rate",
            TripReason::Budget { .. } => "budget",
            TripReason::HostCap { .. } => "host_cap",
        }
    }
}

impl std::fmt::Display for TripReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TripReason::Rate { events_per_sec, declared } => {
                write!(f, "{events_per_sec:.0} events/s, over the declared rate of {declared}/s")
            }
            TripReason::Budget { overhead_percent, budget_percent } => {
                write!(f, "overhead {overhead_percent:.4} % of all CPUs, over the {budget_percent} % budget")
            }
            TripReason::HostCap { total_percent, cap_percent } => write!(
                f,
                "all probes together use {total_percent:.4} % of all CPUs, over the host cap of {cap_percent} %; \
                 this probe was the most expensive"
            ),
        }
    }
}

/// The probe's own limits: the rate first (it is what the budget proof assumed), then the budget.
pub fn check_limits(measurement: &Measurement, limits: &Limits) -> Option<TripReason> {
    let allowed_rate = limits.rate_per_sec as f64 * (1.0 + limits.rate_tolerance_percent / 100.0);
    if measurement.events_per_sec > allowed_rate {
        return Some(TripReason::Rate { events_per_sec: measurement.events_per_sec, declared: limits.rate_per_sec });
    }
    let overhead_percent = measurement.overhead_ratio * 100.0;
    if overhead_percent > limits.budget_percent {
        return Some(TripReason::Budget { overhead_percent, budget_percent: limits.budget_percent });
    }
    None
}

/// Which probes to detach so that the rest stay within `cap_percent`: the most expensive
/// first, until the sum fits. `probes` are (identifier, overhead ratio) of the attached ones.
pub fn host_cap_victims<T: Clone>(probes: &[(T, f64)], cap_percent: f64) -> Vec<(T, TripReason)> {
    let mut total: f64 = probes.iter().map(|(_, ratio)| ratio).sum::<f64>() * 100.0;
    let mut by_cost: Vec<&(T, f64)> = probes.iter().collect();
    by_cost.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut victims = Vec::new();
    for (id, ratio) in by_cost {
        if total <= cap_percent {
            break;
        }
        victims.push((id.clone(), TripReason::HostCap { total_percent: total, cap_percent }));
        total -= ratio * 100.0;
    }
    victims
}

/// The circuit breaker of one probe: closed (attached) or open until a re-arm time that
/// doubles with every trip, from `base` up to `max`.
#[derive(Clone, Debug, PartialEq)]
pub struct Breaker {
    base: Duration,
    max: Duration,
    /// Trips since the last reset.
    trips: u32,
    /// When open: when to re-attach.
    open_until: Option<Instant>,
    /// When the probe was last attached, to reset the back-off after a clean run.
    closed_since: Option<Instant>,
}

impl Breaker {
    pub fn new(base: Duration, max: Duration, now: Instant) -> Breaker {
        Breaker { base, max, trips: 0, open_until: None, closed_since: Some(now) }
    }

    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    /// Opens the breaker; returns how long until it re-arms.
    pub fn trip(&mut self, now: Instant) -> Duration {
        if self.closed_since.is_some_and(|since| now.duration_since(since) >= CLEAN_RUN_RESETS_BACKOFF) {
            self.trips = 0;
        }
        let doublings = self.trips.min(31);
        let backoff = self.base.saturating_mul(1u32 << doublings).min(self.max);
        self.trips = self.trips.saturating_add(1);
        self.open_until = Some(now + backoff);
        self.closed_since = None;
        backoff
    }

    /// True when open and the back-off has passed.
    pub fn due(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|until| now >= until)
    }

    /// Closes the breaker (the probe was attached again).
    pub fn rearm(&mut self, now: Instant) {
        self.open_until = None;
        self.closed_since = Some(now);
    }

    /// The re-attach failed: try again after the current back-off.
    pub fn postpone(&mut self, now: Instant) {
        let doublings = self.trips.saturating_sub(1).min(31);
        self.open_until = Some(now + self.base.saturating_mul(1u32 << doublings).min(self.max));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn measurements_add_the_trigger_cost_per_event() {
        // 1000 runs of 500 ns in 1 s on 2 CPUs, trigger 100 ns: 600 µs / 2 s of CPU = 0.03 %.
        let m = measure(1000, 500_000, SECOND, 100.0, 2);
        assert_eq!(m.events_per_sec, 1000.0);
        assert!((m.overhead_ratio - 0.0003).abs() < 1e-12, "{m:?}");
        assert_eq!(measure(5, 5, Duration::ZERO, 1.0, 2).events_per_sec, 0.0);
    }

    #[test]
    fn rate_then_budget() {
        let limits = Limits { rate_per_sec: 100, budget_percent: 0.5, rate_tolerance_percent: 10.0 };
        let quiet = Measurement { events_per_sec: 110.0, overhead_ratio: 0.004 };
        assert_eq!(check_limits(&quiet, &limits), None);
        let storm = Measurement { events_per_sec: 250_000.0, overhead_ratio: 0.2 };
        let reason = check_limits(&storm, &limits).unwrap();
        assert_eq!(reason.to_string(), "250000 events/s, over the declared rate of 100/s");
        assert_eq!(reason.kind(), "rate");
        let heavy = Measurement { events_per_sec: 50.0, overhead_ratio: 0.01 };
        assert_eq!(
            check_limits(&heavy, &limits).unwrap().to_string(),
            "overhead 1.0000 % of all CPUs, over the 0.5 % budget"
        );
    }

    #[test]
    fn the_host_cap_sheds_the_most_expensive_first() {
        let probes = [("a", 0.005), ("b", 0.02), ("c", 0.001)];
        let victims = host_cap_victims(&probes, 2.0);
        assert_eq!(victims.len(), 1);
        assert_eq!(victims[0].0, "b");
        assert!(host_cap_victims(&probes, 3.0).is_empty());
        let shed: Vec<_> = host_cap_victims(&probes, 0.05).into_iter().map(|v| v.0).collect();
        assert_eq!(shed, ["b", "a", "c"]);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets_after_a_clean_run() {
        let start = Instant::now();
        let mut breaker = Breaker::new(5 * SECOND, 30 * SECOND, start);
        assert!(!breaker.is_open());
        assert_eq!(breaker.trip(start), 5 * SECOND);
        assert!(breaker.is_open() && !breaker.due(start + 4 * SECOND) && breaker.due(start + 5 * SECOND));
        breaker.rearm(start + 5 * SECOND);
        assert_eq!(breaker.trip(start + 6 * SECOND), 10 * SECOND);
        breaker.rearm(start + 16 * SECOND);
        assert_eq!(breaker.trip(start + 17 * SECOND), 20 * SECOND);
        breaker.rearm(start + 37 * SECOND);
        assert_eq!(breaker.trip(start + 38 * SECOND), 30 * SECOND);
        let later = start + 100 * SECOND;
        breaker.rearm(later);
        assert_eq!(breaker.trip(later + CLEAN_RUN_RESETS_BACKOFF), 5 * SECOND);
    }
}
