//! The standard library (`stdlib/`) through `ppisc`, like a user: every module checks and
//! builds, module consts are `-D` parameters, `--stdlib DIR` and `$PPIS_STDLIB` choose the
//! library, diagnostics in a module name the module's file, `--deny-warnings`, and in the
//! kernel a module's probe counts exactly the workload's events.

use std::path::Path;
use std::process::Command;

use ppis_tests::{
    child_command, parse_maps, ppisc, require_kernel, run_ppisc, run_with_deadline, scratch_dir, workload,
    workspace_root, write_file, Outcome, DEFAULT_DEADLINE,
};

/// `stdlib::a::b` for every `stdlib/a/b.ppl`.
fn stdlib_modules() -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("readable entry").path();
            let stem = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 names").to_string();
            if path.is_dir() {
                walk(&path, &format!("{prefix}::{stem}"), out);
            } else if path.extension().is_some_and(|e| e == "ppl") {
                out.push(format!("{prefix}::{stem}"));
            }
        }
    }
    let mut modules = Vec::new();
    walk(&workspace_root().join("stdlib"), "stdlib", &mut modules);
    modules.sort();
    assert!(modules.len() >= 3, "expected at least three stdlib modules, found {modules:?}");
    modules
}

#[test]
fn every_stdlib_module_checks_clean_and_builds() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "stdlib_build");
    let mut failures = Vec::new();
    for module in stdlib_modules() {
        let name = module.replace("::", "_");
        let source = write_file(&dir, &format!("{name}.ppl"), format!("use {module};\n"));
        let check = run_ppisc(&dir, ["check".as_ref(), "--deny-warnings".as_ref(), source.as_os_str()]);
        check.assert_no_crash();
        if check.code() != Some(0) || !check.stderr.is_empty() {
            failures.push(format!("{module}: check is not clean\n{}", check.transcript()));
            continue;
        }
        let object = dir.join(format!("{name}.o"));
        let build = run_ppisc(&dir, ["build".as_ref(), source.as_os_str(), "-o".as_ref(), object.as_os_str()]);
        build.assert_no_crash();
        if build.code() != Some(0) || !object.is_file() {
            failures.push(format!("{module}: build failed\n{}", build.transcript()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_module_const_is_a_define_parameter() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "stdlib_define");
    let source = write_file(&dir, "count.ppl", "use stdlib::syscalls::count;\n");
    let plain = run_ppisc(&dir, ["ir", "count.ppl"]);
    plain.assert_success();
    assert!(!plain.stdout.contains("424242"), "{}", plain.transcript());
    let set = run_ppisc(&dir, ["ir", "count.ppl", "-D", "SYSCALLS_COUNT_PID=424242"]);
    set.assert_success();
    assert!(set.stdout.contains("424242"), "the override did not reach the IR\n{}", set.transcript());
    let wrong_kind = run_ppisc(&dir, ["check", "count.ppl", "-D", "SYSCALLS_COUNT_PID=\"x\""]);
    assert_eq!(wrong_kind.code(), Some(1), "{}", wrong_kind.transcript());
    assert!(wrong_kind.stderr.contains("E0502"), "{}", wrong_kind.transcript());
    drop(source);
}

/// A library with one module whose line 3 has a syntax error, and one that counts `kill`s.
fn custom_stdlib(dir: &Path) -> std::path::PathBuf {
    let lib = dir.join("mylib");
    std::fs::create_dir_all(lib.join("custom")).unwrap();
    write_file(&lib.join("custom"), "broken.ppl", "map broken_calls: count;\n\nconst BROKEN = ;\n");
    write_file(
        &lib.join("custom"),
        "kills.ppl",
        "map custom_kills: count;\n\nprobe tracepoint:syscalls:sys_enter_kill rate <= 1k/s {\n    custom_kills.inc();\n}\n",
    );
    lib
}

fn ppisc_with_env(dir: &Path, args: &[&str], env: (&str, &Path)) -> Outcome {
    let mut command = Command::new(ppisc());
    command.current_dir(dir).args(args).env(env.0, env.1);
    run_with_deadline(command, DEFAULT_DEADLINE)
}

#[test]
fn stdlib_flag_and_environment_choose_the_library() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "stdlib_choose");
    let lib = custom_stdlib(&dir);
    write_file(&dir, "kills.ppl", "use stdlib::custom::kills;\n");
    // Not in the shipped library.
    let shipped = run_ppisc(&dir, ["check", "kills.ppl"]);
    assert_eq!(shipped.code(), Some(1), "{}", shipped.transcript());
    assert!(shipped.stderr.contains("E0013"), "{}", shipped.transcript());
    let flag = run_ppisc(&dir, ["check".as_ref(), "kills.ppl".as_ref(), "--stdlib".as_ref(), lib.as_os_str()]);
    flag.assert_success();
    let env = ppisc_with_env(&dir, &["check", "kills.ppl"], ("PPIS_STDLIB", &lib));
    env.assert_success();
    // The custom library does not hide the shipped modules it lacks.
    write_file(&dir, "both.ppl", "use stdlib::custom::kills;\nuse stdlib::syscalls::count;\n");
    let both = ppisc_with_env(&dir, &["check", "both.ppl"], ("PPIS_STDLIB", &lib));
    both.assert_success();
}

