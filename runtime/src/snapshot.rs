//! What a run leaves behind: the decoded contents of every map, and the pure decoding of raw
//! kernel key/value bytes into it, following the manifest's layouts.
//!
//! Boundary: no syscalls; the kernel side hands over [`RawEntry`]s. Invariant: a decoded map
//! is in display order (bpftrace's: keyed maps by value ascending, ties by key; arrays by
//! index, leaving out the slots that still hold zero, as a never-written slot does).

use std::collections::BTreeMap;

use ppis_manifest::{MapInfo, MapKind, ScalarType, ValueLayout};

/// Power-of-two histograms: negative values, zero, then `[2^k, 2^(k+1))` for k in 0..64.
pub const HIST_BUCKET_COUNT: u64 = 2 + 64;

/// The maps of one run, in manifest order, each by its source name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub maps: Vec<(String, MapValue)>,
    /// How the command started with `-c` ended, when there was one and it ended.
    pub child_exit: Option<crate::ExitStatus>,
}

/// One integer, flag or string read from a map key or value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Uint(u64),
    Int(i64),
    Bool(bool),
    Str(String),
    /// A `ustack`/`kstack` key part: its id, process and (once resolved) frames.
    Stack(crate::stacks::StackKey),
    /// A `stats` value: how many values were recorded, their total and (integer) average;
    /// `sum` and `avg` are `Uint` or `Int` as the recorded values were.
    Stats {
        count: u64,
        sum: Box<Value>,
        avg: Box<Value>,
    },
    /// A `buf[N]`: raw bytes, shown hex-escaped like bpftrace (`\x01\x02`).
    Buf(Vec<u8>),
}

/// Bytes as bpftrace prints a buffer: every byte as `\xHH`.
pub fn hex_escaped(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("\\x{byte:02x}")).collect()
}

/// Bytes as a plain lowercase hex string (a buffer in JSON).
pub fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Uint(number) => write!(f, "{number}"),
            Value::Int(number) => write!(f, "{number}"),
            Value::Bool(flag) => write!(f, "{flag}"),
            Value::Str(text) => f.write_str(text),
            Value::Stack(stack) => write!(f, "{stack}"),
            // As bpftrace prints `stats()`.
            Value::Stats { count, sum, avg } => write!(f, "count {count}, average {avg}, total {sum}"),
            Value::Buf(bytes) => f.write_str(&hex_escaped(bytes)),
        }
    }
}

/// One part of a (possibly tuple) map key.
pub type KeyPart = Value;

/// One histogram bucket: values in `[lo, hi)`; `None` is an unbounded end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub lo: Option<i128>,
    pub hi: Option<i128>,
    pub count: u64,
}

/// A decoded map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapValue {
    /// An unkeyed aggregation; `None` when nothing was recorded (`min`/`max`/`avg` before
    /// their first value).
    Scalar(Option<Value>),
    /// Keyed aggregation or plain map, sorted by value ascending.
    Keyed(Vec<(Vec<KeyPart>, Value)>),
    /// Unkeyed histogram: every bucket, empty ones included, in bucket order.
    Hist(Vec<Bucket>),
    /// Keyed histogram, sorted by total count ascending.
    KeyedHist(Vec<(Vec<KeyPart>, Vec<Bucket>)>),
}

/// One kernel map element: key bytes and the value bytes of each CPU (one chunk for a
/// shared map), each chunk exactly `value_size` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub key: Vec<u8>,
    pub values: Vec<Vec<u8>>,
}

/// The kernel handed over bytes that do not fit the manifest's layout.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("map {map}: {problem}")]
pub struct DecodeError {
    pub map: String,
    pub problem: String,
}

