//! A workload with exactly known behaviour, for end-to-end tests to probe and compare against.
//!
//! Every subcommand does a counted amount of one thing and prints what a probe should have
//! seen, so a test can assert exact numbers rather than "something happened":
//!
//! - `calls N`: calls [`ppis_workload_add`] for x in 1..=N; prints `sum_args=.. sum_rets=..`.
//! - `openat N PATH`: makes exactly N `openat` syscalls on PATH with [`MARKER_OPEN_FLAGS`].
//! - `syscalls N`: makes exactly N `getpid` syscalls.
//! - `stack-chain N`: calls `ppis_stack_outer -> ppis_stack_middle -> ppis_stack_leaf` N times,
//!   then lingers 300 ms (so a stack symboliser can read its memory maps).
//! - `getp N`: makes exactly N `getpid`, N `getppid` and N `getpgid(0)` syscalls (three
//!   tracepoints one `sys_enter_getp*` wildcard matches, and syscall ids a raw tracepoint
//!   probe can filter on).
//! - `busy MILLIS`: keeps one CPU busy in user space for MILLIS ms of wall-clock time, with no
//!   syscalls in the loop (for CPU sampling with `profile:hz:N`); prints the CPU time it got.
//! - `stack-busy MILLIS`: spins in `ppis_stack_busy` (a leaf with a frame) for MILLIS ms, so
//!   CPU sampling lands there; then lingers 300 ms like `stack-chain`.
//! - `slow-midrun SECONDS SLOW_FROM SLOW_TO`: serves a request (`ppis_serve_request`) every
//!   2 ms for SECONDS s; between SLOW_FROM and SLOW_TO s each one spins ~100x longer, in
//!   `ppis_request_slow` instead of `ppis_request_fast` (on-CPU, so a `profile` sampler sees
//!   where the time goes). Prints the requests of each phase.
//! - `clear-phases BEFORE AFTER`: makes BEFORE `getpid` syscalls, calls
//!   [`ppis_workload_add`] once (where a probe can `clear` a map), waits 2 s (clearing is
//!   asynchronous: the runtime empties the map when it reads the record), then makes AFTER
//!   `getpid` syscalls.
//! - `bytes N`: calls [`ppis_workload_bytes`] N times with [`KNOWN_BYTES`] and, alternately,
//!   an equal copy and one differing in its last byte (for `buf(ptr, N)`).
//! - `usdt N`: fires the USDT probe `ppis:fire` for value in 1..=N, with the second word of its
//!   pair 10 × value: odd values at one site ([`ppis_usdt_fire`]), even ones at the other
//!   ([`ppis_usdt_fire_swapped`], arguments in other registers); prints the sums.
//! - `usdt-guarded N`: N times reads the semaphore of the USDT probe `ppis:guarded`
//!   ([`ppis_guarded_semaphore`]) and fires the probe with value 1..=N only while it is set (as
//!   `<sys/sdt.h>`'s semaphore-guarded probes do); prints how many fired, their values' sum and
//!   the largest semaphore value seen.
//! - `usdt-guarded-watch MILLIS`: prints `watching`, then for MILLIS ms checks the semaphore of
//!   `ppis:guarded` every millisecond and fires the probe (value 1) while it is set, for a
//!   tracer that attaches to the already running process; prints how many fired, the largest
//!   semaphore value seen and the value at the end.
//! - `spin SECONDS`: for the demo; repeats calls, getpid and openat of /dev/null for a while.
//!
//! Only libc: the point is to control exactly which syscalls happen, so no helper crates.

use std::ffi::CString;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ppis_tests::MARKER_OPEN_FLAGS;

/// The function the uprobe tests attach to. `no_mangle` keeps the symbol name stable and
/// `inline(never)` plus `black_box` keep it a real, separately called function even in
/// release builds, so a uprobe on it fires once per call.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ppis_workload_add(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(2).wrapping_add(1)
}

/// The function the `buf(ptr, N)` tests attach to: `data` and `expected` each point to
/// [`BYTES_LEN`] bytes; a probe reads both and compares them.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ppis_workload_bytes(data: *const u8, expected: *const u8) -> u64 {
    std::hint::black_box(data) as u64 ^ std::hint::black_box(expected) as u64
}

