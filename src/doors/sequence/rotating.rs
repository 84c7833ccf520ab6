//! Rotating sequences: the knock changes every step, derived from a shared secret, the door's
//! name and the step counter with HMAC-SHA256. The derivation is specified in doc/rotating.md;
//! the daemon and the `knock` client both use [`sequence`].
//!
//! A rotating door has one secret per client (or one for all), and two slots in the matcher
//! per secret: slot `counter % 2` holds that step's sequence, so the current step's and the
//! previous step's sequences are accepted. A sequence that opened the door is disabled for the
//! rest of its validity, and stays so across a reload; other secrets' sequences are not
//! affected, so two clients in one step never lock each other out.

use std::any::Any;
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Source;
use super::matcher::{Matcher, SlotId};
use crate::config::{PortProto, Rotating};
use crate::doors::key_file::{self, KeyFileError};
use crate::doors::{DoorId, Outcomes};

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

/// Reads a rotating secret file (doc/rotating.md): at least 16 bytes, private.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    key_file::read_secret("secret file", path)
}

/// A rotating door's secrets and where their slots stand.
pub(super) struct RotatingSource {
    door: DoorId,
    name: String,
    /// Each secret's name (its file's stem) and bytes.
    secrets: Vec<(String, Vec<u8>)>,
    rotating: Rotating,
    /// The step the slots were last set for.
    set_for: Option<u64>,
    /// (secret, step) whose sequence opened the door: never accepted again.
    used: Vec<(usize, u64)>,
}

/// A secret's name: its file name without directory and extension.
fn secret_name(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

impl RotatingSource {
    /// Reads the door's secrets; the slots stay empty until the wall clock is known.
    pub fn open(door: DoorId, name: &str, rotating: &Rotating) -> Result<Self, KeyFileError> {
        let secrets =
            rotating.secret_files.iter().map(|f| Ok((secret_name(f), read_secret(f)?))).collect::<Result<_, _>>()?;
        Ok(RotatingSource {
            door,
            name: name.to_owned(),
            secrets,
            rotating: rotating.clone(),
            set_for: None,
            used: Vec::new(),
        })
    }

    /// Secret `secret` has two slots: one for even steps, one for odd.
    fn slot(&self, matcher: &Matcher, secret: usize, counter: u64) -> SlotId {
        matcher.slots_of(self.door).start + 2 * secret + (counter % 2) as usize
    }

    fn fill(&self, matcher: &mut Matcher, counter: u64) {
        for (i, (_, secret)) in self.secrets.iter().enumerate() {
            let sequence = if self.used.contains(&(i, counter)) {
                Vec::new()
            } else {
                sequence(secret, &self.name, counter, &self.rotating)
            };
            matcher.set_sequence(self.slot(matcher, i, counter), sequence);
        }
    }
}

impl Source for RotatingSource {
    fn door(&self) -> DoorId {
        self.door
    }

    fn set_wall_clock(&mut self, unix_now: Duration, matcher: &mut Matcher) -> bool {
        let now = counter(unix_now, self.rotating.step);
        if self.set_for == Some(now) {
            return false;
        }
        // Moving on by one step only replaces the slots of the step before last, so attempts on
        // the previous step's sequences carry on.
        let stale = self.set_for.is_none_or(|was| now != was + 1);
        self.used.retain(|&(_, c)| c + 1 >= now);
        self.fill(matcher, now);
        if stale {
            self.fill(matcher, now.saturating_sub(1));
        }
        self.set_for = Some(now);
        true
    }

    /// Disables the sequence that opened, and names its secret in the grant.
    fn opened(&mut self, slot: SlotId, matcher: &mut Matcher, out: &mut Outcomes) {
        let Some(now) = self.set_for else { return };
        let secret = (slot - matcher.slots_of(self.door).start) / 2;
        let counter = if self.slot(matcher, secret, now) == slot { now } else { now.saturating_sub(1) };
        self.used.push((secret, counter));
        // Used once: not again while it is valid (the slot is reused two steps on).
        matcher.set_sequence(slot, Vec::new());
        if let (Some(grant), Some((name, _))) = (out.grants.last_mut(), self.secrets.get(secret)) {
            grant.by = Some(format!("secret {name}"));
        }
    }

    fn carry_over(&mut self, old: &dyn Any) {
        if let Some(old) = old.downcast_ref::<RotatingSource>() {
            if old.name == self.name && old.secrets == self.secrets && old.rotating == self.rotating {
                self.used = old.used.clone();
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
