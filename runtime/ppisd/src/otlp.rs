//! OTLP export: the same numbers as `/metrics`, pushed to an OpenTelemetry collector over
//! OTLP/HTTP with protobuf bodies (the official messages from `opentelemetry-proto`), and
//! probe events as OTLP log records.
//!
//! Boundary: message building is pure ([`metrics_request`], [`logs_request`]); [`post`] is a
//! minimal HTTP/1.1 client on `std::net` (plain HTTP only: a TLS hop belongs to a collector
//! next to the daemon); [`OtlpExporter`] sends from its own thread so a slow or absent
//! collector never delays the daemon's measurement interval.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use ppis_manifest::MapKind;
use ppis_runtime::{Bucket, MapValue, Value};
use prost::Message;

use crate::config::OtlpConfig;
use crate::metrics::{metric_name_part, MapMetrics, MetricsState, ProbeMetrics};

/// The OTLP/HTTP default port, used when the endpoint names none.
pub const DEFAULT_OTLP_PORT: u16 = 4318;
/// Path of the metrics export, appended to the endpoint.
pub const METRICS_PATH: &str = "/v1/metrics";
/// Path of the logs export, appended to the endpoint.
pub const LOGS_PATH: &str = "/v1/logs";
/// Batches waiting for the sender thread; more are dropped (and counted) rather than queued
/// without bound behind a collector that does not answer.
const QUEUE_DEPTH: usize = 4;
/// A collector's answer is a small protobuf or an error text; more is not read.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// `http://host[:port][/base]`: where the collector listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpEndpoint {
    /// A name or an address; IPv6 addresses without their brackets.
    pub host: String,
    pub port: u16,
    /// Prefix of the signal paths, without a trailing `/` (empty for the root).
    pub base_path: String,
}

impl HttpEndpoint {
    /// Parses an endpoint URL. `https` is refused rather than silently sent in clear text.
    pub fn parse(text: &str) -> Result<HttpEndpoint, String> {
        let rest = match text.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "https is not supported in `{text}`: ppisd speaks plain HTTP to a collector on the host or \
                     its network, which forwards with TLS"
                ))
            }
            _ => return Err(format!("`{text}` is not a URL like http://127.0.0.1:4318")),
        };
        let (authority, path) = rest.find('/').map_or((rest, ""), |slash| rest.split_at(slash));
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(|| format!("`{text}`: unclosed `[`"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains(['@', ' ', '?', '#']) {
            return Err(format!("`{text}` has no usable host"));
        }
        let port = match port {
            None => DEFAULT_OTLP_PORT,
            Some(port) => port.parse().ok().filter(|port| *port > 0).ok_or_else(|| format!("`{text}`: bad port"))?,
        };
        if path.contains(['?', '#', ' ']) {
            return Err(format!("`{text}`: the endpoint may have a path but no query or fragment"));
        }
        Ok(HttpEndpoint { host: host.to_string(), port, base_path: path.trim_end_matches('/').to_string() })
    }

    /// The full URL of a signal path (for messages).
    pub fn url(&self, path: &str) -> String {
        format!("{self}{path}")
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for HttpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.base_path)
    }
}

/// Who is exporting: the OTLP resource and scope of every request.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    pub host_name: String,
    pub pid: u32,
}

impl Origin {
    /// This process on this host.
    pub fn this_process() -> Origin {
        let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_string())
            .unwrap_or_default();
        Origin { host_name, pid: std::process::id() }
    }

    fn resource(&self) -> Resource {
        Resource {
            attributes: vec![
                attribute("service.name", string_value("ppisd")),
                attribute("service.version", string_value(env!("CARGO_PKG_VERSION"))),
                attribute("host.name", string_value(&self.host_name)),
                attribute("process.pid", AnyValue { value: Some(any_value::Value::IntValue(i64::from(self.pid))) }),
            ],
            ..Resource::default()
        }
    }

    fn scope(&self) -> InstrumentationScope {
        InstrumentationScope {
            name: "ppisd".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..InstrumentationScope::default()
        }
    }
}

/// One event a probe emitted (`emit`, `print`), for the logs signal: the daemon hands these
/// to [`OtlpExporter::export_events`] every interval (`crate::events::probe_event`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeEvent {
    pub bundle: String,
    pub probe: String,
    /// When the probe saw it (kernel time converted to wall-clock time by the caller).
    pub time: SystemTime,
    /// Named fields in emission order.
    pub fields: Vec<(String, Value)>,
}

