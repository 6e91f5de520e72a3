//! Host cost calibration (`ppisc calibrate`): measures, on this machine, what the verifier's
//! cost model charges for — each attach trigger, each IR instruction class and each helper —
//! and returns it as a [`CostProfile`] meant to be an upper bound.
//!
//! Method (see `profiles/README.md`): microbenchmark probes are written as IR, compiled by the
//! real code generator and attached to `syscalls:sys_enter_getppid`; the calibrating process
//! makes `getppid` calls and the kernel's run-time statistics (`run_time_ns`/`run_cnt`) give
//! each program's mean time per run. An instruction or helper costs
//! `(time(base + K × unit) − time(base)) / K`; the empty program's own time is the per-run
//! cost (`instructions.run`). Helpers and map kinds the IR does not express are measured by
//! bytecode programs through `BPF_PROG_TEST_RUN` (`raw`), as are the raw tracepoint and perf
//! event triggers. Trigger costs are wall-clock: time per event with an empty probe attached
//! minus without, minus the probe's own run time. Every number is the worst of several trials
//! times [`SAFETY_MARGIN`] (triggers: [`TRIGGER_SAFETY_MARGIN`]).
//!
//! Boundary: builds IR and objects, and measures through `ppis-runtime`; it never changes
//! what the verifier or the code generator do.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ppis_manifest::profile::{
    reference, CostProfile, HelperCosts, HostInfo, InstructionCosts, MapHelperCost, StrReadCost, TriggerCosts,
    PROFILE_VERSION,
};
use ppis_manifest::{Attach, Manifest, ProbeInfo, MANIFEST_VERSION};
use ppis_runtime::AttachedProbes;

use crate::codegen;
use crate::elf::{self, ObjectProgram};

mod raw;

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct CalibrateOptions {
    /// Events per measurement (per trial).
    pub events: u64,
    /// Repetitions of every measurement; the profile keeps the worst.
    pub trials: u32,
}

/// Every measured cost is multiplied by this, so that the profile stays an upper bound under
/// noise the trials did not see (other load, frequency changes, cache state).
pub const SAFETY_MARGIN: f64 = 1.25;

/// The margin of trigger costs, which are wall-clock differences and so see all other load
/// on the host: on a shared 2-CPU machine they varied by up to 40 % between runs, where the
/// statistics-based instruction and helper costs varied by a few percent.
pub const TRIGGER_SAFETY_MARGIN: f64 = 1.5;

/// Repetitions of a cheap instruction inside one benchmark program: enough that K of them
/// stand well above the noise of the kernel's clock reads around each run.
const INSTRUCTION_REPEATS: usize = 64;

/// Repetitions of a helper call or map operation inside one benchmark program.
const HELPER_REPEATS: usize = 16;

/// Events per timed chunk of a trigger measurement; each chunk gives one ns/event sample and
/// the lower decile of the chunks is kept ([`UNDISTURBED_QUANTILE`]).
const CHUNK_EVENTS: u64 = 500;

/// Which chunk of a trigger measurement counts, sorted by time: preemption by other load only
/// ever adds time to a chunk, and with builds on both CPUs most chunks are preempted (the
/// median then gave 10 µs for a 0.3 µs tracepoint), so the lower decile is the undisturbed
/// time. A chunk averages 500 events, so the event-to-event variation it hides is small; the
/// trigger margin covers the rest.
const UNDISTURBED_QUANTILE: f64 = 0.1;

/// Fewest events a measurement may use: below this the means are noise.
const MIN_EVENTS: u64 = 1_000;

/// The tracepoint every program benchmark is attached to. `getppid` rather than the more
/// common `getpid`: other tools (and tests) rarely trace it, so an already-enabled tracepoint
/// does not hide part of the trigger cost.
const BENCH_TRACEPOINT: (&str, &str) = ("syscalls", "sys_enter_getppid");

/// Tracepoints whose trigger cost is measured (the profile keeps the largest): the
/// per-syscall ones and the raw ones ppis programs commonly use.
const TRIGGER_TRACEPOINTS: [(&str, &str); 3] =
    [("syscalls", "sys_enter_getppid"), ("raw_syscalls", "sys_enter"), ("raw_syscalls", "sys_exit")];

/// The kernel runs at most 64 programs per tracepoint (`BPF_TRACE_MAX_PROGS`); the suite is
/// attached in batches that leave room for other users of the tracepoint.
const PROGRAMS_PER_TRACEPOINT: usize = 40;

/// Hash map keys in the map benchmarks: as long as a `u64` plus a `str[16]` key plus padding,
/// so that hashing costs what typical ppis keys cost (longer keys hash slower).
const HASH_KEY_BYTES: u32 = 32;

/// Value size in the map benchmarks: the largest ppis value (`avg`, `min`, `max`: two words).
const MAP_VALUE_BYTES: u32 = 16;

/// Bounds (bytes) of the two user string read benchmarks; the cost per byte is the slope.
const STRING_READ_BOUNDS: [u32; 2] = [16, 128];

/// A user string longer than every bound in [`STRING_READ_BOUNDS`], NUL-terminated.
static USER_STRING: [u8; 256] = {
    let mut bytes = [b'p'; 256];
    bytes[255] = 0;
    bytes
};

/// The user-space function uprobe and uretprobe triggers are measured on. Exported unmangled
/// so the uprobe can find it in this binary's symbol table; never inlined so that every call
/// really enters it.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ppis_calibrate_probe_target(value: u64) -> u64 {
    black_box(value) ^ 0x5a
}

/// Name of [`ppis_calibrate_probe_target`] in the symbol table.
const PROBE_TARGET_SYMBOL: &str = "ppis_calibrate_probe_target";

