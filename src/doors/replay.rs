//! The replay cache of a single-packet door (and of a rotating door's used sequences): what
//! it has accepted, until it would be refused anyway for being too old. Bounded, and kept on
//! disk so a packet accepted just before a restart is still refused just after it.
//!
//! The file (`<state_dir>/<door>.replay`) is a journal: a header line, then one line per
//! entry, the key in hex and the Unix time at which it may be forgotten. An accepted packet
//! appends its line with one `write` before the door opens; nothing on the packet path rewrites
//! the file or waits for the disk. Once the journal holds many lines that have expired, it is
//! compacted (rewritten atomically, from housekeeping).
//!
//! Why a `write` without `fsync` keeps the promise: once `write` returns, the line is in the
//! kernel's page cache, which a restart of the daemon does not lose, and which a clean reboot
//! writes out. Only a crash of the whole host can lose it, and the door kinds refuse every
//! packet timestamped before the host booted, which covers whatever such a crash lost.
//! A rotating door's journal is synced on each line instead ([`ReplayCache::synced`]): its
//! sequences have no timestamp to compare with the boot.
//!
//! An entry that cannot be written is an error ([`ReplayCache::record`]): the caller refuses
//! the packet rather than accept what a restart would accept again.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hashlink::LinkedHashMap;

use crate::config::private_file::{self, PrivateFileError};

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

/// Accepted packets, oldest first, each until the time it would be too old anyway.
pub struct ReplayCache {
    seen: LinkedHashMap<Key, u64, std::hash::RandomState>,
    journal: Option<Journal>,
}

/// The file a cache is kept in, and the descriptor lines are appended with.
struct Journal {
    path: PathBuf,
    /// Opened on the first line appended, and again after each compaction.
    file: Option<File>,
    /// Lines in the file, the header aside.
    lines: usize,
    /// Whether each line is synced before [`ReplayCache::record`] returns.
    sync: bool,
    /// Whether the file may end in a line cut short (a crash, a failed write): the next line
    /// appended starts on a fresh line.
    torn: bool,
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
    /// A cache that lives in memory only.
    pub fn in_memory() -> Self {
        ReplayCache { seen: LinkedHashMap::with_hasher(std::hash::RandomState::new()), journal: None }
    }

