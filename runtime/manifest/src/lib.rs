//! The manifest: what the runtime must know about a compiled object to attach its programs
//! and to decode and print its maps. The compiler writes it, the runtime reads it.
//!
//! Boundary: plain data and its JSON form; no syscalls, no compiler types.
//! Invariant: layouts here are exactly what the generated code reads and writes.

pub mod helper_ids;
pub mod profile;

use serde::{Deserialize, Serialize};

/// Bumped whenever a field changes meaning.
pub const MANIFEST_VERSION: u32 = 1;

/// Name of the ELF section that carries the manifest as JSON.
pub const MANIFEST_SECTION: &str = ".ppis.manifest";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    /// Per-probe CPU overhead budget, percent.
    pub budget_percent: f64,
    pub probes: Vec<ProbeInfo>,
    pub maps: Vec<MapInfo>,
    /// What `emit` and `print` send, when the program has any: absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsInfo>,
}

/// The output of `emit` and `print`: one ring buffer of records, each a `u32` event-type id
/// (little-endian, at offset 0) followed by that type's fields at their offsets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventsInfo {
    /// Object name of the `BPF_MAP_TYPE_RINGBUF` map the records go to.
    pub ring_buffer: String,
    /// Object name of a per-CPU array with one `u64` (index 0): on each CPU, the records lost
    /// because the ring buffer was full.
    pub drop_counter: String,
    pub types: Vec<EventType>,
}

/// One kind of record: an `emit NAME` or a `print` of one probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventType {
    /// The id at the start of its records.
    pub id: u32,
    /// The `emit`'s name, or `print`.
    pub name: String,
    /// The program (`ProbeInfo::program`) that sends it.
    pub program: String,
    /// Size of a record in bytes.
    pub size: u32,
    pub fields: Vec<EventField>,
    /// For `print`: the line to print, text and conversions of the fields in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Vec<FormatPiece>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventField {
    pub name: String,
    pub offset: u32,
    pub ty: ScalarType,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "piece", rename_all = "lowercase")]
pub enum FormatPiece {
    Text {
        text: String,
    },
    /// The next field, as `%d` (signed), `%u` (unsigned), `%x` (hexadecimal) or `%s`.
    Conversion {
        conversion: char,
    },
}

/// The object-file name of the `BPF_MAP_TYPE_STACK_TRACE` map behind every stack key field of
/// `space` and `depth` (one map per pair, shared by all maps with such keys): `u32` stack id ->
/// `depth` little-endian `u64` instruction pointers, innermost first, unused frames 0. The `.`
/// keeps it apart from every source map name (identifiers have no `.`).
pub fn stack_map_name(space: StackSpace, depth: u8) -> String {
    match space {
        StackSpace::User => format!("ustack.{depth}"),
        StackSpace::Kernel => format!("kstack.{depth}"),
    }
}

/// Which stack a stack key records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StackSpace {
    /// The user stack (`ustack`): symbolised in the address space of the key's process.
    User,
    /// The kernel stack (`kstack`): symbolised with the kernel's symbols.
    Kernel,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeInfo {
    /// Program (function symbol) name in the object.
    pub program: String,
    pub attach: Attach,
    /// Declared event rate, per second.
    pub rate_per_sec: Option<u64>,
    /// 1-based source line of the probe, for messages.
    pub line: u32,
    /// A dormant probe's rule (`activate when anomaly(..) > P for Ns`): loaded and verified
    /// but attached only while the activator decides so. Absent from the JSON when `None`, so
    /// manifests of always-on probes are byte-identical to those written before this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
}

/// When a dormant probe is worth attaching (`docs/activator.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activation {
    /// The sentinel aggregation: a map of the same bundle, or `bundle::map` in another one.
    pub signal: String,
    /// P(anomaly) that attaches the probe, in (0, 1).
    pub threshold: f64,
    /// How long P(anomaly) must stay at or above the threshold first, seconds (> 0).
    pub for_seconds: f64,
}

