//! `knock --spa-keygen`: a new Ed25519 key pair for single-packet authorization, written where
//! the client's user says (never over an existing file). The door kinds read keys; only the
//! client writes them.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use crate::doors::spa::keys::{PUBLIC_TAG, SECRET_TAG};

/// Writes a new Ed25519 key pair: `path` (secret, mode 600) and `path.pub`.
pub fn generate(path: &Path) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    let mut secret = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    writeln!(secret, "{SECRET_TAG} {}", hex::encode(seed))?;
    let public_path = PathBuf::from(format!("{}.pub", path.display()));
    std::fs::write(&public_path, format!("{PUBLIC_TAG} {}\n", hex::encode(key.verifying_key().to_bytes())))?;
    Ok(public_path)
}
