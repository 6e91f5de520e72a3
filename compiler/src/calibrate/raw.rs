//! Calibration of what the IR-level suite cannot reach: helpers and map kinds measured with
//! programs written directly as eBPF bytecode and run by `BPF_PROG_TEST_RUN` (no trigger, so
//! only the program's own time counts), and the raw tracepoint and perf event triggers.
//!
//! Helper benchmarks are raw tracepoint programs run in this thread by `BPF_PROG_TEST_RUN`:
//! the context a helper sees is this process in a system call, so user addresses of this
//! process are valid, and the user and kernel stacks are this thread's. As in the IR suite,
//! each is a pair (base, base + K × unit) and a unit costs the difference of their mean run
//! times (the kernel's run-time statistics) over K.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ppis_runtime::bench::{RawMap, RawMapType, RawProgram, RawProgramType, RawRunStats};

use crate::codegen::insn::{helper_id, Insn, ALU_ADD, R0, R1, R10, R2, R3, R4, R6, SIZE_DW};

/// Repetitions of the unit in a helper benchmark.
const REPEATS: usize = 16;

/// `bpf_get_stackid`, `bpf_get_current_cgroup_id`, `bpf_probe_read_user` (ids from
/// `enum bpf_func_id`; the shared table in `codegen::insn` lists only what ppis emits).
const GET_STACKID: i32 = 27;
const GET_CURRENT_CGROUP_ID: i32 = 80;
const PROBE_READ_USER: i32 = 112;

/// `BPF_F_USER_STACK`: walk the user stack instead of the kernel one.
const USER_STACK_FLAG: i32 = 256;
/// `BPF_PSEUDO_MAP_FD` in an `ld_imm64`'s source field: the immediate is a map descriptor.
const PSEUDO_MAP_FD: u8 = 1;
/// The deepest stack the kernel records (`PERF_MAX_STACK_DEPTH`): value size of the stack map,
/// so the walk is never cut short by the map.
const STACK_DEPTH: u32 = 127;

/// Bytes of the two buffer read and ring buffer benchmarks each; the cost per byte is the
/// slope between them.
pub const BUFFER_READ_BOUNDS: [u32; 2] = [16, 128];
pub const RINGBUF_RECORD_BYTES: [u32; 2] = [16, 256];
/// Ring buffer size: room for many runs between two [`RawMap::consume_all`].
const RINGBUF_BYTES: u32 = 16 << 20;
/// Test runs between two frees of the ring buffer (each writes at most `REPEATS` records of
/// at most 264 bytes with the header: 4 KiB).
const RUNS_PER_RINGBUF_FREE: u64 = 1_000;

/// LRU hash maps are measured with the IR suite's key and value sizes.
const LRU_KEY_BYTES: i16 = 32;
const LRU_VALUE_BYTES: i16 = 16;

/// A user buffer longer than every bound in [`BUFFER_READ_BOUNDS`].
static USER_BUFFER: [u8; 256] = [b'b'; 256];

/// What one raw benchmark measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawMeasure {
    CgroupId,
    /// `bpf_get_stackid` of the kernel (`false`) or user (`true`) stack.
    StackId {
        user: bool,
    },
    /// `bpf_probe_read_user` of this many bytes.
    ReadUser(u32),
    /// `bpf_ringbuf_output` of a record of this many bytes, the buffer never drained up to
    /// the write (no reader wake-up).
    RingbufOutput(u32),
    /// One `bpf_ringbuf_output` of this many bytes per run into a buffer drained before every
    /// run: the reader is caught up, so the commit also queues the reader's wake-up (an
    /// `irq_work`, a self-interrupt), as it does for a prompt reader.
    RingbufOutputWakeup(u32),
    LruLookup,
    /// Update of a key that exists.
    LruUpdate,
    /// Delete of a key that does not exist.
    LruDeleteMissing,
    /// Insert of a new key, then its delete.
    LruInsertDelete,
}

impl RawMeasure {
    pub const ALL: [RawMeasure; 12] = [
        RawMeasure::CgroupId,
        RawMeasure::StackId { user: false },
        RawMeasure::StackId { user: true },
        RawMeasure::ReadUser(BUFFER_READ_BOUNDS[0]),
        RawMeasure::ReadUser(BUFFER_READ_BOUNDS[1]),
        RawMeasure::RingbufOutput(RINGBUF_RECORD_BYTES[0]),
        RawMeasure::RingbufOutput(RINGBUF_RECORD_BYTES[1]),
        RawMeasure::RingbufOutputWakeup(RINGBUF_RECORD_BYTES[1]),
        RawMeasure::LruLookup,
        RawMeasure::LruUpdate,
        RawMeasure::LruDeleteMissing,
        RawMeasure::LruInsertDelete,
    ];
}

