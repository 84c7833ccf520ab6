//! `knockd.yaml`: the declarative configuration format.
//!
//! Values are checked while they are deserialized, so every error comes back from
//! serde_yaml_ng with the key path (`doors.ssh.sequence[1]`) and the line it is on.

mod forward;
mod fwknop;
mod hints;
mod values;

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use values::*;
pub use values::{MAX_COMMAND_LEN, check_command};

use super::{
    AttachSets, Commands, Config, DEFAULT_CMD_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_SEQ_TIMEOUT, DEFAULT_SET_SIZE,
    DEFAULT_STATE_DIR, DEFAULT_USER, Door, Forward, LogOptions, OpenAction, PortProto, Proof, Proto, ROTATING_LENGTH,
    ROTATING_MAX_LENGTH, ROTATING_PORTS, ROTATING_STEP, Rotating, SET_SIZE_RANGE, SPA_WINDOW, Spa, TableFamily,
    TcpFlags,
};
use super::{ConfigError, Location};

/// Parses `text` (the contents of `file`) into a validated [`Config`].
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_yaml_ng::from_str(text).map_err(|e| {
        let location = e.location().map(|l| Location { line: l.line(), column: l.column() });
        let (line, column) = location.map_or((0, 0), |l| (l.line, l.column));
        let message = hints::explain(&strip_location(&e.to_string()), text, line, column);
        ConfigError::Invalid { file: file.to_owned(), location, message }
    })?;
    let doors = raw.doors.0;
    let invalid = |message: String| ConfigError::Invalid { file: file.to_owned(), location: None, message };
    if let name @ ("fw4" | "firewalld") = raw.nftables.table.0.as_str() {
        return Err(ConfigError::Invalid {
            file: file.to_owned(),
            location: None,
            message: format!(
                "nftables.table: `{name}` is another firewall's table, which knockd would replace and remove: \
                 keep knockd's own name (`knockd`){}",
                if name == "fw4" { ", and put its rules inside fw4 with `nftables: {fw4: {zone: wan}}`" } else { "" }
            ),
        });
    }
    if doors.is_empty() {
        return Err(invalid("doors: no doors are defined: add at least one under `doors:`".into()));
    }
    if let Some((a, b)) = super::clashing_nft_names(&doors) {
        return Err(invalid(format!("doors `{a}` and `{b}` would share nftables sets: rename one")));
    }
    Ok(Config {
        interfaces: raw.interfaces.into_iter().map(|i| i.0).collect(),
        table: raw.nftables.table.0,
        set_size: raw.nftables.set_size.0,
        fw4: raw.nftables.fw4.map(forward::RawFw4::into_fw4),
        log: LogOptions {
            level: raw.log.level.0,
            syslog: raw.log.syslog,
            file: raw.log.file,
            format: raw.log.format.0,
        },
        pidfile: raw.pidfile,
        state_dir: raw.state_dir.unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
        user: raw.user.map_or_else(|| DEFAULT_USER.into(), |u| u.0),
        included: Vec::new(),
        control_socket: raw.control_socket,
        metrics_textfile: raw.metrics.textfile,
        command_privileges: raw.commands.privileges.0,
        max_attempts: raw.limits.max_attempts,
        doors,
        notices: Vec::new(),
    })
}

/// serde_yaml_ng appends " at line L column C"; we print the location in front instead.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    interfaces: Vec<IfName>,
    #[serde(default)]
    nftables: RawNftables,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    pidfile: Option<PathBuf>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    user: Option<UserName>,
    #[serde(default)]
    control_socket: Option<PathBuf>,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    commands: RawCommands,
    doors: Doors,
}

/// `commands:`, what classic commands may do.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCommands {
    #[serde(default)]
    privileges: Privileges,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default)]
    textfile: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNftables {
    #[serde(default = "default_table")]
    table: TableName,
    #[serde(default)]
    set_size: SetSize,
    #[serde(default)]
    fw4: Option<forward::RawFw4>,
}

