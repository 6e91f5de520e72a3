//! Modules at the library level: `-D` reaches a module's consts, every file is merged once
//! (diamond uses), and rendered diagnostics name the file they are in.

mod common;

use common::FakeTargets;
use ppis_lang::modules::{resolve, TableLoader};
use ppis_lang::{check_program, CheckOptions};

const MODULES: &[(&str, &str)] = &[
    ("lib::base", "const BASE_PID = 1;\n\nmap base_calls: count;\n\nprobe tracepoint:raw_syscalls:sys_enter rate <= 1k/s when pid == BASE_PID {\n    base_calls.inc();\n}\n"),
    ("lib::left", "use lib::base;\n\nmap left_calls: count;\n\nprobe tracepoint:raw_syscalls:sys_exit rate <= 1k/s when pid == BASE_PID {\n    left_calls.inc();\n}\n"),
    ("lib::right", "use lib::base;\n\nconst RIGHT = \"x\";\nmap right_calls: count;\n\nprobe tracepoint:raw_syscalls:sys_exit rate <= 1k/s when comm == RIGHT {\n    right_calls.inc();\n}\n"),
    ("lib::typo", "map typo_calls: count;\n\nprobe tracepoint:raw_syscalls:sys_exit rate <= 1k/s {\n    typo_cals.inc();\n}\n"),
];

fn loader() -> TableLoader<'static> {
    TableLoader { modules: MODULES }
}

#[test]
fn a_diamond_merges_each_module_once_dependencies_first() {
    let resolved = resolve("main.ppl", "use lib::left;\nuse lib::right;\n", &loader());
    assert!(resolved.diagnostics.is_empty(), "{:?}", resolved.diagnostics);
    assert_eq!(resolved.modules, ["lib::base", "lib::left", "lib::right"]);
    let names: Vec<&str> = resolved.sources.files.iter().map(|f| f.name.as_str()).collect();
    // Files in the order they were loaded; items (above) in dependency order.
    assert_eq!(names, ["main.ppl", "lib/left.ppl", "lib/base.ppl", "lib/right.ppl"]);
    // Each file has its own offsets, and the combined text holds each at them.
    let combined = resolved.sources.combined();
    for (index, file) in resolved.sources.files.iter().enumerate() {
        assert_eq!(&combined[file.base..file.base + file.text.len()], file.text);
        assert_eq!(resolved.sources.file_at(file.base as u32), index);
    }
}

#[test]
fn defines_reach_module_consts() {
    let opts = CheckOptions::with_const_overrides(vec![("BASE_PID".into(), "4242".into())]);
    let (program, diagnostics, _) = check_program("main.ppl", "use lib::left;\n", &FakeTargets, &loader(), &opts);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let program = program.expect("checks");
    let dump = ppis_lang::dump::program(&program);
    assert_eq!(dump.matches("4242").count(), 2, "both probes use the override:\n{dump}");
    let unknown = CheckOptions::with_const_overrides(vec![("NOT_A_CONST".into(), "1".into())]);
    let (_, diagnostics, _) = check_program("main.ppl", "use lib::left;\n", &FakeTargets, &loader(), &unknown);
    assert!(diagnostics.iter().any(|d| d.code == "E0502"), "{diagnostics:?}");
}

#[test]
fn a_checker_error_in_a_module_is_rendered_in_the_module() {
    let (program, diagnostics, sources) =
        check_program("main.ppl", "use lib::typo;\n", &FakeTargets, &loader(), &CheckOptions::default());
    assert!(program.is_none());
    let text = sources.render_text(&diagnostics, false);
    assert!(text.contains("┌─ lib/typo.ppl:4:5"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&sources.render_json(&diagnostics)).expect("JSON");
    assert_eq!(json[0]["code"], "E0102");
    assert_eq!(json[0]["file"], "lib/typo.ppl");
    assert_eq!(json[0]["line"], 4);
    assert_eq!(json[0]["span"]["start"], 82, "offsets are the module's own");
}

#[test]
fn use_without_a_loader_is_an_unknown_module() {
    let (program, diagnostics) = ppis_lang::check_source("use lib::base;\n", &FakeTargets, &CheckOptions::default());
    assert!(program.is_none());
    assert_eq!(diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(), ["E0013"]);
}
