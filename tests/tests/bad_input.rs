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

/// Small cases whose messages are snapshotted: the messages are part of the product.
fn snapshotted_cases() -> Vec<BadInput> {
    let case = |name, contents: &[u8]| BadInput { name, contents: contents.to_vec(), snapshot: true };
    let mut non_utf8 = format!("map calls: count;\nprobe {OPENAT} {{ calls.inc(); }} // ").into_bytes();
    non_utf8.extend_from_slice(b"\xff\xfe caf\xe9\n");
    // Deep enough to overflow any naively recursive parser or checker on the main thread's
    // stack; split over lines so that the diagnostic's source excerpt stays readable.
    let depth = 10_000;
    let deep = format!(
        "map total: sum;\nprobe {OPENAT} {{\n  total.add(\n{}\n1\n{}\n  );\n}}\n",
        "((((((((((((((((((((((((((((((((((((((((((((((((((\n".repeat(depth / 50).trim_end(),
        "))))))))))))))))))))))))))))))))))))))))))))))))))\n".repeat(depth / 50).trim_end(),
    );
    vec![
        case("empty.ppl", b""),
        case("random_bytes.ppl", &noise(4096)),
        case("non_utf8.ppl", &non_utf8),
        case(
            "unknown_probe_type.ppl",
            format!("map calls: count;\nprobe tracepiont:syscalls:sys_enter_openat {{ calls.inc(); }}\n").as_bytes(),
        ),
        case("type_error.ppl", format!("map total: sum;\nprobe {OPENAT} {{ total.add(comm); }}\n").as_bytes()),
        case("undeclared_map.ppl", format!("map calls: count;\nprobe {OPENAT} {{ cals.inc(); }}\n").as_bytes()),
        case("deep_parentheses.ppl", deep.as_bytes()),
    ]
}

#[test]
fn bad_input_gets_a_coded_diagnostic_and_no_crash() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "bad_input");
    for case in snapshotted_cases() {
        let outcome = check_bad_input(&dir, &case);
        if case.snapshot {
            let report = format!(
                "exit code: {}\n--- stderr\n{}--- stdout\n{}",
                outcome.code().map_or("none".to_string(), |code| code.to_string()),
                outcome.stderr,
                outcome.stdout
            );
            insta::assert_snapshot!(case.name.trim_end_matches(".ppl"), report);
        }
    }
}

#[test]
fn ten_megabytes_of_source_is_handled() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "bad_input_large");
    let line = "// padding to make the file large, as a generated or corrupted file might be\n";
    let mut source = line.repeat(10 * 1024 * 1024 / line.len() + 1);
    source.push_str(&format!("probe {OPENAT} {{ missing.inc(); }}\n"));
    assert!(source.len() >= 10 * 1024 * 1024);
    let case = BadInput { name: "large.ppl", contents: source.into_bytes(), snapshot: false };
    // check_bad_input enforces the deadline, so slow (quadratic) handling fails here too.
    check_bad_input(&dir, &case);
}

#[test]
fn json_diagnostics_are_one_parseable_document_with_a_code() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "bad_input_json");
    let source = format!("map calls: count;\nprobe {OPENAT} {{ cals.inc(); }}\n");
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
    std::fs::write(dir.join("good.ppl"), format!("map calls: count;\nprobe {OPENAT} {{ calls.inc(); }}\n"))
        .expect("scratch dir is writable");
    std::fs::write(dir.join("bad.ppl"), format!("probe {OPENAT} {{ calls.inc(); }}\n"))
        .expect("scratch dir is writable");
    let outcome = run_ppisc(&dir, ["check", "good.ppl", "bad.ppl"]);
    outcome.assert_no_crash();
    assert_eq!(outcome.code(), Some(1), "{}", outcome.transcript());
    assert!(outcome.stderr.contains("bad.ppl") || outcome.stdout.contains("bad.ppl"), "{}", outcome.transcript());
}