/// Measures this host and returns its cost profile. Needs root (BPF, tracefs, statistics).
pub fn calibrate(opts: &CalibrateOptions) -> Result<CostProfile> {
    if opts.events < MIN_EVENTS {
        bail!("--events must be at least {MIN_EVENTS} (got {})", opts.events);
    }
    if opts.trials == 0 {
        bail!("--trials must be at least 1");
    }
    let suite = Suite::new();
    let (_, manifest) = suite.object()?;
    ppis_runtime::preflight(&manifest)?;
    let _stats = ppis_runtime::enable_run_time_stats()?;

    // Three times: on a syscall tracepoint, on a uprobe and on a uretprobe, whose trap,
    // single-step and return trampoline leave the caches colder for the program (its empty
    // run costs ≈ 30 % more there, helpers more too). Trials of all three count, so every
    // cost is the worst of them.
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("cannot find this executable for the uprobe measurements (was it rebuilt while running?)")?;
    let exe = exe.to_str().context("this executable's path is not UTF-8")?.to_string();
    let mut samples = measure_suite(&suite, &suite.attach(), getppid_events, opts)?;
    let on_uprobe = Attach::Uprobe { path: exe.clone(), symbol: PROBE_TARGET_SYMBOL.into() };
    samples.extend(measure_suite(&suite, &on_uprobe, probe_target_calls, opts)?);
    let on_uretprobe = Attach::Uretprobe { path: exe.clone(), symbol: PROBE_TARGET_SYMBOL.into() };
    samples.extend(measure_suite(&suite, &on_uretprobe, probe_target_calls, opts)?);
    for bench in &suite.benchmarks {
        let per_trial: Vec<String> = samples
            .iter()
            .map(|trial| {
                let ns = if bench.base == bench.bench { trial.0[bench.bench] } else { trial.per_unit(bench) };
                format!("{ns:.2}")
            })
            .collect();
        eprintln!("calibrate: {:<32} ns per unit by trial: {}", format!("{:?}", bench.measure), per_trial.join(" "));
    }
    let worst = |derive: &dyn Fn(&TrialTimes) -> f64| -> f64 {
        let value = samples.iter().map(derive).fold(0.0_f64, f64::max);
        margin(value)
    };
    let mut instructions = derive_instructions(&suite, &worst);
    // An event that follows work which evicted the caches (a `sync`, a context switch) pays a
    // colder run than any of the suite's back-to-back events: the per-run price covers it.
    let cold = cold_run(&suite, opts)?;
    eprintln!("calibrate: empty program run with cold caches: {cold:.1} ns");
    instructions.run = instructions.run.max(margin(cold));
    let cold_units = cold_helper_units(&suite, cold, opts)?;
    let helpers_and_call = derive_helpers(&suite, &worst, &cold_units);

    eprintln!("calibrate: measuring trigger costs");
    let mut tracepoint = 0.0_f64;
    for (category, name) in TRIGGER_TRACEPOINTS {
        let attach = Attach::Tracepoint { category: category.into(), name: name.into() };
        tracepoint = tracepoint.max(measure_trigger(attach, getppid_events, opts)?);
    }
    let uprobe = measure_trigger(
        Attach::Uprobe { path: exe.clone(), symbol: PROBE_TARGET_SYMBOL.into() },
        probe_target_calls,
        opts,
    )?;
    let uretprobe =
        measure_trigger(Attach::Uretprobe { path: exe, symbol: PROBE_TARGET_SYMBOL.into() }, probe_target_calls, opts)?;

    let (call, mut helpers) = helpers_and_call;
    eprintln!("calibrate: measuring stack ids, cgroup ids, buffer reads, ring buffer output and LRU maps");
    let raw_samples = raw::measure_helpers(opts.events, opts.trials)?;
    for (index, measure) in raw::RawMeasure::ALL.iter().enumerate() {
        let per_trial: Vec<String> = raw_samples.iter().map(|trial| format!("{:.2}", trial[index].1)).collect();
        eprintln!("calibrate: {:<32} ns per unit by trial: {}", format!("{measure:?}"), per_trial.join(" "));
    }
    derive_raw_helpers(&raw_samples, call, &mut helpers);
    // `profile` probes walk stacks from the timer interrupt, dearer than a walk under
    // BPF_PROG_TEST_RUN: the price is the dearer of the two.
    let perf_walk = raw::perf_event_stackid(opts.trials, PERF_EVENT_CHUNKS)?;
    helpers.get_stackid = helpers.get_stackid.max(round_up(margin(perf_walk) - call));
    let raw_tracepoint = round_up(
        raw::raw_tracepoint_trigger(getppid_events, opts.events, opts.trials, CHUNK_EVENTS)? * TRIGGER_SAFETY_MARGIN,
    );
    eprintln!("calibrate: trigger rawtracepoint:sys_enter: {raw_tracepoint:.2} ns");
    let (overflow, perf_run) = raw::perf_event_trigger(opts.trials, PERF_EVENT_CHUNKS)?;
    let perf_event = round_up(overflow * TRIGGER_SAFETY_MARGIN);
    eprintln!("calibrate: trigger perf_event (cpu-clock overflow): {perf_event:.2} ns");
    let run_price = round_up(instructions.run / SAFETY_MARGIN * TRIGGER_SAFETY_MARGIN);
    // A run on a perf event costs more than the per-run price measured on tracepoints and
    // uprobes (interrupt context, often on an idle CPU): it gets its own price, never below
    // the plain one.
    let run_perf_event = round_up(perf_run * TRIGGER_SAFETY_MARGIN).max(run_price);
    eprintln!("calibrate: per-run cost on a perf event: {run_perf_event:.2} ns (elsewhere {run_price:.2} ns)");
    Ok(CostProfile {
        version: PROFILE_VERSION,
        host: host_info(),
        measured_at: format!(
            "{}, ppisc calibrate v{}: {} events x {} trials, worst trial x {SAFETY_MARGIN} (triggers and the per-run cost x {TRIGGER_SAFETY_MARGIN})",
            utc_now_rfc3339(),
            env!("CARGO_PKG_VERSION"),
            opts.events,
            opts.trials
        ),
        triggers: TriggerCosts { tracepoint, uprobe, uretprobe, raw_tracepoint, perf_event },
        // The per-run cost is a fixed cost per event, as noisy as a trigger and as close to
        // the whole cost of a small probe: it gets the trigger margin, not the instructions'.
        instructions: InstructionCosts {
            call,
            run: run_price,
            run_perf_event: Some(run_perf_event),
            ..instructions
        },
        helpers,
    })
}

/// A measured cost with the safety margin, rounded up to 0.01 ns, never negative.
fn margin(ns: f64) -> f64 {
    round_up(ns * SAFETY_MARGIN)
}

/// Rounded up to 0.01 ns, never negative. The tolerance keeps float noise from a subtraction
/// (`229.18000000000004`) from adding a cent.
fn round_up(ns: f64) -> f64 {
    let rounded = (ns * 100.0 - 1e-6).ceil() / 100.0;
    // Written out so that negative inputs give 0.0, not -0.0 (which JSON keeps as `-0.0`).
    if rounded > 0.0 {
        rounded
    } else {
        0.0
    }
}

// ---------------------------------------------------------------------------------------------
// The benchmark programs.

/// A map kind with its kernel key size and a name fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MapKind {
    Hash,
    Array,
    PerCpuHash,
    PerCpuArray,
}

impl MapKind {
    const ALL: [MapKind; 4] = [MapKind::Hash, MapKind::Array, MapKind::PerCpuHash, MapKind::PerCpuArray];

