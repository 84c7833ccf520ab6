//! One access.conf stanza: its directives, and the door it becomes.
//!
//! What knockd will not do is refused per stanza, never for the whole file: a stanza without an
//! HMAC key, with another encryption mode than CBC, with GPG or with NAT becomes a door that
//! takes no packet (its ports stay guarded), and the others are served. A stanza that lets
//! clients send commands (`ENABLE_CMD_EXEC`) is served; its command packets are refused.

use std::net::IpAddr;
use std::time::Duration;

use super::values::{command, date, key, ports, prefixes, seconds, yes};
use crate::config::{
    CMD_TIMEOUT_RANGE, Commands, DEFAULT_CMD_TIMEOUT, DEFAULT_SEQ_TIMEOUT, Door, Forward, OPEN_TIMEOUT_RANGE,
    OpenAction, PortProto, Proof, TcpFlags, check_range,
};
use crate::doors::fwknop::settings::{
    FWKNOP_ACCESS_TIMEOUT, FWKNOP_MAX_TIMEOUT, FWKNOP_PORT, FWKNOP_WINDOW, Fwknop, FwknopNat, HmacDigest, KeyMaterial,
};

/// What knockd reads; for the error that names an unknown directive.
pub(super) const DIRECTIVES: &str = "SOURCE, DESTINATION, OPEN_PORTS, RESTRICT_PORTS, KEY, KEY_BASE64, HMAC_KEY, \
     HMAC_KEY_BASE64, HMAC_DIGEST_TYPE, ENCRYPTION_MODE, FW_ACCESS_TIMEOUT, MAX_FW_TIMEOUT, REQUIRE_SOURCE_ADDRESS, \
     REQUIRE_USERNAME, ACCESS_EXPIRE, ACCESS_EXPIRE_EPOCH, CMD_CYCLE_OPEN, CMD_CYCLE_CLOSE, CMD_CYCLE_TIMER, \
     %include, %include_folder, %include_keys (and, to refuse or ignore them by name: GPG_*, ENABLE_CMD_EXEC, \
     CMD_EXEC_*, FORCE_NAT, FORCE_SNAT, FORCE_MASQUERADE, DISABLE_DNAT, FORWARD_ALL, DIGEST_TYPE)";

/// One stanza while it is read.
#[derive(Default)]
pub(super) struct Stanza {
    /// The file and line of its `SOURCE`.
    pub at: (String, usize),
    pub source: Vec<ipnet::IpNet>,
    destination: Vec<ipnet::IpNet>,
    open_ports: Vec<PortProto>,
    restrict_ports: Vec<PortProto>,
    key: Option<KeyMaterial>,
    hmac_key: Option<KeyMaterial>,
    hmac_digest: Option<HmacDigest>,
    access_timeout: Option<Duration>,
    max_timeout: Option<Duration>,
    require_source_address: bool,
    require_username: Option<String>,
    expires: Option<u64>,
    cycle_open: Option<String>,
    cycle_close: Option<String>,
    cycle_timer: Option<Duration>,
    nat: FwknopNat,
    /// Why knockd will not serve the stanza, one reason per kind.
    refusals: Vec<String>,
}

/// What a directive that is accepted has to say, besides its effect.
pub(super) type Said = Option<(log::Level, String)>;

fn warn(message: String) -> Result<Said, String> {
    Ok(Some((log::Level::Warn, message)))
}

impl Stanza {
    /// A stanza that starts at `file`:`line` with this `SOURCE`.
    pub fn new(file: &str, line: usize, source: Vec<ipnet::IpNet>) -> Self {
        Stanza { at: (file.to_owned(), line), source, ..Stanza::default() }
    }

    fn refuse(&mut self, reason: String) {
        if !self.refusals.contains(&reason) {
            self.refusals.push(reason);
        }
    }

