//! How each source map becomes a kernel map: key and value byte layouts, map type, size.
//!
//! The same layout feeds the generated code (where it stores keys and updates values) and
//! the manifest (how the runtime decodes them), so the two cannot disagree.

use ppis_ir::{Map, MapType};
use ppis_lang::hir::{MapDef, MapKind};
use ppis_lang::Ty;
use ppis_manifest as manifest;

/// Buckets of a power-of-two histogram: negative, zero, and `[2^k, 2^(k+1))` for k in 0..64.
pub const LOG2_BUCKETS: u32 = 66;

/// Where a map's pieces live in the kernel key and value.
#[derive(Clone, Debug)]
pub struct MapLayout {
    pub kernel: Map,
    /// Byte offset of each user key field in the kernel key.
    pub key_offsets: Vec<u32>,
    /// Offset of the `u64` histogram bucket in a keyed histogram's key.
    pub bucket_offset: Option<u32>,
    /// Unkeyed maps are arrays indexed by 0, or by the bucket for histograms.
    pub is_array: bool,
    pub info: manifest::MapInfo,
}

pub fn bucket_count(kind: MapKind) -> Option<u32> {
    match kind {
        MapKind::Hist => Some(LOG2_BUCKETS),
        MapKind::Lhist { lo, hi, step } => Some(lhist_inner_buckets(lo, hi, step) + 2),
        _ => None,
    }
}

/// Number of `step`-wide buckets between `lo` and `hi` (the last one may be partial).
pub fn lhist_inner_buckets(lo: i64, hi: i64, step: i64) -> u32 {
    let width = (hi as i128 - lo as i128).max(0) as u128;
    let step = step.max(1) as u128;
    width.div_ceil(step).min(u32::MAX as u128 / 2) as u32
}

fn align_to(x: u32, a: u32) -> u32 {
    x.div_ceil(a) * a
}

pub(crate) fn scalar(ty: Ty) -> manifest::ScalarType {
    match ty {
        Ty::Int { bytes, signed } => manifest::ScalarType::Int { bytes, signed },
        Ty::Bool => manifest::ScalarType::Bool,
        Ty::Str { len } => manifest::ScalarType::Str { len },
        Ty::Buf { len } => manifest::ScalarType::Buf { len },
        Ty::Stack { user, depth } => manifest::ScalarType::Stack { space: stack_space(user), depth },
    }
}

fn stack_space(user: bool) -> manifest::StackSpace {
    if user {
        manifest::StackSpace::User
    } else {
        manifest::StackSpace::Kernel
    }
}

/// Most entries of one stack-trace map (each holds `8 * depth` bytes, allocated at load).
pub const MAX_STACK_MAP_ENTRIES: u32 = 16384;

/// The stack-trace maps the program needs, one per distinct (user, depth) among the maps'
/// key types, in order of first appearance: they follow the source maps in the module, so the
/// `i`-th of them is module map `program.maps.len() + i`. Each has room for twice the entries
/// of the maps keyed by it (the kernel hashes stacks into `max_entries` buckets, and a
/// collision with a different stack fails the walk), at most `MAX_STACK_MAP_ENTRIES`.
pub fn stack_maps(defs: &[MapDef]) -> Vec<(bool, u8, Map)> {
    let mut found: Vec<(bool, u8, Map)> = Vec::new();
    for def in defs {
        for ty in &def.key {
            let Ty::Stack { user, depth } = *ty else { continue };
            let wanted = def.max_entries.unwrap_or(1).clamp(1, MAX_STACK_MAP_ENTRIES as u64) as u32 * 2;
            match found.iter_mut().find(|(u, d, _)| (*u, *d) == (user, depth)) {
                Some((_, _, map)) => map.max_entries = (map.max_entries + wanted).min(MAX_STACK_MAP_ENTRIES),
                None => found.push((
                    user,
                    depth,
                    Map {
                        name: manifest::stack_map_name(stack_space(user), depth),
                        kind: MapType::StackTrace,
                        key_size: 4,
                        value_size: 8 * depth as u32,
                        max_entries: wanted.min(MAX_STACK_MAP_ENTRIES),
                    },
                )),
            }
        }
    }
    found
}

/// The module map id of the stack-trace map for (`user`, `depth`), if any key uses it.
pub fn stack_map_id(defs: &[MapDef], user: bool, depth: u8) -> Option<usize> {
    stack_maps(defs).iter().position(|(u, d, _)| (*u, *d) == (user, depth)).map(|i| defs.len() + i)
}

