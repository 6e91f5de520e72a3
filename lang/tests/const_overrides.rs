//! `-D NAME=VALUE` const overrides (`CheckOptions::const_overrides`): the new value reaches
//! every use, later consts see it, and unknown names, non-literals and kind mismatches are
//! error E0502.

mod common;

use common::FakeTargets;
use ppis_lang::{check_source, render, CheckOptions};

const SOURCE: &str = r#"const TARGET = "bash";
const LIMIT = 10;
const TWICE = LIMIT * 2;
const VERBOSE = false;

map calls: count[u64] max 64;

probe tracepoint:raw_syscalls:sys_enter rate <= 1k/s when comm == TARGET && VERBOSE == false {
    calls[TWICE].inc();
}
"#;

/// Checks SOURCE with `overrides`: the rendered diagnostics and, if it checked, the program.
fn check_with(overrides: &[(&str, &str)]) -> String {
    let overrides = overrides.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
    let (program, diagnostics) = check_source(SOURCE, &FakeTargets, &CheckOptions::with_const_overrides(overrides));
    let mut out = render::text(&diagnostics, "overrides.ppl", SOURCE, false);
    if let Some(program) = &program {
        out.push_str("---\n");
        out.push_str(&ppis_lang::dump::program(program));
    }
    out
}

#[test]
fn overrides_reach_every_use_and_later_consts() {
    let out = check_with(&[("LIMIT", "-4"), ("TARGET", "\"nginx\""), ("VERBOSE", "true"), ("LIMIT", "21")]);
    // The last -D for a name wins: TWICE = 21 * 2.
    assert!(out.contains("calls#0[42:u64]"), "{out}");
    assert!(out.contains("\"nginx\""), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn without_overrides_the_declared_values_stand() {
    let out = check_with(&[]);
    assert!(out.contains("calls#0[20:u64]") && out.contains("\"bash\""), "{out}");
}

#[test]
fn unknown_names_list_the_consts() {
    insta::assert_snapshot!(check_with(&[("LIMT", "3"), ("NOPE", "1")]));
}

#[test]
fn kind_mismatches_and_non_literals_are_errors() {
    let out = check_with(&[("TARGET", "42"), ("LIMIT", "\"ten\""), ("VERBOSE", "yes"), ("TWICE", "1 + 1")]);
    assert_eq!(out.matches("error[E0502]").count(), 4, "{out}");
    assert!(!out.contains("---"), "a failed override must not yield a program:\n{out}");
    insta::assert_snapshot!(out);
}