fn unix_nanos(time: SystemTime) -> u64 {
    // Before 1970 only on a broken clock; 0 is "unknown" in OTLP.
    time.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

fn string_value(text: &str) -> AnyValue {
    AnyValue { value: Some(any_value::Value::StringValue(text.to_string())) }
}

fn attribute(key: &str, value: AnyValue) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(value), ..KeyValue::default() }
}

/// A ppis value as an OTLP attribute value, keeping its type (unlike Prometheus labels).
fn any_value_of(value: &Value) -> AnyValue {
    let value = match value {
        Value::Uint(n) => match i64::try_from(*n) {
            Ok(n) => any_value::Value::IntValue(n),
            // OTLP integers are signed; the largest u64 values are kept exactly as text.
            Err(_) => any_value::Value::StringValue(n.to_string()),
        },
        Value::Int(n) => any_value::Value::IntValue(*n),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Str(text) => any_value::Value::StringValue(text.clone()),
        Value::Stack(stack) => any_value::Value::StringValue(ppis_runtime::stacks::folded_frames(stack)),
        Value::Stats { .. } => any_value::Value::StringValue(value.to_string()),
        Value::Buf(bytes) => any_value::Value::BytesValue(bytes.clone()),
    };
    AnyValue { value: Some(value) }
}

/// A ppis value as a data point value; strings are not numbers and have none.
fn point_value(value: &Value) -> Option<number_data_point::Value> {
    match value {
        Value::Uint(n) => Some(
            i64::try_from(*n).map_or(number_data_point::Value::AsDouble(*n as f64), number_data_point::Value::AsInt),
        ),
        Value::Int(n) => Some(number_data_point::Value::AsInt(*n)),
        Value::Bool(b) => Some(number_data_point::Value::AsInt(i64::from(*b))),
        Value::Str(_) | Value::Stack(_) | Value::Buf(_) => None,
        // The average, as an `avg` map exports.
        Value::Stats { avg, .. } => point_value(avg),
    }
}

/// Map keys as attributes: `key` for one key field, `key0`, `key1`, … for tuples (as the
/// Prometheus labels), typed.
fn key_attributes(key: &[Value]) -> Vec<KeyValue> {
    match key {
        [single] => vec![attribute("key", any_value_of(single))],
        parts => parts.iter().enumerate().map(|(i, part)| attribute(&format!("key{i}"), any_value_of(part))).collect(),
    }
}

/// The OTLP metric name of a map: `ppis.map.<bundle>.<map>`, parts sanitised as for Prometheus.
pub fn otlp_map_metric_name(bundle: &str, map: &str) -> String {
    format!("ppis.map.{}.{}", metric_name_part(bundle), metric_name_part(map))
}

/// Times shared by every point of one export.
#[derive(Clone, Copy)]
struct Times {
    start: u64,
    now: u64,
}

fn number_point(attributes: Vec<KeyValue>, value: number_data_point::Value, times: Times) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: times.start,
        time_unix_nano: times.now,
        value: Some(value),
        ..NumberDataPoint::default()
    }
}

fn cumulative_sum(points: Vec<NumberDataPoint>, monotonic: bool) -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
        is_monotonic: monotonic,
    })
}

/// OTLP explicit-bounds buckets from ppis buckets `[lo, hi)` over integers. OTLP bucket `i`
/// is `(bounds[i-1], bounds[i]]`, so `hi - 1` is the exact inclusive bound (as Prometheus
/// `le`); an open last bucket is OTLP's implicit overflow bucket, else an empty one is added.
/// The maps keep no sum, so `sum` is left out rather than guessed.
fn histogram_point(attributes: Vec<KeyValue>, buckets: &[Bucket], times: Times) -> HistogramDataPoint {
    let mut explicit_bounds = Vec::new();
    let mut bucket_counts = Vec::new();
    for bucket in buckets {
        bucket_counts.push(bucket.count);
        if let Some(hi) = bucket.hi {
            explicit_bounds.push((hi - 1) as f64);
        }
    }
    if buckets.last().is_none_or(|bucket| bucket.hi.is_some()) {
        bucket_counts.push(0);
    }
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: times.start,
        time_unix_nano: times.now,
        count: buckets.iter().map(|bucket| bucket.count).sum(),
        sum: None,
        bucket_counts,
        explicit_bounds,
        ..HistogramDataPoint::default()
    }
}