/// Decodes the raw elements of one map according to its manifest entry.
pub fn decode_map(info: &MapInfo, entries: &[RawEntry]) -> Result<MapValue, DecodeError> {
    let fail = |problem: String| DecodeError { map: info.name.clone(), problem };
    for entry in entries {
        if entry.key.len() != info.key_size as usize {
            return Err(fail(format!("key of {} bytes, expected {}", entry.key.len(), info.key_size)));
        }
        if let Some(chunk) = entry.values.iter().find(|chunk| chunk.len() != info.value_size as usize) {
            return Err(fail(format!("value of {} bytes, expected {}", chunk.len(), info.value_size)));
        }
    }
    match (&info.kind, info.key.is_empty()) {
        (MapKind::Array { .. }, _) => decode_array(info, entries).map_err(fail),
        (MapKind::Hist | MapKind::Lhist { .. }, true) => decode_hist(info, entries).map(MapValue::Hist).map_err(fail),
        (MapKind::Hist | MapKind::Lhist { .. }, false) => decode_keyed_hist(info, entries).map_err(fail),
        (_, true) => {
            // Unkeyed aggregations live in an array at index 0.
            let Some(entry) = entries.iter().find(|entry| entry.key.iter().all(|&byte| byte == 0)) else {
                return Ok(MapValue::Scalar(None));
            };
            merge_value(info, &entry.values).map(MapValue::Scalar).map_err(fail)
        }
        (_, false) => {
            let mut rows = Vec::new();
            for entry in entries {
                if let Some(value) = merge_value(info, &entry.values).map_err(fail)? {
                    rows.push((key_parts(info, &entry.key).map_err(fail)?, value));
                }
            }
            rows.sort_by(|(key_a, value_a), (key_b, value_b)| value_a.cmp(value_b).then_with(|| key_a.cmp(key_b)));
            Ok(MapValue::Keyed(rows))
        }
    }
}

/// An array's non-zero slots by index, keyed by the index.
fn decode_array(info: &MapInfo, entries: &[RawEntry]) -> Result<MapValue, String> {
    let mut rows = Vec::new();
    for entry in entries {
        let index = read_uint(&entry.key, 0, 4)?;
        let Some(value) = merge_value(info, &entry.values)? else { continue };
        let unset = matches!(&value, Value::Uint(0) | Value::Int(0) | Value::Bool(false))
            || matches!(&value, Value::Str(text) if text.is_empty());
        if !unset {
            rows.push((index, value));
        }
    }
    rows.sort_by_key(|(index, _)| *index);
    Ok(MapValue::Keyed(rows.into_iter().map(|(index, value)| (vec![Value::Uint(index)], value)).collect()))
}

fn decode_hist(info: &MapInfo, entries: &[RawEntry]) -> Result<Vec<Bucket>, String> {
    let mut counts = vec![0u64; bucket_count(&info.kind)? as usize];
    for entry in entries {
        let index = read_uint(&entry.key, 0, 4)?;
        add_bucket_count(&mut counts, index, sum_counts(&entry.values)?)?;
    }
    Ok(buckets_from_counts(&info.kind, &counts))
}

fn decode_keyed_hist(info: &MapInfo, entries: &[RawEntry]) -> Result<MapValue, String> {
    let bucket_offset = info.bucket_offset.ok_or("keyed histogram without a bucket offset")?;
    let bucket_total = bucket_count(&info.kind)? as usize;
    let mut counts_by_key: BTreeMap<Vec<KeyPart>, Vec<u64>> = BTreeMap::new();
    for entry in entries {
        let index = read_uint(&entry.key, bucket_offset, 8)?;
        let counts = counts_by_key.entry(key_parts(info, &entry.key)?).or_insert_with(|| vec![0; bucket_total]);
        add_bucket_count(counts, index, sum_counts(&entry.values)?)?;
    }
    let mut rows: Vec<(Vec<KeyPart>, Vec<Bucket>)> =
        counts_by_key.into_iter().map(|(key, counts)| (key, buckets_from_counts(&info.kind, &counts))).collect();
    let total = |buckets: &[Bucket]| buckets.iter().map(|bucket| bucket.count as u128).sum::<u128>();
    // Stable sort over key-ordered rows: ties stay in key order.
    rows.sort_by_key(|(_, buckets)| total(buckets));
    Ok(MapValue::KeyedHist(rows))
}

/// Adds `count` to bucket `index`. Arrays may be longer than the histogram; their unused
/// tail is empty and ignored, but a count outside the histogram means the layouts disagree.
fn add_bucket_count(counts: &mut [u64], index: u64, count: u64) -> Result<(), String> {
    match counts.get_mut(index as usize) {
        Some(slot) => *slot = slot.wrapping_add(count),
        None if count == 0 => {}
        None => return Err(format!("count {count} in bucket {index}, but the histogram has {} buckets", counts.len())),
    }
    Ok(())
}

