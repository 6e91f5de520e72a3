//! The runtime's one loader, `ppis_runtime::Session`, against the real kernel with both
//! callers' policies: driven as `ppisc run` drives it (`begin` once before the other probes
//! attach, exact counts while attached, none after `finish`, `end` once after the detach),
//! started as `ppisd` starts it (`begin` run first, every other probe attached at once, `end`
//! run by `finish`), and by a plain start (`begin`/`end` reported as not attachable, never run).
//!
//! Needs root and tracefs. Without them the test prints why and passes, except under
//! `CI=true`, where it fails instead.

mod kernel_guard;

use ppis_compiler::driver::{self, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_compiler::targets::HostTargets;
use ppis_runtime::snapshot::{MapValue, Value};
use ppis_runtime::{RuntimeError, Session};

/// Marked syscalls made while the probe is attached.
const CALLS: u64 = 23;

/// Both tests count this process's getppid calls, so they must not run at the same time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `begin`, a getppid counter for this process, then `end`.
fn compile_begin_count_end() -> (Vec<u8>, ppis_manifest::Manifest) {
    let source = "map begins: count;\n\
                  map calls: count;\n\
                  map ends: count;\n\
                  probe begin { begins.inc(); }\n\
                  probe tracepoint:syscalls:sys_enter_getppid rate <= 1k/s when pid == cpid { calls.inc(); }\n\
                  probe end { ends.inc(); }\n";
    let options = CompileOptions {
        lower: LowerOptions { cpid: Some(std::process::id()) },
        profile: ppis_manifest::profile::CostProfile::reference(),
        cpus: 2,
    };
    let (compiled, diags) = driver::compile(source, &HostTargets, &options);
    let compiled = compiled.unwrap_or_else(|| panic!("rejected: {diags:?}"));
    (driver::object(&compiled), compiled.lowered.manifest.clone())
}

fn getppid_times(times: u64) {
    for _ in 0..times {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
}

fn count(session: &Session, name: &str) -> u64 {
    let maps = session.read_maps().expect("maps read");
    match &maps.iter().find(|(map, _)| map == name).unwrap_or_else(|| panic!("no map {name}")).1 {
        MapValue::Scalar(Some(Value::Uint(n))) => *n,
        MapValue::Scalar(None) => 0,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_session_runs_begin_and_end_once_around_the_attached_probes() {
    if !kernel_guard::kernel_ready(&["syscalls/sys_enter_getppid"], &[]) {
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (object, manifest) = compile_begin_count_end();
    let mut session = Session::open(&object, &manifest).expect("loads");
    session.run_begin().expect("begin runs");
    session.run_begin().expect("a second call does nothing");
    assert_eq!((count(&session, "begins"), count(&session, "ends")), (1, 0));
    getppid_times(CALLS);
    assert_eq!(count(&session, "calls"), 0, "nothing is attached yet");
    let counter = manifest.probes.iter().position(|probe| !probe.attach.runs_once()).expect("a counting probe");
    session.attach(counter).expect("the tracepoint attaches");
    getppid_times(CALLS);
    assert_eq!(count(&session, "calls"), CALLS);
    session.finish().expect("detach and end");
    assert!(!session.is_attached(counter));
    getppid_times(CALLS);
    session.finish().expect("end runs at most once");
    assert_eq!((count(&session, "begins"), count(&session, "calls"), count(&session, "ends")), (1, CALLS, 1));
}

#[test]
fn a_daemon_style_start_runs_begin_before_attaching_and_finish_runs_end() {
    if !kernel_guard::kernel_ready(&["syscalls/sys_enter_getppid"], &[]) {
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (object, manifest) = compile_begin_count_end();
    let (mut session, failures) = Session::start_with_dormant(&object, &manifest).expect("loads");
    assert!(failures.is_empty(), "{failures:?}");
    assert!(session.runs_once(0) && !session.runs_once(1) && session.runs_once(2));
    assert!(!session.is_attached(0) && session.is_attached(1) && !session.is_attached(2));
    assert_eq!((count(&session, "begins"), count(&session, "calls"), count(&session, "ends")), (1, 0, 0));
    getppid_times(CALLS);
    session.finish().expect("detach, then end");
    getppid_times(CALLS);
    assert_eq!((count(&session, "begins"), count(&session, "calls"), count(&session, "ends")), (1, CALLS, 1));
    session.finish().expect("a second finish only detaches");
    assert_eq!(count(&session, "ends"), 1);
}

#[test]
fn a_plain_start_reports_begin_and_end_as_not_attachable_and_never_runs_them() {
    if !kernel_guard::kernel_ready(&["syscalls/sys_enter_getppid"], &[]) {
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (object, manifest) = compile_begin_count_end();
    let (mut session, failures) = Session::start(&object, &manifest).expect("loads");
    let failed: Vec<u32> = failures
        .iter()
        .map(|error| match error {
            RuntimeError::Probe { line, message, .. } => {
                assert!(message.contains("never attached"), "{message}");
                *line
            }
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(failed, [4, 6], "begin (line 4) and end (line 6)");
    getppid_times(CALLS);
    // Without `run_begin`, `finish` only detaches.
    session.finish().expect("detach");
    assert_eq!((count(&session, "begins"), count(&session, "calls"), count(&session, "ends")), (0, CALLS, 0));
}