fn manifest_kind(kind: MapKind) -> manifest::MapKind {
    match kind {
        MapKind::Count => manifest::MapKind::Count,
        MapKind::Sum => manifest::MapKind::Sum,
        MapKind::Min => manifest::MapKind::Min,
        MapKind::Max => manifest::MapKind::Max,
        MapKind::Avg => manifest::MapKind::Avg,
        MapKind::Stats => manifest::MapKind::Stats,
        MapKind::Hist => manifest::MapKind::Hist,
        MapKind::Lhist { lo, hi, step } => manifest::MapKind::Lhist { lo, hi, step },
        MapKind::Hash => manifest::MapKind::Hash,
        MapKind::Array { len, .. } => manifest::MapKind::Array { len },
    }
}

pub fn layout(def: &MapDef) -> MapLayout {
    if let MapKind::Array { len, per_cpu } = def.kind {
        return array_layout(def, len, per_cpu);
    }
    let mut offset = 0u32;
    let mut key_offsets = Vec::new();
    for ty in &def.key {
        offset = align_to(offset, ty.align());
        key_offsets.push(offset);
        offset += ty.size();
    }
    let buckets = bucket_count(def.kind);
    let keyed = !def.key.is_empty();
    let bucket_offset = match (keyed, buckets) {
        (true, Some(_)) => {
            offset = align_to(offset, 8);
            let at = offset;
            offset += 8;
            Some(at)
        }
        _ => None,
    };
    let key_size = if keyed { align_to(offset.max(1), 8) } else { 4 };
    let signed = def.value.is_signed();
    let (value_size, value) = match def.kind {
        MapKind::Min | MapKind::Max => (16, manifest::ValueLayout::Extremum { signed }),
        MapKind::Avg | MapKind::Stats => (16, manifest::ValueLayout::SumCount { signed }),
        MapKind::Hash | MapKind::Array { .. } => {
            (align_to(def.value.size(), 8), manifest::ValueLayout::Scalar { ty: scalar(def.value) })
        }
        MapKind::Count | MapKind::Hist | MapKind::Lhist { .. } => {
            (8, manifest::ValueLayout::Scalar { ty: scalar(Ty::U64) })
        }
        MapKind::Sum => (8, manifest::ValueLayout::Scalar { ty: scalar(def.value) }),
    };
    let is_array = !keyed;
    // Aggregations are always per-CPU; plain maps when declared `percpu_hash`/`lru_percpu_hash`.
    let per_cpu = def.kind.is_aggregation() || def.per_cpu;
    let max_entries = if keyed {
        let max = def.max_entries.unwrap_or(1).clamp(1, u32::MAX as u64) as u32;
        max.saturating_mul(buckets.unwrap_or(1).min(LOG2_BUCKETS))
    } else {
        buckets.unwrap_or(1)
    };
    let kind = match (per_cpu, is_array) {
        (true, false) if def.lru => MapType::LruPerCpuHash,
        (false, false) if def.lru => MapType::LruHash,
        (true, true) => MapType::PerCpuArray,
        (true, false) => MapType::PerCpuHash,
        (false, true) => MapType::Array,
        (false, false) => MapType::Hash,
    };
    let kernel = Map { name: def.name.clone(), kind, key_size, value_size, max_entries };
    let info = manifest::MapInfo {
        name: def.name.clone(),
        object_name: def.name.clone(),
        kind: manifest_kind(def.kind),
        per_cpu,
        key: def
            .key
            .iter()
            .zip(&key_offsets)
            .map(|(ty, off)| manifest::Field { offset: *off, ty: scalar(*ty) })
            .collect(),
        key_size,
        bucket_offset,
        value_size,
        value,
    };
    MapLayout { kernel, key_offsets, bucket_offset, is_array, info }
}

/// An `array[len]`: a kernel (per-CPU) array of `len` values whose key is the `u32` index.
/// The source index is a `u64`; the code stores its low 4 bytes once the verifier has proven
/// it below `len`, so the truncation never changes it.
fn array_layout(def: &MapDef, len: u32, per_cpu: bool) -> MapLayout {
    let index = manifest::ScalarType::Int { bytes: 4, signed: false };
    let value_size = align_to(def.value.size(), 8);
    let kind = if per_cpu { MapType::PerCpuArray } else { MapType::Array };
    let kernel = Map { name: def.name.clone(), kind, key_size: 4, value_size, max_entries: len };
    let info = manifest::MapInfo {
        name: def.name.clone(),
        object_name: def.name.clone(),
        kind: manifest_kind(def.kind),
        per_cpu,
        key: vec![manifest::Field { offset: 0, ty: index }],
        key_size: 4,
        bucket_offset: None,
        value_size,
        value: manifest::ValueLayout::Scalar { ty: scalar(def.value) },
    };
    MapLayout { kernel, key_offsets: vec![0], bucket_offset: None, is_array: true, info }
}
