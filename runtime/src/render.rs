//! Printing a [`Snapshot`]: bpftrace-style text for people, one JSON document for programs.
//!
//! Boundary: pure formatting; the snapshot is already decoded and in display order.

use ppis_manifest::{Manifest, MapKind};
use serde_json::{json, Map as JsonObject, Number, Value as Json};

use crate::snapshot::{Bucket, KeyPart, MapValue, Snapshot, Value};

/// Width of a full histogram bar, as in bpftrace.
const BAR_WIDTH: usize = 52;

/// bpftrace-style text: `@name[key]: value` lines sorted by value, histograms as bars, a
/// blank line after each map. Maps without any recorded value are left out, as bpftrace
/// leaves out maps that were never written.
pub fn render_text(snapshot: &Snapshot, manifest: &Manifest) -> String {
    let mut out = String::new();
    for (name, value) in &snapshot.maps {
        let kind = manifest.map(name).map_or(MapKind::Hist, |info| info.kind);
        match value {
            MapValue::Scalar(None) => {}
            MapValue::Scalar(Some(value)) => out.push_str(&format!("@{name}: {value}\n\n")),
            MapValue::Keyed(rows) if rows.is_empty() => {}
            MapValue::Keyed(rows) => {
                for (key, value) in rows {
                    out.push_str(&format!("@{name}[{}]: {value}\n", key_text(key)));
                }
                out.push('\n');
            }
            MapValue::Hist(buckets) => {
                if buckets.iter().any(|bucket| bucket.count > 0) {
                    out.push_str(&format!("@{name}:\n{}\n", hist_text(&kind, buckets)));
                }
            }
            MapValue::KeyedHist(rows) => {
                for (key, buckets) in rows {
                    out.push_str(&format!("@{name}[{}]:\n{}\n", key_text(key), hist_text(&kind, buckets)));
                }
            }
        }
    }
    out
}

