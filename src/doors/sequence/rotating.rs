//! Rotating sequences: the knock changes every step, derived from a shared secret, the door's
//! name and the step counter with HMAC-SHA256. The derivation is specified in doc/rotating.md;
//! the daemon and the `knock` client both use [`sequence`].
//!
//! A rotating door has one secret per client (or one for all), and three slots in the matcher
//! per secret: slot `counter % 3` holds that step's sequence, so the previous, the current and
//! the next step's sequences are accepted (one step of clock difference either way, as TOTP
//! accepts, RFC 6238 section 5.2). The next step's ports are thus in the capture filter a whole
//! step before its boundary, and the boundary itself is a deadline of the daemon's loop
//! ([`crate::doors::DoorKind::next_wall_due`]), so the step after that is added on time.
//!
//! A sequence that opened the door is disabled for the rest of its validity, and remembered in
//! `<state_dir>/<door>.rotating` (a journal like the SPA replay caches, synced, written through
//! the [`Store`]), so it stays used across reloads and restarts; a use that cannot be written
//! opens nothing. Other secrets' sequences are not affected, so two clients in one step never
//! lock each other out.

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Rotating;
use super::matcher::{Matcher, SlotId};
use crate::config::PortProto;
use crate::doors::key_file::{self, KeyFileError};
use crate::doors::replay::{self, Journal, ReplayCache};
use crate::doors::{Clock, DoorError, DoorId, Note, Outcomes};
use crate::store::{FileStore, Store};

/// Domain separation: a MAC made for anything else is never a valid sequence.
pub const CONTEXT: &[u8] = b"knockd-rotating-v1";

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

/// Reads a rotating secret file (doc/rotating.md): at least 16 bytes, private. For the `knock`
/// client, which reads it as the user it runs as.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    key_file::read_secret(&mut FileStore::default(), "secret file", path)
}

/// Slots per secret: the previous, the current and the next step.
pub const SLOTS_PER_SECRET: usize = 3;

/// A rotating door's secrets and where their slots stand.
pub struct RotatingSource {
    door: DoorId,
    name: String,
    /// Each secret's name (its file's stem) and bytes.
    secrets: Vec<(String, Vec<u8>)>,
    rotating: Rotating,
    /// The step the slots were last set for.
    set_for: Option<u64>,
    /// (secret, step) pairs whose sequence opened the door, by [`used_key`]: never again.
    used: ReplayCache,
    /// Where `used` is kept.
    journal: Journal,
}

/// The journal's key for a used (secret, step): a MAC, so the file says nothing of the secret.
fn used_key(secret: &[u8], door: &str, counter: u64) -> replay::Key {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"knockd-rotating-used");
    mac.update(&[0]);
    mac.update(door.as_bytes());
    mac.update(&[0]);
    mac.update(&counter.to_be_bytes());
    mac.finalize().into_bytes().into()
}

