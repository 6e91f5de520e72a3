//! The runtime's own system calls, kept in one place: raw `bpf(2)` map reads (aya's typed
//! maps need key and value sizes at compile time, ours are only known from the manifest),
//! and the fork/exec/wait plumbing for a command that must stay paused until probes attach.
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

/// The effective user id.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}
