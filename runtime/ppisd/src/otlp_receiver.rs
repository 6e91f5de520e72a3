//! A minimal OTLP/HTTP receiver: accepts `POST /v1/metrics` and `POST /v1/logs` with protobuf
//! bodies, decodes them with the official messages and keeps them. It is how the tests (and a
//! curious operator) see exactly what ppisd exports, without running a collector.
//!
//! Boundary: loopback test tool, one request per connection, no TLS, no gzip; anything else
//! is answered with an HTTP error and recorded in [`Received::rejected`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;

use crate::otlp::{LOGS_PATH, METRICS_PATH};

/// Larger bodies are refused (413): nothing ppisd sends in a test comes near.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Everything received so far, in arrival order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Received {
    pub metrics: Vec<ExportMetricsServiceRequest>,
    pub logs: Vec<ExportLogsServiceRequest>,
    /// The paths of the accepted requests, in order.
    pub paths: Vec<String>,
    /// Requests that were answered with an error, and why.
    pub rejected: Vec<String>,
}

/// How to answer valid requests (tests use the failure modes).
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Success,
    Status(u16),
    Partial { rejected: i64, message: String },
}

#[derive(Debug)]
struct Shared {
    received: Mutex<Received>,
    answer: Mutex<Answer>,
    stop: AtomicBool,
}

/// A running receiver on a loopback port; stops when dropped.
pub struct OtlpReceiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Listens on a free loopback port.
    pub fn start() -> std::io::Result<OtlpReceiver> {
        OtlpReceiver::start_on("127.0.0.1:0")
    }

    /// Listens on `address` (e.g. `127.0.0.1:4318`).
    pub fn start_on(address: &str) -> std::io::Result<OtlpReceiver> {
        let listener = TcpListener::bind(address)?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            received: Mutex::new(Received::default()),
            answer: Mutex::new(Answer::Success),
            stop: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new().name("otlp-receiver".into()).spawn(move || {
            for stream in listener.incoming() {
                if thread_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    let _ = handle(stream, &thread_shared);
                }
            }
        })?;
        Ok(OtlpReceiver { address, shared, thread: Some(thread) })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A copy of everything received so far.
    pub fn received(&self) -> Received {
        lock(&self.shared.received).clone()
    }

    /// Answer further valid requests with this HTTP status (and an error text) instead of 200.
    pub fn respond_with_status(&self, status: u16) {
        *lock(&self.shared.answer) = Answer::Status(status);
    }

    /// Answer further valid requests with 200 and a partial-success body.
    pub fn respond_with_partial_success(&self, rejected: i64, message: &str) {
        *lock(&self.shared.answer) = Answer::Partial { rejected, message: message.to_string() };
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn handle(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = None;
    let mut content_type = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            match name.as_str() {
                "content-length" => content_length = value.parse::<usize>().ok(),
                "content-type" => content_type = value.to_ascii_lowercase(),
                _ => {}
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("").to_string());
    let reject = |status: u16, reason: String| {
        lock(&shared.received).rejected.push(format!("{method} {path}: {reason}"));
        (status, reason.into_bytes())
    };
    let (status, body) = if method != "POST" || (path != METRICS_PATH && path != LOGS_PATH) {
        reject(404, "only POST /v1/metrics and /v1/logs are served".into())
    } else if content_type != "application/x-protobuf" {
        reject(415, format!("content type `{content_type}` is not application/x-protobuf"))
    } else {
        match content_length {
            None => reject(411, "no Content-Length".into()),
            Some(length) if length > MAX_BODY_BYTES => reject(413, format!("{length} bytes is too large")),
            Some(length) => {
                let mut body = vec![0; length];
                reader.read_exact(&mut body)?;
                accept(&path, &body, shared).unwrap_or_else(|reason| reject(400, reason))
            }
        }
    };
    let mut stream = stream;
    let content_type = if status == 200 { "application/x-protobuf" } else { "text/plain" };
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        if status == 200 { "OK" } else { "Error" },
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.flush()
}

/// Decodes a valid body, records it and builds the answer.
fn accept(path: &str, body: &[u8], shared: &Shared) -> Result<(u16, Vec<u8>), String> {
    let answer = lock(&shared.answer).clone();
    if path == METRICS_PATH {
        let request = ExportMetricsServiceRequest::decode(body)
            .map_err(|error| format!("not an ExportMetricsServiceRequest: {error}"))?;
        let mut received = lock(&shared.received);
        if answer == Answer::Success {
            received.metrics.push(request);
            received.paths.push(path.to_string());
        }
    } else {
        let request = ExportLogsServiceRequest::decode(body)
            .map_err(|error| format!("not an ExportLogsServiceRequest: {error}"))?;
        let mut received = lock(&shared.received);
        if answer == Answer::Success {
            received.logs.push(request);
            received.paths.push(path.to_string());
        }
    }
    Ok(match answer {
        Answer::Success if path == METRICS_PATH => (200, ExportMetricsServiceResponse::default().encode_to_vec()),
        Answer::Success => (200, ExportLogsServiceResponse::default().encode_to_vec()),
        Answer::Status(status) => (status, format!("configured to fail with {status}").into_bytes()),
        Answer::Partial { rejected, message } if path == METRICS_PATH => {
            let partial = ExportMetricsPartialSuccess { rejected_data_points: rejected, error_message: message };
            (200, ExportMetricsServiceResponse { partial_success: Some(partial) }.encode_to_vec())
        }
        Answer::Partial { rejected, message } => {
            let partial = ExportLogsPartialSuccess { rejected_log_records: rejected, error_message: message };
            (200, ExportLogsServiceResponse { partial_success: Some(partial) }.encode_to_vec())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_request(address: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.write_all(request).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn malformed_requests_are_refused_and_recorded() {
        let receiver = OtlpReceiver::start().unwrap();
        let address = receiver.address();
        assert!(raw_request(address, b"GET /v1/metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let json = b"POST /v1/metrics HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert!(raw_request(address, json).starts_with("HTTP/1.1 415"));
        let garbage =
            b"POST /v1/logs HTTP/1.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: 3\r\n\r\n\xff\xff\xff";
        assert!(raw_request(address, garbage).starts_with("HTTP/1.1 400"));
        let received = receiver.received();
        assert!(received.metrics.is_empty() && received.logs.is_empty());
        assert_eq!(received.rejected.len(), 3, "{:?}", received.rejected);
        assert!(received.rejected[2].contains("not an ExportLogsServiceRequest"), "{:?}", received.rejected);
    }
}
