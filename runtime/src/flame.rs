//! Aggregated stacks out of a snapshot, written as folded stacks (`outer;middle;leaf N`, the
//! input of flamegraph.pl and inferno), as an SVG flame graph (inferno) and as a pprof
//! `profile.proto` (gzip-free protobuf, which `go tool pprof` and most profilers read).
//!
//! Boundary: pure conversions of already symbolised snapshots; no syscalls.

use std::collections::BTreeMap;

use ppis_manifest::{Manifest, ScalarType};
use prost::Message;

use crate::snapshot::{MapValue, Snapshot, Value};

/// One distinct stack with its weight: frames outermost first. Non-stack key parts (a `comm`,
/// a pid) come first, as the roots the stacks hang under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedStack {
    pub frames: Vec<String>,
    pub weight: u64,
}

/// Does any map of `manifest` have a stack key?
pub fn has_stacks(manifest: &Manifest) -> bool {
    manifest.maps.iter().any(|info| is_stack_map(manifest, &info.name))
}

fn is_stack_map(manifest: &Manifest, name: &str) -> bool {
    manifest.map(name).is_some_and(|info| info.key.iter().any(|field| matches!(field.ty, ScalarType::Stack { .. })))
}

/// The stacks of map `name` (one with a stack key), merged where their frames are equal and
/// sorted by frames. A row's weight is its integer value (a count or sum), or for histograms
/// the number of recorded values; rows with other values (strings) are left out.
pub fn map_stacks(snapshot: &Snapshot, manifest: &Manifest, name: &str) -> Vec<WeightedStack> {
    let (Some(info), Some((_, value))) = (manifest.map(name), snapshot.maps.iter().find(|(map, _)| map == name)) else {
        return Vec::new();
    };
    stacks_of(info, value)
}

/// The stacks of one decoded map `value` laid out as `info` says (see [`map_stacks`]); empty
/// when the map has no stack key.
pub fn stacks_of(info: &ppis_manifest::MapInfo, value: &MapValue) -> Vec<WeightedStack> {
    let mut merged: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    if !info.key.iter().any(|field| matches!(field.ty, ScalarType::Stack { .. })) {
        return Vec::new();
    }
    let rows: Vec<(&Vec<Value>, u64)> = match value {
        MapValue::Keyed(rows) => rows
            .iter()
            .filter_map(|(key, value)| {
                let weight = match value {
                    Value::Uint(n) => *n,
                    Value::Int(n) => (*n).max(0) as u64,
                    _ => return None,
                };
                Some((key, weight))
            })
            .collect(),
        MapValue::KeyedHist(rows) => {
            rows.iter().map(|(key, buckets)| (key, buckets.iter().map(|b| b.count).sum())).collect()
        }
        MapValue::Scalar(_) | MapValue::Hist(_) => Vec::new(),
    };
    for (key, weight) in rows {
        let mut frames = Vec::new();
        for part in key {
            match part {
                Value::Stack(stack) => frames.extend(stack.names_outermost_first()),
                other => frames.push(other.to_string()),
            }
        }
        *merged.entry(frames).or_default() += weight;
    }
    merged
        .into_iter()
        .filter(|(_, weight)| *weight > 0)
        .map(|(frames, weight)| WeightedStack { frames, weight })
        .collect()
}

/// The stacks of every map with stack keys; with more than one such map each stack is rooted
/// at its map's name (`@name`), so that they can share one flame graph.
pub fn all_stacks(snapshot: &Snapshot, manifest: &Manifest) -> Vec<WeightedStack> {
    let names: Vec<&str> =
        manifest.maps.iter().map(|info| info.name.as_str()).filter(|name| is_stack_map(manifest, name)).collect();
    let mut out = Vec::new();
    for name in &names {
        for mut stack in map_stacks(snapshot, manifest, name) {
            if names.len() > 1 {
                stack.frames.insert(0, format!("@{name}"));
            }
            out.push(stack);
        }
    }
    out
}

