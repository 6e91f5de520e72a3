//! A command started paused (`ppisc run -c CMD`): forked at once so its pid is known, but held
//! before `exec` until the probes are attached, so not one of its events is missed.
//!
//! Why not `std::process::Command` with a blocking `pre_exec`: `spawn` itself waits until the
//! child has executed, so the parent would block with it. The child is forked by hand instead
//! (see `sys::fork_gated_exec`) and waits on a pipe the parent writes to on release.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::sys::{self, ExitStatus};
use crate::RuntimeError;

/// A forked child waiting to execute its command.
#[derive(Debug)]
pub struct PausedChild {
    pid: libc::pid_t,
    command: String,
    /// Write end of the gate pipe; `None` once released. Dropping the child unreleased
    /// makes it exit without running anything.
    gate: Option<OwnedFd>,
    /// Read end of the pipe the child reports a failed `exec` on.
    exec_error: Option<OwnedFd>,
    exit: Option<ExitStatus>,
}

impl PausedChild {
    /// Forks a child for `argv` (program, then arguments) that waits before executing it.
    /// The program is looked up in `PATH` now, so a typo fails here, before any probe loads.
    pub fn spawn(argv: &[String]) -> Result<PausedChild, RuntimeError> {
        let Some(program) = argv.first() else {
            return Err(RuntimeError::Child("no command given".to_string()));
        };
        let command = argv.join(" ");
        let path = find_program(program, std::env::var_os("PATH").as_deref())
            .ok_or_else(|| RuntimeError::Child(format!("command not found: {program}")))?;
        let to_c_string = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| RuntimeError::Child(format!("command contains a NUL byte: {command}")))
        };
        let c_path = to_c_string(path.as_os_str().as_bytes())?;
        let c_argv = argv.iter().map(|arg| to_c_string(arg.as_bytes())).collect::<Result<Vec<_>, _>>()?;
        let child_error = |error: std::io::Error| RuntimeError::Child(format!("cannot start {command}: {error}"));
        let (gate_read, gate_write) = sys::cloexec_pipe().map_err(child_error)?;
        let (error_read, error_write) = sys::cloexec_pipe().map_err(child_error)?;
        let pid = sys::fork_gated_exec(&c_path, &c_argv, &gate_read, &error_write).map_err(child_error)?;
        // The parent's copies of the child's ends must close, or EOF never comes.
        drop((gate_read, error_write));
        let mut child = PausedChild {
            pid,
            command: command.clone(),
            gate: Some(gate_write),
            exec_error: Some(error_read),
            exit: None,
        };
        // Wait until the child sits at its gate, so that its start-up system calls (closing
        // inherited descriptors) are over before any probe is attached.
        let mut ready = [0u8; 1];
        let exec_error = child.exec_error.as_ref().expect("just set");
        let received = sys::read_to_eof(exec_error.as_fd(), &mut ready).map_err(child_error)?;
        if received != 1 || ready[0] != sys::READY_BYTE {
            let _ = child.wait();
            return Err(RuntimeError::Child(format!(
                "cannot start {}: the child ended before it was ready",
                child.command
            )));
        }
        Ok(child)
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Lets the child execute its command, and reports whether the exec worked.
    pub fn release(&mut self) -> Result<(), RuntimeError> {
        let Some(gate) = self.gate.take() else { return Ok(()) };
        let child_error =
            |error: std::io::Error| RuntimeError::Child(format!("cannot start {}: {error}", self.command));
        sys::write_all(gate.as_fd(), &[sys::RELEASE_BYTE]).map_err(child_error)?;
        drop(gate);
        let Some(exec_error) = self.exec_error.take() else { return Ok(()) };
        // The pipe closes on a successful exec (close-on-exec) or carries the exec errno.
        let mut errno = [0u8; 4];
        let received = sys::read_to_eof(exec_error.as_fd(), &mut errno).map_err(child_error)?;
        if received == errno.len() {
            self.wait()?;
            let error = std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno));
            return Err(RuntimeError::Child(format!("cannot run {}: {error}", self.command)));
        }
        Ok(())
    }

    /// The exit status if the child has ended, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, RuntimeError> {
        if self.exit.is_none() {
            self.exit = sys::wait_child(self.pid, false)
                .map_err(|error| RuntimeError::Child(format!("cannot wait for {}: {error}", self.command)))?;
        }
        Ok(self.exit)
    }

    /// Waits for the child to end.
    pub fn wait(&mut self) -> Result<ExitStatus, RuntimeError> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let exit = sys::wait_child(self.pid, true)
            .map_err(|error| RuntimeError::Child(format!("cannot wait for {}: {error}", self.command)))?
            .ok_or_else(|| RuntimeError::Child(format!("{} did not end", self.command)))?;
        self.exit = Some(exit);
        Ok(exit)
    }

    /// Passes `signal` on to a running child (e.g. the SIGINT that ends a run).
    pub fn signal(&self, signal: i32) -> Result<(), RuntimeError> {
        if self.exit.is_some() {
            return Ok(());
        }
        sys::kill(self.pid, signal)
            .map_err(|error| RuntimeError::Child(format!("cannot signal {}: {error}", self.command)))
    }
}