/// Bytes of each buffer [`ppis_workload_bytes`] gets.
const BYTES_LEN: usize = 8;
/// The bytes `bytes N` passes as `data`: a NUL in the middle and bytes above 0x7f, which a
/// string read would cut or mangle.
const KNOWN_BYTES: [u8; BYTES_LEN] = [0x01, 0x02, 0x00, 0xfe, b'A', 0x7f, 0x80, 0xff];

/// A USDT probe site of `ppis:fire` (what `<sys/sdt.h>`'s `DTRACE_PROBE3` expands to, written
/// out since Rust has no sdt.h): a `nop` plus a `.note.stapsdt` entry naming the provider, the
/// probe, the `nop`'s address and three argument specs: `value` in a register (`8@%reg`), the
/// constant -3 (`-4@$-3`) and the second `u64` of `pair` in memory (`8@8(%reg)`). Used twice
/// with the registers swapped, so that the probe has two sites whose arguments differ.
macro_rules! usdt_fire_site {
    ($value_reg:tt, $pair_reg:tt, $value:expr, $pair:expr) => {
        std::arch::asm!(
            "990: nop",
            ".pushsection .note.stapsdt,\"\",\"note\"",
            ".balign 4",
            ".4byte 992f-991f, 994f-993f, 3",
            "991: .asciz \"stapsdt\"",
            "992: .balign 4",
            "993: .8byte 990b",
            ".8byte _.stapsdt.base",
            ".8byte 0",
            ".asciz \"ppis\"",
            ".asciz \"fire\"",
            concat!(".asciz \"8@%", $value_reg, " -4@$-3 8@8(%", $pair_reg, ")\""),
            "994: .balign 4",
            ".popsection",
            ".ifndef _.stapsdt.base",
            ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat",
            ".weak _.stapsdt.base",
            ".hidden _.stapsdt.base",
            "_.stapsdt.base: .space 1",
            ".size _.stapsdt.base, 1",
            ".popsection",
            ".endif",
            in($value_reg) $value,
            in($pair_reg) $pair,
            options(att_syntax, nostack, preserves_flags, readonly),
        )
    };
}

/// The first site of `ppis:fire`: `value` in `%rdi`, `pair` in `%rsi`.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ppis_usdt_fire(value: u64, pair: *const u64) {
    // SAFETY: a `nop` and data in other sections: no register, memory or flag changes.
    unsafe { usdt_fire_site!("rdi", "rsi", value, pair) }
}

/// The second site of `ppis:fire`, its registers swapped: `value` in `%rsi`, `pair` in `%rdi`.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ppis_usdt_fire_swapped(pair: *const u64, value: u64) {
    // SAFETY: as above.
    unsafe { usdt_fire_site!("rsi", "rdi", value, pair) }
}

/// The semaphore of `ppis:guarded` (the variable `<sys/sdt.h>` names `PROVIDER_NAME_semaphore`):
/// a 16-bit counter in the writable `.probes` section that tracers increment while they probe the
/// site; the program fires the site only while it is non-zero. `used` and `no_mangle` keep it
/// (and its name) in the binary; only the kernel writes it, from outside the program.
///
/// It sits on a page of its own: lld gives RELRO data its own writable segment, which may end in
/// the same file page the data segment starts in, and the kernel would then count the semaphore
/// in that earlier mapping (the runtime refuses such a semaphore).
#[no_mangle]
#[used]
#[link_section = ".probes"]
#[allow(non_upper_case_globals)]
pub static mut ppis_guarded_semaphore: PageAlignedSemaphore = PageAlignedSemaphore { count: 0 };

/// A USDT semaphore (`unsigned short`) at the start of a page.
#[repr(C, align(4096))]
pub struct PageAlignedSemaphore {
    count: u16,
}

