//! The fwknop kind's settings, as config holds them ([`ProofSettings`]): what an access.conf
//! stanza says (or `fwknop:` in knockd.yaml, `yaml.rs`), and what `knockd check`, `status`
//! and `--convert` say of it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Door, PortProto, ProofSettings};

/// fwknop's HMAC digest types (`HMAC_DIGEST_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "the names are the digests'")]
pub enum HmacDigest {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Sha3_256,
    Sha3_512,
}

impl HmacDigest {
    /// Every type, as access.conf spells them.
    pub const ALL: [HmacDigest; 7] = [
        HmacDigest::Md5,
        HmacDigest::Sha1,
        HmacDigest::Sha256,
        HmacDigest::Sha384,
        HmacDigest::Sha512,
        HmacDigest::Sha3_256,
        HmacDigest::Sha3_512,
    ];

    /// The name access.conf and knockd.yaml use: `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            HmacDigest::Md5 => "md5",
            HmacDigest::Sha1 => "sha1",
            HmacDigest::Sha256 => "sha256",
            HmacDigest::Sha384 => "sha384",
            HmacDigest::Sha512 => "sha512",
            HmacDigest::Sha3_256 => "sha3_256",
            HmacDigest::Sha3_512 => "sha3_512",
        }
    }

    /// Parses a name, in any case.
    pub fn parse(text: &str) -> Option<HmacDigest> {
        HmacDigest::ALL.into_iter().find(|d| d.name().eq_ignore_ascii_case(text.trim()))
    }
}

/// Key material, and where it was written: the bytes are read when the doors are built, and
/// `--convert` writes the key back the way it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// A passphrase, as text (access.conf `KEY`, `HMAC_KEY`).
    Text(String),
    /// Base64 of the key's bytes (`KEY_BASE64`, `HMAC_KEY_BASE64`).
    Base64(String),
    /// A file holding the base64 of the key (YAML `key_file`, `hmac_key_file`).
    File(PathBuf),
}

impl KeyMaterial {
    /// The file the key is read from, if it is read from one.
    fn file(&self) -> Option<&PathBuf> {
        match self {
            KeyMaterial::File(path) => Some(path),
            _ => None,
        }
    }

    fn file_mut(&mut self) -> Option<&mut PathBuf> {
        match self {
            KeyMaterial::File(path) => Some(path),
            _ => None,
        }
    }
}

/// A door for fwknop's clients: one access.conf stanza (doc/fwknop.md). `SOURCE` is the door's
/// `from` and `FW_ACCESS_TIMEOUT` its `open.timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fwknop {
    /// UDP port the packets are sent to (fwknop's default 62201).
    pub port: u16,
    /// The key's name in log lines and `knockd status` (access.conf: `stanza1`, `stanza2`...).
    pub name: String,
    /// The Rijndael key.
    pub key: KeyMaterial,
    /// The HMAC key: knockd checks the HMAC before anything else, so it is required.
    pub hmac_key: KeyMaterial,
    /// The HMAC's digest.
    pub hmac_digest: HmacDigest,
    /// Refuse packets that ask to open for their own source (`-s`, the address 0.0.0.0).
    pub require_source_address: bool,
    /// Accept only packets from this user name (the client's `-U`).
    pub require_username: Option<String>,
    /// The ports a client may ask for (`OPEN_PORTS`; empty: any). A door that opens them in
    /// the daemon's own table guards these.
    pub open_ports: Vec<PortProto>,
    /// Ports never opened, whatever the client asks.
    pub restrict_ports: Vec<PortProto>,
    /// The most a client may ask for (`MAX_FW_TIMEOUT`).
    pub max_timeout: Duration,
    /// How old (or early) a packet may be (`MAX_SPA_PACKET_AGE`).
    pub window: Duration,
    /// Accept only packets sent to these addresses (`DESTINATION`; empty: any).
    pub destination: Vec<ipnet::IpNet>,
    /// Unix time after which the door no longer opens (`ACCESS_EXPIRE`).
    pub expires: Option<u64>,
    /// Why knockd takes no packet for this stanza at all (what in it is unsafe, or not
    /// honoured yet); its ports stay guarded. Only access.conf says this: the other stanzas
    /// are served, and `knockd check` fails.
    pub refused: Option<String>,
    /// fwknopd's NAT settings (the stanza's and fwknopd.conf's), read so they can be named:
    /// knockd does not forward yet, so a stanza that asks for NAT is refused.
    pub nat: FwknopNat,
}

