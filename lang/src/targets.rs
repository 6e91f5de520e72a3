//! What the checker needs to know about the host's probe targets, behind a trait so that
//! `lang` stays pure: the compiler answers from tracefs and ELF files, tests from tables.

/// One field of a tracepoint's record, from its tracefs `format` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracepointField {
    pub name: String,
    /// Byte offset in the record the program's context points at.
    pub offset: u32,
    /// Size of one element in bytes (1, 2, 4, 8; or 1 for `char` arrays).
    pub size: u32,
    pub signed: bool,
    /// `Some(n)` for an array field `T name[n]`.
    pub array_len: Option<u32>,
    /// `char name[n]`: read as `str[n]`.
    pub is_char_array: bool,
    /// The C declaration as tracefs prints it, for messages.
    pub c_decl: String,
}

/// Why a target could not be resolved: the message names it, `suggestions` are the closest
/// existing names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetError {
    pub message: String,
    pub suggestions: Vec<String>,
    /// True when the host could not be asked at all (e.g. tracefs not mounted): the checker
    /// reports it only where it needs the answer (tracepoint fields).
    pub unavailable: bool,
}

/// One USDT probe site of an ELF file, as its `.note.stapsdt` note declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsdtSite {
    pub provider: String,
    pub name: String,
    /// The site's address in the file (where the uprobe goes).
    pub address: u64,
    /// The semaphore's address, 0 when there is none.
    pub semaphore: u64,
    /// Why the kernel could not set this site's semaphore (not in a writable section with bytes
    /// in the file, misaligned, or on a file page an earlier writable segment also maps); `None`
    /// when it can, or when there is no semaphore.
    pub semaphore_unusable: Option<String>,
    /// The argument specs, space-separated (`-4@%eax 8@-8(%rbp)`).
    pub args: String,
}

pub trait Targets {
    /// The fields of `category:name`.
    fn tracepoint_fields(&self, category: &str, name: &str) -> Result<Vec<TracepointField>, TargetError>;
    /// Checks that `symbol` exists in the ELF file at `path`.
    fn check_uprobe(&self, path: &str, symbol: &str) -> Result<(), TargetError>;

    /// Every tracepoint name of `category` (for wildcard expansion), sorted.
    fn tracepoint_names(&self, category: &str) -> Result<Vec<String>, TargetError> {
        Err(unavailable(format!("the tracepoints of `{category}` cannot be listed without a host")))
    }
    /// Every raw tracepoint name the host has (tracefs events without their category), sorted.
    fn raw_tracepoint_names(&self) -> Result<Vec<String>, TargetError> {
        Err(unavailable("raw tracepoints cannot be listed without a host".to_string()))
    }
    /// The function symbols the ELF file at `path` defines (for wildcard expansion), sorted.
    fn elf_function_symbols(&self, path: &str) -> Result<Vec<String>, TargetError> {
        Err(unavailable(format!("the symbols of {path} cannot be listed without a host")))
    }
    /// The USDT probe sites (`.note.stapsdt`) of the ELF file at `path`, in note order.
    fn usdt_sites(&self, path: &str) -> Result<Vec<UsdtSite>, TargetError> {
        Err(unavailable(format!("the USDT probes of {path} cannot be listed without a host")))
    }
    /// The number of CPUs probes run on (`profile:hz:N` fires N times a second on each), or
    /// `None` when unknown.
    fn online_cpus(&self) -> Option<u32> {
        None
    }
}

fn unavailable(message: String) -> TargetError {
    TargetError { message, suggestions: vec![], unavailable: true }
}

/// Answers nothing: every target is `unavailable`. For checking a file without a host.
pub struct NoTargets;

impl Targets for NoTargets {
    fn tracepoint_fields(&self, category: &str, name: &str) -> Result<Vec<TracepointField>, TargetError> {
        Err(TargetError {
            message: format!("tracepoint {category}:{name} cannot be resolved without a host"),
            suggestions: vec![],
            unavailable: true,
        })
    }
    fn check_uprobe(&self, path: &str, symbol: &str) -> Result<(), TargetError> {
        Err(TargetError {
            message: format!("uprobe {path}:{symbol} cannot be resolved without a host"),
            suggestions: vec![],
            unavailable: true,
        })
    }
}
