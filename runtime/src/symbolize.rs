//! Symbolisation of stack frames: user addresses through a process's memory maps (kept from
//! `/proc/PID/maps`, so the process may be gone) to file offsets in ELF files, which blazesym
//! resolves with their symbol tables; kernel addresses with blazesym's kernel source
//! (kallsyms).

use std::path::PathBuf;

use blazesym::symbolize::source::{Elf, Kernel, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer as Blazesym};
use blazesym::MaybeDefault;

/// A function name and the address's offset into it.
pub type Symbol = (String, u64);

/// Turns addresses into symbols; one answer per address, `None` when unknown.
pub trait Symbolizer {
    /// User addresses of a process whose maps are `maps` (`None`: never seen alive).
    fn user(&mut self, maps: Option<&ProcessMaps>, addrs: &[u64]) -> Vec<Option<Symbol>>;
    fn kernel(&mut self, addrs: &[u64]) -> Vec<Option<Symbol>>;
}

/// One file-backed executable mapping of a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    pub path: PathBuf,
}

/// The file-backed executable mappings of one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessMaps {
    pub mappings: Vec<Mapping>,
}

impl ProcessMaps {
    /// Reads `/proc/PID/maps`.
    pub fn read(pid: u32) -> std::io::Result<ProcessMaps> {
        Ok(ProcessMaps::parse(&std::fs::read_to_string(format!("/proc/{pid}/maps"))?))
    }

    /// Parses the text of `/proc/PID/maps`, keeping executable mappings of files (lines like
    /// `5581a000-5581b000 r-xp 00001000 08:01 1234 /usr/bin/x`).
    pub fn parse(text: &str) -> ProcessMaps {
        let mappings = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let (range, perms, offset) = (fields.next()?, fields.next()?, fields.next()?);
                let (_device, _inode) = (fields.next()?, fields.next()?);
                let path: Vec<&str> = fields.collect();
                let path = path.join(" ");
                if !perms.contains('x') || !path.starts_with('/') {
                    return None;
                }
                let (start, end) = range.split_once('-')?;
                Some(Mapping {
                    start: u64::from_str_radix(start, 16).ok()?,
                    end: u64::from_str_radix(end, 16).ok()?,
                    offset: u64::from_str_radix(offset, 16).ok()?,
                    path: PathBuf::from(path.trim_end_matches(" (deleted)")),
                })
            })
            .collect();
        ProcessMaps { mappings }
    }

    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// The mapping holding `addr` and the file offset `addr` is at.
    pub fn file_offset(&self, addr: u64) -> Option<(&Mapping, u64)> {
        self.mappings.iter().find(|m| (m.start..m.end).contains(&addr)).map(|m| (m, addr - m.start + m.offset))
    }
}

/// The real symboliser (blazesym), caching parsed ELF files and kallsyms across calls.
pub struct BlazeSymbolizer {
    inner: Blazesym,
}

impl Default for BlazeSymbolizer {
    fn default() -> Self {
        BlazeSymbolizer { inner: Blazesym::new() }
    }
}

fn symbol(result: &Symbolized<'_>) -> Option<Symbol> {
    match result {
        Symbolized::Sym(sym) => Some((sym.name.to_string(), sym.offset as u64)),
        Symbolized::Unknown(_) => None,
    }
}

impl Symbolizer for BlazeSymbolizer {
    fn user(&mut self, maps: Option<&ProcessMaps>, addrs: &[u64]) -> Vec<Option<Symbol>> {
        let Some(maps) = maps else { return vec![None; addrs.len()] };
        addrs
            .iter()
            .map(|&addr| {
                let (mapping, offset) = maps.file_offset(addr)?;
                let source = Source::Elf(Elf::new(&mapping.path));
                let found = self.inner.symbolize(&source, Input::FileOffset(&[offset])).ok()?;
                found.first().and_then(symbol)
            })
            .collect()
    }

    fn kernel(&mut self, addrs: &[u64]) -> Vec<Option<Symbol>> {
        let mut kernel = Kernel::default();
        // kallsyms names every function; searching for a vmlinux image is slow and rarely
        // finds one on production hosts.
        kernel.vmlinux = MaybeDefault::None;
        let source = Source::Kernel(kernel);
        match self.inner.symbolize(&source, Input::AbsAddr(addrs)) {
            Ok(found) => found.iter().map(symbol).collect(),
            Err(_) => vec![None; addrs.len()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_maps_keep_executable_file_mappings_and_translate_offsets() {
        let text = "\
5581a000-5581b000 r--p 00000000 08:01 1234 /usr/bin/x
5581b000-5581d000 r-xp 00001000 08:01 1234 /usr/bin/x
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 [heap]
7fff0000-7fff2000 r-xp 00000000 00:00 0 [vdso]
7f1000000000-7f1000100000 r-xp 00028000 08:01 99 /usr/lib/my lib.so (deleted)
";
        let maps = ProcessMaps::parse(text);
        assert_eq!(maps.mappings.len(), 2);
        assert_eq!(maps.mappings[1].path, PathBuf::from("/usr/lib/my lib.so"));
        let (mapping, offset) = maps.file_offset(0x5581b010).unwrap();
        assert_eq!(mapping.path, PathBuf::from("/usr/bin/x"));
        assert_eq!(offset, 0x1010);
        assert!(maps.file_offset(0x5581a010).is_none(), "not executable");
    }

    /// blazesym resolves a function of this very test binary by file offset, as it does for
    /// a process that has exited since its maps were read.
    #[test]
    fn user_addresses_symbolise_through_cached_maps() {
        let maps = ProcessMaps::read(std::process::id()).unwrap();
        let addr = proc_maps_keep_executable_file_mappings_and_translate_offsets as fn() as usize as u64;
        let found = BlazeSymbolizer::default().user(Some(&maps), &[addr]);
        let (name, _) = found[0].clone().expect("symbolised");
        assert!(name.contains("proc_maps_keep_executable_file_mappings"), "{name}");
        assert_eq!(BlazeSymbolizer::default().user(None, &[addr]), vec![None]);
    }
}
