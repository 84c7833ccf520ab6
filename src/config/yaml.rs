//! `knockd.yaml`: the declarative configuration format.
//!
//! Values are checked while they are deserialized, so every error comes back from
//! serde_yaml_ng with the key path (`doors.ssh.sequence[1]`) and the line it is on.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::model::{
    AttachSets, CMD_TIMEOUT_RANGE, Commands, Config, DEFAULT_CMD_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_SEQ_TIMEOUT,
    Door, LogLevel, LogOptions, MAX_SEQUENCE_LEN, OPEN_TIMEOUT_RANGE, OpenAction, PortProto, Proto, ROTATING_LENGTH,
    ROTATING_MAX_LENGTH, ROTATING_PORTS, ROTATING_STEP, Rotating, SEQ_TIMEOUT_RANGE, SPA_WINDOW, Sequence, Spa,
    TableFamily, TcpFlags, check_identifier, check_range,
};
use super::{ConfigError, Location};

/// Longest door name: it becomes part of nftables set names and log lines.
const MAX_DOOR_NAME: usize = 32;
/// Longest table name we accept (the kernel allows 255; nobody needs that).
const MAX_TABLE_NAME: usize = 64;
/// The kernel's IFNAMSIZ less the terminating NUL.
const MAX_IFNAME: usize = 15;
/// Bounds that keep a typo (`30h` for `30s`, `0s`) from becoming a surprise.
/// Longest command template; the classic daemon truncated at PATH_MAX and refused to run.
pub const MAX_COMMAND_LEN: usize = 4096;

