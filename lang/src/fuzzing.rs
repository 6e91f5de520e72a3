//! The front end's fuzz entry point, shared by the cargo-fuzz target `lang_check` and the
//! regression test that replays every saved crash input (`fuzz/regressions/lang_check/`).
//!
//! Keeping the body here rather than in the fuzz crate means a crash found by libFuzzer is
//! replayed by `cargo test -p ppis-lang` through exactly the code that found it.

use crate::modules::TableLoader;
use crate::targets::{TargetError, Targets, TracepointField};
use crate::{check_program, check_source, fmt, render, CheckOptions};

/// Every tracepoint has a few fields of each shape the checker handles (except category
/// `block`, whose host is "unavailable"); every uprobe exists, except under `/missing/`.
pub struct FuzzTargets;

impl Targets for FuzzTargets {
    fn tracepoint_fields(&self, category: &str, _name: &str) -> Result<Vec<TracepointField>, TargetError> {
        if category == "block" {
            return Err(TargetError { message: "unavailable".into(), suggestions: vec![], unavailable: true });
        }
        let field = |name: &str, offset, size, array_len, is_char_array| TracepointField {
            name: name.into(),
            offset,
            size,
            signed: size == 8,
            array_len,
            is_char_array,
            c_decl: name.into(),
        };
        Ok(vec![
            field("id", 8, 8, None, false),
            field("args", 16, 8, Some(6), false),
            field("comm", 64, 1, Some(16), true),
            field("odd", 80, 3, None, false),
            field("filename", 88, 8, None, false),
        ])
    }
    fn check_uprobe(&self, path: &str, symbol: &str) -> Result<(), TargetError> {
        if path.starts_with("/missing/") {
            return Err(TargetError {
                message: format!("{path}:{symbol}"),
                suggestions: vec!["main".into()],
                unavailable: false,
            });
        }
        Ok(())
    }
}

/// The modules a fuzz input may `use`: a normal one, one that uses itself, a broken one.
pub const FUZZ_MODULES: &[(&str, &str)] = &[
    ("fuzz::calls", "const FUZZ_PID = 1;\nmap fuzz_calls: count;\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s when pid == FUZZ_PID { fuzz_calls.inc(); }\n"),
    ("fuzz::cycle", "use fuzz::cycle;\nbudget 1%;\n"),
    ("fuzz::broken", "map fuzz_broken: ;\nprobe {\n"),
];

/// Lexes, parses, checks and renders arbitrary bytes, and formats them twice. Panics (the
/// fuzzer's crash signal) when a stage panics, when `fmt` is not idempotent, or when its
/// output no longer parses.
pub fn lang_check(data: &[u8]) {
    let source = String::from_utf8_lossy(data);
    let (_, diagnostics) = check_source(&source, &FuzzTargets, &CheckOptions::default());
    // Rendering clamps every span: it must not panic on whatever the stages reported.
    let _ = render::text(&diagnostics, "fuzz.ppl", &source, false);
    let _ = render::json(&diagnostics, "fuzz.ppl", &source);
    // Again with modules: loading, merging and rendering against several files.
    let loader = TableLoader { modules: FUZZ_MODULES };
    let (_, diagnostics, sources) = check_program("fuzz.ppl", &source, &FuzzTargets, &loader, &CheckOptions::default());
    let _ = sources.render_text(&diagnostics, false);
    let _ = sources.render_json(&diagnostics);
    if let Ok(formatted) = fmt::format_source(&source) {
        match fmt::format_source(&formatted) {
            Ok(again) => assert_eq!(again, formatted, "fmt is not idempotent on:\n{source}"),
            Err(errors) => panic!("fmt output does not parse: {errors:?}\n{formatted}"),
        }
    }
}
