//! USDT probes (`<sys/sdt.h>`'s `DTRACE_PROBE`/`STAP_PROBE`) as an ELF file declares them:
//! one `.note.stapsdt` note per site, each naming its provider, probe name, the address of its
//! `nop`, an optional semaphore and the argument specs (`-4@%eax`, `8@-8(%rbp)`, `4@$5`). The
//! compiler's checker reads them to type the arguments; the runtime reads them again to attach
//! (it never trusts the compiler): a uprobe at the file offset of the site's address.
//!
//! A site guarded by a semaphore (`_SDT_HAS_SEMAPHORES`: the program only reaches the `nop`
//! while a 16-bit counter in `.probes` is non-zero) is attached as bpftrace and libbpf do: a
//! perf event on the kernel's `uprobe` PMU given the semaphore's file offset as its
//! `ref_ctr_offset`, so the kernel itself increments the counter in every process that maps
//! the file (now or later) and decrements it when the event goes. aya 0.13 cannot pass that
//! offset, so these sites get their own perf event and BPF link ([`attach_guarded`]).

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use object::{Object, ObjectSection, ObjectSegment, SectionFlags, SegmentFlags};

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
    /// Where the kernel finds the semaphore: its file offset, or why the kernel could not set
    /// it (not in a writable section with bytes in the file, misaligned, or on a file page an
    /// earlier writable segment also maps). `None` when the probe has no semaphore. Only
    /// [`sites_in`] fills it (it needs the whole file).
    pub semaphore_offset: Option<Result<u64, String>>,
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
            let mut site = parse_desc(desc, little, base)?;
            if site.semaphore != 0 {
                site.semaphore_offset = Some(semaphore_file_offset(&file, site.semaphore));
            }
            sites.push(site);
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
    Ok(UsdtSite {
        provider,
        name,
        address: shift(pc),
        semaphore: shift(semaphore),
        semaphore_offset: None,
        args: args.unwrap_or_default(),
    })
}

/// The file offset of the USDT semaphore at virtual address `address` of the ELF file at
/// `path`, or why the kernel could not set it there.
pub fn semaphore_offset(path: &Path, address: u64) -> Result<u64, String> {
    let data = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let file =
        object::File::parse(&*data).map_err(|error| format!("{} is not an ELF file: {error}", path.display()))?;
    semaphore_file_offset(&file, address)
}

/// The semaphore's size: `<sys/sdt.h>` declares it `unsigned short`.
const SEMAPHORE_BYTES: u64 = 2;

/// `SHF_WRITE`: the section is writable at run time.
const SHF_WRITE: u64 = 0x1;

/// The file offset of the semaphore at virtual address `address` (as libbpf computes it:
/// address minus its section's address plus the section's file offset), or why the kernel
/// could not increment it there: the kernel finds the counter through the file's writable
/// private mapping (`valid_ref_ctr_vma`), so it must have bytes in the file (not `.bss`), sit
/// in a writable section, and be 2-byte aligned (`uprobe_register` refuses other offsets).
fn semaphore_file_offset(file: &object::File<'_>, address: u64) -> Result<u64, String> {
    let section = file
        .sections()
        .find(|section| {
            section.address() != 0
                && section.address() <= address
                && address.saturating_add(SEMAPHORE_BYTES) <= section.address().saturating_add(section.size())
        })
        .ok_or_else(|| format!("the semaphore at {address:#x} is in no section of the file"))?;
    let section_name = section.name().unwrap_or("?").to_string();
    let writable = match section.flags() {
        SectionFlags::Elf { sh_flags, .. } => sh_flags.0 & SHF_WRITE != 0,
        _ => false,
    };
    if !writable {
        return Err(format!(
            "the semaphore at {address:#x} is in read-only section `{section_name}`, where the kernel cannot count"
        ));
    }
    let Some((section_offset, _)) = section.file_range() else {
        return Err(format!(
            "the semaphore at {address:#x} is in `{section_name}`, which has no bytes in the file (the kernel \
             counts in the file's mapped pages)"
        ));
    };
    let offset = section_offset
        .checked_add(address - section.address())
        .ok_or_else(|| format!("the semaphore at {address:#x} is past the end of any file"))?;
    if offset % SEMAPHORE_BYTES != 0 {
        return Err(format!("the semaphore at {address:#x} is not 2-byte aligned in the file (offset {offset:#x})"));
    }
    let segments: Vec<Loadable> = file
        .segments()
        .map(|segment| {
            let (file_offset, file_size) = segment.file_range();
            let writable = match segment.flags() {
                SegmentFlags::Elf { p_flags, .. } => p_flags.0 & PF_W != 0,
                _ => false,
            };
            Loadable { address: segment.address(), file_offset, file_size, writable }
        })
        .collect();
    if let Some(other) = earlier_writable_mapping(&segments, address, offset, crate::sys::page_size()) {
        return Err(format!(
            "the semaphore at {address:#x} shares its file page with the writable segment at {other:#x} (RELRO, as \
             lld lays files out), where the kernel would count it in processes started after the probe attaches; \
             give the semaphore a page of its own (a page-aligned `.probes`) or link with GNU ld"
        ));
    }
    Ok(offset)
}

