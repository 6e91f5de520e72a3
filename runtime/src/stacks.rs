//! Stack keys (`ustack`/`kstack`): reading the kernel's stack-trace maps, remembering the
//! address spaces of the processes that appear in user stacks, and filling every decoded
//! stack key of a snapshot with its symbolised frames.
//!
//! A key holds only a stack id (and, for user stacks, the process id): the frames live in the
//! stack-trace map named by `ppis_manifest::stack_map_name`. A failed walk (`bpf_get_stackid`
//! returned `-errno`, e.g. `-EEXIST`/`-ENOMEM` when the stack map is full) is kept and counted
//! under its error, shown as one `[lost: ...]` frame; `-EFAULT` (no stack of that kind, e.g.
//! the kernel stack of a sample taken in user mode) is an empty stack, as in bpftrace.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::fd::AsFd;

use aya::maps::{Map, MapData};
use aya::Ebpf;
use ppis_manifest::{stack_map_name, Manifest, ScalarType, StackSpace};
use serde_json::{json, Value as Json};

use crate::snapshot::{MapValue, Value};
use crate::symbolize::{ProcessMaps, Symbolizer};
use crate::{kernel_maps, sys, RuntimeError};

/// One stack key part, as decoded from a map key and then resolved.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StackKey {
    pub space: StackSpace,
    /// The kernel's stack id, or `-errno` when the walk failed.
    pub id: i32,
    /// The process whose address space a user stack's frames are in (0 for kernel stacks).
    pub pid: u32,
    /// Innermost first; empty until resolved (and for a failed walk).
    pub frames: Vec<Frame>,
}

/// One return address and what it symbolised to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame {
    pub addr: u64,
    /// Function name and the address's offset into it, when symbolisation found one.
    pub symbol: Option<(String, u64)>,
}

impl Frame {
    /// The function name, or the address in hex: what folded stacks and pprof show.
    pub fn name(&self) -> String {
        match &self.symbol {
            Some((name, _)) => name.clone(),
            None => format!("0x{:x}", self.addr),
        }
    }
}

impl fmt::Display for Frame {
    /// bpftrace's form: `name+offset`, or the bare hex address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.symbol {
            Some((name, offset)) => write!(f, "{name}+{offset}"),
            None => write!(f, "0x{:x}", self.addr),
        }
    }
}

impl StackKey {
    /// The text of a failed walk, e.g. `[lost: ENOMEM (stack map full)]`; `None` for a
    /// recorded stack and for `EFAULT`, which is no failure: there was no stack of that kind
    /// to walk (a kernel stack of a sample taken in user mode, a user stack of a kernel
    /// thread), shown as an empty stack as bpftrace does.
    pub fn lost_reason(&self) -> Option<String> {
        (self.id < 0 && self.id != -libc::EFAULT).then(|| {
            let name = match -self.id {
                libc::EEXIST => "EEXIST (stack map hash collision)".to_string(),
                libc::ENOMEM => "ENOMEM (stack map full)".to_string(),
                libc::EINVAL => "EINVAL".to_string(),
                libc::ENOENT => "ENOENT (stack no longer in the stack map)".to_string(),
                errno => format!("errno {errno}"),
            };
            format!("[lost: {name}]")
        })
    }

    /// Frame names outermost first, the order of folded stacks and flame graphs.
    pub fn names_outermost_first(&self) -> Vec<String> {
        match self.lost_reason() {
            Some(reason) => vec![reason],
            None => self.frames.iter().rev().map(Frame::name).collect(),
        }
    }
}

impl fmt::Display for StackKey {
    /// bpftrace's multi-line key: a newline, then one frame per line indented by 8 spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\n")?;
        if let Some(reason) = self.lost_reason() {
            return writeln!(f, "        {reason}");
        }
        for frame in &self.frames {
            writeln!(f, "        {frame}")?;
        }
        Ok(())
    }
}