/// Parses `text` (the contents of `file`) into a validated [`Config`].
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_yaml_ng::from_str(text).map_err(|e| {
        let location = e.location().map(|l| Location { line: l.line(), column: l.column() });
        ConfigError::Invalid { file: file.to_owned(), location, message: strip_location(&e.to_string()) }
    })?;
    let doors = raw.doors.0;
    if doors.is_empty() {
        return Err(ConfigError::Invalid {
            file: file.to_owned(),
            location: None,
            message: "doors: no doors are defined: add at least one under `doors:`".into(),
        });
    }
    Ok(Config {
        interfaces: raw.interfaces.into_iter().map(|i| i.0).collect(),
        table: raw.nftables.table.0,
        log: LogOptions { level: raw.log.level.0, syslog: raw.log.syslog, file: raw.log.file },
        pidfile: raw.pidfile,
        max_attempts: raw.limits.max_attempts,
        doors,
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
    doors: Doors,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNftables {
    table: TableName,
}

impl Default for RawNftables {
    fn default() -> Self {
        Self { table: TableName("knockd".into()) }
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
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog { level: Level::default(), syslog: true, file: None }
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
        let sequence = match (self.sequence, self.one_time_sequences, self.rotating) {
            (Some(s), None, None) => Sequence::Fixed(s.0),
            (None, Some(path), None) => Sequence::OneTime(path),
            (None, None, Some(r)) => Sequence::Rotating(r.into_rotating()?),
            (None, None, None) if self.spa.is_some() => Sequence::None,
            (None, None, None) => {
                return Err(E::custom(format!(
                    "door `{name}` has no knock: add `sequence:` (or `one_time_sequences:`, `rotating:` or `spa:`)"
                )));
            }
            _ => {
                return Err(E::custom(format!(
                    "door `{name}` has more than one of `sequence`, `one_time_sequences` and `rotating`: keep one"
                )));
            }
        };
        let spa = self.spa.map(|s| s.into_spa()).transpose()?;
        let text = |c: Option<CommandText>| c.map(|c| c.0);
        let open = self.open.map(|o| o.into_action(&name)).transpose()?;
        Ok(Door {
            name,
            sequence,
            seq_timeout: self.seq_timeout.map_or(DEFAULT_SEQ_TIMEOUT, |t| t.0),
            tcp_flags: self.tcp_flags.map_or_else(TcpFlags::default, |f| f.0),
            target: self.target,
            from: self.from.into_iter().map(|p| p.0).collect(),
            not_from: self.not_from.into_iter().map(|p| p.0).collect(),
            spa,
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
    timeout: OpenTimeout,
}

/// `rotating:` (doc/rotating.md).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotating {
    secret_file: PathBuf,
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
        if !(1..=ROTATING_MAX_LENGTH).contains(&length) {
            return Err(E::custom(format!("rotating.length {length} is out of range: use 1 to {ROTATING_MAX_LENGTH}")));
        }
        Ok(Rotating {
            secret_file: self.secret_file,
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
    fn into_action<E: de::Error>(self, door: &str) -> Result<OpenAction, E> {
        let attach = match (self.ports, self.set) {
            (Some(ports), None) => return Ok(OpenAction { ports: ports.0, timeout: self.timeout.0, attach: None }),
            (None, Some(set)) => set,
            (Some(_), Some(_)) => {
                return Err(E::custom(format!(
                    "door `{door}`: `open` has both `ports` (the daemon's own table) and `set` (your table): \
                     keep one; with `set`, your own rules decide which ports the set opens"
                )));
            }
            (None, None) => {
                return Err(E::custom(format!("door `{door}`: `open` needs `ports:` or `set:`")));
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
        Ok(OpenAction {
            ports: Vec::new(),
            timeout: self.timeout.0,
            attach: Some(AttachSets { family, table: attach.table.0, ipv4, ipv6 }),
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

/// Implements `Deserialize` for a newtype from a string, through a checking function. The
/// check runs inside the visitor so errors carry the key path and the value's position.
macro_rules! from_str_checked {
    ($ty:ident, $check:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        let check: fn(String) -> Result<$ty, String> = $check;
                        check(v.to_owned()).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

struct DoorName(String);
from_str_checked!(DoorName, |s| check_identifier(&s, MAX_DOOR_NAME).map(|()| DoorName(s)));

struct TableName(String);
from_str_checked!(TableName, |s| check_identifier(&s, MAX_TABLE_NAME).map(|()| TableName(s)));

struct IfName(String);
from_str_checked!(IfName, |s| {
    let valid = !s.is_empty() && s.len() <= MAX_IFNAME && !s.contains(['/', ' ', '\0', ':']);
    if valid {
        Ok(IfName(s))
    } else {
        Err(format!("`{s}` is not an interface name: use the name `ip link` shows (at most {MAX_IFNAME} characters)"))
    }
});

struct Level(LogLevel);
impl Default for Level {
    fn default() -> Self {
        Level(LogLevel::Info)
    }
}
from_str_checked!(Level, |s| match s.to_ascii_lowercase().as_str() {
    "error" => Ok(Level(LogLevel::Error)),
    "warn" | "warning" => Ok(Level(LogLevel::Warn)),
    "info" => Ok(Level(LogLevel::Info)),
    "debug" => Ok(Level(LogLevel::Debug)),
    "trace" => Ok(Level(LogLevel::Trace)),
    _ => Err(format!("unknown log level `{s}`: use error, warn, info, debug or trace")),
});

/// Checks a command template; shared with the knockd.conf loader.
pub fn check_command(command: &str) -> Result<(), String> {
    if command.len() > MAX_COMMAND_LEN {
        return Err(format!("the command is longer than {MAX_COMMAND_LEN} bytes"));
    }
    if command.contains(['\n', '\r', '\0']) {
        return Err("a command must be one line".into());
    }
    Ok(())
}

/// Parses a duration with a unit and checks it against a range.
fn duration_in(text: &str, (min, max): (Duration, Duration)) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("`{text}` is not a duration ({e}): write a number with a unit, like 500ms, 5s, 5m or 1h")
    })?;
    check_range(d, (min, max))
}

struct SeqTimeout(Duration);
from_str_checked!(SeqTimeout, |s| duration_in(&s, SEQ_TIMEOUT_RANGE).map(SeqTimeout));

struct OpenTimeout(Duration);
from_str_checked!(OpenTimeout, |s| duration_in(&s, OPEN_TIMEOUT_RANGE).map(OpenTimeout));

struct CmdTimeout(Duration);
from_str_checked!(CmdTimeout, |s| duration_in(&s, CMD_TIMEOUT_RANGE).map(CmdTimeout));

/// A command template: one line and bounded.
struct CommandText(String);
from_str_checked!(CommandText, |s| check_command(&s).map(|()| CommandText(s)));

/// A port written as a number (`7000`) or a string (`"9000/udp"`).
struct Port(PortProto);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number or a string like \"9000/udp\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                PortProto::checked(v, super::model::Proto::Tcp).map(Port).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                Err(E::custom(format!("port {v} is out of range: ports are 1-65535")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                PortProto::parse(v).map(Port).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A non-empty, bounded list of ports.
struct PortList<const MAX: usize, Tag>(Vec<PortProto>, PhantomData<Tag>);

impl<'de, const MAX: usize, Tag: ListTag> Deserialize<'de> for PortList<MAX, Tag> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MAX: usize, Tag>(PhantomData<Tag>);
        impl<'de, const MAX: usize, Tag: ListTag> Visitor<'de> for V<MAX, Tag> {
            type Value = PortList<MAX, Tag>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a list of {}", Tag::WHAT)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut ports = Vec::new();
                while let Some(Port(p)) = seq.next_element()? {
                    if ports.len() == MAX {
                        return Err(de::Error::custom(format!("more than {MAX} {}", Tag::WHAT)));
                    }
                    ports.push(p);
                }
                if ports.is_empty() {
                    return Err(de::Error::custom(format!(
                        "the list is empty: give at least one of the {}",
                        Tag::WHAT
                    )));
                }
                Ok(PortList(ports, PhantomData))
            }
        }
        d.deserialize_seq(V::<MAX, Tag>(PhantomData))
    }
}

/// Names a port list in error messages.
trait ListTag {
    const WHAT: &'static str;
}
struct KnockTag;
impl ListTag for KnockTag {
    const WHAT: &'static str = "knock ports";
}
struct OpenTag;
impl ListTag for OpenTag {
    const WHAT: &'static str = "ports to open";
}

type KnockSequence = PortList<MAX_SEQUENCE_LEN, KnockTag>;
type OpenPorts = PortList<64, OpenTag>;

/// `tcp_flags: syn`, `tcp_flags: "syn,!ack"` or `tcp_flags: [syn, "!ack"]`.
struct Flags(TcpFlags);

impl<'de> Deserialize<'de> for Flags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Flags;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a TCP flag or a list of them, like syn or [syn, \"!ack\"] (quote anything starting with !)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flags, E> {
                TcpFlags::parse_list(v).map(Flags).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Flags, A::Error> {
                let mut flags = TcpFlags::default();
                while let Some(item) = seq.next_element::<String>()? {
                    flags.add(&item).map_err(de::Error::custom)?;
                }
                Ok(Flags(flags))
            }
        }
        d.deserialize_any(V)
    }
}

struct Family(TableFamily);
from_str_checked!(Family, |s| TableFamily::parse(&s)
    .map(Family)
    .ok_or_else(|| format!("unknown table family `{s}`: use inet, ip or ip6")));

struct StepDuration(Duration);
from_str_checked!(StepDuration, |s| duration_in(&s, (Duration::from_secs(5), Duration::from_secs(3600)))
    .map(StepDuration));

struct SpaWindow(Duration);
from_str_checked!(SpaWindow, |s| duration_in(&s, (Duration::from_secs(1), Duration::from_secs(600))).map(SpaWindow));

struct ProtoName(Proto);
from_str_checked!(ProtoName, |s| match s.to_ascii_lowercase().as_str() {
    "tcp" => Ok(ProtoName(Proto::Tcp)),
    "udp" => Ok(ProtoName(Proto::Udp)),
    _ => Err(format!("unknown protocol `{s}`: use tcp or udp")),
});

/// `"20000-40000"`: an inclusive port range of at least 16 ports.
struct PortRange((u16, u16));
from_str_checked!(PortRange, |s| {
    let bad = || format!("`{s}` is not a port range: write two ports like 20000-40000, at least 16 apart");
    let (low, high) = s.split_once('-').ok_or_else(bad)?;
    let low: u16 = low.trim().parse().map_err(|_| bad())?;
    let high: u16 = high.trim().parse().map_err(|_| bad())?;
    if low == 0 || high < low.saturating_add(15) {
        return Err(bad());
    }
    Ok(PortRange((low, high)))
});

/// A source prefix: `198.18.0.0/15`, `2001:db8::/32`, or one address.
struct Prefix(ipnet::IpNet);
from_str_checked!(Prefix, |s| s
    .parse::<ipnet::IpNet>()
    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
    .map(|n| Prefix(n.trunc()))
    .map_err(|_| format!("`{s}` is not an address prefix: write one like 198.18.0.0/15 or 2001:db8::/32")));
