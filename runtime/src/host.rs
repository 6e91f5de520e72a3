//! Host facts the compiler and the runtime need before touching the kernel: where tracefs is,
//! which tracepoints exist and what their records look like, which functions an ELF file
//! defines, and the closest existing names when a lookup misses.
//!
//! Boundary: only reads files (tracefs, ELF binaries); never loads or attaches anything, so it
//! works without root except where tracefs itself refuses to be read.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where tracefs lives on current kernels.
pub const TRACEFS_PATH: &str = "/sys/kernel/tracing";
/// Where older setups expose it, through debugfs.
pub const DEBUGFS_TRACEFS_PATH: &str = "/sys/kernel/debug/tracing";

/// How many suggestions a "not found" error carries.
const SUGGESTION_COUNT: usize = 3;
/// Jaro-Winkler similarity below which a name is too different to be worth suggesting.
const SUGGESTION_MIN_SIMILARITY: f64 = 0.7;

/// One field of a tracepoint record, as its tracefs `format` file describes it. Mirrors
/// `ppis_lang::targets::TracepointField` (this crate must not depend on the language crate),
/// plus `is_data_loc`, which the language cannot represent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpField {
    pub name: String,
    /// Byte offset in the record the program's context points at.
    pub offset: u32,
    /// Size of one element in bytes (the whole field when it is not an array).
    pub size: u32,
    pub signed: bool,
    /// `Some(n)` for an array field `T name[n]`.
    pub array_len: Option<u32>,
    /// `char name[n]`: read as a string of `n` bytes.
    pub is_char_array: bool,
    /// `__data_loc T[] name` (or `__rel_loc`): the record holds a 32-bit locator of
    /// variable-length data, not the data. Not readable as a plain field.
    pub is_data_loc: bool,
    /// The C declaration as tracefs prints it, for messages.
    pub c_decl: String,
}

/// Why a host fact could not be read. `suggestions` are the closest existing names;
/// `unavailable` means the host could not be asked at all (e.g. tracefs not mounted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostError {
    pub message: String,
    pub suggestions: Vec<String>,
    pub unavailable: bool,
}

