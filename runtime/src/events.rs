//! Records of `emit` and `print`: decoded by the manifest's schemas (no compiler needed) and
//! read from the ring buffer while the probes run, with the count of records lost to a full
//! buffer.
//!
//! A record is a little-endian `u32` event-type id followed by that type's fields at their
//! offsets (`ppis_manifest::EventType`). An `emit` becomes a JSON object
//! `{"event": NAME, "probe": ATTACH, FIELD: VALUE, ..}`, a `print` its formatted line.

use crate::RuntimeError;
use aya::maps::{Map, MapData, PerCpuArray, RingBuf};
use aya::Ebpf;
use ppis_manifest::{EventType, EventsInfo, FormatPiece, Manifest, ScalarType};
use serde_json::Value as JsonValue;
use std::collections::HashMap;

/// One decoded record.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// An `emit`: its name, the probe's attach point and the fields in record order.
    Emitted { name: String, probe: String, fields: Vec<(String, JsonValue)> },
    /// A `print`: its text, as formatted (a trailing newline only if the format had one).
    Printed(String),
}

impl Event {
    /// The text `ppisc run` writes for it: a JSON line, or the printed text.
    pub fn to_output(&self) -> String {
        match self {
            Event::Emitted { .. } => format!("{}\n", self.json_line()),
            Event::Printed(text) => text.clone(),
        }
    }

    /// An emitted event as one line of JSON, keys in order: `event`, `probe`, then the fields
    /// as the `emit` gave them (a JSON object built here, as `serde_json`'s map sorts keys).
    /// A printed line as `{"print": TEXT}`.
    pub fn json_line(&self) -> String {
        let quote = |text: &str| JsonValue::String(text.to_string()).to_string();
        match self {
            Event::Emitted { name, probe, fields } => {
                let mut line = format!("{{\"event\":{},\"probe\":{}", quote(name), quote(probe));
                for (field, value) in fields {
                    line.push_str(&format!(",{}:{value}", quote(field)));
                }
                line.push('}');
                line
            }
            Event::Printed(text) => format!("{{\"print\":{}}}", quote(text)),
        }
    }
}

/// Turns record bytes into events, by the schemas of one manifest.
#[derive(Clone, Debug)]
pub struct EventDecoder {
    types: HashMap<u32, EventType>,
    /// Each program's attach point as text, for the `probe` of emitted events.
    attach: HashMap<String, String>,
}

impl EventDecoder {
    /// The decoder of `manifest`'s events; `None` when the program sends none.
    pub fn new(manifest: &Manifest) -> Option<EventDecoder> {
        let info = manifest.events.as_ref()?;
        Some(EventDecoder {
            types: info.types.iter().map(|t| (t.id, t.clone())).collect(),
            attach: manifest.probes.iter().map(|p| (p.program.clone(), p.attach.to_string())).collect(),
        })
    }

    pub fn decode(&self, record: &[u8]) -> Result<Event, String> {
        let id_bytes: [u8; 4] = record
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("event record of {} bytes has no type id", record.len()))?;
        let id = u32::from_le_bytes(id_bytes);
        let ty = self.types.get(&id).ok_or_else(|| format!("event record with unknown type id {id}"))?;
        if record.len() < ty.size as usize {
            return Err(format!("event `{}` record of {} bytes, expected {}", ty.name, record.len(), ty.size));
        }
        let values: Vec<FieldValue> = ty
            .fields
            .iter()
            .map(|field| read_field(record, field.offset, field.ty).ok_or_else(|| bad_field(ty, &field.name)))
            .collect::<Result<_, _>>()?;
        match &ty.format {
            Some(pieces) => Ok(Event::Printed(format_line(pieces, &values))),
            None => {
                let probe = self.attach.get(&ty.program).cloned().unwrap_or_else(|| ty.program.clone());
                let fields = ty.fields.iter().zip(values).map(|(field, value)| (field.name.clone(), value.to_json()));
                Ok(Event::Emitted { name: ty.name.clone(), probe, fields: fields.collect() })
            }
        }
    }
}

fn bad_field(ty: &EventType, field: &str) -> String {
    format!("event `{}`: field `{field}` lies outside the record", ty.name)
}

