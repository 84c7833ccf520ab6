//! The replay cache of a single-packet door: what it has accepted, until it would be refused
//! anyway for being too old. Bounded, and kept on disk so a packet accepted just before a
//! restart is still refused just after it.
//!
//! The file (`<state_dir>/<door>.replay`) is text: a header line, then one line per entry, the
//! key in hex and the Unix time at which it may be forgotten. It is rewritten atomically after
//! every accepted packet, before the door opens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hashlink::LinkedHashMap;

use crate::config::private_file::{self, PrivateFileError};

/// What a cache remembers at most; past this, the entry that expires first is forgotten.
pub const CAPACITY: usize = 65_536;
const HEADER: &str = "knockd-replay-cache 1";
/// Largest cache file read: every entry, with room.
const MAX_FILE: u64 = (CAPACITY as u64 + 1) * 96;

/// The key an accepted packet is remembered by (its nonce, or its digest).
pub type Key = [u8; 32];

/// Accepted packets, oldest first, each until the time it would be too old anyway.
pub struct ReplayCache {
    seen: LinkedHashMap<Key, u64, std::hash::RandomState>,
    file: Option<PathBuf>,
}

/// A cache file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("replay cache {}: {message}", path.display())]
pub struct ReplayError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

impl ReplayCache {
    /// A cache that lives in memory only.
    pub fn in_memory() -> Self {
        ReplayCache { seen: LinkedHashMap::with_hasher(std::hash::RandomState::new()), file: None }
    }

    /// The cache kept in `file`, with what it holds now (nothing if it does not exist yet).
    pub fn open(file: &Path) -> Result<Self, ReplayError> {
        let error = |message: String| ReplayError { path: file.to_owned(), message };
        let mut cache = ReplayCache { file: Some(file.to_owned()), ..ReplayCache::in_memory() };
        let bytes = match private_file::read_private(file, MAX_FILE) {
            Ok(bytes) => bytes,
            Err(PrivateFileError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => return Err(error(e.to_string())),
        };
        let text = String::from_utf8(bytes).map_err(|_| error("not a replay cache (not text)".into()))?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(error(format!("not a replay cache (the first line is not `{HEADER}`)")));
        }
        for line in lines {
            let parsed = line.split_once(' ').and_then(|(key, until)| {
                let key: Key = hex::decode(key).ok()?.try_into().ok()?;
                Some((key, until.parse().ok()?))
            });
            let (key, until) = parsed.ok_or_else(|| error(format!("cannot read the line `{line}`")))?;
            cache.insert(key, until);
        }
        Ok(cache)
    }

    /// Whether `key` was accepted and may not be forgotten yet.
    pub fn contains(&self, key: &Key) -> bool {
        self.seen.contains_key(key)
    }

    /// Remembers `key` until the Unix time `until`.
    pub fn insert(&mut self, key: Key, until: u64) {
        if self.seen.len() >= CAPACITY {
            self.seen.pop_front();
        }
        self.seen.insert(key, until);
    }

    /// Forgets what would be refused anyway at `unix_now` for being too old.
    pub fn expire(&mut self, unix_now: Duration) {
        let now = unix_now.as_secs();
        self.seen.retain(|_, until| *until >= now);
    }

    /// Writes the cache to its file, if it has one.
    pub fn persist(&self) -> Result<(), ReplayError> {
        let Some(file) = &self.file else { return Ok(()) };
        let mut text = String::with_capacity(self.seen.len() * 80 + 32);
        text.push_str(HEADER);
        text.push('\n');
        for (key, until) in &self.seen {
            text.push_str(&hex::encode(key));
            text.push(' ');
            text.push_str(&until.to_string());
            text.push('\n');
        }
        private_file::write_atomic(file, text.as_bytes(), 0o600)
            .map_err(|e| ReplayError { path: file.clone(), message: e.to_string() })
    }

    /// Takes in what `older` (the cache this one replaces, on a reload) remembers.
    pub fn absorb(&mut self, older: ReplayCache) {
        for (key, until) in older.seen {
            if !self.seen.contains_key(&key) {
                self.insert(key, until);
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart_and_forgets_what_is_too_old() {
        let dir = std::env::temp_dir().join(format!("knockd-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ssh.replay");
        let mut cache = ReplayCache::open(&file).unwrap();
        assert!(cache.is_empty(), "no file yet: an empty cache");
        cache.insert([1; 32], 1_000);
        cache.insert([2; 32], 2_000);
        cache.persist().unwrap();

        let mut again = ReplayCache::open(&file).unwrap();
        assert!(again.contains(&[1; 32]) && again.contains(&[2; 32]));
        again.expire(Duration::from_secs(1_500));
        assert!(!again.contains(&[1; 32]) && again.contains(&[2; 32]));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

        std::fs::write(&file, "something else\n").unwrap();
        assert!(ReplayCache::open(&file).err().unwrap().to_string().contains("not a replay cache"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bounded() {
        let mut cache = ReplayCache::in_memory();
        for i in 0..CAPACITY + 10 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            cache.insert(key, u64::MAX);
        }
        assert_eq!(cache.len(), CAPACITY);
    }
}