/// Instructions of a raw program under construction.
#[derive(Default)]
struct Code(Vec<Insn>);

impl Code {
    fn push(&mut self, insn: Insn) {
        self.0.push(insn);
    }
    fn imm64(&mut self, dst: u8, value: i64) {
        self.0.extend(Insn::ld_imm64(dst, value));
    }
    fn map(&mut self, dst: u8, map: &RawMap) {
        let [mut lo, hi] = Insn::ld_imm64(dst, i64::from(map.fd_number()));
        lo.src = PSEUDO_MAP_FD;
        self.0.extend([lo, hi]);
    }
    /// `dst = r10 + offset` (a stack address).
    fn stack_address(&mut self, dst: u8, offset: i16) {
        self.push(Insn::mov64_reg(dst, R10));
        self.push(Insn::alu64_imm(ALU_ADD, dst, i32::from(offset)));
    }
    /// Zeroes `bytes` (a multiple of 8) of the stack from `r10 + offset` up.
    fn zero_stack(&mut self, offset: i16, bytes: i16) {
        for word in 0..bytes / 8 {
            self.push(Insn::store_imm(SIZE_DW, R10, offset + word * 8, 0));
        }
    }
    fn finish(mut self) -> Vec<u8> {
        self.push(Insn::mov64_imm(R0, 0));
        self.push(Insn::exit());
        self.0.iter().flat_map(|insn| insn.to_bytes()).collect()
    }
}

/// One benchmark: maps it owns, its two programs and the repetition count.
struct RawBenchmark {
    measure: RawMeasure,
    maps: Vec<RawMap>,
    ringbuf: Option<usize>,
    /// Test runs between two drains of the ring buffer.
    runs_per_drain: u64,
    repeats: usize,
    base: RawProgram,
    bench: RawProgram,
    /// One repetition, when `repeats` > 1: the first call of a run meets colder caches, so a
    /// unit costs the worse of the first and the average repeated one (as in the IR suite).
    single: Option<RawProgram>,
}

