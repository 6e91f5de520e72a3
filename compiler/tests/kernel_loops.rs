//! Bounded loops, array maps and bounded string reads against the real kernel: programs that
//! use them, compiled from source, pass the kernel verifier (`bounded loops since Linux 5.3`,
//! `bpf_probe_read_{user,kernel}_str`), and `str(args.filename, 64)` on
//! `syscalls:sys_enter_openat` sees the path a child opens, as `ppisc run -c` would show it.
//!
//! Needs root and tracefs. Without them the tests print why and pass, except under `CI=true`,
//! where they fail instead.

mod kernel_guard;

use ppis_compiler::driver::{self, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_compiler::targets::HostTargets;
use ppis_runtime::snapshot::{MapValue, Value};

/// True when the test may run (see `kernel_guard`).
fn kernel_ready() -> bool {
    kernel_guard::kernel_ready(&["syscalls/sys_enter_openat"], &["/bin/bash"])
}

/// Priced with the reference profile, so that the verdicts do not depend on this host's
/// calibration (the kernel verifier, which is what these tests are about, does not care).
fn options(cpid: Option<u32>) -> CompileOptions {
    CompileOptions { lower: LowerOptions { cpid }, profile: ppis_manifest::profile::CostProfile::reference(), cpus: 2 }
}

fn compile(source: &str, cpid: Option<u32>) -> driver::Compiled {
    let (compiled, diags) = driver::compile(source, &HostTargets, &options(cpid));
    let errors: Vec<String> =
        diags.iter().filter(|d| d.is_error()).map(|d| format!("{}: {}", d.code, d.message)).collect();
    compiled.unwrap_or_else(|| panic!("ppisc check rejects it:\n{}\n{source}", errors.join("\n")))
}

/// Each source exercises one feature; all must pass `ppisc check` and the kernel verifier.
const ACCEPTED: &[(&str, &str)] = &[
    (
        "constant loop over a shared array",
        "map slots: array[64] -> u64;
         probe tracepoint:syscalls:sys_enter_openat rate <= 1k/s {
             for i in 0..64 { slots[i] = i * 3 + nsecs % 7; }
         }",
    ),
    (
        "nested loops over a per-CPU array",
        "map grid: percpu_array[64] -> u64;
         probe tracepoint:syscalls:sys_enter_openat rate <= 1k/s {
             for i in 0..8 {
                 for j in 0..8 {
                     if let v = grid[i * 8 + j] { grid[i * 8 + j] = v + i + j; }
                 }
             }
         }",
    ),
    (
        "a bound from a tracepoint field, clamped by a guard",
        "map slots: percpu_array[16] -> u64;
         probe tracepoint:syscalls:sys_enter_openat rate <= 1k/s {
             let n = args.flags;
             if n > 16 { n = 16; }
             for i in 0..n { slots[i] = 1; }
         }",
    ),
    (
        "an array index guarded against the length",
        "map seen: array[256] -> u64;
         probe tracepoint:syscalls:sys_enter_openat rate <= 1k/s {
             let fd = args.dfd as u64;
             if fd < 256 { seen[fd] = nsecs; }
         }",
    ),
    (
        "a user string read keying a count",
        "map opened: count[str[64]] max 1024;
         probe tracepoint:syscalls:sys_enter_openat rate <= 1k/s {
             opened[str(args.filename, 64)].inc();
         }",
    ),
    (
        "string reads in a uprobe, compared, and an early return from a loop",
        "map lines: count[str[32]] max 256;
         map hits: percpu_array[4] -> u64;
         probe uprobe:/bin/bash:readline rate <= 100/s {
             let prompt = str(arg0, 32);
             if prompt == \"$ \" { return; }
             lines[prompt].inc();
             for i in 0..4 {
                 if i == 3 { return; }
                 hits[i] = (hits[i] ?? 0) + 1;
             }
         }",
    ),
    (
        "a kernel string read",
        "map names: hash[u32] -> str[16] max 64;
         probe tracepoint:sched:sched_switch rate <= 1k/s {
             names[pid] = str(args.prev_state as u64, 16);
             delete names[pid];
         }",
    ),
];

#[test]
fn loops_arrays_and_string_reads_load_into_the_kernel() {
    if !kernel_ready() {
        return;
    }
    let mut failures = Vec::new();
    for (what, source) in ACCEPTED {
        let compiled = compile(source, None);
        let object = driver::object(&compiled);
        match ppis_runtime::load_check(&object, &compiled.lowered.manifest) {
            Ok(()) => eprintln!("{what}: loaded"),
            Err(error) => failures.push(format!("{what}: the kernel rejects it:\n{error}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_string_read_sees_the_path_a_child_opens() {
    if !kernel_ready() {
        return;
    }
    let marker = std::env::temp_dir().join(format!("ppis-str-marker-{}", std::process::id()));
    std::fs::write(&marker, "marker\n").expect("write the marker file");
    let marker_text = marker.to_str().expect("temp paths are UTF-8").to_string();
    let argv = vec!["cat".to_string(), marker_text.clone()];
    let child = ppis_runtime::PausedChild::spawn(&argv).expect("start the child");
    let source = "map opened: count[str[64]] max 1024;
        probe tracepoint:syscalls:sys_enter_openat rate <= 10k/s when pid == cpid {
            opened[str(args.filename, 64)].inc();
        }";
    let compiled = compile(source, Some(child.pid()));
    let object = driver::object(&compiled);
    let opts = ppis_runtime::RunOptions { duration: Some(std::time::Duration::from_secs(20)), child: Some(child) };
    let snapshot = ppis_runtime::run(&object, &compiled.lowered.manifest, opts).expect("run the probes");
    let _ = std::fs::remove_file(&marker);
    let MapValue::Keyed(rows) = &snapshot.maps[0].1 else { panic!("a keyed count: {snapshot:?}") };
    let count = rows.iter().find(|(key, _)| key == &vec![Value::Str(marker_text.clone())]).map(|(_, v)| v.clone());
    assert_eq!(count, Some(Value::Uint(1)), "the marker path opened once, in {rows:?}");
}
