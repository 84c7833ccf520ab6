//! The replay cache of a single-packet door (and of a rotating door's used sequences): what
//! it has accepted, until it would be refused anyway for being too old. Bounded, and kept on
//! disk so a packet accepted just before a restart is still refused just after it.
//!
//! The file (`<state_dir>/<door>.replay`) is a journal ([`Journal`]): a header line, then one
//! line per entry, the key in hex and the Unix time at which it may be forgotten. An accepted
//! packet appends its line with one `write` before the door opens; nothing on the packet path
//! rewrites the file or waits for the disk. Once the journal holds many lines that have
//! expired, it is compacted (rewritten atomically, from housekeeping). The journal is read and
//! written through the [`Store`] the caller hands in: this module touches no file itself.
//!
//! Why a `write` without `fsync` keeps the promise: once `write` returns, the line is in the
//! kernel's page cache, which a restart of the daemon does not lose, and which a clean reboot
//! writes out. Only a crash of the whole host can lose it, and the door kinds refuse every
//! packet timestamped before the host booted, which covers whatever such a crash lost.
//! A rotating door's journal is synced on each line instead ([`Journal::synced`]): its
//! sequences have no timestamp to compare with the boot.
//!
//! An entry that cannot be written is an error ([`Journal::record`]): the caller refuses the
//! packet rather than accept what a restart would accept again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hashlink::LinkedHashMap;

use crate::store::{AppendError, PrivateFileError, Store};

/// What a cache remembers at most; past this, the entry that expires first is forgotten.
pub const CAPACITY: usize = 65_536;
const HEADER: &str = "knockd-replay-cache 1";
/// Lines a journal may hold before it is compacted at once, on the packet path (housekeeping
/// compacts it long before, at twice the live entries).
const MAX_LINES: usize = 2 * CAPACITY + 4_096;
/// Largest cache file read: every line a journal may hold, with room.
const MAX_FILE: u64 = (MAX_LINES as u64 + 1) * 96;

/// The key an accepted packet is remembered by (its nonce, or its digest).
pub type Key = [u8; 32];

/// Accepted packets, oldest first, each until the time it would be too old anyway. In memory:
/// a [`Journal`] keeps it on disk.
pub struct ReplayCache {
    seen: LinkedHashMap<Key, u64, std::hash::RandomState>,
}

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache { seen: LinkedHashMap::with_hasher(std::hash::RandomState::new()) }
    }
}

/// The file a cache is kept in: where it is, and what is known of its lines.
pub struct Journal {
    path: PathBuf,
    /// Lines in the file, the header aside.
    lines: usize,
    /// Whether each line is synced before [`Journal::record`] returns.
    sync: bool,
    /// Whether the file may end in a line cut short (a crash, a failed write): the next line
    /// appended starts on a fresh line.
    torn: bool,
    /// After a failed compaction in housekeeping: the line count at which it is tried again,
    /// so a directory that stays unwritable is said once per 1,024 new entries, not every tick.
    retry_at: usize,
}

/// A cache file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("replay cache {}: {message}", path.display())]
pub struct ReplayError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl ReplayCache {
    /// An empty cache.
    pub fn in_memory() -> Self {
        ReplayCache::default()
    }

    /// Whether `key` was accepted and may not be forgotten yet.
    pub fn contains(&self, key: &Key) -> bool {
        self.seen.contains_key(key)
    }

    /// Remembers `key` until the Unix time `until`, in memory only (see [`Journal::record`]).
    pub fn insert(&mut self, key: Key, until: u64) {
        if self.seen.len() >= CAPACITY {
            self.seen.pop_front();
        }
        self.seen.insert(key, until);
    }