impl HostError {
    fn not_found(message: String, suggestions: Vec<String>) -> HostError {
        HostError { message, suggestions, unavailable: false }
    }
    fn unavailable(message: String) -> HostError {
        HostError { message, suggestions: Vec::new(), unavailable: true }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if !self.suggestions.is_empty() {
            write!(f, "; closest: {}", self.suggestions.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for HostError {}

/// The tracefs mount point: `/sys/kernel/tracing`, else the debugfs location.
pub fn tracefs_root() -> Result<PathBuf, HostError> {
    tracefs_root_among(&[Path::new(TRACEFS_PATH), Path::new(DEBUGFS_TRACEFS_PATH)])
}

/// The first candidate that looks like a mounted tracefs. An unmounted `/sys/kernel/tracing`
/// still exists as an empty directory, so the test is for the `events` directory inside.
fn tracefs_root_among(candidates: &[&Path]) -> Result<PathBuf, HostError> {
    candidates.iter().find(|root| root.join("events").is_dir()).map(|root| root.to_path_buf()).ok_or_else(|| {
        HostError::unavailable(format!(
            "tracefs is not mounted at {TRACEFS_PATH} (mount it with: mount -t tracefs nodev {TRACEFS_PATH})"
        ))
    })
}

/// The fields of tracepoint `category:name`, read from the host's tracefs.
pub fn tracepoint_fields(category: &str, name: &str) -> Result<Vec<TpField>, HostError> {
    tracepoint_fields_in(&tracefs_root()?, category, name)
}

/// The fields of tracepoint `category:name` under the tracefs mounted at `root`.
pub fn tracepoint_fields_in(root: &Path, category: &str, name: &str) -> Result<Vec<TpField>, HostError> {
    let full_name = format!("{category}:{name}");
    // Names come from user source: a slash or a dot-dot would walk out of `events/`.
    let is_plain = |part: &str| !part.is_empty() && !part.contains('/') && part != "." && part != "..";
    let format_path = root.join("events").join(category).join(name).join("format");
    if !is_plain(category) || !is_plain(name) || !format_path.is_file() {
        let suggestions = closest_names(&full_name, &list_tracepoints_in(root));
        return Err(HostError::not_found(format!("tracepoint {full_name} does not exist"), suggestions));
    }
    let text = std::fs::read_to_string(&format_path).map_err(|error| {
        // tracefs format files are root-only on many systems: that is "cannot ask", not "absent".
        HostError::unavailable(format!("cannot read {}: {error}", format_path.display()))
    })?;
    parse_format(&text).map_err(|problem| {
        HostError::not_found(format!("cannot parse {}: {problem}", format_path.display()), Vec::new())
    })
}

/// Every tracepoint of the host as `category:name`, sorted. Empty when tracefs is missing.
pub fn list_tracepoints() -> Vec<String> {
    tracefs_root().map(|root| list_tracepoints_in(&root)).unwrap_or_default()
}

/// Every tracepoint under the tracefs at `root` (directories `events/CAT/NAME` with a
/// `format` file) as `category:name`, sorted.
pub fn list_tracepoints_in(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for category in read_dir_names(&root.join("events")) {
        let category_dir = root.join("events").join(&category);
        for event in read_dir_names(&category_dir) {
            if category_dir.join(&event).join("format").is_file() {
                names.push(format!("{category}:{event}"));
            }
        }
    }
    names.sort();
    names
}

/// Names of the subdirectories of `dir`; unreadable entries are skipped because a partial
/// list still yields useful suggestions.
fn read_dir_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect()
}

/// Parses the text of a tracefs `format` file into its fields, leaving out the `common_*`
/// header every record starts with.
pub fn parse_format(text: &str) -> Result<Vec<TpField>, String> {
    let mut fields = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| line.starts_with("field:")) {
        let field = parse_field_line(line)?;
        if !field.name.starts_with("common_") {
            fields.push(field);
        }
    }
    if !text.lines().any(|line| line.trim() == "format:") {
        return Err("no `format:` section".to_string());
    }
    Ok(fields)
}

/// Parses one `field:DECL;\toffset:N;\tsize:N;\tsigned:N;` line.
fn parse_field_line(line: &str) -> Result<TpField, String> {
    let mut c_decl = None;
    let (mut offset, mut total_size, mut signed) = (None, None, false);
    for part in line.split(';').map(str::trim).filter(|part| !part.is_empty()) {
        let Some((key, value)) = part.split_once(':') else {
            return Err(format!("unexpected `{part}` in `{line}`"));
        };
        let number = || value.trim().parse::<u32>().map_err(|_| format!("bad {key} `{value}` in `{line}`"));
        match key.trim() {
            "field" => c_decl = Some(value.trim().to_string()),
            "offset" => offset = Some(number()?),
            "size" => total_size = Some(number()?),
            "signed" => signed = number()? != 0,
            // Newer kernels may add attributes; none of them changes how the field is read.
            _ => {}
        }
    }
    let (Some(c_decl), Some(offset), Some(total_size)) = (c_decl, offset, total_size) else {
        return Err(format!("field line without declaration, offset or size: `{line}`"));
    };
    let declaration = parse_declaration(&c_decl).ok_or_else(|| format!("cannot read declaration `{c_decl}`"))?;
    let size = match declaration.array_len {
        Some(0) | None => total_size,
        Some(len) => total_size / len,
    };
    Ok(TpField {
        name: declaration.name,
        offset,
        size,
        signed,
        array_len: declaration.array_len,
        is_char_array: declaration.array_len.is_some() && declaration.element_type == "char",
        is_data_loc: declaration.is_data_loc,
        c_decl,
    })
}

struct Declaration {
    name: String,
    element_type: String,
    array_len: Option<u32>,
    is_data_loc: bool,
}

/// Splits a C declaration such as `unsigned long args[6]`, `const char * filename` or
/// `__data_loc char[] name` into name, element type and array length.
fn parse_declaration(c_decl: &str) -> Option<Declaration> {
    let is_data_loc = c_decl.starts_with("__data_loc") || c_decl.starts_with("__rel_loc");
    let (before_bracket, array_len) = match c_decl.find('[') {
        // `__data_loc char[] name`: the brackets belong to the type, the name follows them.
        Some(_) if is_data_loc => (c_decl, None),
        Some(open) => {
            let close = c_decl[open..].find(']')? + open;
            let len = c_decl[open + 1..close].trim().parse::<u32>().ok()?;
            (&c_decl[..open], Some(len))
        }
        None => (c_decl, None),
    };
    let is_identifier_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let trimmed = before_bracket.trim_end();
    let name_start = trimmed.rfind(|c: char| !is_identifier_char(c)).map(|i| i + 1).unwrap_or(0);
    let name = &trimmed[name_start..];
    let element_type = trimmed[..name_start].trim().to_string();
    // A declaration always has a type before the name.
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || element_type.is_empty() {
        return None;
    }
    Some(Declaration { name: name.to_string(), element_type, array_len, is_data_loc })
}

/// The names of the functions an ELF file defines, from `.symtab` and `.dynsym`, sorted and
/// without duplicates.
pub fn elf_function_symbols(path: &Path) -> Result<Vec<String>, HostError> {
    use object::{Object, ObjectSymbol, SymbolKind};
    let data = std::fs::read(path)
        .map_err(|error| HostError::not_found(format!("cannot read {}: {error}", path.display()), Vec::new()))?;
    let file = object::File::parse(&*data)
        .map_err(|error| HostError::not_found(format!("{} is not an ELF file: {error}", path.display()), Vec::new()))?;
    let mut names: Vec<String> = file
        .symbols()
        .chain(file.dynamic_symbols())
        .filter(|symbol| symbol.kind() == SymbolKind::Text && symbol.is_definition())
        .filter_map(|symbol| symbol.name().ok().filter(|name| !name.is_empty()).map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Checks that the ELF file at `path` defines function `symbol`; when it does not, the error
/// carries the closest function names.
pub fn check_symbol(path: &Path, symbol: &str) -> Result<(), HostError> {
    let symbols = elf_function_symbols(path)?;
    if symbols.binary_search_by(|candidate| candidate.as_str().cmp(symbol)).is_ok() {
        return Ok(());
    }
    Err(HostError::not_found(
        format!("symbol {symbol} not found in {}", path.display()),
        closest_names(symbol, &symbols),
    ))
}

/// Up to three candidates most similar to `wanted` (Jaro-Winkler), best first; names that
/// share too little with it are left out rather than suggested as noise.
pub fn closest_names(wanted: &str, candidates: &[String]) -> Vec<String> {
    let mut scored: Vec<(f64, &String)> = candidates
        .iter()
        .filter(|candidate| candidate.as_str() != wanted)
        .map(|candidate| (strsim::jaro_winkler(wanted, candidate), candidate))
        .filter(|(score, _)| *score >= SUGGESTION_MIN_SIMILARITY)
        .collect();
    scored.sort_by(|(score_a, name_a), (score_b, name_b)| score_b.total_cmp(score_a).then_with(|| name_a.cmp(name_b)));
    scored.into_iter().take(SUGGESTION_COUNT).map(|(_, name)| name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS_ENTER: &str = include_str!("../tests/data/formats/raw_syscalls_sys_enter.format");
    const SYS_EXIT: &str = include_str!("../tests/data/formats/raw_syscalls_sys_exit.format");
    const OPENAT: &str = include_str!("../tests/data/formats/syscalls_sys_enter_openat.format");
    const SCHED_SWITCH: &str = include_str!("../tests/data/formats/sched_sched_switch.format");
    const PROCESS_EXEC: &str = include_str!("../tests/data/formats/sched_sched_process_exec.format");

    fn describe(fields: &[TpField]) -> String {
        fields
            .iter()
            .map(|f| {
                format!(
                    "{} off={} size={} signed={} array={:?} char_array={} data_loc={} decl=`{}`\n",
                    f.name, f.offset, f.size, f.signed, f.array_len, f.is_char_array, f.is_data_loc, f.c_decl
                )
            })
            .collect()
    }

    #[test]
    fn parses_raw_syscalls_sys_enter_with_array() {
        insta::assert_snapshot!(describe(&parse_format(SYS_ENTER).unwrap()));
    }

    #[test]
    fn parses_raw_syscalls_sys_exit() {
        insta::assert_snapshot!(describe(&parse_format(SYS_EXIT).unwrap()));
    }

    #[test]
    fn parses_openat_with_pointer_field() {
        insta::assert_snapshot!(describe(&parse_format(OPENAT).unwrap()));
    }

    #[test]
    fn parses_sched_switch_char_arrays() {
        insta::assert_snapshot!(describe(&parse_format(SCHED_SWITCH).unwrap()));
    }

    #[test]
    fn marks_data_loc_fields() {
        let fields = parse_format(PROCESS_EXEC).unwrap();
        let filename = fields.iter().find(|f| f.name == "filename").unwrap();
        assert!(filename.is_data_loc);
        assert_eq!(filename.array_len, None);
        assert!(!fields.iter().find(|f| f.name == "pid").unwrap().is_data_loc);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_format("hello").is_err());
        assert!(parse_format("format:\n\tfield:int x;\toffset:zz;\tsize:4;\tsigned:1;\n")
            .unwrap_err()
            .contains("offset"));
        assert!(parse_format("format:\n\tfield:int x;\tsize:4;\n").is_err());
        assert!(parse_format("format:\n\tfield:int [3];\toffset:0;\tsize:4;\tsigned:1;\n").is_err());
    }

    /// A fake tracefs tree under the target directory, so the lookup logic runs without root.
    fn fake_tracefs(test_name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("ppis-fake-tracefs-{test_name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (category, name, text) in [
            ("raw_syscalls", "sys_enter", SYS_ENTER),
            ("raw_syscalls", "sys_exit", SYS_EXIT),
            ("syscalls", "sys_enter_openat", OPENAT),
            ("sched", "sched_switch", SCHED_SWITCH),
        ] {
            let dir = root.join("events").join(category).join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("format"), text).unwrap();
        }
        // `events/CAT/enable`-style directories without a format are not tracepoints.
        std::fs::create_dir_all(root.join("events/sched/not_an_event")).unwrap();
        root
    }

    #[test]
    fn finds_fields_and_suggests_close_tracepoints() {
        let root = fake_tracefs("lookup");
        assert_eq!(tracepoint_fields_in(&root, "raw_syscalls", "sys_exit").unwrap().len(), 2);
        assert_eq!(
            list_tracepoints_in(&root),
            ["raw_syscalls:sys_enter", "raw_syscalls:sys_exit", "sched:sched_switch", "syscalls:sys_enter_openat"]
        );
        let missing = tracepoint_fields_in(&root, "raw_syscalls", "sys_entr").unwrap_err();
        assert!(!missing.unavailable);
        assert_eq!(missing.message, "tracepoint raw_syscalls:sys_entr does not exist");
        assert_eq!(missing.suggestions[0], "raw_syscalls:sys_enter");
        let escaping = tracepoint_fields_in(&root, "..", "sched").unwrap_err();
        assert!(escaping.message.contains("does not exist"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_tracefs_is_unavailable_with_mount_hint() {
        let error = tracefs_root_among(&[Path::new("/nonexistent/ppis/tracing")]).unwrap_err();
        assert!(error.unavailable);
        assert_eq!(
            error.message,
            "tracefs is not mounted at /sys/kernel/tracing (mount it with: mount -t tracefs nodev /sys/kernel/tracing)"
        );
    }

    #[test]
    fn suggestions_rank_by_similarity_and_drop_noise() {
        let candidates: Vec<String> =
            ["foo_bar", "fo", "zzz", "food", "main"].iter().map(|name| name.to_string()).collect();
        assert_eq!(closest_names("foo", &candidates), ["food", "fo", "foo_bar"]);
        assert!(closest_names("qqqqqq", &candidates).is_empty());
    }

    #[test]
    fn reads_function_symbols_of_an_elf_file() {
        let own_binary = std::env::current_exe().unwrap();
        let symbols = elf_function_symbols(&own_binary).unwrap();
        assert!(symbols.iter().any(|name| name == "main"), "no `main` among {} symbols", symbols.len());
        assert!(check_symbol(&own_binary, "main").is_ok());
        let missing = check_symbol(&own_binary, "mian").unwrap_err();
        assert!(!missing.unavailable);
        assert!(missing.message.starts_with("symbol mian not found in /"), "{}", missing.message);
        assert!(missing.suggestions.contains(&"main".to_string()), "{:?}", missing.suggestions);
    }

    #[test]
    fn missing_or_non_elf_file_is_named() {
        let missing = elf_function_symbols(Path::new("/nonexistent/ppis/bin")).unwrap_err();
        assert!(missing.message.starts_with("cannot read /nonexistent/ppis/bin: "), "{}", missing.message);
        let text_file = std::env::temp_dir().join(format!("ppis-not-elf-{}", std::process::id()));
        std::fs::write(&text_file, "just text").unwrap();
        let not_elf = elf_function_symbols(&text_file).unwrap_err();
        std::fs::remove_file(&text_file).unwrap();
        assert_eq!(not_elf.message.split(':').next().unwrap(), format!("{} is not an ELF file", text_file.display()));
    }
}