/// The one site of `ppis:guarded`: `value` in `%rdi` (`8@%rdi`); its note names the semaphore
/// [`ppis_guarded_semaphore`], otherwise written out as `ppis:fire`'s (see [`usdt_fire_site`]).
#[no_mangle]
#[inline(never)]
pub extern "C" fn ppis_usdt_guarded(value: u64) {
    // SAFETY: a `nop` and data in other sections: no register, memory or flag changes.
    unsafe {
        std::arch::asm!(
            "990: nop",
            ".pushsection .note.stapsdt,\"\",\"note\"",
            ".balign 4",
            ".4byte 992f-991f, 994f-993f, 3",
            "991: .asciz \"stapsdt\"",
            "992: .balign 4",
            "993: .8byte 990b",
            ".8byte _.stapsdt.base",
            ".8byte {semaphore}",
            ".asciz \"ppis\"",
            ".asciz \"guarded\"",
            ".asciz \"8@%rdi\"",
            "994: .balign 4",
            ".popsection",
            ".ifndef _.stapsdt.base",
            ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat",
            ".weak _.stapsdt.base",
            ".hidden _.stapsdt.base",
            "_.stapsdt.base: .space 1",
            ".size _.stapsdt.base, 1",
            ".popsection",
            ".endif",
            semaphore = sym ppis_guarded_semaphore,
            in("rdi") value,
            options(att_syntax, nostack, preserves_flags, readonly),
        )
    }
}

