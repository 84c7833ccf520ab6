//! Checks SPA packets for one door: cheap checks, the signature, the replay cache.

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Spa;
use super::SpaError;
use super::keys::{hmac_key_id, public_key_id, read_public_key_in};
use super::wire::{self, KEY_ID_LEN, Request, decode};
use crate::doors::Clock;
use crate::doors::key_file::{self, KeyFileError};
use crate::doors::replay::{self, ReplayCache};
use crate::store::Store;

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
    /// Nonces of accepted packets, until they are too old to be replayed (in memory: the door
    /// keeps them on disk first).
    replay: ReplayCache,
    /// When this host booted (Unix time), for [`Verifier::verify`]: the door passes its clock.
    boot: Duration,
}

/// A packet that passed every check, not remembered yet: the door writes its nonce to the
/// journal first ([`Verifier::remember`]).
#[derive(Debug)]
pub struct Checked {
    /// What was verified.
    pub verified: Verified,
    /// The nonce the packet is remembered by.
    pub nonce: replay::Key,
    /// Until when (Unix time) it must be remembered.
    pub until: u64,
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
        Verifier { keys, window, require_address: false, replay: ReplayCache::in_memory(), boot: Duration::ZERO }
    }

    /// The verifier for a door's `spa:` settings, with its key files read from `store`.
    pub fn from_config(spa: &Spa, replay: ReplayCache, store: &mut dyn Store) -> Result<Self, KeyFileError> {
        let hmac = match &spa.hmac_key_file {
            Some(path) => Some((key_name(path), key_file::read_secret(store, "key file", path)?)),
            None => None,
        };
        let mut public = Vec::new();
        for path in &spa.public_keys {
            public.push((key_name(path), read_public_key_in(store, path)?));
        }
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

    /// Every check that costs next to nothing, in order: time window, boot, replay, key,
    /// address. Returns what checking the signature will cost, in Ed25519 verifications.
    pub fn screen(&self, packet: &wire::Packet<'_>, clock: &Clock) -> Result<u32, SpaError> {
        let (ts, now) = (packet.request.timestamp, clock.unix.as_secs());
        let skew = ts.abs_diff(now);
        if skew > self.window.as_secs() {
            let magnitude = i64::try_from(skew).unwrap_or(i64::MAX);
            return Err(SpaError::Stale { skew_secs: if ts > now { magnitude } else { -magnitude } });
        }
        if ts < clock.boot.as_secs() {
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

    /// Checks `bytes` for `door` at `clock`, or says why not; the packet is not remembered
    /// yet: the door writes its nonce to the journal, then [`remember`](Verifier::remember)s it.
    pub fn check(&self, bytes: &[u8], door: &str, clock: &Clock) -> Result<Checked, SpaError> {
        let packet = decode(bytes)?;
        if packet.request.door != door {
            return Err(SpaError::OtherDoor);
        }
        self.screen(&packet, clock)?;
        let key = self.authenticate(&packet)?;
        let until = packet.request.timestamp.saturating_add(self.window.as_secs());
        let nonce = replay_key(&packet.request);
        Ok(Checked { verified: Verified { request: packet.request, key }, nonce, until })
    }

    /// Remembers a checked packet's nonce (in memory), so the same packet is never accepted
    /// twice.
    pub fn remember(&mut self, checked: &Checked) {
        self.replay.insert(checked.nonce, checked.until);
    }

    /// Accepts `bytes` for `door` at `unix_now`, remembering it in memory, or says why not:
    /// [`check`](Verifier::check) and [`remember`](Verifier::remember) in one, for a verifier
    /// of its own (tests, the fuzzer).
    pub fn verify(&mut self, bytes: &[u8], door: &str, unix_now: Duration) -> Result<Verified, SpaError> {
        let clock = Clock { unix: unix_now, boot: self.boot, ..Clock::default() };
        let checked = self.check(bytes, door, &clock)?;
        self.remember(&checked);
        Ok(checked.verified)
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

    /// The nonces remembered, for the door to keep its journal with.
    pub fn replay_mut(&mut self) -> &mut ReplayCache {
        &mut self.replay
    }

    /// When this host booted, as Unix time, for [`verify`](Verifier::verify): packets
    /// timestamped before are refused. (A door passes its [`Clock`] to `check` instead.)
    pub fn set_boot_time(&mut self, boot: Duration) {
        self.boot = boot;
    }

    /// Takes in the replay cache of the verifier this one replaces (a reload), besides what
    /// this one read from its journal.
    pub fn take_replay_cache(&mut self, old: &mut Verifier) {
        self.replay.absorb(std::mem::take(&mut old.replay));
    }
}
