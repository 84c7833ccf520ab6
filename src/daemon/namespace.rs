//! Which network namespace this process is in: the table, the abstract socket names and the
//! interfaces are all per namespace, so the lock and the control socket's default name are too.

use std::io;
use std::os::unix::fs::MetadataExt;

/// The network namespace's inode number, as `ip netns identify` and `lsns` show it.
pub fn current() -> io::Result<u64> {
    Ok(std::fs::metadata("/proc/self/ns/net")?.ino())
}

/// Whether this process is in the network namespace of pid 1 (the host's, outside any
/// `ip netns exec`); `None` when that cannot be known (only root may look at pid 1's).
pub fn is_initial() -> Option<bool> {
    let init = std::fs::metadata("/proc/1/ns/net").ok()?.ino();
    Some(current().ok()? == init)
}

/// A suffix that tells this namespace apart in a file name: empty in pid 1's namespace (so the
/// usual names stay what the docs say), `.net4026532281` in any other.
pub fn suffix() -> String {
    match (is_initial(), current()) {
        (Some(true), _) | (_, Err(_)) => String::new(),
        (_, Ok(inode)) => format!(".net{inode}"),
    }
}
