//! Single-packet authorization: one UDP datagram that proves who sent it, for which door, when.
//! The layout is specified byte by byte in doc/spa.md ([`wire`]). The daemon never answers,
//! so the SPA port looks closed to a scanner.
//!
//! Forged packets are cheap to send and signatures are not cheap to check, so every check that
//! costs nothing comes first (door, time window, nonce, key id, sources), and the signature is
//! checked at most once per packet, within a budget shared fairly between source prefixes
//! ([`crate::doors::budget`]). Accepted nonces are kept on disk, through the store, until they
//! are too old to be replayed ([`crate::doors::replay`]); a nonce that cannot be written there
//! refuses its packet.

pub mod keys;
mod settings;
mod verifier;
pub mod wire;

pub use keys::{Key, read_key, read_public_key};
use serde::de::MapAccess;
pub use settings::{SPA_WINDOW, Spa};
pub use verifier::{Checked, REPLAY_CACHE, Verified, Verifier};
pub use wire::{NONCE_LEN, Request, decode, encode, nonce};

use super::budget::Budget;
use super::replay::Journal;
use super::single_packet::{Checks, Doors, Reason, Screened, Waiting};
use super::{
    Clock, Counter, DoorError, DoorId, DoorKind, Grant, Kind, Measure, Note, Outcomes, ReadYaml, SPA_ACCEPTED,
    SPA_REJECTED,
};
use crate::config::{Config, Door, PortProto, Proof};
use crate::packet::Knock;
use crate::store::Store;

/// The SPA kind, as the kinds list names it.
pub struct SpaKind;

static SPA_VERIFIED: Counter = Counter::new("spa_verified", Measure::Total, "SPA signatures and MACs checked.");
static SPA_DROPPED_IN_FLOOD: Counter = Counter::new(
    "spa_dropped_in_flood",
    Measure::Total,
    "SPA packets left unchecked because their source network's share of the budget was spent.",
);

impl Kind for SpaKind {
    fn name(&self) -> &'static str {
        "spa"
    }

    fn counters(&self) -> &'static [&'static Counter] {
        static COUNTERS: [&Counter; 4] = [&SPA_ACCEPTED, &SPA_REJECTED, &SPA_VERIFIED, &SPA_DROPPED_IN_FLOOD];
        &COUNTERS
    }

    fn build(&self, config: &Config, store: &mut dyn Store) -> Result<Option<Box<dyn DoorKind>>, DoorError> {
        build(config, store)
    }
}

impl ReadYaml for SpaKind {
    const KEYS: &'static [&'static str] = &["spa"];

    fn read<'de, A: MapAccess<'de>>(_key: &str, _door: &str, map: &mut A) -> Result<Proof, A::Error> {
        settings::read(map)
    }
}

/// Ed25519 verifications a second, for every SPA door together (about a tenth of a core), and
/// how many may be spent at once.
const VERIFICATIONS_PER_SECOND: u32 = 2_000;
const VERIFICATION_BURST: u32 = 64;
/// Source prefixes that may wait for a verification at once.
const WAITING_PREFIXES: usize = 4_096;

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
    /// The door has no key with the packet's key id, or of its authentication type.
    #[error("no key of this door checks this packet")]
    NoKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The timestamp is outside the window, by this many seconds (ahead if positive).
    #[error("timestamp {skew_secs}s away from this host's clock")]
    Stale { skew_secs: i64 },
    /// The packet was accepted before.
    #[error("replayed")]
    Replayed,
    /// The packet names no address to open for, and the door requires one.
    #[error("names no address, and the door requires one (require_address)")]
    NoAddress,
    /// Timestamped before this host booted: a crash of the host may have lost its nonce.
    #[error("sent before this host booted (its nonce may have been lost with the crash that rebooted it)")]
    BeforeBoot,
    /// Authentic, but its nonce could not be written to the replay cache; says why and the fix.
    #[error("refused: it could not be made replay-proof, so a restart could accept it again: {0}")]
    Unrecorded(String),
}

/// One door that takes SPA packets.
struct SpaDoor {
    id: DoorId,
    door: Door,
    port: u16,
    verifier: Verifier,
    /// Where the verifier's nonces are kept (`<state_dir>/<door>.replay`).
    journal: Journal,
}

/// A packet that passed every cheap check, waiting for its signature check: the door it is
/// for (an index into the doors), and its bytes.
pub struct Signed {
    door: usize,
    payload: Vec<u8>,
}

/// The SPA door kind's doors.
pub struct SpaDoors {
    doors: Vec<SpaDoor>,
}