#[test]
fn diagnostics_in_a_module_name_the_module_file() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "stdlib_diagnostics");
    let lib = custom_stdlib(&dir);
    write_file(&dir, "main.ppl", "use stdlib::custom::broken;\n");
    let module_file = lib.join("custom/broken.ppl").display().to_string();
    let text = run_ppisc(&dir, ["check".as_ref(), "main.ppl".as_ref(), "--stdlib".as_ref(), lib.as_os_str()]);
    assert_eq!(text.code(), Some(1), "{}", text.transcript());
    assert!(text.stderr.contains(&format!("{module_file}:3:")), "not located in the module\n{}", text.transcript());
    let json = run_ppisc(
        &dir,
        [
            "check".as_ref(),
            "main.ppl".as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
            "--stdlib".as_ref(),
            lib.as_os_str(),
        ],
    );
    assert_eq!(json.code(), Some(1), "{}", json.transcript());
    let diagnostics: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON diagnostics");
    let first = &diagnostics[0];
    assert_eq!(first["file"], module_file.as_str(), "{}", json.stdout);
    assert_eq!(first["line"], 3, "{}", json.stdout);
    assert_eq!(first["code"], "E0001", "{}", json.stdout);
    let sarif = run_ppisc(
        &dir,
        [
            "check".as_ref(),
            "main.ppl".as_ref(),
            "--format".as_ref(),
            "sarif".as_ref(),
            "--stdlib".as_ref(),
            lib.as_os_str(),
        ],
    );
    assert_eq!(sarif.code(), Some(1), "{}", sarif.transcript());
    let log: serde_json::Value = serde_json::from_str(&sarif.stdout).expect("SARIF is JSON");
    let location = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
    let uri = location["artifactLocation"]["uri"].as_str().unwrap_or_default();
    assert!(uri.ends_with("mylib/custom/broken.ppl"), "{}", sarif.stdout);
    assert_eq!(location["region"]["startLine"], 3, "{}", sarif.stdout);
}

#[test]
fn warnings_fail_only_with_deny_warnings() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "stdlib_deny_warnings");
    write_file(&dir, "unused.ppl", "use stdlib::syscalls::count;\n\nmap never_used: count;\n");
    let lenient = run_ppisc(&dir, ["check", "unused.ppl"]);
    lenient.assert_success();
    assert!(lenient.stderr.contains("W0002"), "{}", lenient.transcript());
    let strict = run_ppisc(&dir, ["check", "--deny-warnings", "unused.ppl"]);
    strict.assert_no_crash();
    assert_eq!(strict.code(), Some(1), "{}", strict.transcript());
}