/// A stack in folded form (`outer;middle;leaf`).
pub fn folded_frames(stack: &StackKey) -> String {
    stack.names_outermost_first().join(";")
}

/// A stack key as JSON: `{"space", "pid", "frames": ["name+off", ..]}` innermost first, or
/// `{"space", "lost": reason}` for a failed walk.
pub fn stack_json(stack: &StackKey) -> Json {
    let space = match stack.space {
        StackSpace::User => "user",
        StackSpace::Kernel => "kernel",
    };
    match stack.lost_reason() {
        Some(reason) => json!({"space": space, "pid": stack.pid, "lost": reason}),
        None => json!({
            "space": space,
            "pid": stack.pid,
            "frames": stack.frames.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
    }
}

/// Every (space, depth) of the manifest's stack key fields.
pub fn stack_kinds(manifest: &Manifest) -> BTreeSet<(StackSpace, u8)> {
    manifest
        .maps
        .iter()
        .flat_map(|info| &info.key)
        .filter_map(|field| match field.ty {
            ScalarType::Stack { space, depth } => Some((space, depth)),
            _ => None,
        })
        .collect()
}

/// The kernel maps stack keys need, taken out of the loader (so they outlive the programs).
pub struct StackMaps {
    maps: Vec<(StackSpace, u8, Map)>,
}

impl StackMaps {
    /// Takes every stack-trace map the manifest's key fields refer to.
    pub fn take(ebpf: &mut Ebpf, manifest: &Manifest) -> Result<StackMaps, RuntimeError> {
        let mut maps = Vec::new();
        for (space, depth) in stack_kinds(manifest) {
            let name = stack_map_name(space, depth);
            let map = ebpf
                .take_map(&name)
                .ok_or_else(|| RuntimeError::Map(format!("stack map {name} is not in the object")))?;
            maps.push((space, depth, map));
        }
        Ok(StackMaps { maps })
    }

    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// The frames of stack `id` in the map for (`space`, `depth`): instruction pointers,
    /// innermost first, up to the first 0. `None` when the id is not in the map.
    pub fn frames(&self, space: StackSpace, depth: u8, id: u32) -> Result<Option<Vec<u64>>, RuntimeError> {
        let Some((_, _, map)) = self.maps.iter().find(|(s, d, _)| (*s, *d) == (space, depth)) else {
            return Err(RuntimeError::Map(format!("no stack map {}", stack_map_name(space, depth))));
        };
        read_stack(map, depth, id)
    }
}

/// Stack `id` of stack-trace `map` (entries of `depth` frames): its instruction pointers,
/// innermost first, up to the first 0; `None` when the id is not in the map.
fn read_stack(map: &Map, depth: u8, id: u32) -> Result<Option<Vec<u64>>, RuntimeError> {
    let data = stack_map_data(map)?;
    let mut value = vec![0u8; 8 * depth as usize];
    let found = sys::map_lookup(data.fd().as_fd(), &id.to_ne_bytes(), &mut value)
        .map_err(|error| RuntimeError::Map(format!("cannot read stack map: {error}")))?;
    Ok(found.then(|| {
        value
            .chunks_exact(8)
            .map(|word| u64::from_ne_bytes(word.try_into().expect("8-byte chunk")))
            .take_while(|&ip| ip != 0)
            .collect()
    }))
}

/// The stack maps still owned by a loader (a live [`crate::Session`]).
pub struct LoaderStackMaps<'a>(pub &'a Ebpf);

impl FrameSource for LoaderStackMaps<'_> {
    fn frames(&self, space: StackSpace, depth: u8, id: u32) -> Result<Option<Vec<u64>>, RuntimeError> {
        let name = stack_map_name(space, depth);
        let map =
            self.0.map(&name).ok_or_else(|| RuntimeError::Map(format!("stack map {name} is not in the object")))?;
        read_stack(map, depth, id)
    }
}

