//! Single-packet authorization from fwknop's clients (doc/fwknop.md): the packets the stock
//! `fwknop` client sends, checked as fwknopd checks them, against doors built from access.conf
//! stanzas or from `fwknop:` in knockd.yaml.
//!
//! For each packet: the cheap screen ([`wire::screen`]), then the stanzas that may take it (its
//! port, source, destination, not expired), then, within a budget shared fairly between source
//! prefixes, the HMAC of each of those in order, in constant time. A stanza whose HMAC key
//! verifies checks the rest: the replay cache, decryption, the inner digest, the time window,
//! the user, the address and the ports (`policy.rs`). As in fwknopd, when it refuses (or
//! cannot decrypt), the next stanza that may take the packet is tried; the first that accepts
//! it decides. Nothing is decrypted before an HMAC verifies.

pub mod access_conf;
mod digest;
pub mod fwknopd_conf;
mod kind;
pub mod message;
mod policy;
pub mod settings;
pub mod wire;
mod yaml;

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};

use kind::{FWKNOP_CHECKED, FWKNOP_DROPPED_IN_FLOOD};
pub use kind::{FwknopKind, read_key_material};
pub use message::Message;
pub use settings::{
    FWKNOP_ACCESS_TIMEOUT, FWKNOP_MAX_TIMEOUT, FWKNOP_PORT, FWKNOP_WINDOW, Fwknop, FwknopDoor, FwknopNat, HmacDigest,
    KeyMaterial,
};
pub use yaml::check_base64;

use super::budget::Budget;
use super::key_file::KeyFileError;
use super::replay::{Journal, ReplayCache};
use super::single_packet::{Checks, Doors, Reason, Screened, Waiting};
use super::{Clock, Counter, DoorError, DoorId, DoorKind, Grant, Note, Outcomes};
use crate::config::{Config, Door, PortProto};
use crate::packet::Knock;
use crate::store::Store;

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
    /// The HMAC verified but the packet does not decrypt: a wrong key, or another mode.
    #[error(
        "the HMAC verifies but decryption failed: the stanza's KEY (or KEY_BASE64) differs from the client's, or \
         the client encrypts in another mode than CBC (`-M ecb`, `-M cfb`, the legacy IV), which knockd does not take"
    )]
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
    /// More than one stanza's HMAC key verifies it, and each refuses it: each one's reason.
    #[error("{}", .0.iter().map(|(name, e)| format!("{name}: {e}")).collect::<Vec<_>>().join("; "))]
    EveryStanza(Vec<(String, FwknopError)>),
}

/// One door that takes fwknop's packets, with its keys read.
struct Stanza {
    id: DoorId,
    door: Door,
    fwknop: Fwknop,
    key: Vec<u8>,
    hmac_key: Vec<u8>,
}

/// A packet that passed the screen, waiting for its HMAC checks: the port it was sent to, and
/// its text.
pub struct Sealed {
    port: u16,
    payload: String,
}

/// The fwknop door kind's doors.
pub struct FwknopDoors {
    stanzas: Vec<Stanza>,
    /// The stanzas left out at start (`Fwknop::refused`), to say so to a client they would take.
    left_out: Vec<Door>,
    /// Digests of accepted packets, for every stanza together (a packet is one client's).
    replay: ReplayCache,
    /// Where `replay` is kept (`<state_dir>/fwknop.replay`).
    journal: Journal,
}

/// The file every fwknop door's replay cache is kept in, under `state_dir`.
pub const REPLAY_FILE: &str = "fwknop.replay";

fn read_keys(fwknop: &Fwknop, store: &mut dyn Store) -> Result<(Vec<u8>, Vec<u8>), KeyFileError> {
    let key = read_key_material(store, "fwknop key", &fwknop.key)?;
    let hmac_key = read_key_material(store, "fwknop HMAC key", &fwknop.hmac_key)?;
    // Where the key is written, for the error: its file, or the config (access.conf checks the
    // lengths as it reads them, naming the line; this is for YAML's inline keys).
    let at = |k: &KeyMaterial| match k {
        KeyMaterial::File(path) => path.clone(),
        _ => std::path::PathBuf::from("(written in the config)"),
    };
    if key.is_empty() || key.len() > wire::MAX_KEY {
        let message = format!("is {} bytes: fwknop's keys are 1 to 32", key.len());
        return Err(KeyFileError::new("fwknop key", &at(&fwknop.key), message));
    }
    if hmac_key.is_empty() || hmac_key.len() > 128 {
        let message = format!("is {} bytes: fwknop's HMAC keys are 1 to 128", hmac_key.len());
        return Err(KeyFileError::new("fwknop HMAC key", &at(&fwknop.hmac_key), message));
    }
    Ok((key, hmac_key))
}