fn key_text(key: &[KeyPart]) -> String {
    key.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The bars of one histogram, from its first to its last non-empty bucket.
fn hist_text(kind: &MapKind, buckets: &[Bucket]) -> String {
    let used = |bucket: &&Bucket| bucket.count > 0;
    let (Some(first), Some(last)) = (buckets.iter().position(|b| used(&b)), buckets.iter().rposition(|b| used(&b)))
    else {
        return String::new();
    };
    let max_count = buckets.iter().map(|bucket| bucket.count).max().unwrap_or(1).max(1);
    let mut out = String::new();
    for bucket in &buckets[first..=last] {
        let bar_len = (bucket.count as f64 / max_count as f64 * BAR_WIDTH as f64) as usize;
        out.push_str(&format!(
            "{:<16}{:>8} |{:<BAR_WIDTH$}|\n",
            bucket_label(kind, bucket),
            bucket.count,
            "@".repeat(bar_len)
        ));
    }
    out
}

/// bpftrace's bucket labels: `(..., 0)`, `[0]`, `[1]`, `[2, 4)`, `[1K, 2K)` for `hist`;
/// `(..., lo)`, `[a, b)`, `[hi, ...)` for `lhist`.
fn bucket_label(kind: &MapKind, bucket: &Bucket) -> String {
    let linear = matches!(kind, MapKind::Lhist { .. });
    let step = match *kind {
        MapKind::Lhist { step, .. } => i128::from(step),
        _ => 1,
    };
    let number = |value: i128| if linear { linear_label(value, step) } else { power_label(value) };
    match (bucket.lo, bucket.hi) {
        (None, Some(hi)) => format!("(..., {})", number(hi)),
        (Some(lo), None) => format!("[{}, ...)", number(lo)),
        (Some(lo), Some(hi)) if !linear && hi - lo == 1 => format!("[{}]", number(lo)),
        (Some(lo), Some(hi)) => format!("[{}, {})", number(lo), number(hi)),
        (None, None) => "(..., ...)".to_string(),
    }
}

/// Powers of two with the largest binary suffix that divides them: 1024 -> `1K`.
fn power_label(value: i128) -> String {
    const SUFFIXES: [(u32, char); 6] = [(60, 'E'), (50, 'P'), (40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')];
    for (shift, suffix) in SUFFIXES {
        let unit = 1i128 << shift;
        if value != 0 && value % unit == 0 {
            return format!("{}{suffix}", value / unit);
        }
    }
    value.to_string()
}

/// bpftrace's `lhist` labels: with a step that is a multiple of 1K, values that are
/// multiples of 1M or 1K get an M or K suffix; zero and everything else stay plain.
fn linear_label(value: i128, step: i128) -> String {
    const MEGA: i128 = 1 << 20;
    const KILO: i128 = 1 << 10;
    if step % KILO != 0 || value == 0 {
        value.to_string()
    } else if value % MEGA == 0 {
        format!("{}M", value / MEGA)
    } else if value % KILO == 0 {
        format!("{}K", value / KILO)
    } else {
        value.to_string()
    }
}

/// One JSON document `{"maps": {NAME: VALUE}}`: unkeyed aggregations are numbers (`null`
/// before any value), maps with one key part objects from key text to value, tuple keys
/// lists of `{"key": [..], "value": ..}`, histograms lists of non-empty
/// `{"lo", "hi", "count"}` buckets (`null` for an unbounded end), keyed histograms objects
/// from key text to such lists. One line, without a trailing newline.
pub fn render_json(snapshot: &Snapshot, manifest: &Manifest) -> String {
    let mut maps = JsonObject::new();
    for (name, value) in &snapshot.maps {
        let tuple_keys = manifest.map(name).is_some_and(|info| info.key.len() > 1);
        let json_value = match value {
            MapValue::Scalar(value) => value.as_ref().map_or(Json::Null, json_value),
            MapValue::Keyed(rows) if tuple_keys => Json::Array(
                rows.iter()
                    .map(|(key, value)| json!({"key": key.iter().map(json_value).collect::<Vec<_>>(), "value": json_value(value)}))
                    .collect(),
            ),
            MapValue::Keyed(rows) => {
                Json::Object(rows.iter().map(|(key, value)| (json_key(key), json_value(value))).collect())
            }
            MapValue::Hist(buckets) => json_buckets(buckets),
            MapValue::KeyedHist(rows) => {
                Json::Object(rows.iter().map(|(key, buckets)| (json_key(key), json_buckets(buckets))).collect())
            }
        };
        maps.insert(name.clone(), json_value);
    }
    json!({ "maps": maps }).to_string()
}

fn json_value(value: &Value) -> Json {
    match value {
        Value::Uint(number) => Json::from(*number),
        Value::Int(number) => Json::from(*number),
        Value::Bool(flag) => Json::Bool(*flag),
        Value::Str(text) => Json::String(text.clone()),
        Value::Stack(stack) => crate::stacks::stack_json(stack),
        Value::Stats { count, sum, avg } => json!({ "count": count, "sum": json_value(sum), "avg": json_value(avg) }),
        Value::Buf(bytes) => Json::String(crate::snapshot::hex_string(bytes)),
    }
}

/// A key as JSON object member name: decimal integers, strings as they are; tuple parts
/// joined with ", " (only reached for keyed histograms, whose keys have no list form).
fn json_key(key: &[KeyPart]) -> String {
    // A stack becomes its folded form (`outer;middle;leaf`), one line like every other key.
    if key.iter().any(|part| matches!(part, Value::Stack(_))) {
        let parts: Vec<String> = key
            .iter()
            .map(|part| match part {
                Value::Stack(stack) => crate::stacks::folded_frames(stack),
                other => other.to_string(),
            })
            .collect();
        return parts.join(", ");
    }
    // A buffer is a plain hex string in JSON (the escaped form is for people).
    if key.iter().any(|part| matches!(part, Value::Buf(_))) {
        let parts: Vec<String> = key
            .iter()
            .map(|part| match part {
                Value::Buf(bytes) => crate::snapshot::hex_string(bytes),
                other => other.to_string(),
            })
            .collect();
        return parts.join(", ");
    }
    key_text(key)
}

fn json_buckets(buckets: &[Bucket]) -> Json {
    let bound = |end: Option<i128>| end.and_then(Number::from_i128).map_or(Json::Null, Json::Number);
    Json::Array(
        buckets
            .iter()
            .filter(|bucket| bucket.count > 0)
            .map(|bucket| json!({"lo": bound(bucket.lo), "hi": bound(bucket.hi), "count": bucket.count}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::tests::{array_info, entry, map_info, str_key, words, I64, U64};
    use crate::snapshot::{decode_map, RawEntry, HIST_BUCKET_COUNT};
    use ppis_manifest::{Field, MapInfo, ScalarType, ValueLayout, MANIFEST_VERSION};

    fn manifest(maps: Vec<MapInfo>) -> Manifest {
        Manifest { version: MANIFEST_VERSION, budget_percent: 1.0, probes: vec![], maps, events: None }
    }

    fn snapshot_of(manifest: &Manifest, raw: &[Vec<RawEntry>]) -> Snapshot {
        let maps = manifest
            .maps
            .iter()
            .zip(raw)
            .map(|(info, entries)| (info.name.clone(), decode_map(info, entries).unwrap()))
            .collect();
        Snapshot { maps, child_exit: None }
    }

    fn hist_entries(counts: &[(u32, u64)]) -> Vec<RawEntry> {
        (0..HIST_BUCKET_COUNT as u32)
            .map(|index| {
                let count = counts.iter().find(|(at, _)| *at == index).map_or(0, |(_, count)| *count);
                entry(index.to_le_bytes().to_vec(), vec![words(&[count]), words(&[0])])
            })
            .collect()
    }

    /// A manifest with one map of each shape and bytes as the kernel would hand them over.
    fn every_shape() -> (Manifest, Vec<Vec<RawEntry>>) {
        let comm = vec![Field { offset: 0, ty: ScalarType::Str { len: 16 } }];
        let pid_and_comm = vec![
            Field { offset: 0, ty: ScalarType::Int { bytes: 4, signed: false } },
            Field { offset: 8, ty: ScalarType::Str { len: 8 } },
        ];
        let lhist = MapKind::Lhist { lo: 0, hi: 4096, step: 1024 };
        let manifest = manifest(vec![
            map_info("total", MapKind::Count, vec![], ValueLayout::Scalar { ty: U64 }),
            map_info("never", MapKind::Min, vec![], ValueLayout::Extremum { signed: true }),
            map_info("calls", MapKind::Count, comm.clone(), ValueLayout::Scalar { ty: U64 }),
            map_info("bytes", MapKind::Sum, pid_and_comm, ValueLayout::Scalar { ty: I64 }),
            map_info("lat", MapKind::Hist, vec![], ValueLayout::Scalar { ty: U64 }),
            map_info("sizes", lhist, vec![], ValueLayout::Scalar { ty: U64 }),
            map_info("lat_by_comm", MapKind::Hist, comm.clone(), ValueLayout::Scalar { ty: U64 }),
            map_info("avg_by_comm", MapKind::Avg, comm, ValueLayout::SumCount { signed: false }),
            array_info("slots", 4, false, U64),
        ]);
        let pid_comm_key = |pid: u32, name: &str| {
            let mut key = pid.to_le_bytes().to_vec();
            key.extend([0; 4]);
            key.extend(str_key(name, 8));
            key
        };
        let comm_bucket_key = |name: &str, bucket: u64| {
            let mut key = str_key(name, 16);
            key.extend(bucket.to_le_bytes());
            key
        };
        let lhist_entries = (0..6u32)
            .map(|index| entry(index.to_le_bytes().to_vec(), vec![words(&[[0, 2, 0, 7, 1, 0][index as usize]])]))
            .collect();
        let raw = vec![
            vec![entry(vec![0; 4], vec![words(&[40]), words(&[2])])],
            vec![entry(vec![0; 4], vec![words(&[0, 0]), words(&[0, 0])])],
            vec![
                entry(str_key("nginx", 16), vec![words(&[12]), words(&[0])]),
                entry(str_key("bash", 16), vec![words(&[1]), words(&[2])]),
            ],
            vec![
                entry(pid_comm_key(42, "sh"), vec![words(&[100]), words(&[0])]),
                entry(pid_comm_key(7, "cat"), vec![words(&[(-5i64) as u64]), words(&[0])]),
            ],
            hist_entries(&[(1, 1), (3, 3), (4, 3), (5, 52), (6, 10), (12, 1), (13, 2)]),
            lhist_entries,
            vec![
                entry(comm_bucket_key("nginx", 5), vec![words(&[4]), words(&[4])]),
                entry(comm_bucket_key("bash", 0), vec![words(&[1]), words(&[0])]),
                entry(comm_bucket_key("bash", 2), vec![words(&[2]), words(&[0])]),
            ],
            vec![entry(str_key("nginx", 16), vec![words(&[30, 4]), words(&[0, 0])])],
            (0..4u32)
                .map(|index| entry(index.to_le_bytes().to_vec(), vec![words(&[[3, 0, 0, 8][index as usize]])]))
                .collect(),
        ];
        (manifest, raw)
    }

    #[test]
    fn text_output_of_every_map_shape() {
        let (manifest, raw) = every_shape();
        insta::assert_snapshot!(render_text(&snapshot_of(&manifest, &raw), &manifest));
    }

    #[test]
    fn json_output_of_every_map_shape() {
        let (manifest, raw) = every_shape();
        let document = render_json(&snapshot_of(&manifest, &raw), &manifest);
        // One document that parses back.
        serde_json::from_str::<Json>(&document).unwrap();
        insta::assert_snapshot!(document);
    }

    #[test]
    fn power_labels_use_binary_suffixes() {
        assert_eq!(power_label(1), "1");
        assert_eq!(power_label(512), "512");
        assert_eq!(power_label(1024), "1K");
        assert_eq!(power_label(1 << 21), "2M");
        assert_eq!(power_label(1 << 63), "8E");
        assert_eq!(linear_label(2048, 1024), "2K");
        assert_eq!(linear_label(2048, 100), "2048");
        assert_eq!(linear_label(-3 << 20, 1 << 20), "-3M");
        assert_eq!(linear_label(1 << 20, 1024), "1M");
        assert_eq!(linear_label(0, 1024), "0");
    }

    #[test]
    fn bars_scale_to_the_largest_bucket() {
        let buckets = [
            Bucket { lo: Some(2), hi: Some(4), count: 26 },
            Bucket { lo: Some(4), hi: Some(8), count: 0 },
            Bucket { lo: Some(8), hi: Some(16), count: 52 },
        ];
        let text = hist_text(&MapKind::Hist, &buckets);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("[2, 4)                26 |{:<52}|", "@".repeat(26)));
        assert_eq!(lines[1], format!("[4, 8)                 0 |{:<52}|", ""));
        assert_eq!(lines[2], format!("[8, 16)               52 |{}|", "@".repeat(52)));
    }
}
