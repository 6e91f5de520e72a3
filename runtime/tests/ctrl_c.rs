//! Ctrl-C during a run ends the wait, detaches, and still returns the maps; a `-c` command
//! the run outlived is terminated. Its own test binary: after a run, SIGINT has its default
//! action again, which would kill any other test sharing the process.

mod common;

use std::time::{Duration, Instant};

use common::{argv, counting_object, kernel_available, manifest};
use ppis_manifest::Attach;
use ppis_runtime::{run, MapValue, PausedChild, RunOptions, Value};

#[test]
fn sigint_ends_the_run_and_keeps_the_maps() {
    if !kernel_available("sigint_ends_the_run_and_keeps_the_maps") {
        return;
    }
    let object = counting_object("tracepoint/raw_syscalls/sys_enter", "probe0", "execs");
    let manifest = manifest(Attach::Tracepoint { category: "raw_syscalls".into(), name: "sys_enter".into() });
    let child = PausedChild::spawn(&argv(&["sleep", "30"])).unwrap();
    let child_pid = child.pid() as libc::pid_t;
    let interrupter = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: plain kill of our own process.
        unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
    });
    let started = Instant::now();
    let snapshot = run(&object, &manifest, RunOptions { duration: None, child: Some(child) }).unwrap();
    interrupter.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "the run outlived Ctrl-C");
    assert_eq!(snapshot.child_exit, None, "the child cannot have ended on its own");
    assert!(matches!(snapshot.maps[0].1, MapValue::Scalar(Some(Value::Uint(count))) if count > 0), "{snapshot:?}");
    // The outlived `sleep 30` was terminated and reaped: its pid is gone.
    // SAFETY: signal 0 only checks for existence.
    assert_eq!(unsafe { libc::kill(child_pid, 0) }, -1);
}
