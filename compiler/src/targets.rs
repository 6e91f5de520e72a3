//! Probe targets as the host has them: tracepoint formats from tracefs and function symbols
//! from ELF files, through `ppis_runtime::host`, converted to the checker's types.

use std::path::Path;

use ppis_lang::targets::{TargetError, Targets, TracepointField};
use ppis_runtime::host::{self, HostError, TpField};

/// Answers the checker from this machine.
pub struct HostTargets;

impl Targets for HostTargets {
    fn tracepoint_fields(&self, category: &str, name: &str) -> Result<Vec<TracepointField>, TargetError> {
        let fields = host::tracepoint_fields(category, name).map_err(target_error)?;
        Ok(fields_for_checker(fields))
    }

    fn tracepoint_names(&self, category: &str) -> Result<Vec<String>, TargetError> {
        let prefix = format!("{category}:");
        let names: Vec<String> = HostTargets::all_tracepoints()?
            .iter()
            .filter_map(|full| full.strip_prefix(prefix.as_str()).map(str::to_string))
            .collect();
        if names.is_empty() {
            return Err(TargetError {
                message: format!("tracefs has no category `{category}`"),
                suggestions: vec![],
                unavailable: false,
            });
        }
        Ok(names)
    }

    fn raw_tracepoint_names(&self) -> Result<Vec<String>, TargetError> {
        // A raw tracepoint is named like its tracefs event without the category.
        let mut names: Vec<String> = HostTargets::all_tracepoints()?
            .iter()
            .filter_map(|full| full.split_once(':').map(|(_, name)| name.to_string()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn elf_function_symbols(&self, path: &str) -> Result<Vec<String>, TargetError> {
        host::elf_function_symbols(Path::new(path))
            .map_err(|error| TargetError { unavailable: false, ..target_error(error) })
    }

    fn online_cpus(&self) -> Option<u32> {
        // The same count the verifier's overhead check divides by (`CompileOptions::cpus`).
        std::thread::available_parallelism().ok().map(|n| n.get() as u32)
    }

    fn usdt_sites(&self, path: &str) -> Result<Vec<ppis_lang::targets::UsdtSite>, TargetError> {
        let sites = ppis_runtime::usdt::sites(Path::new(path)).map_err(|message| TargetError {
            message,
            suggestions: vec![],
            unavailable: false,
        })?;
        Ok(sites
            .into_iter()
            .map(|site| ppis_lang::targets::UsdtSite {
                provider: site.provider,
                name: site.name,
                address: site.address,
                semaphore: site.semaphore,
                semaphore_unusable: site.semaphore_offset.and_then(Result::err),
                args: site.args,
            })
            .collect())
    }

    fn check_uprobe(&self, path: &str, symbol: &str) -> Result<(), TargetError> {
        host::check_symbol(Path::new(path), symbol).map_err(|error| TargetError {
            // A missing binary or symbol is the user's to fix, never "cannot ask the host".
            unavailable: false,
            ..target_error(error)
        })
    }
}

impl HostTargets {
    /// Every tracepoint of the host as `category:name`, or "unavailable" without tracefs.
    fn all_tracepoints() -> Result<Vec<String>, TargetError> {
        host::tracefs_root().map_err(target_error)?;
        Ok(host::list_tracepoints())
    }
}

fn target_error(error: HostError) -> TargetError {
    TargetError { message: error.message, suggestions: error.suggestions, unavailable: error.unavailable }
}

/// The fields the language can read. `__data_loc` fields hold a locator of variable-length
/// data, not a value, so they are left out rather than offered as a misleading integer.
fn fields_for_checker(fields: Vec<TpField>) -> Vec<TracepointField> {
    fields
        .into_iter()
        .filter(|field| !field.is_data_loc)
        .map(|field| TracepointField {
            name: field.name,
            offset: field.offset,
            size: field.size,
            signed: field.signed,
            array_len: field.array_len,
            is_char_array: field.is_char_array,
            c_decl: field.c_decl,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp_field(name: &str, is_data_loc: bool) -> TpField {
        TpField {
            name: name.into(),
            offset: 8,
            size: 4,
            signed: true,
            array_len: None,
            is_char_array: false,
            is_data_loc,
            c_decl: format!("int {name}"),
        }
    }

    #[test]
    fn converts_fields_and_drops_data_loc_ones() {
        let fields = fields_for_checker(vec![tp_field("filename", true), tp_field("pid", false)]);
        assert_eq!(
            fields,
            [TracepointField {
                name: "pid".into(),
                offset: 8,
                size: 4,
                signed: true,
                array_len: None,
                is_char_array: false,
                c_decl: "int pid".into(),
            }]
        );
    }

    #[test]
    fn missing_uprobe_binary_is_named_and_not_unavailable() {
        let error = HostTargets.check_uprobe("/nonexistent/ppis/bin", "main").unwrap_err();
        assert!(!error.unavailable);
        assert!(error.message.contains("/nonexistent/ppis/bin"), "{}", error.message);
    }

    #[test]
    fn missing_uprobe_symbol_has_suggestions() {
        let own_binary = std::env::current_exe().unwrap();
        let path = own_binary.to_str().unwrap();
        assert_eq!(HostTargets.check_uprobe(path, "main"), Ok(()));
        let error = HostTargets.check_uprobe(path, "mainn").unwrap_err();
        assert!(!error.unavailable);
        assert!(error.suggestions.contains(&"main".to_string()), "{:?}", error.suggestions);
    }

    /// On a host with tracefs: a real tracepoint resolves and a typo gets suggestions. Without
    /// tracefs the answer must be "unavailable" with the mount hint.
    #[test]
    fn tracepoints_resolve_from_tracefs_or_are_unavailable() {
        match host::tracefs_root() {
            Ok(_) => {
                let fields = HostTargets.tracepoint_fields("raw_syscalls", "sys_enter");
                match fields {
                    Ok(fields) => {
                        assert!(fields.iter().any(|field| field.name == "args" && field.array_len == Some(6)))
                    }
                    // Format files are root-only on some systems.
                    Err(error) => assert!(error.unavailable, "{}", error.message),
                }
                let error = HostTargets.tracepoint_fields("raw_syscalls", "sys_entr").unwrap_err();
                assert!(!error.unavailable);
                assert_eq!(error.suggestions.first().map(String::as_str), Some("raw_syscalls:sys_enter"));
            }
            Err(_) => {
                let error = HostTargets.tracepoint_fields("raw_syscalls", "sys_enter").unwrap_err();
                assert!(error.unavailable);
                assert!(error.message.contains("mount -t tracefs nodev /sys/kernel/tracing"), "{}", error.message);
            }
        }
    }
}
