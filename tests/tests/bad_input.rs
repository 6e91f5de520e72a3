//! Bad input at the command line: whatever bytes `ppisc check` is given, it exits 1 or 2 with
//! a coded diagnostic and never panics, overflows its stack or hangs. No kernel needed.

use ppis_tests::{check_bad_input, contains_error_code, run_ppisc, scratch_dir, BadInput};

const OPENAT: &str = "tracepoint:syscalls:sys_enter_openat";

/// Deterministic noise (xorshift64), so the snapshot is stable from run to run.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect()
}

/// One test per case, each snapshotting its messages: the messages are part of the product.
macro_rules! snapshotted_bad_inputs {
    ($($name:ident => $contents:expr;)*) => {$(
        #[test]
        fn $name() {
            let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), concat!("bad_input_", stringify!($name)));
            let contents: Vec<u8> = $contents;
            let case = BadInput { name: concat!(stringify!($name), ".ppl"), contents };
            let outcome = check_bad_input(&dir, &case);
            let report = format!(
                "exit code: {}\n--- stderr\n{}--- stdout\n{}",
                outcome.code().map_or("none".to_string(), |code| code.to_string()),
                outcome.stderr,
                outcome.stdout
            );
            insta::assert_snapshot!(stringify!($name), report);
        }
    )*};
}

/// Latin-1 where UTF-8 belongs, between `before` and `after`.
fn latin1(before: &str, after: &str) -> Vec<u8> {
    [before.as_bytes(), b"caf\xe9\xff", after.as_bytes()].concat()
}

/// 10,000 nested parentheses: deep enough to overflow any naively recursive parser, checker
/// or destructor on the main thread's stack. Split over lines so that the diagnostic's source
/// excerpt stays readable.
fn nested_parentheses() -> Vec<u8> {
    let lines = 10_000 / 50;
    let open = "(".repeat(50);
    let close = ")".repeat(50);
    let opens = vec![open.as_str(); lines].join("\n");
    let closes = vec![close.as_str(); lines].join("\n");
    format!("map total: sum;\nprobe {OPENAT} rate <= 1000/s {{\n  total.add(\n{opens}\n1\n{closes}\n  );\n}}\n")
        .into_bytes()
}

snapshotted_bad_inputs! {
    empty => Vec::new();
    // Short, so that the snapshot (every invalid character is its own diagnostic) stays readable.
    random_bytes => noise(48);
    // Once in code and once where only a comment would hide it: a source file must be UTF-8
    // throughout, as in rustc.
    non_utf8_in_code => latin1(&format!("map calls: count;\nprobe {OPENAT} rate <= 1000/s {{ calls.inc(); "), " }\n");
    non_utf8_in_comment => latin1(&format!("map calls: count;\nprobe {OPENAT} rate <= 1000/s {{ calls.inc(); }} // "), "\n");
    unknown_probe_type => b"map calls: count;\nprobe tracepiont:syscalls:sys_enter_openat rate <= 1000/s { calls.inc(); }\n".to_vec();
    type_error => format!("map total: sum;\nprobe {OPENAT} rate <= 1000/s {{ total.add(comm); }}\n").into_bytes();
    undeclared_map => format!("map calls: count;\nprobe {OPENAT} rate <= 1000/s {{ cals.inc(); }}\n").into_bytes();
    deep_parentheses => nested_parentheses();
}

#[test]
fn pages_of_random_bytes_are_handled() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "bad_input_noise");
    for (index, length) in [4096, 65536].into_iter().enumerate() {
        let case =
            BadInput { name: if index == 0 { "noise_4k.ppl" } else { "noise_64k.ppl" }, contents: noise(length) };
        check_bad_input(&dir, &case);
    }
}

#[test]
fn ten_megabytes_of_source_is_handled() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "bad_input_large");
    let line = "// padding to make the file large, as a generated or corrupted file might be\n";
    let mut source = line.repeat(10 * 1024 * 1024 / line.len() + 1);
    source.push_str(&format!("probe {OPENAT} rate <= 1000/s {{ missing.inc(); }}\n"));
    assert!(source.len() >= 10 * 1024 * 1024);
    let case = BadInput { name: "large.ppl", contents: source.into_bytes() };
    // check_bad_input enforces the deadline, so slow (quadratic) handling fails here too.
    check_bad_input(&dir, &case);
}

#[test]
fn json_diagnostics_are_one_parseable_document_with_a_code() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "bad_input_json");
    let source = format!("map calls: count;\nprobe {OPENAT} rate <= 1000/s {{ cals.inc(); }}\n");
    std::fs::write(dir.join("undeclared.ppl"), source).expect("scratch dir is writable");
    let outcome = run_ppisc(&dir, ["check", "undeclared.ppl", "--format", "json"]);
    outcome.assert_no_crash();
    assert_eq!(outcome.code(), Some(1), "{}", outcome.transcript());
    let document: serde_json::Value = serde_json::from_str(outcome.stdout.trim())
        .unwrap_or_else(|error| panic!("not one JSON document: {error}\n{}", outcome.transcript()));
    fn has_error_code(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => text.len() == 5 && contains_error_code(text),
            serde_json::Value::Array(items) => items.iter().any(has_error_code),
            serde_json::Value::Object(fields) => fields.values().any(has_error_code),
            _ => false,
        }
    }
    assert!(has_error_code(&document), "no \"E0...\" code in {document}");
}

#[test]
fn missing_file_and_missing_arguments_are_usage_errors() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "bad_input_usage");
    let missing = run_ppisc(&dir, ["check", "does_not_exist.ppl"]);
    missing.assert_no_crash();
    assert_eq!(missing.code(), Some(2), "{}", missing.transcript());
    assert!(missing.stderr.contains("does_not_exist.ppl"), "the message must name the file\n{}", missing.transcript());

    let no_file = run_ppisc(&dir, ["check"]);
    no_file.assert_no_crash();
    assert_eq!(no_file.code(), Some(2), "{}", no_file.transcript());

    let unknown_command = run_ppisc(&dir, ["frobnicate"]);
    unknown_command.assert_no_crash();
    assert_eq!(unknown_command.code(), Some(2), "{}", unknown_command.transcript());
}

#[test]
fn good_and_bad_files_together_exit_one() {
    // A clean file must not mask errors in another: the exit code reflects the worst file.
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "bad_input_mixed");
    std::fs::write(
        dir.join("good.ppl"),
        format!("map calls: count;\nprobe {OPENAT} rate <= 1000/s {{ calls.inc(); }}\n"),
    )
    .expect("scratch dir is writable");
    std::fs::write(dir.join("bad.ppl"), format!("probe {OPENAT} rate <= 1000/s {{ calls.inc(); }}\n"))
        .expect("scratch dir is writable");
    let outcome = run_ppisc(&dir, ["check", "good.ppl", "bad.ppl"]);
    outcome.assert_no_crash();
    assert_eq!(outcome.code(), Some(1), "{}", outcome.transcript());
    assert!(outcome.stderr.contains("bad.ppl") || outcome.stdout.contains("bad.ppl"), "{}", outcome.transcript());
}
