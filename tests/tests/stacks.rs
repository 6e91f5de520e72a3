//! Stack keys end to end: `ustack` on a uprobe names the workload's call chain in order, as
//! text, folded stacks, a flame graph and a pprof profile with exactly N samples; `kstack` on a
//! syscall tracepoint names kernel functions.

use ppis_runtime::flame::pprof::Profile;
use ppis_tests::{
    child_command, parse_maps, require_kernel, run_ppisc, scratch_dir, workload, write_file, MARKER_OPEN_FLAGS,
};
use prost::Message;

const CALLS: u64 = 250;

#[test]
fn ustack_on_a_uprobe_names_the_call_chain_in_every_output() {
    if !require_kernel("ustack_on_a_uprobe_names_the_call_chain_in_every_output") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "ustack_uprobe");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let probe = write_file(
        &dir,
        "stacks.ppl",
        format!(
            "map s: count[ustack] max 1024;\n\
             probe uprobe:{}:ppis_stack_leaf rate <= 1000/s {{ s[ustack].inc(); }}\n",
            workload.display()
        ),
    );
    let child = child_command(&workload, &["stack-chain", &CALLS.to_string()]);
    let (folded, svg, pprof) = (dir.join("s.folded"), dir.join("s.svg"), dir.join("s.pb"));
    let outcome = run_ppisc(
        &dir,
        [
            "run",
            &probe.to_string_lossy(),
            "-c",
            &child,
            "--folded",
            &folded.to_string_lossy(),
            "--flamegraph",
            &svg.to_string_lossy(),
            "--pprof",
            &pprof.to_string_lossy(),
        ],
    );
    outcome.assert_success();
    let transcript = outcome.transcript();

    // Text: one stack, counted CALLS times, leaf first, bpftrace style.
    let text = &outcome.stdout;
    assert!(text.contains(&format!("]: {CALLS}\n")), "{transcript}");
    assert_eq!(text.matches("@s[").count(), 1, "exactly one distinct stack\n{transcript}");
    let position =
        |name: &str| text.find(&format!("        {name}+")).unwrap_or_else(|| panic!("{name}\n{transcript}"));
    assert!(position("ppis_stack_leaf") < position("ppis_stack_middle"), "{transcript}");
    assert!(position("ppis_stack_middle") < position("ppis_stack_outer"), "{transcript}");

    // Folded: outermost first, one line, weight CALLS.
    let folded = std::fs::read_to_string(&folded).unwrap();
    let lines: Vec<&str> = folded.lines().collect();
    assert_eq!(lines.len(), 1, "{folded}");
    assert!(lines[0].ends_with(&format!(" {CALLS}")), "{folded}");
    assert!(lines[0].contains("ppis_stack_outer;ppis_stack_middle;ppis_stack_leaf "), "{folded}");

    let svg = std::fs::read_to_string(&svg).unwrap();
    for name in ["ppis_stack_outer", "ppis_stack_middle", "ppis_stack_leaf"] {
        assert!(svg.contains(name), "{name} not in the flame graph");
    }

    let profile = Profile::decode(std::fs::read(&pprof).unwrap().as_slice()).expect("a pprof profile");
    let samples: i64 = profile.sample.iter().map(|sample| sample.value[0]).sum();
    assert_eq!(samples, CALLS as i64);
    let leaf_location = profile.sample[0].location_id[0];
    let leaf = profile.function.iter().find(|f| f.id == leaf_location).unwrap();
    assert_eq!(profile.string_table[leaf.name as usize], "ppis_stack_leaf");
}

