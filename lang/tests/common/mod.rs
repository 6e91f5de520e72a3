//! Test helpers shared by the integration tests: a table-driven fake host.

use ppis_lang::targets::{TargetError, Targets, TracepointField};

/// A host with a fixed table of tracepoints (real layouts from tracefs) and binaries.
///
/// Tracepoints in category `block` answer "unavailable" (as if tracefs were not mounted);
/// binaries under `/remote/` too.
pub struct FakeTargets;

fn field(name: &str, offset: u32, size: u32, signed: bool, c_decl: &str) -> TracepointField {
    TracepointField {
        name: name.into(),
        offset,
        size,
        signed,
        array_len: None,
        is_char_array: false,
        c_decl: c_decl.into(),
    }
}

fn array(name: &str, offset: u32, size: u32, len: u32, is_char_array: bool, c_decl: &str) -> TracepointField {
    TracepointField {
        name: name.into(),
        offset,
        size,
        signed: false,
        array_len: Some(len),
        is_char_array,
        c_decl: c_decl.into(),
    }
}

fn common() -> Vec<TracepointField> {
    vec![
        field("common_type", 0, 2, false, "unsigned short common_type"),
        field("common_flags", 2, 1, false, "unsigned char common_flags"),
        field("common_preempt_count", 3, 1, false, "unsigned char common_preempt_count"),
        field("common_pid", 4, 4, true, "int common_pid"),
    ]
}

const TRACEPOINTS: &[&str] = &[
    "raw_syscalls:sys_enter",
    "raw_syscalls:sys_exit",
    "syscalls:sys_enter_openat",
    "syscalls:sys_enter_open",
    "syscalls:sys_enter_openat2",
    "sched:sched_process_exec",
    "sched:sched_switch",
    "test:odd",
    "test:packed_comm",
];

const BINARIES: &[(&str, &[&str])] =
    &[("/usr/bin/app", &["handle_request", "main"]), ("/opt/my app/server", &["handle_request"])];

/// The CPU count the fake host reports (`profile` rates are per CPU).
pub const FAKE_CPUS: u32 = 4;

/// A library with more functions than one wildcard may match (E0117).
const HUGE_LIBRARY: &str = "/usr/lib/libhuge.so";

fn huge_library_symbols() -> Vec<String> {
    (0..300).map(|i| format!("fn_{i}")).collect()
}

fn closest(name: &str, candidates: impl Iterator<Item = String>) -> Vec<String> {
    let mut scored: Vec<(usize, String)> =
        candidates.map(|c| (strsim_distance(name, &c), c)).filter(|(d, _)| *d <= 3).collect();
    scored.sort();
    scored.into_iter().map(|(_, c)| c).collect()
}

/// Levenshtein distance (a test-local copy, so the tests do not lean on the crate's own).
fn strsim_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb)).min(row[j] + 1).min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

impl Targets for FakeTargets {
    /// `/usr/bin/app` declares USDT probe `app:request` at two sites (their arguments differ),
    /// `app:guarded` behind a semaphore the kernel can set, `app:misplaced` behind one it
    /// cannot; other files declare none.
    fn usdt_sites(&self, path: &str) -> Result<Vec<ppis_lang::targets::UsdtSite>, TargetError> {
        let site = |name: &str, address: u64, semaphore: u64, args: &str| ppis_lang::targets::UsdtSite {
            provider: "app".into(),
            name: name.into(),
            address,
            semaphore,
            semaphore_unusable: (semaphore % 2 == 1)
                .then(|| format!("the semaphore at {semaphore:#x} is not 2-byte aligned in the file")),
            args: args.into(),
        };
        match path {
            "/usr/bin/app" => Ok(vec![
                site("request", 0x1000, 0, "-4@%eax 8@-8(%rbp) 4@$5 8@8(%rax,%rbx,2)"),
                site("request", 0x2000, 0, "-4@%edi 8@16(%rsp) 4@$5 8@%rsi"),
                site("guarded", 0x3000, 0x9000, "8@%rdi"),
                site("misplaced", 0x4000, 0x9003, "8@%rdi"),
            ]),
            _ => Err(TargetError {
                message: format!("cannot read {path}: No such file or directory"),
                suggestions: vec![],
                unavailable: false,
            }),
        }
    }