/// Where a probe attaches. `RawTracepoint`: a raw tracepoint by name (`sys_enter`), program
/// type BPF_PROG_TYPE_RAW_TRACEPOINT. `Profile`: a software cpu-clock perf event in frequency
/// mode, `hz` samples a second on every online CPU; `Interval`: the same event firing every
/// `period_ms` on one CPU (the first online); both BPF_PROG_TYPE_PERF_EVENT. `Begin`/`End`:
/// raw tracepoint programs reading no arguments, run once with BPF_PROG_TEST_RUN before the
/// other probes attach / after they are detached and before the maps are read. `Usdt`: a
/// USDT probe site, a uprobe at the instruction at virtual `address` of `path`, which the
/// runtime checks against the file's `.note.stapsdt` before attaching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Attach {
    Tracepoint { category: String, name: String },
    Uprobe { path: String, symbol: String },
    Uretprobe { path: String, symbol: String },
    Usdt { path: String, provider: String, name: String, address: u64 },
    RawTracepoint { name: String },
    Profile { hz: u64 },
    Interval { period_ms: u64 },
    Begin,
    End,
}

impl Attach {
    /// `begin` or `end`: run once by the runtime, never attached to an event.
    pub fn runs_once(&self) -> bool {
        matches!(self, Attach::Begin | Attach::End)
    }
}

