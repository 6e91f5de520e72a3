//! KPI feeds (`[[feed]]` in the config): extra signals for the activator's posterior, read
//! once per tick: a Prometheus instant query, a number in a file, or a number in a JSON
//! document fetched over HTTP (found with a JSON pointer).
//!
//! Boundary: plain HTTP/1.0 GETs on `std::net` with a timeout (a slow feed delays one tick
//! by at most its timeout); https is refused like the OTLP endpoint's.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value as Json;

/// What a feed reads.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedSource {
    /// `GET {url}/api/v1/query?query=...`: the first sample of the result.
    Prometheus { url: HttpUrl, query: String },
    /// A decimal number, the whole file (surrounding white space ignored).
    File { path: PathBuf },
    /// A JSON document; `pointer` (RFC 6901) names a number or a numeric string in it.
    Http { url: HttpUrl, pointer: String },
}

/// One `[[feed]]`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedConfig {
    /// The signal's name (`feed:NAME` to the engine).
    pub name: String,
    pub source: FeedSource,
    /// Whether a higher value is the bad direction (latency, errors) or a lower one (orders).
    pub higher_is_bad: bool,
    /// Dormant probes that watch this feed: `bundle` (all its dormant probes) or
    /// `bundle/program`; empty: every dormant probe.
    pub probes: Vec<String>,
    pub timeout: Duration,
}

impl FeedConfig {
    pub fn applies_to(&self, bundle: &str, program: &str) -> bool {
        self.probes.is_empty()
            || self.probes.iter().any(|selector| selector == bundle || *selector == format!("{bundle}/{program}"))
    }
}

/// A plain-HTTP URL: host, port and the path with its query.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path_and_query: String,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let rest = match text.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!("https is not supported in `{text}`: use plain http on the host"))
            }
            _ => return Err(format!("`{text}` is not a URL like http://127.0.0.1:9090")),
        };
        let (authority, path) = rest.find('/').map_or((rest, "/"), |slash| rest.split_at(slash));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                (host, port.parse::<u16>().ok().filter(|port| *port > 0).ok_or_else(|| format!("`{text}`: bad port"))?)
            }
            None => (authority, 80),
        };
        if host.is_empty() || host.contains(['@', ' ', '[', ']']) {
            return Err(format!("`{text}` has no usable host"));
        }
        if path.contains([' ', '#']) {
            return Err(format!("`{text}`: the path may not hold spaces or a fragment"));
        }
        Ok(HttpUrl { host: host.to_string(), port, path_and_query: path.to_string() })
    }
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
pub fn encode_query_value(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// GETs `path_and_query` from `url`'s server; the body of a 200 answer.
pub fn http_get(url: &HttpUrl, path_and_query: &str, timeout: Duration) -> Result<String, String> {
    let address = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve {}: {error}", url.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", url.host))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|error| error.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|error| error.to_string())?;
    // HTTP/1.0: the server answers without chunked encoding and closes the connection.
    let request =
        format!("GET {path_and_query} HTTP/1.0\r\nHost: {}:{}\r\nAccept: application/json\r\n\r\n", url.host, url.port);
    stream.write_all(request.as_bytes()).map_err(|error| format!("cannot send to {address}: {error}"))?;
    let mut response = Vec::new();
    // A feed's answer is a few numbers; more than 1 MiB is not a feed.
    stream.take(1 << 20).read_to_end(&mut response).map_err(|error| format!("cannot read from {address}: {error}"))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("{address}: malformed HTTP answer"))?;
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{address} answered `{status}`"));
    }
    Ok(body.to_string())
}

