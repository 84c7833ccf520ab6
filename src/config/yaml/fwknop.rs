//! `fwknop:`, the door for fwknop's clients: what an access.conf stanza says, in YAML.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de;

use super::values::{DoorName, OpenPorts, OpenTimeout, Port, Prefix, TextValue, check_base64};
use crate::config::{
    FWKNOP_MAX_TIMEOUT, FWKNOP_PORT, FWKNOP_WINDOW, Fwknop, FwknopNat, HmacDigest, KeyMaterial, check_range,
};

/// `fwknop:` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFwknop {
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
    pub(super) fn into_fwknop<E: de::Error>(self, door: &str) -> Result<Fwknop, E> {
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