impl Drop for PausedChild {
    /// An unreleased child is told to exit without running the command, and reaped; a
    /// released one is reaped if it has already ended. A still-running one is left alone
    /// (it is the user's program).
    fn drop(&mut self) {
        match self.gate.take() {
            Some(gate) => {
                // An explicit abort, not just the EOF of closing: a sibling forked meanwhile
                // may briefly hold a copy of the write end, which would delay the EOF.
                let _ = sys::write_all(gate.as_fd(), &[sys::ABORT_BYTE]);
                drop(gate);
                let _ = self.wait();
            }
            None => {
                let _ = self.try_wait();
            }
        }
    }
}

/// The file `program` names: itself when it contains a slash, else the first executable
/// file of that name in `search_path`.
fn find_program(program: &str, search_path: Option<&OsStr>) -> Option<PathBuf> {
    let is_executable = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        path.metadata().map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0).unwrap_or(false)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    if program.is_empty() {
        return None;
    }
    std::env::split_paths(search_path?).map(|dir| dir.join(program)).find(|path| is_executable(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| word.to_string()).collect()
    }

    fn scratch_file(test_name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("ppis-child-{test_name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn child_runs_only_after_release_and_reports_its_exit_code() {
        let marker = scratch_file("release");
        let script = format!("echo ran > {}; exit 3", marker.display());
        let mut child = PausedChild::spawn(&argv(&["sh", "-c", &script])).unwrap();
        assert!(child.pid() > 0);
        std::thread::sleep(Duration::from_millis(200));
        assert!(!marker.exists(), "the command ran before release");
        assert_eq!(child.try_wait().unwrap(), None, "the paused child ended on its own");
        child.release().unwrap();
        assert_eq!(child.wait().unwrap(), ExitStatus::Code(3));
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
        std::fs::remove_file(&marker).unwrap();
    }

    #[test]
    fn dropping_an_unreleased_child_never_runs_the_command() {
        let marker = scratch_file("dropped");
        let script = format!("echo ran > {}", marker.display());
        let child = PausedChild::spawn(&argv(&["sh", "-c", &script])).unwrap();
        let pid = child.pid() as libc::pid_t;
        drop(child);
        // Reaped by drop: the pid no longer names our child.
        assert!(sys::wait_child(pid, false).is_err());
        assert!(!marker.exists());
    }

    #[test]
    fn missing_command_fails_before_forking() {
        let error = PausedChild::spawn(&argv(&["ppis-no-such-command-xyz"])).unwrap_err();
        assert_eq!(error.to_string(), "command not found: ppis-no-such-command-xyz");
        assert_eq!(PausedChild::spawn(&[]).unwrap_err().to_string(), "no command given");
    }

    #[test]
    fn exec_failure_is_reported_on_release() {
        // Executable bit but not a valid program: found, forked, and exec fails with ENOEXEC.
        let fake = scratch_file("fake-exe");
        std::fs::write(&fake, [0u8, 1, 2, 3]).unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut child = PausedChild::spawn(&[fake.display().to_string()]).unwrap();
        let error = child.release().unwrap_err().to_string();
        std::fs::remove_file(&fake).unwrap();
        assert!(error.starts_with(&format!("cannot run {}: Exec format error", fake.display())), "{error}");
    }

    #[test]
    fn signals_reach_the_released_child() {
        let mut child = PausedChild::spawn(&argv(&["sleep", "30"])).unwrap();
        child.release().unwrap();
        let started = Instant::now();
        child.signal(libc::SIGTERM).unwrap();
        assert_eq!(child.wait().unwrap(), ExitStatus::Signal(libc::SIGTERM));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn finds_programs_in_path() {
        let search_path = std::ffi::OsString::from("/nonexistent:/bin:/usr/bin");
        assert!(find_program("sh", Some(&search_path)).is_some());
        assert_eq!(find_program("sh", None), None);
        assert_eq!(find_program("/bin/sh", None), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_program("", Some(&search_path)), None);
    }
}