/// A JSON number, or a string holding one (Prometheus sends sample values as strings).
fn json_number(value: &Json) -> Option<f64> {
    match value {
        Json::Number(number) => number.as_f64(),
        Json::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// The value of a Prometheus instant-query answer: the first sample of a vector or scalar
/// result; `None` for an empty vector (the series does not exist right now).
pub fn prometheus_value(body: &str) -> Result<Option<f64>, String> {
    let answer: Json = serde_json::from_str(body).map_err(|error| format!("not JSON: {error}"))?;
    if answer["status"] != "success" {
        return Err(format!("query failed: {}", answer["error"].as_str().unwrap_or("no error message")));
    }
    let data = &answer["data"];
    let sample = match data["resultType"].as_str() {
        Some("vector") => match data["result"].as_array() {
            Some(result) if result.is_empty() => return Ok(None),
            Some(result) => &result[0]["value"],
            None => return Err("vector result is not a list".to_string()),
        },
        Some("scalar") => &data["result"],
        other => return Err(format!("result type {other:?} is not a vector or scalar")),
    };
    let value = json_number(&sample[1]).ok_or_else(|| format!("sample {sample} has no numeric value"))?;
    // NaN and infinities are what PromQL says for 0/0 and x/0: no observation this tick.
    Ok(value.is_finite().then_some(value))
}

/// A feed and its last error (so that a failing feed is logged once, not every tick).
pub struct Feed {
    pub config: FeedConfig,
    pub last_error: Option<String>,
}

impl Feed {
    pub fn new(config: FeedConfig) -> Feed {
        Feed { config, last_error: None }
    }

    /// The engine's name of the signal.
    pub fn signal(&self) -> String {
        format!("feed:{}", self.config.name)
    }

    /// This tick's value; `Ok(None)` when the source has none right now.
    pub fn read(&self) -> Result<Option<f64>, String> {
        let timeout = self.config.timeout;
        let value = match &self.config.source {
            FeedSource::Prometheus { url, query } => {
                let base = url.path_and_query.trim_end_matches('/');
                let path = format!("{base}/api/v1/query?query={}", encode_query_value(query));
                return prometheus_value(&http_get(url, &path, timeout)?);
            }
            FeedSource::File { path } => {
                let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
                text.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{}: `{}` is not a number", path.display(), text.trim()))?
            }
            FeedSource::Http { url, pointer } => {
                let body = http_get(url, &url.path_and_query, timeout)?;
                let document: Json = serde_json::from_str(&body).map_err(|error| format!("not JSON: {error}"))?;
                let found = document.pointer(pointer).ok_or_else(|| format!("no value at JSON pointer `{pointer}`"))?;
                json_number(found).ok_or_else(|| format!("the value at `{pointer}` is not a number: {found}"))?
            }
        };
        if value.is_finite() {
            Ok(Some(value))
        } else {
            Err(format!("value {value} is not finite"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_https_is_refused() {
        let url = HttpUrl::parse("http://127.0.0.1:9090/prom").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.path_and_query.as_str()), ("127.0.0.1", 9090, "/prom"));
        assert_eq!(HttpUrl::parse("http://svc/v1?x=1").unwrap().path_and_query, "/v1?x=1");
        assert_eq!(HttpUrl::parse("http://svc").unwrap().port, 80);
        assert!(HttpUrl::parse("https://svc").unwrap_err().contains("https"));
        assert!(HttpUrl::parse("svc:80").is_err());
        assert!(HttpUrl::parse("http://svc:0/").is_err());
    }

    #[test]
    fn prometheus_answers_are_read() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"42.5"]}]}}"#;
        assert_eq!(prometheus_value(vector), Ok(Some(42.5)));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(prometheus_value(empty), Ok(None));
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1.0,"NaN"]}}"#;
        assert_eq!(prometheus_value(scalar), Ok(None));
        let error = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(prometheus_value(error).unwrap_err().contains("parse error"));
        assert!(prometheus_value("<html>").is_err());
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query_value("sum(rate(x{a=\"b\"}[1m]))"), "sum%28rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29%29");
    }

    #[test]
    fn file_and_http_feeds_read_numbers() {
        let dir = std::env::temp_dir().join(format!("ppisd-feed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("value");
        std::fs::write(&path, " 17.25\n").unwrap();
        let feed = |source| {
            Feed::new(FeedConfig {
                name: "f".into(),
                source,
                higher_is_bad: true,
                probes: vec![],
                timeout: Duration::from_secs(2),
            })
        };
        assert_eq!(feed(FeedSource::File { path: path.clone() }).read(), Ok(Some(17.25)));
        std::fs::write(&path, "many").unwrap();
        assert!(feed(FeedSource::File { path }).read().unwrap_err().contains("not a number"));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for body in [r#"{"shop":{"orders":[3,"12.5"]}}"#, r#"{"shop":{}}"#] {
                let (mut stream, _) = listener.accept().unwrap();
                // The whole request, so that closing does not reset the connection.
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                    request.push(byte[0]);
                }
                write!(stream, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
            }
        });
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/stats")).unwrap();
        let http = feed(FeedSource::Http { url, pointer: "/shop/orders/1".into() });
        assert_eq!(http.read(), Ok(Some(12.5)));
        assert!(http.read().unwrap_err().contains("no value at JSON pointer"));
        server.join().unwrap();
        assert!(FeedConfig { probes: vec!["deep/probe1".into()], ..http.config.clone() }.applies_to("deep", "probe1"));
        assert!(!FeedConfig { probes: vec!["deep".into()], ..http.config }.applies_to("other", "probe1"));
    }
}