    /// One directive of the stanza; `upper` is its name in upper case.
    pub fn directive(&mut self, upper: &str, value: &str) -> Result<Said, String> {
        match upper {
            "DESTINATION" => self.destination = prefixes(value)?,
            "OPEN_PORTS" => self.open_ports = ports(value)?,
            "RESTRICT_PORTS" => self.restrict_ports = ports(value)?,
            "FW_ACCESS_TIMEOUT" => self.access_timeout = Some(check_range(seconds(value)?, OPEN_TIMEOUT_RANGE)?),
            "MAX_FW_TIMEOUT" => self.max_timeout = Some(check_range(seconds(value)?, OPEN_TIMEOUT_RANGE)?),
            "REQUIRE_SOURCE_ADDRESS" | "REQUIRE_SOURCE" => self.require_source_address = yes(value),
            "REQUIRE_USERNAME" => self.require_username = Some(value.to_owned()),
            "ACCESS_EXPIRE" => self.expires = Some(date(value)?),
            "ACCESS_EXPIRE_EPOCH" => {
                self.expires = Some(value.parse().map_err(|_| format!("`{value}` is not a Unix time in seconds"))?)
            }
            "CMD_CYCLE_OPEN" => self.cycle_open = Some(command(value)?),
            "CMD_CYCLE_CLOSE" => self.cycle_close = Some(command(value)?),
            "CMD_CYCLE_TIMER" => self.cycle_timer = Some(check_range(seconds(value)?, CMD_TIMEOUT_RANGE)?),
            "DIGEST_TYPE" => {
                return Ok(Some((
                    log::Level::Info,
                    "ignored, as fwknopd ignores it: each packet's digest type is told by its length".into(),
                )));
            }
            other => return self.keys_and_refusals(other, value),
        }
        Ok(None)
    }

    /// The directives that set keys (`%include_keys` files hold only these), and those that
    /// make knockd refuse the stanza, or say what it will not do.
    pub fn keys_and_refusals(&mut self, upper: &str, value: &str) -> Result<Said, String> {
        match upper {
            "KEY" => self.key = Some(key(value, false, false)?),
            "KEY_BASE64" => self.key = Some(key(value, true, false)?),
            "HMAC_KEY" => self.hmac_key = Some(key(value, false, true)?),
            "HMAC_KEY_BASE64" => self.hmac_key = Some(key(value, true, true)?),
            "HMAC_DIGEST_TYPE" => {
                self.hmac_digest =
                    Some(HmacDigest::parse(value).ok_or_else(|| {
                        format!("`{value}`: use md5, sha1, sha256, sha384, sha512, sha3_256 or sha3_512")
                    })?)
            }
            "ENCRYPTION_MODE" if value.eq_ignore_ascii_case("CBC") => {}
            "ENCRYPTION_MODE" if value.eq_ignore_ascii_case("legacy") => self.refuse(
                "ENCRYPTION_MODE legacy: knockd does not take the legacy IV of clients before fwknop 2.5 \
                 (clients: drop --use-legacy-iv / -M legacy)"
                    .into(),
            ),
            "ENCRYPTION_MODE" => self.refuse(format!(
                "ENCRYPTION_MODE {value}: knockd does only CBC, fwknop's default (clients: drop -M {})",
                value.to_ascii_lowercase()
            )),
            gpg if gpg.starts_with("GPG_") => self.refuse(
                "GPG: knockd does not take fwknop's GPG packets (give the stanza KEY_BASE64 and \
                 HMAC_KEY_BASE64 from `fwknop --key-gen`, and clients --use-hmac)"
                    .into(),
            ),
            "ENABLE_CMD_EXEC" | "ENABLE_CMD_SUDO_EXEC" if yes(value) => {
                return warn(
                    "knockd runs no command a packet sends: command packets (fwknop -C) are refused \
                     by name in the log; this stanza's access requests are served"
                        .into(),
                );
            }
            "ENABLE_CMD_EXEC" | "ENABLE_CMD_SUDO_EXEC" => {}
            "CMD_EXEC_USER" | "CMD_EXEC_GROUP" | "CMD_SUDO_EXEC_USER" | "CMD_SUDO_EXEC_GROUP" => {
                return warn("not used: knockd runs no command a packet sends".into());
            }
            other => return self.nat_directive(other, value),
        }
        Ok(None)
    }

    /// fwknopd's NAT directives: `FORCE_NAT` becomes the door's forwards (from each of its
    /// `OPEN_PORTS`); the others leave the stanza out, as knockd does not do them.
    fn nat_directive(&mut self, upper: &str, value: &str) -> Result<Said, String> {
        let address = |text: &str| -> Result<IpAddr, String> {
            text.parse().map_err(|_| format!("`{text}` is not an IP address"))
        };
        match upper {
            "FORCE_NAT" => {
                let mut words = value.split_whitespace();
                let (Some(ip), Some(port), None) = (words.next(), words.next(), words.next()) else {
                    return Err(format!("`{value}`: write an address and a port, like 198.18.0.5 22"));
                };
                let port = port.parse().map_err(|_| format!("`{port}` is not a port"))?;
                self.nat.force_nat = Some((address(ip)?, port));
            }
            "FORCE_SNAT" => self.nat.force_snat = Some(address(value)?),
            "FORCE_MASQUERADE" => self.nat.force_masquerade = yes(value),
            "DISABLE_DNAT" => self.nat.disable_dnat = yes(value),
            "FORWARD_ALL" => self.nat.forward_all = yes(value),
            _ => return Err(format!("unknown directive: knockd reads {DIRECTIVES}")),
        }
        if self.nat.stanza_asks() {
            self.refuse(format!(
                "{upper}: not honoured: knockd forwards with DNAT only (FORCE_NAT, fwknop -N), and opening this \
                 host's own port instead would not be what the stanza says"
            ));
        }
        Ok(None)
    }

