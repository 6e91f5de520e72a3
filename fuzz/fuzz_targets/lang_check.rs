//! Fuzz target: the whole front end (lex, parse, check) on arbitrary text must never panic,
//! and `ppisc fmt` must be a fixed point that keeps the file parsing clean.
//!
//! Seed with the examples so that mutations start from real programs:
//! `cargo +nightly fuzz run lang_check fuzz/corpus/lang_check examples`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ppis_lang::targets::{TargetError, Targets, TracepointField};
use ppis_lang::{check_source, fmt, render, CheckOptions};

/// Every tracepoint has a few fields of each shape the checker handles; every uprobe exists,
/// except under `/missing/`.
struct FuzzTargets;

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

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let (_, diagnostics) = check_source(&source, &FuzzTargets, &CheckOptions::default());
    // Rendering clamps every span: it must not panic on whatever the stages reported.
    let _ = render::text(&diagnostics, "fuzz.ppl", &source, false);
    if let Ok(formatted) = fmt::format_source(&source) {
        match fmt::format_source(&formatted) {
            Ok(again) => assert_eq!(again, formatted, "fmt is not idempotent on:\n{source}"),
            Err(errors) => panic!("fmt output does not parse: {errors:?}\n{formatted}"),
        }
    }
});
