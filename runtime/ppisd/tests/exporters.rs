//! `ppisd`'s exports seen by real consumers (root, kernel): a real Prometheus server scraping
//! `/metrics` and answering a PromQL query with the exact count a workload produced, and an
//! OTLP/HTTP receiver decoding what the daemon pushes with the official protobuf messages.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{exact_source, free_port, kernel_available, run_exact_workload, wait_for, Daemon, Fixture};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, AggregationTemporality};
use ppisd::otlp_receiver::OtlpReceiver;

/// Kernel tests attach to the same tracepoint: one at a time.
static KERNEL: Mutex<()> = Mutex::new(());

/// `prometheus` on PATH; without it skip, unless `CI=true` (where `cargo xtask setup`
/// installs it).
fn prometheus_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).map(|dir| dir.join("prometheus")).find(|candidate| candidate.is_file());
    if found.is_none() {
        let why = "the prometheus binary is not installed (apt-get install prometheus)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("Prometheus test cannot run: {why}");
        }
        eprintln!("skipping Prometheus test: {why}");
    }
    found
}

/// A Prometheus server run from its binary (no system service), killed when dropped.
struct Prometheus {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second, its data and log under `dir`.
    fn start(binary: &Path, dir: &Path, target: &str) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ppisd\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("prometheus starts");
        Prometheus { child, address, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The instant-query result as (labels, value) pairs, or `None` while Prometheus is not
    /// answering yet.
    fn query(&self, promql: &str) -> Option<Vec<(serde_json::Value, f64)>> {
        let mut stream = TcpStream::connect(&self.address).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        // HTTP/1.0: the answer is not chunked and the connection closes after it.
        write!(stream, "GET /api/v1/query?query={} HTTP/1.0\r\nHost: prometheus\r\n\r\n", percent_encode(promql))
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (_, body) = response.split_once("\r\n\r\n")?;
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        if json["status"] != "success" {
            return None;
        }
        let results = json["data"]["result"].as_array()?;
        Some(
            results
                .iter()
                .filter_map(|result| {
                    let value = result["value"][1].as_str()?.parse().ok()?;
                    Some((result["metric"].clone(), value))
                })
                .collect(),
        )
    }

    /// The value of a query that selects one series.
    fn single(&self, promql: &str) -> Option<f64> {
        match self.query(promql)?.as_slice() {
            [(_, value)] => Some(*value),
            _ => None,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child; SIGTERM lets it close its database.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encoding for a query-string value (everything but unreserved characters).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[test]
fn percent_encoding_escapes_promql() {
    assert_eq!(percent_encode("up{job=\"ppisd\"}"), "up%7Bjob%3D%22ppisd%22%7D");
}

#[test]
fn a_real_prometheus_scrapes_the_exact_count() {
    let _serial = KERNEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !kernel_available() {
        return;
    }
    let Some(binary) = prometheus_binary() else { return };
    let comm = "ppisd_prom";
    let fixture = Fixture::new("prometheus");
    let bundle = fixture.build("exact", &exact_source(comm));
    std::fs::copy(&bundle, fixture.dir.join("bundles/exact.ppb")).unwrap();
    let daemon = Daemon::start(&fixture);
    assert!(daemon.wait_for_log("loaded exact", Duration::from_secs(10)), "{}", daemon.log());

    let prometheus = Prometheus::start(&binary, &fixture.dir, &fixture.metrics_address());
    let up = wait_for(Duration::from_secs(30), || prometheus.single("up{job=\"ppisd\"}").filter(|up| *up == 1.0));
    assert!(up.is_some(), "the ppisd target never came up:\n{}\n{}", prometheus.log(), daemon.log());

    let calls = 250;
    run_exact_workload(comm, calls);
    let expected = f64::from(calls);
    let counted = wait_for(Duration::from_secs(20), || {
        prometheus.single("ppis_map_exact_calls_total").filter(|value| *value == expected)
    });
    let last = prometheus.query("ppis_map_exact_calls_total");
    assert_eq!(counted, Some(expected), "Prometheus has {last:?}\n{}", prometheus.log());
    let by_comm = prometheus.query(&format!("ppis_map_exact_by_comm_total{{key=\"{comm}\"}}")).unwrap_or_default();
    assert_eq!(by_comm.iter().map(|(_, value)| *value).collect::<Vec<_>>(), vec![expected], "{by_comm:?}");
    assert_eq!(by_comm[0].0["job"], "ppisd");
    assert_eq!(prometheus.single("ppis_probe_active{bundle=\"exact\",probe=\"probe0\"}"), Some(1.0));
    let events = prometheus.single("ppis_probe_events_total{bundle=\"exact\"}").unwrap_or(0.0);
    assert!(events >= expected, "{events}");

    drop(prometheus);
    let log = daemon.stop();
    assert!(log.contains("stopped: every probe detached"), "{log}");
}

/// The value of the one point of `name` (a sum or gauge) whose attributes include `attribute`
/// (key, string value), in one request.
fn otlp_value(request: &ExportMetricsServiceRequest, name: &str, attribute: Option<(&str, &str)>) -> Option<i64> {
    let metric = request
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics)
        .find(|metric| metric.name == name)?;
    let points = match metric.data.as_ref()? {
        metric::Data::Sum(sum) => {
            assert_eq!(sum.aggregation_temporality, AggregationTemporality::Cumulative as i32, "{name}");
            &sum.data_points
        }
        metric::Data::Gauge(gauge) => &gauge.data_points,
        _ => return None,
    };
    let point = points.iter().find(|point| {
        attribute.is_none_or(|(key, wanted)| {
            point.attributes.iter().any(|kv| {
                kv.key == key
                    && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()),
                        Some(any_value::Value::StringValue(text)) if text == wanted)
            })
        })
    })?;
    match point.value? {
        number_data_point::Value::AsInt(n) => Some(n),
        number_data_point::Value::AsDouble(_) => None,
    }
}

#[test]
fn the_daemon_pushes_exact_counts_over_otlp() {
    let _serial = KERNEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !kernel_available() {
        return;
    }
    let receiver = OtlpReceiver::start().unwrap();
    let comm = "ppisd_otlp";
    let otlp = format!("[otlp]\nendpoint = \"http://{}\"\nexport_interval_ms = 500\n", receiver.address());
    let fixture = Fixture::with_config("otlp", &otlp);
    let bundle = fixture.build("exact", &exact_source(comm));
    std::fs::copy(&bundle, fixture.dir.join("bundles/exact.ppb")).unwrap();
    let daemon = Daemon::start(&fixture);
    assert!(daemon.wait_for_log("loaded exact", Duration::from_secs(10)), "{}", daemon.log());
    assert!(daemon.log().contains(&format!("exporting OTLP to http://{}", receiver.address())), "{}", daemon.log());

    let calls = 200;
    run_exact_workload(comm, calls);
    let expected = i64::from(calls);
    let exported = wait_for(Duration::from_secs(10), || {
        let received = receiver.received();
        let latest = received.metrics.last()?;
        (otlp_value(latest, "ppis.map.exact.calls", None) == Some(expected)).then(|| latest.clone())
    });
    let received = receiver.received();
    let Some(latest) = exported else {
        panic!(
            "no export with calls = {expected}; last: {:?}, rejected: {:?}\n{}",
            received.metrics.last().map(|r| otlp_value(r, "ppis.map.exact.calls", None)),
            received.rejected,
            daemon.log()
        )
    };
    assert_eq!(otlp_value(&latest, "ppis.map.exact.by_comm", Some(("key", comm))), Some(expected));
    assert_eq!(otlp_value(&latest, "ppis.probe.active", Some(("bundle", "exact"))), Some(1));
    assert!(otlp_value(&latest, "ppis.probe.events", Some(("probe", "probe0"))).unwrap() >= expected);
    assert!(received.rejected.is_empty(), "{:?}", received.rejected);
    assert!(received.logs.is_empty(), "no events without emit");

    // Stopping sends the final totals before the maps go away.
    let exports_before_stop = receiver.received().metrics.len();
    let log = daemon.stop();
    assert!(log.contains("stopped: every probe detached") && !log.contains("OTLP export failed"), "{log}");
    let received = receiver.received();
    assert!(received.metrics.len() > exports_before_stop, "no final export");
    assert_eq!(otlp_value(received.metrics.last().unwrap(), "ppis.map.exact.calls", None), Some(expected));
}