/// Builds the base and bench programs of `measure`.
fn benchmark(measure: RawMeasure) -> Result<RawBenchmark> {
    let mut maps = Vec::new();
    let mut ringbuf = None;
    let lru = |maps: &mut Vec<RawMap>| -> Result<usize> {
        maps.push(RawMap::create(RawMapType::LruHash, LRU_KEY_BYTES as u32, LRU_VALUE_BYTES as u32, 64)?);
        Ok(maps.len() - 1)
    };
    // `prelude` and `unit` write code; the key lives at r10-32, the value at r10-48.
    let key = -LRU_KEY_BYTES;
    let value = key - LRU_VALUE_BYTES;
    type Writer<'a> = Box<dyn Fn(&mut Code, &[RawMap]) + 'a>;
    let lru_key_value: Writer = Box::new(move |code: &mut Code, _: &[RawMap]| {
        code.zero_stack(value, LRU_KEY_BYTES + LRU_VALUE_BYTES);
    });
    let update = move |code: &mut Code, map: &RawMap| {
        code.map(R1, map);
        code.stack_address(R2, key);
        code.stack_address(R3, value);
        code.push(Insn::mov64_imm(R4, 0));
        code.push(Insn::call(helper_id::MAP_UPDATE_ELEM));
    };
    let lookup_or_delete = move |code: &mut Code, map: &RawMap, helper: i32| {
        code.map(R1, map);
        code.stack_address(R2, key);
        code.push(Insn::call(helper));
    };
    let none: Writer = Box::new(|_: &mut Code, _: &[RawMap]| {});
    let (prelude, unit): (Writer, Writer) = match measure {
        RawMeasure::CgroupId => {
            (none, Box::new(|code: &mut Code, _: &[RawMap]| code.push(Insn::call(GET_CURRENT_CGROUP_ID))))
        }
        RawMeasure::StackId { user } => {
            maps.push(RawMap::create(RawMapType::StackTrace, 4, 8 * STACK_DEPTH, 1024)?);
            (
                Box::new(|code: &mut Code, _: &[RawMap]| code.push(Insn::mov64_reg(R6, R1))),
                Box::new(move |code: &mut Code, maps: &[RawMap]| {
                    code.push(Insn::mov64_reg(R1, R6));
                    code.map(R2, &maps[0]);
                    code.push(Insn::mov64_imm(R3, if user { USER_STACK_FLAG } else { 0 }));
                    code.push(Insn::call(GET_STACKID));
                }),
            )
        }
        RawMeasure::ReadUser(len) => {
            let address = USER_BUFFER.as_ptr() as i64;
            (
                none,
                Box::new(move |code: &mut Code, _: &[RawMap]| {
                    code.stack_address(R1, -(len as i16));
                    code.push(Insn::mov64_imm(R2, len as i32));
                    code.imm64(R3, address);
                    code.push(Insn::call(PROBE_READ_USER));
                }),
            )
        }
        RawMeasure::RingbufOutput(len) | RawMeasure::RingbufOutputWakeup(len) => {
            maps.push(RawMap::create(RawMapType::Ringbuf, 0, 0, RINGBUF_BYTES)?);
            ringbuf = Some(0);
            (
                Box::new(move |code: &mut Code, _: &[RawMap]| code.zero_stack(-(len as i16), len as i16)),
                Box::new(move |code: &mut Code, maps: &[RawMap]| {
                    code.map(R1, &maps[0]);
                    code.stack_address(R2, -(len as i16));
                    code.push(Insn::mov64_imm(R3, len as i32));
                    code.push(Insn::mov64_imm(R4, 0));
                    code.push(Insn::call(helper_id::RINGBUF_OUTPUT));
                }),
            )
        }
        RawMeasure::LruLookup => {
            lru(&mut maps)?;
            // The key exists: the prelude inserts it.
            (
                Box::new(move |code: &mut Code, maps: &[RawMap]| {
                    lru_key_value(code, maps);
                    update(code, &maps[0]);
                }),
                Box::new(move |code: &mut Code, maps: &[RawMap]| {
                    lookup_or_delete(code, &maps[0], helper_id::MAP_LOOKUP_ELEM)
                }),
            )
        }
        RawMeasure::LruUpdate => {
            lru(&mut maps)?;
            // The first update of the first run inserts; every later one replaces.
            (lru_key_value, Box::new(move |code: &mut Code, maps: &[RawMap]| update(code, &maps[0])))
        }
        RawMeasure::LruDeleteMissing => {
            lru(&mut maps)?;
            (
                lru_key_value,
                Box::new(move |code: &mut Code, maps: &[RawMap]| {
                    lookup_or_delete(code, &maps[0], helper_id::MAP_DELETE_ELEM)
                }),
            )
        }
        RawMeasure::LruInsertDelete => {
            lru(&mut maps)?;
            (
                lru_key_value,
                Box::new(move |code: &mut Code, maps: &[RawMap]| {
                    update(code, &maps[0]);
                    lookup_or_delete(code, &maps[0], helper_id::MAP_DELETE_ELEM);
                }),
            )
        }
    };
    let program = |repeats: usize| -> Result<RawProgram> {
        let mut code = Code::default();
        prelude(&mut code, &maps);
        for _ in 0..repeats {
            unit(&mut code, &maps);
        }
        let name = format!("{measure:?} x{repeats}");
        Ok(RawProgram::load(RawProgramType::RawTracepoint, &name, &code.finish())?)
    };
    let (repeats, runs_per_drain) = match measure {
        RawMeasure::RingbufOutputWakeup(_) => (1, 1),
        _ => (REPEATS, RUNS_PER_RINGBUF_FREE),
    };
    let (base, bench) = (program(0)?, program(repeats)?);
    let single = if repeats > 1 { Some(program(1)?) } else { None };
    Ok(RawBenchmark { measure, maps, ringbuf, runs_per_drain, repeats, base, bench, single })
}