impl std::fmt::Display for Attach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attach::Tracepoint { category, name } => write!(f, "tracepoint:{category}:{name}"),
            Attach::Uprobe { path, symbol } => write!(f, "uprobe:{path}:{symbol}"),
            Attach::Uretprobe { path, symbol } => write!(f, "uretprobe:{path}:{symbol}"),
            Attach::Usdt { path, provider, name, .. } => write!(f, "usdt:{path}:{provider}:{name}"),
            Attach::RawTracepoint { name } => write!(f, "rawtracepoint:{name}"),
            Attach::Profile { hz } => write!(f, "profile:hz:{hz}"),
            Attach::Interval { period_ms } => write!(f, "interval:ms:{period_ms}"),
            Attach::Begin => write!(f, "begin"),
            Attach::End => write!(f, "end"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapInfo {
    /// The name in the source.
    pub name: String,
    /// The map's name in the object file.
    pub object_name: String,
    pub kind: MapKind,
    /// True for per-CPU kernel maps: each CPU holds its own value, summed or merged on read.
    pub per_cpu: bool,
    /// The user's key fields, in order, at their byte offsets in the kernel key. Empty for
    /// an unkeyed map (then the kernel map is an array and the key is the `u32` index 0,
    /// or, for histograms, the bucket index).
    pub key: Vec<Field>,
    /// Size of the kernel key in bytes.
    pub key_size: u32,
    /// Histograms of keyed maps: byte offset of the `u64` bucket index in the kernel key.
    pub bucket_offset: Option<u32>,
    /// Size of the kernel value in bytes.
    pub value_size: u32,
    /// How the value bytes are laid out and read.
    pub value: ValueLayout,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MapKind {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// `stats`: per CPU the sum and count of the recorded values (`SumCount`), read as count,
    /// total and average.
    Stats,
    /// Power-of-two histogram: bucket 0 counts negative values, 1 zero, `2 + k` the values
    /// in `[2^k, 2^(k+1))`.
    Hist,
    /// Linear histogram: bucket 0 below `lo`, `1 + i` in `[lo + i*step, lo + (i+1)*step)`,
    /// the last one at or above `hi`.
    Lhist {
        lo: i64,
        hi: i64,
        step: i64,
    },
    /// Plain key/value map. With `per_cpu` (`percpu_hash`, `lru_percpu_hash`) its values are
    /// integers, summed over the CPUs when read.
    Hash,
    /// `array[len]` / `percpu_array[len]`: values at the `u32` indices `0..len` (the one key
    /// field); a per-CPU array's values are integers, summed over the CPUs when read.
    Array {
        len: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub offset: u32,
    pub ty: ScalarType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ScalarType {
    Int {
        bytes: u8,
        signed: bool,
    },
    Bool,
    /// NUL-padded string of `len` bytes.
    Str {
        len: u32,
    },
    /// A stack key (`ustack`/`kstack`), 8 bytes: the signed `i32` stack id in the stack map
    /// [`stack_map_name`]`(space, depth)` (negative: the kernel could not record the stack, the
    /// value is `-errno`) and, at +4, the `u32` process id of a user stack (0 for kernel
    /// stacks), the address space its frames belong to.
    Stack {
        space: StackSpace,
        depth: u8,
    },
    /// `buf[N]`: `len` raw bytes, printed hex-escaped (`\\x01\\x02`), in JSON a hex string.
    Buf {
        len: u32,
    },
}

/// Value layouts. All integers are little-endian `u64` words at 8-byte offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "layout", rename_all = "snake_case")]
pub enum ValueLayout {
    /// One integer at offset 0 (count, sum, histogram bucket counts, hash values). For a
    /// hash map `ty` is the declared value type; for aggregations it is `u64` or `i64`.
    Scalar { ty: ScalarType },
    /// `min`/`max`: value at 0, at 8 a word that is non-zero once this CPU saw a value.
    Extremum { signed: bool },
    /// `avg`: sum at 0, count at 8.
    SumCount { signed: bool },
}

impl Manifest {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serialises")
    }
    pub fn from_json(text: &str) -> Result<Manifest, String> {
        let m: Manifest = serde_json::from_str(text).map_err(|e| format!("bad manifest: {e}"))?;
        if m.version != MANIFEST_VERSION {
            return Err(format!("manifest version {} is not supported (expected {MANIFEST_VERSION})", m.version));
        }
        Ok(m)
    }
    pub fn map(&self, name: &str) -> Option<&MapInfo> {
        self.maps.iter().find(|m| m.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attach_kind_round_trips_through_json_and_displays_as_in_source() {
        let cases = [
            (
                Attach::RawTracepoint { name: "sys_enter".into() },
                r#"{"type":"rawtracepoint","name":"sys_enter"}"#,
                "rawtracepoint:sys_enter",
            ),
            (Attach::Profile { hz: 99 }, r#"{"type":"profile","hz":99}"#, "profile:hz:99"),
            (Attach::Interval { period_ms: 100 }, r#"{"type":"interval","period_ms":100}"#, "interval:ms:100"),
            (Attach::Begin, r#"{"type":"begin"}"#, "begin"),
            (Attach::End, r#"{"type":"end"}"#, "end"),
        ];
        for (attach, json, shown) in cases {
            assert_eq!(serde_json::to_string(&attach).unwrap(), json);
            assert_eq!(serde_json::from_str::<Attach>(json).unwrap(), attach);
            assert_eq!(attach.to_string(), shown);
            assert_eq!(attach.runs_once(), matches!(attach, Attach::Begin | Attach::End));
        }
    }

    #[test]
    fn json_round_trip_and_version_check() {
        let m = Manifest {
            version: MANIFEST_VERSION,
            budget_percent: 0.5,
            probes: vec![ProbeInfo {
                program: "probe0".into(),
                attach: Attach::Uprobe { path: "/bin/x".into(), symbol: "f".into() },
                rate_per_sec: Some(500),
                line: 3,
                activation: None,
            }],
            maps: vec![MapInfo {
                name: "lat".into(),
                object_name: "lat".into(),
                kind: MapKind::Hist,
                per_cpu: true,
                key: vec![Field { offset: 0, ty: ScalarType::Int { bytes: 8, signed: false } }],
                key_size: 16,
                bucket_offset: Some(8),
                value_size: 8,
                value: ValueLayout::Scalar { ty: ScalarType::Int { bytes: 8, signed: false } },
            }],
            events: None,
        };
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
        let bumped = m.to_json().replace("\"version\": 1", "\"version\": 99");
        assert!(Manifest::from_json(&bumped).unwrap_err().contains("version 99"));
    }
}
