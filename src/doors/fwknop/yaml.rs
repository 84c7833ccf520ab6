//! `fwknop:`, the door for fwknop's clients: what an access.conf stanza says, in YAML, read
//! and written back.

use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, MapAccess};
use serde::{Deserialize, Serialize};

use super::settings::{FWKNOP_MAX_TIMEOUT, FWKNOP_PORT, FWKNOP_WINDOW, Fwknop, FwknopNat, HmacDigest, KeyMaterial};
use crate::config::convert::{Port as PortOut, duration, port};
use crate::config::yaml::values::{DoorName, OpenPorts, OpenTimeout, Port, Prefix, TextValue};
use crate::config::{Proof, check_range};

/// Whether `text` is base64 as fwknop writes it (the standard alphabet, padding optional).
pub fn check_base64(text: &str) -> Result<(), String> {
    crate::doors::key_file::decode_base64(text).map(|_| ()).ok_or_else(|| format!("`{text}` is not base64"))
}

/// `fwknop:` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFwknop {
    #[serde(default)]
    port: Option<Port>,
    #[serde(default)]
    name: Option<DoorName>,
    #[serde(default)]
    key: Option<TextValue>,
    #[serde(default)]
    key_base64: Option<TextValue>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    hmac_key: Option<TextValue>,
    #[serde(default)]
    hmac_key_base64: Option<TextValue>,
    #[serde(default)]
    hmac_key_file: Option<PathBuf>,
    #[serde(default)]
    hmac_digest: Option<TextValue>,
    #[serde(default)]
    require_source_address: bool,
    #[serde(default)]
    require_username: Option<TextValue>,
    #[serde(default)]
    open_ports: Option<OpenPorts>,
    #[serde(default)]
    restrict_ports: Option<OpenPorts>,
    #[serde(default)]
    max_timeout: Option<OpenTimeout>,
    #[serde(default)]
    window: Option<OpenTimeout>,
    #[serde(default)]
    destination: Vec<Prefix>,
    #[serde(default)]
    expires: Option<TextValue>,
}

/// Exactly one of a key's three spellings.
fn one_key<E: de::Error>(
    what: &str,
    text: Option<TextValue>,
    base64: Option<TextValue>,
    file: Option<PathBuf>,
) -> Result<KeyMaterial, E> {
    match (text, base64, file) {
        (Some(t), None, None) => Ok(KeyMaterial::Text(t.0)),
        (None, Some(b), None) => {
            check_base64(&b.0).map_err(|e| E::custom(format!("`{what}_base64`: {e}")))?;
            Ok(KeyMaterial::Base64(b.0))
        }
        (None, None, Some(f)) => Ok(KeyMaterial::File(f)),
        (None, None, None) => Err(E::custom(format!(
            "`fwknop` needs `{what}_base64:` (or `{what}:`, `{what}_file:`): the key fwknop's client uses"
        ))),
        _ => Err(E::custom(format!(
            "`fwknop` has more than one of `{what}`, `{what}_base64` and `{what}_file`: keep one"
        ))),
    }
}

/// `2027-01-31` (midnight UTC) or a Unix time: when the door stops opening.
fn expiry(text: &str) -> Result<u64, String> {
    if let Ok(epoch) = text.trim().parse::<u64>() {
        return Ok(epoch);
    }
    humantime::parse_rfc3339_weak(&format!("{} 00:00:00", text.trim()))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .ok_or_else(|| format!("`{text}` is not a date: write 2027-01-31, or a Unix time in seconds"))
}

impl RawFwknop {
    fn into_fwknop<E: de::Error>(self, door: &str) -> Result<Fwknop, E> {
        let key = one_key("key", self.key, self.key_base64, self.key_file)?;
        let hmac_key = one_key("hmac_key", self.hmac_key, self.hmac_key_base64, self.hmac_key_file)?;
        let hmac_digest = match self.hmac_digest {
            None => HmacDigest::Sha256,
            Some(text) => HmacDigest::parse(&text.0).ok_or_else(|| {
                E::custom(format!(
                    "unknown hmac_digest `{}`: use md5, sha1, sha256, sha384, sha512, sha3_256 or sha3_512",
                    text.0
                ))
            })?,
        };
        let window = self.window.map_or(FWKNOP_WINDOW, |w| w.0);
        check_range(window, (Duration::from_secs(1), Duration::from_secs(3600))).map_err(E::custom)?;
        Ok(Fwknop {
            port: self.port.map_or(FWKNOP_PORT, |p| p.0.port),
            name: self.name.map_or_else(|| door.to_owned(), |n| n.0),
            key,
            hmac_key,
            hmac_digest,
            require_source_address: self.require_source_address,
            require_username: self.require_username.map(|u| u.0),
            open_ports: self.open_ports.map(|p| p.0).unwrap_or_default(),
            restrict_ports: self.restrict_ports.map(|p| p.0).unwrap_or_default(),
            max_timeout: self.max_timeout.map_or(FWKNOP_MAX_TIMEOUT, |t| t.0),
            window,
            destination: self.destination.into_iter().map(|p| p.0).collect(),
            expires: self.expires.map(|e| expiry(&e.0)).transpose().map_err(E::custom)?,
            refused: None,
            nat: FwknopNat::default(),
        })
    }
}

/// Reads `fwknop:` of door `door`.
pub(super) fn read<'de, A: MapAccess<'de>>(door: &str, map: &mut A) -> Result<Proof, A::Error> {
    let raw: RawFwknop = map.next_value()?;
    Ok(Proof::new(raw.into_fwknop::<A::Error>(door)?))
}

/// `fwknop:` as `--convert` writes it.
#[derive(Serialize)]
struct FwknopOut<'a> {
    port: u16,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_base64: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac_key_base64: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac_key_file: Option<&'a PathBuf>,
    hmac_digest: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    require_source_address: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    require_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    open_ports: Vec<PortOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    restrict_ports: Vec<PortOut>,
    max_timeout: String,
    window: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    destination: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

/// A key's three spellings, as (text, base64, file).
fn key_out(key: &KeyMaterial) -> (Option<&str>, Option<&str>, Option<&PathBuf>) {
    match key {
        KeyMaterial::Text(t) => (Some(t), None, None),
        KeyMaterial::Base64(b) => (None, Some(b), None),
        KeyMaterial::File(f) => (None, None, Some(f)),
    }
}

fn fwknop_out(f: &Fwknop) -> FwknopOut<'_> {
    let (key, key_base64, key_file) = key_out(&f.key);
    let (hmac_key, hmac_key_base64, hmac_key_file) = key_out(&f.hmac_key);
    FwknopOut {
        port: f.port,
        name: &f.name,
        key,
        key_base64,
        key_file,
        hmac_key,
        hmac_key_base64,
        hmac_key_file,
        hmac_digest: f.hmac_digest.name(),
        require_source_address: f.require_source_address,
        require_username: f.require_username.as_deref(),
        open_ports: f.open_ports.iter().map(port).collect(),
        restrict_ports: f.restrict_ports.iter().map(port).collect(),
        max_timeout: duration(f.max_timeout),
        window: duration(f.window),
        destination: f.destination.iter().map(|n| n.to_string()).collect(),
        expires: f.expires.map(|e| e.to_string()),
    }
}

/// `fwknop:` as knockd.yaml writes it, defaults left out where YAML has them.
pub(super) fn write(f: &Fwknop) -> serde_yaml_ng::Value {
    serde_yaml_ng::to_value(fwknop_out(f)).expect("plain data always serializes")
}
