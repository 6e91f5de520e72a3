//! The daemon's TOML configuration (`docs/runtime.md`): where bundles and trusted keys are,
//! the host overhead cap, the metrics address, the audit log and the breaker's timing.
//!
//! Boundary: parsing and validation only; relative paths are resolved against the config
//! file's directory so a config can travel with its keys and bundles.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::feeds::{FeedConfig, FeedSource, HttpUrl};
use crate::otlp::HttpEndpoint;

/// Default host-wide overhead cap, percent of all CPUs.
pub const DEFAULT_HOST_CAP_PERCENT: f64 = 2.0;
/// Default metrics address: loopback only, the Prometheus port range.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    trusted_keys: Vec<PathBuf>,
    bundle_dir: PathBuf,
    audit_log: PathBuf,
    #[serde(default = "default_cap")]
    host_overhead_cap_percent: f64,
    #[serde(default = "default_listen")]
    metrics_listen: String,
    #[serde(default = "default_poll_ms")]
    poll_interval_ms: u64,
    cost_profile: Option<PathBuf>,
    #[serde(default = "default_true")]
    require_profile_match: bool,
    #[serde(default = "default_rate_tolerance")]
    rate_tolerance_percent: f64,
    #[serde(default = "default_backoff")]
    breaker_backoff_secs: u64,
    #[serde(default = "default_max_backoff")]
    breaker_max_backoff_secs: u64,
    otlp: Option<RawOtlp>,
    #[serde(default)]
    activator: Option<RawActivator>,
    #[serde(default)]
    feed: Vec<RawFeed>,
    /// JSON lines of every `emit`/`print` event; none written when absent.
    #[serde(default)]
    event_log: Option<PathBuf>,
}

/// `[activator]`: how dormant probes are decided (`docs/activator.md`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActivator {
    dwell_secs: Option<f64>,
    max_active_secs: Option<f64>,
    value_weight: Option<f64>,
    warmup_windows: Option<u32>,
    quantile: Option<f64>,
    incident_history: Option<PathBuf>,
}

/// `[[feed]]`: one KPI signal.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: String,
    kind: String,
    url: Option<String>,
    query: Option<String>,
    path: Option<PathBuf>,
    pointer: Option<String>,
    #[serde(default = "default_true")]
    higher_is_bad: bool,
    #[serde(default)]
    probes: Vec<String>,
    #[serde(default = "default_feed_timeout_ms")]
    timeout_ms: u64,
}

fn default_feed_timeout_ms() -> u64 {
    500
}

/// The activator's settings (defaults: `ActivatorConfig::default()`).
#[derive(Clone, Debug, PartialEq)]
pub struct ActivatorConfig {
    /// An attached probe detaches only after P(anomaly) stayed below the release threshold
    /// this long; a detached one stays off this long.
    pub dwell_secs: f64,
    /// Longest continuous attachment of a dormant probe.
    pub max_active_secs: f64,
    /// What having a probe attached during an anomaly is worth, in overhead percent.
    pub value_weight: f64,
    /// Windows of a signal learned before its posterior may move.
    pub warmup_windows: u32,
    /// The histogram quantile observed per window (0.99: p99).
    pub quantile: f64,
    /// Past incidents, for per-signal priors (`docs/activator.md`).
    pub incident_history: Option<PathBuf>,
}

impl Default for ActivatorConfig {
    fn default() -> Self {
        ActivatorConfig {
            dwell_secs: 60.0,
            max_active_secs: 1200.0,
            value_weight: 100.0,
            warmup_windows: 60,
            quantile: 0.99,
            incident_history: None,
        }
    }
}

