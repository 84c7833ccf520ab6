//! The SPA kind's settings, as config holds them ([`ProofSettings`]) and knockd.yaml writes
//! them (`spa:`, doc/spa.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess};

use crate::config::convert::duration;
use crate::config::yaml::values::{Port, TextValue, duration_in};
use crate::config::{Door, Proof, ProofSettings};

/// Single-packet authorization for a door (doc/spa.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spa {
    /// UDP port the authorization datagram is sent to.
    pub port: u16,
    /// How far a packet's timestamp may be from the daemon's clock.
    pub window: Duration,
    /// Shared key for HMAC-SHA256 packets.
    pub hmac_key_file: Option<PathBuf>,
    /// Clients' Ed25519 public keys.
    pub public_keys: Vec<PathBuf>,
    /// Accept only packets that name the address to open for (never "whoever sent this").
    pub require_address: bool,
}

/// How far an SPA packet's timestamp may be from the daemon's clock when the config does not say.
pub const SPA_WINDOW: Duration = Duration::from_secs(30);

/// `spa:` as `--convert` writes it.
#[derive(serde::Serialize)]
struct SpaOut<'a> {
    port: u16,
    window: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac_key_file: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    public_keys: &'a [PathBuf],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    require_address: bool,
}

impl ProofSettings for Spa {
    fn key(&self) -> &'static str {
        "spa"
    }

    fn to_yaml(&self) -> serde_yaml_ng::Value {
        let out = SpaOut {
            port: self.port,
            window: duration(self.window),
            hmac_key_file: self.hmac_key_file.as_ref(),
            public_keys: &self.public_keys,
            require_address: self.require_address,
        };
        serde_yaml_ng::to_value(out).expect("plain data always serializes")
    }

    fn describe(&self, _door: &Door) -> String {
        format!("single-packet authorization on {}/udp", self.port)
    }

    fn listens(&self) -> Vec<String> {
        vec![format!("{}/udp", self.port)]
    }

    /// Packets name the door they are for.
    fn sends_door_name(&self) -> bool {
        true
    }

    /// The nonces accepted, in `<state_dir>/<door>.replay`.
    fn keeps_state(&self) -> bool {
        true
    }

    fn files(&self) -> Vec<&Path> {
        self.hmac_key_file.iter().chain(&self.public_keys).map(PathBuf::as_path).collect()
    }

    fn files_mut(&mut self) -> Vec<&mut PathBuf> {
        self.hmac_key_file.iter_mut().chain(&mut self.public_keys).collect()
    }
}

/// `spa.window`: a second to ten minutes.
struct SpaWindow(Duration);

impl<'de> Deserialize<'de> for SpaWindow {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = TextValue::deserialize(d)?.0;
        duration_in(&text, (Duration::from_secs(1), Duration::from_secs(600))).map(SpaWindow).map_err(de::Error::custom)
    }
}

/// `spa:` as written (doc/spa.md).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpa {
    port: Port,
    #[serde(default)]
    window: Option<SpaWindow>,
    #[serde(default)]
    hmac_key_file: Option<PathBuf>,
    #[serde(default)]
    public_keys: Vec<PathBuf>,
    #[serde(default)]
    require_address: bool,
}

/// Reads `spa:`.
pub(super) fn read<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Proof, A::Error> {
    let raw: RawSpa = map.next_value()?;
    if raw.hmac_key_file.is_none() && raw.public_keys.is_empty() {
        return Err(de::Error::custom("`spa` needs `hmac_key_file:` or `public_keys:` to check packets with"));
    }
    Ok(Proof::new(Spa {
        port: raw.port.0.port,
        window: raw.window.map_or(SPA_WINDOW, |w| w.0),
        hmac_key_file: raw.hmac_key_file,
        public_keys: raw.public_keys,
        require_address: raw.require_address,
    }))
}