/// One map as one OTLP metric, or `None` when it has no value yet.
fn map_metric(map: &MapMetrics, times: Times) -> Option<Metric> {
    let scalar_points = |rows: Vec<(Vec<KeyValue>, &Value)>| -> Vec<NumberDataPoint> {
        rows.into_iter()
            .filter_map(|(attributes, value)| Some(number_point(attributes, point_value(value)?, times)))
            .collect()
    };
    let numbers = match &map.value {
        MapValue::Scalar(None) => return None,
        MapValue::Scalar(Some(value)) => scalar_points(vec![(Vec::new(), value)]),
        MapValue::Keyed(rows) => scalar_points(rows.iter().map(|(key, value)| (key_attributes(key), value)).collect()),
        MapValue::Hist(_) | MapValue::KeyedHist(_) => Vec::new(),
    };
    // Only strings (a hash map of `str` values): nothing numeric to export.
    if numbers.is_empty() && matches!(map.value, MapValue::Scalar(_) | MapValue::Keyed(_)) {
        return None;
    }
    let (description, data) = match (&map.info.kind, &map.value) {
        (_, MapValue::Hist(buckets)) => {
            ("histogram", histogram_data(vec![histogram_point(Vec::new(), buckets, times)]))
        }
        (_, MapValue::KeyedHist(rows)) => (
            "histogram",
            histogram_data(
                rows.iter().map(|(key, buckets)| histogram_point(key_attributes(key), buckets, times)).collect(),
            ),
        ),
        (MapKind::Count, _) => ("count", cumulative_sum(numbers, true)),
        // A sum of signed values can go down: a non-monotonic cumulative sum.
        (MapKind::Sum, _) => ("sum", cumulative_sum(numbers, false)),
        (MapKind::Min, _) => ("min", metric::Data::Gauge(Gauge { data_points: numbers })),
        (MapKind::Max, _) => ("max", metric::Data::Gauge(Gauge { data_points: numbers })),
        (MapKind::Avg, _) => ("avg", metric::Data::Gauge(Gauge { data_points: numbers })),
        (MapKind::Stats, _) => ("stats (average)", metric::Data::Gauge(Gauge { data_points: numbers })),
        (MapKind::Hash, _) => ("hash map", metric::Data::Gauge(Gauge { data_points: numbers })),
        (MapKind::Array { .. }, _) => ("array", metric::Data::Gauge(Gauge { data_points: numbers })),
        (MapKind::Hist | MapKind::Lhist { .. }, _) => return None,
    };
    Some(Metric {
        name: otlp_map_metric_name(&map.bundle, &map.info.name),
        description: format!("ppis {description} `{}` of bundle {}", map.info.name, map.bundle),
        data: Some(data),
        ..Metric::default()
    })
}

fn histogram_data(points: Vec<HistogramDataPoint>) -> metric::Data {
    metric::Data::Histogram(Histogram {
        data_points: points,
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
    })
}

/// The per-probe metrics: one OTLP metric each, one point per probe.
fn probe_metrics(state: &MetricsState, start_of: &dyn Fn(&str) -> u64, now: u64) -> Vec<Metric> {
    type Reading = fn(&ProbeMetrics) -> number_data_point::Value;
    let families: [(&str, &str, &str, Option<bool>, Reading); 4] = [
        (
            "ppis.probe.overhead_ratio",
            "Share of all CPUs the probe used in the last interval (run time + trigger cost)",
            "1",
            None,
            |p| number_data_point::Value::AsDouble(p.overhead_ratio),
        ),
        ("ppis.probe.events", "Events the probe handled since ppisd loaded it", "{event}", Some(true), |p| {
            number_data_point::Value::AsInt(i64::try_from(p.events_total).unwrap_or(i64::MAX))
        }),
        ("ppis.probe.active", "1 while the probe is attached, 0 while detached", "1", None, |p| {
            number_data_point::Value::AsInt(i64::from(p.active))
        }),
        ("ppis.probe.trips", "Times the overhead circuit breaker detached the probe", "{trip}", Some(true), |p| {
            number_data_point::Value::AsInt(i64::try_from(p.tripped_total).unwrap_or(i64::MAX))
        }),
    ];
    families
        .into_iter()
        .filter(|_| !state.probes.is_empty())
        .map(|(name, description, unit, monotonic, reading)| {
            let points = state
                .probes
                .iter()
                .map(|probe| {
                    let attributes = vec![
                        attribute("bundle", string_value(&probe.bundle)),
                        attribute("probe", string_value(&probe.probe)),
                    ];
                    let times = Times { start: start_of(&probe.bundle), now };
                    number_point(attributes, reading(probe), times)
                })
                .collect();
            let data = match monotonic {
                Some(monotonic) => cumulative_sum(points, monotonic),
                None => metric::Data::Gauge(Gauge { data_points: points }),
            };
            Metric {
                name: name.to_string(),
                description: description.to_string(),
                unit: unit.to_string(),
                data: Some(data),
                ..Metric::default()
            }
        })
        .collect()
}