/// A secret's name: its file name without directory and extension.
fn secret_name(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

impl RotatingSource {
    /// Reads the door's secrets and the sequences used so far (in `state_dir`); the slots stay
    /// empty until the time of day is known.
    pub fn open(
        door: DoorId,
        name: &str,
        rotating: &Rotating,
        state_dir: &Path,
        store: &mut dyn Store,
    ) -> Result<Self, DoorError> {
        let error = |message: String| DoorError { door: name.to_owned(), message };
        let mut secrets = Vec::new();
        for file in &rotating.secret_files {
            let secret = key_file::read_secret(store, "secret file", file).map_err(|e| error(e.to_string()))?;
            secrets.push((secret_name(file), secret));
        }
        let (journal, used) =
            Journal::open(store, &state_dir.join(format!("{name}.rotating"))).map_err(|e| error(e.to_string()))?;
        Ok(RotatingSource {
            door,
            name: name.to_owned(),
            secrets,
            rotating: rotating.clone(),
            set_for: None,
            used,
            journal: journal.synced(),
        })
    }

    /// Secret `secret` has three slots, for steps 0, 1 and 2 modulo 3.
    fn slot(&self, matcher: &Matcher, secret: usize, counter: u64) -> SlotId {
        matcher.slots_of(self.door).start + SLOTS_PER_SECRET * secret + (counter % 3) as usize
    }

    /// The Unix time (seconds) until which step `counter`'s sequences are accepted: the end of
    /// the step after it.
    fn valid_until(&self, counter: u64) -> u64 {
        let step = self.rotating.step.as_millis().max(1);
        (u128::from(counter.saturating_add(2)) * step).div_ceil(1000).try_into().unwrap_or(u64::MAX)
    }

    fn fill(&self, matcher: &mut Matcher, counter: u64) {
        for (i, (_, secret)) in self.secrets.iter().enumerate() {
            let sequence = if self.used.contains(&used_key(secret, &self.name, counter)) {
                Vec::new()
            } else {
                sequence(secret, &self.name, counter, &self.rotating)
            };
            matcher.set_sequence(self.slot(matcher, i, counter), sequence);
        }
    }

    /// The door these secrets feed.
    pub fn door(&self) -> DoorId {
        self.door
    }

    /// Follows the time of day: the slots of the steps around `clock`'s. Returns whether a
    /// sequence changed.
    pub fn follow(&mut self, clock: &Clock, matcher: &mut Matcher, store: &mut dyn Store) -> bool {
        let now = counter(clock.unix, self.rotating.step);
        if self.set_for == Some(now) {
            return false;
        }
        self.step_to(now, matcher);
        // A failed compaction leaves the journal growing; the next line written says so if the
        // directory cannot be written at all.
        let _ = self.journal.expire(store, &mut self.used, clock.unix);
        true
    }

    /// Sets the slots for step `now` and the steps either side of it.
    fn step_to(&mut self, now: u64, matcher: &mut Matcher) {
        // Moving on by one step only replaces the slots of the step before last with the next
        // step's, so attempts on the previous and current steps' sequences carry on.
        if self.set_for.is_some_and(|was| now == was + 1) {
            self.fill(matcher, now + 1);
        } else {
            for counter in [now.saturating_sub(1), now, now + 1] {
                self.fill(matcher, counter);
            }
        }
        self.set_for = Some(now);
    }

    /// After a reload: the step the door's old source was on, when its steps are as long.
    pub fn carry_over(&mut self, old: &RotatingSource, matcher: &mut Matcher) {
        if let Some(step) = old.set_for.filter(|_| old.name == self.name && old.rotating.step == self.rotating.step) {
            self.step_to(step, matcher);
        }
    }

    /// When the step ends (Unix time): the slots move on then. At once while the slots wait
    /// for the time of day (just built).
    pub fn next_wall_due(&self) -> Option<Duration> {
        let Some(set_for) = self.set_for else { return Some(Duration::ZERO) };
        let step = self.rotating.step.as_millis().max(1);
        let next = u128::from(set_for.checked_add(1)?) * step;
        Some(Duration::from_millis(next.try_into().ok()?))
    }

    /// Disables the sequence that opened and remembers it on disk, and names its secret in the
    /// grant; a use that cannot be written takes the grant back (a restart would accept the
    /// sequence again).
    pub fn opened(&mut self, slot: SlotId, matcher: &mut Matcher, store: &mut dyn Store, out: &mut Outcomes) {
        let Some(now) = self.set_for else { return };
        let secret = (slot - matcher.slots_of(self.door).start) / SLOTS_PER_SECRET;
        let counter = [now.saturating_sub(1), now, now + 1]
            .into_iter()
            .find(|&c| self.slot(matcher, secret, c) == slot)
            .expect("one of the three steps has this slot");
        // Used once: not again while it is valid (the slot is reused three steps on).
        matcher.set_sequence(slot, Vec::new());
        let Some((name, bytes)) = self.secrets.get(secret) else { return };
        let (key, until) = (used_key(bytes, &self.name, counter), self.valid_until(counter));
        if let Err(e) = self.journal.record(store, &mut self.used, key, until) {
            let grant = out.grants.pop();
            let who = grant.map(|g| g.src.to_string()).unwrap_or_default();
            let message = format!("{who}: rotating sequence refused: it could not be made replay-proof: {e}");
            out.notes.push(Note::Changed { door: self.door, level: log::Level::Error, message });
            return;
        }
        if let Some(grant) = out.grants.last_mut() {
            grant.by = Some(format!("secret {name}"));
        }
    }
}
