//! Descriptors the daemon inherited from whoever started it are not its to pass on: at start,
//! every descriptor above stderr is marked close-on-exec, so classic commands get exactly stdin,
//! stdout and stderr. (Everything the daemon opens itself is close-on-exec from the start.)
#![allow(unsafe_code)]

use std::os::fd::RawFd;

/// Marks every open descriptor above 2 close-on-exec. Call it first, before any thread exists.
pub fn close_on_exec() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    // Collected first: the listing's own descriptor is among them, and is closed once `dir` is.
    let fds: Vec<RawFd> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter(|fd| *fd > 2).collect();
    for fd in fds {
        // SAFETY: fcntl on a raw descriptor number reads and sets its flags only; a number that
        // is not open (the listing's own) fails with EBADF and changes nothing. No other thread
        // exists yet, so no descriptor is opened or closed meanwhile.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}