/// The OTLP metrics request for one published state: probe metrics, then every map.
/// Cumulative points start when their bundle was loaded (else at `now`).
pub fn metrics_request(state: &MetricsState, origin: &Origin, now: SystemTime) -> ExportMetricsServiceRequest {
    let now = unix_nanos(now);
    let start_of = |bundle: &str| state.loaded_at.get(bundle).map_or(now, |loaded| unix_nanos(*loaded));
    let mut metrics = probe_metrics(state, &start_of, now);
    for map in &state.maps {
        metrics.extend(map_metric(map, Times { start: start_of(&map.bundle), now }));
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(origin.resource()),
            scope_metrics: vec![ScopeMetrics { scope: Some(origin.scope()), metrics, ..ScopeMetrics::default() }],
            ..ResourceMetrics::default()
        }],
    }
}

/// The OTLP logs request for probe events: one INFO record each, event name `ppis.event`,
/// attributes `ppis.bundle`, `ppis.probe` and every field (typed), body `field=value …`.
pub fn logs_request(events: &[ProbeEvent], origin: &Origin, now: SystemTime) -> ExportLogsServiceRequest {
    let observed = unix_nanos(now);
    let log_records = events
        .iter()
        .map(|event| {
            let mut attributes = vec![
                attribute("ppis.bundle", string_value(&event.bundle)),
                attribute("ppis.probe", string_value(&event.probe)),
            ];
            attributes.extend(event.fields.iter().map(|(name, value)| attribute(name, any_value_of(value))));
            let body = event.fields.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join(" ");
            LogRecord {
                time_unix_nano: unix_nanos(event.time),
                observed_time_unix_nano: observed,
                severity_number: SeverityNumber::Info as i32,
                severity_text: "INFO".to_string(),
                body: Some(string_value(&body)),
                attributes,
                event_name: "ppis.event".to_string(),
                ..LogRecord::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(origin.resource()),
            scope_logs: vec![ScopeLogs { scope: Some(origin.scope()), log_records, ..ScopeLogs::default() }],
            ..ResourceLogs::default()
        }],
    }
}

/// Why an export did not go through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExportError {
    #[error("cannot reach {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url}: {reason}")]
    Exchange { url: String, reason: String },
    #[error("{url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("{url} accepted the export partially: {rejected} rejected: {message}")]
    Partial { url: String, rejected: i64, message: String },
}

/// The status and body of an HTTP response.
struct Response {
    status: u16,
    body: Vec<u8>,
}

/// POSTs a protobuf body to `endpoint` + `path` and reads the answer (one connection per
/// request, `Connection: close`, every step bounded by `timeout`).
fn post(endpoint: &HttpEndpoint, path: &str, body: &[u8], timeout: Duration) -> Result<Response, ExportError> {
    let url = endpoint.url(path);
    let exchange = |reason: std::io::Error| ExportError::Exchange { url: url.clone(), reason: reason.to_string() };
    let addresses = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|error| ExportError::Connect { url: url.clone(), reason: error.to_string() })?;
    let mut last_error = "the host name has no address".to_string();
    let mut stream = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(connected) => {
                stream = Some(connected);
                break;
            }
            Err(error) => last_error = error.to_string(),
        }
    }
    let mut stream = stream.ok_or_else(|| ExportError::Connect { url: url.clone(), reason: last_error })?;
    stream.set_read_timeout(Some(timeout)).map_err(exchange)?;
    stream.set_write_timeout(Some(timeout)).map_err(exchange)?;
    let head = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ppisd/{}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        endpoint.base_path,
        endpoint.host_header(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).map_err(exchange)?;
    stream.flush().map_err(exchange)?;
    let mut raw = Vec::new();
    (&mut stream).take(MAX_RESPONSE_BYTES).read_to_end(&mut raw).map_err(exchange)?;
    parse_response(&raw).map_err(|reason| ExportError::Exchange { url, reason })
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let header_end =
        raw.windows(4).position(|window| window == b"\r\n\r\n").ok_or("the response has no complete header")?;
    let head = String::from_utf8_lossy(&raw[..header_end]);
    let status_line = head.lines().next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: `{status_line}`"))?;
    let mut body = raw[header_end + 4..].to_vec();
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    if let Some(length) = length {
        body.truncate(length);
    }
    Ok(Response { status, body })
}

