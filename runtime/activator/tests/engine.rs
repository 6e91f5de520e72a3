//! Behaviour of the public engine API: detection on each signal kind, gate timing through the
//! engine, host-cap arbitration, regime acceptance, priors from incident files, bad input, and
//! the explanation text (snapshot).

use ppis_activator::rng::SplitMix64;
use ppis_activator::{
    Action, Decision, DormantProbe, Engine, EngineConfig, EngineError, Observation, ObserveError, Reason, SignalKind,
};

const WINDOW: f64 = 5.0;

fn probe(signals: &[&str], overhead_percent: f64, value_weight: f64) -> DormantProbe {
    DormantProbe {
        signals: signals.iter().map(|s| s.to_string()).collect(),
        threshold: 0.85,
        sustain_s: 0.0,
        dwell_s: 60.0,
        max_active_s: 1200.0,
        overhead_percent,
        value_weight,
    }
}

/// Feeds `windows` p99 samples of `factor` × 200 ms with 10% log-normal noise, deciding each tick.
fn feed_latency(
    engine: &mut Engine,
    rng: &mut SplitMix64,
    t: &mut f64,
    windows: usize,
    factor: f64,
    cap: f64,
) -> Vec<Vec<Decision>> {
    (0..windows)
        .map(|_| {
            *t += WINDOW;
            let value = 0.2 * factor * (0.1 * rng.standard_normal()).exp();
            engine.observe(*t, "p99", Observation::Value(value)).unwrap_or_else(|e| panic!("{e}"));
            engine.decide(*t, cap)
        })
        .collect()
}

fn attached(decisions: &[Decision], probe: &str) -> bool {
    decisions.iter().any(|d| d.probe == probe && d.attached)
}

fn latency_engine(probes: &[(&str, DormantProbe)]) -> Engine {
    let mut engine = Engine::new(EngineConfig::default());
    engine.add_signal("p99", SignalKind::LatencyQuantile).unwrap_or_else(|e| panic!("{e}"));
    for (name, spec) in probes {
        engine.add_probe(*name, spec.clone()).unwrap_or_else(|e| panic!("{e}"));
    }
    engine
}

#[test]
fn latency_step_attaches_quickly_then_releases_after_dwell() {
    let mut engine = latency_engine(&[("deep", probe(&["p99"], 2.0, 100.0))]);
    let (mut rng, mut t) = (SplitMix64::new(1), 0.0);
    let quiet = feed_latency(&mut engine, &mut rng, &mut t, 2000, 1.0, 5.0);
    assert!(quiet.iter().all(|d| !attached(d, "deep")), "false activation on a quiet hour");
    let incident = feed_latency(&mut engine, &mut rng, &mut t, 60, 2.0, 5.0);
    let first = incident.iter().position(|d| attached(d, "deep"));
    assert!(first.is_some_and(|index| index <= 4), "attached after {first:?} windows");
    assert!(incident[first.unwrap_or(0)..].iter().all(|d| attached(d, "deep")));
    // Back to normal: stays attached through the 60 s release dwell, then detaches.
    let after = feed_latency(&mut engine, &mut rng, &mut t, 40, 1.0, 5.0);
    let released = after.iter().position(|d| !attached(d, "deep"));
    assert!(released.is_some_and(|index| (12..=16).contains(&index)), "released after {released:?} windows");
    let metrics = &engine.metrics()[0];
    assert_eq!((metrics.activations_total, metrics.deactivations_total), (1, 1));
    assert!(metrics.activation_probability < 0.01);
    assert!((metrics.overhead_cpu_seconds_total - metrics.active_seconds_total * 0.02).abs() < 1e-9);
}

#[test]
fn max_active_time_detaches_during_a_long_anomaly() {
    let mut spec = probe(&["p99"], 2.0, 100.0);
    spec.max_active_s = 120.0;
    let mut engine = latency_engine(&[("deep", spec)]);
    let (mut rng, mut t) = (SplitMix64::new(2), 0.0);
    feed_latency(&mut engine, &mut rng, &mut t, 500, 1.0, 5.0);
    let incident = feed_latency(&mut engine, &mut rng, &mut t, 100, 3.0, 5.0);
    let on: Vec<bool> = incident.iter().map(|d| attached(d, "deep")).collect();
    let first = on.iter().position(|b| *b).unwrap_or(usize::MAX);
    let active_windows = on.iter().filter(|b| **b).count();
    assert!(first < 5, "{on:?}");
    assert_eq!(active_windows, 24, "120 s of 5 s windows, then resting: {on:?}");
    let explanation = engine.explain("deep").unwrap_or_else(|| panic!("no explanation"));
    assert!(matches!(explanation.reason, Reason::Exhausted { .. }), "{explanation}");
}

