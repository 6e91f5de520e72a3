//! Every bundled example (`examples/*.ppl`) checks clean, builds, disassembles, and loads and
//! attaches in the real kernel. New examples are picked up without touching this file.

use std::path::PathBuf;

use ppis_tests::{require_kernel, run_ppisc, scratch_dir, workspace_root, Outcome};

fn examples() -> Vec<PathBuf> {
    let dir = workspace_root().join("examples");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    let mut examples: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "ppl"))
        .collect();
    examples.sort();
    assert!(!examples.is_empty(), "no examples/*.ppl found in {}", dir.display());
    examples
}

/// Runs one stage on every example and reports all failures at once, so one broken example
/// does not hide the state of the others.
fn for_every_example(stage: &str, mut run: impl FnMut(&PathBuf) -> Result<(), String>) {
    let failures: Vec<String> = examples()
        .iter()
        .filter_map(|example| run(example).err().map(|why| format!("{}: {why}", example.display())))
        .collect();
    assert!(failures.is_empty(), "{stage} failed for {} example(s):\n{}", failures.len(), failures.join("\n\n"));
}

fn expect_success(outcome: &Outcome) -> Result<(), String> {
    outcome.assert_no_crash();
    match outcome.code() {
        Some(0) => Ok(()),
        _ => Err(format!("`{}` failed\n{}", outcome.command, outcome.transcript())),
    }
}

#[test]
fn every_example_checks_clean() {
    let root = workspace_root();
    for_every_example("ppisc check", |example| {
        let outcome = run_ppisc(&root, ["check".as_ref(), example.as_os_str()]);
        // Exit 0 means no errors; warnings are allowed (an example may show one on purpose).
        expect_success(&outcome)
    });
}

#[test]
fn every_example_builds_and_disassembles() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "examples_build");
    for_every_example("ppisc build", |example| {
        let stem = example.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        let object = dir.join(format!("{stem}.o"));
        expect_success(&run_ppisc(&dir, ["build".as_ref(), example.as_os_str(), "-o".as_ref(), object.as_os_str()]))?;
        let size = std::fs::metadata(&object).map(|metadata| metadata.len()).unwrap_or(0);
        if size == 0 {
            return Err(format!("{} is missing or empty after a successful build", object.display()));
        }
        let disassembly = run_ppisc(&dir, ["disasm".as_ref(), object.as_os_str()]);
        expect_success(&disassembly)?;
        if !disassembly.stdout.contains("exit") {
            return Err(format!("disassembly has no exit instruction:\n{}", disassembly.stdout));
        }
        Ok(())
    });
}

#[test]
fn every_example_loads_and_attaches() {
    if !require_kernel("every_example_loads_and_attaches") {
        return;
    }
    let root = workspace_root();
    for_every_example("ppisc run", |example| {
        let outcome = run_ppisc(&root, ["run".as_ref(), example.as_os_str(), "--for".as_ref(), "1s".as_ref()]);
        expect_success(&outcome)?;
        if !outcome.stderr.contains("Attached") {
            return Err(format!("no \"Attached\" on stderr\n{}", outcome.transcript()));
        }
        Ok(())
    });
}