/// A field's value as read from a record.
#[derive(Clone, Debug, PartialEq)]
enum FieldValue {
    Unsigned(u64),
    Signed(i64),
    Bool(bool),
    Str(String),
}

impl FieldValue {
    fn to_json(&self) -> JsonValue {
        match self {
            FieldValue::Unsigned(v) => JsonValue::from(*v),
            FieldValue::Signed(v) => JsonValue::from(*v),
            FieldValue::Bool(v) => JsonValue::Bool(*v),
            FieldValue::Str(s) => JsonValue::String(s.clone()),
        }
    }
}

/// The field of type `ty` at `offset`; `None` when it does not fit in the record or its type
/// cannot be a record field.
fn read_field(record: &[u8], offset: u32, ty: ScalarType) -> Option<FieldValue> {
    let start = offset as usize;
    match ty {
        ScalarType::Int { bytes, signed } => {
            let bytes = record.get(start..start.checked_add(bytes as usize)?)?;
            let mut word = [0u8; 8];
            word[..bytes.len()].copy_from_slice(bytes);
            let raw = u64::from_le_bytes(word);
            if signed {
                let shift = 64 - 8 * bytes.len() as u32;
                Some(FieldValue::Signed(((raw << shift) as i64) >> shift))
            } else {
                Some(FieldValue::Unsigned(raw))
            }
        }
        ScalarType::Bool => Some(FieldValue::Bool(*record.get(start)? != 0)),
        ScalarType::Str { len } => {
            let bytes = record.get(start..start.checked_add(len as usize)?)?;
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            Some(FieldValue::Str(String::from_utf8_lossy(&bytes[..end]).into_owned()))
        }
        // An `emit`ted `buf[N]`: its bytes as a hex string, as in map output.
        ScalarType::Buf { len } => {
            let bytes = record.get(start..start.checked_add(len as usize)?)?;
            Some(FieldValue::Str(crate::snapshot::hex_string(bytes)))
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// A `print` line: text pieces as they are, each conversion replaced by the next value.
fn format_line(pieces: &[FormatPiece], values: &[FieldValue]) -> String {
    let mut out = String::new();
    let mut values = values.iter();
    for piece in pieces {
        match piece {
            FormatPiece::Text { text } => out.push_str(text),
            FormatPiece::Conversion { conversion } => {
                let Some(value) = values.next() else { continue };
                let as_bits = |v: &FieldValue| match *v {
                    FieldValue::Unsigned(u) => u,
                    FieldValue::Signed(s) => s as u64,
                    FieldValue::Bool(b) => b as u64,
                    FieldValue::Str(_) => 0,
                };
                match (conversion, value) {
                    (_, FieldValue::Str(s)) => out.push_str(s),
                    ('d', FieldValue::Signed(v)) => out.push_str(&v.to_string()),
                    // An unsigned value under `%d` prints as C's would: its bits as signed.
                    ('d', v) => out.push_str(&(as_bits(v) as i64).to_string()),
                    ('x', v) => out.push_str(&format!("{:x}", as_bits(v))),
                    (_, v) => out.push_str(&as_bits(v).to_string()),
                }
            }
        }
    }
    out
}

/// The most records one [`EventStream::drain`] hands over.
pub const MAX_RECORDS_PER_DRAIN: usize = 1 << 16;

/// The ring buffer and drop counter of a loaded object, read while its probes run.
pub struct EventStream {
    ring: RingBuf<MapData>,
    drops: PerCpuArray<MapData, u64>,
    decoder: EventDecoder,
    /// Empties maps on `clear` records; `None` when no probe clears one.
    clearer: Option<crate::clear::MapClearer>,
}

impl EventStream {
    /// Takes the event maps out of `ebpf` (the programs keep using them); `None` when
    /// `manifest` declares no events.
    pub fn take(ebpf: &mut Ebpf, manifest: &Manifest) -> Result<Option<EventStream>, RuntimeError> {
        let (Some(info), Some(decoder)) = (manifest.events.as_ref(), EventDecoder::new(manifest)) else {
            return Ok(None);
        };
        let ring = take(ebpf, &info.ring_buffer)?;
        let drops = take(ebpf, &info.drop_counter)?;
        Self::from_maps(ring, drops, decoder, info).map(Some)
    }

    /// Lets `clear` records empty maps through `clearer`.
    pub fn set_clearer(&mut self, clearer: Option<crate::clear::MapClearer>) {
        self.clearer = clearer;
    }

    fn from_maps(ring: Map, drops: Map, decoder: EventDecoder, info: &EventsInfo) -> Result<EventStream, RuntimeError> {
        let ring = RingBuf::try_from(ring)
            .map_err(|error| RuntimeError::Map(format!("map {} is not a ring buffer: {error}", info.ring_buffer)))?;
        let drops = PerCpuArray::try_from(drops).map_err(|error| {
            RuntimeError::Map(format!("map {} is not a per-CPU array of u64: {error}", info.drop_counter))
        })?;
        Ok(EventStream { ring, drops, decoder, clearer: None })
    }

    /// Hands every record waiting in the ring buffer to `sink`, decoded, in order; returns
    /// how many. A record that does not decode is handed as an error (its bytes are gone).
    ///
    /// At most [`MAX_RECORDS_PER_DRAIN`] records per call: a probe that fires on the reader's
    /// own output (`print` on every `sys_enter`, say) refills the buffer as fast as it is
    /// read, and the reader must still get back to its clock and its stop flag. Call again
    /// while it returns the maximum to empty a buffer no probe writes to any more.
    pub fn drain(&mut self, sink: &mut dyn FnMut(Result<Event, String>)) -> usize {
        let mut count = 0;
        while count < MAX_RECORDS_PER_DRAIN {
            let Some(record) = self.ring.next() else { break };
            let event = self.decoder.decode(&record);
            // A `clear` record is an order to user space, not output.
            if let Ok(Event::Emitted { name, fields, .. }) = &event {
                if name == crate::clear::CLEAR_EVENT {
                    let index = fields
                        .iter()
                        .find(|(field, _)| field == crate::clear::CLEAR_EVENT_MAP_FIELD)
                        .and_then(|(_, value)| value.as_u64());
                    let cleared = match (&self.clearer, index) {
                        (Some(clearer), Some(index)) => clearer.clear(index as u32).map(|_| ()),
                        _ => Err("`clear` record without a map the runtime can clear".to_string()),
                    };
                    if let Err(problem) = cleared {
                        sink(Err(problem));
                    }
                    continue;
                }
            }
            sink(event);
            count += 1;
        }
        count
    }

    /// Records lost so far because the ring buffer was full, over all CPUs.
    pub fn dropped(&self) -> Result<u64, RuntimeError> {
        let values = self
            .drops
            .get(&0, 0)
            .map_err(|error| RuntimeError::Map(format!("cannot read the event drop counter: {error}")))?;
        Ok(values.iter().sum())
    }
}

/// Writes every waiting record to stdout (`ppisc run`'s output), flushing so each appears
/// as it arrives; a record that does not decode is reported on stderr.
pub fn write_to_stdout(stream: &mut EventStream) -> usize {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = stream.drain(&mut |event| match event {
        Ok(event) => {
            // A closed stdout (`| head`) must not stop the run: its maps still get read.
            let _ = out.write_all(event.to_output().as_bytes());
        }
        Err(problem) => eprintln!("warning: {problem}"),
    });
    if written > 0 {
        let _ = out.flush();
    }
    written
}

/// Says on stderr how many records the full ring buffer refused, if any.
pub fn report_drops(stream: &EventStream) {
    match stream.dropped() {
        Ok(0) => {}
        Ok(lost) => eprintln!(
            "warning: {lost} event{} lost: the ring buffer was full (print or emit less often)",
            if lost == 1 { "" } else { "s" }
        ),
        Err(error) => eprintln!("warning: {error}"),
    }
}

fn take(ebpf: &mut Ebpf, name: &str) -> Result<Map, RuntimeError> {
    ebpf.take_map(name).ok_or_else(|| RuntimeError::Map(format!("map {name} is not in the object")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppis_manifest::{Attach, EventField, ProbeInfo, MANIFEST_VERSION};

    fn manifest(types: Vec<EventType>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            budget_percent: 1.0,
            probes: vec![ProbeInfo {
                program: "probe0".into(),
                attach: Attach::Uprobe { path: "/bin/w".into(), symbol: "f".into() },
                rate_per_sec: None,
                line: 1,
                activation: None,
            }],
            maps: vec![],
            events: Some(EventsInfo { ring_buffer: "r".into(), drop_counter: "d".into(), types }),
        }
    }

    fn field(name: &str, offset: u32, ty: ScalarType) -> EventField {
        EventField { name: name.into(), offset, ty }
    }

    fn call_type() -> EventType {
        EventType {
            id: 7,
            name: "call".into(),
            program: "probe0".into(),
            size: 32,
            fields: vec![
                field("n", 8, ScalarType::Int { bytes: 8, signed: false }),
                field("pid", 4, ScalarType::Int { bytes: 4, signed: false }),
                field("delta", 16, ScalarType::Int { bytes: 2, signed: true }),
                field("ok", 18, ScalarType::Bool),
                field("who", 19, ScalarType::Str { len: 8 }),
            ],
            format: None,
        }
    }

    fn record(parts: &[(usize, &[u8])], size: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; size];
        for (offset, data) in parts {
            bytes[*offset..*offset + data.len()].copy_from_slice(data);
        }
        bytes
    }

    #[test]
    fn emitted_record_decodes_to_json_in_field_order() {
        let decoder = EventDecoder::new(&manifest(vec![call_type()])).unwrap();
        let bytes = record(
            &[
                (0, &7u32.to_le_bytes()),
                (4, &4242u32.to_le_bytes()),
                (8, &u64::MAX.to_le_bytes()),
                (16, &(-3i16).to_le_bytes()),
                (18, &[1]),
                (19, b"bash\0"),
            ],
            32,
        );
        let event = decoder.decode(&bytes).unwrap();
        assert_eq!(
            event.to_output(),
            "{\"event\":\"call\",\"probe\":\"uprobe:/bin/w:f\",\"n\":18446744073709551615,\"pid\":4242,\"delta\":-3,\"ok\":true,\"who\":\"bash\"}\n"
        );
    }

    #[test]
    fn print_record_formats_its_line() {
        let print = EventType {
            id: 0,
            name: "print".into(),
            program: "probe0".into(),
            size: 40,
            fields: vec![
                field("arg0", 8, ScalarType::Int { bytes: 8, signed: true }),
                field("arg1", 16, ScalarType::Int { bytes: 8, signed: false }),
                field("arg2", 24, ScalarType::Str { len: 16 }),
            ],
            format: Some(vec![
                FormatPiece::Text { text: "n=".into() },
                FormatPiece::Conversion { conversion: 'd' },
                FormatPiece::Text { text: " hex=".into() },
                FormatPiece::Conversion { conversion: 'x' },
                FormatPiece::Text { text: " 100% ".into() },
                FormatPiece::Conversion { conversion: 's' },
                FormatPiece::Text { text: "\n".into() },
            ]),
        };
        let decoder = EventDecoder::new(&manifest(vec![print])).unwrap();
        let bytes = record(&[(8, &(-5i64).to_le_bytes()), (16, &255u64.to_le_bytes()), (24, b"sh\0")], 40);
        assert_eq!(decoder.decode(&bytes).unwrap(), Event::Printed("n=-5 hex=ff 100% sh\n".into()));
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        let decoder = EventDecoder::new(&manifest(vec![call_type()])).unwrap();
        assert!(decoder.decode(&[7, 0]).unwrap_err().contains("no type id"));
        assert!(decoder.decode(&record(&[(0, &9u32.to_le_bytes())], 32)).unwrap_err().contains("unknown type id 9"));
        assert!(decoder
            .decode(&record(&[(0, &7u32.to_le_bytes())], 16))
            .unwrap_err()
            .contains("16 bytes, expected 32"));
        let mut short = call_type();
        short.size = 8;
        let decoder = EventDecoder::new(&manifest(vec![short])).unwrap();
        assert!(decoder.decode(&record(&[(0, &7u32.to_le_bytes())], 8)).unwrap_err().contains("outside the record"));
    }

    #[test]
    fn no_events_no_decoder() {
        let mut m = manifest(vec![]);
        m.events = None;
        assert!(EventDecoder::new(&m).is_none());
    }
}
