//! Prometheus export: the daemon publishes a [`MetricsState`] every interval, and `/metrics`
//! encodes it (OpenMetrics text, `prometheus-client`): per-probe overhead, events, active and
//! trip counters, and every aggregation map of every loaded bundle (keys as labels, histograms
//! as Prometheus histograms).
//!
//! Boundary: encoding and a minimal HTTP/1.1 server on `std::net`; the state is data only.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ppis_manifest::{MapInfo, MapKind};
use ppis_runtime::{Bucket, MapValue, Value};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// One probe's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeMetrics {
    pub bundle: String,
    pub probe: String,
    pub overhead_ratio: f64,
    pub events_total: u64,
    pub active: bool,
    pub tripped_total: u64,
}

/// One map's current contents.
#[derive(Clone, Debug, PartialEq)]
pub struct MapMetrics {
    pub bundle: String,
    pub info: MapInfo,
    pub value: MapValue,
}

/// Everything `/metrics` shows, replaced as a whole every interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsState {
    pub probes: Vec<ProbeMetrics>,
    pub maps: Vec<MapMetrics>,
    /// When each bundle (by name) was loaded: its counters count from then. OTLP sends it as
    /// the start time of cumulative points, so a collector sees a reload as a counter reset.
    pub loaded_at: BTreeMap<String, SystemTime>,
    /// Dormant probes under the activator (`docs/activator.md`).
    pub activations: Vec<ActivationMetrics>,
    /// What `GET /explain` answers: per dormant probe, the activator's explanation (JSON).
    pub explain: serde_json::Value,
    /// Per bundle (by name) that sends events (`emit`, `print`): records lost to a full ring
    /// buffer since it was loaded.
    pub events_lost: BTreeMap<String, u64>,
}

/// One dormant probe's activator numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationMetrics {
    pub bundle: String,
    pub probe: String,
    pub probability: f64,
    pub activations_total: u64,
    pub deactivations_total: u64,
}

/// Shared between the daemon (writer) and the HTTP thread (reader).
pub type SharedState = Arc<Mutex<MetricsState>>;

#[derive(Debug)]
struct StateCollector(SharedState);

type Labels = Vec<(String, String)>;

/// A per-probe metric: name, help, type and how to read it from a probe's numbers.
type ProbeFamily = (&'static str, &'static str, MetricType, fn(&ProbeMetrics) -> f64);

