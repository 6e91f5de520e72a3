//! Fuzz target: the whole front end (lex, parse, check) on arbitrary text must never panic,
//! and `ppisc fmt` must be a fixed point that keeps the file parsing clean.
//!
//! The body is `ppis_lang::fuzzing::lang_check`, which `cargo test -p ppis-lang` also runs on
//! every file of `fuzz/regressions/lang_check/` (where `cargo xtask fuzz` keeps crash inputs).
//! Seed with the examples so that mutations start from real programs:
//! `cargo +nightly fuzz run lang_check fuzz/corpus/lang_check examples`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ppis_lang::fuzzing::lang_check(data));