    /// The cache kept in `file`, with what it holds now (nothing if it does not exist yet, or is
    /// empty). A last line cut short (a crash while writing it) is skipped.
    pub fn open(file: &Path) -> Result<Self, ReplayError> {
        let error = |message: String| ReplayError { path: file.to_owned(), message };
        let journal = Journal { path: file.to_owned(), file: None, lines: 0, sync: false, torn: false };
        let mut cache = ReplayCache { journal: Some(journal), ..ReplayCache::in_memory() };
        let bytes = match private_file::read_private(file, MAX_FILE) {
            Ok(bytes) => bytes,
            Err(PrivateFileError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => return Err(error(e.to_string())),
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.split_inclusive('\n');
        match lines.next() {
            None => return Ok(cache),
            Some(first) if first.trim_end() == HEADER => {}
            Some(_) => return Err(error(format!("not a replay cache (the first line is not `{HEADER}`)"))),
        }
        let mut count = 0;
        for line in lines {
            count += 1;
            let parsed = line.strip_suffix('\n').and_then(|l| l.split_once(' ')).and_then(|(key, until)| {
                let key: Key = hex::decode(key).ok()?.try_into().ok()?;
                Some((key, until.parse().ok()?))
            });
            if let Some((key, until)) = parsed {
                cache.insert(key, until);
            }
        }
        if let Some(journal) = &mut cache.journal {
            journal.lines = count;
            journal.torn = !text.ends_with('\n');
        }
        Ok(cache)
    }

    /// The same cache, with every line synced to the disk before [`ReplayCache::record`]
    /// returns (for entries that no boot time fences).
    pub fn synced(mut self) -> Self {
        if let Some(journal) = &mut self.journal {
            journal.sync = true;
        }
        self
    }

    /// Whether `key` was accepted and may not be forgotten yet.
    pub fn contains(&self, key: &Key) -> bool {
        self.seen.contains_key(key)
    }

    /// Remembers `key` until the Unix time `until`, in memory only (see [`ReplayCache::record`]).
    pub fn insert(&mut self, key: Key, until: u64) {
        if self.seen.len() >= CAPACITY {
            self.seen.pop_front();
        }
        self.seen.insert(key, until);
    }

    /// Remembers `key` until the Unix time `until`, in the journal first: an error means it is
    /// not remembered, and the packet must be refused.
    pub fn record(&mut self, key: Key, until: u64) -> Result<(), ReplayError> {
        if let Some(journal) = &mut self.journal {
            if journal.lines >= MAX_LINES {
                journal.compact(&self.seen)?;
            }
            journal.append(&key, until)?;
        }
        self.insert(key, until);
        Ok(())
    }

    /// Forgets what would be refused anyway at `unix_now` for being too old, and compacts the
    /// journal once most of its lines are forgotten ones. An error leaves the journal as it
    /// was, growing (it is compacted on the packet path at its limit, or the packet refused).
    pub fn expire(&mut self, unix_now: Duration) -> Result<(), ReplayError> {
        let now = unix_now.as_secs();
        self.seen.retain(|_, until| *until >= now);
        match &mut self.journal {
            Some(journal) if journal.lines > 2 * self.seen.len() + 1_024 => journal.compact(&self.seen),
            _ => Ok(()),
        }
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
    fn error(&self, what: &str, e: &std::io::Error) -> ReplayError {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let uid = nix::unistd::geteuid();
        let message = format!(
            "cannot {what} ({e}): make the state directory {} writable by the user knockd runs as (uid {uid}), \
             e.g. `chown {uid} {} && chmod 700 {}`, or set `state_dir:` to one that is",
            dir.display(),
            dir.display(),
            dir.display()
        );
        ReplayError { path: self.path.clone(), message }
    }

    /// Appends one line, with one `write` (and a sync, for a synced journal).
    fn append(&mut self, key: &Key, until: u64) -> Result<(), ReplayError> {
        if self.file.is_none() {
            self.file = Some(self.open_for_append().map_err(|e| self.error("open it to add an entry", &e))?);
        }
        let file = self.file.as_mut().expect("opened above");
        let line = format!("{} {until}\n", hex::encode(key));
        let written = file.write_all(line.as_bytes()).and_then(|()| if self.sync { file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // A line may be half written: append on a fresh descriptor next time, after it.
            self.file = None;
            self.torn = true;
            return Err(self.error("add an entry", &e));
        }
        self.lines += 1;
        Ok(())
    }

    /// Opens the journal for appending, never through a symlink, and writes the header into a
    /// new or empty one.
    fn open_for_append(&mut self) -> std::io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)?;
        if file.metadata()?.len() == 0 {
            file.write_all(format!("{HEADER}\n").as_bytes())?;
        } else if self.torn {
            // A line cut short would swallow the first new one: start a fresh line.
            file.write_all(b"\n")?;
            self.torn = false;
        }
        Ok(file)
    }

    /// Rewrites the journal with the live entries only.
    fn compact(&mut self, seen: &LinkedHashMap<Key, u64, std::hash::RandomState>) -> Result<(), ReplayError> {
        let mut text = String::with_capacity(seen.len() * 80 + 32);
        text.push_str(HEADER);
        text.push('\n');
        for (key, until) in seen {
            text.push_str(&hex::encode(key));
            text.push(' ');
            text.push_str(&until.to_string());
            text.push('\n');
        }
        private_file::write_atomic(&self.path, text.as_bytes(), 0o600).map_err(|e| self.error("compact it", &e))?;
        // The descriptor still points at the old file, which the rename unlinked.
        self.file = None;
        self.lines = seen.len();
        self.torn = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("knockd-replay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn survives_a_restart_and_forgets_what_is_too_old() {
        let dir = scratch("restart");
        let file = dir.join("ssh.replay");
        let mut cache = ReplayCache::open(&file).unwrap();
        assert!(cache.is_empty(), "no file yet: an empty cache");
        cache.record([1; 32], 1_000).unwrap();
        cache.record([2; 32], 2_000).unwrap();

        let mut again = ReplayCache::open(&file).unwrap();
        assert!(again.contains(&[1; 32]) && again.contains(&[2; 32]));
        again.expire(Duration::from_secs(1_500)).unwrap();
        assert!(!again.contains(&[1; 32]) && again.contains(&[2; 32]));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

        std::fs::write(&file, "something else\n").unwrap();
        assert!(ReplayCache::open(&file).err().unwrap().to_string().contains("not a replay cache"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_entry_is_one_line_appended_and_the_journal_is_compacted_once_mostly_expired() {
        let dir = scratch("journal");
        let file = dir.join("ssh.replay");
        let mut cache = ReplayCache::open(&file).unwrap();
        for i in 0..3_000u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            cache.record(key, u64::from(i)).unwrap();
        }
        let lines = || std::fs::read_to_string(&file).unwrap().lines().count();
        assert_eq!(lines(), 3_001, "the header and one line per entry, nothing rewritten");
        cache.expire(Duration::from_secs(2_990)).unwrap();
        assert_eq!(lines(), 11, "compacted: the header and the 10 live entries");
        cache.record([9; 32], 5_000).unwrap();
        let again = ReplayCache::open(&file).unwrap();
        assert_eq!(again.len(), 11, "appends after a compaction go to the new file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_skipped_and_the_next_one_starts_afresh() {
        let dir = scratch("torn");
        let file = dir.join("ssh.replay");
        let line = format!("{} 5000\n", hex::encode([1u8; 32]));
        std::fs::write(&file, format!("{HEADER}\n{line}{}", &line[..20])).unwrap();
        let mut cache = ReplayCache::open(&file).unwrap();
        assert_eq!(cache.len(), 1);
        cache.record([2; 32], 5_000).unwrap();
        let again = ReplayCache::open(&file).unwrap();
        assert!(again.contains(&[1; 32]) && again.contains(&[2; 32]));
        std::fs::write(&file, "").unwrap();
        assert!(ReplayCache::open(&file).unwrap().is_empty(), "an empty file (a crash right after creating it)");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_entry_that_cannot_be_written_is_an_error_and_not_remembered() {
        let dir = scratch("unwritable");
        // A directory where the journal should be: opening it for writing fails, as a
        // directory the daemon may not write does.
        let file = dir.join("ssh.replay");
        let mut cache = ReplayCache::open(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        let e = cache.record([1; 32], 5_000).unwrap_err().to_string();
        assert!(e.contains("make the state directory") && e.contains("writable"), "{e}");
        assert!(!cache.contains(&[1; 32]), "not remembered: the packet is refused, and may come again");
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