#[test]
fn kstack_on_a_syscall_tracepoint_names_kernel_functions() {
    if !require_kernel("kstack_on_a_syscall_tracepoint_names_kernel_functions") {
        return;
    }
    const OPENS: u64 = 23;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "kstack_tracepoint");
    let marker = write_file(&dir, "marker", "");
    let probe = write_file(
        &dir,
        "kstacks.ppl",
        format!(
            "map k: count[kstack[16]] max 1024;\n\
             probe tracepoint:syscalls:sys_enter_openat rate <= 1000/s\n\
             \x20   when pid == cpid && args.flags == {MARKER_OPEN_FLAGS} {{ k[kstack(16)].inc(); }}\n"
        ),
    );
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let child = child_command(&workload, &["openat", &OPENS.to_string(), &marker.to_string_lossy()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    let transcript = outcome.transcript();
    let maps = parse_maps(&outcome);
    let rows = maps["k"].as_object().unwrap_or_else(|| panic!("{transcript}"));
    let total: u64 = rows.values().map(|count| count.as_u64().unwrap()).sum();
    assert_eq!(total, OPENS, "{transcript}");
    // JSON keys are folded stacks (outermost first): every frame symbolised, the syscall
    // entry among them.
    for stack in rows.keys() {
        assert!(stack.split(';').any(|frame| frame == "do_syscall_64"), "{transcript}");
        assert!(!stack.contains("0x"), "unsymbolised kernel frame\n{transcript}");
    }
}

#[test]
fn ustack_on_profile_sampling_names_the_busy_function() {
    if !require_kernel("ustack_on_profile_sampling_names_the_busy_function") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "ustack_profile");
    let probe = write_file(
        &dir,
        "profile.ppl",
        "map s: count[ustack] max 1024;\nprobe profile:hz:99 rate <= 200/s when pid == cpid { s[ustack].inc(); }\n",
    );
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let child = child_command(&workload, &["stack-busy", "1000"]);
    let folded = dir.join("s.folded");
    let outcome =
        run_ppisc(&dir, ["run", &probe.to_string_lossy(), "-c", &child, "--folded", &folded.to_string_lossy()]);
    outcome.assert_success();
    let transcript = outcome.transcript();
    let folded = std::fs::read_to_string(&folded).unwrap();
    let weight = |line: &str| line.rsplit_once(' ').and_then(|(_, n)| n.parse::<u64>().ok()).unwrap_or(0);
    let total: u64 = folded.lines().map(weight).sum();
    let busy: u64 = folded.lines().filter(|line| line.contains("ppis_stack_busy")).map(weight).sum();
    // A second of spinning at 99 Hz: tens of samples, nearly all in the busy function (the
    // rest in the loop around it and the start and end of the process).
    assert!(total >= 20, "too few samples\n{folded}\n{transcript}");
    assert!(busy * 10 >= total * 8, "ppis_stack_busy in {busy} of {total} samples\n{folded}\n{transcript}");
    // Folded lines are outermost first: the busy function is the leaf.
    assert!(folded.lines().any(|line| line.contains(";ppis_stack_busy ")), "{folded}");
}

/// A signed bundle of a stack probe passes the load-time proof check (`ppisc verify` runs
/// `ppis_bundle::pcc`): `bpf_get_stackid` and stack-trace maps are known to it. No kernel.
#[test]
fn a_bundle_with_stack_keys_passes_the_proof_check() {
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "stack_bundle");
    let probe = write_file(
        &dir,
        "stacks.ppl",
        "map u: count[str[16], ustack[32]] max 1024;\n\
         map k: hist[kstack] max 64;\n\
         probe tracepoint:raw_syscalls:sys_enter rate <= 500/s {\n\
         \x20   u[comm, ustack(32)].inc();\n\
         \x20   k[kstack].record(nsecs);\n\
         }\n",
    );
    let key = dir.join("key");
    let bundle = dir.join("stacks.ppb");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(dir.join("key.pub"));
    run_ppisc(&dir, ["keygen", "-o", &key.to_string_lossy()]).assert_success();
    run_ppisc(
        &dir,
        ["build", &probe.to_string_lossy(), "--key", &key.to_string_lossy(), "-o", &bundle.to_string_lossy()],
    )
    .assert_success();
    let verified =
        run_ppisc(&dir, ["verify", &bundle.to_string_lossy(), "--trust", &dir.join("key.pub").to_string_lossy()]);
    verified.assert_success();
    assert!(verified.stdout.contains(": ok"), "{}", verified.transcript());
}
