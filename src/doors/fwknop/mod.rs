//! Single-packet authorization from fwknop's clients (doc/fwknop.md): the packets the stock
//! `fwknop` client sends, checked as fwknopd checks them, against doors built from access.conf
//! stanzas or from `fwknop:` in knockd.yaml.
//!
//! For each packet: the cheap screen ([`wire::screen`]), then the stanzas that may take it (its
//! port, source, destination, not expired), then, within a budget shared fairly between source
//! prefixes, the HMAC of each of those in order, in constant time. The first stanza whose HMAC
//! key verifies decides: the replay cache, decryption, the inner digest, the time window, the
//! user, the address and the ports (`policy.rs`). Nothing is decrypted before an HMAC verifies.

mod digest;
pub mod message;
mod policy;
pub mod wire;

use std::any::Any;
use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use message::Message;

use super::budget::Budget;
use super::replay::ReplayCache;
use super::{DoorError, DoorId, DoorKind, Note, Outcomes};
use crate::capture::Lane;
use crate::config::{Config, Door, Fwknop, PortProto, Proto};
use crate::doors::key_file::{KeyFileError, read_key_material};
use crate::packet::Packet;

/// HMAC checks a second for every fwknop door together (a few percent of a core), and how many
/// may be spent at once.
const CHECKS_PER_SECOND: u32 = 100_000;
const CHECK_BURST: u32 = 512;
/// Source prefixes that may wait for their checks at once.
const WAITING_PREFIXES: usize = 4_096;

/// Why a packet was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum FwknopError {
    /// The packet, or its plaintext, does not parse; says which part.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// No stanza's HMAC key verifies it: a wrong key, or a changed packet.
    #[error("no stanza's HMAC key verifies it (a wrong key, or a changed packet)")]
    Hmac,
    /// The HMAC verified but the Rijndael key does not decrypt it.
    #[error("the HMAC verifies but the encryption key does not decrypt it (KEY_BASE64 differs from the client's)")]
    Decrypt,
    /// The digest inside does not match the plaintext.
    #[error("the digest inside does not match")]
    Digest,
    /// The packet was accepted before.
    #[error("replayed")]
    Replayed,
    /// The timestamp is outside the window, by this many seconds (ahead if positive).
    #[error("timestamp {skew_secs}s away from this host's clock")]
    Stale { skew_secs: i64 },
    /// Authentic, but the stanza does not allow what it asks; says what and why.
    #[error("{0}")]
    Refused(String),
    /// Timestamped before this host booted: a crash of the host may have lost its replay entry.
    #[error("sent before this host booted (its replay entry may have been lost with the crash that rebooted it)")]
    BeforeBoot,
    /// Authentic, but its replay entry could not be written; says why and the fix.
    #[error("refused: it could not be made replay-proof, so a restart could accept it again: {0}")]
    Unrecorded(String),
}

/// One door that takes fwknop's packets, with its keys read.
struct Stanza {
    id: DoorId,
    door: Door,
    fwknop: Fwknop,
    key: Vec<u8>,
    hmac_key: Vec<u8>,
}

/// A packet that passed the screen, waiting for its HMAC checks.
struct Waiting {
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    payload: String,
}

/// The fwknop door kind.
pub struct FwknopDoors {
    stanzas: Vec<Stanza>,
    /// Digests of accepted packets, for every stanza together (a packet is one client's).
    replay: ReplayCache,
    unix_now: Duration,
    /// When this host booted (Unix time), once told: packets sent before are refused.
    boot: Option<Duration>,
    budget: Budget<Waiting>,
    ready: Vec<Waiting>,
}

/// The file every fwknop door's replay cache is kept in, under `state_dir`.
pub const REPLAY_FILE: &str = "fwknop.replay";

