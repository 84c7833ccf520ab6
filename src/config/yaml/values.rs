//! The values of knockd.yaml, each checked while it is deserialized: names, durations, ports,
//! flags, prefixes. A check that fails becomes a serde error, so it carries the key path and
//! the value's position. The door kinds read their settings with them too.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::config::{
    CMD_TIMEOUT_RANGE, CommandPrivileges, LogFormat, LogLevel, MAX_SEQUENCE_LEN, OPEN_TIMEOUT_RANGE, PortProto, Proto,
    SEQ_TIMEOUT_RANGE, TableFamily, TcpFlags, check_door_name, check_identifier, check_range,
};

/// Longest table name we accept (the kernel allows 255; nobody needs that).
const MAX_TABLE_NAME: usize = 64;
/// The kernel's IFNAMSIZ less the terminating NUL.
/// Longest command template; the classic daemon truncated at PATH_MAX and refused to run.
pub const MAX_COMMAND_LEN: usize = 4096;

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

/// A door's name.
pub struct DoorName(pub String);
from_str_checked!(DoorName, |s| check_door_name(&s).map(|()| DoorName(s)));

pub(super) struct TableName(pub(super) String);
from_str_checked!(TableName, |s| check_identifier(&s, MAX_TABLE_NAME).map(|()| TableName(s)));

pub(super) struct IfName(pub(super) String);
from_str_checked!(IfName, |s| crate::config::check_interface(&s).map(|()| IfName(s)));

pub(super) struct Level(pub(super) LogLevel);
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

#[derive(Default)]
pub(super) struct FormatName(pub(super) LogFormat);
from_str_checked!(FormatName, |s| match s.as_str() {
    "knockd" => Ok(FormatName(LogFormat::Knockd)),
    "classic" => Ok(FormatName(LogFormat::Classic)),
    _ => Err(format!("unknown log format `{s}`: use knockd or classic (the classic knockd's lines)")),
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
pub fn duration_in(text: &str, (min, max): (Duration, Duration)) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("`{text}` is not a duration ({e}): write a number with a unit, like 500ms, 5s, 5m or 1h")
    })?;
    check_range(d, (min, max))
}

pub(super) struct SeqTimeout(pub(super) Duration);
from_str_checked!(SeqTimeout, |s| duration_in(&s, SEQ_TIMEOUT_RANGE).map(SeqTimeout));

/// How long a grant lasts (`open.timeout`), and any duration in that range.
pub struct OpenTimeout(pub Duration);
from_str_checked!(OpenTimeout, |s| duration_in(&s, OPEN_TIMEOUT_RANGE).map(OpenTimeout));

pub(super) struct CmdTimeout(pub(super) Duration);
from_str_checked!(CmdTimeout, |s| duration_in(&s, CMD_TIMEOUT_RANGE).map(CmdTimeout));

/// A command template: one line and bounded.
pub(super) struct CommandText(pub(super) String);
from_str_checked!(CommandText, |s| check_command(&s).map(|()| CommandText(s)));

/// A port written as a number (`7000`) or a string (`"9000/udp"`).
pub struct Port(pub PortProto);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number or a string like \"9000/udp\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                PortProto::checked(v, Proto::Tcp).map(Port).map_err(E::custom)
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
pub struct PortList<const MAX: usize, Tag>(pub Vec<PortProto>, PhantomData<Tag>);

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
pub trait ListTag {
    /// What the list holds: `knock ports`.
    const WHAT: &'static str;
}
/// A list of knocks.
pub struct KnockTag;
impl ListTag for KnockTag {
    const WHAT: &'static str = "knock ports";
}
/// A list of ports a door opens.
pub struct OpenTag;
impl ListTag for OpenTag {
    const WHAT: &'static str = "ports to open";
}

/// A knock sequence: 1 to [`MAX_SEQUENCE_LEN`] ports.
pub type KnockSequence = PortList<MAX_SEQUENCE_LEN, KnockTag>;
/// Ports to open: 1 to 64.
pub type OpenPorts = PortList<64, OpenTag>;

/// `tcp_flags: syn`, `tcp_flags: "syn,!ack"` or `tcp_flags: [syn, "!ack"]`.
pub(super) struct Flags(pub(super) TcpFlags);

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

pub(super) struct Family(pub(super) TableFamily);
from_str_checked!(Family, |s| TableFamily::parse(&s)
    .map(Family)
    .ok_or_else(|| format!("unknown table family `{s}`: use inet, ip or ip6")));

/// `tcp` or `udp`.
pub struct ProtoName(pub Proto);
from_str_checked!(ProtoName, |s| match s.to_ascii_lowercase().as_str() {
    "tcp" => Ok(ProtoName(Proto::Tcp)),
    "udp" => Ok(ProtoName(Proto::Udp)),
    _ => Err(format!("unknown protocol `{s}`: use tcp or udp")),
});

/// `"20000-40000"`: an inclusive port range of at least 16 ports.
pub struct PortRange(pub (u16, u16));
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
pub struct Prefix(pub ipnet::IpNet);
from_str_checked!(Prefix, |s| s
    .parse::<ipnet::IpNet>()
    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
    .map(|n| Prefix(n.trunc()))
    .map_err(|_| format!("`{s}` is not an address prefix: write one like 198.18.0.0/15 or 2001:db8::/32")));

/// A user name: what `useradd` accepts.
pub(super) struct UserName(pub(super) String);
from_str_checked!(UserName, |s| {
    let valid = !s.is_empty()
        && s.len() <= 32
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        return Err(format!("`{s}` is not a user name: use one like knockd"));
    }
    if s == "nobody" {
        return Err("`nobody` is shared by other services, so knockd cannot trust the files it writes as that \
             user (its replay caches): use a user of its own, `knockd` (the default; `useradd --system --no-create-home \
             --shell /usr/sbin/nologin knockd` if your system has none), or `root`"
            .into());
    }
    Ok(UserName(s))
});

/// `commands.privileges`: `network` (the default) or `full`.
#[derive(Default)]
pub(super) struct Privileges(pub(super) CommandPrivileges);
from_str_checked!(Privileges, |s| match s.as_str() {
    "network" => Ok(Privileges(CommandPrivileges::Network)),
    "full" => Ok(Privileges(CommandPrivileges::Full)),
    _ => Err(format!(
        "`{s}` is not a privilege level: use `network` (CAP_NET_ADMIN and CAP_NET_RAW only, the default) or \
         `full` (every capability root has, as under the classic knockd)"
    )),
});

/// Any text, as a string (a number or a boolean where text is meant is an error, not text).
pub struct TextValue(pub String);
from_str_checked!(TextValue, |s| Ok(TextValue(s)));
