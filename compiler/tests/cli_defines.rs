//! `ppisc ir -D NAME=VALUE` end to end (no kernel needed): the override reaches the IR, and
//! an unknown name, a value of the wrong kind or a malformed option fail with a message.

mod cli_support;

use std::path::PathBuf;
use std::process::Output;

use cli_support::{ppisc, s};

fn write_source(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ppis-cli-defines-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("probe.ppl");
    // Uprobes resolve against ELF files, so this needs no tracefs.
    std::fs::write(
        &path,
        "const SLOT = 3;\nconst NAME = \"bash\";\n\nmap n: count[u64] max 64;\n\n\
         probe uprobe:/bin/bash:readline rate <= 10/s when comm == NAME {\n    n[SLOT * 1000].inc();\n}\n",
    )
    .unwrap();
    path
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn an_override_reaches_the_ir() {
    let src = write_source("ok");
    let plain = ppisc(&["ir", s(&src)]);
    assert!(plain.status.success(), "{}", text(&plain));
    assert!(text(&plain).contains("3000"), "{}", text(&plain));
    let out = ppisc(&["ir", s(&src), "-D", "SLOT=7", "-D", "NAME=\"zsh\""]);
    assert!(out.status.success(), "{}", text(&out));
    let ir = text(&out);
    assert!(ir.contains("7000") && !ir.contains("3000"), "SLOT not overridden:\n{ir}");
    // "zsh\0" as a little-endian word, the string constant the comparison stores.
    assert!(ir.contains(&u32::from_le_bytes(*b"zsh\0").to_string()), "NAME not overridden:\n{ir}");
}

#[test]
fn bad_overrides_fail_with_e0502() {
    let src = write_source("bad");
    let out = ppisc(&["ir", s(&src), "-D", "SLTO=7"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("E0502") && text(&out).contains("did you mean `-D SLOT=...`"), "{}", text(&out));
    let out = ppisc(&["ir", s(&src), "-D", "SLOT=\"seven\""]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("gives a string, but the const is an integer"), "{}", text(&out));
}

#[test]
fn a_define_without_equals_is_a_usage_error() {
    let src = write_source("usage");
    let out = ppisc(&["ir", s(&src), "-D", "SLOT"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("expected NAME=VALUE"), "{}", text(&out));
}

/// `-D` also reaches `check` and `build`: an override that breaks the probe fails `check`,
/// and the built object differs from the default one.
#[test]
fn overrides_reach_check_and_build() {
    let src = write_source("build");
    let out = ppisc(&["check", s(&src), "-D", "SLOT=7"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ppisc(&["check", s(&src), "-D", "NOPE=7"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("E0502"), "{}", text(&out));
    let dir = src.parent().unwrap();
    let (a, b) = (dir.join("a.o"), dir.join("b.o"));
    assert!(ppisc(&["build", s(&src), "-o", s(&a)]).status.success());
    assert!(ppisc(&["build", s(&src), "-o", s(&b), "-D", "SLOT=7"]).status.success());
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "-D did not change the object");
}