fn activator_config(
    raw: Option<&RawActivator>,
    resolve: impl Fn(&PathBuf) -> PathBuf,
) -> Result<ActivatorConfig, String> {
    let defaults = ActivatorConfig::default();
    let Some(raw) = raw else { return Ok(defaults) };
    let non_negative = |name: &str, value: Option<f64>, default: f64| match value {
        None => Ok(default),
        Some(value) if value.is_finite() && value >= 0.0 => Ok(value),
        Some(value) => Err(format!("activator.{name} is {value}, it must be a finite number at least 0")),
    };
    let quantile = raw.quantile.unwrap_or(defaults.quantile);
    if !(quantile > 0.0 && quantile < 1.0) {
        return Err(format!("activator.quantile is {quantile}, it must be in (0, 1)"));
    }
    Ok(ActivatorConfig {
        dwell_secs: non_negative("dwell_secs", raw.dwell_secs, defaults.dwell_secs)?,
        max_active_secs: non_negative("max_active_secs", raw.max_active_secs, defaults.max_active_secs)?,
        value_weight: non_negative("value_weight", raw.value_weight, defaults.value_weight)?,
        warmup_windows: raw.warmup_windows.unwrap_or(defaults.warmup_windows),
        quantile,
        incident_history: raw.incident_history.as_ref().map(resolve),
    })
}

fn feed_config(raw: &RawFeed, resolve: impl Fn(&PathBuf) -> PathBuf) -> Result<FeedConfig, String> {
    let name = &raw.name;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!("feed name `{name}` must be letters, digits, `_` or `-`"));
    }
    let need = |field: &str, value: &Option<String>| {
        value.clone().ok_or_else(|| format!("feed {name}: kind `{}` needs `{field}`", raw.kind))
    };
    let url = |value: String| HttpUrl::parse(&value).map_err(|error| format!("feed {name}: {error}"));
    let source = match raw.kind.as_str() {
        "prometheus" => FeedSource::Prometheus { url: url(need("url", &raw.url)?)?, query: need("query", &raw.query)? },
        "file" => FeedSource::File {
            path: raw.path.as_ref().map(&resolve).ok_or_else(|| format!("feed {name}: kind `file` needs `path`"))?,
        },
        "http" => {
            let pointer = need("pointer", &raw.pointer)?;
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err(format!("feed {name}: pointer `{pointer}` is not a JSON pointer (it starts with `/`)"));
            }
            FeedSource::Http { url: url(need("url", &raw.url)?)?, pointer }
        }
        other => return Err(format!("feed {name}: unknown kind `{other}` (expected prometheus, file or http)")),
    };
    if raw.timeout_ms == 0 || raw.timeout_ms > 10_000 {
        return Err(format!("feed {name}: timeout_ms is {}, it must be in 1..=10000", raw.timeout_ms));
    }
    Ok(FeedConfig {
        name: name.clone(),
        source,
        higher_is_bad: raw.higher_is_bad,
        probes: raw.probes.clone(),
        timeout: Duration::from_millis(raw.timeout_ms),
    })
}

/// `[otlp]`: present means export is on.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOtlp {
    endpoint: String,
    #[serde(default = "default_otlp_interval_ms")]
    export_interval_ms: u64,
    #[serde(default = "default_otlp_timeout_ms")]
    timeout_ms: u64,
}

fn default_otlp_interval_ms() -> u64 {
    10_000
}
fn default_otlp_timeout_ms() -> u64 {
    5_000
}

fn default_cap() -> f64 {
    DEFAULT_HOST_CAP_PERCENT
}
fn default_listen() -> String {
    DEFAULT_METRICS_LISTEN.to_string()
}
fn default_poll_ms() -> u64 {
    1000
}
fn default_true() -> bool {
    true
}
fn default_rate_tolerance() -> f64 {
    10.0
}
fn default_backoff() -> u64 {
    5
}
fn default_max_backoff() -> u64 {
    300
}