fn stack_map_data(map: &Map) -> Result<&MapData, RuntimeError> {
    match map {
        Map::StackTraceMap(data) => Ok(data),
        _ => Err(RuntimeError::Map("a stack map is not a BPF_MAP_TYPE_STACK_TRACE map".to_string())),
    }
}

/// The processes seen in user stack keys so far, with their memory maps as read while they
/// lived: a process that exits before the maps are read is still symbolised.
#[derive(Default)]
pub struct PidMapsCache {
    maps: BTreeMap<u32, ProcessMaps>,
}

impl PidMapsCache {
    /// Records the memory maps of every process in a user stack key of `maps` that is not yet
    /// known (or, with `refresh`, of every one still alive: a process may `dlopen` later).
    pub fn observe(&mut self, maps: &[(&ppis_manifest::MapInfo, &Map)], refresh: bool) {
        let cpu_count = kernel_maps::possible_cpu_count().unwrap_or(1);
        for &(info, map) in maps {
            let user_offsets: Vec<u32> = info
                .key
                .iter()
                .filter(|field| matches!(field.ty, ScalarType::Stack { space: StackSpace::User, .. }))
                .map(|field| field.offset)
                .collect();
            if user_offsets.is_empty() {
                continue;
            }
            let Some(fd) = map_fd(map) else { continue };
            let Ok(entries) = kernel_maps::read_entries(fd, info, cpu_count) else { continue };
            for entry in entries {
                for &offset in &user_offsets {
                    let Some(pid) = entry.key.get(offset as usize + 4..offset as usize + 8) else { continue };
                    let pid = u32::from_le_bytes(pid.try_into().expect("4 bytes"));
                    self.remember(pid, refresh);
                }
            }
        }
        if refresh {
            let known: Vec<u32> = self.maps.keys().copied().collect();
            for pid in known {
                self.remember(pid, true);
            }
        }
    }

    /// Reads `/proc/PID/maps` if `pid` is new (or always with `refresh`); a process that is
    /// gone keeps what was read before.
    pub fn remember(&mut self, pid: u32, refresh: bool) {
        if pid == 0 || (!refresh && self.maps.contains_key(&pid)) {
            return;
        }
        if let Ok(read) = ProcessMaps::read(pid) {
            if !read.is_empty() {
                self.maps.insert(pid, read);
            }
        }
    }

    pub fn get(&self, pid: u32) -> Option<&ProcessMaps> {
        self.maps.get(&pid)
    }

    pub fn insert(&mut self, pid: u32, maps: ProcessMaps) {
        self.maps.insert(pid, maps);
    }
}

fn map_fd(map: &Map) -> Option<std::os::fd::BorrowedFd<'_>> {
    match map {
        Map::Array(data)
        | Map::HashMap(data)
        | Map::LruHashMap(data)
        | Map::PerCpuArray(data)
        | Map::PerCpuHashMap(data)
        | Map::PerCpuLruHashMap(data) => Some(data.fd().as_fd()),
        _ => None,
    }
}

/// Where frames come from: the kernel's stack maps, or fixed data in tests.
pub trait FrameSource {
    /// Instruction pointers of stack `id`, innermost first; `None` if the id is unknown.
    fn frames(&self, space: StackSpace, depth: u8, id: u32) -> Result<Option<Vec<u64>>, RuntimeError>;
}

impl FrameSource for StackMaps {
    fn frames(&self, space: StackSpace, depth: u8, id: u32) -> Result<Option<Vec<u64>>, RuntimeError> {
        StackMaps::frames(self, space, depth, id)
    }
}