    fn ir_name(self) -> &'static str {
        match self {
            MapKind::Hash => "hash",
            MapKind::Array => "array",
            MapKind::PerCpuHash => "percpu_hash",
            MapKind::PerCpuArray => "percpu_array",
        }
    }

    fn key_bytes(self) -> u32 {
        match self {
            MapKind::Hash | MapKind::PerCpuHash => HASH_KEY_BYTES,
            // Array keys are the u32 index.
            MapKind::Array | MapKind::PerCpuArray => 4,
        }
    }

    fn pick(self, cost: &MapHelperCost) -> f64 {
        match self {
            MapKind::Hash => cost.hash,
            MapKind::Array => cost.array,
            MapKind::PerCpuHash => cost.percpu_hash,
            MapKind::PerCpuArray => cost.percpu_array,
        }
    }
}

/// What one benchmark measures; each is a pair of programs (`base` and `base + K × unit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Measure {
    /// The empty program (just `ret`): the fixed cost of any run as the statistics see it
    /// (the clock reads around the run, the indirect call, prologue and exit).
    Empty,
    Alu(&'static str),
    LoadCtx,
    LoadStack,
    StoreStack,
    Branch(&'static str),
    LoadMapValue,
    StoreMapValue,
    Helper(&'static str),
    MapLookup(MapKind),
    /// Update of a key that exists (replace).
    MapUpdate(MapKind),
    /// Delete of a key that does not exist (arrays: always refused).
    MapDeleteMissing(MapKind),
    /// Insert of a new key followed by its delete.
    MapInsertDelete(MapKind),
    /// `probe_read_user_str` of a string longer than the bound (so the whole bound is
    /// copied), with this bound in bytes.
    ReadUserStr(u32),
}

/// The IR lines of repetition `i` of a benchmark's unit.
type UnitFn<'a> = dyn Fn(usize) -> Vec<String> + 'a;

/// The worst (with margin) over the trials of a per-trial quantity.
type WorstOf<'a> = dyn Fn(&dyn Fn(&TrialTimes) -> f64) -> f64 + 'a;

/// One benchmark: its programs' indices in the suite and the repetition count.
struct Benchmark {
    measure: Measure,
    base: usize,
    bench: usize,
    repeats: usize,
    /// For helpers and map operations, the program with one repetition: the first call of
    /// a run meets colder caches (the map's bucket, the helper's code) than the repeated
    /// ones, so a unit costs the worse of the first and the average repeated one.
    single: Option<usize>,
}

/// All benchmark programs in one IR module (each program with its own maps).
struct Suite {
    /// IR text of the whole module.
    text: String,
    /// Program names, in module order.
    programs: Vec<String>,
    benchmarks: Vec<Benchmark>,
}

/// Builds the IR text of one tracepoint program: the entry block loads the syscall number
/// (a value the code generator cannot know) into `v0`, runs `prelude`, then `unit(i)` for
/// each repetition, inside an extra block when `map_value` names a map whose value must be
/// looked up and null-checked first.
struct ProgramSpec<'a> {
    slots: &'a [u32],
    /// `(vreg, map)` declarations of map value pointers.
    pointers: &'a [(u32, &'a str)],
    prelude: &'a [String],
    unit: &'a UnitFn<'a>,
    /// The map whose key-0 value `v1` points at in the repeated part.
    map_value: Option<&'a str>,
    /// When set, each repetition is its own block ending in this branch (`{next}` and
    /// `{exit}` are replaced by block labels).
    branch: Option<&'a str>,
}

fn program_text(name: &str, spec: &ProgramSpec, repeats: usize) -> String {
    let mut out = format!("fn {name}(ctx: tracepoint) trigger tracepoint {{\n");
    for (i, size) in spec.slots.iter().enumerate() {
        out += &format!("  slot s{i}: {size}\n");
    }
    for (vreg, map) in spec.pointers {
        out += &format!("  v{vreg}: *{map}?\n");
    }
    out += "bb0:\n  v0 = load.ctx 8 u32\n";
    for line in spec.prelude {
        out += &format!("  {line}\n");
    }
    let units = |out: &mut String| {
        for i in 0..repeats {
            for line in (spec.unit)(i) {
                *out += &format!("  {line}\n");
            }
        }
    };
    match (spec.map_value, spec.branch) {
        (Some(map), _) => {
            // bb0 looks the value up; bb1 repeats on it; bb2 exits.
            out += &format!("  v1 = map.lookup {map}, s0\n  br.null v1, bb2, bb1\nbb1:\n");
            units(&mut out);
            out += "  jump bb2\nbb2:\n  ret\n";
        }
        (None, Some(branch)) => {
            // bb0 jumps to the first of `repeats` branch blocks; each continues to the next
            // and the last one's successor (`bb{repeats + 1}`) exits.
            let exit = repeats + 1;
            out += "  jump bb1\n";
            for i in 1..=repeats {
                out += &format!("bb{i}:\n");
                let next = format!("bb{}", i + 1);
                out += &format!("  {}\n", branch.replace("{next}", &next).replace("{exit}", &format!("bb{exit}")));
            }
            out += &format!("bb{exit}:\n  ret\n");
        }
        (None, None) => {
            units(&mut out);
            out += "  ret\n";
        }
    }
    out += "}\n";
    out
}

