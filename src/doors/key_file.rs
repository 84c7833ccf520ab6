//! Files that hold secrets (rotating secrets, SPA keys): read whole, refused if other users can
//! write them, since whoever can change them can open the firewall.

use std::path::{Path, PathBuf};

/// Shortest shared secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;

/// A key or secret file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {message}", path.display())]
pub struct KeyFileError {
    /// "secret file", "key file"
    pub what: &'static str,
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it, and how to fix it.
    pub message: String,
}

impl KeyFileError {
    /// An error about the file at `path`.
    pub fn new(what: &'static str, path: &Path, message: impl Into<String>) -> Self {
        KeyFileError { what, path: path.to_owned(), message: message.into() }
    }
}

/// Reads a file whole, after checking that only its owner (root or us) can write it.
pub fn read_private(what: &'static str, path: &Path) -> Result<Vec<u8>, KeyFileError> {
    crate::config::read_private(path, 1 << 16).map_err(|e| KeyFileError::new(what, path, e.to_string()))
}

/// Reads a shared secret: the file's bytes less one trailing newline, at least [`MIN_SECRET`].
pub fn read_secret(what: &'static str, path: &Path) -> Result<Vec<u8>, KeyFileError> {
    let mut secret = read_private(what, path)?;
    if secret.ends_with(b"\n") {
        secret.pop();
        if secret.ends_with(b"\r") {
            secret.pop();
        }
    }
    if secret.len() < MIN_SECRET {
        return Err(KeyFileError::new(
            what,
            path,
            format!(
                "the secret is {} bytes: use at least {MIN_SECRET} (e.g. `head -c 32 /dev/urandom | base64 > FILE`)",
                secret.len()
            ),
        ));
    }
    Ok(secret)
}
