//! Kernel tests of the code generator: the objects written for the hand-built fixtures load
//! through aya, pass the kernel verifier, and — attached to `syscalls:sys_enter_getpid` —
//! compute exactly the values the IR says they should.
//!
//! Needs root and a kernel with BPF and tracepoints. Without them the tests print why and
//! pass, except under `CI=true`, where they fail instead.

mod kernel_guard;

mod codegen_fixtures;

use aya::maps::{Array, PerCpuArray};
use aya::programs::{ProgramError, TracePoint, UProbe};
use aya::Ebpf;
use codegen_fixtures::{self as fx, Expect};

/// True when the test may run (see `kernel_guard`).
fn kernel_ready() -> bool {
    kernel_guard::kernel_ready(&["syscalls/sys_enter_getpid"], &[])
}

/// The error with the verifier's log, which is what one needs when a load fails.
fn describe(err: ProgramError) -> String {
    match err {
        ProgramError::LoadError { io_error, verifier_log } => format!("{io_error}\nverifier log:\n{verifier_log}"),
        other => format!("{other:?}"),
    }
}

fn this_thread() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

fn load_fixtures(tid: u32) -> (Ebpf, ppis_ir::Module, Vec<(&'static str, Expect)>) {
    let (module, expected) = fx::module(tid);
    let compiled = fx::compile_all(&module);
    let bytes = fx::object(&module, &compiled);
    let bpf = Ebpf::load(&bytes).unwrap_or_else(|e| panic!("aya rejected the object: {e:?}"));
    (bpf, module, expected)
}

fn load_program(bpf: &mut Ebpf, func: &ppis_ir::Function) {
    let program = bpf.program_mut(&func.name).unwrap_or_else(|| panic!("program {} missing from object", func.name));
    let loaded = match func.ctx {
        ppis_ir::CtxKind::Tracepoint => {
            let tp: &mut TracePoint = program.try_into().expect("tracepoint section gives a TracePoint");
            tp.load()
        }
        ppis_ir::CtxKind::PtRegs => {
            let up: &mut UProbe = program.try_into().expect("uprobe section gives a UProbe");
            up.load()
        }
        ppis_ir::CtxKind::RawTracepoint => {
            let raw: &mut aya::programs::RawTracePoint =
                program.try_into().expect("raw_tracepoint section gives a RawTracePoint");
            raw.load()
        }
        ppis_ir::CtxKind::PerfEvent => {
            let perf: &mut aya::programs::PerfEvent = program.try_into().expect("perf_event section gives a PerfEvent");
            perf.load()
        }
    };
    if let Err(e) = loaded {
        panic!("the kernel verifier rejected {}: {}", func.name, describe(e));
    }
}

#[test]
fn verifier_accepts_every_fixture() {
    if !kernel_ready() {
        return;
    }
    let (mut bpf, module, _) = load_fixtures(this_thread());
    for func in &module.functions {
        load_program(&mut bpf, func);
    }
    for map in &module.maps {
        assert!(bpf.map(&map.name).is_some(), "map {} was not created", map.name);
    }
}

#[test]
fn tracepoint_probes_compute_the_expected_values() {
    if !kernel_ready() {
        return;
    }
    const CALLS: u64 = 25;
    let tid = this_thread();
    let (mut bpf, module, expected) = load_fixtures(tid);
    for name in ["counter", "all_ops", "pressure"] {
        let func = module.functions.iter().find(|f| f.name == name).expect("fixture exists");
        load_program(&mut bpf, func);
        let tp: &mut TracePoint = bpf.program_mut(name).expect("loaded above").try_into().expect("tracepoint");
        tp.attach("syscalls", "sys_enter_getpid").unwrap_or_else(|e| panic!("attaching {name}: {e:?}"));
    }
    for _ in 0..CALLS {
        // The raw syscall: the C library could answer getpid without entering the kernel.
        // SAFETY: getpid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getpid) };
    }

    let counts: PerCpuArray<_, u64> = PerCpuArray::try_from(bpf.map("counts").expect("counts")).expect("percpu array");
    let total: u64 = counts.get(&0, 0).expect("counts[0]").iter().sum();
    assert_eq!(total, CALLS, "the counter probe must fire once per getpid of this thread");

    let results: Array<_, [u64; fx::RESULT_FIELDS as usize]> =
        Array::try_from(bpf.map("results").expect("results")).expect("array");
    let fields = results.get(&0, 0).expect("results[0]");
    let comm = std::fs::read_to_string("/proc/thread-self/comm").expect("thread comm");
    let mut comm8 = [0u8; 8];
    for (dst, src) in comm8.iter_mut().zip(comm.trim_end_matches('\n').bytes()) {
        *dst = src;
    }
    let cpus = aya::util::nr_cpus().expect("cpu count") as u64;
    // SAFETY: getuid/getgid have no preconditions.
    let uid_gid = unsafe { (libc::getgid() as u64) << 32 | libc::getuid() as u64 };
    let mut failures = Vec::new();
    for (i, (name, expect)) in expected.iter().enumerate() {
        let got = fields[i];
        let ok = match *expect {
            Expect::Exact(want) => got == want,
            Expect::NonZero => got != 0,
            Expect::Cpu => got < cpus,
            Expect::SyscallNr => got == libc::SYS_getpid as u64,
            Expect::UidGid => got == uid_gid,
            Expect::Comm8 => got == u64::from_le_bytes(comm8),
        };
        if !ok {
            failures.push(format!("field {i} `{name}`: got {got:#x}, expected {expect:?}"));
        }
    }
    assert!(failures.is_empty(), "wrong results:\n{}", failures.join("\n"));

    let pressure: Array<_, u64> = Array::try_from(bpf.map("pressure_out").expect("pressure_out")).expect("array");
    assert_eq!(pressure.get(&0, 0).expect("pressure_out[0]"), fx::pressure_expected(libc::SYS_getpid));
}

#[test]
fn random_programs_match_their_ir_semantics() {
    if !kernel_ready() {
        return;
    }
    const PROGRAMS: u32 = 24;
    let tid = this_thread();
    let mut functions = Vec::new();
    let mut expected = Vec::new();
    for index in 0..PROGRAMS {
        let (func, values) = fx::random_program(0x5eed + index as u64, index, tid);
        functions.push(func);
        expected.push(values);
    }
    let module = ppis_ir::Module {
        maps: vec![ppis_ir::Map {
            name: "random_out".into(),
            kind: ppis_ir::MapType::Array,
            key_size: 4,
            value_size: 8 * fx::RANDOM_VREGS as u32,
            max_entries: PROGRAMS,
        }],
        functions,
    };
    let compiled = fx::compile_all(&module);
    let bytes = fx::object(&module, &compiled);
    let mut bpf = Ebpf::load(&bytes).unwrap_or_else(|e| panic!("aya rejected the object: {e:?}"));
    for (func, program) in module.functions.iter().zip(&compiled) {
        load_program(&mut bpf, func);
        let tp: &mut TracePoint = bpf.program_mut(&func.name).expect("loaded").try_into().expect("tracepoint");
        tp.attach("syscalls", "sys_enter_getpid").unwrap_or_else(|e| panic!("attaching {}: {e:?}", program.name));
    }
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_getpid) };
    let out: Array<_, [u64; fx::RANDOM_VREGS]> =
        Array::try_from(bpf.map("random_out").expect("random_out")).expect("array");
    for (index, want) in expected.iter().enumerate() {
        let got = out.get(&(index as u32), 0).expect("entry");
        assert_eq!(
            got.as_slice(),
            want.as_slice(),
            "random{index} computed different values; its IR:\n{}",
            ppis_ir::print_function(&module.functions[index], &module.maps)
        );
    }
}