impl Suite {
    fn new() -> Suite {
        let mut suite = Suite { text: String::new(), programs: Vec::new(), benchmarks: Vec::new() };
        let none = |_: usize| Vec::new();
        let empty = ProgramSpec { slots: &[], pointers: &[], prelude: &[], unit: &none, map_value: None, branch: None };
        let name = suite.add_program(&empty, 0);
        suite.benchmarks.push(Benchmark { measure: Measure::Empty, base: name, bench: name, repeats: 1, single: None });

        // Arithmetic: dependent chains, so each instruction waits for the previous one (the
        // slow case). Division keeps a full-width dividend (the slowest divides) and divides
        // by a register, which the kernel guards against zero with an extra branch.
        let alu_prelude = vec!["v1 = 3".to_string(), "v2 = -1".to_string(), "v4 = -9223372036854775808".to_string()];
        let alu_units: [(&'static str, &UnitFn<'_>); 7] = [
            ("mov", &|i| vec![format!("v2 = {}", i as i64 * 7 + 1)]),
            ("add", &|_| vec!["v0 = add v0, 7".into()]),
            ("mul", &|_| vec!["v0 = mul v0, v1".into()]),
            ("shift", &|_| vec!["v0 = shl v0, v1".into()]),
            ("setcond", &|_| vec!["v0 = set.ult v0, v1".into()]),
            ("udiv", &|_| vec!["v2 = udiv v2, v1".into(), "v2 = or v2, v4".into()]),
            ("umod", &|_| vec!["v2 = umod v2, v1".into(), "v2 = or v2, v4".into()]),
        ];
        for (name, unit) in alu_units {
            let spec = ProgramSpec { prelude: &alu_prelude, unit, ..empty };
            suite.add_pair(Measure::Alu(name), &spec, INSTRUCTION_REPEATS);
        }

        let load_ctx = |_: usize| vec!["v1 = load.ctx 8 u32".to_string(), "v0 = xor v0, v1".to_string()];
        suite.add_pair(Measure::LoadCtx, &ProgramSpec { unit: &load_ctx, ..empty }, INSTRUCTION_REPEATS);

        let stack_prelude = vec!["store s0+0 u64, v0".to_string()];
        let load_stack = |_: usize| vec!["v1 = load s0+0 u64".to_string(), "v0 = xor v0, v1".to_string()];
        let spec = ProgramSpec { slots: &[8], prelude: &stack_prelude, unit: &load_stack, ..empty };
        suite.add_pair(Measure::LoadStack, &spec, INSTRUCTION_REPEATS);
        let store_stack = |i: usize| vec![format!("store s0+{} u64, v0", (i % 4) * 8)];
        let spec = ProgramSpec { slots: &[32], unit: &store_stack, ..empty };
        suite.add_pair(Measure::StoreStack, &spec, INSTRUCTION_REPEATS);

        // The syscall number is never 77777: `br.eq` falls through, `br.ne` is taken.
        for (name, branch) in
            [("not_taken", "br.eq v0, 77777, {exit}, {next}"), ("taken", "br.ne v0, 77777, {next}, {exit}")]
        {
            let spec = ProgramSpec { branch: Some(branch), ..empty };
            suite.add_pair(Measure::Branch(name), &spec, INSTRUCTION_REPEATS);
        }

        let value_map = suite.add_map("value_bench", MapKind::Array);
        let load_value = |_: usize| vec!["v2 = load v1+0 u64".to_string(), "v0 = xor v0, v2".to_string()];
        let zero_key = vec!["zero s0".to_string()];
        let pointer = [(1, value_map.as_str())];
        let spec = ProgramSpec {
            slots: &[8],
            pointers: &pointer,
            prelude: &zero_key,
            unit: &load_value,
            map_value: Some(&value_map),
            ..empty
        };
        suite.add_pair(Measure::LoadMapValue, &spec, INSTRUCTION_REPEATS);
        let value_map = suite.add_map("value_store_bench", MapKind::Array);
        let pointer = [(1, value_map.as_str())];
        let store_value = |i: usize| vec![format!("store v1+{} u64, v0", (i % 2) * 8)];
        let spec = ProgramSpec {
            slots: &[8],
            pointers: &pointer,
            prelude: &zero_key,
            unit: &store_value,
            map_value: Some(&value_map),
            ..empty
        };
        suite.add_pair(Measure::StoreMapValue, &spec, INSTRUCTION_REPEATS);

        for helper in ["ktime_get_ns", "get_current_pid_tgid", "get_current_uid_gid", "get_smp_processor_id"] {
            let unit = move |_: usize| vec![format!("v1 = call {helper}()"), "v0 = xor v0, v1".to_string()];
            suite.add_pair(Measure::Helper(helper), &ProgramSpec { unit: &unit, ..empty }, HELPER_REPEATS);
        }
        let comm = |_: usize| vec!["call get_current_comm(s0, 16)".to_string()];
        let spec = ProgramSpec { slots: &[16], unit: &comm, ..empty };
        suite.add_pair(Measure::Helper("get_current_comm"), &spec, HELPER_REPEATS);

        // The calibrating process is the one in `getppid`, so its own string is a valid user
        // address in the probe; both bounds are shorter than it, so each read copies its
        // whole bound (the worst case).
        let address = USER_STRING.as_ptr() as u64 as i64;
        for len in STRING_READ_BOUNDS {
            let prelude = vec![format!("v1 = {address}")];
            let read = move |_: usize| {
                vec![format!("v2 = call probe_read_user_str(s0, {len}, v1)"), "v0 = xor v0, v2".to_string()]
            };
            let spec = ProgramSpec { slots: &[len], prelude: &prelude, unit: &read, ..empty };
            suite.add_pair(Measure::ReadUserStr(len), &spec, HELPER_REPEATS);
        }

        for kind in MapKind::ALL {
            let slots = [kind.key_bytes().div_ceil(8) * 8, MAP_VALUE_BYTES];
            // Key 0 with a value derived from the event; `s0` key, `s1` value.
            let key_and_value = vec!["zero s0".to_string(), "zero s1".to_string(), "store s1+0 u64, v0".to_string()];

            let map = suite.add_map("lookup", kind);
            let mut prelude = key_and_value.clone();
            prelude.push(format!("map.update {map}, s0, s1, 0"));
            let lookup = |_: usize| vec![format!("v1 = map.lookup {map}, s0")];
            let pointer = [(1, map.as_str())];
            let spec = ProgramSpec { slots: &slots, pointers: &pointer, prelude: &prelude, unit: &lookup, ..empty };
            suite.add_pair(Measure::MapLookup(kind), &spec, HELPER_REPEATS);

            let map = suite.add_map("update", kind);
            let update = |_: usize| vec![format!("map.update {map}, s0, s1, 0")];
            let spec = ProgramSpec { slots: &slots, prelude: &key_and_value, unit: &update, ..empty };
            suite.add_pair(Measure::MapUpdate(kind), &spec, HELPER_REPEATS);

            let map = suite.add_map("delete", kind);
            let delete = |_: usize| vec![format!("map.delete {map}, s0")];
            let spec = ProgramSpec { slots: &slots, prelude: &key_and_value, unit: &delete, ..empty };
            suite.add_pair(Measure::MapDeleteMissing(kind), &spec, HELPER_REPEATS);

            let map = suite.add_map("insert_delete", kind);
            let insert_delete =
                |_: usize| vec![format!("map.update {map}, s0, s1, 0"), format!("map.delete {map}, s0")];
            let spec = ProgramSpec { slots: &slots, prelude: &key_and_value, unit: &insert_delete, ..empty };
            suite.add_pair(Measure::MapInsertDelete(kind), &spec, HELPER_REPEATS);
        }
        suite
    }

    /// Declares a map (module text starts with the map lines) and returns its name.
    fn add_map(&mut self, purpose: &str, kind: MapKind) -> String {
        let index = self.text.lines().filter(|l| l.starts_with("map ")).count();
        let name = format!("{purpose}_{}", kind.ir_name());
        let name = format!("b{index}_{name}");
        let line = format!(
            "map m{index} {name}: {} key {} value {MAP_VALUE_BYTES} max 64\n",
            kind.ir_name(),
            kind.key_bytes()
        );
        // Maps must precede the functions that name them; functions are appended below the
        // map lines, so insert after the last map line.
        let at = self.text.lines().take(index).map(|l| l.len() + 1).sum::<usize>();
        self.text.insert_str(at, &line);
        name
    }

