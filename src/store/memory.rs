//! A [`Store`] in memory, for tests: what a door kind reads and keeps, without a filesystem,
//! and writes that fail on demand.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::{AppendError, PrivateFileError, Store};

/// Files in memory. Every file is private; writes fail while `failing` is set.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    /// The files, by path.
    pub files: HashMap<PathBuf, Vec<u8>>,
    /// Makes every append and replacement fail, as a full disk or a read-only directory does.
    pub failing: bool,
}

impl MemoryStore {
    /// The text of the file at `path`, if there is one.
    pub fn text(&self, path: &Path) -> Option<String> {
        self.files.get(path).map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }
}

impl Store for MemoryStore {
    fn read(&mut self, path: &Path, max: u64, _secret: bool) -> Result<Vec<u8>, PrivateFileError> {
        let bytes = self.files.get(path).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        if bytes.len() as u64 > max {
            return Err(PrivateFileError::TooLarge);
        }
        Ok(bytes.clone())
    }

    fn append(&mut self, path: &Path, header: &[u8], bytes: &[u8], _sync: bool) -> Result<(), AppendError> {
        if self.failing {
            return Err(AppendError::Write(io::Error::other("the store is failing (a test)")));
        }
        let file = self.files.entry(path.to_owned()).or_default();
        if file.is_empty() {
            file.extend_from_slice(header);
        }
        file.extend_from_slice(bytes);
        Ok(())
    }

    fn replace(&mut self, path: &Path, bytes: &[u8], _mode: Option<u32>) -> io::Result<()> {
        if self.failing {
            return Err(io::Error::other("the store is failing (a test)"));
        }
        self.files.insert(path.to_owned(), bytes.to_vec());
        Ok(())
    }

    fn uid(&self) -> u32 {
        0
    }
}
