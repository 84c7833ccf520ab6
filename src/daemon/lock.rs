//! One daemon per table and network namespace: a second `knockd` on the same table would fight
//! the first over its chain. The lock is an `flock` on a file in `/run/knockd`, a directory
//! only root may write in, named after the table and the namespace; the kernel releases it when
//! the holder exits, however it exits. Nobody but root can create, replace or hold that file,
//! so no local user can keep the daemon from starting (an abstract socket name, which any user
//! may bind first, could). The file holds the holder's pid, for the message a second daemon
//! gives.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Where the locks are, unless told otherwise: the unit's RuntimeDirectory.
pub const LOCK_DIR: &str = "/run/knockd";

/// Why the table could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon holds it.
    #[error(
        "another knockd is running (pid {pid}) with table inet {table} in this network namespace: stop it first \
         (`kill {pid}`, or `systemctl stop knockd`)"
    )]
    Held {
        /// The table.
        table: String,
        /// The holder's pid, as it wrote it in the lock file.
        pid: String,
    },
    /// The directory or the file is not root's alone.
    #[error("cannot lock table inet {table}: {message}")]
    Unsafe {
        /// The table.
        table: String,
        /// What is wrong, and how to fix it.
        message: String,
    },
    /// The file does not exist and this process may not create it: a daemon that gave up root
    /// and reloads to a renamed table.
    #[error(
        "cannot lock table inet {table}: {} does not exist, and knockd, no longer root, may not create it: a second \
         daemon on that table would not be refused until knockd is restarted",
        path.display()
    )]
    NotRoot {
        /// The table.
        table: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The file could not be made or locked.
    #[error("cannot lock table inet {table}: {}: {source}", path.display())]
    Io {
        /// The table.
        table: String,
        /// The lock file (or its directory).
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// The held lock of one table; dropping it releases the table.
#[derive(Debug)]
pub struct TableLock {
    file: Flock<File>,
    path: PathBuf,
    table: String,
}

impl TableLock {
    /// Takes the lock of `table` in this network namespace, or says which pid holds it.
    pub fn take(table: &str) -> Result<TableLock, LockError> {
        TableLock::take_in(Path::new(LOCK_DIR), table)
    }

    /// The same, with the lock files in `dir` (tests).
    pub fn take_in(dir: &Path, table: &str) -> Result<TableLock, LockError> {
        let io = |path: &Path| {
            let (table, path) = (table.to_owned(), path.to_owned());
            move |source| LockError::Io { table, path, source }
        };
        let namespace = super::namespace::current().map_err(io(Path::new("/proc/self/ns/net")))?;
        let path = dir.join(format!("{table}.net{namespace}.lock"));
        own_dir(dir, table)?;
        // A holder that exits removes the file while it still holds it: a file opened just
        // before then is locked in vain, so the lock counts only if the path still names it.
        for _ in 0..3 {
            let file = open(&path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => LockError::NotRoot { table: table.to_owned(), path: path.clone() },
                _ => io(&path)(e),
            })?;
            let meta = file.metadata().map_err(io(&path))?;
            if !meta.is_file() || !owned_by_us(meta.uid()) {
                let message =
                    format!("{} is not a file of root's: remove it (`rm {}`)", path.display(), path.display());
                return Err(LockError::Unsafe { table: table.to_owned(), message });
            }
            let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(file) => file,
                Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                    let mut pid = String::new();
                    let _ = file.read_to_string(&mut pid);
                    let pid = if pid.trim().is_empty() { "unknown".to_owned() } else { pid.trim().to_owned() };
                    return Err(LockError::Held { table: table.to_owned(), pid });
                }
                Err((_, errno)) => return Err(io(&path)(errno.into())),
            };
            let same = std::fs::symlink_metadata(&path).is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev());
            if same {
                // A file opened read-only (no longer root) keeps the pid of whoever made it.
                let _ = write_pid(&mut file);
                return Ok(TableLock { file, path, table: table.to_owned() });
            }
        }
        Err(io(&path)(io::Error::other("the lock file keeps being replaced")))
    }

    /// The table this lock holds.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes the current pid; called again by the child after forking into the background.
    pub fn write_pid(&mut self) -> io::Result<()> {
        write_pid(&mut self.file)
    }
}

/// Opens the lock file, creating it if it is missing; never through a link. A daemon that gave
/// up root may still lock an existing file (flock needs no write access), not create one.
fn open(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(libc::O_NOFOLLOW);
    let created = options.clone().write(true).create(true).truncate(false).mode(0o644).open(path);
    match created {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => options.open(path),
        other => other,
    }
}

fn write_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())
}

/// Root, or the user the daemon runs as (when it started without root).
fn owned_by_us(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Makes `dir` if it is missing (mode 0755), and checks that only root may write in it.
fn own_dir(dir: &Path, table: &str) -> Result<(), LockError> {
    let io = |source| LockError::Io { table: table.to_owned(), path: dir.to_owned(), source };
    std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir).map_err(io)?;
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if !meta.is_dir() || !owned_by_us(meta.uid()) || meta.mode() & 0o022 != 0 {
        let message = format!(
            "{} must be a directory only root may write in (owner uid {}, mode {:o}): run `chown root {} && \
             chmod go-w {}`",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777,
            dir.display(),
            dir.display()
        );
        return Err(LockError::Unsafe { table: table.to_owned(), message });
    }
    Ok(())
}

impl Drop for TableLock {
    /// Removes the file while still holding it (a daemon that gave up root cannot, and leaves
    /// it for the next start, which takes it over).
    fn drop(&mut self) {
        let ours = self.file.metadata().ok().zip(std::fs::symlink_metadata(&self.path).ok());
        if ours.is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_dir::TestDir;

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let scratch = TestDir::new("lock-second");
        // Not made yet: the lock makes it.
        let dir = scratch.join("locks");
        let held = TableLock::take_in(&dir, "t1").unwrap();
        let err = TableLock::take_in(&dir, "t1").unwrap_err().to_string();
        assert!(err.contains(&format!("another knockd is running (pid {})", std::process::id())), "{err}");
        assert!(TableLock::take_in(&dir, "t2").is_ok(), "another table is another lock");
        drop(held);
        assert!(TableLock::take_in(&dir, "t1").is_ok(), "released at drop");
    }

    #[test]
    fn a_directory_others_may_write_in_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TestDir::new("lock-open");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = TableLock::take_in(&dir, "t").unwrap_err().to_string();
        assert!(err.contains("only root may write in") && err.contains("chmod go-w"), "{err}");
    }

    #[test]
    fn a_symlink_in_place_of_the_file_is_not_followed() {
        let dir = TestDir::new("lock-link");
        let target = dir.join("elsewhere");
        let namespace = crate::daemon::namespace::current().unwrap();
        std::os::unix::fs::symlink(&target, dir.join(format!("t.net{namespace}.lock"))).unwrap();
        assert!(TableLock::take_in(&dir, "t").is_err());
        assert!(!target.exists(), "nothing was created through the link");
    }
}
