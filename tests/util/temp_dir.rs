//! The one temporary-directory guard of the test suites: tests/ take it through `tests/util`,
//! the end-to-end tests and the benchmark through `integration/support` (whose config files
//! live in one).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory of its own under the system's temporary directory, removed when dropped (also
/// when the test fails). Its name carries the tag, the process and a counter: the tests of one
/// file run in parallel threads, the files in parallel processes.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory.
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("knockd-{tag}-{}x{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside the directory (which need not exist).
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name`, making its folders as needed; its path.
    pub fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes `text` to `name` with mode `mode`; its path.
    pub fn write_mode(&self, name: &str, text: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let path = self.write(name, text);
        set_mode(&path, mode);
        path
    }

    /// Writes `text` to `name`, mode 600 as a file with keys or secrets is; its path.
    pub fn write_private(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        self.write_mode(name, text, 0o600)
    }

    /// Writes knockd.yaml (mode 644, as an admin's config is): the state directory `state`
    /// inside this directory (the tests run in parallel, and /var/lib/knockd is not theirs),
    /// which is made as the daemon makes it at start, then `yaml`; its path.
    pub fn config(&self, yaml: &str) -> PathBuf {
        let state = self.join("state");
        std::fs::create_dir_all(&state).unwrap();
        self.write_mode("knockd.yaml", format!("state_dir: {}\n{yaml}", state.display()), 0o644)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sets a file's permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A file's permission bits.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}
