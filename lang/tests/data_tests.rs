//! Data-driven tests: every `tests/data/ok/*.ppl` must check (warnings allowed) and every
//! `tests/data/err/*.ppl` must fail with the code its name starts with. The rendered
//! diagnostics (and, for ok files, the checked program) are snapshotted per file.

mod common;

use common::{DataModules, FakeTargets};
use ppis_lang::diag::CODES;
use ppis_lang::{check_program, check_source, render, CheckOptions};
use std::path::Path;

/// Checks one file; returns the snapshot text and whether the program came back.
fn check(path: &Path) -> (String, bool, Vec<&'static str>) {
    let source = std::fs::read_to_string(path).expect("test data is readable UTF-8");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("input.ppl");
    // With modules from `data/modules/`, as `ppisc check` loads them; each diagnostic is
    // rendered against the file it is in.
    let (program, diagnostics, sources) =
        check_program(name, &source, &FakeTargets, &DataModules, &CheckOptions::default());
    let mut out = sources.render_text(&diagnostics, false);
    if let Some(program) = &program {
        out.push_str("---\n");
        out.push_str(&ppis_lang::dump::program(program));
    }
    (out, program.is_some(), diagnostics.iter().map(|d| d.code).collect())
}

/// The code a data file is about: the part of its name before the first `_`, if it looks
/// like a code.
fn expected_code(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    let code = stem.split('_').next()?;
    (code.len() == 5 && (code.starts_with('E') || code.starts_with('W'))).then(|| code.to_string())
}

#[test]
fn ok_files_check_clean() {
    insta::glob!("data/ok/*.ppl", |path| {
        let (out, checked, codes) = check(path);
        assert!(checked, "{} should check:\n{out}", path.display());
        if let Some(code) = expected_code(path) {
            assert!(codes.contains(&code.as_str()), "{} should warn {code}:\n{out}", path.display());
        }
        insta::assert_snapshot!(out);
    });
}

#[test]
fn err_files_fail_with_their_code() {
    insta::glob!("data/err/*.ppl", |path| {
        let (out, checked, codes) = check(path);
        assert!(!checked, "{} should not check", path.display());
        let code = expected_code(path).expect("err files are named CODE_what.ppl");
        assert!(codes.contains(&code.as_str()), "{} should report {code}:\n{out}", path.display());
        insta::assert_snapshot!(out);
    });
}

/// Every code this crate emits (E0001-E0399 and W0001-W0399; 04xx and up belong to later
/// stages) has a data file.
#[test]
fn every_front_end_code_has_a_data_file() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut covered = Vec::new();
    for dir in ["ok", "err"] {
        for entry in std::fs::read_dir(data.join(dir)).expect("data dir exists") {
            if let Some(code) = expected_code(&entry.expect("readable entry").path()) {
                covered.push(code);
            }
        }
    }
    let front_end = CODES.iter().map(|c| c.code).filter(|c| c[1..].parse::<u32>().is_ok_and(|number| number < 400));
    let missing: Vec<&str> = front_end.filter(|code| !covered.iter().any(|c| c == code)).collect();
    assert!(missing.is_empty(), "codes without a data file: {missing:?}");
}

#[test]
fn json_rendering() {
    let source = "map calls: count[u32] max 8;\nprobe tracepoint:raw_syscalls:sys_enter {\n    cals[pid].inc();\n}\n";
    let (_, diagnostics) = check_source(source, &FakeTargets, &CheckOptions::default());
    insta::assert_snapshot!(render::json(&diagnostics, "json.ppl", source));
}

#[test]
fn check_alone_refuses_a_tree_with_parse_errors() {
    let (file, diagnostics) = ppis_lang::parse("probe tracepoint:raw_syscalls:sys_enter { let x = ; }");
    assert_eq!(diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(), vec!["E0001"]);
    let (program, check_diagnostics) = ppis_lang::check(&file, &FakeTargets, &CheckOptions::default());
    assert!(program.is_none(), "the tree is incomplete");
    assert!(check_diagnostics.is_empty(), "the parser already explained it: {check_diagnostics:?}");
}