/// The current value of [`ppis_guarded_semaphore`].
fn guarded_semaphore() -> u16 {
    // SAFETY: an aligned static only the kernel writes (through the file's mapping, never
    // concurrently with a Rust reference to it); volatile, so every check reads memory again
    // rather than a value the compiler assumed constant.
    unsafe { std::ptr::read_volatile(std::ptr::addr_of!(ppis_guarded_semaphore.count)) }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ppis-workload: {message}");
            eprintln!("usage: ppis-workload calls N | openat N PATH | syscalls N | spin SECONDS | kill N | fsync N PATH | exec N PROGRAM | connect N PORT | direct-reads N PATH | sleeps N | noop | usdt N | usdt-guarded N | usdt-guarded-watch MILLIS | bytes N | clear-phases BEFORE AFTER | stack-chain N | getp N | busy MILLIS | stack-busy MILLIS | slow-midrun SECONDS SLOW_FROM SLOW_TO");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[&str]) -> Result<(), String> {
    match args {
        ["calls", count] => {
            let (sum_args, sum_rets) = call_add(parse_count(count)?);
            println!("sum_args={sum_args} sum_rets={sum_rets}");
            Ok(())
        }
        ["openat", count, path] => {
            let count = parse_count(count)?;
            open_repeatedly(count, path)?;
            println!("openat={count}");
            Ok(())
        }
        ["syscalls", count] => {
            let count = parse_count(count)?;
            for _ in 0..count {
                // SAFETY: getpid takes no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getpid) };
            }
            println!("getpid={count}");
            Ok(())
        }
        ["spin", seconds] => {
            let seconds = parse_count(seconds)?;
            spin(Duration::from_secs(seconds));
            Ok(())
        }
        ["kill", count] => {
            let count = parse_count(count)?;
            for _ in 0..count {
                // SAFETY: signal 0 to ourselves only checks that we exist; nothing is delivered.
                unsafe { libc::kill(libc::getpid(), 0) };
            }
            println!("kill={count}");
            Ok(())
        }
        ["fsync", count, path] => fsync_repeatedly(parse_count(count)?, path),
        ["exec", count, program] => exec_repeatedly(parse_count(count)?, program),
        ["connect", count, port] => connect_repeatedly(parse_count(count)?, port),
        ["direct-reads", count, path] => direct_reads(parse_count(count)?, path),
        ["sleeps", count] => {
            let count = parse_count(count)?;
            for _ in 0..count {
                std::thread::sleep(Duration::from_millis(1));
            }
            println!("sleeps={count}");
            Ok(())
        }
        ["noop"] => Ok(()),
        ["usdt", count] => {
            let count = parse_count(count)?;
            let (mut sum_values, mut sum_seconds) = (0u64, 0u64);
            for value in 1..=count {
                let pair = [0u64, 10 * value];
                // Odd values through one site, even ones through the other.
                if value % 2 == 1 {
                    ppis_usdt_fire(value, std::hint::black_box(pair.as_ptr()));
                } else {
                    ppis_usdt_fire_swapped(std::hint::black_box(pair.as_ptr()), value);
                }
                sum_values += value;
                sum_seconds += pair[1];
            }
            println!("usdt_fires={count} sum_values={sum_values} sum_seconds={sum_seconds}");
            Ok(())
        }
        ["usdt-guarded", count] => {
            let count = parse_count(count)?;
            let (mut fired, mut sum_values, mut semaphore_seen) = (0u64, 0u64, 0u16);
            for value in 1..=count {
                let semaphore = guarded_semaphore();
                semaphore_seen = semaphore_seen.max(semaphore);
                // What a `<sys/sdt.h>` probe with a semaphore expands to: skip the site unless
                // a tracer asked for it.
                if semaphore != 0 {
                    ppis_usdt_guarded(value);
                    fired += 1;
                    sum_values += value;
                }
            }
            println!("guarded_fires={fired} guarded_sum_values={sum_values} semaphore_seen={semaphore_seen}");
            Ok(())
        }
        ["usdt-guarded-watch", millis] => {
            let watch_for = Duration::from_millis(parse_count(millis)?);
            println!("watching");
            let started = Instant::now();
            let (mut fired, mut semaphore_seen) = (0u64, 0u16);
            while started.elapsed() < watch_for {
                let semaphore = guarded_semaphore();
                semaphore_seen = semaphore_seen.max(semaphore);
                if semaphore != 0 {
                    ppis_usdt_guarded(1);
                    fired += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            println!("guarded_fires={fired} semaphore_seen={semaphore_seen} semaphore_at_end={}", guarded_semaphore());
            Ok(())
        }
        ["bytes", count] => {
            let count = parse_count(count)?;
            let copy = std::hint::black_box(KNOWN_BYTES);
            let mut other = KNOWN_BYTES;
            other[BYTES_LEN - 1] ^= 1;
            // Each call passes KNOWN_BYTES as `data`; even calls an equal copy as `expected`,
            // odd calls one that differs in its last byte.
            for i in 0..count {
                let expected = if i % 2 == 0 { &copy } else { &other };
                std::hint::black_box(ppis_workload_bytes(KNOWN_BYTES.as_ptr(), expected.as_ptr()));
            }
            println!("bytes_calls={count}");
            Ok(())
        }
        ["clear-phases", before, after] => {
            let (before, after) = (parse_count(before)?, parse_count(after)?);
            for _ in 0..before {
                // SAFETY: getpid takes no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getpid) };
            }
            std::hint::black_box(ppis_workload_add(0));
            // The runtime polls every 20 ms, but under CI's parallel tests on 2 CPUs it once
            // did not get to the clear record within 500 ms (the second phase was cleared too).
            std::thread::sleep(Duration::from_millis(2000));
            for _ in 0..after {
                // SAFETY: as above.
                unsafe { libc::syscall(libc::SYS_getpid) };
            }
            println!("getpid_before={before} getpid_after={after}");
            Ok(())
        }
        ["getp", count] => {
            let count = parse_count(count)?;
            for _ in 0..count {
                // SAFETY: getpid, getppid and getpgid(0) only read the caller's ids.
                unsafe {
                    libc::syscall(libc::SYS_getpid);
                    libc::syscall(libc::SYS_getppid);
                    libc::syscall(libc::SYS_getpgid, 0);
                }
            }
            println!("getpid={count} getppid={count} getpgid={count}");
            Ok(())
        }
        ["busy", millis] => {
            let millis = parse_count(millis)?;
            let started = Instant::now();
            let mut spins = 0u64;
            // `Instant::now` is a vDSO call, not a syscall, so the loop stays in user space.
            while started.elapsed() < Duration::from_millis(millis) {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
            // What the CPU sampler can have seen: the CPU time this (single) thread got, which
            // is less than the wall-clock time when other work competes for the CPUs.
            let mut cpu = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: `cpu` is a valid timespec for clock_gettime to fill.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut cpu) };
            let cpu_ms = cpu.tv_sec as u64 * 1000 + cpu.tv_nsec as u64 / 1_000_000;
            println!("busy_ms={millis} cpu_ms={cpu_ms}");
            Ok(())
        }
        ["stack-busy", millis] => {
            let until = Instant::now() + Duration::from_millis(parse_count(millis)?);
            let mut rounds = 0u64;
            while Instant::now() < until {
                stack_chain::busy();
                rounds += 1;
            }
            println!("stack_busy_rounds={rounds}");
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        }
        ["slow-midrun", seconds, slow_from, slow_to] => {
            let (total, from, to) = (parse_count(seconds)?, parse_count(slow_from)?, parse_count(slow_to)?);
            let started = Instant::now();
            let (mut fast, mut slow) = (0u64, 0u64);
            while started.elapsed() < Duration::from_secs(total) {
                let elapsed = started.elapsed().as_secs();
                let is_slow = (from..to).contains(&elapsed);
                slow_request::serve(is_slow);
                if is_slow {
                    slow += 1;
                } else {
                    fast += 1;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            println!("fast_requests={fast} slow_requests={slow}");
            Ok(())
        }
        ["stack-chain", count] => {
            let count = parse_count(count)?;
            for _ in 0..count {
                stack_chain::call_chain();
            }
            println!("stack_chain={count}");
            // A tracer that symbolises user stacks reads this process's memory maps while it
            // lives (ppisc polls every 20 ms); linger so that it sees them.
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        }
        ["calls-across-cpus", count] => {
            let cpus = call_add_across_cpus(parse_count(count)?)?;
            println!("cpus={cpus:?}");
            Ok(())
        }
        _ => Err(format!("unrecognised arguments {args:?}")),
    }
}

/// `slow-midrun`'s request handler: `ppis_serve_request(slow, rounds)` calls
/// `ppis_request_fast` or `ppis_request_slow`, each spinning `rounds` times in its own frame
/// (frame pointers, so user stacks name the chain).
mod slow_request {
    /// Spins of a normal request (~0.1 ms) and of a slow one (~100x).
    const FAST_ROUNDS: u64 = 200_000;
    const SLOW_ROUNDS: u64 = 20_000_000;

    #[cfg(target_arch = "x86_64")]
    mod imp {
        #[unsafe(naked)]
        #[no_mangle]
        pub extern "C" fn ppis_request_fast(rounds: u64) {
            core::arch::naked_asm!("push rbp", "mov rbp, rsp", "2:", "dec rdi", "jnz 2b", "pop rbp", "ret")
        }

        #[unsafe(naked)]
        #[no_mangle]
        pub extern "C" fn ppis_request_slow(rounds: u64) {
            core::arch::naked_asm!("push rbp", "mov rbp, rsp", "2:", "dec rdi", "jnz 2b", "pop rbp", "ret")
        }

        #[unsafe(naked)]
        #[no_mangle]
        pub extern "C" fn ppis_serve_request(slow: u64, rounds: u64) {
            core::arch::naked_asm!(
                "push rbp",
                "mov rbp, rsp",
                "test rdi, rdi",
                "mov rdi, rsi",
                "jnz 2f",
                "call {fast}",
                "jmp 3f",
                "2:",
                "call {slow}",
                "3:",
                "pop rbp",
                "ret",
                fast = sym ppis_request_fast,
                slow = sym ppis_request_slow,
            )
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    mod imp {
        #[no_mangle]
        #[inline(never)]
        pub extern "C" fn ppis_request_fast(rounds: u64) {
            let mut left = rounds;
            while std::hint::black_box(left) > 0 {
                left -= 1;
            }
        }

        #[no_mangle]
        #[inline(never)]
        pub extern "C" fn ppis_request_slow(rounds: u64) {
            let mut left = rounds;
            while std::hint::black_box(left) > 0 {
                left -= 1;
            }
        }

        #[no_mangle]
        #[inline(never)]
        pub extern "C" fn ppis_serve_request(slow: u64, rounds: u64) {
            if slow != 0 {
                ppis_request_slow(rounds)
            } else {
                ppis_request_fast(rounds)
            }
        }
    }

    pub fn serve(slow: bool) {
        let rounds = if slow { SLOW_ROUNDS } else { FAST_ROUNDS };
        imp::ppis_serve_request(u64::from(slow), rounds);
    }
}

/// `ppis_stack_outer -> ppis_stack_middle -> ppis_stack_leaf`, each a real frame: the stack
/// tests probe the leaf and expect the three names in that order. The kernel's user stack
/// walker follows frame pointers, and Rust does not keep them by default, so on x86-64 the
/// three functions are written in assembly that builds a frame (`push rbp; mov rbp, rsp`)
/// whatever the crate's compile flags; `no_mangle` keeps their symbol names stable.
mod stack_chain {
    #[cfg(target_arch = "x86_64")]
    mod imp {
        #[unsafe(naked)]
        #[no_mangle]
        pub extern "C" fn ppis_stack_leaf() {
            core::arch::naked_asm!("push rbp", "mov rbp, rsp", "nop", "pop rbp", "ret")
        }

        #[unsafe(naked)]
        #[no_mangle]
        pub extern "C" fn ppis_stack_middle() {
            core::arch::naked_asm!("push rbp", "mov rbp, rsp", "call {leaf}", "pop rbp", "ret", leaf = sym ppis_stack_leaf)
        }

        /// Counts `rounds` (at least 1) down to zero inside its own frame.
        #[unsafe(naked)]
        #[no_mangle]
        pub extern "C" fn ppis_stack_busy(rounds: u64) {
            core::arch::naked_asm!("push rbp", "mov rbp, rsp", "2:", "dec rdi", "jnz 2b", "pop rbp", "ret")
        }

        #[unsafe(naked)]
        #[no_mangle]
        pub extern "C" fn ppis_stack_outer() {
            core::arch::naked_asm!("push rbp", "mov rbp, rsp", "call {middle}", "pop rbp", "ret", middle = sym ppis_stack_middle)
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    mod imp {
        #[no_mangle]
        #[inline(never)]
        pub extern "C" fn ppis_stack_leaf() {
            std::hint::black_box(());
        }

        #[no_mangle]
        #[inline(never)]
        pub extern "C" fn ppis_stack_middle() {
            ppis_stack_leaf();
            std::hint::black_box(());
        }

        #[no_mangle]
        #[inline(never)]
        pub extern "C" fn ppis_stack_outer() {
            ppis_stack_middle();
            std::hint::black_box(());
        }

        #[no_mangle]
        #[inline(never)]
        pub extern "C" fn ppis_stack_busy(rounds: u64) {
            let mut left = rounds;
            while std::hint::black_box(left) > 0 {
                left -= 1;
            }
        }
    }

    /// One call of the chain (one hit of a probe on the leaf).
    pub fn call_chain() {
        imp::ppis_stack_outer();
    }

    /// About a millisecond of spinning inside `ppis_stack_busy`.
    pub fn busy() {
        imp::ppis_stack_busy(1_000_000);
    }
}

fn parse_count(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("{text:?} is not a non-negative integer"))
}

/// Calls the probed function for 1..=count; returns (sum of arguments, sum of results).
fn call_add(count: u64) -> (u64, u64) {
    let mut sum_args = 0u64;
    let mut sum_rets = 0u64;
    for x in 1..=count {
        sum_args = sum_args.wrapping_add(x);
        sum_rets = sum_rets.wrapping_add(ppis_workload_add(x));
    }
    (sum_args, sum_rets)
}

/// Calls the probed function for 1..=count like `calls`, moving the thread to the next CPU it
/// may run on after every 4 calls, so that each residue of `x % 4` is seen on every CPU (the
/// per-CPU map tests sum the CPUs' values). Returns the CPUs it ran on.
fn call_add_across_cpus(count: u64) -> Result<Vec<usize>, String> {
    // SAFETY: `cpu_set_t` is plain bits; the kernel fills it for this thread.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) } != 0 {
        return Err(format!("sched_getaffinity: {}", std::io::Error::last_os_error()));
    }
    let cpus: Vec<usize> =
        (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &allowed) }).collect();
    let mut used = Vec::new();
    for x in 1..=count {
        let cpu = cpus[((x - 1) / 4) as usize % cpus.len()];
        // SAFETY: as above; a set holding one allowed CPU.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu, &mut one) };
        if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) } != 0 {
            return Err(format!("sched_setaffinity to CPU {cpu}: {}", std::io::Error::last_os_error()));
        }
        if !used.contains(&cpu) {
            used.push(cpu);
        }
        ppis_workload_add(x);
    }
    Ok(used)
}

/// Exactly `count` raw `openat` syscalls (plus one `close` per successful open). Goes to libc
/// directly because `std::fs::File::open` may add syscalls (statx, fcntl) we do not control.
/// A failed open still counts as a syscall made, but it is reported so the test notices.
fn open_repeatedly(count: u64, path: &str) -> Result<(), String> {
    let c_path = CString::new(path).map_err(|_| format!("path {path:?} contains a NUL byte"))?;
    let mut failures = 0u64;
    for _ in 0..count {
        // SAFETY: c_path is a valid NUL-terminated string that outlives the call.
        let fd = unsafe { libc::openat(libc::AT_FDCWD, c_path.as_ptr(), MARKER_OPEN_FLAGS) };
        if fd < 0 {
            failures += 1;
        } else {
            // SAFETY: fd was just returned by openat and is closed exactly once.
            unsafe { libc::close(fd) };
        }
    }
    if failures > 0 {
        return Err(format!("{failures} of {count} opens of {path} failed"));
    }
    Ok(())
}

/// Keeps every kind of event flowing for `duration`, at a pace that leaves the machine usable:
/// per round one call, one getpid, one openat and close, one 1 ms sleep (at most 1,000 rounds a
/// second on an idle machine), so a demo probe can declare modest rates truthfully.
fn spin(duration: Duration) {
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed() < duration {
        call_add(1);
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_getpid) };
        // /dev/null always exists; an error here would only mean one fewer event.
        let _ = open_repeatedly(1, "/dev/null");
        std::thread::sleep(Duration::from_millis(1));
        rounds += 1;
    }
    println!("rounds={rounds}");
}

