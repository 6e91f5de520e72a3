//! Stack keys against the real kernel through a live `ppis_runtime::Session` (what `ppisd`
//! reads its maps with): a `kstack` key on a syscall tracepoint, filtered to this test's own
//! process, reads back as exactly the syscalls made, each under symbolised kernel frames; a
//! `ustack` key of the same process resolves through the session's remembered memory maps.
//!
//! Needs root and tracefs. Without them the test prints why and passes, except under
//! `CI=true`, where it fails instead.

mod kernel_guard;

use ppis_compiler::driver::{self, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_compiler::targets::HostTargets;
use ppis_runtime::snapshot::{MapValue, Value};

const CALLS: u64 = 17;

#[test]
fn a_session_reads_kernel_and_user_stack_keys_symbolised() {
    if !kernel_guard::kernel_ready(&["syscalls/sys_enter_getppid"], &[]) {
        return;
    }
    let me = std::process::id();
    let source = "map k: count[kstack[16]] max 64;\n\
                  map u: count[ustack] max 64;\n\
                  probe tracepoint:syscalls:sys_enter_getppid rate <= 1k/s when pid == cpid {\n\
                  \x20   k[kstack(16)].inc();\n\
                  \x20   u[ustack].inc();\n\
                  }\n";
    let options = CompileOptions {
        lower: LowerOptions { cpid: Some(me) },
        profile: ppis_manifest::profile::CostProfile::reference(),
        cpus: 2,
    };
    let (compiled, diags) = driver::compile(source, &HostTargets, &options);
    let compiled = compiled.unwrap_or_else(|| panic!("rejected: {diags:?}"));
    let object = driver::object(&compiled);
    let (session, failures) = ppis_runtime::Session::start(&object, &compiled.lowered.manifest).expect("loads");
    assert!(failures.is_empty(), "{failures:?}");
    for _ in 0..CALLS {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    let maps = session.read_maps().expect("maps read");
    let rows = |name: &str| match &maps.iter().find(|(map, _)| map == name).expect("map").1 {
        MapValue::Keyed(rows) => rows.clone(),
        other => panic!("{other:?}"),
    };
    for name in ["k", "u"] {
        let rows = rows(name);
        let total: u64 = rows.iter().map(|(_, value)| if let Value::Uint(n) = value { *n } else { 0 }).sum();
        assert_eq!(total, CALLS, "{name}: {rows:?}");
        for (key, _) in &rows {
            let Value::Stack(stack) = &key[0] else { panic!("{key:?}") };
            assert!(stack.lost_reason().is_none(), "{name}: {stack:?}");
            assert!(!stack.frames.is_empty(), "{name}: {stack}");
            // Kernel frames are all in kallsyms; a user walk without frame pointers may end
            // in an address no mapping explains, but the frames it starts with are known.
            match name {
                "k" => assert!(stack.frames.iter().all(|f| f.symbol.is_some()), "{name}: {stack}"),
                _ => assert!(stack.frames[0].symbol.is_some(), "{name}: {stack}"),
            }
        }
    }
    let kernel = rows("k");
    let Value::Stack(stack) = &kernel[0].0[0] else { unreachable!() };
    assert!(stack.frames.iter().any(|f| f.name() == "do_syscall_64"), "{stack}");
    let user = rows("u");
    let Value::Stack(stack) = &user[0].0[0] else { unreachable!() };
    assert_eq!(stack.pid, me);
    // The innermost user frame is libc's syscall wrapper, which this process called.
    assert!(stack.frames[0].name().contains("syscall"), "{stack}");
}
