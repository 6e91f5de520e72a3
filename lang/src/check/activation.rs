//! Checks a dormant probe's `activate when anomaly(SENTINEL) > P for Ns` clause: the sentinel
//! is an aggregation of this file that the daemon can turn into one observation per window
//! (a `bundle::map` sentinel is checked by ppisd when it loads the bundle), `P` is a
//! probability strictly between 0 and 1, and the duration is positive.

use super::{closest, Checker};
use crate::ast;
use crate::diag::Diagnostic;
use crate::hir::{self, MapKind};

/// Seconds per unit a `for` duration may be written in.
const DURATION_UNITS: &[(&str, f64)] = &[("s", 1.0), ("m", 60.0), ("h", 3600.0)];

/// Whether the daemon can turn a sentinel of this kind into one observation per window: the
/// p99 of a `hist`/`lhist`'s new values, the mean of an `avg`'s, the rate of a `count`/`sum`.
/// A `min`/`max` never goes back down, and a hash or array holds values, not events.
pub fn gives_window_signal(kind: MapKind) -> bool {
    match kind {
        MapKind::Hist | MapKind::Lhist { .. } | MapKind::Avg | MapKind::Count | MapKind::Sum => true,
        MapKind::Min | MapKind::Max | MapKind::Hash | MapKind::Array { .. } => false,
        // Not (yet) a signal the daemon reads.
        MapKind::Stats => false,
    }
}

impl Checker<'_> {
    /// The checked rule, or `None` (with diagnostics) when any part of it is wrong.
    pub(super) fn check_activation(&mut self, activation: &ast::Activation) -> Option<hir::Activation> {
        let mut ok = true;
        let threshold = activation.threshold.node;
        if !(threshold > 0.0 && threshold < 1.0) {
            ok = false;
            self.report(
                Diagnostic::error("E0252", "activation threshold must be between 0 and 1", activation.threshold.span)
                    .label(format!("{threshold} is not a probability strictly between 0 and 1"))
                    .with_help("the threshold is P(anomaly); 0.85 attaches the probe when the activator is 85% sure"),
            );
        }
        let unit = DURATION_UNITS.iter().find(|(name, _)| *name == activation.unit.node);
        let for_seconds = match unit {
            None => {
                ok = false;
                self.report(
                    Diagnostic::error(
                        "E0253",
                        format!("unknown duration unit `{}`", activation.unit.node),
                        activation.unit.span,
                    )
                    .label("expected `s`, `m` or `h`")
                    .with_help("write the sustain time as `for 10s`, `for 5m` or `for 1h`"),
                );
                0.0
            }
            Some(_) if activation.duration.node == 0 => {
                ok = false;
                self.report(
                    Diagnostic::error("E0253", "activation duration must be positive", activation.duration.span)
                        .label("zero")
                        .with_help("the posterior must stay above the threshold for some time, e.g. `for 10s`"),
                );
                0.0
            }
            Some((_, seconds)) => activation.duration.node as f64 * seconds,
        };
        let signal = match &activation.bundle {
            // Another bundle's map: only the daemon, with both bundles loaded, can check it.
            Some(bundle) => Some(format!("{}::{}", bundle.node, activation.sentinel.node)),
            None => self.check_sentinel(&activation.sentinel),
        };
        let signal = signal?;
        ok.then(|| hir::Activation { signal, threshold, for_seconds, span: activation.span })
    }

    fn check_sentinel(&mut self, sentinel: &crate::span::Ident) -> Option<String> {
        let name = sentinel.node.as_str();
        let found = self.map_ids.get(name).copied();
        if let Some(id) = found {
            self.used_maps.insert(id);
        }
        let Some(id) = found else {
            let help = match closest(name, self.maps.iter().map(|map| map.name.as_str())) {
                Some(close) => format!("did you mean `{close}`? A sentinel in another bundle is written `bundle::map`"),
                None => format!(
                    "declare a cheap sentinel aggregation, e.g. `map {name}: hist;`, or name another bundle's as `bundle::map`"
                ),
            };
            self.report(
                Diagnostic::error("E0250", format!("unknown sentinel `{name}`"), sentinel.span)
                    .label("no map of this name in this file")
                    .with_help(help),
            );
            return None;
        };
        let map = &self.maps[id];
        // An invalid kind was already reported at the declaration.
        let kind = map.kind?;
        if !gives_window_signal(kind) {
            let map_span = map.span;
            self.report(
                Diagnostic::error("E0251", format!("map `{name}` cannot be a sentinel"), sentinel.span)
                    .label("gives no per-window signal")
                    .with_secondary(map_span, "declared here")
                    .with_help("use a `hist`, `lhist`, `avg`, `count` or `sum` aggregation as the sentinel"),
            );
            return None;
        }
        Some(name.to_string())
    }
}
