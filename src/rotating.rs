//! Rotating sequences: the knock changes every step, derived from a shared secret, the door's
//! name and the step counter with HMAC-SHA256. The derivation is specified in doc/rotating.md;
//! the daemon and the `knock` client both use this module.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{PortProto, Rotating};

/// Domain separation: a MAC made for anything else is never a valid sequence.
pub const CONTEXT: &[u8] = b"knockd-rotating-v1";
/// Shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;

/// A secret file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("secret file {}: {message}", path.display())]
pub struct SecretError {
    pub path: PathBuf,
    pub message: String,
}

/// The step a moment falls in: whole steps since the Unix epoch.
pub fn counter(unix_now: Duration, step: Duration) -> u64 {
    (unix_now.as_millis() / step.as_millis().max(1)) as u64
}

/// The sequence of `door` for step `counter`.
pub fn sequence(secret: &[u8], door: &str, counter: u64, rotating: &Rotating) -> Vec<PortProto> {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(CONTEXT);
    mac.update(&[0]);
    mac.update(door.as_bytes());
    mac.update(&[0]);
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let (low, high) = rotating.ports;
    let span = u32::from(high - low) + 1;
    digest
        .chunks_exact(4)
        .take(rotating.length)
        .map(|word| {
            let word = u32::from_be_bytes(word.try_into().expect("4 bytes"));
            PortProto::new(low + (word % span) as u16, rotating.proto)
        })
        .collect()
}

/// Reads a secret file: its bytes, less one trailing newline, at least [`MIN_SECRET`] long. Like
/// a config, it must not be writable by other users.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, SecretError> {
    let error = |message: String| SecretError { path: path.to_owned(), message };
    crate::config::check_private(path).map_err(|m| error(format!("refusing to use it: {m}")))?;
    let mut secret = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    if secret.ends_with(b"\n") {
        secret.pop();
        if secret.ends_with(b"\r") {
            secret.pop();
        }
    }
    if secret.len() < MIN_SECRET {
        return Err(error(format!(
            "the secret is {} bytes: use at least {MIN_SECRET} (e.g. `head -c 32 /dev/urandom | base64 > FILE`)",
            secret.len()
        )));
    }
    Ok(secret)
}