/// `PF_W`: the segment is mapped writable.
const PF_W: u32 = 0x2;

/// A loadable segment of an ELF file, as the kernel maps it.
struct Loadable {
    address: u64,
    file_offset: u64,
    file_size: u64,
    writable: bool,
}

/// The address of a writable segment mapped below the semaphore's own segment whose mapping
/// also covers the semaphore's file page, if any. The kernel increments the semaphore in the
/// first writable mapping of its file page it finds (`find_ref_ctr_vma`, lowest address
/// first): when a process maps the file after the probe attached, an earlier writable segment
/// sharing the page (lld's separate RELRO segment, writable until the dynamic linker protects
/// it) gets the increment, in its zero-filled tail, and the real semaphore stays 0.
fn earlier_writable_mapping(segments: &[Loadable], address: u64, offset: u64, page: u64) -> Option<u64> {
    let own = segments.iter().find(|segment| {
        segment.address <= address && address < segment.address.saturating_add(segment.file_size.max(1))
    })?;
    let semaphore_page = offset / page * page;
    segments
        .iter()
        .filter(|segment| segment.writable && segment.address < own.address && segment.file_size > 0)
        .find(|segment| {
            let first_page = segment.file_offset / page * page;
            let end = segment.file_offset.saturating_add(segment.file_size).checked_next_multiple_of(page);
            let end = end.unwrap_or(u64::MAX);
            first_page <= semaphore_page && semaphore_page < end
        })
        .map(|segment| segment.address)
}

/// The file offset of virtual address `address` of the ELF file at `path`: where a uprobe on
/// that instruction attaches.
pub fn file_offset(path: &Path, address: u64) -> Result<u64, String> {
    let data = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let file =
        object::File::parse(&*data).map_err(|error| format!("{} is not an ELF file: {error}", path.display()))?;
    file.sections()
        .filter(|section| section.address() <= address && address < section.address().saturating_add(section.size()))
        .find_map(|section| {
            section.file_range().and_then(|(offset, _)| offset.checked_add(address - section.address()))
        })
        .ok_or_else(|| format!("address {address:#x} is in no section of {}", path.display()))
}

/// Where the uprobe of one USDT site goes: the site's file offset and, for a site guarded by
/// a semaphore, the semaphore's file offset (the uprobe's reference counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachOffsets {
    pub site: u64,
    pub semaphore: Option<u64>,
}

/// The file offsets to attach a uprobe for site `address` of USDT probe `provider:name` in
/// `path`, after checking that the file (as it is now) still declares that site: the manifest
/// came from a compiler the runtime does not trust.
pub fn attach_offsets(path: &Path, provider: &str, name: &str, address: u64) -> Result<AttachOffsets, String> {
    let site = sites(path)?
        .into_iter()
        .find(|site| site.provider == provider && site.name == name && site.address == address)
        .ok_or_else(|| {
            format!("{} has no USDT probe {provider}:{name} at {address:#x} (rebuilt since?)", path.display())
        })?;
    let semaphore = match site.semaphore_offset {
        None => None,
        Some(Ok(offset)) => Some(offset),
        Some(Err(problem)) => return Err(format!("USDT probe {provider}:{name}: {problem}")),
    };
    Ok(AttachOffsets { site: file_offset(path, address)?, semaphore })
}

/// Where the kernel's `uprobe` PMU is described.
const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";

/// A USDT site attached with its semaphore: the uprobe perf event (which holds the kernel's
/// increment of the semaphore) and the BPF link running the program on it. Dropping it closes
/// both: the link detaches the program, the event's release unregisters the uprobe and
/// decrements the semaphore.
pub(crate) struct GuardedLink {
    _link: OwnedFd,
    _event: OwnedFd,
}