/// A validated configuration with absolute paths.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Public key files (`ppisc keygen`'s `KEY.pub`, or lists of them); their union is trusted.
    pub trusted_keys: Vec<PathBuf>,
    /// Where `*.ppb` bundles are picked up; polled for additions and removals.
    pub bundle_dir: PathBuf,
    /// Hash-chained JSON lines, appended to.
    pub audit_log: PathBuf,
    /// Probes of all bundles together may use at most this share of all CPUs, percent.
    pub host_overhead_cap_percent: f64,
    pub metrics_listen: SocketAddr,
    /// How often the directory is scanned and the probes are measured.
    pub poll_interval: Duration,
    /// The host cost profile (JSON); `None`: the one shipped with ppis (`profiles/default.json`).
    pub cost_profile: Option<PathBuf>,
    /// Refuse bundles whose certificate used another cost profile than this host's.
    pub require_profile_match: bool,
    /// A probe may exceed its declared rate by this much (percent) in one interval before the
    /// breaker trips.
    pub rate_tolerance_percent: f64,
    /// First re-arm delay after a trip; doubled on every further trip.
    pub breaker_backoff: Duration,
    /// Longest re-arm delay.
    pub breaker_max_backoff: Duration,
    /// OTLP/HTTP export of metrics and events; `None` (no `[otlp]` table): off.
    pub otlp: Option<OtlpConfig>,
    /// `[activator]`: how dormant probes are attached and detached.
    pub activator: ActivatorConfig,
    /// `[[feed]]`: KPI signals for the activator.
    pub feeds: Vec<FeedConfig>,
    /// `event_log`: where `emit`/`print` events are appended as JSON lines; `None`: nowhere
    /// (they are still exported over OTLP when that is configured).
    pub event_log: Option<PathBuf>,
}

/// Where and how often metrics are pushed over OTLP/HTTP (`docs/runtime.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpConfig {
    /// The collector's base URL; `/v1/metrics` and `/v1/logs` are appended.
    pub endpoint: HttpEndpoint,
    /// How often the aggregations are exported (cumulative, so a lost export loses nothing).
    pub export_interval: Duration,
    /// Connect, send and receive timeout of one export request.
    pub timeout: Duration,
}

