//! Forwarding of `emit`/`print` records: each loaded bundle's ring buffer is drained every
//! interval; every event is appended as a JSON line to the configured event log and, with
//! OTLP configured, exported as a log record. Records a full ring buffer refused are logged.
//!
//! Boundary: formatting is pure ([`log_line`], [`probe_event`]); [`EventLog`] only appends.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use ppis_runtime::events::Event;
use ppis_runtime::Value;
use serde_json::Value as JsonValue;

use crate::otlp::ProbeEvent;

/// The event log's line for `event` of `bundle`: the event's JSON object with `"bundle"`
/// first, e.g. `{"bundle":"b","event":"call","probe":"uprobe:/bin/x:f","n":1}`.
pub fn log_line(bundle: &str, event: &Event) -> String {
    let json = event.json_line();
    let bundle = JsonValue::String(bundle.to_string());
    // `json_line` always starts an object with `{"`: put the bundle before its first key.
    format!("{{\"bundle\":{bundle},{}", json.strip_prefix('{').unwrap_or(&json))
}

/// The OTLP log record's content for `event`: the event name (or the printed line) and the
/// fields as typed values.
pub fn probe_event(bundle: &str, event: &Event, time: SystemTime) -> ProbeEvent {
    match event {
        Event::Emitted { name, probe, fields } => {
            let mut values = vec![("event".to_string(), Value::Str(name.clone()))];
            values.extend(fields.iter().map(|(field, value)| (field.clone(), value_of(value))));
            ProbeEvent { bundle: bundle.to_string(), probe: probe.clone(), time, fields: values }
        }
        Event::Printed(text) => ProbeEvent {
            bundle: bundle.to_string(),
            probe: String::new(),
            time,
            fields: vec![("print".to_string(), Value::Str(text.trim_end_matches('\n').to_string()))],
        },
    }
}

/// A decoded field as a ppis value: integers as they were sent, strings and bools alike.
fn value_of(value: &JsonValue) -> Value {
    match value {
        JsonValue::Bool(flag) => Value::Bool(*flag),
        JsonValue::Number(number) => match (number.as_u64(), number.as_i64()) {
            (Some(n), _) => Value::Uint(n),
            (None, Some(n)) => Value::Int(n),
            _ => Value::Str(number.to_string()),
        },
        JsonValue::String(text) => Value::Str(text.clone()),
        other => Value::Str(other.to_string()),
    }
}

/// The configured event log, appended to (created if missing).
pub struct EventLog {
    file: File,
}

impl EventLog {
    pub fn open(path: &Path) -> Result<EventLog, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| format!("cannot open the event log {}: {error}", path.display()))?;
        Ok(EventLog { file })
    }

    /// Appends the lines and flushes, so a reader sees whole lines as soon as they arrive.
    pub fn append(&mut self, lines: &[String]) -> Result<(), String> {
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        self.file.write_all(text.as_bytes()).and_then(|()| self.file.flush()).map_err(|error| error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Event {
        Event::Emitted {
            name: "call".into(),
            probe: "uprobe:/bin/x:f".into(),
            fields: vec![("n".into(), JsonValue::from(3u64)), ("d".into(), JsonValue::from(-2i64))],
        }
    }

    #[test]
    fn log_lines_put_the_bundle_first() {
        assert_eq!(
            log_line("b", &call()),
            "{\"bundle\":\"b\",\"event\":\"call\",\"probe\":\"uprobe:/bin/x:f\",\"n\":3,\"d\":-2}"
        );
        assert_eq!(log_line("b", &Event::Printed("n=1\n".into())), "{\"bundle\":\"b\",\"print\":\"n=1\\n\"}");
    }

    #[test]
    fn otlp_events_keep_types_and_order() {
        let at = SystemTime::UNIX_EPOCH;
        let event = probe_event("b", &call(), at);
        assert_eq!(event.probe, "uprobe:/bin/x:f");
        assert_eq!(
            event.fields,
            vec![
                ("event".to_string(), Value::Str("call".into())),
                ("n".to_string(), Value::Uint(3)),
                ("d".to_string(), Value::Int(-2)),
            ]
        );
        let printed = probe_event("b", &Event::Printed("n=1\n".into()), at);
        assert_eq!(printed.fields, vec![("print".to_string(), Value::Str("n=1".into()))]);
    }
}
