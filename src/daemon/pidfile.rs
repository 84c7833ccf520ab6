//! The pid file: written at start, locked while the daemon runs (so a second daemon with the
//! same pid file refuses to start), removed at a clean exit.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the pid file could not be taken.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum PidFileError {
    /// The pid file cannot be opened or written.
    #[error("pid file {}: {source}", path.display())]
    Io {
        /// The pid file's path.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the pid file's lock.
    #[error("another knockd is running (pid {pid}, pid file {})", path.display())]
    Running { path: PathBuf, pid: String },
}

/// A locked pid file; the lock lasts as long as any process holds this open file.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: File,
}

impl PidFile {
    /// Creates and locks `path`, and writes our pid into it.
    pub fn create(path: &Path) -> Result<PidFile, PidFileError> {
        let io = |source| PidFileError::Io { path: path.to_owned(), source };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            // Never through a link: whoever could place one would choose what root truncates.
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(io)?;
        // SAFETY: flock on an open file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(PidFileError::Running { path: path.to_owned(), pid: pid.trim().to_owned() });
        }
        let mut pidfile = PidFile { path: path.to_owned(), file };
        pidfile.write_pid().map_err(io)?;
        Ok(pidfile)
    }

    /// Writes the current pid; called again by the child after forking into the background.
    pub fn write_pid(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        writeln!(self.file, "{}", std::process::id())?;
        self.file.sync_all()
    }
}

impl Drop for PidFile {
    /// Empties the file, then removes it: a daemon that gave up root can no longer remove a
    /// file from a directory root owns, but its open file it can still empty.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_in_place_of_the_pid_file_is_not_followed() {
        let dir = crate::test_dir::TestDir::new("pidfile");
        let target = dir.link_to_file("knockd.pid", "precious", "keep me\n");
        assert!(PidFile::create(&dir.join("knockd.pid")).is_err(), "a link is refused");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n", "its target is untouched");
    }
}
