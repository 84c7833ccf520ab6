//! One-time sequences: a file of knock sequences, one per line, each used once.
//!
//! The first line that holds a valid sequence (not blank, not a `#` comment) is the door's
//! sequence. After a successful knock, that line is commented out by prefixing `#`, and the
//! file is replaced through the [`Store`], atomically with the old file's mode (the daemon's
//! store: a new file under an unpredictable name, created exclusively with mode 0600, never
//! through a symlink, synced, renamed). A crash leaves either the old file or the new one.
//! Lines that do not parse are skipped, as in the classic knockd.

use std::path::{Path, PathBuf};

use super::matcher::{Matcher, SlotId};
use crate::config::PortProto;
use crate::doors::{DoorId, Note, Outcomes};
use crate::store::{PrivateFileError, Store};

/// Largest one-time sequence file read.
const MAX_FILE: u64 = 1 << 20;

/// A one-time sequence file that cannot be read or rewritten.
#[derive(Debug, thiserror::Error)]
#[error("one-time sequence file {}: {source}", path.display())]
pub struct OneTimeError {
    /// The file.
    pub path: PathBuf,
    /// Why it cannot be used.
    #[source]
    pub source: std::io::Error,
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> OneTimeError + '_ {
    move |source| OneTimeError { path: path.to_owned(), source }
}

/// The sequence on a line, if the line holds an unused, valid one.
fn parse_line(line: &str) -> Option<Vec<PortProto>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    crate::config::parse_sequence(line).ok()
}

/// Reads the file, checking (on the file opened) that other users cannot write it: it holds
/// secrets that open the firewall.
fn read(store: &mut dyn Store, path: &Path) -> Result<String, OneTimeError> {
    let bytes = store.read(path, MAX_FILE, false).map_err(|e| OneTimeError {
        path: path.to_owned(),
        source: match e {
            PrivateFileError::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::PermissionDenied, other.to_string()),
        },
    })?;
    String::from_utf8(bytes).map_err(|_| io_error(path)(std::io::ErrorKind::InvalidData.into()))
}

/// The first unused sequence in `path`; `None` when every one has been used.
pub fn current(store: &mut dyn Store, path: &Path) -> Result<Option<Vec<PortProto>>, OneTimeError> {
    Ok(read(store, path)?.lines().find_map(parse_line))
}

/// Marks the first unused line holding `sequence` as used, durably before it returns. Returns
/// whether a line was marked (false if someone removed it from the file meanwhile).
pub fn mark_used(store: &mut dyn Store, path: &Path, sequence: &[PortProto]) -> Result<bool, OneTimeError> {
    let text = read(store, path)?;
    let mut marked = false;
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.split_inclusive('\n') {
        if !marked && parse_line(line).as_deref() == Some(sequence) {
            out.push('#');
            marked = true;
        }
        out.push_str(line);
    }
    if marked {
        store.replace(path, out.as_bytes(), None).map_err(io_error(path))?;
    }
    Ok(marked)
}

/// A one-time door: its file, whose first unused line is the sequence in force.
pub struct OneTime {
    door: DoorId,
    path: PathBuf,
}

impl OneTime {
    /// Reads the file and puts the door's first unused sequence in its slot (none: disabled).
    pub fn open(
        door: DoorId,
        name: &str,
        path: &Path,
        matcher: &mut Matcher,
        store: &mut dyn Store,
    ) -> Result<Self, OneTimeError> {
        let current = current(store, path)?;
        if current.is_none() {
            log::warn!("{name}: no unused sequence left in {}: door disabled", path.display());
        }
        matcher.set_sequence(matcher.slots_of(door).start, current.unwrap_or_default());
        Ok(OneTime { door, path: path.to_owned() })
    }

    /// The door this file feeds.
    pub fn door(&self) -> DoorId {
        self.door
    }

    /// Marks the sequence just used and switches the door to the next one, or disables it. A
    /// use that cannot be marked in the file takes the grant back: a restart would read the
    /// sequence as unused and accept it again.
    pub fn opened(&mut self, slot: SlotId, matcher: &mut Matcher, store: &mut dyn Store, out: &mut Outcomes) {
        let used = matcher.sequence(slot).to_vec();
        let path = self.path.display();
        let note = |level, message| Note::Changed { door: self.door, level, message };
        let next = match mark_used(store, &self.path, &used) {
            Ok(marked) => {
                if !marked {
                    let message = format!("the used sequence is no longer in {path}; nothing to mark");
                    out.notes.push(note(log::Level::Warn, message));
                }
                current(store, &self.path)
            }
            Err(e) => {
                let who = out.grants.pop().map(|g| g.src.to_string()).unwrap_or_default();
                let message =
                    format!("{who}: one-time sequence refused: it could not be marked used: {e}: door disabled");
                out.notes.push(note(log::Level::Error, message));
                return matcher.set_sequence(slot, Vec::new());
            }
        };
        let sequence = match next {
            Ok(Some(sequence)) => {
                out.notes.push(note(log::Level::Info, "next one-time sequence loaded".into()));
                sequence
            }
            Ok(None) => {
                out.notes.push(note(log::Level::Warn, format!("no more one-time sequences in {path}: door disabled")));
                Vec::new()
            }
            Err(e) => {
                out.notes.push(note(log::Level::Error, format!("{e}: door disabled")));
                Vec::new()
            }
        };
        matcher.set_sequence(slot, sequence);
    }
}