fn default_table() -> TableName {
    TableName("knockd".into())
}

impl Default for RawNftables {
    fn default() -> Self {
        Self { table: default_table(), set_size: SetSize::default(), fw4: None }
    }
}

/// `nftables.set_size`: a number within [`SET_SIZE_RANGE`].
struct SetSize(u32);

impl Default for SetSize {
    fn default() -> Self {
        SetSize(DEFAULT_SET_SIZE)
    }
}

impl<'de> Deserialize<'de> for SetSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        let (lo, hi) = SET_SIZE_RANGE;
        match u32::try_from(n) {
            Ok(n) if (lo..=hi).contains(&n) => Ok(SetSize(n)),
            _ => Err(de::Error::custom(format!("set_size {n} is out of range: use {lo} to {hi}"))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    level: Level,
    #[serde(default = "yes")]
    syslog: bool,
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    format: FormatName,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog { level: Level::default(), syslog: true, file: None, format: FormatName::default() }
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default = "default_max_attempts")]
    max_attempts: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self { max_attempts: DEFAULT_MAX_ATTEMPTS }
    }
}

fn default_max_attempts() -> usize {
    DEFAULT_MAX_ATTEMPTS
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoor {
    #[serde(default)]
    sequence: Option<KnockSequence>,
    #[serde(default)]
    one_time_sequences: Option<PathBuf>,
    #[serde(default)]
    seq_timeout: Option<SeqTimeout>,
    #[serde(default)]
    tcp_flags: Option<Flags>,
    #[serde(default)]
    target: Option<std::net::IpAddr>,
    #[serde(default)]
    rotating: Option<RawRotating>,
    #[serde(default)]
    spa: Option<RawSpa>,
    #[serde(default)]
    fwknop: Option<fwknop::RawFwknop>,
    #[serde(default)]
    from: Vec<Prefix>,
    #[serde(default)]
    not_from: Vec<Prefix>,
    #[serde(default)]
    open: Option<RawOpen>,
    #[serde(default, alias = "start_command")]
    command: Option<CommandText>,
    #[serde(default, alias = "start_command_6")]
    command_6: Option<CommandText>,
    #[serde(default)]
    stop_command: Option<CommandText>,
    #[serde(default)]
    stop_command_6: Option<CommandText>,
    #[serde(default)]
    cmd_timeout: Option<CmdTimeout>,
}

impl RawDoor {
    fn into_door<E: de::Error>(self, name: String) -> Result<Door, E> {
        let mut proofs = match (self.sequence, self.one_time_sequences, self.rotating) {
            (Some(s), None, None) => vec![Proof::Sequence(s.0)],
            (None, Some(path), None) => vec![Proof::OneTime(path)],
            (None, None, Some(r)) => vec![Proof::Rotating(r.into_rotating()?)],
            (None, None, None) => Vec::new(),
            _ => {
                return Err(E::custom(format!(
                    "door `{name}` has more than one of `sequence`, `one_time_sequences` and `rotating`: keep one"
                )));
            }
        };
        proofs.extend(self.spa.map(|s| s.into_spa()).transpose()?.map(Proof::Spa));
        if proofs.iter().any(|p| matches!(p, Proof::Spa(_) | Proof::Rotating(_))) {
            super::check_sent_name(&name).map_err(|e| E::custom(format!("door `{name}`: {e}")))?;
        }
        let fwknop = self.fwknop.map(|f| f.into_fwknop(&name)).transpose()?;
        if fwknop.is_some() && !proofs.is_empty() && proofs[0].is_sequence() {
            // fwknop's clients name ports, so the door's sets hold address and port: a knock,
            // which names none, would open nothing.
            return Err(E::custom(format!(
                "door `{name}` has both a knock sequence and `fwknop`: a completed knock would open nothing \
                 there (fwknop's grants name ports): make them two doors"
            )));
        }
        let allowed = fwknop.as_ref().map(|f| f.open_ports.clone());
        proofs.extend(fwknop.map(|f| Proof::Fwknop(Box::new(f))));
        if proofs.is_empty() {
            return Err(E::custom(format!(
                "door `{name}` has no knock: add `sequence:` (or `one_time_sequences:`, `rotating:`, `spa:` or `fwknop:`)"
            )));
        }
        let text = |c: Option<CommandText>| c.map(|c| c.0);
        let open = self.open.map(|o| o.into_action(&name, allowed)).transpose()?;
        Ok(Door {
            name,
            proofs,
            seq_timeout: self.seq_timeout.map_or(DEFAULT_SEQ_TIMEOUT, |t| t.0),
            tcp_flags: self.tcp_flags.map_or_else(TcpFlags::default, |f| f.0),
            target: self.target,
            from: self.from.into_iter().map(|p| p.0).collect(),
            not_from: self.not_from.into_iter().map(|p| p.0).collect(),
            open,
            commands: Commands {
                start: text(self.command),
                start_v6: text(self.command_6),
                stop: text(self.stop_command),
                stop_v6: text(self.stop_command_6),
                cmd_timeout: self.cmd_timeout.map_or(DEFAULT_CMD_TIMEOUT, |t| t.0),
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOpen {
    #[serde(default)]
    ports: Option<OpenPorts>,
    #[serde(default)]
    set: Option<RawAttach>,
    #[serde(default)]
    forward: Option<Vec<forward::RawForward>>,
    timeout: OpenTimeout,
}

/// `rotating:` (doc/rotating.md).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotating {
    #[serde(default)]
    secret_file: Option<PathBuf>,
    #[serde(default)]
    secret_files: Vec<PathBuf>,
    #[serde(default)]
    step: Option<StepDuration>,
    #[serde(default)]
    length: Option<usize>,
    #[serde(default)]
    ports: Option<PortRange>,
    #[serde(default)]
    protocol: Option<ProtoName>,
}

impl RawRotating {
    fn into_rotating<E: de::Error>(self) -> Result<Rotating, E> {
        let length = self.length.unwrap_or(ROTATING_LENGTH);
        if !(2..=ROTATING_MAX_LENGTH).contains(&length) {
            // One knock to one of a few thousand ports, three steps valid: a port scan opens it.
            return Err(E::custom(format!(
                "rotating.length {length} is out of range: use 2 to {ROTATING_MAX_LENGTH} (a single knock is found by \
                 any port scan)"
            )));
        }
        let secret_files = match (self.secret_file, self.secret_files) {
            (Some(one), many) if many.is_empty() => vec![one],
            (None, many) if !many.is_empty() => many,
            (Some(_), _) => {
                return Err(E::custom(
                    "rotating has both `secret_file` and `secret_files`: keep one (a list takes one)",
                ));
            }
            (None, _) => {
                return Err(E::custom(
                    "rotating needs `secret_file:` (or `secret_files:`, one per client): the shared secret(s)",
                ));
            }
        };
        Ok(Rotating {
            secret_files,
            step: self.step.map_or(ROTATING_STEP, |s| s.0),
            length,
            ports: self.ports.map_or(ROTATING_PORTS, |p| p.0),
            proto: self.protocol.map_or(Proto::Tcp, |p| p.0),
        })
    }
}

/// `spa:` (doc/spa.md).
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

impl RawSpa {
    fn into_spa<E: de::Error>(self) -> Result<Spa, E> {
        if self.hmac_key_file.is_none() && self.public_keys.is_empty() {
            return Err(E::custom("`spa` needs `hmac_key_file:` or `public_keys:` to check packets with"));
        }
        Ok(Spa {
            port: self.port.0.port,
            window: self.window.map_or(SPA_WINDOW, |w| w.0),
            hmac_key_file: self.hmac_key_file,
            public_keys: self.public_keys,
            require_address: self.require_address,
        })
    }
}

/// `open.set`: the admin's own sets (attach mode).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttach {
    #[serde(default)]
    family: Option<Family>,
    table: TableName,
    #[serde(default)]
    ipv4: Option<TableName>,
    #[serde(default)]
    ipv6: Option<TableName>,
}

impl RawOpen {
    /// `allowed`: for a door whose clients ask for ports (fwknop), the ports they may ask for
    /// (`fwknop.open_ports`, empty for any): those are the ones guarded.
    fn into_action<E: de::Error>(self, door: &str, allowed: Option<Vec<PortProto>>) -> Result<OpenAction, E> {
        let timeout = self.timeout.0;
        let per_port = allowed.is_some();
        let forward: Vec<Forward> =
            self.forward.unwrap_or_default().into_iter().map(|f| f.into_forward(door)).collect::<Result<_, E>>()?;
        if !forward.is_empty() && self.set.is_some() {
            return Err(E::custom(format!(
                "door `{door}`: `forward` needs knockd's own sets: leave `set` out of `open` (attach mode opens \
                 what your own rules say)"
            )));
        }
        let (attach, allowed) = match (self.ports, self.set, allowed) {
            (Some(_), None, Some(_)) => {
                return Err(E::custom(format!(
                    "door `{door}`: fwknop's clients name the ports they want: list those they may ask for in \
                     `fwknop.open_ports`, and leave `ports` out of `open`"
                )));
            }
            (Some(ports), None, None) => {
                return Ok(OpenAction { ports: ports.0, per_port, timeout, attach: None, forward });
            }
            (None, None, Some(ports)) => return Ok(OpenAction { ports, per_port, timeout, attach: None, forward }),
            (None, None, None) if !forward.is_empty() => {
                return Ok(OpenAction { ports: Vec::new(), per_port, timeout, attach: None, forward });
            }
            (None, Some(set), allowed) => (set, allowed.unwrap_or_default()),
            (Some(_), Some(_), _) => {
                return Err(E::custom(format!(
                    "door `{door}`: `open` has both `ports` (the daemon's own table) and `set` (your table): \
                     keep one; with `set`, your own rules decide which ports the set opens"
                )));
            }
            (None, None, None) => {
                return Err(E::custom(format!("door `{door}`: `open` needs `ports:`, `set:` or `forward:`")));
            }
        };
        let family = attach.family.map_or(TableFamily::Inet, |f| f.0);
        let (ipv4, ipv6) = (attach.ipv4.map(|n| n.0), attach.ipv6.map(|n| n.0));
        let fits = match family {
            TableFamily::Inet => true,
            TableFamily::Ip => ipv6.is_none(),
            TableFamily::Ip6 => ipv4.is_none(),
        };
        if !fits {
            return Err(E::custom(format!(
                "door `{door}`: a table of family {family} cannot hold that set: use family inet"
            )));
        }
        if ipv4.is_none() && ipv6.is_none() {
            return Err(E::custom(format!("door `{door}`: `open.set` names no set: add `ipv4:` and/or `ipv6:`")));
        }
        // A per-port door keeps the ports its clients may ask for: its grants are checked
        // against them, and `knockd check` asks the host's firewall about them.
        Ok(OpenAction {
            ports: allowed,
            per_port,
            timeout,
            attach: Some(AttachSets { family, table: attach.table.0, ipv4, ipv6 }),
            forward,
        })
    }
}

/// The `doors` mapping, kept in file order, with duplicate names rejected where they stand.
struct Doors(Vec<Door>);

impl<'de> Deserialize<'de> for Doors {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Doors;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping from door names to doors")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doors, A::Error> {
                let mut doors: Vec<Door> = Vec::new();
                while let Some(name) = map.next_key::<DoorName>()? {
                    if doors.iter().any(|d| d.name == name.0) {
                        return Err(de::Error::custom(format!(
                            "door `{}` is defined twice: give each door its own name",
                            name.0
                        )));
                    }
                    let raw: RawDoor = map.next_value()?;
                    doors.push(raw.into_door(name.0)?);
                }
                Ok(Doors(doors))
            }
        }
        d.deserialize_map(V)
    }
}