/// Per trial, the ns one unit of each measure costs (in [`RawMeasure::ALL`] order). `runs`
/// test runs of each program per trial.
pub fn measure_helpers(runs: u64, trials: u32) -> Result<Vec<Vec<(RawMeasure, f64)>>> {
    // Fault the user buffer in: a probe cannot, and a failed read would cost less.
    black_box(USER_BUFFER.iter().map(|&byte| u64::from(byte)).sum::<u64>());
    let benchmarks = RawMeasure::ALL
        .into_iter()
        .map(|m| benchmark(m).with_context(|| format!("raw benchmark {m:?}")))
        .collect::<Result<Vec<_>>>()?;
    // Raw tracepoint context: the tracepoint's arguments (none are read).
    let ctx = [0u8; 8];
    for b in &benchmarks {
        // Warm up (and, for the LRU update, insert the key).
        for _ in 0..16 {
            b.base.test_run(&ctx)?;
            b.bench.test_run(&ctx)?;
            if let Some(single) = &b.single {
                single.test_run(&ctx)?;
            }
        }
    }
    let mut out = Vec::new();
    for _ in 0..trials {
        let mut trial = Vec::new();
        for b in &benchmarks {
            let single_stats = || b.single.as_ref().map(RawProgram::stats).transpose();
            let before = (b.base.stats()?, b.bench.stats()?, single_stats()?);
            for run in 0..runs {
                if run % b.runs_per_drain == 0 {
                    if let Some(index) = b.ringbuf {
                        b.maps[index].consume_all();
                    }
                }
                b.base.test_run(&ctx)?;
                b.bench.test_run(&ctx)?;
                if let Some(single) = &b.single {
                    single.test_run(&ctx)?;
                }
            }
            let after = (b.base.stats()?, b.bench.stats()?, single_stats()?);
            let mean = |after: RawRunStats, before: RawRunStats| -> Result<f64> {
                let delta = after.since(&before);
                match delta.ns_per_run() {
                    Some(ns) if delta.run_count >= runs => Ok(ns),
                    _ => bail!(
                        "raw benchmark {:?} ran {} times for {runs} test runs: are statistics off?",
                        b.measure,
                        delta.run_count
                    ),
                }
            };
            let base = mean(after.0, before.0)?;
            let repeated = (mean(after.1, before.1)? - base) / b.repeats as f64;
            let first = match (after.2, before.2) {
                (Some(after), Some(before)) => mean(after, before)? - base,
                _ => f64::NEG_INFINITY,
            };
            let per_unit = repeated.max(first);
            trial.push((b.measure, per_unit));
        }
        out.push(trial);
    }
    Ok(out)
}

/// An empty program of `kind` (`r0 = 0; exit`).
fn empty_program(kind: RawProgramType) -> Result<RawProgram> {
    Ok(RawProgram::load(kind, "empty", &Code::default().finish())?)
}

/// The raw tracepoint trigger on `sys_enter`: wall-clock ns per `workload` event with an empty
/// program attached minus without, minus the program's own mean run time; worst of `trials`.
pub fn raw_tracepoint_trigger(workload: fn(u64), events: u64, trials: u32, chunk: u64) -> Result<f64> {
    let program = empty_program(RawProgramType::RawTracepoint)?;
    let mut worst = 0.0_f64;
    for _ in 0..trials {
        workload(chunk);
        let without = super::ns_per_event(workload, events);
        let link = program.attach_raw_tracepoint("sys_enter")?;
        workload(chunk);
        let before = program.stats()?;
        let with = super::ns_per_event(workload, events);
        let run = program.stats()?.since(&before);
        drop(link);
        let Some(run_ns) = run.ns_per_run().filter(|_| run.run_count >= events) else {
            bail!("the raw tracepoint program ran {} times for {events} events", run.run_count);
        };
        worst = worst.max(with - without - run_ns);
    }
    Ok(worst)
}

/// CPU time between two samples of the perf event trigger benchmark: 20 µs, 50 000 overflows
/// per second of busy CPU (below the default `perf_event_max_sample_rate` of 100 000, and
/// enough that their cost stands well above the noise of a busy loop).
const PERF_PERIOD_NS: u64 = 20_000;
/// Wall-clock length of one busy-loop chunk.
const PERF_CHUNK_NS: f64 = 5_000_000.0;

/// A fixed amount of dependent arithmetic.
fn spin(iterations: u64) -> u64 {
    let mut x = black_box(0x9e37_79b9_7f4a_7c15_u64);
    for _ in 0..iterations {
        x = black_box(x.rotate_left(5) ^ 0x5a5a);
    }
    x
}