#[test]
fn host_cap_lets_the_best_value_per_cost_win_and_preempts_on_a_lower_cap() {
    // value per cost at P≈1: fast 40/2 = 20, big 30/3 = 10, cheap 10/2 = 5.
    let mut engine = latency_engine(&[
        ("big", probe(&["p99"], 3.0, 30.0)),
        ("fast", probe(&["p99"], 2.0, 40.0)),
        ("cheap", probe(&["p99"], 2.0, 10.0)),
    ]);
    let (mut rng, mut t) = (SplitMix64::new(3), 0.0);
    feed_latency(&mut engine, &mut rng, &mut t, 500, 1.0, 4.0);
    let incident = feed_latency(&mut engine, &mut rng, &mut t, 10, 2.5, 4.0);
    let last = incident.last().cloned().unwrap_or_default();
    // Greedy by value per cost under 4%: fast (2) fits, big (3) does not, cheap (2) fits.
    assert!(attached(&last, "fast") && attached(&last, "cheap") && !attached(&last, "big"), "{last:#?}");
    let big = engine.explain("big").unwrap_or_else(|| panic!("no explanation"));
    assert!(matches!(&big.reason, Reason::HostCapDenied { winners, .. } if winners == &["fast", "cheap"]), "{big}");
    // The host gets busier: cap 2% keeps only the best.
    let squeezed = feed_latency(&mut engine, &mut rng, &mut t, 1, 2.5, 2.0);
    assert!(attached(&squeezed[0], "fast") && !attached(&squeezed[0], "cheap"));
    let cheap = squeezed[0].iter().find(|d| d.probe == "cheap").map(|d| (d.action, d.explanation.reason.clone()));
    assert!(matches!(cheap, Some((Action::Detach, Reason::Preempted { .. }))), "{cheap:?}");
    // The cap is never exceeded, whatever the demand.
    let total: f64 = engine.metrics().iter().filter(|m| m.attached).map(|_| 2.0).sum();
    assert!(total <= 2.0);
}

#[test]
fn cost_term_keeps_a_probe_whose_overhead_exceeds_its_value_dormant() {
    let mut engine = latency_engine(&[("pricey", probe(&["p99"], 50.0, 40.0))]);
    let (mut rng, mut t) = (SplitMix64::new(4), 0.0);
    feed_latency(&mut engine, &mut rng, &mut t, 500, 1.0, 100.0);
    let incident = feed_latency(&mut engine, &mut rng, &mut t, 20, 3.0, 100.0);
    assert!(incident.iter().all(|d| !attached(d, "pricey")));
    let explanation = engine.explain("pricey").unwrap_or_else(|| panic!("no explanation"));
    assert!(matches!(explanation.reason, Reason::ValueBelowCost { .. }), "{explanation}");
}

#[test]
fn a_lasting_level_shift_becomes_the_new_normal() {
    let mut engine = latency_engine(&[("deep", probe(&["p99"], 2.0, 100.0))]);
    let (mut rng, mut t) = (SplitMix64::new(5), 0.0);
    feed_latency(&mut engine, &mut rng, &mut t, 1000, 1.0, 5.0);
    // A deploy makes everything 1.6x slower for good.
    let shifted = feed_latency(&mut engine, &mut rng, &mut t, 1200, 1.6, 5.0);
    let probability = |d: &Vec<Decision>| d[0].posterior;
    assert!(probability(&shifted[20]) > 0.99, "the shift is first an anomaly");
    let accepted = engine.signal_evidence("p99").and_then(|e| e.regime_accepted_at);
    let accepted = accepted.unwrap_or_else(|| panic!("regime never accepted"));
    // Accepted once anomalous for accept_regime_s (1800 s) as one stable segment.
    let since_shift = accepted - 5000.0;
    assert!((1800.0..=2100.0).contains(&since_shift), "accepted {since_shift} s after the shift");
    assert!(shifted[shifted.len() - 300..].iter().all(|d| probability(d) < 0.5), "the new level is normal");
}

#[test]
fn error_ratio_rise_is_detected_and_stationary_noise_is_not() {
    let mut engine = Engine::new(EngineConfig::default());
    engine.add_signal("errors", SignalKind::ErrorRatio).unwrap_or_else(|e| panic!("{e}"));
    engine.add_probe("deep", probe(&["errors"], 1.0, 100.0)).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = SplitMix64::new(6);
    let mut max_quiet: f64 = 0.0;
    for i in 0..3000 {
        let t = i as f64 * WINDOW;
        let total = 2000 + (rng.uniform() * 500.0) as u64;
        let wobble = (0.2 * rng.standard_normal()).exp();
        let errors = rng.binomial(total, 0.01 * wobble);
        engine.observe(t, "errors", Observation::Counts { errors, total }).unwrap_or_else(|e| panic!("{e}"));
        let decisions = engine.decide(t, 5.0);
        if i > 100 {
            max_quiet = max_quiet.max(decisions[0].posterior);
        }
    }
    assert!(max_quiet < 0.5, "stationary 1% errors reached P={max_quiet}");
    let detected = (3000..3010).position(|i| {
        let t = i as f64 * WINDOW;
        let errors = rng.binomial(2000, 0.04);
        engine.observe(t, "errors", Observation::Counts { errors, total: 2000 }).unwrap_or_else(|e| panic!("{e}"));
        engine.decide(t, 5.0)[0].attached
    });
    assert!(detected.is_some_and(|windows| windows <= 2), "4x error ratio attached after {detected:?}");
}

