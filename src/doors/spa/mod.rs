//! Single-packet authorization: one UDP datagram that proves who sent it, for which door, when.
//! The layout is specified byte by byte in doc/spa.md ([`wire`]). The daemon never answers,
//! so the SPA port looks closed to a scanner.

pub mod keys;
pub mod wire;

use std::any::Any;
use std::path::Path;
use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};
use hashlink::LinkedHashMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use keys::{Key, generate, read_key, read_public_key};
pub use wire::{NONCE_LEN, Request, decode, encode, nonce};

use super::{DoorError, DoorId, DoorKind, Grant, Note, Outcomes, key_file};
use crate::config::{Config, Door, PortProto, Proto, Spa};
use crate::packet::Packet;

/// Nonces remembered for replay protection; only authenticated packets are remembered.
pub const REPLAY_CACHE: usize = 65_536;

/// Why a packet was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum SpaError {
    /// The packet does not parse; says which part.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// A version this daemon does not know.
    #[error("unknown version {0}")]
    Version(u8),
    /// The packet names another door (on the same port).
    #[error("for another door")]
    OtherDoor,
    /// The door has no key of the packet's authentication type.
    #[error("no key of this door checks this kind of signature")]
    NoKey,
    /// No key of the door verifies the signature.
    #[error("bad signature")]
    BadSignature,
    /// The timestamp is outside the window, by this many seconds.
    #[error("timestamp {skew_secs}s away from this host's clock")]
    Stale { skew_secs: i64 },
    /// The packet was accepted before.
    #[error("replayed")]
    Replayed,
}

/// An accepted packet and the name of the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What the packet asks for.
    pub request: Request,
    /// The key file's name without directory and `.pub`: `alice` for `/etc/knockd/alice.pub`.
    pub key: String,
}

/// Checks packets for one door.
pub struct Verifier {
    hmac: Option<(String, Vec<u8>)>,
    public: Vec<(String, VerifyingKey)>,
    window: Duration,
    /// Nonces of accepted packets, oldest first.
    seen: LinkedHashMap<[u8; NONCE_LEN], (), std::hash::RandomState>,
}

