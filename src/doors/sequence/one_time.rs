//! One-time sequences: a file of knock sequences, one per line, each used once.
//!
//! The first line that holds a valid sequence (not blank, not a `#` comment) is the door's
//! sequence. After a successful knock, that line is commented out by prefixing `#`, and the
//! file is replaced atomically with the old file's mode (`config::private_file::write_atomic`:
//! a new file under an unpredictable name, created exclusively with mode 0600, never through a
//! symlink, synced, renamed). A crash leaves either the old file or the new one.
//! Lines that do not parse are skipped, as in the classic knockd.

use std::any::Any;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::Source;
use super::matcher::{Matcher, SlotId};
use crate::config::PortProto;
use crate::config::private_file::write_atomic;
use crate::doors::{DoorId, Note, Outcomes};

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
    PortProto::parse_sequence(line).ok()
}

/// Reads the file, checking (on the file opened) that other users cannot write it: it holds
/// secrets that open the firewall.
fn read(path: &Path) -> Result<String, OneTimeError> {
    let bytes = crate::config::read_private(path, MAX_FILE).map_err(|e| OneTimeError {
        path: path.to_owned(),
        source: match e {
            crate::config::PrivateFileError::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::PermissionDenied, other.to_string()),
        },
    })?;
    String::from_utf8(bytes).map_err(|_| io_error(path)(std::io::ErrorKind::InvalidData.into()))
}

/// The first unused sequence in `path`; `None` when every one has been used.
pub fn current(path: &Path) -> Result<Option<Vec<PortProto>>, OneTimeError> {
    Ok(read(path)?.lines().find_map(parse_line))
}

/// Marks the first unused line holding `sequence` as used. Returns whether a line was marked
/// (false if someone removed it from the file meanwhile).
pub fn mark_used(path: &Path, sequence: &[PortProto]) -> Result<bool, OneTimeError> {
    let text = read(path)?;
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
        let mode = fs::metadata(path).map_err(io_error(path))?.permissions().mode();
        write_atomic(path, out.as_bytes(), mode).map_err(io_error(path))?;
    }
    Ok(marked)
}

/// A one-time door: its file, and the sequence in force.
pub(super) struct OneTime {
    door: DoorId,
    path: PathBuf,
}

impl OneTime {
    /// Reads the file and puts the door's first unused sequence in its slot (none: disabled).
    pub fn open(door: DoorId, name: &str, path: &Path, matcher: &mut Matcher) -> Result<Self, OneTimeError> {
        let current = current(path)?;
        if current.is_none() {
            log::warn!("{name}: no unused sequence left in {}: door disabled", path.display());
        }
        matcher.set_sequence(matcher.slots_of(door).start, current.unwrap_or_default());
        Ok(OneTime { door, path: path.to_owned() })
    }
}

impl Source for OneTime {
    fn door(&self) -> DoorId {
        self.door
    }

    /// Marks the sequence just used and switches the door to the next one, or disables it.
    fn opened(&mut self, slot: SlotId, matcher: &mut Matcher, out: &mut Outcomes) {
        let used = matcher.sequence(slot).to_vec();
        let path = self.path.display();
        let note = |level, message| Note::Changed { door: self.door, level, message };
        let next = mark_used(&self.path, &used).and_then(|marked| {
            if !marked {
                out.notes
                    .push(note(log::Level::Warn, format!("the used sequence is no longer in {path}; nothing to mark")));
            }
            current(&self.path)
        });
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

    fn as_any(&self) -> &dyn Any {
        self
    }
}
