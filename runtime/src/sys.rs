//! The runtime's own system calls, kept in one place: raw `bpf(2)` map reads (aya's typed
//! maps need key and value sizes at compile time, ours are only known from the manifest),
//! and the fork/exec/wait plumbing for a command that must stay paused until probes attach;
//! the uprobe perf event and `BPF_PERF_EVENT` link of USDT sites guarded by a semaphore (aya
//! cannot pass the semaphore's offset to the kernel).
//!
//! Boundary: thin, safe wrappers; every `unsafe` block of the runtime lives here.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `bpf_attr` as the map element commands read it (`BPF_MAP_LOOKUP_ELEM`,
/// `BPF_MAP_GET_NEXT_KEY`): `value` doubles as `next_key`.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _padding: u32,
    key: u64,
    value: u64,
    flags: u64,
}

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

fn bpf_map_command(command: libc::c_long, attr: &mut MapElemAttr) -> io::Result<()> {
    // SAFETY: `attr` is a valid, fully initialised bpf_attr prefix of the size we pass, and the
    // key/value pointers in it point into buffers the callers keep alive and sized to the map.
    let result = unsafe {
        libc::syscall(libc::SYS_bpf, command, attr as *mut MapElemAttr, std::mem::size_of::<MapElemAttr>() as u32)
    };
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The key after `key` (the first key when `key` is `None`) into `next_key`; `false` once
/// there are no more keys. `next_key` must be exactly the map's key size.
pub(crate) fn map_next_key(map: BorrowedFd<'_>, key: Option<&[u8]>, next_key: &mut [u8]) -> io::Result<bool> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.map_or(0, |key| key.as_ptr() as u64),
        value: next_key.as_mut_ptr() as u64,
        ..MapElemAttr::default()
    };
    match bpf_map_command(BPF_MAP_GET_NEXT_KEY, &mut attr) {
        Ok(()) => Ok(true),
        Err(error) if error.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(error) => Err(error),
    }
}

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;

/// Sets the value at `key` (for per-CPU maps: `value` holds one 8-byte-aligned slot per
/// possible CPU), creating or replacing it.
pub(crate) fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        ..MapElemAttr::default()
    };
    bpf_map_command(BPF_MAP_UPDATE_ELEM, &mut attr)
}