fn sum_counts(chunks: &[Vec<u8>]) -> Result<u64, String> {
    chunks.iter().try_fold(0u64, |total, chunk| Ok(total.wrapping_add(read_uint(chunk, 0, 8)?)))
}

/// Number of buckets of a histogram kind.
pub fn bucket_count(kind: &MapKind) -> Result<u64, String> {
    match *kind {
        MapKind::Hist => Ok(HIST_BUCKET_COUNT),
        MapKind::Lhist { lo, hi, step } => {
            if step <= 0 || hi <= lo {
                return Err(format!("linear histogram with lo {lo}, hi {hi}, step {step}"));
            }
            let inner = (hi as i128 - lo as i128 + step as i128 - 1) / step as i128;
            Ok(inner as u64 + 2)
        }
        _ => Err("not a histogram".to_string()),
    }
}

/// Bounds of bucket `index` (see `MapKind::Hist` and `MapKind::Lhist`).
pub fn bucket_bounds(kind: &MapKind, index: u64) -> (Option<i128>, Option<i128>) {
    match *kind {
        MapKind::Lhist { lo, hi, step } => {
            let last = bucket_count(kind).unwrap_or(2) - 1;
            let (lo, hi, step) = (lo as i128, hi as i128, step as i128);
            match index {
                0 => (None, Some(lo)),
                i if i >= last => (Some(hi), None),
                i => (Some(lo + (i as i128 - 1) * step), Some((lo + i as i128 * step).min(hi))),
            }
        }
        _ => match index {
            0 => (None, Some(0)),
            1 => (Some(0), Some(1)),
            // The top bucket's upper end, 2^64, is past every value a u64 can hold.
            i if i >= HIST_BUCKET_COUNT - 1 => (Some(1i128 << (i - 2).min(63)), None),
            i => (Some(1i128 << (i - 2)), Some(1i128 << (i - 1))),
        },
    }
}

fn buckets_from_counts(kind: &MapKind, counts: &[u64]) -> Vec<Bucket> {
    counts
        .iter()
        .enumerate()
        .map(|(index, &count)| {
            let (lo, hi) = bucket_bounds(kind, index as u64);
            Bucket { lo, hi, count }
        })
        .collect()
}