/// A Prometheus metric name part: `[a-zA-Z0-9_]`, everything else becomes `_`.
pub fn metric_name_part(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// The metric name of a map: `ppis_map_<bundle>_<map>`.
pub fn map_metric_name(bundle: &str, map: &str) -> String {
    format!("ppis_map_{}_{}", metric_name_part(bundle), metric_name_part(map))
}

/// A label value escaped as the exposition format requires (`prometheus-client` writes label
/// values verbatim, and map keys such as `comm` are chosen by whoever runs a process).
pub fn escape_label_value(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn key_labels(key: &[Value]) -> Labels {
    let value = |part: &Value| match part {
        // One line per stack: its folded form (`outer;middle;leaf`).
        Value::Stack(stack) => escape_label_value(&ppis_runtime::stacks::folded_frames(stack)),
        other => escape_label_value(&other.to_string()),
    };
    match key {
        [single] => vec![("key".to_string(), value(single))],
        parts => parts.iter().enumerate().map(|(i, part)| (format!("key{i}"), value(part))).collect(),
    }
}

fn number(value: &Value) -> f64 {
    match value {
        Value::Uint(n) => *n as f64,
        Value::Int(n) => *n as f64,
        Value::Bool(b) => f64::from(u8::from(*b)),
        // Strings as values do not happen for aggregations; hash maps of strings are skipped.
        Value::Str(_) | Value::Stack(_) | Value::Buf(_) => f64::NAN,
        // A `stats` map exports its average, as an `avg` map does.
        Value::Stats { avg, .. } => number(avg),
    }
}

/// Prometheus buckets from ppis buckets `[lo, hi)` over integers: `le = hi - 1` is exact (a
/// value `v < hi` is `v ≤ hi - 1`); the unbounded last bucket is `+Inf`. The sum is not kept
/// by the maps, so `_sum` is the lower bound Σ lo × count (unbounded-below buckets add 0).
fn histogram(buckets: &[Bucket]) -> (f64, u64, Vec<(f64, u64)>) {
    let count = buckets.iter().map(|b| b.count).sum();
    let sum = buckets.iter().map(|b| b.lo.map_or(0.0, |lo| lo as f64) * b.count as f64).sum();
    let mut out: Vec<(f64, u64)> =
        buckets.iter().map(|b| (b.hi.map_or(f64::MAX, |hi| (hi - 1) as f64), b.count)).collect();
    if out.last().is_none_or(|(le, _)| *le != f64::MAX) {
        out.push((f64::MAX, 0));
    }
    (sum, count, out)
}

fn describe(kind: &MapKind) -> (&'static str, MetricType) {
    match kind {
        MapKind::Count => ("count", MetricType::Counter),
        MapKind::Sum => ("sum", MetricType::Gauge),
        MapKind::Min => ("min", MetricType::Gauge),
        MapKind::Max => ("max", MetricType::Gauge),
        MapKind::Avg => ("avg", MetricType::Gauge),
        MapKind::Stats => ("stats (average)", MetricType::Gauge),
        MapKind::Hist | MapKind::Lhist { .. } => ("histogram", MetricType::Histogram),
        MapKind::Hash => ("hash map", MetricType::Gauge),
        MapKind::Array { .. } => ("array", MetricType::Gauge),
    }
}

fn encode_map(map: &MapMetrics, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let name = map_metric_name(&map.bundle, &map.info.name);
    let (what, metric_type) = describe(&map.info.kind);
    let help = format!("ppis {what} `{}` of bundle {}", map.info.name, map.bundle);
    let mut metric = encoder.encode_descriptor(&name, &help, None, metric_type)?;
    let scalar = |metric: &mut prometheus_client::encoding::MetricEncoder, value: &Value| {
        let number = number(value);
        if number.is_nan() {
            return Ok(());
        }
        if let (MetricType::Counter, Value::Uint(count)) = (&metric_type, value) {
            metric.encode_counter::<NoLabelSet, _, u64>(count, None)
        } else if matches!(metric_type, MetricType::Counter) {
            metric.encode_counter::<NoLabelSet, _, u64>(&number, None)
        } else {
            metric.encode_gauge(&number)
        }
    };
    match &map.value {
        MapValue::Scalar(None) => Ok(()),
        MapValue::Scalar(Some(value)) => scalar(&mut metric, value),
        MapValue::Keyed(rows) => {
            for (key, value) in rows {
                let labels = key_labels(key);
                scalar(&mut metric.encode_family(&labels)?, value)?;
            }
            Ok(())
        }
        MapValue::Hist(buckets) => {
            let (sum, count, buckets) = histogram(buckets);
            metric.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
        }
        MapValue::KeyedHist(rows) => {
            for (key, buckets) in rows {
                let labels = key_labels(key);
                let (sum, count, buckets) = histogram(buckets);
                metric.encode_family(&labels)?.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
            Ok(())
        }
    }
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A poisoned lock only means a writer panicked mid-update; the data is still usable.
        let state = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let probe_labels = |p: &ProbeMetrics| -> Labels {
            vec![("bundle".into(), escape_label_value(&p.bundle)), ("probe".into(), escape_label_value(&p.probe))]
        };
        let families: [ProbeFamily; 4] = [
            (
                "ppis_probe_overhead_ratio",
                "Share of all CPUs the probe used in the last interval (run time + trigger cost)",
                MetricType::Gauge,
                |p| p.overhead_ratio,
            ),
            ("ppis_probe_events", "Events the probe handled since ppisd loaded it", MetricType::Counter, |p| {
                p.events_total as f64
            }),
            ("ppis_probe_active", "1 while the probe is attached, 0 while detached", MetricType::Gauge, |p| {
                f64::from(u8::from(p.active))
            }),
            (
                "ppis_probes_tripped",
                "Times the overhead circuit breaker detached the probe",
                MetricType::Counter,
                |p| p.tripped_total as f64,
            ),
        ];
        for (name, help, metric_type, value) in families {
            let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
            for probe in &state.probes {
                let labels = probe_labels(probe);
                let mut family = metric.encode_family(&labels)?;
                if matches!(metric_type, MetricType::Counter) {
                    family.encode_counter::<NoLabelSet, _, u64>(&(value(probe) as u64), None)?;
                } else {
                    family.encode_gauge(&value(probe))?;
                }
            }
        }
        if !state.events_lost.is_empty() {
            let mut metric = encoder.encode_descriptor(
                "ppis_events_lost",
                "Events (emit, print) lost because the bundle's ring buffer was full",
                None,
                MetricType::Counter,
            )?;
            for (bundle, lost) in &state.events_lost {
                let labels: Labels = vec![("bundle".into(), escape_label_value(bundle))];
                metric.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(lost, None)?;
            }
        }
        for map in &state.maps {
            encode_map(map, &mut encoder)?;
        }
        if !state.activations.is_empty() {
            encode_activations(&state.activations, &mut encoder)?;
        }
        Ok(())
    }
}

/// `ppis_activation_probability`, `ppis_activations_total` and `ppis_deactivations_total`
/// per dormant probe.
fn encode_activations(
    activations: &[ActivationMetrics],
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let labels = |a: &ActivationMetrics| -> Labels {
        vec![("bundle".into(), escape_label_value(&a.bundle)), ("probe".into(), escape_label_value(&a.probe))]
    };
    let mut metric = encoder.encode_descriptor(
        "ppis_activation_probability",
        "The activator's posterior P(anomaly) for the dormant probe",
        None,
        MetricType::Gauge,
    )?;
    for activation in activations {
        metric.encode_family(&labels(activation))?.encode_gauge(&activation.probability)?;
    }
    let counters: [(&str, &str, fn(&ActivationMetrics) -> u64); 2] = [
        ("ppis_activations", "Times the activator attached the dormant probe", |a| a.activations_total),
        ("ppis_deactivations", "Times the activator detached the dormant probe", |a| a.deactivations_total),
    ];
    for (name, help, value) in counters {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for activation in activations {
            metric
                .encode_family(&labels(activation))?
                .encode_counter::<NoLabelSet, _, u64>(&value(activation), None)?;
        }
    }
    Ok(())
}

/// The OpenMetrics text of `state`.
pub fn encode(state: &SharedState) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StateCollector(Arc::clone(state))));
    let mut text = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug in the metric set.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        text = format!("# encoding failed: {error}\n# EOF\n");
    }
    text
}