/// Deletes `key`; a key that is already gone is not an error.
pub(crate) fn map_delete(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr { map_fd: map.as_raw_fd() as u32, key: key.as_ptr() as u64, ..MapElemAttr::default() };
    match bpf_map_command(BPF_MAP_DELETE_ELEM, &mut attr) {
        Err(error) if error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

/// Reads the value at `key` into `value` (for per-CPU maps: one 8-byte-aligned slot per
/// possible CPU); `false` when the key vanished.
pub(crate) fn map_lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..MapElemAttr::default()
    };
    match bpf_map_command(BPF_MAP_LOOKUP_ELEM, &mut attr) {
        Ok(()) => Ok(true),
        Err(error) if error.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(error) => Err(error),
    }
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Writes all of `bytes`, retrying on EINTR.
pub(crate) fn write_all(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<()> {
    let mut written = 0;
    while written < bytes.len() {
        // SAFETY: the pointer and length describe the unwritten tail of `bytes`.
        let result = unsafe { libc::write(fd.as_raw_fd(), bytes[written..].as_ptr().cast(), bytes.len() - written) };
        if result < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        } else {
            written += result as usize;
        }
    }
    Ok(())
}

/// Reads until EOF or `buffer` is full, retrying on EINTR; returns the byte count.
pub(crate) fn read_to_eof(fd: BorrowedFd<'_>, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buffer`.
        let result = unsafe { libc::read(fd.as_raw_fd(), buffer[filled..].as_mut_ptr().cast(), buffer.len() - filled) };
        match result {
            0 => break,
            n if n > 0 => filled += n as usize,
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Ok(filled)
}

/// The byte a released child reads from its gate pipe before it executes the command.
pub(crate) const RELEASE_BYTE: u8 = b'g';
/// The byte a paused child writes on its exec-error pipe once it waits at the gate.
pub(crate) const READY_BYTE: u8 = b'r';
/// The byte that tells a paused child to exit without executing anything.
pub(crate) const ABORT_BYTE: u8 = b'x';
/// Highest descriptor number a paused child looks at when closing inherited descriptors.
const MAX_SCANNED_FD: libc::c_int = 1 << 16;

/// Forks a child that waits on `gate` for [`RELEASE_BYTE`] and then executes `program`
/// with `argv`. On any other byte, or if the gate closes, the child exits with status 127
/// without executing anything. If exec fails the child writes its errno to `exec_error`.
///
/// Everything the child needs is prepared before the fork: after fork in a threaded process
/// only async-signal-safe calls are allowed, so the child only reads, writes, execs and exits.
pub(crate) fn fork_gated_exec(
    program: &CString,
    argv: &[CString],
    gate: &OwnedFd,
    exec_error: &OwnedFd,
) -> io::Result<libc::pid_t> {
    let mut argv_pointers: Vec<*const libc::c_char> = argv.iter().map(|arg| arg.as_ptr()).collect();
    argv_pointers.push(std::ptr::null());
    let (gate_fd, error_fd) = (gate.as_raw_fd(), exec_error.as_raw_fd());
    let mut open_files_limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `open_files_limit` is a valid out-pointer.
    let fd_scan_end = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut open_files_limit) } == 0 {
        open_files_limit.rlim_cur.min(MAX_SCANNED_FD as libc::rlim_t) as libc::c_int
    } else {
        MAX_SCANNED_FD
    };
    // SAFETY: plain fork; the child branch below only makes async-signal-safe calls.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(pid);
    }
    // Child. SAFETY (whole block): raw fcntl/close/read/write/execv/_exit on descriptors and C
    // strings that stay valid because the child never returns from this function.
    unsafe {
        // Close now what exec would close anyway: other threads' close-on-exec descriptors,
        // such as another paused child's pipe ends, must not stay open while this child waits,
        // or that child's parent never sees the EOF it waits for.
        for fd in 3..fd_scan_end {
            if fd != gate_fd && fd != error_fd {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
                    libc::close(fd);
                }
            }
        }
        // Tell the parent the scan is over: from here on the child makes no system call
        // until it is released, so probes attached now see only the command's own calls.
        let ready = READY_BYTE;
        libc::write(error_fd, (&ready as *const u8).cast(), 1);
        let mut byte = 0u8;
        loop {
            let result = libc::read(gate_fd, (&mut byte as *mut u8).cast(), 1);
            if result == 1 && byte == RELEASE_BYTE {
                break;
            }
            if result < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            libc::_exit(127);
        }
        libc::execv(program.as_ptr(), argv_pointers.as_ptr());
        let errno = (*libc::__errno_location()).to_ne_bytes();
        libc::write(error_fd, errno.as_ptr().cast(), errno.len());
        libc::_exit(127)
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    fn from_wait_status(status: libc::c_int) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signal(libc::WTERMSIG(status))
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(status))
        }
    }
}