/// Attaches `program` (a loaded uprobe program) to the USDT site at file offset `site` of
/// `path`, with the kernel counting the semaphore at file offset `semaphore`, in every process.
pub(crate) fn attach_guarded(
    program: BorrowedFd<'_>,
    path: &str,
    site: u64,
    semaphore: u64,
) -> Result<GuardedLink, String> {
    let pmu_type = read_pmu_file("type")?
        .trim()
        .parse::<u32>()
        .map_err(|error| format!("{UPROBE_PMU}/type is not a PMU type: {error}"))?;
    let shift = ref_ctr_offset_shift(&read_pmu_file("format/ref_ctr_offset")?)?;
    if shift > 0 && semaphore >> (64 - shift) != 0 {
        return Err(format!("the semaphore's file offset {semaphore:#x} does not fit the uprobe PMU's config"));
    }
    let path_c = std::ffi::CString::new(path).map_err(|_| format!("the path {path:?} contains a NUL byte"))?;
    let event = crate::sys::perf_event_open_uprobe(pmu_type, &path_c, site, semaphore << shift)
        .map_err(|error| format!("cannot open the uprobe perf event for {path} at {site:#x}: {error}"))?;
    let link = crate::sys::bpf_link_create_perf_event(program, std::os::fd::AsFd::as_fd(&event))
        .map_err(|error| format!("cannot attach the program to the uprobe perf event (BPF_LINK_CREATE): {error}"))?;
    Ok(GuardedLink { _link: link, _event: event })
}

fn read_pmu_file(name: &str) -> Result<String, String> {
    std::fs::read_to_string(format!("{UPROBE_PMU}/{name}")).map_err(|error| {
        format!("cannot read {UPROBE_PMU}/{name} (the kernel's uprobe PMU sets USDT semaphores): {error}")
    })
}

/// The bit where the PMU's `format/ref_ctr_offset` (`config:32-63`) puts the reference
/// counter's offset in `config`.
fn ref_ctr_offset_shift(format: &str) -> Result<u32, String> {
    let format = format.trim();
    let bits = format
        .strip_prefix("config:")
        .ok_or_else(|| format!("the uprobe PMU's ref_ctr_offset is `{format}`, not in `config`"))?;
    let first = bits.split('-').next().unwrap_or(bits);
    first
        .parse::<u32>()
        .ok()
        .filter(|&shift| shift < 64)
        .ok_or_else(|| format!("the uprobe PMU's ref_ctr_offset is `{format}`, not a bit range"))
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
                semaphore_offset: None,
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

    #[test]
    fn the_reference_counter_offset_goes_where_the_pmu_format_says() {
        assert_eq!(ref_ctr_offset_shift("config:32-63\n"), Ok(32));
        assert!(ref_ctr_offset_shift("config1:0-63").is_err());
        assert!(ref_ctr_offset_shift("config:x").is_err());
        assert!(ref_ctr_offset_shift("config:64-70").is_err());
    }

    #[test]
    fn a_semaphore_on_a_page_an_earlier_writable_segment_maps_is_found() {
        const PAGE: u64 = 0x1000;
        // lld's layout: RELRO (writable until ld.so protects it) ends at file 0x7b378, the data
        // segment starts in the same file page.
        let relro = Loadable { address: 0x79470, file_offset: 0x77470, file_size: 0x3f08, writable: true };
        let data = Loadable { address: 0x7e378, file_offset: 0x7b378, file_size: 0x9c2, writable: true };
        let text = Loadable { address: 0x21350, file_offset: 0x20350, file_size: 0x57120, writable: false };
        let segments = [text, relro, data];
        assert_eq!(earlier_writable_mapping(&segments, 0x7ed38, 0x7bd38, PAGE), Some(0x79470));
        // On a page of its own (page-aligned in the data segment) it is safe.
        assert_eq!(earlier_writable_mapping(&segments, 0x7f000, 0x7c000, PAGE), None);
        // GNU ld's layout: one writable segment holds RELRO and data.
        let single = [Loadable { address: 0x3000, file_offset: 0x2000, file_size: 0x2000, writable: true }];
        assert_eq!(earlier_writable_mapping(&single, 0x4010, 0x3010, PAGE), None);
    }
}
