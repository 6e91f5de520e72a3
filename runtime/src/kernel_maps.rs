//! Reading whole kernel maps as raw bytes: walk the keys with `BPF_MAP_GET_NEXT_KEY`, read
//! each value with `BPF_MAP_LOOKUP_ELEM`, split per-CPU values into one chunk per CPU.
//!
//! Boundary: byte shuffling only; what the bytes mean is `snapshot`'s business.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;

use ppis_manifest::MapInfo;

use crate::snapshot::RawEntry;
use crate::sys;

/// The file listing the CPUs the kernel may ever bring up: per-CPU map values have one slot
/// for each of them, online or not.
const POSSIBLE_CPUS_PATH: &str = "/sys/devices/system/cpu/possible";

/// Number of possible CPUs, which sizes per-CPU map values.
pub fn possible_cpu_count() -> io::Result<usize> {
    let text = std::fs::read_to_string(Path::new(POSSIBLE_CPUS_PATH))?;
    parse_cpu_list(&text)
        .map_err(|problem| io::Error::new(io::ErrorKind::InvalidData, format!("{POSSIBLE_CPUS_PATH}: {problem}")))
}

/// Counts the CPUs of a kernel CPU list such as `0-3,5,7-8`.
pub fn parse_cpu_list(text: &str) -> Result<usize, String> {
    let mut count = 0;
    for range in text.trim().split(',').filter(|range| !range.is_empty()) {
        let number = |part: &str| part.trim().parse::<usize>().map_err(|_| format!("bad CPU list `{}`", text.trim()));
        count += match range.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (number(first)?, number(last)?);
                if last < first {
                    return Err(format!("bad CPU range `{range}`"));
                }
                last - first + 1
            }
            None => number(range).map(|_| 1)?,
        };
    }
    if count == 0 {
        return Err("no CPUs listed".to_string());
    }
    Ok(count)
}

/// Every element of the map behind `fd`, laid out as `info` says. `cpu_count` is the number
/// of possible CPUs; it only matters for per-CPU maps.
pub fn read_entries(fd: BorrowedFd<'_>, info: &MapInfo, cpu_count: usize) -> io::Result<Vec<RawEntry>> {
    let value_size = info.value_size as usize;
    // The kernel copies per-CPU values out in 8-byte-aligned slots, one per possible CPU.
    let (slot_size, slots) = if info.per_cpu { (value_size.next_multiple_of(8), cpu_count) } else { (value_size, 1) };
    let mut entries = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    let mut next_key = vec![0u8; info.key_size as usize];
    let mut value = vec![0u8; slot_size * slots];
    while sys::map_next_key(fd, key.as_deref(), &mut next_key)? {
        // A key deleted between the two calls is simply skipped.
        if sys::map_lookup(fd, &next_key, &mut value)? {
            let values = value.chunks(slot_size).map(|slot| slot[..value_size].to_vec()).collect();
            entries.push(RawEntry { key: next_key.clone(), values });
        }
        key = Some(next_key.clone());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cpu_lists() {
        assert_eq!(parse_cpu_list("0\n"), Ok(1));
        assert_eq!(parse_cpu_list("0-1\n"), Ok(2));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Ok(7));
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a-b").is_err());
    }

    #[test]
    fn this_machine_has_possible_cpus() {
        assert!(possible_cpu_count().unwrap() >= 1);
    }
}
