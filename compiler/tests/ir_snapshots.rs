//! `ppisc ir` on every example, snapshotted with insta: a change in lowering shows up as a
//! reviewed diff of the IR the proofs run on. Tracepoint layouts come from this host's tracefs.

use std::path::Path;
use std::process::Command;

#[test]
fn ir_of_every_example() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "ppl"));
    files.sort();
    assert!(!files.is_empty(), "no examples in {}", dir.display());
    for file in files {
        let out = Command::new(env!("CARGO_BIN_EXE_ppisc")).arg("ir").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("tracefs is not mounted") && std::env::var("CI").as_deref() != Ok("true") {
            eprintln!("skipping {}: tracefs is not mounted", file.display());
            continue;
        }
        assert!(out.status.success(), "ppisc ir {} failed:\n{stderr}", file.display());
        let name = file.file_stem().unwrap().to_str().unwrap().to_string();
        insta::assert_snapshot!(name, String::from_utf8_lossy(&out.stdout));
    }
}
