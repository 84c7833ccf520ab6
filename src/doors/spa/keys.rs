//! SPA key files: Ed25519 key pairs (made by `knock --spa-keygen`, [`crate::client::keygen`])
//! and HMAC shared secrets. Read through a [`Store`]; the path-only readers are the `knock`
//! client's, which reads as the user it runs as.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::wire::KEY_ID_LEN;

use crate::doors::key_file::{self, KeyFileError};
use crate::store::{FileStore, Store};

/// What the first word of an Ed25519 secret key file is.
pub const SECRET_TAG: &str = "knockd-ed25519-secret";
/// What the first word of an Ed25519 public key file is.
pub const PUBLIC_TAG: &str = "knockd-ed25519-public";

/// A client's key.
pub enum Key {
    /// An Ed25519 secret key: the client signs, the server holds only the public key.
    Ed25519(SigningKey),
    /// A shared HMAC-SHA256 key, the same on both sides.
    Hmac(Vec<u8>),
}

impl Key {
    /// The id a packet signed with this key carries (doc/spa.md).
    pub fn id(&self) -> [u8; KEY_ID_LEN] {
        match self {
            Key::Ed25519(k) => public_key_id(&k.verifying_key()),
            Key::Hmac(secret) => hmac_key_id(secret),
        }
    }
}

/// An Ed25519 key's id: the first 8 bytes of SHA-256 of the public key.
pub fn public_key_id(key: &VerifyingKey) -> [u8; KEY_ID_LEN] {
    Sha256::digest(key.as_bytes())[..KEY_ID_LEN].try_into().expect("8 of 32 bytes")
}

/// A shared key's id: the first 8 bytes of HMAC-SHA256 of a fixed text, keyed with the key (so
/// the id tells nothing about the key).
pub fn hmac_key_id(secret: &[u8]) -> [u8; KEY_ID_LEN] {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"knockd-spa-key-id");
    mac.finalize().into_bytes()[..KEY_ID_LEN].try_into().expect("8 of 32 bytes")
}

fn key_error(path: &Path, message: impl Into<String>) -> KeyFileError {
    KeyFileError::new("key file", path, message)
}

/// The 32 bytes after `tag` in a key file, or `None` if the file does not start with `tag`.
fn tagged_hex(store: &mut dyn Store, path: &Path, tag: &str) -> Result<Option<[u8; 32]>, KeyFileError> {
    let bytes = key_file::read_private(store, "key file", path)?;
    let text = String::from_utf8_lossy(&bytes);
    let Some(hex_text) = text.trim().strip_prefix(tag) else { return Ok(None) };
    let bytes = hex::decode(hex_text.trim()).map_err(|_| key_error(path, "the key is not hexadecimal"))?;
    bytes.try_into().map(Some).map_err(|_| key_error(path, "an Ed25519 key is 32 bytes"))
}

/// Reads a client's public key file (`knockd-ed25519-public <hex>`) from `store`.
pub fn read_public_key_in(store: &mut dyn Store, path: &Path) -> Result<VerifyingKey, KeyFileError> {
    let bytes = tagged_hex(store, path, PUBLIC_TAG)?
        .ok_or_else(|| key_error(path, format!("expected `{PUBLIC_TAG} <hex>`")))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| key_error(path, "not a valid Ed25519 public key"))
}

/// Reads a client's public key file (`knockd-ed25519-public <hex>`).
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, KeyFileError> {
    read_public_key_in(&mut FileStore::default(), path)
}

/// Reads a client key: an Ed25519 secret key file, or else an HMAC shared secret.
pub fn read_key(path: &Path) -> Result<Key, KeyFileError> {
    let store = &mut FileStore::default();
    if let Some(seed) = tagged_hex(store, path, SECRET_TAG)? {
        return Ok(Key::Ed25519(SigningKey::from_bytes(&seed)));
    }
    key_file::read_secret(store, "key file", path).map(Key::Hmac)
}
