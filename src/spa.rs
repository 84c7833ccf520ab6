//! Single-packet authorization: one UDP datagram that proves who sent it, for which door, when.
//! The layout is specified byte by byte in doc/spa.md. The daemon never answers, so the SPA
//! port looks closed to a scanner.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hashlink::LinkedHashMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Spa;

pub const VERSION: u8 = 1;
pub const AUTH_ED25519: u8 = 1;
pub const AUTH_HMAC_SHA256: u8 = 2;
pub const NONCE_LEN: usize = 16;
/// Nonces remembered for replay protection; only authenticated packets are remembered.
pub const REPLAY_CACHE: usize = 65_536;
const SECRET_TAG: &str = "knockd-ed25519-secret";
const PUBLIC_TAG: &str = "knockd-ed25519-public";

/// What a packet asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Seconds since the Unix epoch when the client sent it.
    pub timestamp: u64,
    pub nonce: [u8; NONCE_LEN],
    pub door: String,
    /// The address to open for, when it is not the packet's source (a client behind NAT).
    pub address: Option<IpAddr>,
}

/// A client's key.
pub enum Key {
    Ed25519(SigningKey),
    Hmac(Vec<u8>),
}

/// Why a packet was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpaError {
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("unknown version {0}")]
    Version(u8),
    #[error("for another door")]
    OtherDoor,
    #[error("no key of this door checks this kind of signature")]
    NoKey,
    #[error("bad signature")]
    BadSignature,
    #[error("timestamp {skew_secs}s away from this host's clock")]
    Stale { skew_secs: i64 },
    #[error("replayed")]
    Replayed,
}

/// The part every packet starts with, signed together with everything after it.
fn body(request: &Request, auth: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[VERSION, auth]);
    out.extend_from_slice(&request.timestamp.to_be_bytes());
    out.extend_from_slice(&request.nonce);
    out.push(request.door.len() as u8);
    out.extend_from_slice(request.door.as_bytes());
    match request.address {
        None => out.push(0),
        Some(IpAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
    out
}

/// The datagram for `request`, signed with `key`.
pub fn encode(request: &Request, key: &Key) -> Vec<u8> {
    match key {
        Key::Ed25519(k) => {
            let mut packet = body(request, AUTH_ED25519);
            let signature = k.sign(&packet);
            packet.extend_from_slice(&signature.to_bytes());
            packet
        }
        Key::Hmac(secret) => {
            let mut packet = body(request, AUTH_HMAC_SHA256);
            let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(&packet);
            packet.extend_from_slice(&mac.finalize().into_bytes());
            packet
        }
    }
}

/// A parsed packet: the request, its authentication kind, what was signed and the tag.
pub struct Packet<'a> {
    pub auth: u8,
    pub request: Request,
    pub signed: &'a [u8],
    pub tag: &'a [u8],
}

/// Reads a packet front to back; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SpaError> {
        let slice = self.bytes.get(self.at..self.at + n).ok_or(SpaError::Malformed("too short"))?;
        self.at += n;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, SpaError> {
        Ok(self.take(1)?[0])
    }
}

/// Parses a datagram without checking its signature. Never panics on any input.
pub fn decode(bytes: &[u8]) -> Result<Packet<'_>, SpaError> {
    let mut c = Cursor { bytes, at: 0 };
    let version = c.byte()?;
    if version != VERSION {
        return Err(SpaError::Version(version));
    }
    let auth = c.byte()?;
    let timestamp = u64::from_be_bytes(c.take(8)?.try_into().expect("8 bytes"));
    let nonce: [u8; NONCE_LEN] = c.take(NONCE_LEN)?.try_into().expect("16 bytes");
    let door_len = usize::from(c.byte()?);
    if door_len == 0 || door_len > 32 {
        return Err(SpaError::Malformed("door name length"));
    }
    let door = std::str::from_utf8(c.take(door_len)?).map_err(|_| SpaError::Malformed("door name"))?.to_owned();
    let address = match c.byte()? {
        0 => None,
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(c.take(4)?).expect("4 bytes")))),
        6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(c.take(16)?).expect("16 bytes")))),
        _ => return Err(SpaError::Malformed("address type")),
    };
    let signed_len = c.at;
    let tag_len = match auth {
        AUTH_ED25519 => 64,
        AUTH_HMAC_SHA256 => 32,
        _ => return Err(SpaError::Malformed("authentication type")),
    };
    let tag = c.take(tag_len)?;
    if c.at != bytes.len() {
        return Err(SpaError::Malformed("trailing bytes"));
    }
    Ok(Packet { auth, request: Request { timestamp, nonce, door, address }, signed: &bytes[..signed_len], tag })
}