/// Merges the per-CPU values of one element into its value; `None` when no CPU recorded one.
fn merge_value(info: &MapInfo, chunks: &[Vec<u8>]) -> Result<Option<Value>, String> {
    if chunks.is_empty() {
        return Ok(None);
    }
    match (&info.kind, &info.value) {
        // A per-CPU hash map (`percpu_hash`, integers only) holds one value per CPU for each
        // key: summed, like a per-CPU array's slot.
        (MapKind::Hash, ValueLayout::Scalar { ty: ty @ ScalarType::Int { bytes, .. } }) if info.per_cpu => {
            sum_at_width(chunks, ty, *bytes).map(Some)
        }
        (MapKind::Hash, ValueLayout::Scalar { ty }) => {
            if chunks.len() != 1 {
                return Err("a plain map must not be per-CPU: its CPUs' values cannot be merged".to_string());
            }
            read_scalar(&chunks[0], 0, ty).map(Some)
        }
        // A shared array has one value per slot; a per-CPU one (integers only) is summed.
        (MapKind::Array { .. }, ValueLayout::Scalar { ty }) if chunks.len() == 1 => {
            read_scalar(&chunks[0], 0, ty).map(Some)
        }
        (MapKind::Array { .. }, ValueLayout::Scalar { ty: ty @ ScalarType::Int { bytes, .. } }) => {
            let width = u32::from(*bytes);
            let total = chunks
                .iter()
                .try_fold(0u64, |total, chunk| Ok::<_, String>(total.wrapping_add(read_uint(chunk, 0, width)?)))?;
            // Read back at the declared width: a sum of narrow signed values wraps like them.
            read_scalar(&total.to_le_bytes(), 0, ty).map(Some)
        }
        (MapKind::Count | MapKind::Sum, ValueLayout::Scalar { ty: ScalarType::Int { signed, .. } }) => {
            let total = chunks
                .iter()
                .try_fold(0u64, |total, chunk| Ok::<_, String>(total.wrapping_add(read_uint(chunk, 0, 8)?)))?;
            Ok(Some(integer(total, *signed)))
        }
        (MapKind::Min | MapKind::Max, ValueLayout::Extremum { signed }) => {
            let mut best: Option<u64> = None;
            for chunk in chunks {
                if read_uint(chunk, 8, 8)? == 0 {
                    continue;
                }
                let candidate = read_uint(chunk, 0, 8)?;
                let ordering = |a: u64, b: u64| if *signed { (a as i64).cmp(&(b as i64)) } else { a.cmp(&b) };
                let wins = |current: u64| match info.kind {
                    MapKind::Min => ordering(candidate, current).is_lt(),
                    _ => ordering(candidate, current).is_gt(),
                };
                best = Some(match best {
                    Some(current) if !wins(current) => current,
                    _ => candidate,
                });
            }
            Ok(best.map(|word| integer(word, *signed)))
        }
        (MapKind::Avg, ValueLayout::SumCount { signed }) => {
            let (mut sum, mut count) = (0u64, 0u64);
            for chunk in chunks {
                sum = sum.wrapping_add(read_uint(chunk, 0, 8)?);
                count = count.wrapping_add(read_uint(chunk, 8, 8)?);
            }
            if count == 0 {
                return Ok(None);
            }
            // Integer average, like bpftrace prints it.
            Ok(Some(if *signed {
                Value::Int((sum as i64 as i128 / count as i128) as i64)
            } else {
                Value::Uint(sum / count)
            }))
        }
        (MapKind::Stats, ValueLayout::SumCount { signed }) => {
            let (mut sum, mut count) = (0u64, 0u64);
            for chunk in chunks {
                sum = sum.wrapping_add(read_uint(chunk, 0, 8)?);
                count = count.wrapping_add(read_uint(chunk, 8, 8)?);
            }
            if count == 0 {
                return Ok(None);
            }
            let (sum, avg) = if *signed {
                (Value::Int(sum as i64), Value::Int((sum as i64 as i128 / count as i128) as i64))
            } else {
                (Value::Uint(sum), Value::Uint(sum / count))
            };
            Ok(Some(Value::Stats { count, sum: Box::new(sum), avg: Box::new(avg) }))
        }
        (kind, layout) => Err(format!("a {kind:?} map cannot have the value layout {layout:?}")),
    }
}

/// The per-CPU integers of `width` bytes in `chunks`, summed and read back as `ty`: a sum of
/// narrow signed values wraps like them.
fn sum_at_width(chunks: &[Vec<u8>], ty: &ScalarType, width: u8) -> Result<Value, String> {
    let total = chunks
        .iter()
        .try_fold(0u64, |total, chunk| Ok::<_, String>(total.wrapping_add(read_uint(chunk, 0, u32::from(width))?)))?;
    read_scalar(&total.to_le_bytes(), 0, ty)
}

fn integer(word: u64, signed: bool) -> Value {
    if signed {
        Value::Int(word as i64)
    } else {
        Value::Uint(word)
    }
}

/// The user's key fields of a kernel key.
fn key_parts(info: &MapInfo, key: &[u8]) -> Result<Vec<KeyPart>, String> {
    info.key.iter().map(|field| read_scalar(key, field.offset, &field.ty)).collect()
}

/// Reads one scalar of type `ty` at byte `offset`.
pub fn read_scalar(bytes: &[u8], offset: u32, ty: &ScalarType) -> Result<Value, String> {
    match *ty {
        ScalarType::Int { bytes: width, signed } => {
            if !matches!(width, 1 | 2 | 4 | 8) {
                return Err(format!("integer of {width} bytes"));
            }
            let raw = read_uint(bytes, offset, u32::from(width))?;
            if signed {
                // Sign-extend from the field's width.
                let shift = 64 - 8 * u32::from(width);
                Ok(Value::Int(((raw << shift) as i64) >> shift))
            } else {
                Ok(Value::Uint(raw))
            }
        }
        ScalarType::Bool => Ok(Value::Bool(read_uint(bytes, offset, 1)? != 0)),
        ScalarType::Str { len } => {
            let text = slice(bytes, offset, len)?;
            let end = text.iter().position(|&byte| byte == 0).unwrap_or(text.len());
            Ok(Value::Str(String::from_utf8_lossy(&text[..end]).into_owned()))
        }
        ScalarType::Stack { space, .. } => {
            let id = read_uint(bytes, offset, 4)? as u32 as i32;
            let pid = read_uint(bytes, offset + 4, 4)? as u32;
            Ok(Value::Stack(crate::stacks::StackKey { space, id, pid, frames: Vec::new() }))
        }
        ScalarType::Buf { len } => Ok(Value::Buf(slice(bytes, offset, len)?.to_vec())),
    }
}