#[test]
fn kpi_direction_matters() {
    let mut engine = Engine::new(EngineConfig::default());
    engine.add_signal("throughput", SignalKind::Kpi { higher_is_bad: false }).unwrap_or_else(|e| panic!("{e}"));
    engine.add_probe("deep", probe(&["throughput"], 1.0, 100.0)).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = SplitMix64::new(7);
    let mut step = |engine: &mut Engine, i: usize, level: f64| {
        let t = i as f64 * WINDOW;
        let value = level + 20.0 * rng.standard_normal();
        engine.observe(t, "throughput", Observation::Value(value)).unwrap_or_else(|e| panic!("{e}"));
        engine.decide(t, 5.0)[0].posterior
    };
    (0..1000).for_each(|i| {
        step(&mut engine, i, 1000.0);
    });
    let up: f64 = (1000..1020).map(|i| step(&mut engine, i, 1300.0)).fold(0.0, f64::max);
    assert!(up < 0.1, "more throughput is not an anomaly, P={up}");
    // Give the baseline time to absorb the higher level, then drop well below it.
    (1020..2000).for_each(|i| {
        step(&mut engine, i, 1000.0);
    });
    let down: f64 = (2000..2010).map(|i| step(&mut engine, i, 700.0)).fold(0.0, f64::max);
    assert!(down > 0.99, "a throughput drop is, P={down}");
}

#[test]
fn combined_posterior_is_any_signal_anomalous() {
    let mut engine = Engine::new(EngineConfig::default());
    engine.add_signal("p99", SignalKind::LatencyQuantile).unwrap_or_else(|e| panic!("{e}"));
    engine.add_signal("errors", SignalKind::ErrorRatio).unwrap_or_else(|e| panic!("{e}"));
    engine.add_probe("deep", probe(&["p99", "errors"], 1.0, 100.0)).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = SplitMix64::new(8);
    for i in 0..600 {
        let t = i as f64 * WINDOW;
        let latency_factor = if i >= 590 { 2.5 } else { 1.0 };
        let p99 = 0.2 * latency_factor * (0.1 * rng.standard_normal()).exp();
        let errors = rng.binomial(1000, 0.01);
        engine.observe(t, "p99", Observation::Value(p99)).unwrap_or_else(|e| panic!("{e}"));
        engine.observe(t, "errors", Observation::Counts { errors, total: 1000 }).unwrap_or_else(|e| panic!("{e}"));
    }
    let decisions = engine.decide(600.0 * WINDOW, 5.0);
    let latency = engine.signal_evidence("p99").map(|e| e.posterior).unwrap_or(0.0);
    let errors = engine.signal_evidence("errors").map(|e| e.posterior).unwrap_or(1.0);
    let expected = 1.0 - (1.0 - latency) * (1.0 - errors);
    assert!((decisions[0].posterior - expected).abs() < 1e-12);
    assert!(decisions[0].attached);
    assert_eq!(decisions[0].explanation.evidence[0].signal, "p99", "most anomalous signal first");
}

