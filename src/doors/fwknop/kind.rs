//! The fwknop kind as the rest of the program sees it: its counters, how it is built, the
//! config language it brings (fwknopd's access.conf, with its fwknopd.conf), and how it reads
//! `fwknop:` in knockd.yaml.

use std::path::Path;

use serde::de::MapAccess;

use super::settings::KeyMaterial;
use super::{access_conf, fwknopd_conf, yaml};
use crate::config::{Config, ConfigError, Format, FormatReader, LoadOptions, Proof};
use crate::doors::key_file::{self, KeyFileError};
use crate::doors::{Counter, DoorError, DoorKind, Kind, Measure, ReadYaml, SPA_ACCEPTED, SPA_REJECTED};
use crate::store::Store;

/// The fwknop kind, as the kinds list names it.
pub struct FwknopKind;

pub(super) static FWKNOP_CHECKED: Counter =
    Counter::new("fwknop_checked", Measure::Total, "fwknop packets whose HMAC was checked.");
pub(super) static FWKNOP_DROPPED_IN_FLOOD: Counter = Counter::new(
    "fwknop_dropped_in_flood",
    Measure::Total,
    "fwknop packets left unchecked because their source network's share was spent.",
);

impl Kind for FwknopKind {
    fn name(&self) -> &'static str {
        "fwknop"
    }

    fn counters(&self) -> &'static [&'static Counter] {
        static COUNTERS: [&Counter; 4] = [&SPA_ACCEPTED, &SPA_REJECTED, &FWKNOP_CHECKED, &FWKNOP_DROPPED_IN_FLOOD];
        &COUNTERS
    }

    fn build(&self, config: &Config, store: &mut dyn Store) -> Result<Option<Box<dyn DoorKind>>, DoorError> {
        super::build(config, store)
    }

    /// fwknopd's access.conf: its stanzas are fwknop doors.
    fn format(&self) -> Option<&'static dyn FormatReader> {
        Some(&AccessConf)
    }
}

impl ReadYaml for FwknopKind {
    const KEYS: &'static [&'static str] = &["fwknop"];

    fn read<'de, A: MapAccess<'de>>(_key: &str, door: &str, map: &mut A) -> Result<Proof, A::Error> {
        yaml::read(door, map)
    }
}

/// fwknopd's access.conf's reader, with the fwknopd.conf that goes with it.
struct AccessConf;

impl FormatReader for AccessConf {
    fn format(&self) -> Format {
        Format::AccessConf
    }

    fn read(&self, file: &str, text: &str, options: &LoadOptions) -> Result<Config, ConfigError> {
        access_conf::parse_with(file, text, options.start_dir.as_deref(), &options.trust)
    }

    fn finish(&self, path: &Path, options: &LoadOptions, config: &mut Config) -> Result<(), ConfigError> {
        fwknopd_conf::apply_for(path, options.fwknopd_conf.as_deref(), config, &options.trust)?;
        access_conf::require_forwarding(config);
        Ok(())
    }
}

/// The bytes of a key, wherever it is written: text as is, base64 decoded, a file's base64.
pub fn read_key_material(
    store: &mut dyn Store,
    what: &'static str,
    key: &KeyMaterial,
) -> Result<Vec<u8>, KeyFileError> {
    let invalid = |path: &Path| KeyFileError::new(what, path, "the key is not base64");
    match key {
        KeyMaterial::Text(text) => Ok(text.as_bytes().to_vec()),
        KeyMaterial::Base64(text) => key_file::decode_base64(text).ok_or_else(|| invalid(Path::new("(inline)"))),
        KeyMaterial::File(path) => {
            let bytes = key_file::read_secret_bytes(store, what, path)?;
            key_file::decode_base64(&String::from_utf8_lossy(&bytes)).ok_or_else(|| invalid(path))
        }
    }
}
