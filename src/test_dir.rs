//! A scratch directory for the unit tests that need a real filesystem (links, modes, locks, a
//! socket): made afresh, and removed when the test ends, also when it fails. The tests under
//! `tests/` have their own (`tests/util/temp_dir.rs`); this one is for the library's.

use std::path::{Path, PathBuf};

/// `knockd-<name>-<pid>` in the system's temporary directory, empty at first.
pub struct TestDir(PathBuf);

impl TestDir {
    /// A new empty directory for the test `name` (unique within the test binary).
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("knockd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }
}

impl TestDir {
    /// A link `name` here to a file `target` holding `text`: what an attacker would put in
    /// place of a file the daemon writes. The target's path.
    pub fn link_to_file(&self, name: &str, target: &str, text: &str) -> PathBuf {
        let target = self.0.join(target);
        std::fs::write(&target, text).unwrap();
        std::os::unix::fs::symlink(&target, self.0.join(name)).unwrap();
        target
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