    fn add_program(&mut self, spec: &ProgramSpec, repeats: usize) -> usize {
        let index = self.programs.len();
        let name = format!("bench{index}");
        self.text += "\n";
        self.text += &program_text(&name, spec, repeats);
        self.programs.push(name);
        index
    }

    fn add_pair(&mut self, measure: Measure, spec: &ProgramSpec, repeats: usize) {
        let base = self.add_program(spec, 0);
        let bench = self.add_program(spec, repeats);
        // Helpers and map operations (not the sub-nanosecond instructions, whose single
        // occurrence is below the clock's noise).
        let single = (repeats == HELPER_REPEATS).then(|| self.add_program(spec, 1));
        self.benchmarks.push(Benchmark { measure, base, bench, repeats, single });
    }

    fn module(&self) -> Result<ppis_ir::Module> {
        ppis_ir::parse_module(&self.text).map_err(|e| anyhow::anyhow!("benchmark IR: {e}"))
    }

    fn attach(&self) -> Attach {
        Attach::Tracepoint { category: BENCH_TRACEPOINT.0.into(), name: BENCH_TRACEPOINT.1.into() }
    }

    /// The ELF object and manifest attaching every program to [`BENCH_TRACEPOINT`].
    fn object(&self) -> Result<(Vec<u8>, Manifest)> {
        build_object(&self.module()?, &self.attach())
    }

    /// Program indices in groups small enough to attach to one tracepoint together, each
    /// benchmark's pair in the same group (so both are measured on the same events).
    fn batches(&self) -> Vec<Vec<usize>> {
        let mut batches: Vec<Vec<usize>> = vec![Vec::new()];
        for bench in &self.benchmarks {
            let mut programs: Vec<usize> =
                if bench.base == bench.bench { vec![bench.base] } else { vec![bench.base, bench.bench] };
            programs.extend(bench.single);
            if batches.last().is_some_and(|batch| batch.len() + programs.len() > PROGRAMS_PER_TRACEPOINT) {
                batches.push(Vec::new());
            }
            batches.last_mut().expect("never empty").extend(programs);
        }
        batches
    }

    /// Whether two suite programs have the same body (only their names differ).
    fn programs_equal(&self, a: usize, b: usize) -> bool {
        let body = |index: usize| -> Option<String> {
            let header = format!("fn {}(", self.programs[index]);
            let start = self.text.find(&header)? + header.len();
            let rest = &self.text[start..];
            Some(rest[..rest.find("\n}\n").map_or(rest.len(), |end| end)].to_string())
        };
        body(a).is_some() && body(a) == body(b)
    }

    fn benchmark(&self, measure: Measure) -> &Benchmark {
        self.benchmarks.iter().find(|b| b.measure == measure).expect("every measure has a benchmark")
    }
}

