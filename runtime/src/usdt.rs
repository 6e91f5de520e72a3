//! USDT probes (`<sys/sdt.h>`'s `DTRACE_PROBE`/`STAP_PROBE`) as an ELF file declares them:
//! one `.note.stapsdt` note per site, each naming its provider, probe name, the address of its
//! `nop`, an optional semaphore and the argument specs (`-4@%eax`, `8@-8(%rbp)`, `4@$5`). The
//! compiler's checker reads them to type the arguments; the runtime reads them again to attach
//! (it never trusts the compiler): a uprobe at the file offset of the site's address.

use std::path::Path;

use object::{Object, ObjectSection};

/// One probe site of an ELF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsdtSite {
    pub provider: String,
    pub name: String,
    /// The site's virtual address in the file's own address space (prelink-adjusted with
    /// `.stapsdt.base`, as `<sys/sdt.h>` expects).
    pub address: u64,
    /// The semaphore's address; 0 when the probe has none.
    pub semaphore: u64,
    /// The argument specs, space-separated, as the note has them.
    pub args: String,
}

/// The note type `<sys/sdt.h>` gives its notes.
const NT_STAPSDT: u32 = 3;

/// Every USDT site of the ELF file at `path`, in note order.
pub fn sites(path: &Path) -> Result<Vec<UsdtSite>, String> {
    let data = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    sites_in(&data).map_err(|problem| format!("{}: {problem}", path.display()))
}

/// Every USDT site of the ELF image `data`.
pub fn sites_in(data: &[u8]) -> Result<Vec<UsdtSite>, String> {
    let file = object::File::parse(data).map_err(|error| format!("not an ELF file: {error}"))?;
    let Some(notes) = file.section_by_name(".note.stapsdt") else { return Ok(Vec::new()) };
    let notes = notes.data().map_err(|error| format!("cannot read .note.stapsdt: {error}"))?;
    // The link-time address of `.stapsdt.base`: notes record the address they were assembled
    // for, which prelinking may have moved (the difference applies to every address).
    let base = file.section_by_name(".stapsdt.base").map(|section| section.address());
    let little = file.is_little_endian();
    let mut sites = Vec::new();
    let mut at = 0usize;
    while at + 12 <= notes.len() {
        let word = |offset: usize| read_u32(notes, at + offset, little);
        let (name_size, desc_size, kind) = (word(0)? as usize, word(4)? as usize, word(8)?);
        let name_start = at + 12;
        let desc_start = name_start + name_size.next_multiple_of(4);
        let next = desc_start + desc_size.next_multiple_of(4);
        let name = notes.get(name_start..name_start + name_size).ok_or("a note runs past its section")?;
        let desc = notes.get(desc_start..desc_start + desc_size).ok_or("a note runs past its section")?;
        if kind == NT_STAPSDT && name == b"stapsdt\0" {
            sites.push(parse_desc(desc, little, base)?);
        }
        at = next;
    }
    Ok(sites)
}

/// One note's description: pc, link-time base, semaphore (8 bytes each on 64-bit targets),
/// then provider, name and arguments as NUL-terminated strings.
fn parse_desc(desc: &[u8], little: bool, base: Option<u64>) -> Result<UsdtSite, String> {
    let (pc, note_base, semaphore) =
        (read_u64(desc, 0, little)?, read_u64(desc, 8, little)?, read_u64(desc, 16, little)?);
    let mut strings = desc.get(24..).ok_or("a stapsdt note too short for its addresses")?.split(|&byte| byte == 0);
    let mut text = || strings.next().map(|bytes| String::from_utf8_lossy(bytes).into_owned());
    let (provider, name, args) = (text(), text(), text());
    let (Some(provider), Some(name)) = (provider, name) else {
        return Err("a stapsdt note without provider or name".to_string());
    };
    let shift = |address: u64| match base {
        Some(base) if address != 0 => address.wrapping_add(base).wrapping_sub(note_base),
        _ => address,
    };
    Ok(UsdtSite { provider, name, address: shift(pc), semaphore: shift(semaphore), args: args.unwrap_or_default() })
}

/// The file offset of virtual address `address` of the ELF file at `path`: where a uprobe on
/// that instruction attaches.
pub fn file_offset(path: &Path, address: u64) -> Result<u64, String> {
    let data = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let file =
        object::File::parse(&*data).map_err(|error| format!("{} is not an ELF file: {error}", path.display()))?;
    file.sections()
        .filter(|section| section.address() <= address && address < section.address() + section.size())
        .find_map(|section| section.file_range().map(|(offset, _)| offset + (address - section.address())))
        .ok_or_else(|| format!("address {address:#x} is in no section of {}", path.display()))
}

/// The file offset to attach a uprobe for site `address` of USDT probe `provider:name` in
/// `path`, after checking that the file (as it is now) still declares that site without a
/// semaphore: the manifest came from a compiler the runtime does not trust.
pub fn attach_offset(path: &Path, provider: &str, name: &str, address: u64) -> Result<u64, String> {
    let site = sites(path)?
        .into_iter()
        .find(|site| site.provider == provider && site.name == name && site.address == address)
        .ok_or_else(|| {
            format!("{} has no USDT probe {provider}:{name} at {address:#x} (rebuilt since?)", path.display())
        })?;
    if site.semaphore != 0 {
        return Err(format!(
            "USDT probe {provider}:{name} is guarded by a semaphore at {:#x}, which ppis does not set",
            site.semaphore
        ));
    }
    file_offset(path, address)
}

fn read_u32(bytes: &[u8], at: usize, little: bool) -> Result<u32, String> {
    let raw: [u8; 4] = bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).ok_or("a truncated note")?;
    Ok(if little { u32::from_le_bytes(raw) } else { u32::from_be_bytes(raw) })
}

fn read_u64(bytes: &[u8], at: usize, little: bool) -> Result<u64, String> {
    let raw: [u8; 8] = bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).ok_or("a truncated note")?;
    Ok(if little { u64::from_le_bytes(raw) } else { u64::from_be_bytes(raw) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(pc: u64, base: u64, semaphore: u64, strings: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [pc, base, semaphore] {
            bytes.extend(word.to_le_bytes());
        }
        bytes.extend(strings.as_bytes());
        bytes
    }

    #[test]
    fn a_note_gives_provider_name_address_and_args() {
        let site = parse_desc(&desc(0x1000, 0x2000, 0, "app\0fire\0-4@%eax 8@-8(%rbp)\0"), true, None).unwrap();
        assert_eq!(
            site,
            UsdtSite {
                provider: "app".into(),
                name: "fire".into(),
                address: 0x1000,
                semaphore: 0,
                args: "-4@%eax 8@-8(%rbp)".into()
            }
        );
    }

    #[test]
    fn prelinked_addresses_move_with_the_base_section() {
        let site = parse_desc(&desc(0x1000, 0x2000, 0x3000, "app\0fire\0\0"), true, Some(0x2100)).unwrap();
        assert_eq!((site.address, site.semaphore), (0x1100, 0x3100));
        assert!(parse_desc(&desc(1, 2, 3, "only-provider"), true, None).is_err());
        assert!(parse_desc(&[0; 10], true, None).is_err());
    }
}
