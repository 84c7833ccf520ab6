//! Files that hold keys (rotating secrets, SPA keys, fwknop keys): read whole, through the
//! [`Store`] the caller hands in, refused if other users can write them (whoever can change
//! them can open the firewall) and, for secrets, if other users can read them.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::store::{PrivateFileError, Store};

/// Base64 as fwknop writes it: the standard alphabet, with or without `=` padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes base64 as fwknop writes it; `None` if it is not base64.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text.trim()).ok()
}

/// Encodes as fwknop does: the standard alphabet, without padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

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

/// Reads a file whole, after checking that only its owner (root or us) can write it. A file
/// that does not exist is an error that says how to make one.
pub fn read_private(store: &mut dyn Store, what: &'static str, path: &Path) -> Result<Vec<u8>, KeyFileError> {
    store.read(path, 1 << 16, false).map_err(|e| match e {
        PrivateFileError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            KeyFileError::new(what, path, format!("it does not exist: {}", how_to_make(what, path)))
        }
        e => KeyFileError::new(what, path, e.to_string()),
    })
}

/// How to make the key or secret file `path` that a door (`what`) reads.
fn how_to_make(what: &str, path: &Path) -> String {
    let file = path.display();
    let random = format!("`head -c 32 /dev/urandom > {file} && chmod 600 {file}`");
    let public = path.extension().is_some_and(|e| e == "pub");
    match what {
        "secret file" => format!("make one with {random}, and give each client a copy (`knock --secret-file`)"),
        "key file" if public => {
            let name = path.with_extension("");
            format!(
                "`knock --spa-keygen {}` writes the client's secret key there and this public key beside it",
                name.display()
            )
        }
        "key file" => format!(
            "for a shared HMAC key, make one with {random} and give the client a copy; for Ed25519, `knock \
             --spa-keygen NAME` writes NAME (the client's) and NAME.pub (list that under `public_keys`)"
        ),
        _ => format!(
            "`fwknop --key-gen` prints a KEY_BASE64 and an HMAC_KEY_BASE64: write the value into {file}, mode 600"
        ),
    }
}

/// Reads a file that holds a secret: like [`read_private`], and other users must not be able
/// to read it either.
pub fn read_secret_bytes(store: &mut dyn Store, what: &'static str, path: &Path) -> Result<Vec<u8>, KeyFileError> {
    store.read(path, 1 << 16, true).map_err(|e| KeyFileError::new(what, path, e.to_string()))
}

/// Reads a shared secret: the file's bytes less one trailing newline, at least [`MIN_SECRET`].
pub fn read_secret(store: &mut dyn Store, what: &'static str, path: &Path) -> Result<Vec<u8>, KeyFileError> {
    let mut secret = read_secret_bytes(store, what, path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing key or secret file says how to make one, for the kind of door that reads it.
    #[test]
    fn a_missing_file_says_how_to_make_one() {
        let missing = std::env::temp_dir().join(format!("knockd-no-such-key-{}", std::process::id()));
        let store = &mut crate::store::FileStore::default();
        let mut error = |what, path: &Path| read_private(store, what, path).unwrap_err().to_string();
        let secret = error("secret file", &missing);
        assert!(secret.contains("does not exist") && secret.contains("head -c 32 /dev/urandom > "), "{secret}");
        let public = error("key file", &missing.with_extension("pub"));
        assert!(public.contains(&format!("knock --spa-keygen {}", missing.display())), "{public}");
        let hmac = error("key file", &missing);
        assert!(hmac.contains("head -c 32 /dev/urandom") && hmac.contains("knock --spa-keygen NAME"), "{hmac}");
        let fwknop = error("fwknop HMAC key", &missing);
        assert!(fwknop.contains("fwknop --key-gen") && fwknop.contains("HMAC_KEY_BASE64"), "{fwknop}");
    }
}
