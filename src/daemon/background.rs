//! `knockd -d`: fork into the background once everything that can fail at start-up has been
//! done, so those errors still reach the terminal.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};

use super::pidfile::PidFile;

/// Forks; returns in the child only, after it has written its pid. The parent exits with status
/// 0 once the child is ready (or 1 if the child failed to get ready).
///
/// Must be called while the process has a single thread.
pub fn detach(pidfile: Option<&mut PidFile>) -> io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by these files alone.
    let (mut ready_rx, mut ready_tx) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: the caller guarantees a single-threaded process.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(ready_rx);
            // SAFETY: plain syscalls in the child.
            unsafe { libc::setsid() };
            if let Some(pidfile) = pidfile {
                pidfile.write_pid()?;
            }
            std::env::set_current_dir("/")?;
            let null = File::options().read(true).write(true).open("/dev/null")?;
            for fd in 0..3 {
                // SAFETY: replacing the standard descriptors with /dev/null.
                unsafe { libc::dup2(null.as_raw_fd(), fd) };
            }
            ready_tx.write_all(b"1")?;
            Ok(())
        }
        _ => {
            drop(ready_tx);
            let mut byte = [0u8; 1];
            let ready = matches!(ready_rx.read(&mut byte), Ok(1));
            // SAFETY: leave without running destructors: the pid file and sockets are the child's.
            unsafe { libc::_exit(if ready { 0 } else { 1 }) }
        }
    }
}