/// fwknopd's forwarding and NAT settings, as written. `FORCE_NAT` (with `ENABLE_IPT_FORWARDING`)
/// becomes the door's forwards; the others are not honoured (doc/fwknop.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FwknopNat {
    /// fwknopd.conf `ENABLE_IPT_FORWARDING` (or `ENABLE_FIREWD_FORWARDING`): NAT requests
    /// (`fwknop -N`) may reach hosts behind this one.
    pub forwarding: bool,
    /// fwknopd.conf `ENABLE_IPT_LOCAL_NAT`: NAT requests may reach a port of this host.
    pub local_nat: bool,
    /// fwknopd.conf `ENABLE_IPT_SNAT`: forwarded packets are source-translated.
    pub snat: bool,
    /// fwknopd.conf `SNAT_TRANSLATE_IP`: to this address (else masquerading).
    pub snat_translate_ip: Option<IpAddr>,
    /// `FORCE_NAT IP PORT`: every access request goes to this host and port instead.
    pub force_nat: Option<(IpAddr, u16)>,
    /// `FORCE_SNAT IP`: forwarded packets leave with this source address.
    pub force_snat: Option<IpAddr>,
    /// `FORCE_MASQUERADE Y`.
    pub force_masquerade: bool,
    /// `DISABLE_DNAT Y`: forward only, translate no destination.
    pub disable_dnat: bool,
    /// `FORWARD_ALL Y`: forward every port to the client's hosts.
    pub forward_all: bool,
}

impl FwknopNat {
    /// Whether the stanza asks for NAT knockd does not do (`FORCE_SNAT`, `FORCE_MASQUERADE`,
    /// `DISABLE_DNAT`, `FORWARD_ALL`; `FORCE_NAT` it does, as a forward door).
    pub fn stanza_asks(&self) -> bool {
        self.force_snat.is_some() || self.force_masquerade || self.disable_dnat || self.forward_all
    }
}

/// fwknop's defaults: the UDP port, `MAX_FW_TIMEOUT`, `MAX_SPA_PACKET_AGE`, `FW_ACCESS_TIMEOUT`.
pub const FWKNOP_PORT: u16 = 62201;
/// The most a client may ask for when `MAX_FW_TIMEOUT` is not set.
pub const FWKNOP_MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// How old a packet may be when `MAX_SPA_PACKET_AGE` is not set.
pub const FWKNOP_WINDOW: Duration = Duration::from_secs(120);
/// How long a grant lasts when neither the client nor `FW_ACCESS_TIMEOUT` says.
pub const FWKNOP_ACCESS_TIMEOUT: Duration = Duration::from_secs(30);

impl ProofSettings for Fwknop {
    fn key(&self) -> &'static str {
        "fwknop"
    }

    fn to_yaml(&self) -> serde_yaml_ng::Value {
        super::yaml::write(self)
    }

    fn describe(&self, _door: &Door) -> String {
        let mut line = format!(
            "fwknop packets on {}/udp (key {}, HMAC {}; clients may ask for up to {})",
            self.port,
            self.name,
            self.hmac_digest.name(),
            humantime::format_duration(self.max_timeout)
        );
        if self.require_source_address {
            line.push_str("; an address is required (no -s)");
        }
        if let Some(why) = &self.refused {
            line = format!("LEFT OUT, takes no packet ({why}); would have taken {line}");
        }
        line
    }

    fn listens(&self) -> Vec<String> {
        vec![format!("{}/udp", self.port)]
    }

    fn client_ports(&self) -> Option<&[PortProto]> {
        Some(&self.open_ports)
    }

    /// The digests of accepted packets, in `<state_dir>/fwknop.replay`.
    fn keeps_state(&self) -> bool {
        true
    }

    fn inline_secrets(&self) -> bool {
        [&self.key, &self.hmac_key].into_iter().any(|k| !matches!(k, KeyMaterial::File(_)))
    }

    /// A door whose clients name their ports guards no port when it lists none they may ask for.
    fn warning(&self, door: &Door) -> Option<String> {
        let open = door.open.as_ref()?;
        if self.refused.is_some() || !open.per_port || !open.ports.is_empty() || open.attach.is_some() {
            return None;
        }
        Some(format!(
            "door {} guards no port: it lists none a client may ask for (OPEN_PORTS, or open_ports in YAML), so \
             knockd's table drops none and its grants open nothing: a port nothing drops is open to every client \
             anyway, and an accept in knockd's table cannot overrule a drop in another firewall. List the ports in \
             OPEN_PORTS (RESTRICT_PORTS only takes ports away), or attach the door to your firewall's own set \
             (`knockd --convert`, then `open.set`)",
            door.name
        ))
    }

    fn left_out(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    fn files(&self) -> Vec<&Path> {
        [&self.key, &self.hmac_key].into_iter().filter_map(KeyMaterial::file).map(PathBuf::as_path).collect()
    }

    fn files_mut(&mut self) -> Vec<&mut PathBuf> {
        [&mut self.key, &mut self.hmac_key].into_iter().filter_map(KeyMaterial::file_mut).collect()
    }
}

/// A door's fwknop settings, for the kind, its loaders and their tests.
pub trait FwknopDoor {
    /// The door's fwknop settings, if it takes fwknop's packets.
    fn fwknop(&self) -> Option<&Fwknop>;
}

impl FwknopDoor for Door {
    fn fwknop(&self) -> Option<&Fwknop> {
        self.proof::<Fwknop>()
    }
}