/// A little-endian unsigned integer of `width` (1..=8) bytes at `offset`.
fn read_uint(bytes: &[u8], offset: u32, width: u32) -> Result<u64, String> {
    let field = slice(bytes, offset, width)?;
    Ok(field.iter().rev().fold(0u64, |word, &byte| (word << 8) | u64::from(byte)))
}

fn slice(bytes: &[u8], offset: u32, len: u32) -> Result<&[u8], String> {
    let (start, end) = (offset as usize, offset as usize + len as usize);
    bytes.get(start..end).ok_or_else(|| format!("{len} bytes at offset {offset} are outside {} bytes", bytes.len()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ppis_manifest::Field;

    pub(crate) const U64: ScalarType = ScalarType::Int { bytes: 8, signed: false };
    pub(crate) const I64: ScalarType = ScalarType::Int { bytes: 8, signed: true };

    pub(crate) fn map_info(name: &str, kind: MapKind, key: Vec<Field>, value: ValueLayout) -> MapInfo {
        let hist = matches!(kind, MapKind::Hist | MapKind::Lhist { .. });
        let key_end = key.iter().map(|field| field.offset + scalar_size(&field.ty)).max().unwrap_or(0);
        let (key_size, bucket_offset) = match (key.is_empty(), hist) {
            (true, _) => (4, None),
            (false, false) => (key_end.next_multiple_of(8), None),
            (false, true) => (key_end.next_multiple_of(8) + 8, Some(key_end.next_multiple_of(8))),
        };
        let value_size = match value {
            ValueLayout::Scalar { ty } => scalar_size(&ty).max(8),
            _ => 16,
        };
        MapInfo {
            name: name.into(),
            object_name: name.into(),
            kind,
            per_cpu: !matches!(kind, MapKind::Hash),
            key,
            key_size,
            bucket_offset,
            value_size,
            value,
        }
    }

    fn scalar_size(ty: &ScalarType) -> u32 {
        match *ty {
            ScalarType::Int { bytes, .. } => u32::from(bytes),
            ScalarType::Bool => 1,
            ScalarType::Str { len } => len,
            ScalarType::Buf { len } => len,
            ScalarType::Stack { .. } => 8,
        }
    }

    pub(crate) fn words(values: &[u64]) -> Vec<u8> {
        values.iter().flat_map(|value| value.to_le_bytes()).collect()
    }

    pub(crate) fn str_key(text: &str, len: usize) -> Vec<u8> {
        let mut bytes = text.as_bytes().to_vec();
        bytes.resize(len, 0);
        bytes
    }

    pub(crate) fn entry(key: Vec<u8>, values: Vec<Vec<u8>>) -> RawEntry {
        RawEntry { key, values }
    }

    #[test]
    fn count_sums_cpus_and_signed_sum_wraps_to_negative() {
        let count = map_info("calls", MapKind::Count, vec![], ValueLayout::Scalar { ty: U64 });
        let raw = [entry(vec![0; 4], vec![words(&[3]), words(&[4])])];
        assert_eq!(decode_map(&count, &raw).unwrap(), MapValue::Scalar(Some(Value::Uint(7))));
        let sum = map_info("delta", MapKind::Sum, vec![], ValueLayout::Scalar { ty: I64 });
        let raw = [entry(vec![0; 4], vec![words(&[5]), words(&[(-8i64) as u64])])];
        assert_eq!(decode_map(&sum, &raw).unwrap(), MapValue::Scalar(Some(Value::Int(-3))));
    }

    /// An array's manifest entry: the `u32` index is its one key field.
    pub(crate) fn array_info(name: &str, len: u32, per_cpu: bool, ty: ScalarType) -> MapInfo {
        let index = Field { offset: 0, ty: ScalarType::Int { bytes: 4, signed: false } };
        let mut info = map_info(name, MapKind::Array { len }, vec![index], ValueLayout::Scalar { ty });
        (info.key_size, info.per_cpu) = (4, per_cpu);
        info
    }

    #[test]
    fn arrays_list_their_non_zero_slots_by_index() {
        let info = array_info("slots", 4, false, U64);
        let raw = [
            entry(3u32.to_le_bytes().to_vec(), vec![words(&[1])]),
            entry(0u32.to_le_bytes().to_vec(), vec![words(&[9])]),
            entry(1u32.to_le_bytes().to_vec(), vec![words(&[0])]),
            entry(2u32.to_le_bytes().to_vec(), vec![words(&[5])]),
        ];
        let rows = vec![
            (vec![Value::Uint(0)], Value::Uint(9)),
            (vec![Value::Uint(2)], Value::Uint(5)),
            (vec![Value::Uint(3)], Value::Uint(1)),
        ];
        assert_eq!(decode_map(&info, &raw).unwrap(), MapValue::Keyed(rows));
        let names = array_info("names", 2, false, ScalarType::Str { len: 8 });
        let raw = [entry(vec![0; 4], vec![str_key("", 8)]), entry(1u32.to_le_bytes().to_vec(), vec![str_key("sh", 8)])];
        let rows = vec![(vec![Value::Uint(1)], Value::Str("sh".into()))];
        assert_eq!(decode_map(&names, &raw).unwrap(), MapValue::Keyed(rows));
    }

    #[test]
    fn per_cpu_arrays_sum_their_cpus_at_the_declared_width() {
        let info = array_info("deltas", 2, true, ScalarType::Int { bytes: 4, signed: true });
        let cpu = |v: i32| (v as u32 as u64).to_le_bytes().to_vec();
        let raw = [entry(vec![0; 4], vec![cpu(5), cpu(-8)]), entry(1u32.to_le_bytes().to_vec(), vec![cpu(0), cpu(0)])];
        assert_eq!(decode_map(&info, &raw).unwrap(), MapValue::Keyed(vec![(vec![Value::Uint(0)], Value::Int(-3))]));
        let strings = array_info("bad", 1, true, ScalarType::Str { len: 8 });
        let raw = [entry(vec![0; 4], vec![str_key("a", 8), str_key("b", 8)])];
        assert!(decode_map(&strings, &raw).unwrap_err().problem.contains("value layout"));
    }

    #[test]
    fn per_cpu_hashes_sum_their_cpus_at_the_declared_width_and_keep_zero_keys() {
        let mut info = map_info(
            "per_key",
            MapKind::Hash,
            vec![Field { offset: 0, ty: U64 }],
            ValueLayout::Scalar { ty: ScalarType::Int { bytes: 2, signed: true } },
        );
        info.per_cpu = true;
        let cpu = |v: i16| (v as u16 as u64).to_le_bytes().to_vec();
        let raw = [
            entry(words(&[7]), vec![cpu(5), cpu(-8), cpu(1)]),
            entry(words(&[3]), vec![cpu(100), cpu(0), cpu(20)]),
            // A key that every CPU holds at zero is still a key (as in a shared hash map).
            entry(words(&[9]), vec![cpu(0), cpu(0), cpu(0)]),
        ];
        let rows = vec![
            (vec![Value::Uint(7)], Value::Int(-2)),
            (vec![Value::Uint(9)], Value::Int(0)),
            (vec![Value::Uint(3)], Value::Int(120)),
        ];
        assert_eq!(decode_map(&info, &raw).unwrap(), MapValue::Keyed(rows));
    }

    #[test]
    fn extrema_ignore_cpus_that_saw_nothing() {
        let min = map_info("low", MapKind::Min, vec![], ValueLayout::Extremum { signed: true });
        // CPU 0 never saw a value: its zero must not win.
        let raw = [entry(vec![0; 4], vec![words(&[0, 0]), words(&[(-2i64) as u64, 1]), words(&[7, 1])])];
        assert_eq!(decode_map(&min, &raw).unwrap(), MapValue::Scalar(Some(Value::Int(-2))));
        let max = map_info("high", MapKind::Max, vec![], ValueLayout::Extremum { signed: false });
        let raw = [entry(vec![0; 4], vec![words(&[9, 0]), words(&[5, 1]), words(&[7, 1])])];
        assert_eq!(decode_map(&max, &raw).unwrap(), MapValue::Scalar(Some(Value::Uint(7))));
        let nothing = [entry(vec![0; 4], vec![words(&[0, 0]), words(&[0, 0])])];
        assert_eq!(decode_map(&max, &nothing).unwrap(), MapValue::Scalar(None));
    }

    #[test]
    fn avg_divides_total_sum_by_total_count() {
        let avg = map_info("mean", MapKind::Avg, vec![], ValueLayout::SumCount { signed: true });
        let raw = [entry(vec![0; 4], vec![words(&[(-10i64) as u64, 2]), words(&[3, 1])])];
        assert_eq!(decode_map(&avg, &raw).unwrap(), MapValue::Scalar(Some(Value::Int(-2))));
        let unsigned = map_info("mean", MapKind::Avg, vec![], ValueLayout::SumCount { signed: false });
        let raw = [entry(vec![0; 4], vec![words(&[10, 3]), words(&[0, 0])])];
        assert_eq!(decode_map(&unsigned, &raw).unwrap(), MapValue::Scalar(Some(Value::Uint(3))));
        let empty = [entry(vec![0; 4], vec![words(&[0, 0])])];
        assert_eq!(decode_map(&unsigned, &empty).unwrap(), MapValue::Scalar(None));
    }

    #[test]
    fn keyed_maps_decode_tuple_keys_and_sort_by_value() {
        let key = vec![
            Field { offset: 0, ty: ScalarType::Str { len: 16 } },
            Field { offset: 16, ty: ScalarType::Int { bytes: 4, signed: true } },
        ];
        let info = map_info("calls", MapKind::Count, key, ValueLayout::Scalar { ty: U64 });
        let key_of = |name: &str, number: i32| {
            let mut key = str_key(name, 16);
            key.extend(number.to_le_bytes());
            key.extend([0; 4]);
            key
        };
        let raw = [
            entry(key_of("nginx", -1), vec![words(&[10]), words(&[2])]),
            entry(key_of("bash", 7), vec![words(&[1]), words(&[0])]),
            entry(key_of("abc", 7), vec![words(&[0]), words(&[12])]),
        ];
        let expected = MapValue::Keyed(vec![
            (vec![Value::Str("bash".into()), Value::Int(7)], Value::Uint(1)),
            (vec![Value::Str("abc".into()), Value::Int(7)], Value::Uint(12)),
            (vec![Value::Str("nginx".into()), Value::Int(-1)], Value::Uint(12)),
        ]);
        assert_eq!(decode_map(&info, &raw).unwrap(), expected);
    }

    #[test]
    fn hist_buckets_have_bpftrace_bounds() {
        let info = map_info("lat", MapKind::Hist, vec![], ValueLayout::Scalar { ty: U64 });
        let raw: Vec<RawEntry> = (0..HIST_BUCKET_COUNT as u32)
            .map(|i| entry(i.to_le_bytes().to_vec(), vec![words(&[u64::from(i % 3)])]))
            .collect();
        let MapValue::Hist(buckets) = decode_map(&info, &raw).unwrap() else { panic!("not a histogram") };
        assert_eq!(buckets.len(), 66);
        assert_eq!(buckets[0], Bucket { lo: None, hi: Some(0), count: 0 });
        assert_eq!(buckets[1], Bucket { lo: Some(0), hi: Some(1), count: 1 });
        assert_eq!(buckets[2], Bucket { lo: Some(1), hi: Some(2), count: 2 });
        assert_eq!(buckets[5], Bucket { lo: Some(8), hi: Some(16), count: 2 });
        assert_eq!(buckets[65], Bucket { lo: Some(1 << 63), hi: None, count: 2 });
    }

    #[test]
    fn lhist_buckets_and_out_of_range_counts() {
        let kind = MapKind::Lhist { lo: 0, hi: 100, step: 10 };
        let info = map_info("pct", kind, vec![], ValueLayout::Scalar { ty: U64 });
        assert_eq!(bucket_count(&kind).unwrap(), 12);
        assert_eq!(bucket_bounds(&kind, 0), (None, Some(0)));
        assert_eq!(bucket_bounds(&kind, 1), (Some(0), Some(10)));
        assert_eq!(bucket_bounds(&kind, 10), (Some(90), Some(100)));
        assert_eq!(bucket_bounds(&kind, 11), (Some(100), None));
        // An array longer than the histogram: an empty tail is fine, a counted one is not.
        let tail = [entry(20u32.to_le_bytes().to_vec(), vec![words(&[0])])];
        assert!(decode_map(&info, &tail).is_ok());
        let counted = [entry(20u32.to_le_bytes().to_vec(), vec![words(&[4])])];
        assert_eq!(
            decode_map(&info, &counted).unwrap_err().to_string(),
            "map pct: count 4 in bucket 20, but the histogram has 12 buckets"
        );
    }

    #[test]
    fn keyed_hist_groups_buckets_by_user_key() {
        let key = vec![Field { offset: 0, ty: U64 }];
        let info = map_info("lat", MapKind::Hist, key, ValueLayout::Scalar { ty: U64 });
        let key_of = |user: u64, bucket: u64| words(&[user, bucket]);
        let raw = [
            entry(key_of(1, 3), vec![words(&[5])]),
            entry(key_of(2, 4), vec![words(&[1])]),
            entry(key_of(1, 4), vec![words(&[2]), words(&[1])]),
        ];
        let MapValue::KeyedHist(rows) = decode_map(&info, &raw).unwrap() else { panic!("not a keyed histogram") };
        assert_eq!(rows.iter().map(|(key, _)| key.clone()).collect::<Vec<_>>(), [[Value::Uint(2)], [Value::Uint(1)]]);
        assert_eq!(rows[1].1[3].count, 5);
        assert_eq!(rows[1].1[4].count, 3);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let info = map_info("calls", MapKind::Count, vec![], ValueLayout::Scalar { ty: U64 });
        let short_value = [entry(vec![0; 4], vec![vec![1, 2]])];
        assert_eq!(decode_map(&info, &short_value).unwrap_err().to_string(), "map calls: value of 2 bytes, expected 8");
        let long_key = [entry(vec![0; 9], vec![words(&[1])])];
        assert!(decode_map(&info, &long_key).is_err());
        let mismatched = map_info("calls", MapKind::Min, vec![], ValueLayout::Scalar { ty: U64 });
        assert!(decode_map(&mismatched, &[entry(vec![0; 4], vec![words(&[1])])]).is_err());
        // Per-CPU strings cannot be merged (the checker allows only integers in per-CPU maps).
        let string = ScalarType::Str { len: 8 };
        let mut per_cpu_hash =
            map_info("h", MapKind::Hash, vec![Field { offset: 0, ty: U64 }], ValueLayout::Scalar { ty: string });
        per_cpu_hash.per_cpu = true;
        assert!(decode_map(&per_cpu_hash, &[entry(words(&[1]), vec![str_key("a", 8), str_key("b", 8)])]).is_err());
        // Nor can several values of a shared hash map.
        let shared_hash =
            map_info("h", MapKind::Hash, vec![Field { offset: 0, ty: U64 }], ValueLayout::Scalar { ty: U64 });
        assert!(decode_map(&shared_hash, &[entry(words(&[1]), vec![words(&[1]), words(&[2])])]).is_err());
        assert!(read_scalar(&[1, 2, 3], 0, &ScalarType::Int { bytes: 3, signed: false }).is_err());
    }

    #[test]
    fn reads_narrow_signed_integers_bools_and_strings() {
        assert_eq!(read_scalar(&[0xfe, 0xff], 0, &ScalarType::Int { bytes: 2, signed: true }).unwrap(), Value::Int(-2));
        assert_eq!(
            read_scalar(&[0xfe, 0xff], 0, &ScalarType::Int { bytes: 2, signed: false }).unwrap(),
            Value::Uint(65534)
        );
        assert_eq!(read_scalar(&[0, 1], 1, &ScalarType::Bool).unwrap(), Value::Bool(true));
        assert_eq!(read_scalar(b"ab\0cd", 0, &ScalarType::Str { len: 5 }).unwrap(), Value::Str("ab".into()));
        assert_eq!(read_scalar(b"abcd", 2, &ScalarType::Str { len: 2 }).unwrap(), Value::Str("cd".into()));
    }
}