/// The kind for `config`, if any door has `fwknop:` (or is an access.conf stanza).
pub fn build(config: &Config, store: &mut dyn Store) -> Result<Option<Box<dyn DoorKind>>, DoorError> {
    let mut stanzas = Vec::new();
    let mut left_out = Vec::new();
    for (id, door) in config.doors.iter().enumerate() {
        let Some(fwknop) = door.fwknop() else { continue };
        // A refused stanza takes no packet: its keys (if any) are never read.
        if fwknop.refused.is_some() {
            left_out.push(door.clone());
            continue;
        }
        let (key, hmac_key) =
            read_keys(fwknop, store).map_err(|e| DoorError { door: door.name.clone(), message: e.to_string() })?;
        stanzas.push(Stanza { id, door: door.clone(), fwknop: fwknop.clone(), key, hmac_key });
    }
    let Some(first) = stanzas.first() else { return Ok(None) };
    let (journal, replay) = Journal::open(store, &config.state_dir.join(REPLAY_FILE))
        .map_err(|e| DoorError { door: first.door.name.clone(), message: e.to_string() })?;
    let budget = Budget::new(CHECKS_PER_SECOND, CHECK_BURST, WAITING_PREFIXES);
    Ok(Some(Box::new(Doors::new(FwknopDoors { stanzas, left_out, replay, journal }, budget))))
}

/// The replay cache's key for a packet: the SHA-256 of its authenticated ciphertext.
fn replay_key(ciphertext: &str) -> [u8; 32] {
    Sha256::digest(ciphertext.as_bytes()).into()
}

/// What stanza `s` makes of the packet from `src` to `dst` whose HMAC it verified: the grant,
/// and when the client sent it; or why not.
fn decide(
    s: &Stanza,
    ciphertext: &str,
    (src, dst): (IpAddr, IpAddr),
    unix_now: Duration,
) -> Result<(Grant, u64), FwknopError> {
    let plaintext = wire::decrypt(ciphertext, &s.key)?;
    // fwknopd's test that a decryption worked: sixteen digits and a colon. What a wrong key or
    // another mode leaves (when its padding happens to pass) fails it.
    let digits = plaintext.get(..16).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if !digits || plaintext.get(16) != Some(&b':') {
        return Err(FwknopError::Decrypt);
    }
    let message = message::parse(&plaintext)?;
    let grant = policy::grant(s.id, &s.door, &s.fwknop, &message, (src, dst), unix_now)?;
    Ok((grant, message.timestamp))
}

impl FwknopDoors {
    /// The stanzas that may take a packet from `src` to `dst`, port `port`, at `unix_now`, in
    /// order.
    fn candidates(&self, src: IpAddr, dst: IpAddr, port: u16, unix_now: Duration) -> impl Iterator<Item = usize> + '_ {
        let unix_now = unix_now.as_secs();
        self.stanzas.iter().enumerate().filter_map(move |(at, s)| {
            let f = &s.fwknop;
            let fits = f.port == port
                && s.door.admits(&src)
                && (f.destination.is_empty() || f.destination.iter().any(|n| n.contains(&dst)))
                && f.expires.is_none_or(|e| unix_now < e);
            fits.then_some(at)
        })
    }

    /// Remembers the packet accepted by stanza `at` (sent at `sent_at`) in the replay cache,
    /// in the journal before the door opens: a packet sent before this host booted, or whose
    /// entry cannot be written, is refused instead.
    fn accept(
        &mut self,
        at: usize,
        key: [u8; 32],
        sent_at: u64,
        clock: &Clock,
        store: &mut dyn Store,
    ) -> Result<(), FwknopError> {
        let s = &self.stanzas[at];
        if sent_at < clock.boot.as_secs() {
            return Err(FwknopError::BeforeBoot);
        }
        let until = sent_at.saturating_add(s.fwknop.window.as_secs());
        let recorded = self.journal.record(store, &mut self.replay, key, until);
        recorded.map_err(|e| FwknopError::Unrecorded(e.to_string()))
    }
}