impl Config {
    /// Parses `text`, resolving relative paths against `base` (the config file's directory).
    pub fn parse(text: &str, base: &Path) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| error.to_string().trim_end().to_string())?;
        let resolve = |path: &PathBuf| if path.is_absolute() { path.clone() } else { base.join(path) };
        let metrics_listen = raw
            .metrics_listen
            .parse()
            .map_err(|_| format!("metrics_listen `{}` is not an address like 127.0.0.1:9464", raw.metrics_listen))?;
        let cap = raw.host_overhead_cap_percent;
        if !(cap.is_finite() && cap > 0.0 && cap <= 100.0) {
            return Err(format!("host_overhead_cap_percent is {cap}, it must be in (0, 100]"));
        }
        if raw.trusted_keys.is_empty() {
            return Err("trusted_keys is empty: no bundle could ever be accepted".to_string());
        }
        if raw.poll_interval_ms == 0 || raw.poll_interval_ms > 60_000 {
            return Err(format!("poll_interval_ms is {}, it must be in 1..=60000", raw.poll_interval_ms));
        }
        let tolerance = raw.rate_tolerance_percent;
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Err(format!("rate_tolerance_percent is {tolerance}, it must be at least 0"));
        }
        if raw.breaker_backoff_secs == 0 || raw.breaker_max_backoff_secs < raw.breaker_backoff_secs {
            return Err("breaker_backoff_secs must be at least 1 and at most breaker_max_backoff_secs".to_string());
        }
        let otlp = match &raw.otlp {
            None => None,
            Some(otlp) => {
                let endpoint =
                    HttpEndpoint::parse(&otlp.endpoint).map_err(|error| format!("otlp.endpoint: {error}"))?;
                if otlp.export_interval_ms < 100 || otlp.export_interval_ms > 3_600_000 {
                    return Err(format!(
                        "otlp.export_interval_ms is {}, it must be in 100..=3600000",
                        otlp.export_interval_ms
                    ));
                }
                if otlp.timeout_ms == 0 || otlp.timeout_ms > 60_000 {
                    return Err(format!("otlp.timeout_ms is {}, it must be in 1..=60000", otlp.timeout_ms));
                }
                Some(OtlpConfig {
                    endpoint,
                    export_interval: Duration::from_millis(otlp.export_interval_ms),
                    timeout: Duration::from_millis(otlp.timeout_ms),
                })
            }
        };
        let activator = activator_config(raw.activator.as_ref(), resolve)?;
        let feeds = raw.feed.iter().map(|feed| feed_config(feed, resolve)).collect::<Result<Vec<_>, _>>()?;
        if let Some(duplicate) =
            feeds.iter().enumerate().find(|(i, feed)| feeds[..*i].iter().any(|f| f.name == feed.name))
        {
            return Err(format!("two feeds are named {}", duplicate.1.name));
        }
        Ok(Config {
            trusted_keys: raw.trusted_keys.iter().map(resolve).collect(),
            bundle_dir: resolve(&raw.bundle_dir),
            audit_log: resolve(&raw.audit_log),
            host_overhead_cap_percent: cap,
            metrics_listen,
            poll_interval: Duration::from_millis(raw.poll_interval_ms),
            cost_profile: raw.cost_profile.as_ref().map(resolve),
            require_profile_match: raw.require_profile_match,
            rate_tolerance_percent: tolerance,
            breaker_backoff: Duration::from_secs(raw.breaker_backoff_secs),
            breaker_max_backoff: Duration::from_secs(raw.breaker_max_backoff_secs),
            otlp,
            activator,
            feeds,
            event_log: raw.event_log.as_ref().map(resolve),
        })
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).map_err(|error| format!("{}: {error}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "trusted_keys = [\"keys/ops.pub\"]\nbundle_dir = \"bundles\"\naudit_log = \"/var/log/ppis/audit.log\"\n";

    #[test]
    fn defaults_and_relative_paths() {
        let config = Config::parse(MINIMAL, Path::new("/etc/ppis")).unwrap();
        insta::assert_snapshot!(format!("{config:#?}"));
    }

    #[test]
    fn every_field_can_be_set() {
        let text = format!(
            "{MINIMAL}host_overhead_cap_percent = 0.5\nmetrics_listen = \"0.0.0.0:9000\"\npoll_interval_ms = 250\n\
             cost_profile = \"/etc/ppis/profile.json\"\nrequire_profile_match = false\nrate_tolerance_percent = 0\n\
             breaker_backoff_secs = 2\nbreaker_max_backoff_secs = 60\n"
        );
        let config = Config::parse(&text, Path::new("/")).unwrap();
        assert_eq!(config.host_overhead_cap_percent, 0.5);
        assert_eq!(config.metrics_listen.port(), 9000);
        assert_eq!(config.poll_interval, Duration::from_millis(250));
        assert!(!config.require_profile_match);
        assert_eq!(config.breaker_max_backoff, Duration::from_secs(60));
        assert_eq!(config.otlp, None);
    }

    #[test]
    fn otlp_is_off_by_default_and_configurable() {
        let text = format!("{MINIMAL}[otlp]\nendpoint = \"http://127.0.0.1:4318\"\n");
        let otlp = Config::parse(&text, Path::new("/")).unwrap().otlp.unwrap();
        assert_eq!(otlp.endpoint.to_string(), "http://127.0.0.1:4318");
        assert_eq!(otlp.export_interval, Duration::from_secs(10));
        assert_eq!(otlp.timeout, Duration::from_secs(5));
        let text = format!(
            "{MINIMAL}[otlp]\nendpoint = \"http://collector:4000/otel\"\nexport_interval_ms = 500\ntimeout_ms = 250\n"
        );
        let otlp = Config::parse(&text, Path::new("/")).unwrap().otlp.unwrap();
        assert_eq!((otlp.endpoint.host.as_str(), otlp.endpoint.port), ("collector", 4000));
        assert_eq!(otlp.endpoint.url("/v1/metrics"), "http://collector:4000/otel/v1/metrics");
        assert_eq!(otlp.export_interval, Duration::from_millis(500));
    }

    #[test]
    fn activator_and_feeds_are_configurable() {
        let text = format!(
            "{MINIMAL}[activator]\ndwell_secs = 5\nwarmup_windows = 10\nincident_history = \"incidents.json\"\n\
             [[feed]]\nname = \"orders\"\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:9090\"\nquery = \"sum(orders)\"\n\
             higher_is_bad = false\n[[feed]]\nname = \"queue\"\nkind = \"file\"\npath = \"queue_depth\"\nprobes = [\"deep\"]\n\
             [[feed]]\nname = \"errors\"\nkind = \"http\"\nurl = \"http://svc:8080/stats\"\npointer = \"/errors/rate\"\n"
        );
        let config = Config::parse(&text, Path::new("/etc/ppis")).unwrap();
        assert_eq!(config.activator.dwell_secs, 5.0);
        assert_eq!(config.activator.warmup_windows, 10);
        assert_eq!(config.activator.max_active_secs, 1200.0);
        assert_eq!(config.activator.incident_history, Some(PathBuf::from("/etc/ppis/incidents.json")));
        assert_eq!(config.feeds.len(), 3);
        assert!(!config.feeds[0].higher_is_bad);
        assert_eq!(config.feeds[1].source, FeedSource::File { path: PathBuf::from("/etc/ppis/queue_depth") });
        assert_eq!(config.feeds[1].probes, vec!["deep".to_string()]);
        assert!(matches!(&config.feeds[2].source, FeedSource::Http { pointer, .. } if pointer == "/errors/rate"));
        assert_eq!(Config::parse(MINIMAL, Path::new("/")).unwrap().activator, ActivatorConfig::default());
        let bad = [
            ("[[feed]]\nname = \"x\"\nkind = \"snmp\"\n", "unknown kind `snmp`"),
            ("[[feed]]\nname = \"x\"\nkind = \"prometheus\"\nurl = \"http://p:9090\"\n", "needs `query`"),
            ("[[feed]]\nname = \"x\"\nkind = \"http\"\nurl = \"http://p\"\npointer = \"a\"\n", "not a JSON pointer"),
            ("[[feed]]\nname = \"x\"\nkind = \"file\"\npath = \"a\"\n[[feed]]\nname = \"x\"\nkind = \"file\"\npath = \"b\"\n", "two feeds"),
            ("[activator]\nquantile = 1.5\n", "activator.quantile"),
            ("[activator]\ndwell_secs = -1\n", "activator.dwell_secs"),
        ];
        for (extra, expected) in bad {
            let error = Config::parse(&format!("{MINIMAL}{extra}"), Path::new("/")).unwrap_err();
            assert!(error.contains(expected), "{extra:?}: {error}");
        }
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let cases = [
            ("bundle_dir = \"b\"\naudit_log = \"a\"\n", "missing field `trusted_keys`"),
            (&format!("{MINIMAL}colour = 1\n"), "unknown field `colour`"),
            (&format!("{MINIMAL}host_overhead_cap_percent = 0\n"), "must be in (0, 100]"),
            (&format!("{MINIMAL}metrics_listen = \"localhost\"\n"), "is not an address"),
            (&format!("{MINIMAL}poll_interval_ms = 0\n"), "poll_interval_ms is 0"),
            ("trusted_keys = []\nbundle_dir = \"b\"\naudit_log = \"a\"\n", "no bundle could ever be accepted"),
            (&format!("{MINIMAL}breaker_backoff_secs = 10\nbreaker_max_backoff_secs = 5\n"), "breaker_backoff_secs"),
            (&format!("{MINIMAL}[otlp]\nendpoint = \"https://c:4318\"\n"), "otlp.endpoint: https is not supported"),
            (
                &format!("{MINIMAL}[otlp]\nendpoint = \"http://c:4318\"\nexport_interval_ms = 5\n"),
                "export_interval_ms is 5",
            ),
            (&format!("{MINIMAL}[otlp]\nendpoint = \"http://c:4318\"\nheaders = 1\n"), "unknown field `headers`"),
            (&format!("{MINIMAL}[otlp]\nexport_interval_ms = 500\n"), "missing field `endpoint`"),
        ];
        for (text, expected) in cases {
            let error = Config::parse(text, Path::new("/")).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
