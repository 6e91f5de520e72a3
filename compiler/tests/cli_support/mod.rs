//! Helpers the `ppisc` command-line tests share: run the binary, scratch directories, and
//! assertions that print what the command said.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn ppisc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ppisc")).args(args).output().expect("ppisc runs")
}

/// A fresh, empty directory for one test (the pid keeps concurrent test binaries apart).
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ppis-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