#[test]
fn incident_history_sets_priors() {
    let history = r#"{"observed_days": 4, "incidents": [{"signals": ["p99"], "duration_s": 1200}]}"#;
    let config = EngineConfig::default().with_incident_history(history).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::new(config);
    engine.add_signal("p99", SignalKind::LatencyQuantile).unwrap_or_else(|e| panic!("{e}"));
    engine.add_signal("other", SignalKind::LatencyQuantile).unwrap_or_else(|e| panic!("{e}"));
    engine.add_probe("a", probe(&["p99"], 1.0, 100.0)).unwrap_or_else(|e| panic!("{e}"));
    engine.add_probe("b", probe(&["other"], 1.0, 100.0)).unwrap_or_else(|e| panic!("{e}"));
    engine.decide(0.0, 5.0);
    let prior = |probe: &str| engine.explain(probe).map(|e| e.prior).unwrap_or(0.0);
    // p99: 1.5 incidents / 4 days × 900 s mean; other: default 0.5/day × 600 s.
    let busy_a = 0.375 * 900.0 / 86_400.0;
    let busy_b = 0.5 * 600.0 / 86_400.0;
    assert!((prior("a") - busy_a / (1.0 + busy_a)).abs() < 1e-12);
    assert!((prior("b") - busy_b / (1.0 + busy_b)).abs() < 1e-12);
    assert!(EngineConfig::default().with_incident_history("{}").is_err());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut engine = Engine::new(EngineConfig::default());
    engine.add_signal("p99", SignalKind::LatencyQuantile).unwrap_or_else(|e| panic!("{e}"));
    engine.add_signal("errors", SignalKind::ErrorRatio).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(engine.add_signal("p99", SignalKind::ErrorRatio), Err(EngineError::DuplicateSignal("p99".to_string())));
    assert!(matches!(engine.add_probe("x", probe(&["nope"], 1.0, 1.0)), Err(EngineError::UnknownSignal { .. })));
    assert!(matches!(engine.add_probe("x", probe(&[], 1.0, 1.0)), Err(EngineError::BadProbe { .. })));
    assert!(matches!(engine.add_probe("x", probe(&["p99"], -1.0, 1.0)), Err(EngineError::BadProbe { .. })));
    let mut bad_threshold = probe(&["p99"], 1.0, 1.0);
    bad_threshold.threshold = 1.5;
    assert!(matches!(engine.add_probe("x", bad_threshold), Err(EngineError::BadProbe { .. })));
    assert!(matches!(engine.observe(1.0, "nope", Observation::Value(1.0)), Err(ObserveError::UnknownSignal(_))));
    assert!(matches!(engine.observe(1.0, "p99", Observation::Value(-1.0)), Err(ObserveError::BadValue { .. })));
    assert!(matches!(engine.observe(1.0, "p99", Observation::Value(f64::NAN)), Err(ObserveError::BadValue { .. })));
    let counts = Observation::Counts { errors: 1, total: 10 };
    assert!(matches!(engine.observe(1.0, "p99", counts), Err(ObserveError::WrongObservation { .. })));
    let impossible = Observation::Counts { errors: 11, total: 10 };
    assert!(matches!(engine.observe(1.0, "errors", impossible), Err(ObserveError::BadCounts { .. })));
    assert!(engine.observe(10.0, "p99", Observation::Value(0.2)).is_ok());
    assert!(matches!(engine.observe(5.0, "p99", Observation::Value(0.2)), Err(ObserveError::TimeWentBackwards { .. })));
    assert!(engine.decide(10.0, f64::NAN).is_empty(), "no probes, no decisions, no panic");
    assert_eq!(engine.explain("nope"), None);
}

#[test]
fn explanations_read_well() {
    let mut engine = latency_engine(&[("deep", probe(&["p99"], 2.0, 100.0)), ("wide", probe(&["p99"], 4.0, 100.0))]);
    let (mut rng, mut t) = (SplitMix64::new(9), 0.0);
    let quiet = feed_latency(&mut engine, &mut rng, &mut t, 500, 1.0, 5.0);
    let at_rest = quiet.last().map(|d| d[0].explanation.to_string()).unwrap_or_default();
    let incident = feed_latency(&mut engine, &mut rng, &mut t, 10, 2.0, 5.0);
    let attach = incident
        .iter()
        .flatten()
        .find(|d| d.action == Action::Attach)
        .map(|d| d.explanation.to_string())
        .unwrap_or_default();
    let denied = engine.explain("wide").map(|e| e.to_string()).unwrap_or_default();
    insta::assert_snapshot!(format!("{at_rest}\n\n{attach}\n\n{denied}"));
}

#[test]
fn probes_and_signals_can_be_removed_when_their_bundle_goes() {
    let mut engine = latency_engine(&[("deep", probe(&["p99"], 2.0, 100.0))]);
    let (mut rng, mut t) = (SplitMix64::new(3), 0.0);
    feed_latency(&mut engine, &mut rng, &mut t, 200, 1.0, 5.0);
    feed_latency(&mut engine, &mut rng, &mut t, 10, 3.0, 5.0);
    assert!(engine.is_attached("deep"));
    assert!(!engine.is_attached("other"));
    // A watched signal stays; once its probe is gone it can go too.
    assert!(!engine.remove_signal("p99"));
    assert!(engine.has_signal("p99"));
    assert!(engine.remove_probe("deep"));
    assert!(!engine.remove_probe("deep"));
    assert!(!engine.is_attached("deep"));
    assert!(engine.metrics().is_empty());
    assert!(engine.remove_signal("p99"));
    assert!(!engine.has_signal("p99"));
    assert!(matches!(engine.observe(t, "p99", Observation::Value(0.2)), Err(ObserveError::UnknownSignal(_))));
    // The names can be registered again, from scratch.
    engine.add_signal("p99", SignalKind::LatencyQuantile).unwrap();
    engine.add_probe("deep", probe(&["p99"], 2.0, 100.0)).unwrap();
    assert!(!engine.is_attached("deep"));
}