fn check_status(url: String, response: &Response) -> Result<(), ExportError> {
    if (200..300).contains(&response.status) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&response.body);
    let body: String = text.chars().take(200).collect();
    Err(ExportError::Status { url, status: response.status, body: body.trim().to_string() })
}

/// Sends one metrics request; a partial success (some points rejected) is an error too.
pub fn send_metrics(
    endpoint: &HttpEndpoint,
    request: &ExportMetricsServiceRequest,
    timeout: Duration,
) -> Result<(), ExportError> {
    let response = post(endpoint, METRICS_PATH, &request.encode_to_vec(), timeout)?;
    check_status(endpoint.url(METRICS_PATH), &response)?;
    // An empty body is a full success; so is a body the collector filled with something else.
    let partial = ExportMetricsServiceResponse::decode(response.body.as_slice()).ok().and_then(|r| r.partial_success);
    match partial {
        Some(partial) if partial.rejected_data_points > 0 => Err(ExportError::Partial {
            url: endpoint.url(METRICS_PATH),
            rejected: partial.rejected_data_points,
            message: partial.error_message,
        }),
        _ => Ok(()),
    }
}

/// Sends one logs request; a partial success (some records rejected) is an error too.
pub fn send_logs(
    endpoint: &HttpEndpoint,
    request: &ExportLogsServiceRequest,
    timeout: Duration,
) -> Result<(), ExportError> {
    let response = post(endpoint, LOGS_PATH, &request.encode_to_vec(), timeout)?;
    check_status(endpoint.url(LOGS_PATH), &response)?;
    let partial = ExportLogsServiceResponse::decode(response.body.as_slice()).ok().and_then(|r| r.partial_success);
    match partial {
        Some(partial) if partial.rejected_log_records > 0 => Err(ExportError::Partial {
            url: endpoint.url(LOGS_PATH),
            rejected: partial.rejected_log_records,
            message: partial.error_message,
        }),
        _ => Ok(()),
    }
}

/// What the sender thread sends.
enum Batch {
    Metrics(Box<MetricsState>, SystemTime),
    Events(Vec<ProbeEvent>),
}

/// Counters of the sender thread, for the daemon's log and the tests.
#[derive(Debug, Default)]
pub struct ExportCounters {
    pub metrics_sent: AtomicU64,
    pub events_sent: AtomicU64,
    pub failures: AtomicU64,
    /// Batches dropped because the sender was still busy with earlier ones.
    pub dropped: AtomicU64,
}

/// Exports from a background thread. Metrics are cumulative, so a failed or dropped export
/// loses nothing: the next one carries the totals. Events are not retried (a failure is
/// logged and counted).
pub struct OtlpExporter {
    sender: Option<SyncSender<Batch>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<ExportCounters>,
}