/// A key's name: its file name without directory and extension.
fn key_name(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

impl Verifier {
    /// A verifier with these named keys.
    pub fn new(hmac: Option<(String, Vec<u8>)>, public: Vec<(String, VerifyingKey)>, window: Duration) -> Self {
        Verifier { hmac, public, window, seen: LinkedHashMap::with_hasher(std::hash::RandomState::new()) }
    }

    /// The verifier for a door's `spa:` settings, with its key files read.
    pub fn from_config(spa: &Spa) -> Result<Self, key_file::KeyFileError> {
        let hmac = match &spa.hmac_key_file {
            Some(path) => Some((key_name(path), key_file::read_secret("key file", path)?)),
            None => None,
        };
        let public =
            spa.public_keys.iter().map(|p| Ok((key_name(p), read_public_key(p)?))).collect::<Result<_, _>>()?;
        Ok(Verifier::new(hmac, public, spa.window))
    }

    /// Accepts `bytes` for `door` at `unix_now`, or says why not. An accepted packet's nonce is
    /// remembered, so the same packet is never accepted twice.
    pub fn verify(&mut self, bytes: &[u8], door: &str, unix_now: Duration) -> Result<Verified, SpaError> {
        let packet = decode(bytes)?;
        if packet.request.door != door {
            return Err(SpaError::OtherDoor);
        }
        let key = self.authenticate(&packet)?;
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
        Ok(Verified { request: packet.request, key })
    }

    /// The name of the key that signed the packet.
    fn authenticate(&self, packet: &wire::Packet<'_>) -> Result<String, SpaError> {
        if packet.auth == wire::AUTH_HMAC_SHA256 {
            let (name, secret) = self.hmac.as_ref().ok_or(SpaError::NoKey)?;
            let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(packet.signed);
            mac.verify_slice(packet.tag).map_err(|_| SpaError::BadSignature)?;
            return Ok(name.clone());
        }
        if self.public.is_empty() {
            return Err(SpaError::NoKey);
        }
        let signature = Signature::from_slice(packet.tag).map_err(|_| SpaError::BadSignature)?;
        self.public
            .iter()
            .find(|(_, k)| k.verify_strict(packet.signed, &signature).is_ok())
            .map(|(name, _)| name.clone())
            .ok_or(SpaError::BadSignature)
    }
}

/// One door that takes SPA packets.
struct SpaDoor {
    id: DoorId,
    door: Door,
    port: u16,
    verifier: Verifier,
}

/// The SPA door kind.
pub struct SpaDoors {
    doors: Vec<SpaDoor>,
    unix_now: Duration,
}

/// The kind for `config`, if any door has `spa:`.
pub fn build(config: &Config) -> Result<Option<Box<dyn DoorKind>>, DoorError> {
    let mut doors = Vec::new();
    for (id, door) in config.doors.iter().enumerate() {
        let Some(spa) = door.spa() else { continue };
        let verifier =
            Verifier::from_config(spa).map_err(|e| DoorError { door: door.name.clone(), message: e.to_string() })?;
        doors.push(SpaDoor { id, door: door.clone(), port: spa.port, verifier });
    }
    if doors.is_empty() {
        return Ok(None);
    }
    Ok(Some(Box::new(SpaDoors { doors, unix_now: Duration::ZERO })))
}

impl DoorKind for SpaDoors {
    fn kind(&self) -> &'static str {
        "spa"
    }

    fn ports(&self, out: &mut Vec<PortProto>) {
        out.extend(self.doors.iter().map(|d| PortProto::udp(d.port)));
    }

    /// Every door listening on the port checks the packet; the first that accepts it grants.
    /// Rejections are reported, never answered.
    fn packet(&mut self, packet: &Packet<'_>, _now: Duration, out: &mut Outcomes) {
        let knock = &packet.knock;
        if knock.port.proto != Proto::Udp {
            return;
        }
        let src = knock.src;
        let Some(payload) = packet.payload else {
            return out.notes.push(Note::Rejected { door: None, src, reason: "SPA packet cut short".into() });
        };
        let mut rejected = None;
        for d in self.doors.iter_mut().filter(|d| d.port == knock.port.port) {
            match d.verifier.verify(payload, &d.door.name, self.unix_now) {
                Ok(verified) => {
                    let addr = verified.request.address.unwrap_or(src);
                    if !d.door.admits(&src) || !d.door.admits(&addr) {
                        let reason = format!("SPA packet for {addr} refused by the door's from/not_from");
                        rejected = Some(Note::Rejected { door: Some(d.id), src, reason });
                        continue;
                    }
                    out.notes.push(Note::Accepted { door: d.id, src });
                    return out.grants.push(Grant { door: d.id, addr, src, by: Some(verified.key) });
                }
                Err(SpaError::OtherDoor) => {}
                Err(e) => {
                    rejected =
                        Some(Note::Rejected { door: Some(d.id), src, reason: format!("SPA packet rejected: {e}") })
                }
            }
        }
        let reason = "SPA packet for no door on this port".to_owned();
        out.notes.push(rejected.unwrap_or(Note::Rejected { door: None, src, reason }));
    }

    fn set_wall_clock(&mut self, unix_now: Duration, _out: &mut Outcomes) {
        self.unix_now = unix_now;
    }

    /// Accepted nonces carry over a reload: a packet accepted before it stays refused after it.
    fn carry_over(&mut self, old: Box<dyn Any>) {
        let Ok(mut old) = old.downcast::<SpaDoors>() else { return };
        for d in &mut self.doors {
            if let Some(previous) = old.doors.iter_mut().find(|o| o.door.name == d.door.name) {
                d.verifier.seen = std::mem::take(&mut previous.verifier.seen);
            }
        }
    }
}
