//! Replays every input the fuzzer once crashed on (`fuzz/regressions/lang_check/`, kept by
//! `cargo xtask fuzz`) through the fuzz target's own entry point, so a fixed crash stays fixed.

use std::path::Path;

#[test]
fn saved_fuzz_crashes_no_longer_crash() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/lang_check");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} holds no regression inputs", dir.display());
    let mut crashed = Vec::new();
    for path in &inputs {
        let data = std::fs::read(path).expect("readable regression input");
        if std::panic::catch_unwind(|| ppis_lang::fuzzing::lang_check(&data)).is_err() {
            crashed.push(path.display().to_string());
        }
    }
    assert!(crashed.is_empty(), "fuzz regressions crash again: {crashed:?}");
}