/// Exactly `count` calls of libc's `fsync` on one file (opened once, before the first).
fn fsync_repeatedly(count: u64, path: &str) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    for _ in 0..count {
        // SAFETY: the descriptor belongs to `file`, open for the whole loop.
        if unsafe { libc::fsync(file.as_raw_fd()) } != 0 {
            return Err(format!("fsync of {path} failed: {}", std::io::Error::last_os_error()));
        }
    }
    println!("fsync={count}");
    Ok(())
}

/// Runs `program noop` to completion `count` times, one after another: exactly `count` execs.
fn exec_repeatedly(count: u64, program: &str) -> Result<(), String> {
    for _ in 0..count {
        let status = std::process::Command::new(program)
            .arg("noop")
            .status()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if !status.success() {
            return Err(format!("{program} noop failed: {status}"));
        }
    }
    println!("exec={count}");
    Ok(())
}

/// Exactly `count` TCP connections to 127.0.0.1:`port` (a listener the caller runs).
fn connect_repeatedly(count: u64, port: &str) -> Result<(), String> {
    let port: u16 = port.parse().map_err(|_| format!("{port:?} is not a port"))?;
    for _ in 0..count {
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect to port {port}: {e}"))?;
    }
    println!("connect={count}");
    Ok(())
}

/// Exactly `count` 4 KiB reads with O_DIRECT at distinct offsets of `path` (which must hold at
/// least `count` × 4 KiB): each bypasses the page cache, so each is one block request.
fn direct_reads(count: u64, path: &str) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    use std::os::unix::fs::OpenOptionsExt;
    const BLOCK: usize = 4096;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .map_err(|e| format!("cannot open {path} with O_DIRECT: {e}"))?;
    // O_DIRECT needs a buffer aligned to the logical block size.
    let layout = std::alloc::Layout::from_size_align(BLOCK, BLOCK).expect("a valid layout");
    // SAFETY: the layout has a non-zero size; the buffer is freed below.
    let buffer = unsafe { std::alloc::alloc_zeroed(layout) };
    if buffer.is_null() {
        return Err("out of memory".into());
    }
    // SAFETY: `buffer` points to BLOCK writable bytes that nothing else uses.
    let slice = unsafe { std::slice::from_raw_parts_mut(buffer, BLOCK) };
    let mut result = Ok(());
    for i in 0..count {
        match file.read_at(slice, i * BLOCK as u64) {
            Ok(n) if n == BLOCK => {}
            Ok(n) => {
                result = Err(format!("short read of {n} bytes at block {i} of {path}"));
                break;
            }
            Err(e) => {
                result = Err(format!("read of block {i} of {path}: {e}"));
                break;
            }
        }
    }
    // SAFETY: allocated above with the same layout, freed once.
    unsafe { std::alloc::dealloc(buffer, layout) };
    result?;
    println!("direct_reads={count}");
    Ok(())
}