impl Reason for FwknopError {
    fn unrecorded(&self) -> bool {
        matches!(self, FwknopError::Unrecorded(_))
    }
}

impl Checks for FwknopDoors {
    type Packet = Sealed;
    type Error = FwknopError;
    const NAME: &'static str = "fwknop";
    const CHECKED: &'static Counter = &FWKNOP_CHECKED;
    const DROPPED: &'static Counter = &FWKNOP_DROPPED_IN_FLOOD;

    fn ports(&self, out: &mut Vec<PortProto>) {
        for s in &self.stanzas {
            let port = PortProto::udp(s.fwknop.port);
            if !out.contains(&port) {
                out.push(port);
            }
        }
    }

    /// The packet's form, and the stanzas that may take it: each costs an HMAC check.
    fn screen(&self, knock: &Knock, payload: &[u8], clock: &Clock) -> Result<Screened<Sealed>, Note> {
        let (src, dst, port) = (knock.src, knock.dst, knock.port.port);
        let reject = |reason: String| Note::Rejected { door: None, src, reason };
        let payload = match wire::screen(payload) {
            Ok(text) => text.to_owned(),
            Err(e) => return Err(reject(format!("fwknop packet rejected: {e}"))),
        };
        let cost = self.candidates(src, dst, port, clock.unix).count() as u32;
        if cost == 0 {
            let would = self.left_out.iter().find(|d| d.admits(&src) && d.fwknop().is_some_and(|f| f.port == port));
            let why = would.map_or(String::new(), |d| format!(" ({} would, but it was left out at start)", d.name));
            return Err(reject(format!("fwknop packet rejected: no stanza takes packets from {src} to {dst}{why}")));
        }
        let tag = super::budget::tag(payload.as_bytes());
        Ok(Screened { packet: Sealed { port, payload }, tag, cost })
    }

    /// The stanzas that may take the packet, in order, until one accepts it. A replay is
    /// refused at once: it is the same packet for every stanza.
    fn check(
        &mut self,
        w: &Waiting<Sealed>,
        clock: &Clock,
        store: &mut dyn Store,
    ) -> Result<Grant, (Option<DoorId>, FwknopError)> {
        let candidates: Vec<usize> = self.candidates(w.src, w.dst, w.packet.port, clock.unix).collect();
        let mut refusals: Vec<(usize, FwknopError)> = Vec::new();
        for at in candidates {
            let s = &self.stanzas[at];
            let Some((ciphertext, tag)) = wire::split(&w.packet.payload, s.fwknop.hmac_digest) else { continue };
            if !wire::check_hmac(ciphertext, tag, s.fwknop.hmac_digest, &s.hmac_key) {
                continue;
            }
            let key = replay_key(ciphertext);
            if self.replay.contains(&key) {
                return Err((Some(s.id), FwknopError::Replayed));
            }
            match decide(s, ciphertext, (w.src, w.dst), clock.unix) {
                Ok((grant, sent_at)) => {
                    let id = s.id;
                    self.accept(at, key, sent_at, clock, store).map_err(|e| (Some(id), e))?;
                    return Ok(grant);
                }
                Err(e) => refusals.push((at, e)),
            }
        }
        Err(match refusals.len() {
            0 => (None, FwknopError::Hmac),
            1 => {
                let (at, e) = refusals.remove(0);
                (Some(self.stanzas[at].id), e)
            }
            _ => {
                let first = self.stanzas[refusals[0].0].id;
                let each = refusals.into_iter().map(|(at, e)| (self.stanzas[at].door.name.clone(), e)).collect();
                (Some(first), FwknopError::EveryStanza(each))
            }
        })
    }

    fn expire(&mut self, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes) {
        if let Err(e) = self.journal.expire(store, &mut self.replay, clock.unix) {
            let door = self.stanzas[0].id;
            out.notes.push(Note::Changed { door, level: log::Level::Warn, message: e.to_string() });
        }
    }

    /// The replay cache carries over a reload: a packet accepted before it stays refused after.
    fn carry_over(&mut self, old: FwknopDoors) {
        self.replay.absorb(old.replay);
    }
}
