//! The filesystem as door kinds' [`Store`]: files read only when other users cannot have
//! written them, journals appended with one `write` (and a sync when asked), files replaced
//! atomically (`config::private_file`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{AppendError, PrivateFileError, Store};
use crate::config::private_file::{self, Trust};

/// The filesystem, with the users whose files are trusted like root's.
#[derive(Debug, Default)]
pub struct FileStore {
    trust: Trust,
    /// Journals opened for appending, by path: opened on the first line, and again after a
    /// failed write or a replacement (the descriptor would point at the unlinked old file).
    journals: HashMap<PathBuf, File>,
}

impl FileStore {
    /// The filesystem, trusting the files of `trust`'s users like root's.
    pub fn new(trust: Trust) -> Self {
        FileStore { trust, journals: HashMap::new() }
    }
}

/// Opens the journal at `path` for appending, never through a symlink, and writes `header`
/// into a new or empty one.
fn open_journal(path: &Path, header: &[u8]) -> io::Result<File> {
    let mut file =
        std::fs::OpenOptions::new().append(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)?;
    if file.metadata()?.len() == 0 {
        file.write_all(header)?;
    }
    Ok(file)
}

impl Store for FileStore {
    fn read(&mut self, path: &Path, max: u64, secret: bool) -> Result<Vec<u8>, PrivateFileError> {
        let (bytes, meta) = private_file::read_private_with_metadata(path, max, &self.trust)?;
        // The mode of the file that was read (fstat), not of whatever the path names by now.
        match private_file::readable_by_others(&meta, path, "the secret").filter(|_| secret) {
            Some(message) => Err(PrivateFileError::Unsafe(message)),
            None => Ok(bytes),
        }
    }

    fn append(&mut self, path: &Path, header: &[u8], bytes: &[u8], sync: bool) -> Result<(), AppendError> {
        let file = match self.journals.entry(path.to_owned()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(open_journal(path, header).map_err(AppendError::Open)?)
            }
        };
        let written = file.write_all(bytes).and_then(|()| if sync { file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // A line may be half written: append on a fresh descriptor next time.
            self.journals.remove(path);
            return Err(AppendError::Write(e));
        }
        Ok(())
    }

    fn replace(&mut self, path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
        self.journals.remove(path);
        let mode = match mode {
            Some(mode) => mode,
            None => std::fs::metadata(path)?.permissions().mode(),
        };
        private_file::write_atomic(path, bytes, mode)
    }

    fn uid(&self) -> u32 {
        nix::unistd::geteuid().as_raw()
    }
}