/// Compiles every function of `module` and writes an object whose manifest attaches all of
/// them to `attach`.
fn build_object(module: &ppis_ir::Module, attach: &Attach) -> Result<(Vec<u8>, Manifest)> {
    let section_kind = match attach {
        Attach::Tracepoint { .. } => "tracepoint",
        Attach::Uprobe { .. } | Attach::Usdt { .. } => "uprobe",
        Attach::Uretprobe { .. } => "uretprobe",
        Attach::RawTracepoint { .. } | Attach::Begin | Attach::End => "raw_tracepoint",
        Attach::Profile { .. } | Attach::Interval { .. } => "perf_event",
    };
    let compiled = module
        .functions
        .iter()
        .map(|func| {
            codegen::compile_function(func, module).map_err(|e| anyhow::anyhow!("benchmark {}: {}", func.name, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let programs: Vec<ObjectProgram> = compiled
        .iter()
        .map(|program| ObjectProgram { section: format!("{section_kind}/{}", program.name), program })
        .collect();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        budget_percent: 100.0,
        probes: compiled
            .iter()
            .map(|program| ProbeInfo {
                program: program.name.clone(),
                attach: attach.clone(),
                rate_per_sec: None,
                line: 1,
                activation: None,
            })
            .collect(),
        // The calibration reads no maps, so the manifest need not describe them.
        maps: Vec::new(),
        events: None,
    };
    let object = elf::write_object(&module.maps, &programs, &manifest.to_json());
    Ok((object, manifest))
}

// ---------------------------------------------------------------------------------------------
// Measuring.

/// Mean ns per run of every suite program, for one trial.
struct TrialTimes(Vec<f64>);

impl TrialTimes {
    /// What one repetition of `bench`'s unit costs in this trial.
    fn per_unit(&self, bench: &Benchmark) -> f64 {
        let repeated = (self.0[bench.bench] - self.0[bench.base]) / bench.repeats as f64;
        let first = bench.single.map_or(f64::NEG_INFINITY, |single| self.0[single] - self.0[bench.base]);
        repeated.max(first)
    }
}

/// Mean ns per run of every suite program, per trial, with the suite attached to `attach`
/// and fired by `workload`.
fn measure_suite(
    suite: &Suite,
    attach: &Attach,
    workload: fn(u64),
    opts: &CalibrateOptions,
) -> Result<Vec<TrialTimes>> {
    let module = suite.module()?;
    eprintln!(
        "calibrate: {} benchmark programs on {attach}, {} events x {} trials",
        suite.programs.len(),
        opts.events,
        opts.trials
    );
    // Fault the user string in: a probe cannot, and a failed read would cost less.
    black_box(USER_STRING.iter().map(|&byte| u64::from(byte)).sum::<u64>());
    let mut trials: Vec<TrialTimes> = (0..opts.trials).map(|_| TrialTimes(vec![0.0; suite.programs.len()])).collect();
    for batch in suite.batches() {
        let functions = batch.iter().map(|&index| module.functions[index].clone()).collect();
        let part = ppis_ir::Module { maps: module.maps.clone(), functions };
        let (object, manifest) = build_object(&part, attach)?;
        let probes = ppis_runtime::attach(&object, &manifest).context("cannot attach the benchmark programs")?;
        // Warm caches and maps (the first event inserts what later ones replace).
        workload(CHUNK_EVENTS);
        for trial in &mut trials {
            let times = measured_runs(&probes, opts.events, workload)?;
            for (&index, time) in batch.iter().zip(times) {
                trial.0[index] = time;
            }
        }
        probes.detach();
    }
    Ok(trials)
}

/// The empty program alone on the benchmark tracepoint, the caches evicted before each event
/// ([`cold_getppid_events`]): the kernel's per-run cost when the JIT image, the program's
/// statistics and the dispatch path must come back from memory. Worst mean of the trials.
fn cold_run(suite: &Suite, opts: &CalibrateOptions) -> Result<f64> {
    let events = (opts.events / COLD_EVENTS_DIVISOR).max(MIN_EVENTS);
    cold_alone(suite, suite.benchmark(Measure::Empty).bench, events, opts.trials, CHUNK_EVENTS)
}

/// Suite program `index` alone on the benchmark tracepoint: after `warm_events` cold events
/// (the first inserts what later ones replace), the worst over `trials` of its mean run time
/// over `events` cold events.
fn cold_alone(suite: &Suite, index: usize, events: u64, trials: u32, warm_events: u64) -> Result<f64> {
    let module = suite.module()?;
    let part = ppis_ir::Module { maps: module.maps.clone(), functions: vec![module.functions[index].clone()] };
    let (object, manifest) = build_object(&part, &suite.attach())?;
    let probes = ppis_runtime::attach(&object, &manifest)
        .with_context(|| format!("cannot attach benchmark program {}", suite.programs[index]))?;
    cold_getppid_events(warm_events);
    let mut worst = 0.0_f64;
    for _ in 0..trials {
        worst = worst.max(measured_runs(&probes, events, cold_getppid_events)?[0]);
    }
    probes.detach();
    Ok(worst)
}

/// What one call of each helper and map operation costs with the caches evicted before each
/// event: an event after a heavy system call (an `fsync`) finds the helper's code, the map's
/// buckets and the program's image in memory, not in cache, and pays more than any of the
/// suite's back-to-back runs. Each benchmark's single-call program and its base run alone
/// (programs on one tracepoint would warm each other's shared paths), so a unit is the
/// difference of two cold runs; `cold_empty` ([`cold_run`]) is the base of the helpers
/// without a prelude. Worst mean of the trials (at most [`COLD_TRIALS`]).
fn cold_helper_units(suite: &Suite, cold_empty: f64, opts: &CalibrateOptions) -> Result<Vec<(Measure, f64)>> {
    let events = (opts.events / COLD_EVENTS_DIVISOR).max(MIN_EVENTS);
    let trials = opts.trials.min(COLD_TRIALS);
    let empty = suite.benchmark(Measure::Empty).bench;
    let cold_alone = |index: usize| cold_alone(suite, index, events, trials, 1);
    let singles: Vec<&Benchmark> = suite.benchmarks.iter().filter(|bench| bench.single.is_some()).collect();
    eprintln!(
        "calibrate: {} helpers and map operations alone with cold caches, {events} events x {trials} trials",
        singles.len()
    );
    let mut units = Vec::with_capacity(singles.len());
    for bench in singles {
        let single = cold_alone(bench.single.expect("filtered on single"))?;
        let same_as_empty = suite.programs_equal(bench.base, empty);
        let base = if same_as_empty { cold_empty } else { cold_alone(bench.base)? };
        let unit = (single - base).max(0.0);
        eprintln!("calibrate: {:<32} cold: {unit:.2} ns", format!("{:?}", bench.measure));
        units.push((bench.measure, unit));
    }
    Ok(units)
}

/// Runs `events` events through `workload` and returns every attached program's mean ns per
/// run over them. Fails when a program ran fewer times than there were events: then the
/// workload did not reach it (and the means would describe someone else's events).
fn measured_runs(probes: &AttachedProbes, events: u64, workload: fn(u64)) -> Result<Vec<f64>> {
    let before = probes.stats()?;
    workload(events);
    let after = probes.stats()?;
    after
        .iter()
        .zip(&before)
        .map(|(after, before)| {
            let delta = after.since(before);
            match delta.ns_per_run() {
                Some(ns) if delta.run_count >= events => Ok(ns),
                _ => bail!(
                    "program {} ran {} times for {events} events: is `kernel.bpf_stats_enabled` being turned off?",
                    delta.program,
                    delta.run_count
                ),
            }
        })
        .collect()
}

fn derive_instructions(suite: &Suite, worst: &WorstOf<'_>) -> InstructionCosts {
    let per_unit = |measure: Measure| worst(&|t: &TrialTimes| t.per_unit(suite.benchmark(measure)));
    let max_of = |measures: &[Measure]| measures.iter().map(|m| per_unit(*m)).fold(0.0_f64, f64::max);
    // What the statistics count for a run that does nothing (just `ret`): the per-run cost,
    // charged once per event on the exit. The exit also pays a `branch`, so the empty
    // program's own `exit` instruction is counted twice: a fraction of a nanosecond.
    let run = worst(&|t: &TrialTimes| t.0[suite.benchmark(Measure::Empty).bench]);
    let alu = max_of(&["mov", "add", "mul", "shift", "setcond", "udiv", "umod"].map(Measure::Alu));
    let branch = max_of(&[Measure::Branch("taken"), Measure::Branch("not_taken")]);
    InstructionCosts {
        alu,
        load_ctx: per_unit(Measure::LoadCtx),
        load_stack: per_unit(Measure::LoadStack),
        store_stack: per_unit(Measure::StoreStack),
        load_map_value: per_unit(Measure::LoadMapValue),
        store_map_value: per_unit(Measure::StoreMapValue),
        branch,
        call: 0.0,
        run,
        // Measured apart, on perf events (`raw::perf_event_trigger`).
        run_perf_event: None,
    }
}

/// Helper and map operation costs. Each measures a whole call; the cheapest call becomes the
/// common `call` overhead and every helper the rest, so `call + helper` is what was measured.
fn derive_helpers(suite: &Suite, worst: &WorstOf<'_>, cold_units: &[(Measure, f64)]) -> (f64, HelperCosts) {
    // The worse of the warm runs (on tracepoints and uprobes) and the cold one.
    let per_unit = |measure: Measure| {
        let cold = cold_units.iter().find(|(m, _)| *m == measure).map_or(0.0, |(_, ns)| margin(*ns));
        worst(&|t: &TrialTimes| t.per_unit(suite.benchmark(measure))).max(cold)
    };
    let helper = |name: &'static str| per_unit(Measure::Helper(name));
    let by_kind = |measure: fn(MapKind) -> Measure| {
        let [hash, array, percpu_hash, percpu_array] = MapKind::ALL.map(|kind| per_unit(measure(kind)));
        // LRU maps are not measured yet: the reference number stands.
        MapHelperCost { hash, array, percpu_hash, percpu_array, lru_hash: reference::lru_hash() }
    };
    let lookup = by_kind(Measure::MapLookup);
    let replace = by_kind(Measure::MapUpdate);
    let delete_missing = by_kind(Measure::MapDeleteMissing);
    let insert_delete = by_kind(Measure::MapInsertDelete);
    // An update may insert and a delete may hit: price them so that both a replace and an
    // insert are covered by `update`, a missing delete by `delete`, and insert + delete by
    // their sum: update = max(replace, pair − missing delete), delete = max(missing delete,
    // pair − replace).
    let combine = |f: &dyn Fn(MapKind) -> f64| {
        let [hash, array, percpu_hash, percpu_array] = MapKind::ALL.map(f);
        MapHelperCost { hash, array, percpu_hash, percpu_array, lru_hash: reference::lru_hash() }
    };
    let update = combine(&|k| k.pick(&replace).max(k.pick(&insert_delete) - k.pick(&delete_missing)));
    let delete = combine(&|k| k.pick(&delete_missing).max(k.pick(&insert_delete) - k.pick(&replace)));

    let plain = [
        helper("ktime_get_ns"),
        helper("get_current_pid_tgid"),
        helper("get_current_uid_gid"),
        helper("get_current_comm"),
        helper("get_smp_processor_id"),
    ];
    let all_calls = plain
        .iter()
        .copied()
        .chain([lookup, update, delete].into_iter().flat_map(|c| [c.hash, c.array, c.percpu_hash, c.percpu_array]));
    let call = all_calls.fold(f64::INFINITY, f64::min);
    let call = if call.is_finite() { call } else { 0.0 };
    let minus_call = |ns: f64| round_up(ns - call);
    let minus_call_map = |c: MapHelperCost| MapHelperCost {
        hash: minus_call(c.hash),
        array: minus_call(c.array),
        percpu_hash: minus_call(c.percpu_hash),
        percpu_array: minus_call(c.percpu_array),
        lru_hash: c.lru_hash,
    };
    let helpers = HelperCosts {
        map_lookup_elem: minus_call_map(lookup),
        map_update_elem: minus_call_map(update),
        map_delete_elem: minus_call_map(delete),
        ktime_get_ns: minus_call(plain[0]),
        get_current_pid_tgid: minus_call(plain[1]),
        get_current_uid_gid: minus_call(plain[2]),
        get_current_comm: minus_call(plain[3]),
        get_smp_processor_id: minus_call(plain[4]),
        probe_read_user_str: read_user_str(&|len| minus_call(per_unit(Measure::ReadUserStr(len)))),
        // Kernel strings need a kernel address the calibration cannot name without BTF; the
        // reference (pessimistic, not measured) numbers stay.
        probe_read_kernel_str: StrReadCost::reference_kernel(),
        // Not measured yet: the reference numbers stand.
        ..CostProfile::reference().helpers
    };
    (call, helpers)
}

/// A string read's fixed and per-byte cost from the cost of reading each of
/// [`STRING_READ_BOUNDS`] bytes: the slope between the two, and a fixed part that makes the
/// line cover both points.
fn read_user_str(cost_of: &dyn Fn(u32) -> f64) -> StrReadCost {
    affine_cost(STRING_READ_BOUNDS, cost_of)
}

/// A fixed and a per-byte cost from the cost at two byte counts: the slope between them, and
/// a fixed part that makes the line cover both points.
fn affine_cost([short, long]: [u32; 2], cost_of: &dyn Fn(u32) -> f64) -> StrReadCost {
    let (short_ns, long_ns) = (cost_of(short), cost_of(long));
    let per_byte = ((long_ns - short_ns) / f64::from(long - short)).max(0.0);
    let base = (short_ns - per_byte * f64::from(short)).max(long_ns - per_byte * f64::from(long)).max(0.0);
    // Rounded up as the other costs are (both inputs already carry the margin).
    StrReadCost { base: (base * 100.0).ceil() / 100.0, per_byte: (per_byte * 1000.0).ceil() / 1000.0 }
}

/// Busy-loop chunks per half of a perf event trigger trial.
const PERF_EVENT_CHUNKS: u32 = 40;

/// Sets the helper costs the raw benchmarks measure (worst trial with the margin, minus the
/// common `call` overhead as for every helper): `get_current_cgroup_id`, `get_stackid` (the
/// dearer of the kernel and user stack), `probe_read_user` and `ringbuf_output` (fixed and
/// per byte; the fixed part covers a reader wake-up), and the LRU hash map operations (combined as for the other hash maps).
fn derive_raw_helpers(samples: &[Vec<(raw::RawMeasure, f64)>], call: f64, helpers: &mut HelperCosts) {
    use raw::RawMeasure;
    let worst = |measure: RawMeasure| {
        let value = samples
            .iter()
            .flat_map(|trial| trial.iter().filter(|(m, _)| *m == measure).map(|(_, ns)| *ns))
            .fold(0.0_f64, f64::max);
        margin(value)
    };
    let minus_call = |ns: f64| round_up(ns - call);
    helpers.get_current_cgroup_id = minus_call(worst(RawMeasure::CgroupId));
    helpers.get_stackid =
        minus_call(worst(RawMeasure::StackId { user: false }).max(worst(RawMeasure::StackId { user: true })));
    helpers.probe_read_user = affine_cost(raw::BUFFER_READ_BOUNDS, &|len| minus_call(worst(RawMeasure::ReadUser(len))));
    // The wake-up of a caught-up reader is paid per record at worst (a prompt reader is caught
    // up at every record): part of the fixed cost.
    let mut ringbuf = affine_cost(raw::RINGBUF_RECORD_BYTES, &|len| minus_call(worst(RawMeasure::RingbufOutput(len))));
    let woken_len = raw::RINGBUF_RECORD_BYTES[1];
    let woken = minus_call(worst(RawMeasure::RingbufOutputWakeup(woken_len)));
    ringbuf.base = round_up(ringbuf.base.max(woken - ringbuf.per_byte * f64::from(woken_len)));
    helpers.ringbuf_output = ringbuf;
    let (replace, delete_missing, insert_delete) =
        (worst(RawMeasure::LruUpdate), worst(RawMeasure::LruDeleteMissing), worst(RawMeasure::LruInsertDelete));
    helpers.map_lookup_elem.lru_hash = minus_call(worst(RawMeasure::LruLookup));
    helpers.map_update_elem.lru_hash = minus_call(replace.max(insert_delete - delete_missing));
    helpers.map_delete_elem.lru_hash = minus_call(delete_missing.max(insert_delete - replace));
}

/// The fixed cost of one event of `attach`: wall-clock ns per event with an empty probe
/// attached minus without, minus what the statistics count as the probe's own run (that part
/// is priced by the program's instructions). Worst trial, with [`TRIGGER_SAFETY_MARGIN`].
fn measure_trigger(attach: Attach, workload: fn(u64), opts: &CalibrateOptions) -> Result<f64> {
    let ctx = match attach {
        Attach::Tracepoint { .. } => "tracepoint",
        Attach::Uprobe { .. } | Attach::Uretprobe { .. } | Attach::Usdt { .. } => "pt_regs",
        Attach::RawTracepoint { .. } | Attach::Begin | Attach::End => "raw_tracepoint",
        Attach::Profile { .. } | Attach::Interval { .. } => "perf_event",
    };
    let module = ppis_ir::parse_module(&format!("fn empty(ctx: {ctx}) {{\nbb0:\n  ret\n}}\n"))
        .map_err(|e| anyhow::anyhow!("trigger benchmark IR: {e}"))?;
    let (object, manifest) = build_object(&module, &attach)?;
    let mut worst = 0.0_f64;
    for _ in 0..opts.trials {
        workload(CHUNK_EVENTS);
        let without = ns_per_event(workload, opts.events);
        let probes = ppis_runtime::attach(&object, &manifest).with_context(|| format!("cannot attach to {attach}"))?;
        workload(CHUNK_EVENTS);
        let before = probes.stats()?;
        let with = ns_per_event(workload, opts.events);
        let run = probes.stats()?[0].since(&before[0]);
        probes.detach();
        let Some(run_ns) = run.ns_per_run().filter(|_| run.run_count >= opts.events) else {
            bail!("the probe on {attach} ran {} times for {} events", run.run_count, opts.events);
        };
        worst = worst.max(with - without - run_ns);
    }
    let cost = round_up(worst * TRIGGER_SAFETY_MARGIN);
    eprintln!("calibrate: trigger {attach}: {cost:.2} ns");
    Ok(cost)
}

/// The [`UNDISTURBED_QUANTILE`] over chunks of the wall-clock ns per event of `workload`.
fn ns_per_event(workload: fn(u64), events: u64) -> f64 {
    let chunks = events.div_ceil(CHUNK_EVENTS).max(1);
    let mut samples: Vec<f64> = (0..chunks)
        .map(|_| {
            let start = Instant::now();
            workload(CHUNK_EVENTS);
            start.elapsed().as_nanos() as f64 / CHUNK_EVENTS as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[(samples.len() as f64 * UNDISTURBED_QUANTILE) as usize]
}

/// `count` `getppid` system calls (glibc does not cache its result, so each one enters the
/// kernel and fires `syscalls:sys_enter_getppid`).
fn getppid_events(count: u64) {
    for _ in 0..count {
        black_box(std::os::unix::process::parent_id());
    }
}

/// Bytes written before each cold event: beyond the L2 caches of the machines we run on
/// (and much of a shared L3), so that the probe's code and data and the kernel's paths are
/// evicted as after a heavy system call.
const COLD_EVICT_BYTES: usize = 8 << 20;

/// Cold events are slow (each writes [`COLD_EVICT_BYTES`]): a fifth as many.
const COLD_EVENTS_DIVISOR: u64 = 5;

/// Trials of each cold helper measurement: a few dozen programs each measured alone.
const COLD_TRIALS: u32 = 2;

/// `count` `getppid` calls, each after writing [`COLD_EVICT_BYTES`] (one byte per cache line).
fn cold_getppid_events(count: u64) {
    thread_local! {
        static EVICT: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; COLD_EVICT_BYTES]);
    }
    EVICT.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        for round in 0..count {
            for line in buffer.chunks_mut(64) {
                line[0] = line[0].wrapping_add(round as u8 | 1);
            }
            black_box(&mut *buffer);
            black_box(std::os::unix::process::parent_id());
        }
    });
}

/// `count` calls of the uprobe target.
fn probe_target_calls(count: u64) {
    for i in 0..count {
        black_box(ppis_calibrate_probe_target(black_box(i)));
    }
}

// ---------------------------------------------------------------------------------------------
// Host facts.

fn host_info() -> HostInfo {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "unknown".into(), |s| s.trim().into());
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    HostInfo { cpus, kernel, cpu_model }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the Unix epoch as an RFC 3339 UTC time (Howard Hinnant's civil-from-days).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3_600, rem % 3_600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_599), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn margins_round_up_and_never_go_negative() {
        assert_eq!(margin(-3.0).to_bits(), 0.0_f64.to_bits());
        assert_eq!(margin(-0.001).to_bits(), 0.0_f64.to_bits());
        assert_eq!(margin(8.0), 10.0);
        assert_eq!(margin(0.001), 0.01);
        assert_eq!(round_up(229.18000000000004), 229.18);
        assert_eq!(round_up(229.181), 229.19);
    }

    /// Every benchmark program parses, compiles and grows by its repetitions: a code
    /// generator that dropped the repeated units would make every cost zero.
    #[test]
    fn the_suite_compiles_and_repeats_its_units() {
        let suite = Suite::new();
        let module = ppis_ir::parse_module(&suite.text).unwrap_or_else(|e| panic!("{e}\n{}", suite.text));
        assert_eq!(module.functions.len(), suite.programs.len());
        let sizes: Vec<usize> = module
            .functions
            .iter()
            .map(|f| codegen::compile_function(f, &module).unwrap_or_else(|e| panic!("{}: {e}", f.name)).insns.len())
            .collect();
        for bench in suite.benchmarks.iter().filter(|b| b.base != b.bench) {
            let grown = sizes[bench.bench] - sizes[bench.base];
            // The last branch of a branch chain has both targets in the next block, which the
            // code generator rightly emits as a fall-through.
            let slack = usize::from(matches!(bench.measure, Measure::Branch(_)));
            assert!(
                grown + slack >= bench.repeats,
                "{:?}: {grown} instructions for {} repeats",
                bench.measure,
                bench.repeats
            );
        }
        let (object, manifest) = suite.object().unwrap();
        assert_eq!(manifest.probes.len(), suite.programs.len());
        assert!(object.starts_with(b"\x7fELF"));
        let batches = suite.batches();
        assert!(batches.iter().all(|batch| batch.len() <= PROGRAMS_PER_TRACEPOINT));
        let mut all: Vec<usize> = batches.concat();
        all.sort();
        assert_eq!(all, (0..suite.programs.len()).collect::<Vec<_>>());
    }

    #[test]
    fn cold_helper_bases_reuse_the_empty_run_only_when_they_are_the_empty_program() {
        let suite = Suite::new();
        let empty = suite.benchmark(Measure::Empty).bench;
        let base = |measure: Measure| suite.benchmark(measure).base;
        assert!(suite.programs_equal(base(Measure::Helper("ktime_get_ns")), empty));
        assert!(!suite.programs_equal(base(Measure::MapLookup(MapKind::Hash)), empty));
        assert!(!suite.programs_equal(base(Measure::ReadUserStr(16)), empty));
        assert!(!suite.programs_equal(suite.benchmark(Measure::Helper("ktime_get_ns")).bench, empty));
    }

    #[test]
    fn bad_options_are_refused_before_touching_the_kernel() {
        let err = calibrate(&CalibrateOptions { events: 10, trials: 1 }).unwrap_err();
        assert!(err.to_string().contains("--events"), "{err}");
        let err = calibrate(&CalibrateOptions { events: 10_000, trials: 0 }).unwrap_err();
        assert!(err.to_string().contains("--trials"), "{err}");
    }
}