/// Fills every stack key of `maps` (decoded in manifest order) with symbolised frames. A
/// stack id the map no longer holds is reported as lost (`ENOENT`).
pub fn resolve(
    manifest: &Manifest,
    maps: &mut [(String, MapValue)],
    source: &dyn FrameSource,
    symbolizer: &mut dyn Symbolizer,
    pids: &PidMapsCache,
) -> Result<(), RuntimeError> {
    for (name, value) in maps.iter_mut() {
        let Some(info) = manifest.map(name) else { continue };
        let depths: Vec<Option<u8>> = info
            .key
            .iter()
            .map(|field| match field.ty {
                ScalarType::Stack { depth, .. } => Some(depth),
                _ => None,
            })
            .collect();
        if depths.iter().all(Option::is_none) {
            continue;
        }
        let keys: Vec<&mut Vec<Value>> = match value {
            MapValue::Keyed(rows) => rows.iter_mut().map(|(key, _)| key).collect(),
            MapValue::KeyedHist(rows) => rows.iter_mut().map(|(key, _)| key).collect(),
            MapValue::Scalar(_) | MapValue::Hist(_) => Vec::new(),
        };
        for key in keys {
            for (part, depth) in key.iter_mut().zip(&depths) {
                let (Value::Stack(stack), Some(depth)) = (part, depth) else { continue };
                resolve_one(stack, *depth, source, symbolizer, pids)?;
            }
        }
    }
    Ok(())
}

