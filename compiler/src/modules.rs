//! Where `ppisc` finds modules: `use stdlib::syscalls::latency;` is `syscalls/latency.ppl` in
//! the standard library directory.
//!
//! Search order: `--stdlib DIR`, then `$PPIS_STDLIB`, then the `stdlib/` of the source tree
//! this binary was built from (when it still exists), then the copies compiled into the
//! binary with `include_str!`, so an installed `ppisc` finds the standard library anywhere.

use ppis_lang::modules::{closest_modules, module_file_name, LoadedModule, ModuleError, ModuleLoader};
use std::path::{Path, PathBuf};

/// Every module of `stdlib/`, compiled in: `(path, text)`. A test checks that this table and
/// the directory hold the same files with the same text.
pub const EMBEDDED_STDLIB: &[(&str, &str)] = &[
    ("stdlib::sched::wakeups", include_str!("../../stdlib/sched/wakeups.ppl")),
    ("stdlib::syscalls::count", include_str!("../../stdlib/syscalls/count.ppl")),
    ("stdlib::syscalls::latency", include_str!("../../stdlib/syscalls/latency.ppl")),
];

/// The first segment of every standard library path.
pub const STDLIB_ROOT: &str = "stdlib";

/// The `stdlib/` of the source tree `ppisc` was built from.
pub fn source_tree_stdlib() -> PathBuf {
    let compiler = Path::new(env!("CARGO_MANIFEST_DIR"));
    compiler.parent().unwrap_or(compiler).join(STDLIB_ROOT)
}

/// Loads `stdlib::...` modules from directories, in order, then from [`EMBEDDED_STDLIB`].
pub struct StdlibLoader {
    /// Directories searched in order, each a standard library root (holding `syscalls/`, ...).
    pub dirs: Vec<PathBuf>,
    /// Whether the compiled-in copies are the last resort.
    pub embedded: bool,
}

impl StdlibLoader {
    /// `ppisc`'s search order: `explicit` (`--stdlib DIR`), `$PPIS_STDLIB`, the source tree,
    /// the embedded copies.
    pub fn for_ppisc(explicit: Option<&Path>) -> StdlibLoader {
        let mut dirs = Vec::new();
        if let Some(dir) = explicit {
            dirs.push(dir.to_path_buf());
        }
        if let Some(dir) = std::env::var_os("PPIS_STDLIB").filter(|dir| !dir.is_empty()) {
            dirs.push(PathBuf::from(dir));
        }
        let tree = source_tree_stdlib();
        if tree.is_dir() {
            dirs.push(tree);
        }
        StdlibLoader { dirs, embedded: true }
    }

    /// Every module path the loader could offer, for suggestions.
    fn known_modules(&self) -> Vec<String> {
        let mut known: Vec<String> = EMBEDDED_STDLIB.iter().map(|(path, _)| path.to_string()).collect();
        for dir in &self.dirs {
            collect_modules(dir, &mut vec![STDLIB_ROOT.to_string()], &mut known, 0);
        }
        known.sort();
        known.dedup();
        known
    }
}

/// Adds the module paths of the `.ppl` files under `dir` (at most 8 directories deep).
fn collect_modules(dir: &Path, prefix: &mut Vec<String>, out: &mut Vec<String>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_stem().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if path.is_dir() && depth < 8 {
            prefix.push(name);
            collect_modules(&path, prefix, out, depth + 1);
            prefix.pop();
        } else if path.extension().is_some_and(|e| e == "ppl") {
            out.push(format!("{}::{name}", prefix.join("::")));
        }
    }
}

impl ModuleLoader for StdlibLoader {
    fn load(&self, path: &[String]) -> Result<LoadedModule, ModuleError> {
        let wanted = path.join("::");
        let suggestions = || closest_modules(&wanted, self.known_modules().iter().map(String::as_str));
        let valid_segment = |s: &String| !s.is_empty() && !s.starts_with('.') && !s.contains('/');
        if path.first().map(String::as_str) != Some(STDLIB_ROOT) || path.len() < 2 || !path.iter().all(valid_segment) {
            return Err(ModuleError {
                message: format!("module paths start with `{STDLIB_ROOT}::`"),
                suggestions: suggestions(),
            });
        }
        let relative = module_file_name(&path[1..]);
        for dir in &self.dirs {
            let file = dir.join(&relative);
            match std::fs::read_to_string(&file) {
                Ok(text) => return Ok(LoadedModule { name: file.display().to_string(), text }),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(ModuleError { message: format!("{}: {error}", file.display()), suggestions: vec![] })
                }
            }
        }
        if self.embedded {
            if let Some((_, text)) = EMBEDDED_STDLIB.iter().find(|(name, _)| *name == wanted) {
                // Named as in the source tree, marked as the compiled-in copy.
                return Ok(LoadedModule { name: format!("<ppisc>/{STDLIB_ROOT}/{relative}"), text: text.to_string() });
            }
        }
        let searched: Vec<String> = self.dirs.iter().map(|dir| dir.display().to_string()).collect();
        Err(ModuleError {
            message: if searched.is_empty() {
                format!("no `{relative}` in the standard library compiled into ppisc")
            } else {
                format!("no `{relative}` in {} nor compiled into ppisc", searched.join(", "))
            },
            suggestions: suggestions(),
        })
    }
}
