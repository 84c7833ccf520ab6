//! Checks SPA packets for one door: cheap checks, the signature, the replay cache.

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SpaError;
use super::keys::{hmac_key_id, public_key_id, read_public_key};
use super::wire::{self, KEY_ID_LEN, Request, decode};
use crate::config::Spa;
use crate::doors::key_file::{self, KeyFileError};
use crate::doors::replay::{self, ReplayCache};

/// Nonces remembered for replay protection; only authenticated packets are remembered.
pub const REPLAY_CACHE: usize = replay::CAPACITY;

/// An accepted packet and the name of the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What the packet asks for.
    pub request: Request,
    /// The key file's name without directory and `.pub`: `alice` for `/etc/knockd/alice.pub`.
    pub key: String,
}

/// A key the door checks packets with.
enum DoorKey {
    Ed25519(VerifyingKey),
    Hmac(Vec<u8>),
}

/// A named key and its id.
struct NamedKey {
    name: String,
    id: [u8; KEY_ID_LEN],
    key: DoorKey,
}

/// Checks packets for one door.
pub struct Verifier {
    keys: Vec<NamedKey>,
    window: Duration,
    require_address: bool,
    /// Nonces of accepted packets, until they are too old to be replayed.
    replay: ReplayCache,
    /// When this host booted (Unix time), once told: packets sent before are refused.
    boot: Option<Duration>,
}

/// A key's name: its file name without directory and extension.
fn key_name(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

fn replay_key(request: &Request) -> replay::Key {
    let mut key = [0u8; 32];
    key[..request.nonce.len()].copy_from_slice(&request.nonce);
    key
}

impl Verifier {
    /// A verifier with these named keys (an HMAC key, Ed25519 public keys), in memory only.
    pub fn new(hmac: Option<(String, Vec<u8>)>, public: Vec<(String, VerifyingKey)>, window: Duration) -> Self {
        let mut keys: Vec<NamedKey> = public
            .into_iter()
            .map(|(name, k)| NamedKey { name, id: public_key_id(&k), key: DoorKey::Ed25519(k) })
            .collect();
        keys.extend(hmac.map(|(name, secret)| NamedKey { name, id: hmac_key_id(&secret), key: DoorKey::Hmac(secret) }));
        Verifier { keys, window, require_address: false, replay: ReplayCache::in_memory(), boot: None }
    }

    /// The verifier for a door's `spa:` settings, with its key files read.
    pub fn from_config(spa: &Spa, replay: ReplayCache) -> Result<Self, KeyFileError> {
        let hmac = match &spa.hmac_key_file {
            Some(path) => Some((key_name(path), key_file::read_secret("key file", path)?)),
            None => None,
        };
        let public =
            spa.public_keys.iter().map(|p| Ok((key_name(p), read_public_key(p)?))).collect::<Result<_, _>>()?;
        let mut verifier = Verifier::new(hmac, public, spa.window);
        verifier.require_address = spa.require_address;
        verifier.replay = replay;
        Ok(verifier)
    }

    /// The keys a packet may be signed with: the one its key id names, or (version 1) every key
    /// of its authentication type.
    fn candidates<'a>(&'a self, packet: &'a wire::Packet<'_>) -> impl Iterator<Item = &'a NamedKey> {
        self.keys.iter().filter(move |k| {
            let kind_fits = matches!(
                (&k.key, packet.auth),
                (DoorKey::Ed25519(_), wire::AUTH_ED25519) | (DoorKey::Hmac(_), wire::AUTH_HMAC_SHA256)
            );
            kind_fits && packet.key_id.is_none_or(|id| id == k.id)
        })
    }

    /// Every check that costs next to nothing, in order: time window, replay, key, address.
    /// Returns what checking the signature will cost, in Ed25519 verifications.
    pub fn screen(&self, packet: &wire::Packet<'_>, unix_now: Duration) -> Result<u32, SpaError> {
        let (ts, now) = (packet.request.timestamp, unix_now.as_secs());
        let skew = ts.abs_diff(now);
        if skew > self.window.as_secs() {
            let magnitude = i64::try_from(skew).unwrap_or(i64::MAX);
            return Err(SpaError::Stale { skew_secs: if ts > now { magnitude } else { -magnitude } });
        }
        if self.boot.is_some_and(|boot| ts < boot.as_secs()) {
            // What was accepted before a crash of the host may not have reached the disk.
            return Err(SpaError::BeforeBoot);
        }
        if self.replay.contains(&replay_key(&packet.request)) {
            return Err(SpaError::Replayed);
        }
        if self.require_address && packet.request.address.is_none() {
            return Err(SpaError::NoAddress);
        }
        let ed25519 = self.candidates(packet).filter(|k| matches!(k.key, DoorKey::Ed25519(_))).count();
        if ed25519 == 0 && self.candidates(packet).next().is_none() {
            return Err(SpaError::NoKey);
        }
        Ok(ed25519 as u32)
    }

    /// Accepts `bytes` for `door` at `unix_now`, or says why not. An accepted packet's nonce is
    /// remembered, on disk first, so the same packet is never accepted twice: a nonce that
    /// cannot be written refuses the packet ([`SpaError::Unrecorded`]).
    pub fn verify(&mut self, bytes: &[u8], door: &str, unix_now: Duration) -> Result<Verified, SpaError> {
        let packet = decode(bytes)?;
        if packet.request.door != door {
            return Err(SpaError::OtherDoor);
        }
        self.screen(&packet, unix_now)?;
        let key = self.authenticate(&packet)?;
        let until = packet.request.timestamp.saturating_add(self.window.as_secs());
        self.replay.record(replay_key(&packet.request), until).map_err(|e| SpaError::Unrecorded(e.to_string()))?;
        Ok(Verified { request: packet.request, key })
    }

    /// The name of the key that signed the packet: one verification with a key id.
    fn authenticate(&self, packet: &wire::Packet<'_>) -> Result<String, SpaError> {
        let signature = Signature::from_slice(packet.tag).ok();
        let verifies = |k: &&NamedKey| match &k.key {
            DoorKey::Hmac(secret) => {
                let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
                mac.update(packet.signed);
                mac.verify_slice(packet.tag).is_ok()
            }
            DoorKey::Ed25519(public) => signature.is_some_and(|s| public.verify_strict(packet.signed, &s).is_ok()),
        };
        self.candidates(packet).find(verifies).map(|k| k.name.clone()).ok_or(SpaError::BadSignature)
    }

    /// Forgets nonces too old to be replayed at `unix_now`, and compacts the journal when it is
    /// time; says why a compaction failed.
    pub fn expire(&mut self, unix_now: Duration) -> Result<(), replay::ReplayError> {
        self.replay.expire(unix_now)
    }

    /// When this host booted, as Unix time: packets timestamped before are refused.
    pub fn set_boot_time(&mut self, boot: Duration) {
        self.boot = Some(boot);
    }

    /// Takes over the replay cache of the verifier this one replaces (a reload).
    pub fn take_replay_cache(&mut self, old: &mut Verifier) {
        std::mem::swap(&mut self.replay, &mut old.replay);
    }
}