/// `GET /stacks/BUNDLE/MAP.folded|.svg|.pb`: the aggregated stacks of a map with `ustack` /
/// `kstack` keys as of the last publication, as folded text, an SVG flame graph or a pprof
/// profile (status, content type, body).
pub fn stacks_response(path: &str, state: &SharedState) -> (&'static str, &'static str, Vec<u8>) {
    let not_found = |why: String| ("404 Not Found", "text/plain; charset=utf-8", format!("{why}\n").into_bytes());
    let rest = path.trim_start_matches("/stacks/");
    let rest = rest.split('?').next().unwrap_or(rest);
    let Some((bundle, file)) = rest.split_once('/') else {
        return not_found("expected /stacks/BUNDLE/MAP.folded, .svg or .pb".into());
    };
    let Some((map, format)) = file.rsplit_once('.') else {
        return not_found("expected /stacks/BUNDLE/MAP.folded, .svg or .pb".into());
    };
    let state = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(found) = state.maps.iter().find(|m| m.bundle == bundle && m.info.name == map) else {
        return not_found(format!("no map {map} in bundle {bundle}"));
    };
    if !found.info.key.iter().any(|field| matches!(field.ty, ppis_manifest::ScalarType::Stack { .. })) {
        return not_found(format!("map {map} of bundle {bundle} has no ustack/kstack key"));
    }
    let stacks = ppis_runtime::flame::stacks_of(&found.info, &found.value);
    match format {
        "folded" => ("200 OK", "text/plain; charset=utf-8", ppis_runtime::flame::folded(&stacks).into_bytes()),
        "svg" => match ppis_runtime::flame::flamegraph_svg(&stacks, &format!("{bundle}: {map}")) {
            Ok(svg) => ("200 OK", "image/svg+xml", svg),
            Err(error) => ("500 Internal Server Error", "text/plain; charset=utf-8", format!("{error}\n").into_bytes()),
        },
        "pb" => ("200 OK", "application/octet-stream", ppis_runtime::flame::pprof_bytes(&stacks)),
        other => not_found(format!("unknown stack format .{other}: use .folded, .svg or .pb")),
    }
}