fn read_keys(fwknop: &Fwknop) -> Result<(Vec<u8>, Vec<u8>), KeyFileError> {
    let key = read_key_material("fwknop key", &fwknop.key)?;
    let hmac_key = read_key_material("fwknop HMAC key", &fwknop.hmac_key)?;
    let at = std::path::Path::new("(the key)");
    if key.is_empty() || key.len() > wire::MAX_KEY {
        return Err(KeyFileError::new("fwknop key", at, format!("is {} bytes: fwknop's keys are 1 to 32", key.len())));
    }
    if hmac_key.is_empty() || hmac_key.len() > 128 {
        let message = format!("is {} bytes: fwknop's HMAC keys are 1 to 128", hmac_key.len());
        return Err(KeyFileError::new("fwknop HMAC key", at, message));
    }
    Ok((key, hmac_key))
}

/// The kind for `config`, if any door has `fwknop:`.
pub fn build(config: &Config) -> Result<Option<Box<dyn DoorKind>>, DoorError> {
    let mut stanzas = Vec::new();
    for (id, door) in config.doors.iter().enumerate() {
        let Some(fwknop) = door.fwknop() else { continue };
        let (key, hmac_key) =
            read_keys(fwknop).map_err(|e| DoorError { door: door.name.clone(), message: e.to_string() })?;
        stanzas.push(Stanza { id, door: door.clone(), fwknop: fwknop.clone(), key, hmac_key });
    }
    let Some(first) = stanzas.first() else { return Ok(None) };
    let replay = ReplayCache::open(&config.state_dir.join(REPLAY_FILE))
        .map_err(|e| DoorError { door: first.door.name.clone(), message: e.to_string() })?;
    Ok(Some(Box::new(FwknopDoors {
        stanzas,
        replay,
        unix_now: Duration::ZERO,
        boot: None,
        budget: Budget::new(CHECKS_PER_SECOND, CHECK_BURST, WAITING_PREFIXES),
        ready: Vec::new(),
    })))
}

/// The replay cache's key for a packet: the SHA-256 of its authenticated ciphertext.
fn replay_key(ciphertext: &str) -> [u8; 32] {
    Sha256::digest(ciphertext.as_bytes()).into()
}

impl FwknopDoors {
    /// The stanzas that may take a packet from `src` to `dst`, port `port`, in order.
    fn candidates(&self, src: IpAddr, dst: IpAddr, port: u16) -> impl Iterator<Item = usize> + '_ {
        let unix_now = self.unix_now.as_secs();
        self.stanzas.iter().enumerate().filter_map(move |(at, s)| {
            let f = &s.fwknop;
            let fits = f.port == port
                && s.door.admits(&src)
                && (f.destination.is_empty() || f.destination.iter().any(|n| n.contains(&dst)))
                && f.expires.is_none_or(|e| unix_now < e);
            fits.then_some(at)
        })
    }

    /// Checks one packet whose turn it is: the first stanza whose HMAC verifies decides.
    fn check(&mut self, w: &Waiting, out: &mut Outcomes) -> Result<(), (Option<DoorId>, FwknopError)> {
        let candidates: Vec<usize> = self.candidates(w.src, w.dst, w.port).collect();
        let found = candidates.into_iter().find_map(|at| {
            let s = &self.stanzas[at];
            let (ciphertext, tag) = wire::split(&w.payload, s.fwknop.hmac_digest)?;
            wire::check_hmac(ciphertext, tag, s.fwknop.hmac_digest, &s.hmac_key).then_some((at, ciphertext))
        });
        let (at, ciphertext) = found.ok_or((None, FwknopError::Hmac))?;
        let s = &self.stanzas[at];
        let refuse = |e| (Some(s.id), e);
        let key = replay_key(ciphertext);
        if self.replay.contains(&key) {
            return Err(refuse(FwknopError::Replayed));
        }
        let message = message::parse(&wire::decrypt(ciphertext, &s.key).map_err(refuse)?).map_err(refuse)?;
        let grant = policy::grant(s.id, &s.door, &s.fwknop, &message, (w.src, w.dst), self.unix_now).map_err(refuse)?;
        if self.boot.is_some_and(|boot| message.timestamp < boot.as_secs()) {
            return Err(refuse(FwknopError::BeforeBoot));
        }
        let until = message.timestamp.saturating_add(s.fwknop.window.as_secs());
        self.replay.record(key, until).map_err(|e| refuse(FwknopError::Unrecorded(e.to_string())))?;
        out.notes.push(Note::Accepted { door: s.id, src: w.src });
        out.grants.push(grant);
        Ok(())
    }

    fn run_ready(&mut self, out: &mut Outcomes) {
        for w in std::mem::take(&mut self.ready) {
            match self.check(&w, out) {
                Ok(()) => {}
                // Never held back by the log's rate limit: the admin must fix the directory.
                Err((Some(door), e @ FwknopError::Unrecorded(_))) => {
                    let message = format!("{}: fwknop packet {e}", w.src);
                    out.notes.push(Note::Changed { door, level: log::Level::Error, message });
                }
                Err((door, e)) => {
                    let reason = format!("fwknop packet rejected: {e}");
                    out.notes.push(Note::Rejected { door, src: w.src, reason });
                }
            }
        }
    }
}