// `ppis_calibrate_deep_spin(frames, iterations)`: recurses `frames` times, each frame linked
// through `rbp` as a frame-pointer unwinder expects, then counts `iterations` down. Written in
// assembly so that every frame, the spinning one included, keeps the `rbp` chain intact
// (compiled Rust may use `rbp` as a general register): the kernel's user stack walker then
// follows all of them.
std::arch::global_asm!(
    ".globl ppis_calibrate_deep_spin",
    ".type ppis_calibrate_deep_spin, @function",
    "ppis_calibrate_deep_spin:",
    "push rbp",
    "mov rbp, rsp",
    "test rdi, rdi",
    "jz 2f",
    "dec rdi",
    "call ppis_calibrate_deep_spin",
    "jmp 4f",
    "2:",
    "test rsi, rsi",
    "jz 4f",
    "3:",
    "dec rsi",
    "jnz 3b",
    "4:",
    "pop rbp",
    "ret",
    ".size ppis_calibrate_deep_spin, . - ppis_calibrate_deep_spin",
);

extern "C" {
    fn ppis_calibrate_deep_spin(frames: u64, iterations: u64);
}

/// Frames under the spinning one: more than the kernel records, so every walk is a full one.
const DEEP_FRAMES: u64 = 2 * STACK_DEPTH as u64;