    /// Forgets what would be refused anyway at `unix_now` for being too old.
    pub fn forget_expired(&mut self, unix_now: Duration) {
        let now = unix_now.as_secs();
        self.seen.retain(|_, until| *until >= now);
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

impl Journal {
    /// The journal at `file` and the cache it holds now (nothing if it does not exist yet, or
    /// is empty). A last line cut short (a crash while writing it) is skipped.
    pub fn open(store: &mut dyn Store, file: &Path) -> Result<(Journal, ReplayCache), ReplayError> {
        let error = |message: String| ReplayError { path: file.to_owned(), message };
        let mut journal = Journal { path: file.to_owned(), lines: 0, sync: false, torn: false, retry_at: 0 };
        let mut cache = ReplayCache::default();
        let bytes = match store.read(file, MAX_FILE, false) {
            Ok(bytes) => bytes,
            Err(PrivateFileError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok((journal, cache)),
            Err(e) => return Err(error(e.to_string())),
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.split_inclusive('\n');
        match lines.next() {
            None => return Ok((journal, cache)),
            Some(first) if first.trim_end() == HEADER => {}
            Some(_) => return Err(error(format!("not a replay cache (the first line is not `{HEADER}`)"))),
        }
        for line in lines {
            journal.lines += 1;
            let parsed = line.strip_suffix('\n').and_then(|l| l.split_once(' ')).and_then(|(key, until)| {
                let key: Key = hex::decode(key).ok()?.try_into().ok()?;
                Some((key, until.parse().ok()?))
            });
            if let Some((key, until)) = parsed {
                cache.insert(key, until);
            }
        }
        journal.torn = !text.ends_with('\n');
        Ok((journal, cache))
    }

    /// The same journal, with every line synced to the disk before [`Journal::record`]
    /// returns (for entries that no boot time fences).
    pub fn synced(mut self) -> Self {
        self.sync = true;
        self
    }

    /// Remembers `key` in `cache` until the Unix time `until`, in the journal first: an error
    /// means it is not remembered, and the packet must be refused.
    pub fn record(
        &mut self,
        store: &mut dyn Store,
        cache: &mut ReplayCache,
        key: Key,
        until: u64,
    ) -> Result<(), ReplayError> {
        if self.lines >= MAX_LINES {
            self.compact(store, cache)?;
        }
        // A line cut short would swallow this one: start a fresh line.
        let fresh = if self.torn { "\n" } else { "" };
        let line = format!("{fresh}{} {until}\n", hex::encode(key));
        let header = format!("{HEADER}\n");
        if let Err(e) = store.append(&self.path, header.as_bytes(), line.as_bytes(), self.sync) {
            self.torn = true;
            let what = match e {
                AppendError::Open(_) => "open it to add an entry",
                AppendError::Write(_) => "add an entry",
            };
            return Err(self.error(store, what, &e));
        }
        self.torn = false;
        self.lines += 1;
        cache.insert(key, until);
        Ok(())
    }

    /// Forgets from `cache` what would be refused anyway at `unix_now` for being too old, and
    /// compacts the journal once most of its lines are forgotten ones. An error leaves the
    /// journal as it was, growing (it is compacted on the packet path at its limit, or the
    /// packet refused).
    pub fn expire(
        &mut self,
        store: &mut dyn Store,
        cache: &mut ReplayCache,
        unix_now: Duration,
    ) -> Result<(), ReplayError> {
        cache.forget_expired(unix_now);
        if self.lines <= 2 * cache.len() + 1_024 || self.lines < self.retry_at {
            return Ok(());
        }
        let compacted = self.compact(store, cache);
        self.retry_at = if compacted.is_err() { self.lines + 1_024 } else { 0 };
        compacted
    }

    fn error(&self, store: &dyn Store, what: &str, e: &dyn std::fmt::Display) -> ReplayError {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let uid = store.uid();
        let message = format!(
            "cannot {what} ({e}): make the state directory {} writable by the user knockd runs as (uid {uid}), \
             e.g. `chown {uid} {} && chmod 700 {}`, or set `state_dir:` to one that is",
            dir.display(),
            dir.display(),
            dir.display()
        );
        ReplayError { path: self.path.clone(), message }
    }

    /// Rewrites the journal with the live entries only.
    fn compact(&mut self, store: &mut dyn Store, cache: &ReplayCache) -> Result<(), ReplayError> {
        let mut text = String::with_capacity(cache.len() * 80 + 32);
        text.push_str(HEADER);
        text.push('\n');
        for (key, until) in &cache.seen {
            text.push_str(&hex::encode(key));
            text.push(' ');
            text.push_str(&until.to_string());
            text.push('\n');
        }
        store.replace(&self.path, text.as_bytes(), Some(0o600)).map_err(|e| self.error(store, "compact it", &e))?;
        self.lines = cache.len();
        self.torn = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FileStore, MemoryStore};

    use crate::test_dir::TestDir;

    /// A journal opened in a fresh directory (`ssh.replay` there, not made yet): the
    /// directory, the file, the journal and its cache.
    fn on_disk(name: &str) -> (TestDir, PathBuf, Journal, ReplayCache) {
        let dir = TestDir::new(name);
        let file = dir.join("ssh.replay");
        let (journal, cache) = Journal::open(&mut FileStore::default(), &file).unwrap();
        (dir, file, journal, cache)
    }

    #[test]
    fn survives_a_restart_and_forgets_what_is_too_old() {
        let (_dir, file, mut journal, mut cache) = on_disk("replay-restart");
        let store = &mut FileStore::default();
        assert!(cache.is_empty(), "no file yet: an empty cache");
        journal.record(store, &mut cache, [1; 32], 1_000).unwrap();
        journal.record(store, &mut cache, [2; 32], 2_000).unwrap();

        let (mut journal, mut again) = Journal::open(&mut FileStore::default(), &file).unwrap();
        assert!(again.contains(&[1; 32]) && again.contains(&[2; 32]));
        journal.expire(store, &mut again, Duration::from_secs(1_500)).unwrap();
        assert!(!again.contains(&[1; 32]) && again.contains(&[2; 32]));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

        std::fs::write(&file, "something else\n").unwrap();
        assert!(Journal::open(store, &file).err().unwrap().to_string().contains("not a replay cache"));
    }

    #[test]
    fn an_entry_is_one_line_appended_and_the_journal_is_compacted_once_mostly_expired() {
        let file = Path::new("/state/ssh.replay");
        let store = &mut MemoryStore::default();
        let (mut journal, mut cache) = Journal::open(store, file).unwrap();
        for i in 0..3_000u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            journal.record(store, &mut cache, key, u64::from(i)).unwrap();
        }
        let lines = |store: &MemoryStore| store.text(file).unwrap().lines().count();
        assert_eq!(lines(store), 3_001, "the header and one line per entry, nothing rewritten");
        journal.expire(store, &mut cache, Duration::from_secs(2_990)).unwrap();
        assert_eq!(lines(store), 11, "compacted: the header and the 10 live entries");
        journal.record(store, &mut cache, [9; 32], 5_000).unwrap();
        let (_, again) = Journal::open(store, file).unwrap();
        assert_eq!(again.len(), 11, "appends after a compaction go to the new file");
    }

    #[test]
    fn a_compaction_that_fails_is_said_once_and_tried_again_after_1024_more_entries() {
        let file = Path::new("/state/ssh.replay");
        let store = &mut MemoryStore::default();
        let (mut journal, mut cache) = Journal::open(store, file).unwrap();
        let record = |journal: &mut Journal, cache: &mut ReplayCache, store: &mut MemoryStore, i: u32| {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            journal.record(store, cache, key, u64::from(i)).unwrap();
        };
        for i in 0..2_000 {
            record(&mut journal, &mut cache, store, i);
        }
        store.failing = true;
        let late = Duration::from_secs(10_000);
        assert!(journal.expire(store, &mut cache, late).is_err(), "the failure is said");
        assert!(journal.expire(store, &mut cache, late).is_ok(), "and not again at the next tick");
        store.failing = false;
        assert_eq!(store.text(file).unwrap().lines().count(), 2_001, "not compacted yet");
        for i in 2_000..3_024 {
            record(&mut journal, &mut cache, store, i);
        }
        journal.expire(store, &mut cache, late).unwrap();
        assert_eq!(store.text(file).unwrap().lines().count(), 1, "tried again: compacted to its header");
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_skipped_and_the_next_one_starts_afresh() {
        let file = Path::new("/state/ssh.replay");
        let store = &mut MemoryStore::default();
        let line = format!("{} 5000\n", hex::encode([1u8; 32]));
        store.files.insert(file.into(), format!("{HEADER}\n{line}{}", &line[..20]).into_bytes());
        let (mut journal, mut cache) = Journal::open(store, file).unwrap();
        assert_eq!(cache.len(), 1);
        journal.record(store, &mut cache, [2; 32], 5_000).unwrap();
        let (_, again) = Journal::open(store, file).unwrap();
        assert!(again.contains(&[1; 32]) && again.contains(&[2; 32]));
        store.files.insert(file.into(), Vec::new());
        assert!(Journal::open(store, file).unwrap().1.is_empty(), "an empty file (a crash right after creating it)");
    }

    #[test]
    fn an_entry_that_cannot_be_written_is_an_error_and_not_remembered() {
        let (_dir, file, mut journal, mut cache) = on_disk("replay-unwritable");
        let store = &mut FileStore::default();
        // A directory where the journal should be: opening it for writing fails, as a
        // directory the daemon may not write does.
        std::fs::create_dir(&file).unwrap();
        let e = journal.record(store, &mut cache, [1; 32], 5_000).unwrap_err().to_string();
        assert!(e.contains("make the state directory") && e.contains("writable"), "{e}");
        assert!(!cache.contains(&[1; 32]), "not remembered: the packet is refused, and may come again");
        let memory = &mut MemoryStore { failing: true, ..MemoryStore::default() };
        assert!(journal.record(memory, &mut cache, [1; 32], 5_000).is_err());
        assert!(!cache.contains(&[1; 32]));
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
