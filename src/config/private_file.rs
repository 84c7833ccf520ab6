//! Files that decide what the firewall opens (configs, one-time sequences, keys, replay
//! caches): read only when other users cannot change them, written only atomically.
//!
//! A leaf: it imports nothing from the crate. Whose files are trusted besides root's and the
//! running user's is a parameter ([`Trust`]), which the daemon works out from the config.
//!
//! Reads check the file that was opened (`fstat`), so a file swapped in between a check and the
//! read cannot slip through. Writes go to a new file under an unpredictable name beside the
//! target, created exclusively with mode 0600 (never through a symlink), synced, given its final
//! mode, then renamed over the target: a crash leaves the old file or the new one, never half.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The users whose files are trusted like root's, besides the effective user: the one the
/// daemon runs as after start, and its own user (`knockd`), whose files (the replay caches) a
/// later start, perhaps as root or as another user, must be able to read. Never `nobody`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    uids: Vec<u32>,
}

impl Trust {
    /// Trusts the files of these users too.
    pub fn users(uids: impl IntoIterator<Item = u32>) -> Self {
        Trust { uids: uids.into_iter().collect() }
    }

    /// Whether files owned by `uid` are trusted like root's.
    pub fn trusts(&self, uid: u32) -> bool {
        uid == 0 || uid == nix::unistd::geteuid().as_raw() || self.uids.contains(&uid)
    }
}

/// Why a private file (a config, a secret) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// The file cannot be opened or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than the reader allows.
    #[error("the file is too large")]
    TooLarge,
    /// Other users can write the file; the text says how to fix that.
    #[error("refusing to use it: {0}")]
    Unsafe(String),
}

/// Reads a file that decides what the firewall opens (a config, a one-time sequence file, a
/// key), at most `max` bytes. The checks look at the file that was opened (`fstat`), so a file
/// swapped in between a check and the read cannot slip through.
pub fn read_private(path: &Path, max: u64, trust: &Trust) -> Result<Vec<u8>, PrivateFileError> {
    read_private_with_metadata(path, max, trust).map(|(bytes, _)| bytes)
}

/// [`read_private`], also returning the opened file's metadata, for callers that check more
/// (a secret must not be readable by others): checked on the file read, never the path again.
pub fn read_private_with_metadata(
    path: &Path,
    max: u64,
    trust: &Trust,
) -> Result<(Vec<u8>, fs::Metadata), PrivateFileError> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    check_private(&meta, path, trust).map_err(PrivateFileError::Unsafe)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(PrivateFileError::TooLarge);
    }
    Ok((bytes, meta))
}

/// A file that decides what the firewall opens must not be writable by anyone but its owner,
/// and its owner must be root or a user `trust` trusts. Returns what is wrong and how to fix it.
pub fn check_private(meta: &std::fs::Metadata, path: &Path, trust: &Trust) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode();
    if mode & 0o002 != 0 {
        return Err(format!(
            "it is writable by every user (mode {:o}): run `chmod o-w {}`",
            mode & 0o7777,
            path.display()
        ));
    }
    if mode & 0o020 != 0 && meta.gid() != 0 {
        return Err(format!(
            "it is writable by group {} (mode {:o}): run `chmod g-w {}`",
            meta.gid(),
            mode & 0o7777,
            path.display()
        ));
    }
    if !trust.trusts(meta.uid()) {
        return Err(format!("it is owned by uid {}, not root: run `chown root {}`", meta.uid(), path.display()));
    }
    Ok(())
}

/// What is wrong with a file that holds secrets (`what`: "the secret", "the keys") when every
/// user can read it, and the fix; `None` when they cannot. The one check for key files and for
/// configs with keys written in them.
pub fn readable_by_others(meta: &std::fs::Metadata, path: &Path, what: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode();
    (mode & 0o004 != 0).then(|| {
        format!("every user can read {what} in it (mode {:o}): run `chmod o-r {}`", mode & 0o7777, path.display())
    })
}

/// Replaces `path` with `bytes` atomically (see the module documentation); the new file gets
/// `mode`, less any write bit for group or others.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or(std::io::ErrorKind::InvalidInput)?;
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = dir.join(format!(".{}.{}", name.to_string_lossy(), hex::encode(random)));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7755))?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
