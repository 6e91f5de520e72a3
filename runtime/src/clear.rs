//! `clear m;`: a probe cannot walk a hash map in bounded time, so it sends a `ppis.clear`
//! record through the event ring buffer and the runtime empties the map when it reads it
//! (asynchronously, as bpftrace's `clear()`): hash maps lose every key; arrays and unkeyed
//! aggregations (kernel arrays, whose slots always exist) get every slot zeroed.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use aya::maps::Map;
use ppis_manifest::{Manifest, MapInfo, MapKind};

use crate::sys;

/// The event type name of clear records; the same string as `ppis_lang::hir::CLEAR_EVENT`
/// (the runtime does not depend on the language crate; a compiler test checks they agree).
pub const CLEAR_EVENT: &str = "ppis.clear";
/// The record field holding the index of the map to clear in the manifest's maps.
pub const CLEAR_EVENT_MAP_FIELD: &str = "map";

/// The maps a `clear` record may name, by manifest index, each with its own descriptor (the
/// maps stay in the loader; these duplicates outlive nothing but this value).
pub struct MapClearer {
    maps: HashMap<u32, (MapInfo, OwnedFd)>,
    cpu_count: usize,
}

impl MapClearer {
    /// Duplicates the descriptor of every manifest map (`maps`, in manifest order, as the
    /// session took them out of the loader); `None` when the manifest sends no clear records.
    pub fn new(maps: &[Map], manifest: &Manifest) -> io::Result<Option<MapClearer>> {
        let clears = manifest.events.as_ref().is_some_and(|events| events.types.iter().any(|t| t.name == CLEAR_EVENT));
        if !clears {
            return Ok(None);
        }
        let mut clearable = HashMap::new();
        for (index, (info, map)) in manifest.maps.iter().zip(maps).enumerate() {
            let Some(fd) = map_fd(map) else { continue };
            clearable.insert(index as u32, (info.clone(), fd.try_clone_to_owned()?));
        }
        Ok(Some(MapClearer { maps: clearable, cpu_count: crate::kernel_maps::possible_cpu_count()? }))
    }

    /// Empties map number `index`; its name, for messages.
    pub fn clear(&self, index: u32) -> Result<String, String> {
        let (info, fd) = self.maps.get(&index).ok_or_else(|| format!("`clear` of unknown map number {index}"))?;
        let fd = fd.as_fd();
        let mut keys = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        let mut next = vec![0u8; info.key_size as usize];
        while sys::map_next_key(fd, key.as_deref(), &mut next).map_err(|e| format!("clear {}: {e}", info.name))? {
            keys.push(next.clone());
            key = Some(next.clone());
        }
        // Kernel arrays (arrays, unkeyed aggregations and their buckets) cannot lose slots.
        let is_array = matches!(info.kind, MapKind::Array { .. }) || info.key.is_empty();
        if is_array {
            let slot = (info.value_size as usize).next_multiple_of(8);
            let zeros = vec![0u8; if info.per_cpu { slot * self.cpu_count } else { info.value_size as usize }];
            for key in &keys {
                sys::map_update(fd, key, &zeros).map_err(|e| format!("clear {}: {e}", info.name))?;
            }
        } else {
            for key in &keys {
                // A key the probes deleted meanwhile is already gone.
                sys::map_delete(fd, key).map_err(|e| format!("clear {}: {e}", info.name))?;
            }
        }
        Ok(info.name.clone())
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
