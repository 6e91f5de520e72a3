//! The manifest: what the runtime must know about a compiled object to attach its programs
//! and to decode and print its maps. The compiler writes it, the runtime reads it.
//!
//! Boundary: plain data and its JSON form; no syscalls, no compiler types.
//! Invariant: layouts here are exactly what the generated code reads and writes.

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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Attach {
    Tracepoint { category: String, name: String },
    Uprobe { path: String, symbol: String },
    Uretprobe { path: String, symbol: String },
}

impl std::fmt::Display for Attach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attach::Tracepoint { category, name } => write!(f, "tracepoint:{category}:{name}"),
            Attach::Uprobe { path, symbol } => write!(f, "uprobe:{path}:{symbol}"),
            Attach::Uretprobe { path, symbol } => write!(f, "uretprobe:{path}:{symbol}"),
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
    /// Plain key/value map.
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
    fn json_round_trip_and_version_check() {
        let m = Manifest {
            version: MANIFEST_VERSION,
            budget_percent: 0.5,
            probes: vec![ProbeInfo {
                program: "probe0".into(),
                attach: Attach::Uprobe { path: "/bin/x".into(), symbol: "f".into() },
                rate_per_sec: Some(500),
                line: 3,
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
        };
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
        let bumped = m.to_json().replace("\"version\": 1", "\"version\": 99");
        assert!(Manifest::from_json(&bumped).unwrap_err().contains("version 99"));
    }
}