impl OtlpExporter {
    /// Starts the sender thread.
    pub fn start(config: OtlpConfig, origin: Origin) -> Result<OtlpExporter, String> {
        let (sender, receiver) = sync_channel(QUEUE_DEPTH);
        let counters = Arc::new(ExportCounters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("ppisd-otlp".into())
            .spawn(move || send_loop(&config, &origin, &receiver, &thread_counters))
            .map_err(|error| format!("cannot start the OTLP export thread: {error}"))?;
        Ok(OtlpExporter { sender: Some(sender), thread: Some(thread), counters })
    }

    /// Queues the metrics of `state` as of `now`; `false` when the queue was full (dropped).
    pub fn export_metrics(&self, state: MetricsState, now: SystemTime) -> bool {
        self.queue(Batch::Metrics(Box::new(state), now))
    }

    /// Queues probe events as OTLP log records; `false` when the queue was full (dropped).
    pub fn export_events(&self, events: Vec<ProbeEvent>) -> bool {
        if events.is_empty() {
            return true;
        }
        self.queue(Batch::Events(events))
    }

    pub fn counters(&self) -> &ExportCounters {
        &self.counters
    }

    fn queue(&self, batch: Batch) -> bool {
        let Some(sender) = &self.sender else { return false };
        match sender.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

impl Drop for OtlpExporter {
    /// Lets the thread send what is queued (each request bounded by the timeout), then joins it.
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn send_loop(config: &OtlpConfig, origin: &Origin, receiver: &Receiver<Batch>, counters: &ExportCounters) {
    // Log a failure when it starts and when it ends, not every interval in between.
    let mut failing = false;
    for batch in receiver {
        let result = match &batch {
            Batch::Metrics(state, now) => {
                send_metrics(&config.endpoint, &metrics_request(state, origin, *now), config.timeout)
            }
            Batch::Events(events) => {
                send_logs(&config.endpoint, &logs_request(events, origin, SystemTime::now()), config.timeout)
            }
        };
        match (result, &batch) {
            (Ok(()), _) => {
                match &batch {
                    Batch::Metrics(..) => counters.metrics_sent.fetch_add(1, Ordering::Relaxed),
                    Batch::Events(events) => counters.events_sent.fetch_add(events.len() as u64, Ordering::Relaxed),
                };
                if failing {
                    crate::daemon::log(format!("OTLP export to {} works again", config.endpoint));
                    failing = false;
                }
            }
            (Err(error), batch) => {
                counters.failures.fetch_add(1, Ordering::Relaxed);
                let lost = match batch {
                    Batch::Events(events) => format!("; {} event(s) lost", events.len()),
                    Batch::Metrics(..) => String::new(),
                };
                if !failing || !lost.is_empty() {
                    crate::daemon::log(format!("OTLP export failed: {error}{lost}"));
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::map_info;
    use crate::otlp_receiver::OtlpReceiver;
    use std::fmt::Write as _;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn origin() -> Origin {
        Origin { host_name: "web-1".into(), pid: 42 }
    }

    /// A state with every kind of export: probes, a keyed and an unkeyed count, a signed sum,
    /// an unset max, a string hash map, and histograms with and without an open last bucket.
    fn synthetic_state() -> MetricsState {
        let map = |name: &str, kind: MapKind, keyed: bool, value: MapValue| MapMetrics {
            bundle: "lat".into(),
            info: map_info(name, kind, keyed),
            value,
        };
        MetricsState {
            probes: vec![ProbeMetrics {
                bundle: "lat".into(),
                probe: "probe0".into(),
                overhead_ratio: 0.00125,
                events_total: 4200,
                active: true,
                tripped_total: 2,
            }],
            maps: vec![
                map(
                    "by_comm",
                    MapKind::Count,
                    true,
                    MapValue::Keyed(vec![
                        (vec![Value::Str("bash".into())], Value::Uint(3)),
                        (vec![Value::Str("nginx".into())], Value::Uint(7)),
                    ]),
                ),
                map("total", MapKind::Count, false, MapValue::Scalar(Some(Value::Uint(10)))),
                map("delta", MapKind::Sum, false, MapValue::Scalar(Some(Value::Int(-5)))),
                map("peak", MapKind::Max, false, MapValue::Scalar(None)),
                map(
                    "names",
                    MapKind::Hash,
                    true,
                    MapValue::Keyed(vec![(vec![Value::Str("a".into())], Value::Str("b".into()))]),
                ),
                map(
                    "sizes",
                    MapKind::Hist,
                    false,
                    MapValue::Hist(vec![
                        Bucket { lo: None, hi: Some(0), count: 0 },
                        Bucket { lo: Some(0), hi: Some(1), count: 1 },
                        Bucket { lo: Some(1), hi: Some(2), count: 2 },
                        Bucket { lo: Some(2), hi: Some(4), count: 4 },
                        Bucket { lo: Some(4), hi: None, count: 1 },
                    ]),
                ),
                map(
                    "lin",
                    MapKind::Lhist { lo: 0, hi: 20, step: 10 },
                    true,
                    MapValue::KeyedHist(vec![(
                        vec![Value::Str("sh".into())],
                        vec![
                            Bucket { lo: Some(0), hi: Some(10), count: 5 },
                            Bucket { lo: Some(10), hi: Some(20), count: 1 },
                        ],
                    )]),
                ),
            ],
            loaded_at: [("lat".to_string(), at(1_700_000_000))].into_iter().collect(),
            ..MetricsState::default()
        }
    }

    fn render_value(value: &AnyValue) -> String {
        match &value.value {
            Some(any_value::Value::StringValue(text)) => format!("{text:?}"),
            Some(any_value::Value::IntValue(n)) => n.to_string(),
            Some(any_value::Value::BoolValue(b)) => b.to_string(),
            Some(any_value::Value::DoubleValue(x)) => format!("{x}"),
            other => format!("{other:?}"),
        }
    }

    fn render_attributes(attributes: &[KeyValue]) -> String {
        let parts: Vec<String> = attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value.as_ref().map_or("-".to_string(), render_value)))
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    fn render_number(point: &NumberDataPoint) -> String {
        let value = match point.value {
            Some(number_data_point::Value::AsInt(n)) => format!("int {n}"),
            Some(number_data_point::Value::AsDouble(x)) => format!("double {x}"),
            None => "none".into(),
        };
        format!(
            "{} {value} start={} time={}",
            render_attributes(&point.attributes),
            point.start_time_unix_nano,
            point.time_unix_nano
        )
    }

    /// A compact, reviewable rendering of a decoded metrics request.
    pub(crate) fn render_metrics(request: &ExportMetricsServiceRequest) -> String {
        let mut out = String::new();
        for resource in &request.resource_metrics {
            let attributes = resource.resource.as_ref().map_or(String::new(), |r| render_attributes(&r.attributes));
            writeln!(out, "resource {attributes}").unwrap();
            for scope in &resource.scope_metrics {
                let name = scope.scope.as_ref().map_or("", |s| s.name.as_str());
                writeln!(out, "scope {name}").unwrap();
                for metric in &scope.metrics {
                    writeln!(out, "{} [{}] unit={:?}", metric.name, metric.description, metric.unit).unwrap();
                    match &metric.data {
                        Some(metric::Data::Gauge(gauge)) => {
                            for point in &gauge.data_points {
                                writeln!(out, "  gauge {}", render_number(point)).unwrap();
                            }
                        }
                        Some(metric::Data::Sum(sum)) => {
                            for point in &sum.data_points {
                                let kind = if sum.is_monotonic { "monotonic" } else { "non-monotonic" };
                                let temporality = sum.aggregation_temporality;
                                writeln!(out, "  sum {kind} temporality={temporality} {}", render_number(point))
                                    .unwrap();
                            }
                        }
                        Some(metric::Data::Histogram(histogram)) => {
                            for point in &histogram.data_points {
                                writeln!(
                                    out,
                                    "  histogram temporality={} {} count={} sum={:?} bounds={:?} counts={:?}",
                                    histogram.aggregation_temporality,
                                    render_attributes(&point.attributes),
                                    point.count,
                                    point.sum,
                                    point.explicit_bounds,
                                    point.bucket_counts
                                )
                                .unwrap();
                            }
                        }
                        other => writeln!(out, "  unexpected {other:?}").unwrap(),
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_map_shape_becomes_an_otlp_metric() {
        let request = metrics_request(&synthetic_state(), &origin(), at(1_700_000_060));
        // Through the wire format and back, as a collector would see it.
        let decoded = ExportMetricsServiceRequest::decode(request.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, request);
        insta::assert_snapshot!(render_metrics(&decoded));
    }

    #[test]
    fn histogram_buckets_keep_exact_bounds_and_counts() {
        let buckets = [Bucket { lo: Some(0), hi: Some(10), count: 5 }, Bucket { lo: Some(10), hi: Some(20), count: 1 }];
        let point = histogram_point(Vec::new(), &buckets, Times { start: 1, now: 2 });
        // Closed last bucket: an empty overflow bucket is added so counts = bounds + 1.
        assert_eq!(point.explicit_bounds, vec![9.0, 19.0]);
        assert_eq!(point.bucket_counts, vec![5, 1, 0]);
        assert_eq!(point.count, 6);
        assert_eq!(point.sum, None);
        let open = [Bucket { lo: None, hi: Some(1), count: 2 }, Bucket { lo: Some(1), hi: None, count: 3 }];
        let point = histogram_point(Vec::new(), &open, Times { start: 1, now: 2 });
        assert_eq!((point.explicit_bounds, point.bucket_counts), (vec![0.0], vec![2, 3]));
    }

    #[test]
    fn large_unsigned_values_are_not_wrapped() {
        assert_eq!(point_value(&Value::Uint(u64::MAX)), Some(number_data_point::Value::AsDouble(u64::MAX as f64)));
        assert_eq!(
            any_value_of(&Value::Uint(u64::MAX)).value,
            Some(any_value::Value::StringValue("18446744073709551615".into()))
        );
        assert_eq!(point_value(&Value::Str("x".into())), None);
    }

    #[test]
    fn endpoints_parse_or_say_why_not() {
        let parsed = HttpEndpoint::parse("http://127.0.0.1:4318").unwrap();
        assert_eq!((parsed.host.as_str(), parsed.port, parsed.base_path.as_str()), ("127.0.0.1", 4318, ""));
        let parsed = HttpEndpoint::parse("http://collector/otlp/").unwrap();
        assert_eq!((parsed.port, parsed.url(LOGS_PATH).as_str()), (4318, "http://collector:4318/otlp/v1/logs"));
        let parsed = HttpEndpoint::parse("http://[::1]:9000").unwrap();
        assert_eq!((parsed.host.as_str(), parsed.to_string().as_str()), ("::1", "http://[::1]:9000"));
        for (text, expected) in [
            ("https://c:4318", "https is not supported"),
            ("127.0.0.1:4318", "is not a URL"),
            ("http://:4318", "no usable host"),
            ("http://c:0", "bad port"),
            ("http://c:http", "bad port"),
            ("http://c:1/v1?x=1", "no query"),
            ("http://[::1:4318", "unclosed"),
        ] {
            let error = HttpEndpoint::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    fn receiver_config(receiver: &OtlpReceiver) -> OtlpConfig {
        OtlpConfig {
            endpoint: HttpEndpoint::parse(&format!("http://{}", receiver.address())).unwrap(),
            export_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn metrics_and_events_reach_a_receiver_intact() {
        let receiver = OtlpReceiver::start().unwrap();
        let config = receiver_config(&receiver);
        let state = synthetic_state();
        let events = vec![
            ProbeEvent {
                bundle: "lat".into(),
                probe: "probe0".into(),
                time: at(1_700_000_001),
                fields: vec![("pid".into(), Value::Uint(7)), ("comm".into(), Value::Str("bash".into()))],
            },
            ProbeEvent {
                bundle: "lat".into(),
                probe: "probe1".into(),
                time: at(1_700_000_002),
                fields: vec![("slow".into(), Value::Bool(true)), ("delta".into(), Value::Int(-3))],
            },
        ];
        let exporter = OtlpExporter::start(config, origin()).unwrap();
        assert!(exporter.export_metrics(state.clone(), at(1_700_000_060)));
        assert!(exporter.export_events(events.clone()));
        drop(exporter); // flushes the queue

        let received = receiver.received();
        assert_eq!(received.metrics.len(), 1, "{:?}", received.rejected);
        assert_eq!(received.metrics[0], metrics_request(&state, &origin(), at(1_700_000_060)));
        assert_eq!(received.logs.len(), 1);
        let records = &received.logs[0].resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].time_unix_nano, 1_700_000_001_000_000_000);
        assert_eq!(records[0].body, Some(string_value("pid=7 comm=bash")));
        assert_eq!(records[0].event_name, "ppis.event");
        assert_eq!(
            render_attributes(&records[1].attributes),
            "{ppis.bundle=\"lat\",ppis.probe=\"probe1\",slow=true,delta=-3}"
        );
        assert_eq!(received.paths, vec![METRICS_PATH.to_string(), LOGS_PATH.to_string()]);
    }

    #[test]
    fn collector_errors_and_absent_collectors_are_reported() {
        let receiver = OtlpReceiver::start().unwrap();
        receiver.respond_with_status(503);
        let config = receiver_config(&receiver);
        let request = metrics_request(&synthetic_state(), &origin(), at(1));
        let error = send_metrics(&config.endpoint, &request, config.timeout).unwrap_err();
        assert!(matches!(error, ExportError::Status { status: 503, .. }), "{error}");
        assert!(error.to_string().contains("/v1/metrics answered 503"), "{error}");

        receiver.respond_with_partial_success(3, "bad points");
        let error = send_metrics(&config.endpoint, &request, config.timeout).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{} accepted the export partially: 3 rejected: bad points", config.endpoint.url(METRICS_PATH))
        );
        let logs = logs_request(&[], &origin(), at(1));
        assert!(matches!(
            send_logs(&config.endpoint, &logs, config.timeout),
            Err(ExportError::Partial { rejected: 3, .. })
        ));

        let address = receiver.address();
        drop(receiver);
        let closed = HttpEndpoint::parse(&format!("http://{address}")).unwrap();
        let error = send_metrics(&closed, &request, Duration::from_millis(500)).unwrap_err();
        assert!(matches!(error, ExportError::Connect { .. }), "{error}");
    }

    #[test]
    fn a_full_queue_drops_instead_of_blocking() {
        // A port nothing listens on with a long timeout would block; a listener that never
        // accepts keeps the sender busy (the kernel completes the connection, nobody answers).
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = OtlpConfig {
            endpoint: HttpEndpoint::parse(&format!("http://{}", silent.local_addr().unwrap())).unwrap(),
            export_interval: Duration::from_secs(1),
            timeout: Duration::from_millis(300),
        };
        let exporter = OtlpExporter::start(config, origin()).unwrap();
        let accepted = (0..QUEUE_DEPTH + 3).filter(|_| exporter.export_metrics(MetricsState::default(), at(1))).count();
        assert!(accepted <= QUEUE_DEPTH + 1, "{accepted}");
        assert!(exporter.counters().dropped.load(Ordering::Relaxed) >= 2);
        drop(exporter);
    }
}
