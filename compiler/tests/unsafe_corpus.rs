//! The unsafe corpus (`tests/data/unsafe/*.ppl`): each program is refused, through the whole
//! pipeline (check, lower, verify, code generation), with exactly the code its first line
//! names (`// expect: E0414`); its twins (`// expect: ok`) are the same idea done safely and
//! compile clean. A warning code (`W0400`) means the program compiles but is flagged.

#[path = "../../lang/tests/common/mod.rs"]
mod common;

use ppis_compiler::driver::{self, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_manifest::profile::CostProfile;
use std::path::{Path, PathBuf};

fn options() -> CompileOptions {
    // Fixed inputs so that verdicts do not depend on the host running the tests.
    CompileOptions { lower: LowerOptions::default(), profile: CostProfile::reference(), cpus: 2 }
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/unsafe");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ppl"))
        .collect();
    files.sort();
    files
}

/// The code a file's first line names, or `None` for `// expect: ok`.
fn expectation(path: &Path, source: &str) -> Option<String> {
    let first = source.lines().next().unwrap_or_default();
    let expected = first
        .strip_prefix("// expect: ")
        .unwrap_or_else(|| panic!("{}: the first line must be `// expect: CODE` or `// expect: ok`", path.display()))
        .trim();
    (expected != "ok").then(|| expected.to_string())
}

#[test]
fn every_unsafe_program_is_refused_with_its_code_and_every_twin_compiles() {
    let files = corpus();
    let mut failures = Vec::new();
    let mut expected_codes = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).expect("corpus file is readable");
        let expected = expectation(path, &source);
        let (compiled, diags) = driver::compile(&source, &common::FakeTargets, &options());
        // Unused locals are beside the point of every file.
        let mut codes: Vec<&str> = diags.iter().map(|d| d.code).filter(|c| *c != "W0001").collect();
        codes.dedup();
        let rendered = || ppis_lang::render::text(&diags, "input.ppl", &source, false);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        match &expected {
            None if compiled.is_some() && codes.is_empty() => {}
            None => failures.push(format!("{name}: should compile clean, got {codes:?}\n{}", rendered())),
            Some(code) => {
                let refused_or_warned = compiled.is_none() || code.starts_with('W');
                if codes != [code.as_str()] || !refused_or_warned {
                    failures.push(format!("{name}: expected exactly {code}, got {codes:?}\n{}", rendered()));
                }
                expected_codes.push(code.clone());
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The items of the verifier issue's corpus, each present.
    for code in ["E0400", "E0414", "E0208", "E0410", "W0400", "E0411", "E0403", "E0415"] {
        assert!(expected_codes.iter().any(|c| c == code), "no corpus file expects {code}");
    }
}