fn resolve_one(
    stack: &mut StackKey,
    depth: u8,
    source: &dyn FrameSource,
    symbolizer: &mut dyn Symbolizer,
    pids: &PidMapsCache,
) -> Result<(), RuntimeError> {
    if stack.id < 0 {
        return Ok(());
    }
    let Some(addrs) = source.frames(stack.space, depth, stack.id as u32)? else {
        stack.id = -libc::ENOENT;
        return Ok(());
    };
    // Every frame but the innermost is a return address, just after its call: look up the
    // call itself, so that a call ending a function is not put in the next one.
    let lookups: Vec<u64> =
        addrs.iter().enumerate().map(|(i, &addr)| if i == 0 { addr } else { addr.saturating_sub(1) }).collect();
    let symbols = match stack.space {
        StackSpace::Kernel => symbolizer.kernel(&lookups),
        StackSpace::User => symbolizer.user(pids.get(stack.pid), &lookups),
    };
    stack.frames = addrs
        .iter()
        .zip(&lookups)
        .zip(symbols)
        .map(|((&addr, &lookup), symbol)| Frame {
            addr,
            symbol: symbol.map(|(name, offset)| (name, offset + (addr - lookup))),
        })
        .collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flame::tests::test_manifest;
    use crate::snapshot::tests::{entry, map_info, words};
    use crate::snapshot::{decode_map, Snapshot};
    use crate::symbolize::Symbol;
    use ppis_manifest::{Field, MapKind, ValueLayout};
    use std::collections::HashMap;

    /// Stack maps as fixed data: (space, id) -> instruction pointers, innermost first.
    struct FakeFrames(HashMap<(StackSpace, u32), Vec<u64>>);

    impl FrameSource for FakeFrames {
        fn frames(&self, space: StackSpace, _depth: u8, id: u32) -> Result<Option<Vec<u64>>, RuntimeError> {
            Ok(self.0.get(&(space, id)).cloned())
        }
    }

    /// Names addresses `0x1000 * k + off` as function `fK+off` (kernel: below 0xd000 only),
    /// and knows the maps of pid 42 only.
    struct FakeSymbolizer;

    impl Symbolizer for FakeSymbolizer {
        fn user(&mut self, maps: Option<&ProcessMaps>, addrs: &[u64]) -> Vec<Option<Symbol>> {
            addrs.iter().map(|&a| maps.map(|_| (format!("user_f{}", a / 0x1000), a % 0x1000))).collect()
        }
        fn kernel(&mut self, addrs: &[u64]) -> Vec<Option<Symbol>> {
            addrs.iter().map(|&a| (a < 0xd000).then(|| (format!("kernel_f{}", a / 0x1000), a % 0x1000))).collect()
        }
    }

    fn stack_key_bytes(comm: &str, id: i32, pid: u32) -> Vec<u8> {
        let mut key = comm.as_bytes().to_vec();
        key.resize(8, 0);
        key.extend_from_slice(&id.to_le_bytes());
        key.extend_from_slice(&pid.to_le_bytes());
        key
    }

    fn fixture() -> (Manifest, Vec<(String, MapValue)>) {
        let user = Field { offset: 8, ty: ScalarType::Stack { space: StackSpace::User, depth: 127 } };
        let kernel = Field { offset: 8, ty: ScalarType::Stack { space: StackSpace::Kernel, depth: 8 } };
        let comm = Field { offset: 0, ty: ScalarType::Str { len: 8 } };
        let u64_ty = ScalarType::Int { bytes: 8, signed: false };
        let users = map_info("users", MapKind::Count, vec![comm, user], ValueLayout::Scalar { ty: u64_ty });
        let kernels = map_info("kernels", MapKind::Count, vec![comm, kernel], ValueLayout::Scalar { ty: u64_ty });
        let manifest = test_manifest(vec![users, kernels]);
        let user_rows = [
            entry(stack_key_bytes("app", 3, 42), vec![words(&[5]), words(&[2])]),
            entry(stack_key_bytes("gone", 4, 77), vec![words(&[1])]),
            entry(stack_key_bytes("app", -libc::EFAULT, 42), vec![words(&[2])]),
            entry(stack_key_bytes("app", -libc::ENOMEM, 42), vec![words(&[6])]),
            entry(stack_key_bytes("app", 9, 42), vec![words(&[1])]),
        ];
        let kernel_rows = [entry(stack_key_bytes("app", 1, 0), vec![words(&[4])])];
        let maps = vec![
            ("users".to_string(), decode_map(&manifest.maps[0], &user_rows).unwrap()),
            ("kernels".to_string(), decode_map(&manifest.maps[1], &kernel_rows).unwrap()),
        ];
        (manifest, maps)
    }

    fn resolved() -> (Manifest, Snapshot) {
        let (manifest, mut maps) = fixture();
        let frames = FakeFrames(HashMap::from([
            ((StackSpace::User, 3), vec![0x3010, 0x2020, 0x1030]),
            ((StackSpace::User, 4), vec![0x5000]),
            ((StackSpace::Kernel, 1), vec![0x7007, 0xdead]),
        ]));
        let mut pids = PidMapsCache::default();
        pids.insert(42, ProcessMaps::default());
        resolve(&manifest, &mut maps, &frames, &mut FakeSymbolizer, &pids).unwrap();
        (manifest, Snapshot { maps, child_exit: None })
    }

    #[test]
    fn stack_keys_render_bpftrace_style_with_lost_and_unknown_frames() {
        let (manifest, snapshot) = resolved();
        insta::assert_snapshot!(crate::render_text(&snapshot, &manifest));
    }

    #[test]
    fn stack_keys_render_as_json_frames() {
        let (manifest, snapshot) = resolved();
        insta::assert_snapshot!(crate::render_json(&snapshot, &manifest));
    }

    #[test]
    fn return_addresses_are_looked_up_one_byte_back_and_offsets_kept() {
        let (_, snapshot) = resolved();
        let MapValue::Keyed(rows) = &snapshot.maps[0].1 else { panic!("keyed") };
        let (key, _) = rows.iter().find(|(_, value)| *value == Value::Uint(7)).unwrap();
        let Value::Stack(stack) = &key[1] else { panic!("a stack") };
        // The innermost frame is the probed instruction itself; the callers' return addresses
        // are symbolised at `addr - 1` and shown with their true offset.
        let shown: Vec<String> = stack.frames.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["user_f3+16", "user_f2+32", "user_f1+48"]);
        assert_eq!(folded_frames(stack), "user_f1;user_f2;user_f3");
    }
}
