//! Kernel smoke tests of `run`: a hand-assembled object (one tiny program counting into a
//! per-CPU array) is loaded, attached, fed by a `-c` command, read back and rendered; and
//! load and attach failures name the attach point, with suggestions or the verifier log.
//!
//! They need root and tracefs; without them they print why and pass, except under `CI=true`,
//! where a skipped kernel test is a failure.

mod common;

use common::{argv, counting_object, insn, kernel_available, manifest, object_with};
use ppis_manifest::Attach;
use ppis_runtime::{render_json, render_text, run, ExitStatus, MapValue, PausedChild, RunOptions, RuntimeError, Value};

#[test]
fn counts_the_exec_of_a_command_started_paused() {
    if !kernel_available("counts_the_exec_of_a_command_started_paused") {
        return;
    }
    let object = counting_object("tracepoint/sched/sched_process_exec", "probe0", "execs");
    let manifest = manifest(Attach::Tracepoint { category: "sched".into(), name: "sched_process_exec".into() });
    let child = PausedChild::spawn(&argv(&["sh", "-c", "exit 3"])).unwrap();
    let snapshot = run(&object, &manifest, RunOptions { duration: None, child: Some(child) }).unwrap();
    assert_eq!(snapshot.child_exit, Some(ExitStatus::Code(3)));
    let MapValue::Scalar(Some(Value::Uint(execs))) = snapshot.maps[0].1 else {
        panic!("unexpected snapshot {snapshot:?}")
    };
    // The child's own exec happens after attaching; other processes may exec too.
    assert!(execs >= 1, "{execs}");
    eprintln!("execs counted: {execs}");
    assert_eq!(render_text(&snapshot, &manifest), format!("@execs: {execs}\n\n"));
    assert_eq!(render_json(&snapshot, &manifest), format!("{{\"maps\":{{\"execs\":{execs}}}}}"));
}

#[test]
fn a_duration_ends_the_run() {
    if !kernel_available("a_duration_ends_the_run") {
        return;
    }
    let object = counting_object("tracepoint/raw_syscalls/sys_enter", "probe0", "execs");
    let manifest = manifest(Attach::Tracepoint { category: "raw_syscalls".into(), name: "sys_enter".into() });
    let started = std::time::Instant::now();
    let options = RunOptions { duration: Some(std::time::Duration::from_millis(300)), child: None };
    let snapshot = run(&object, &manifest, options).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(snapshot.child_exit, None);
    // Sleeping still makes syscalls (this thread's nanosleep polls), so the count is not zero.
    assert!(matches!(snapshot.maps[0].1, MapValue::Scalar(Some(Value::Uint(count))) if count > 0), "{snapshot:?}");
}

#[test]
fn a_misspelled_tracepoint_is_named_with_suggestions() {
    if !kernel_available("a_misspelled_tracepoint_is_named_with_suggestions") {
        return;
    }
    let object = counting_object("tracepoint/sched/sched_process_exc", "probe0", "execs");
    let manifest = manifest(Attach::Tracepoint { category: "sched".into(), name: "sched_process_exc".into() });
    let error = run(&object, &manifest, RunOptions::default()).unwrap_err();
    assert!(matches!(error, RuntimeError::Probe { .. }));
    let message = error.to_string();
    eprintln!("{message}");
    assert!(
        message.starts_with(
            "tracepoint:sched:sched_process_exc (line 1): tracepoint sched:sched_process_exc does not exist; closest: sched:sched_process_exec"
        ),
        "{message}"
    );
}

#[test]
fn a_missing_uprobe_symbol_is_named_with_suggestions() {
    if !kernel_available("a_missing_uprobe_symbol_is_named_with_suggestions") {
        return;
    }
    let own_binary = std::env::current_exe().unwrap().display().to_string();
    let object = counting_object("uprobe/main", "probe0", "execs");
    let manifest = manifest(Attach::Uprobe { path: own_binary.clone(), symbol: "mian".into() });
    let message = run(&object, &manifest, RunOptions::default()).unwrap_err().to_string();
    eprintln!("{message}");
    let expected = format!("uprobe:{own_binary}:mian (line 1): symbol mian not found in {own_binary}; closest: ");
    assert!(message.starts_with(&expected), "{message}");
    assert!(message.contains("main"), "{message}");
}

#[test]
fn a_uretprobe_program_cannot_serve_a_uprobe() {
    if !kernel_available("a_uretprobe_program_cannot_serve_a_uprobe") {
        return;
    }
    let own_binary = std::env::current_exe().unwrap().display().to_string();
    let object = counting_object("uretprobe/main", "probe0", "execs");
    let manifest = manifest(Attach::Uprobe { path: own_binary, symbol: "main".into() });
    let message = run(&object, &manifest, RunOptions::default()).unwrap_err().to_string();
    assert!(message.ends_with("program probe0 is a uretprobe program, not a uprobe"), "{message}");
}

#[test]
fn a_verifier_rejection_carries_the_log() {
    if !kernel_available("a_verifier_rejection_carries_the_log") {
        return;
    }
    // `exit` with r0 never written: the verifier refuses to return an uninitialised value.
    let object = object_with("tracepoint/raw_syscalls/sys_enter", "probe0", "execs", &insn(0x95, 0, 0, 0, 0), None);
    let manifest = manifest(Attach::Tracepoint { category: "raw_syscalls".into(), name: "sys_enter".into() });
    let message = run(&object, &manifest, RunOptions::default()).unwrap_err().to_string();
    eprintln!("{message}");
    assert!(
        message.starts_with("tracepoint:raw_syscalls:sys_enter (line 1): the kernel verifier rejected the program ("),
        "{message}"
    );
    assert!(message.contains("R0 !read_ok"), "{message}");
}