/// Checks packets for one door.
pub struct Verifier {
    hmac: Option<Vec<u8>>,
    public: Vec<VerifyingKey>,
    window: Duration,
    /// Nonces of accepted packets, oldest first.
    seen: LinkedHashMap<[u8; NONCE_LEN], (), std::hash::RandomState>,
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("key file {}: {message}", path.display())]
pub struct KeyError {
    pub path: PathBuf,
    pub message: String,
}

impl Verifier {
    pub fn new(hmac: Option<Vec<u8>>, public: Vec<VerifyingKey>, window: Duration) -> Self {
        Verifier { hmac, public, window, seen: LinkedHashMap::with_hasher(std::hash::RandomState::new()) }
    }

    /// The verifier for a door's `spa:` settings, with its key files read.
    pub fn from_config(spa: &Spa) -> Result<Self, KeyError> {
        let hmac = spa
            .hmac_key_file
            .as_deref()
            .map(crate::rotating::read_secret)
            .transpose()
            .map_err(|e| KeyError { path: e.path, message: e.message })?;
        let public = spa.public_keys.iter().map(|p| read_public_key(p)).collect::<Result<_, _>>()?;
        Ok(Verifier::new(hmac, public, spa.window))
    }

    /// Accepts `bytes` for `door` at `unix_now`, or says why not. An accepted packet's nonce is
    /// remembered, so the same packet is never accepted twice.
    pub fn verify(&mut self, bytes: &[u8], door: &str, unix_now: Duration) -> Result<Request, SpaError> {
        let packet = decode(bytes)?;
        if packet.request.door != door {
            return Err(SpaError::OtherDoor);
        }
        match packet.auth {
            AUTH_HMAC_SHA256 => {
                let secret = self.hmac.as_ref().ok_or(SpaError::NoKey)?;
                let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
                mac.update(packet.signed);
                mac.verify_slice(packet.tag).map_err(|_| SpaError::BadSignature)?;
            }
            _ => {
                if self.public.is_empty() {
                    return Err(SpaError::NoKey);
                }
                let signature = Signature::from_slice(packet.tag).map_err(|_| SpaError::BadSignature)?;
                if !self.public.iter().any(|k| k.verify_strict(packet.signed, &signature).is_ok()) {
                    return Err(SpaError::BadSignature);
                }
            }
        }
        let skew = packet.request.timestamp as i64 - unix_now.as_secs() as i64;
        if skew.unsigned_abs() > self.window.as_secs() {
            return Err(SpaError::Stale { skew_secs: skew });
        }
        if self.seen.contains_key(&packet.request.nonce) {
            return Err(SpaError::Replayed);
        }
        if self.seen.len() >= REPLAY_CACHE {
            self.seen.pop_front();
        }
        self.seen.insert(packet.request.nonce, ());
        Ok(packet.request)
    }
}

/// A fresh random nonce.
pub fn nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).expect("the kernel's random source");
    nonce
}

fn key_error(path: &Path, message: impl Into<String>) -> KeyError {
    KeyError { path: path.to_owned(), message: message.into() }
}

fn tagged_hex(path: &Path, tag: &str) -> Result<Option<[u8; 32]>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| key_error(path, e.to_string()))?;
    let Some(hex_text) = text.trim().strip_prefix(tag) else { return Ok(None) };
    let bytes = hex::decode(hex_text.trim()).map_err(|_| key_error(path, "the key is not hexadecimal"))?;
    bytes.try_into().map(Some).map_err(|_| key_error(path, "an Ed25519 key is 32 bytes"))
}

/// Reads a client's public key file (`knockd-ed25519-public <hex>`).
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let bytes =
        tagged_hex(path, PUBLIC_TAG)?.ok_or_else(|| key_error(path, format!("expected `{PUBLIC_TAG} <hex>`")))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| key_error(path, "not a valid Ed25519 public key"))
}

/// Reads a client key: an Ed25519 secret key file, or else an HMAC shared secret.
pub fn read_key(path: &Path) -> Result<Key, KeyError> {
    crate::config::check_private(path).map_err(|m| key_error(path, format!("refusing to use it: {m}")))?;
    if let Some(seed) = tagged_hex(path, SECRET_TAG)? {
        return Ok(Key::Ed25519(SigningKey::from_bytes(&seed)));
    }
    crate::rotating::read_secret(path).map(Key::Hmac).map_err(|e| KeyError { path: e.path, message: e.message })
}

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