/// Median wall-clock ns of `chunks` spins of `iterations` at the bottom of a stack of
/// [`DEEP_FRAMES`] frame-pointer-linked frames.
fn median_deep_chunk_ns(iterations: u64, chunks: u32) -> f64 {
    let mut samples: Vec<f64> = (0..chunks)
        .map(|_| {
            let start = Instant::now();
            // SAFETY: the function only uses its own stack frames (2 words each, DEEP_FRAMES
            // of them) and the two argument registers; it follows the C calling convention.
            unsafe { ppis_calibrate_deep_spin(black_box(DEEP_FRAMES), black_box(iterations)) };
            start.elapsed().as_nanos() as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Median wall-clock ns of `chunks` runs of `spin(iterations)`.
fn median_chunk_ns(iterations: u64, chunks: u32) -> f64 {
    let mut samples: Vec<f64> = (0..chunks)
        .map(|_| {
            let start = Instant::now();
            black_box(spin(iterations));
            start.elapsed().as_nanos() as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The perf event trigger (a sampling overflow: the timer interrupt, the overflow handling
/// and the dispatch to the program): a busy-loop chunk on this thread with an empty program
/// on a `cpu-clock` event of the thread every [`PERF_PERIOD_NS`] of CPU time, against the same
/// chunk just before without the event. Pairs alternate so that drift in the machine's speed
/// (other load, frequency) cancels; the median pair difference over the mean overflows per
/// chunk, minus the program's own run time, is one trial's cost. Worst of `trials`.
/// Returns the worst cost of one overflow without the program, and the worst run time of the
/// empty program on it (a perf-event run costs more than one on a tracepoint: interrupt context).
pub fn perf_event_trigger(trials: u32, chunks: u32) -> Result<(f64, f64)> {
    let program = empty_program(RawProgramType::PerfEvent)?;
    // Size the chunk: iterations for about PERF_CHUNK_NS.
    let probe_iterations = 1_000_000;
    let per_iteration = median_chunk_ns(probe_iterations, 5) / probe_iterations as f64;
    let iterations = (PERF_CHUNK_NS / per_iteration.max(0.01)) as u64;
    let (mut worst, mut worst_run) = (0.0_f64, 0.0_f64);
    for _ in 0..trials {
        let before = program.stats()?;
        let mut differences = Vec::new();
        for _ in 0..chunks {
            let without = median_chunk_ns(iterations, 1);
            let link = program.attach_thread_cpu_clock(PERF_PERIOD_NS)?;
            let with = median_chunk_ns(iterations, 1);
            drop(link);
            differences.push(with - without);
        }
        let run = program.stats()?.since(&before);
        differences.sort_by(f64::total_cmp);
        let difference = differences[differences.len() / 2];
        let per_chunk = run.run_count as f64 / f64::from(chunks);
        let Some(run_ns) = run.ns_per_run().filter(|_| per_chunk >= 10.0) else {
            bail!("the perf event program ran {} times in {chunks} busy chunks", run.run_count);
        };
        let per_event = difference / per_chunk - run_ns;
        eprintln!(
            "calibrate: perf_event trial: a {:.1} ms chunk takes {:.1} us longer with {per_chunk:.1} overflows \
             ({run_ns:.1} ns in the program each): {per_event:.1} ns per overflow",
            PERF_CHUNK_NS / 1e6,
            difference / 1e3
        );
        worst = worst.max(per_event);
        worst_run = worst_run.max(run_ns);
    }
    // The calibrating thread's own overflows find warm caches; a `profile` or `interval` probe
    // interrupts whatever runs on each CPU (idle included) and runs colder and dearer. So the
    // run is also measured on every online CPU at 1 kHz while this thread sleeps.
    let cpus: Vec<u32> = (0..std::thread::available_parallelism().map_or(1, |n| n.get()) as u32).collect();
    for _ in 0..trials {
        let before = program.stats()?;
        let links = program.attach_cpu_clock_on_cpus(&cpus, 1_000_000)?;
        std::thread::sleep(std::time::Duration::from_millis(500));
        drop(links);
        let run = program.stats()?.since(&before);
        if let Some(run_ns) = run.ns_per_run().filter(|_| run.run_count >= 100) {
            eprintln!("calibrate: perf_event run on every CPU: {run_ns:.1} ns ({} runs)", run.run_count);
            worst_run = worst_run.max(run_ns);
        }
    }
    Ok((worst, worst_run))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every measure appears once; the bounds differ (a slope needs two points).
    #[test]
    fn measures_are_distinct_and_slopes_have_two_points() {
        for (i, m) in RawMeasure::ALL.iter().enumerate() {
            assert!(!RawMeasure::ALL[..i].contains(m), "{m:?} twice");
        }
        assert_ne!(BUFFER_READ_BOUNDS[0], BUFFER_READ_BOUNDS[1]);
        assert_ne!(RINGBUF_RECORD_BYTES[0], RINGBUF_RECORD_BYTES[1]);
    }

    /// Programs end in `r0 = 0; exit` and name maps through `BPF_PSEUDO_MAP_FD`.
    #[test]
    fn code_ends_in_exit_and_marks_map_references() {
        let mut code = Code::default();
        code.zero_stack(-16, 16);
        let bytes = code.finish();
        assert_eq!(bytes.len(), 4 * 8);
        let last = Insn::from_bytes(bytes[24..32].try_into().unwrap());
        assert_eq!(last, Insn::exit());
    }
}

/// `bpf_get_stackid` where `profile` probes call it: on a perf event, from the timer interrupt
/// (a deeper kernel stack, colder caches than under `BPF_PROG_TEST_RUN`), interrupting a
/// thread whose user stack is deeper than the kernel records (`ppis_calibrate_deep_spin`), so
/// the user walk is a full one: its cost grows with the frames it follows. Mean run time of a
/// program that walks the kernel and then the user stack, minus the empty program's, halved:
/// ns per walk, call overhead included; worst of `trials`.
pub fn perf_event_stackid(trials: u32, chunks: u32) -> Result<f64> {
    let stacks = RawMap::create(RawMapType::StackTrace, 4, 8 * STACK_DEPTH, 1024)?;
    let mut code = Code::default();
    code.push(Insn::mov64_reg(R6, R1));
    for flags in [0, USER_STACK_FLAG] {
        code.push(Insn::mov64_reg(R1, R6));
        code.map(R2, &stacks);
        code.push(Insn::mov64_imm(R3, flags));
        code.push(Insn::call(GET_STACKID));
    }
    let walker = RawProgram::load(RawProgramType::PerfEvent, "perf stackid", &code.finish())?;
    let empty = empty_program(RawProgramType::PerfEvent)?;
    let probe_iterations = 1_000_000;
    let per_iteration = median_deep_chunk_ns(probe_iterations, 5) / probe_iterations as f64;
    let iterations = (PERF_CHUNK_NS / per_iteration.max(0.01)) as u64;
    let mean_run = |program: &RawProgram| -> Result<f64> {
        let before = program.stats()?;
        for _ in 0..chunks {
            let link = program.attach_thread_cpu_clock(PERF_PERIOD_NS)?;
            median_deep_chunk_ns(iterations, 1);
            drop(link);
        }
        let run = program.stats()?.since(&before);
        run.ns_per_run().filter(|_| run.run_count >= u64::from(chunks) * 10).ok_or_else(|| {
            anyhow::anyhow!("the perf event program ran {} times in {chunks} busy chunks", run.run_count)
        })
    };
    let mut worst = 0.0_f64;
    for _ in 0..trials {
        let walks = mean_run(&walker)?;
        let base = mean_run(&empty)?;
        let per_walk = (walks - base) / 2.0;
        eprintln!("calibrate: get_stackid on a perf event: {walks:.1} ns for two walks, {base:.1} empty: {per_walk:.1} ns per walk");
        worst = worst.max(per_walk);
    }
    Ok(worst)
}