/// Folded stacks, one `frame;frame;frame weight` line each. `;` and newlines inside a frame
/// name (they do not occur in symbols, but may in a `comm`) become `_`.
pub fn folded(stacks: &[WeightedStack]) -> String {
    let mut out = String::new();
    for stack in stacks {
        let frames: Vec<String> = stack.frames.iter().map(|f| f.replace([';', '\n'], "_")).collect();
        out.push_str(&format!("{} {}\n", frames.join(";"), stack.weight));
    }
    out
}

/// An SVG flame graph of the stacks (inferno); `title` heads it.
pub fn flamegraph_svg(stacks: &[WeightedStack], title: &str) -> Result<Vec<u8>, String> {
    let text = folded(stacks);
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.count_name = "events".to_string();
    let mut svg = Vec::new();
    if text.is_empty() {
        // inferno refuses an empty profile; one labelled bar says that nothing was recorded.
        options.title = format!("{title} (no stacks recorded)");
        let text = "(no stacks recorded) 1\n".to_string();
        inferno::flamegraph::from_lines(&mut options, text.lines(), &mut svg).map_err(|e| e.to_string())?;
        return Ok(svg);
    }
    inferno::flamegraph::from_lines(&mut options, text.lines(), &mut svg).map_err(|e| e.to_string())?;
    Ok(svg)
}

/// The pprof `profile.proto` messages ppis writes (field numbers from
/// github.com/google/pprof/proto/profile.proto; unused fields left out).
pub mod pprof {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        /// Index 0 must be "".
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// Leaf first.
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "2")]
        pub name: i64,
        #[prost(int64, tag = "3")]
        pub system_name: i64,
    }
}

