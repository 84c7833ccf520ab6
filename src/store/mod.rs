//! Where door kinds read their files and keep what must survive a restart: handed to them as
//! an argument ([`Store`]), as the time is, so that no door kind opens, writes or syncs a file
//! itself. The daemon hands them the filesystem ([`FileStore`]); tests hand them memory
//! ([`MemoryStore`]), which can also be made to fail, to show that a door refuses what it
//! cannot make durable.
//!
//! What a door kind keeps: replay journals (`<state_dir>/<door>.replay`, `fwknop.replay`,
//! `<door>.rotating`), one line appended per accepted proof before the door opens; and
//! one-time sequence files, rewritten when a sequence is used. An append or a rewrite that
//! fails is an error the kind turns into a refusal: a proof it could not make durable would be
//! accepted again after a restart.

mod file;
mod memory;

use std::io;
use std::path::Path;

pub use crate::config::private_file::PrivateFileError;
pub use file::FileStore;
pub use memory::MemoryStore;

/// Why an append to a journal failed: at opening it, or at writing (a line may be half
/// written then: the next append starts on a fresh line).
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The journal could not be opened (or created).
    #[error("{0}")]
    Open(io::Error),
    /// The line could not be written (or synced).
    #[error("{0}")]
    Write(io::Error),
}

/// The files door kinds read and write. See the module documentation.
pub trait Store {
    /// Reads a file that decides what the firewall opens (a key, a one-time sequence file, a
    /// journal), at most `max` bytes, refused when other users could have written it; with
    /// `secret`, also when every user can read it.
    fn read(&mut self, path: &Path, max: u64, secret: bool) -> Result<Vec<u8>, PrivateFileError>;

    /// Appends `bytes` to the journal at `path`: made (mode 0600, never through a symlink) with
    /// `header` first when it is new or empty; synced to the disk before returning with `sync`.
    fn append(&mut self, path: &Path, header: &[u8], bytes: &[u8], sync: bool) -> Result<(), AppendError>;

    /// Replaces the file at `path` with `bytes` atomically and durably, with `mode` (`None`:
    /// the old file's), less any write bit for group or others.
    fn replace(&mut self, path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()>;

    /// The user the store writes as, for the fix an error message suggests.
    fn uid(&self) -> u32;
}