/// The kind for `config`, if any door has `spa:`.
fn build(config: &Config, store: &mut dyn Store) -> Result<Option<Box<dyn DoorKind>>, DoorError> {
    let mut doors = Vec::new();
    for (id, door) in config.doors.iter().enumerate() {
        let Some(spa) = door.proof::<Spa>() else { continue };
        let error = |message: String| DoorError { door: door.name.clone(), message };
        let path = config.state_dir.join(format!("{}.replay", door.name));
        let (journal, replay) = Journal::open(store, &path).map_err(|e| error(e.to_string()))?;
        let verifier = Verifier::from_config(spa, replay, store).map_err(|e| error(e.to_string()))?;
        doors.push(SpaDoor { id, door: door.clone(), port: spa.port, verifier, journal });
    }
    if doors.is_empty() {
        return Ok(None);
    }
    let budget = Budget::new(VERIFICATIONS_PER_SECOND, VERIFICATION_BURST, WAITING_PREFIXES);
    Ok(Some(Box::new(Doors::new(SpaDoors { doors }, budget))))
}

impl Reason for SpaError {
    fn unrecorded(&self) -> bool {
        matches!(self, SpaError::Unrecorded(_))
    }
}

impl Checks for SpaDoors {
    type Packet = Signed;
    type Error = SpaError;
    const NAME: &'static str = "SPA";
    const CHECKED: &'static Counter = &SPA_VERIFIED;
    const DROPPED: &'static Counter = &SPA_DROPPED_IN_FLOOD;

    fn ports(&self, out: &mut Vec<PortProto>) {
        out.extend(self.doors.iter().map(|d| PortProto::udp(d.port)));
    }

    /// The cheap checks, in order; the door and the cost of its signature check (a MAC costs
    /// about what the checks before it did: it need not wait).
    fn screen(&self, knock: &Knock, payload: &[u8], clock: &Clock) -> Result<Screened<Signed>, Note> {
        let src = knock.src;
        let reject = |door, reason: String| Note::Rejected { door, src, reason };
        let packet = decode(payload).map_err(|e| reject(None, format!("SPA packet rejected: {e}")))?;
        let name = &packet.request.door;
        let Some(at) = self.doors.iter().position(|d| d.port == knock.port.port && &d.door.name == name) else {
            return Err(reject(None, "SPA packet for no door on this port".into()));
        };
        let d = &self.doors[at];
        let cost =
            d.verifier.screen(&packet, clock).map_err(|e| reject(Some(d.id), format!("SPA packet rejected: {e}")))?;
        let addr = packet.request.address.unwrap_or(src);
        if !d.door.admits(&src) || !d.door.admits(&addr) {
            return Err(reject(Some(d.id), format!("SPA packet for {addr} refused by the door's from/not_from")));
        }
        Ok(Screened { packet: Signed { door: at, payload: payload.to_vec() }, tag: super::budget::tag(payload), cost })
    }

    /// Checks the signature, and grants once the nonce is in the journal (a nonce that cannot
    /// be written there refuses the packet: a restart could accept it again).
    fn check(
        &mut self,
        w: &Waiting<Signed>,
        clock: &Clock,
        store: &mut dyn Store,
    ) -> Result<Grant, (Option<DoorId>, SpaError)> {
        let d = &mut self.doors[w.packet.door];
        let checked = d.verifier.check(&w.packet.payload, &d.door.name, clock).and_then(|checked| {
            let recorded = d.journal.record(store, d.verifier.replay_mut(), checked.nonce, checked.until);
            recorded.map(|()| checked.verified).map_err(|e| SpaError::Unrecorded(e.to_string()))
        });
        let verified = checked.map_err(|e| (Some(d.id), e))?;
        let addr = verified.request.address.unwrap_or(w.src);
        let by = Some(format!("key {}", verified.key));
        Ok(Grant { by, sent_at: Some(verified.request.timestamp), ..Grant::new(d.id, addr, w.src, w.dst) })
    }

    fn expire(&mut self, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes) {
        for d in &mut self.doors {
            if let Err(e) = d.journal.expire(store, d.verifier.replay_mut(), clock.unix) {
                out.notes.push(Note::Changed { door: d.id, level: log::Level::Warn, message: e.to_string() });
            }
        }
    }

    /// Accepted nonces carry over a reload: a packet accepted before it stays refused after it.
    /// The journal stays the new config's (a reload may move `state_dir`): what is accepted
    /// from now on is written where the next start reads it.
    fn carry_over(&mut self, mut old: SpaDoors) {
        for d in &mut self.doors {
            if let Some(previous) = old.doors.iter_mut().find(|o| o.door.name == d.door.name) {
                d.verifier.take_replay_cache(&mut previous.verifier);
            }
        }
    }
}