/// The stacks as a pprof profile with one sample type, `events/count`: one location and one
/// function per distinct frame name, one sample per stack (leaf first) with its weight.
pub fn pprof_profile(stacks: &[WeightedStack]) -> pprof::Profile {
    let mut strings: Vec<String> = vec![String::new()];
    let mut string_ids: BTreeMap<String, i64> = BTreeMap::new();
    let mut intern = |text: &str, strings: &mut Vec<String>| -> i64 {
        *string_ids.entry(text.to_string()).or_insert_with(|| {
            strings.push(text.to_string());
            strings.len() as i64 - 1
        })
    };
    let sample_type =
        vec![pprof::ValueType { r#type: intern("events", &mut strings), unit: intern("count", &mut strings) }];
    let mut function_ids: BTreeMap<String, u64> = BTreeMap::new();
    let mut functions = Vec::new();
    let mut locations = Vec::new();
    let mut samples = Vec::new();
    for stack in stacks {
        let mut location_id = Vec::with_capacity(stack.frames.len());
        for frame in stack.frames.iter().rev() {
            let id = match function_ids.get(frame) {
                Some(id) => *id,
                None => {
                    let id = functions.len() as u64 + 1;
                    let name = intern(frame, &mut strings);
                    functions.push(pprof::Function { id, name, system_name: name });
                    // Location ids equal function ids: one location per function.
                    locations.push(pprof::Location { id, line: vec![pprof::Line { function_id: id }] });
                    function_ids.insert(frame.clone(), id);
                    id
                }
            };
            location_id.push(id);
        }
        samples.push(pprof::Sample { location_id, value: vec![stack.weight.min(i64::MAX as u64) as i64] });
    }
    pprof::Profile { sample_type, sample: samples, location: locations, function: functions, string_table: strings }
}

/// The encoded pprof profile (uncompressed protobuf; pprof reads both forms).
pub fn pprof_bytes(stacks: &[WeightedStack]) -> Vec<u8> {
    pprof_profile(stacks).encode_to_vec()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::snapshot::tests::map_info;
    use crate::stacks::{Frame, StackKey};
    use ppis_manifest::{Field, MapKind, StackSpace, ValueLayout};

    /// A manifest with just `maps`, built from JSON so that later manifest fields (all
    /// optional) need no change here.
    pub(crate) fn test_manifest(maps: Vec<ppis_manifest::MapInfo>) -> Manifest {
        let mut manifest = Manifest::from_json(&format!(
            r#"{{"version": {}, "budget_percent": 0.5, "probes": [], "maps": []}}"#,
            ppis_manifest::MANIFEST_VERSION
        ))
        .expect("a minimal manifest");
        manifest.maps = maps;
        manifest
    }

    fn stack(names: &[&str]) -> Value {
        // Innermost first, as the kernel records them.
        let frames = names
            .iter()
            .rev()
            .enumerate()
            .map(|(i, n)| Frame { addr: 0x1000 + i as u64, symbol: Some((n.to_string(), 4)) })
            .collect();
        Value::Stack(StackKey { space: StackSpace::User, id: 1, pid: 7, frames })
    }

    fn fixture() -> (Snapshot, Manifest) {
        let key = vec![
            Field { offset: 0, ty: ScalarType::Str { len: 8 } },
            Field { offset: 8, ty: ScalarType::Stack { space: StackSpace::User, depth: 127 } },
        ];
        let u64_ty = ScalarType::Int { bytes: 8, signed: false };
        let info = map_info("s", MapKind::Count, key, ValueLayout::Scalar { ty: u64_ty });
        let manifest = test_manifest(vec![info]);
        let lost = Value::Stack(StackKey { space: StackSpace::User, id: -libc::ENOMEM, pid: 7, frames: vec![] });
        let rows = vec![
            (vec![Value::Str("w".into()), stack(&["main", "outer", "leaf"])], Value::Uint(3)),
            (vec![Value::Str("w".into()), stack(&["main", "outer"])], Value::Uint(2)),
            (vec![Value::Str("w".into()), lost], Value::Uint(1)),
        ];
        (Snapshot { maps: vec![("s".into(), MapValue::Keyed(rows))], child_exit: None }, manifest)
    }

    #[test]
    fn folded_lines_are_outermost_first_with_key_roots() {
        let (snapshot, manifest) = fixture();
        assert!(has_stacks(&manifest));
        let text = folded(&all_stacks(&snapshot, &manifest));
        assert_eq!(text, "w;[lost: ENOMEM (stack map full)] 1\nw;main;outer 2\nw;main;outer;leaf 3\n");
    }

    #[test]
    fn pprof_round_trips_with_leaf_first_locations_and_weights() {
        let (snapshot, manifest) = fixture();
        let bytes = pprof_bytes(&all_stacks(&snapshot, &manifest));
        let profile = pprof::Profile::decode(bytes.as_slice()).unwrap();
        assert_eq!(profile.string_table[0], "");
        assert_eq!(profile.sample.iter().map(|s| s.value[0]).sum::<i64>(), 6);
        let name_of = |location: u64| {
            let function = profile.function.iter().find(|f| f.id == location).unwrap();
            profile.string_table[function.name as usize].clone()
        };
        let deepest = profile.sample.iter().find(|s| s.value[0] == 3).unwrap();
        let names: Vec<String> = deepest.location_id.iter().map(|id| name_of(*id)).collect();
        assert_eq!(names, ["leaf", "outer", "main", "w"]);
        assert_eq!(profile.function.len(), 5, "w, main, outer, leaf and the lost marker, each once");
    }

    #[test]
    fn flame_graph_svg_names_every_frame() {
        let (snapshot, manifest) = fixture();
        let svg = String::from_utf8(flamegraph_svg(&all_stacks(&snapshot, &manifest), "test").unwrap()).unwrap();
        assert!(svg.starts_with("<?xml"), "{}", &svg[..100.min(svg.len())]);
        for name in ["main", "outer", "leaf"] {
            assert!(svg.contains(name), "{name} missing");
        }
        let empty = String::from_utf8(flamegraph_svg(&[], "none").unwrap()).unwrap();
        assert!(empty.contains("no stacks recorded"));
    }
}