impl DoorKind for FwknopDoors {
    fn kind(&self) -> &'static str {
        "fwknop"
    }

    fn ports(&self, out: &mut Vec<PortProto>) {
        for s in &self.stanzas {
            let port = PortProto::udp(s.fwknop.port);
            if !out.contains(&port) {
                out.push(port);
            }
        }
    }

    /// A socket of its own, shared with knockd's SPA: a flood never crowds out knocks.
    fn lane(&self) -> Lane {
        Lane::Datagrams
    }

    /// Screens the packet, then hands it to the budget, which says what may be checked now.
    fn packet(&mut self, packet: &Packet<'_>, now: Duration, out: &mut Outcomes) {
        let knock = &packet.knock;
        if knock.port.proto != Proto::Udp {
            return;
        }
        let (src, dst, port) = (knock.src, knock.dst, knock.port.port);
        let reject = |reason: String| Note::Rejected { door: None, src, reason };
        let Some(payload) = packet.payload else {
            return out.notes.push(reject("fwknop packet cut short".into()));
        };
        let payload = match wire::screen(payload) {
            Ok(text) => text.to_owned(),
            Err(e) => return out.notes.push(reject(format!("fwknop packet rejected: {e}"))),
        };
        let cost = self.candidates(src, dst, port).count() as u32;
        if cost == 0 {
            return out
                .notes
                .push(reject(format!("fwknop packet rejected: no stanza takes packets from {src} to {dst}")));
        }
        let tag = super::budget::tag(payload.as_bytes());
        self.budget.offer(src, Waiting { src, dst, port, payload }, tag, cost, now, &mut self.ready);
        self.run_ready(out);
    }

    fn set_wall_clock(&mut self, unix_now: Duration, _out: &mut Outcomes) {
        self.unix_now = unix_now;
    }

    fn tick(&mut self, now: Duration, out: &mut Outcomes) {
        self.budget.poll(now, &mut self.ready);
        self.run_ready(out);
        if let Err(e) = self.replay.expire(self.unix_now) {
            let door = self.stanzas[0].id;
            out.notes.push(Note::Changed { door, level: log::Level::Warn, message: e.to_string() });
        }
    }

    fn set_boot_time(&mut self, unix_boot: Duration) {
        self.boot = Some(unix_boot);
    }

    fn next_due(&self) -> Option<Duration> {
        self.budget.next_due()
    }

    /// The replay cache carries over a reload: a packet accepted before it stays refused after.
    fn carry_over(&mut self, old: Box<dyn Any>) {
        let Ok(old) = old.downcast::<FwknopDoors>() else { return };
        let old = *old;
        self.replay.absorb(old.replay);
        self.unix_now = old.unix_now;
    }

    fn counters(&self, out: &mut Vec<(&'static str, u64)>) {
        let stats = self.budget.stats();
        out.extend([("fwknop_checked", stats.run), ("fwknop_dropped_in_flood", stats.dropped)]);
    }
}