#[test]
fn syscalls_count_module_counts_exactly_the_childs_kills() {
    if !require_kernel("syscalls_count_module_counts_exactly_the_childs_kills") {
        return;
    }
    const KILLS: u64 = 123;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "stdlib_count_kernel");
    // Nothing but the module: its probe and maps are the whole program. `kill` is a syscall
    // nothing but the workload's `kill N` loop makes (std and the loader never signal).
    let probe = write_file(&dir, "count.ppl", "use stdlib::syscalls::count;\n");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let child = child_command(&workload, &["kill", &KILLS.to_string()]);
    let outcome = run_ppisc(
        &dir,
        [
            "run".as_ref(),
            probe.as_os_str(),
            "-D".as_ref(),
            "SYSCALLS_COUNT_CHILD_ONLY=true".as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
            "-c".as_ref(),
            child.as_ref(),
        ],
    );
    outcome.assert_success();
    let maps = parse_maps(&outcome);
    let by_id = maps.get("syscalls_by_id").and_then(|m| m.as_object());
    let by_id = by_id.unwrap_or_else(|| panic!("no syscalls_by_id object\n{}", outcome.transcript()));
    let kill_key = libc::SYS_kill.to_string();
    let kills = by_id.get(&kill_key).and_then(serde_json::Value::as_u64);
    assert_eq!(kills, Some(KILLS), "kill ({kill_key}) counted wrongly\n{}", outcome.transcript());
    // The child only: far fewer syscalls than a whole system makes, and at least its kills.
    let total = maps.get("syscalls_total").and_then(serde_json::Value::as_u64).expect("syscalls_total");
    assert!((KILLS..KILLS + 500).contains(&total), "syscalls_total = {total}\n{}", outcome.transcript());
}

/// The certificate's `hashes.source` of `ppisc build FILE` with `args`, run in `dir`.
fn certified_source_hash(dir: &Path, file: &str, args: &[&std::ffi::OsStr]) -> String {
    let mut all: Vec<&std::ffi::OsStr> = vec![
        "build".as_ref(),
        file.as_ref(),
        "-o".as_ref(),
        "out.o".as_ref(),
        "--certificate".as_ref(),
        "cert.json".as_ref(),
    ];
    all.extend_from_slice(args);
    let outcome = run_ppisc(dir, all);
    outcome.assert_success();
    let certificate: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cert.json")).unwrap()).unwrap();
    certificate["hashes"]["source"].as_str().expect("a source hash").to_string()
}

/// A build's source hash covers every input: a file without modules or overrides hashes as
/// `sha256sum` does; with modules, editing a module or setting a `-D` const changes it.
#[test]
fn the_source_hash_covers_modules_and_const_overrides() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "stdlib_source_hash");
    let lib = custom_stdlib(&dir);
    let plain = "map kills: count;\nprobe tracepoint:syscalls:sys_enter_kill rate <= 1k/s {\n    kills.inc();\n}\n";
    write_file(&dir, "plain.ppl", plain);
    let sha256sum = Command::new("sha256sum").arg(dir.join("plain.ppl")).output().expect("sha256sum runs");
    let expected = String::from_utf8_lossy(&sha256sum.stdout).split_whitespace().next().unwrap().to_string();
    assert_eq!(certified_source_hash(&dir, "plain.ppl", &[]), format!("sha256:{expected}"));

    write_file(&dir, "main.ppl", "use stdlib::custom::kills;\nuse stdlib::syscalls::count;\n");
    let with_lib = ["--stdlib".as_ref(), lib.as_os_str()];
    let before = certified_source_hash(&dir, "main.ppl", &with_lib);
    assert_eq!(certified_source_hash(&dir, "main.ppl", &with_lib), before, "the hash is not deterministic");
    let define = ["--stdlib".as_ref(), lib.as_os_str(), "-D".as_ref(), "SYSCALLS_COUNT_PID=7".as_ref()];
    assert_ne!(certified_source_hash(&dir, "main.ppl", &define), before, "a -D override is not covered");
    let module = lib.join("custom/kills.ppl");
    let text = std::fs::read_to_string(&module).unwrap();
    std::fs::write(&module, text.replace("rate <= 1k/s", "rate <= 2k/s")).unwrap();
    assert_ne!(certified_source_hash(&dir, "main.ppl", &with_lib), before, "a module edit is not covered");
}