/// Reaps `pid` if it has exited: `None` while it still runs (with `block`: waits for it).
pub(crate) fn wait_child(pid: libc::pid_t, block: bool) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer.
        let result = unsafe { libc::waitpid(pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
        if result == pid {
            return Ok(Some(ExitStatus::from_wait_status(status)));
        }
        if result == 0 {
            return Ok(None);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Sends `signal` to `pid`.
pub(crate) fn kill(pid: libc::pid_t, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The size of a memory page (how the kernel maps files).
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    // 4096 if the query fails: every architecture ppis runs on has at least that.
    u64::try_from(size).ok().filter(|&size| size > 0).unwrap_or(4096)
}

/// The effective user id.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

// ---------------------------------------------------------------------------------------------
// Raw programs for `ppis_runtime::bench` (cost calibration): map creation, program loading from
// bytecode, `BPF_PROG_TEST_RUN`, raw tracepoint and perf event attachment, run statistics.

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;

/// `bpf_attr` is a union; every command's part fits in this many bytes, zero-filled (the
/// kernel insists that bytes past the command's part are zero).
const BPF_ATTR_BYTES: usize = 128;

/// A zeroed `bpf_attr`, filled field by field at the kernel ABI's offsets.
struct BpfAttr([u8; BPF_ATTR_BYTES]);

impl BpfAttr {
    fn new() -> BpfAttr {
        BpfAttr([0; BPF_ATTR_BYTES])
    }
    fn u32_at(mut self, offset: usize, value: u32) -> BpfAttr {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }
    fn u64_at(mut self, offset: usize, value: u64) -> BpfAttr {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }
    fn read_u32(&self, offset: usize) -> u32 {
        u32::from_ne_bytes(self.0[offset..offset + 4].try_into().expect("4 bytes"))
    }
}

/// `bpf(command, attr)`; the result (a new descriptor for the commands that create one).
fn bpf(command: libc::c_long, attr: &mut BpfAttr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a zero-filled bpf_attr of the size passed; every pointer stored in it
    // points into a buffer the caller keeps alive (and sized as stated) for this call.
    let result = unsafe { libc::syscall(libc::SYS_bpf, command, attr.0.as_mut_ptr(), BPF_ATTR_BYTES as libc::c_uint) };
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

fn owned_fd(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this new descriptor, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

/// `BPF_MAP_CREATE` of `map_type` (kernel `enum bpf_map_type`).
pub(crate) fn map_create(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> io::Result<OwnedFd> {
    let mut attr = BpfAttr::new().u32_at(0, map_type).u32_at(4, key_size).u32_at(8, value_size).u32_at(12, max_entries);
    bpf(BPF_MAP_CREATE, &mut attr).map(owned_fd)
}

/// `BPF_PROG_LOAD` of `prog_type` (kernel `enum bpf_prog_type`) from little-endian instruction
/// bytes, GPL-licensed (some helpers need it). On refusal the verifier's log is in the error.
pub(crate) fn prog_load(prog_type: u32, insns: &[u8], log: &mut [u8]) -> io::Result<OwnedFd> {
    let license = c"GPL";
    let mut attr = BpfAttr::new()
        .u32_at(0, prog_type)
        .u32_at(4, (insns.len() / 8) as u32)
        .u64_at(8, insns.as_ptr() as u64)
        .u64_at(16, license.as_ptr() as u64)
        .u32_at(24, u32::from(!log.is_empty()))
        .u32_at(28, log.len() as u32)
        .u64_at(32, log.as_mut_ptr() as u64);
    bpf(BPF_PROG_LOAD, &mut attr).map(owned_fd)
}

/// One `BPF_PROG_TEST_RUN` of `prog` with `ctx` as its context; the program's return value.
pub(crate) fn prog_test_run(prog: BorrowedFd<'_>, ctx: &[u8]) -> io::Result<u32> {
    // `test`: prog_fd 0, retval 4, data 8..32, repeat 32, duration 36, ctx_size_in 40, ctx_in 48.
    let mut attr = BpfAttr::new()
        .u32_at(0, prog.as_raw_fd() as u32)
        .u32_at(40, ctx.len() as u32)
        .u64_at(48, if ctx.is_empty() { 0 } else { ctx.as_ptr() as u64 });
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok(attr.read_u32(4))
}

/// `BPF_RAW_TRACEPOINT_OPEN`: attaches `prog` to raw tracepoint `name` until the returned
/// descriptor is closed.
pub(crate) fn raw_tracepoint_open(name: &std::ffi::CStr, prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut attr = BpfAttr::new().u64_at(0, name.as_ptr() as u64).u32_at(8, prog.as_raw_fd() as u32);
    bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr).map(owned_fd)
}

/// Byte offsets of `run_time_ns` and `run_cnt` in `struct bpf_prog_info` (stable uapi).
const PROG_INFO_RUN_TIME_NS: usize = 192;
const PROG_INFO_RUN_CNT: usize = 200;
const PROG_INFO_BYTES: usize = 256;

/// The kernel's `(run_time_ns, run_cnt)` of `prog` (counted while statistics are enabled).
pub(crate) fn prog_run_stats(prog: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let mut info = [0u8; PROG_INFO_BYTES];
    let mut attr = BpfAttr::new()
        .u32_at(0, prog.as_raw_fd() as u32)
        .u32_at(4, PROG_INFO_BYTES as u32)
        .u64_at(8, info.as_mut_ptr() as u64);
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    let word = |offset: usize| u64::from_ne_bytes(info[offset..offset + 8].try_into().expect("8 bytes"));
    Ok((word(PROG_INFO_RUN_TIME_NS), word(PROG_INFO_RUN_CNT)))
}

/// `struct perf_event_attr` (version 8 layout, 136 bytes) as far as used here.
const PERF_ATTR_BYTES: usize = 136;
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
/// `disabled` (bit 0) in the flags word.
const PERF_ATTR_DISABLED: u64 = 1;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

/// A software `cpu-clock` perf event on the calling thread (any CPU) that overflows every
/// `period_ns` of its CPU time, created disabled.
pub(crate) fn perf_event_open_thread_cpu_clock(period_ns: u64) -> io::Result<OwnedFd> {
    open_cpu_clock(period_ns, 0, -1)
}

/// `perf_event_open` of a disabled software `cpu-clock` event overflowing every `period_ns`,
/// for task `pid` (0: the caller, -1: any) on `cpu` (-1: any).
fn open_cpu_clock(period_ns: u64, pid: libc::pid_t, cpu: libc::c_int) -> io::Result<OwnedFd> {
    let mut attr = [0u8; PERF_ATTR_BYTES];
    attr[0..4].copy_from_slice(&PERF_TYPE_SOFTWARE.to_ne_bytes());
    attr[4..8].copy_from_slice(&(PERF_ATTR_BYTES as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&PERF_COUNT_SW_CPU_CLOCK.to_ne_bytes());
    attr[16..24].copy_from_slice(&period_ns.to_ne_bytes());
    attr[40..48].copy_from_slice(&PERF_ATTR_DISABLED.to_ne_bytes());
    // SAFETY: `attr` is a zero-filled perf_event_attr of the size it declares.
    let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), pid, cpu, -1, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned_fd(fd))
}

/// A software `cpu-clock` perf event on CPU `cpu` (any task, idle included) that overflows
/// every `period_ns`, created disabled: what `profile` and `interval` probes run on.
pub(crate) fn perf_event_open_cpu_clock_on_cpu(cpu: u32, period_ns: u64) -> io::Result<OwnedFd> {
    open_cpu_clock(period_ns, -1, cpu as libc::c_int)
}

/// Runs `prog` on every overflow of `event`.
pub(crate) fn perf_event_set_bpf(event: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: the ioctl takes the program descriptor by value.
    if unsafe { libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Enables or disables `event`.
pub(crate) fn perf_event_enable(event: BorrowedFd<'_>, enable: bool) -> io::Result<()> {
    let request = if enable { PERF_EVENT_IOC_ENABLE } else { PERF_EVENT_IOC_DISABLE };
    // SAFETY: enable/disable take no argument.
    if unsafe { libc::ioctl(event.as_raw_fd(), request, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `PERF_FLAG_FD_CLOEXEC`: the event's descriptor is not inherited by executed commands.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// A uprobe perf event on the kernel's `uprobe` PMU (type `pmu_type`, from sysfs) at file
/// offset `offset` of the file at `path`, for every process (pid -1 on CPU 0, as aya and libbpf
/// open uprobes), created enabled. `config` carries the PMU's format fields: the retprobe bit
/// and the reference counter (USDT semaphore) offset, which the kernel increments in every
/// process mapping the file while the event exists.
pub(crate) fn perf_event_open_uprobe(
    pmu_type: u32,
    path: &std::ffi::CStr,
    offset: u64,
    config: u64,
) -> io::Result<OwnedFd> {
    let mut attr = [0u8; PERF_ATTR_BYTES];
    attr[0..4].copy_from_slice(&pmu_type.to_ne_bytes());
    attr[4..8].copy_from_slice(&(PERF_ATTR_BYTES as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&config.to_ne_bytes());
    // `config1` (offset 56) points to the path, `config2` (offset 64) is the file offset.
    attr[56..64].copy_from_slice(&(path.as_ptr() as u64).to_ne_bytes());
    attr[64..72].copy_from_slice(&offset.to_ne_bytes());
    // SAFETY: `attr` is a zero-filled perf_event_attr of the size it declares; the path it
    // points to outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), -1, 0, -1, PERF_FLAG_FD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned_fd(fd))
}

const BPF_LINK_CREATE: libc::c_long = 28;
/// `BPF_PERF_EVENT` in `enum bpf_attach_type`.
const BPF_PERF_EVENT: u32 = 41;

/// `BPF_LINK_CREATE` of a `BPF_PERF_EVENT` link: runs `prog` on every hit of the perf event
/// `event` until the returned link descriptor is closed (the link holds its own reference to
/// the event).
pub(crate) fn bpf_link_create_perf_event(prog: BorrowedFd<'_>, event: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // `link_create`: prog_fd 0, target_fd 4, attach_type 8, flags 12, perf_event.bpf_cookie 16.
    let mut attr =
        BpfAttr::new().u32_at(0, prog.as_raw_fd() as u32).u32_at(4, event.as_raw_fd() as u32).u32_at(8, BPF_PERF_EVENT);
    bpf(BPF_LINK_CREATE, &mut attr).map(owned_fd)
}

/// A ring buffer map's consumer position, mapped so user space can free what was written
/// (nothing else reads the records the benchmarks write).
pub(crate) struct RingbufPositions {
    consumer: *mut u64,
    producer: *const u64,
    page: usize,
}

impl RingbufPositions {
    /// Maps the consumer page (read-write) and the producer page (read-only) of `ringbuf`.
    pub(crate) fn map(ringbuf: BorrowedFd<'_>) -> io::Result<RingbufPositions> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let map = |prot: libc::c_int, offset: usize| {
            // SAFETY: a fresh shared mapping of one page of the ring buffer's descriptor.
            let at = unsafe {
                libc::mmap(std::ptr::null_mut(), page, prot, libc::MAP_SHARED, ringbuf.as_raw_fd(), offset as i64)
            };
            if at == libc::MAP_FAILED {
                Err(io::Error::last_os_error())
            } else {
                Ok(at)
            }
        };
        let consumer = map(libc::PROT_READ | libc::PROT_WRITE, 0)?.cast::<u64>();
        let producer = match map(libc::PROT_READ, page) {
            Ok(at) => at.cast::<u64>().cast_const(),
            Err(error) => {
                // SAFETY: unmaps the page mapped just above.
                unsafe { libc::munmap(consumer.cast(), page) };
                return Err(error);
            }
        };
        Ok(RingbufPositions { consumer, producer, page })
    }

    /// Marks every record written so far as consumed.
    pub(crate) fn consume_all(&self) {
        // SAFETY: both pointers are live one-page mappings (until drop); the positions are
        // 8-byte words the kernel reads and writes atomically.
        unsafe {
            let written = std::ptr::read_volatile(self.producer);
            std::ptr::write_volatile(self.consumer, written);
        }
    }
}

impl Drop for RingbufPositions {
    fn drop(&mut self) {
        // SAFETY: unmaps the two pages mapped in `map`, never used after this.
        unsafe {
            libc::munmap(self.consumer.cast(), self.page);
            libc::munmap(self.producer.cast_mut().cast(), self.page);
        }
    }
}
