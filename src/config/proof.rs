//! How a client proves itself to a door, as config sees every kind of proof: through one
//! contract ([`ProofSettings`]) that each kind implements in its own folder under `doors/`.
//! Config holds a door's proofs as [`Proof`]s and asks them what `knockd check`, `status`,
//! `--convert` and the policies need; it never names a kind. The YAML reader is handed the
//! kinds ([`Kinds`]) and asks them to read the keys it does not know.

use std::any::Any;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::MapAccess;

use super::{Config, ConfigError, Door, LoadOptions, PortProto};

/// One kind of proof's settings in one door: what the rest of the program asks of it.
/// Implemented by each kind, beside its door kind (`doors/<kind>/`).
pub trait ProofSettings: fmt::Debug + Send + Sync + SettingsObject {
    /// The door key it is written under in knockd.yaml (`sequence`, `spa`).
    fn key(&self) -> &'static str;

    /// How `knockd status` names the kind (`sequence`, `one_time`, `spa`): its key, unless
    /// the key is a longer phrase (`one_time_sequences`).
    fn name(&self) -> &'static str {
        self.key()
    }

    /// Its value under [`key`](ProofSettings::key), as `--convert` writes it (defaults left out).
    fn to_yaml(&self) -> serde_yaml_ng::Value;

    /// What `knockd check` says of it on `door`'s line.
    fn describe(&self, door: &Door) -> String;

    /// What `knockd status` lists it as listening on: one entry per port (or range).
    fn listens(&self) -> Vec<String>;

    /// Whether it is a sequence of knocks: a door has at most one, and it comes first.
    fn is_sequence(&self) -> bool {
        false
    }

    /// Whether a knock to `port` may be part of it (`knockd check`'s lock-out warning).
    fn knocks_on(&self, _port: PortProto) -> bool {
        false
    }

    /// The ports a client may ask for, when its clients name ports (the door's sets then hold
    /// address and port); `None` when a grant opens what the door opens.
    fn client_ports(&self) -> Option<&[PortProto]> {
        None
    }

    /// Whether its clients send the door's name, which must then be a plain identifier.
    fn sends_door_name(&self) -> bool {
        false
    }

    /// Whether it keeps state that must survive a restart, in [`Config::state_dir`].
    fn keeps_state(&self) -> bool {
        false
    }

    /// Why the daemon must stay root after start for it (`rewrites its one-time sequence
    /// file`), if it must.
    fn needs_root(&self) -> Option<&'static str> {
        None
    }

    /// Whether secrets are written in the config itself, which makes the config a secret too.
    fn inline_secrets(&self) -> bool {
        false
    }

    /// What `knockd check` and every start warn about `door` for it (a door that guards no
    /// port), if anything.
    fn warning(&self, _door: &Door) -> Option<String> {
        None
    }

    /// Why knockd takes no packet for it at all, when its loader left it out (an access.conf
    /// stanza knockd refuses); its door's ports stay guarded.
    fn left_out(&self) -> Option<&str> {
        None
    }

    /// The files it reads its keys or sequences from (read again on reload).
    fn files(&self) -> Vec<&Path> {
        Vec::new()
    }

    /// The same files, to anchor relative names.
    fn files_mut(&mut self) -> Vec<&mut PathBuf> {
        Vec::new()
    }
}

/// What a [`Proof`] needs of its settings to be cloned, compared and looked into; every
/// `ProofSettings` that is `Clone + PartialEq` has it.
pub trait SettingsObject: Any {
    /// The settings as `Any`, to look into them by type.
    fn as_any(&self) -> &dyn Any;
    /// The settings as `Any`, to change them by type.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// A copy.
    fn clone_box(&self) -> Box<dyn ProofSettings>;
    /// Whether `other` holds the same kind with the same settings.
    fn same_as(&self, other: &dyn ProofSettings) -> bool;
}

impl<T: ProofSettings + Clone + PartialEq> SettingsObject for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn clone_box(&self) -> Box<dyn ProofSettings> {
        Box::new(self.clone())
    }

    fn same_as(&self, other: &dyn ProofSettings) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }
}

/// One proof of a door: a kind's settings. A door has one or more (a fixed sequence and SPA,
/// say), at most one of them a knock sequence.
pub struct Proof(Box<dyn ProofSettings>);

impl Proof {
    /// A proof with these settings.
    pub fn new(settings: impl ProofSettings + Clone + PartialEq) -> Self {
        Proof(Box::new(settings))
    }

    /// The settings, if they are a `T`.
    pub fn get<T: ProofSettings>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }

    /// The settings, to change, if they are a `T`.
    pub fn get_mut<T: ProofSettings>(&mut self) -> Option<&mut T> {
        self.0.as_any_mut().downcast_mut()
    }
}

impl std::ops::Deref for Proof {
    type Target = dyn ProofSettings;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::ops::DerefMut for Proof {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.0
    }
}

impl Clone for Proof {
    fn clone(&self) -> Self {
        Proof(self.0.clone_box())
    }
}

impl PartialEq for Proof {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_as(&*other.0)
    }
}

impl Eq for Proof {}

impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Every kind of proof, as the config readers are handed them (`doors::Kinds`): the YAML
/// reader asks them to read the door keys it does not know itself, and the loader asks them
/// for the readers of the file formats they bring. Generic rather than a trait object, so a
/// kind reads its YAML with serde like any other value, errors keeping the key path and line.
pub trait Kinds: Default {
    /// The door keys the kinds read, the kinds in their order: a door's proofs are kept in
    /// this order.
    fn keys(&self) -> Vec<&'static str>;

    /// The keys of kind `kind` (an index into the kinds): a door has at most one of them.
    fn keys_of(&self, kind: usize) -> &'static [&'static str];

    /// Reads the value of door `door`'s key `key` from `map`, by the kind whose key it is:
    /// that kind's index and the proof; `None` when no kind reads `key`.
    fn read<'de, A: MapAccess<'de>>(
        &self,
        key: &str,
        door: &str,
        map: &mut A,
    ) -> Option<Result<(usize, Proof), A::Error>>;

    /// The reader of `format`, when a kind brings it.
    fn format(&self, format: super::Format) -> Option<&'static dyn FormatReader>;
}

/// A config file language a kind brings besides knockd.yaml (the classic knockd.conf for
/// knock sequences, fwknopd's access.conf for fwknop's clients): its reader.
pub trait FormatReader: Sync {
    /// Which language it reads.
    fn format(&self) -> super::Format;

    /// Parses `text` (the contents of `file`) into a validated config.
    fn read(&self, file: &str, text: &str, options: &LoadOptions) -> Result<Config, ConfigError>;

    /// What the loader does after the config's own checks: companion files (fwknopd.conf).
    fn finish(&self, _path: &Path, _options: &LoadOptions, _config: &mut Config) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// No kind at all: for config's own tests, which may not use `doors` (it sits above config).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct NoKinds;

#[cfg(test)]
impl Kinds for NoKinds {
    fn keys(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn keys_of(&self, _kind: usize) -> &'static [&'static str] {
        &[]
    }

    fn read<'de, A: MapAccess<'de>>(&self, _: &str, _: &str, _: &mut A) -> Option<Result<(usize, Proof), A::Error>> {
        None
    }

    fn format(&self, _format: super::Format) -> Option<&'static dyn FormatReader> {
        None
    }
}