    fn tracepoint_fields(&self, category: &str, name: &str) -> Result<Vec<TracepointField>, TargetError> {
        let mut fields = common();
        match (category, name) {
            ("raw_syscalls", "sys_enter") => fields
                .extend([field("id", 8, 8, true, "long id"), array("args", 16, 8, 6, false, "unsigned long args[6]")]),
            ("raw_syscalls", "sys_exit") => {
                fields.extend([field("id", 8, 8, true, "long id"), field("ret", 16, 8, true, "long ret")])
            }
            ("syscalls", "sys_enter_openat") => fields.extend([
                field("__syscall_nr", 8, 4, true, "int __syscall_nr"),
                field("dfd", 16, 8, true, "int dfd"),
                field("filename", 24, 8, false, "const char * filename"),
                field("flags", 32, 8, false, "int flags"),
                field("mode", 40, 8, false, "umode_t mode"),
            ]),
            ("syscalls", "sys_enter_open") => fields.extend([
                field("__syscall_nr", 8, 4, true, "int __syscall_nr"),
                field("filename", 16, 8, false, "const char * filename"),
                field("flags", 24, 8, false, "int flags"),
                field("mode", 32, 8, false, "umode_t mode"),
            ]),
            ("syscalls", "sys_enter_openat2") => fields.extend([
                field("__syscall_nr", 8, 4, true, "int __syscall_nr"),
                field("dfd", 16, 8, true, "int dfd"),
                field("filename", 24, 8, false, "const char * filename"),
                field("how", 32, 8, false, "struct open_how * how"),
                field("usize", 40, 8, false, "size_t usize"),
            ]),
            ("sched", "sched_process_exec") => fields.extend([
                field("filename", 8, 4, false, "__data_loc char[] filename"),
                field("pid", 12, 4, true, "pid_t pid"),
                field("old_pid", 16, 4, true, "pid_t old_pid"),
            ]),
            ("sched", "sched_switch") => fields.extend([
                array("prev_comm", 8, 1, 16, true, "char prev_comm[16]"),
                field("prev_pid", 24, 4, true, "pid_t prev_pid"),
                field("prev_prio", 28, 4, true, "int prev_prio"),
                field("prev_state", 32, 8, true, "long prev_state"),
                array("next_comm", 40, 1, 16, true, "char next_comm[16]"),
                field("next_pid", 56, 4, true, "pid_t next_pid"),
                field("next_prio", 60, 4, true, "int next_prio"),
            ]),
            ("test", "odd") => fields.extend([
                field("weird", 8, 3, false, "u8 weird[3] packed"),
                array("empty", 11, 1, 0, true, "char empty[0]"),
            ]),
            // Like block:block_rq_issue: a char[16] only 4-byte aligned.
            ("test", "packed_comm") => {
                fields.extend([field("dev", 8, 4, false, "dev_t dev"), array("comm", 44, 1, 16, true, "char comm[16]")])
            }
            ("block", _) => {
                return Err(TargetError {
                    message: "tracefs is not mounted at /sys/kernel/tracing".into(),
                    suggestions: vec![],
                    unavailable: true,
                })
            }
            _ => {
                let wanted = format!("{category}:{name}");
                return Err(TargetError {
                    message: format!("no tracepoint `{wanted}` in /sys/kernel/tracing/events"),
                    suggestions: closest(&wanted, TRACEPOINTS.iter().map(|t| t.to_string())),
                    unavailable: false,
                });
            }
        }
        Ok(fields)
    }

    fn tracepoint_names(&self, category: &str) -> Result<Vec<String>, TargetError> {
        if category == "block" {
            return Err(TargetError {
                message: "tracefs is not mounted at /sys/kernel/tracing".into(),
                suggestions: vec![],
                unavailable: true,
            });
        }
        let prefix = format!("{category}:");
        let mut names: Vec<String> =
            TRACEPOINTS.iter().filter_map(|t| t.strip_prefix(prefix.as_str())).map(str::to_string).collect();
        names.sort();
        Ok(names)
    }

    fn raw_tracepoint_names(&self) -> Result<Vec<String>, TargetError> {
        let mut names: Vec<String> =
            TRACEPOINTS.iter().filter_map(|t| t.split_once(':')).map(|(_, name)| name.to_string()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn elf_function_symbols(&self, path: &str) -> Result<Vec<String>, TargetError> {
        if path == HUGE_LIBRARY {
            return Ok(huge_library_symbols());
        }
        if path.starts_with("/remote/") {
            return Err(TargetError { message: format!("cannot read {path}"), suggestions: vec![], unavailable: true });
        }
        match BINARIES.iter().find(|(binary, _)| *binary == path) {
            Some((_, symbols)) => Ok(symbols.iter().map(|s| s.to_string()).collect()),
            None => {
                Err(TargetError { message: format!("{path}: no such file"), suggestions: vec![], unavailable: false })
            }
        }
    }

    fn online_cpus(&self) -> Option<u32> {
        Some(FAKE_CPUS)
    }

    fn check_uprobe(&self, path: &str, symbol: &str) -> Result<(), TargetError> {
        if path == HUGE_LIBRARY && huge_library_symbols().iter().any(|s| s == symbol) {
            return Ok(());
        }
        if path.starts_with("/remote/") {
            return Err(TargetError { message: format!("cannot read {path}"), suggestions: vec![], unavailable: true });
        }
        let Some((_, symbols)) = BINARIES.iter().find(|(binary, _)| *binary == path) else {
            return Err(TargetError {
                message: format!("{path}: no such file"),
                suggestions: closest(path, BINARIES.iter().map(|(b, _)| b.to_string())),
                unavailable: false,
            });
        };
        if symbols.contains(&symbol) {
            return Ok(());
        }
        Err(TargetError {
            message: format!("{path} has no symbol `{symbol}`"),
            suggestions: closest(symbol, symbols.iter().map(|s| s.to_string())),
            unavailable: false,
        })
    }
}

/// Modules from `tests/data/modules/`: `use a::b;` reads `tests/data/modules/a/b.ppl`, named
/// `modules/a/b.ppl` in messages.
#[allow(dead_code)] // only some test binaries load modules
pub struct DataModules;

impl ppis_lang::modules::ModuleLoader for DataModules {
    fn load(&self, path: &[String]) -> Result<ppis_lang::modules::LoadedModule, ppis_lang::modules::ModuleError> {
        let relative = ppis_lang::modules::module_file_name(path);
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/modules").join(&relative);
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(ppis_lang::modules::LoadedModule { name: format!("modules/{relative}"), text }),
            Err(error) => Err(ppis_lang::modules::ModuleError {
                message: format!("modules/{relative}: {error}"),
                suggestions: Vec::new(),
            }),
        }
    }
}
