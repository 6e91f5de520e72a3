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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ppis-workload: {message}");
            eprintln!("usage: ppis-workload calls N | openat N PATH | syscalls N | spin SECONDS | kill N | fsync N PATH | exec N PROGRAM | connect N PORT | direct-reads N PATH | sleeps N | noop | stack-chain N | getp N | busy MILLIS | stack-busy MILLIS | slow-midrun SECONDS SLOW_FROM SLOW_TO");
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