    /// The door this stanza describes, as door `stanza<number>`: refused (it takes no packet)
    /// when something in it is unsafe or not honoured.
    pub fn into_door(mut self, number: usize) -> Result<Door, String> {
        self.check_as_a_whole()?;
        let name = format!("stanza{number}");
        let cycle = self.cycle_open.is_some();
        let access_timeout = self.access_timeout.unwrap_or(FWKNOP_ACCESS_TIMEOUT);
        // A refused stanza's missing key is never read: no packet reaches it.
        let missing = || KeyMaterial::Text(String::new());
        let fwknop = Fwknop {
            port: FWKNOP_PORT,
            name: name.clone(),
            key: self.key.unwrap_or_else(missing),
            hmac_key: self.hmac_key.unwrap_or_else(missing),
            hmac_digest: self.hmac_digest.unwrap_or(HmacDigest::Sha256),
            require_source_address: self.require_source_address,
            require_username: self.require_username,
            open_ports: self.open_ports.clone(),
            restrict_ports: self.restrict_ports,
            max_timeout: self.max_timeout.unwrap_or(FWKNOP_MAX_TIMEOUT),
            window: FWKNOP_WINDOW,
            destination: self.destination,
            expires: self.expires,
            refused: (!self.refusals.is_empty()).then(|| self.refusals.join("; ")),
            nat: self.nat,
        };
        let stop = self.cycle_close.filter(|c| !c.eq_ignore_ascii_case("NONE"));
        let forced = forced_nat(&fwknop);
        Ok(Door {
            name,
            proofs: vec![Proof::new(fwknop)],
            seq_timeout: DEFAULT_SEQ_TIMEOUT,
            tcp_flags: TcpFlags::default(),
            target: None,
            from: self.source,
            not_from: Vec::new(),
            // fwknopd runs CMD_CYCLE_OPEN instead of adding a firewall rule.
            open: (!cycle).then_some(OpenAction {
                ports: self.open_ports,
                per_port: true,
                timeout: access_timeout,
                attach: None,
                forward: forced,
            }),
            commands: Commands {
                start: self.cycle_open,
                start_v6: None,
                stop,
                stop_v6: None,
                // fwknopd closes a command cycle after CMD_CYCLE_TIMER, else after the access timeout.
                cmd_timeout: self.cycle_timer.unwrap_or(if cycle { access_timeout } else { DEFAULT_CMD_TIMEOUT }),
            },
        })
    }

    /// What only the whole stanza tells: a missing key refuses it (its ports stay guarded);
    /// the same key twice, or a cycle with no closing command, is an error of the file.
    fn check_as_a_whole(&mut self) -> Result<(), String> {
        if self.key.is_none() {
            self.refuse("no KEY or KEY_BASE64: knockd takes only Rijndael packets with an HMAC".into());
        }
        if self.hmac_key.is_none() {
            self.refuse(
                "no HMAC_KEY_BASE64: knockd checks an HMAC before anything else (`fwknop --key-gen` makes the \
                 key; clients send it with --use-hmac)"
                    .into(),
            );
        }
        if self.key.is_some() && self.key == self.hmac_key {
            return Err("the encryption key and the HMAC key must not be the same".into());
        }
        if self.cycle_open.is_some() && self.cycle_close.is_none() {
            return Err("CMD_CYCLE_OPEN needs CMD_CYCLE_CLOSE (`NONE` for no closing command)".into());
        }
        if self.nat.force_nat.is_some() && self.open_ports.is_empty() {
            self.refuse(
                "FORCE_NAT needs OPEN_PORTS: knockd forwards the ports a stanza opens, each to that host".into(),
            );
        }
        Ok(())
    }
}

/// FORCE_NAT: every access the stanza grants goes on to that host and port.
fn forced_nat(fwknop: &Fwknop) -> Vec<Forward> {
    match fwknop.nat.force_nat {
        Some((ip, port)) => fwknop
            .open_ports
            .iter()
            .map(|p| Forward { port: Some(*p), to: (ip, port).into(), proto: p.proto })
            .collect(),
        None => Vec::new(),
    }
}