/// Serves `GET /metrics` on `listener` from a background thread, forever.
pub fn serve(listener: TcpListener, state: SharedState) {
    std::thread::Builder::new()
        .name("ppisd-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                // One slow client must not stall scrapes forever.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                let _ = respond(stream, &state);
            }
        })
        .map(drop)
        .unwrap_or_else(|error| eprintln!("ppisd: cannot start the metrics thread: {error}"));
}

fn respond(stream: TcpStream, state: &SharedState) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Read (and ignore) the headers, so the client sees a complete exchange.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "GET" && path.starts_with("/stacks/") {
        let (status, content_type, body) = stacks_response(path, state);
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        stream.write_all(&body)?;
        return stream.flush();
    }
    let (status, content_type, body) = if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
        ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", encode(state))
    } else if method == "GET" && (path == "/explain" || path.starts_with("/explain?")) {
        let explain = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).explain.clone();
        ("200 OK", "application/json", format!("{explain}\n"))
    } else {
        ("404 Not Found", "text/plain; charset=utf-8", "only GET /metrics is served\n".to_string())
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ppis_manifest::{Field, ScalarType, ValueLayout};

    /// A per-CPU count-like map, keyed by one `str[16]` or unkeyed (also used by `otlp`'s tests).
    pub(crate) fn map_info(name: &str, kind: MapKind, keyed: bool) -> MapInfo {
        let u64_ty = ScalarType::Int { bytes: 8, signed: false };
        MapInfo {
            name: name.into(),
            object_name: name.into(),
            kind,
            per_cpu: true,
            key: if keyed { vec![Field { offset: 0, ty: ScalarType::Str { len: 16 } }] } else { vec![] },
            key_size: if keyed { 16 } else { 4 },
            bucket_offset: None,
            value_size: 8,
            value: ValueLayout::Scalar { ty: u64_ty },
        }
    }

    #[test]
    fn probes_counts_and_histograms_encode_as_openmetrics() {
        let state = MetricsState {
            probes: vec![ProbeMetrics {
                bundle: "lat".into(),
                probe: "probe0".into(),
                overhead_ratio: 0.00125,
                events_total: 4200,
                active: false,
                tripped_total: 1,
            }],
            maps: vec![
                MapMetrics {
                    bundle: "lat".into(),
                    info: map_info("by_comm", MapKind::Count, true),
                    value: MapValue::Keyed(vec![
                        (vec![Value::Str("bash".into())], Value::Uint(3)),
                        (vec![Value::Str("a\"b".into())], Value::Uint(7)),
                    ]),
                },
                MapMetrics {
                    bundle: "lat".into(),
                    info: map_info("total", MapKind::Count, false),
                    value: MapValue::Scalar(Some(Value::Uint(10))),
                },
                MapMetrics {
                    bundle: "lat".into(),
                    info: map_info("sizes", MapKind::Hist, false),
                    value: MapValue::Hist(vec![
                        Bucket { lo: None, hi: Some(0), count: 0 },
                        Bucket { lo: Some(0), hi: Some(1), count: 1 },
                        Bucket { lo: Some(1), hi: Some(2), count: 2 },
                        Bucket { lo: Some(2), hi: Some(4), count: 4 },
                        Bucket { lo: Some(4), hi: None, count: 1 },
                    ]),
                },
            ],
            ..MetricsState::default()
        };
        insta::assert_snapshot!(encode(&Arc::new(Mutex::new(state))));
    }

    /// Lost events are a counter per bundle that sends events, absent otherwise.
    #[test]
    fn lost_events_are_counted_per_bundle() {
        assert!(!encode(&Arc::new(Mutex::new(MetricsState::default()))).contains("ppis_events_lost"));
        let state = MetricsState {
            events_lost: [("opensnoop".to_string(), 17), ("exec\"snoop".to_string(), 0)].into_iter().collect(),
            ..MetricsState::default()
        };
        let text = encode(&Arc::new(Mutex::new(state)));
        assert!(text.contains("# TYPE ppis_events_lost counter"), "{text}");
        assert!(text.contains("ppis_events_lost_total{bundle=\"opensnoop\"} 17"), "{text}");
        assert!(text.contains("ppis_events_lost_total{bundle=\"exec\\\"snoop\"} 0"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(map_metric_name("web-1.prod", "lat"), "ppis_map_web_1_prod_lat");
    }

    #[test]
    fn the_server_answers_metrics_and_404() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        serve(listener, Arc::new(Mutex::new(MetricsState::default())));
        let fetch = |path: &str| {
            let mut stream = TcpStream::connect(address).unwrap();
            write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut response = String::new();
            std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
            response
        };
        let metrics = fetch("/metrics");
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(
            metrics.contains("# TYPE ppis_probe_overhead_ratio gauge") && metrics.ends_with("# EOF\n"),
            "{metrics}"
        );
        assert!(fetch("/").starts_with("HTTP/1.1 404"));
    }
}

#[cfg(test)]
mod stack_tests {
    use super::*;
    use ppis_manifest::{Field, ScalarType, StackSpace};
    use ppis_runtime::stacks::{Frame, StackKey};
    use prost::Message;

    fn state_with_stacks() -> SharedState {
        let mut info = tests::map_info("s", MapKind::Count, false);
        info.key = vec![Field { offset: 0, ty: ScalarType::Stack { space: StackSpace::User, depth: 127 } }];
        info.key_size = 8;
        let frames = ["leaf", "middle", "outer"]
            .iter()
            .enumerate()
            .map(|(i, name)| Frame { addr: 0x1000 * (i as u64 + 1), symbol: Some((name.to_string(), 4)) })
            .collect();
        let stack = Value::Stack(StackKey { space: StackSpace::User, id: 1, pid: 9, frames });
        let value = MapValue::Keyed(vec![(vec![stack], Value::Uint(5))]);
        let plain = tests::map_info("plain", MapKind::Count, true);
        let state = MetricsState {
            maps: vec![
                MapMetrics { bundle: "b".into(), info, value },
                MapMetrics { bundle: "b".into(), info: plain, value: MapValue::Keyed(vec![]) },
            ],
            ..MetricsState::default()
        };
        Arc::new(Mutex::new(state))
    }

    #[test]
    fn stacks_are_served_folded_as_svg_and_as_pprof() {
        let state = state_with_stacks();
        let (status, _, body) = stacks_response("/stacks/b/s.folded", &state);
        assert_eq!((status, String::from_utf8(body).unwrap().as_str()), ("200 OK", "outer;middle;leaf 5\n"));
        let (status, content_type, svg) = stacks_response("/stacks/b/s.svg", &state);
        assert_eq!((status, content_type), ("200 OK", "image/svg+xml"));
        assert!(String::from_utf8(svg).unwrap().contains("middle"));
        let (_, _, pb) = stacks_response("/stacks/b/s.pb", &state);
        let profile = ppis_runtime::flame::pprof::Profile::decode(pb.as_slice()).unwrap();
        assert_eq!(profile.sample.iter().map(|s| s.value[0]).sum::<i64>(), 5);
        for path in
            ["/stacks/b/plain.folded", "/stacks/b/none.svg", "/stacks/x/s.folded", "/stacks/b/s.txt", "/stacks/b"]
        {
            assert_eq!(stacks_response(path, &state).0, "404 Not Found", "{path}");
        }
    }
}
