//! What an open door does: an element with a timeout in nftables sets, knockd's own or the
//! admin's ([`OpenAction`], [`AttachSets`]), forwards through a router to LAN hosts
//! ([`Forward`]), and the classic shell commands ([`Commands`]).

use std::fmt;
use std::time::Duration;

use super::ports::PortProto;

/// What a completed knock opens: an element with a timeout in an nftables set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAction {
    /// Ports the daemon's own chain guards for this door; empty in attach mode, but for a
    /// per-port door, whose clients may ask for these ports only (empty: any).
    pub ports: Vec<PortProto>,
    /// Grants name the ports the client asked for (fwknop): the door's sets hold address,
    /// protocol and port, not the address alone.
    pub per_port: bool,
    /// Lifetime of the set element; the kernel removes it by itself.
    pub timeout: Duration,
    /// Attach mode: the admin's own sets, in the admin's own table, instead of the daemon's.
    pub attach: Option<AttachSets>,
    /// On a router: forwards to LAN hosts that a grant opens (`open.forward`).
    pub forward: Vec<Forward>,
}

/// A forward a grant opens through a router to a LAN host: the grantee's connections to the
/// router's `port` are translated (DNAT) to `to`, or, with no `port`, the grantee may connect
/// to `to` itself through the router (a pinhole in knockd's forward guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The router's own port whose connections go to `to`; `None` for a pinhole.
    pub port: Option<PortProto>,
    /// The LAN host and its port.
    pub to: std::net::SocketAddr,
    /// The protocol (the router port's, or as `to` says: `:53/udp`).
    pub proto: crate::config::Proto,
}

impl Forward {
    /// The LAN side as a port: `22/tcp`.
    pub fn to_port(&self) -> PortProto {
        PortProto::new(self.to.port(), self.proto)
    }
}

impl fmt::Display for Forward {
    /// `2522/tcp to 192.168.1.10:22`, or `to [2001:db8:8::10]:22/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{p} to {}", self.to),
            None => write!(f, "to {}/{}", self.to, self.proto),
        }
    }
}

/// Address family of an nftables table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableFamily {
    /// `inet`: IPv4 and IPv6.
    Inet,
    /// `ip`: IPv4 only.
    Ip,
    /// `ip6`: IPv6 only.
    Ip6,
}

impl TableFamily {
    /// The name as nft writes it.
    pub fn name(self) -> &'static str {
        match self {
            TableFamily::Inet => "inet",
            TableFamily::Ip => "ip",
            TableFamily::Ip6 => "ip6",
        }
    }

    /// Parses `inet`, `ip` or `ip6`.
    pub fn parse(text: &str) -> Option<TableFamily> {
        match text {
            "inet" => Some(TableFamily::Inet),
            "ip" => Some(TableFamily::Ip),
            "ip6" => Some(TableFamily::Ip6),
            _ => None,
        }
    }

    /// The `NFPROTO_*` value netlink messages carry.
    pub fn nfproto(self) -> u8 {
        match self {
            TableFamily::Inet => 1,
            TableFamily::Ip => 2,
            TableFamily::Ip6 => 10,
        }
    }
}

impl fmt::Display for TableFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Sets in an admin's table that a door adds addresses to (`open.set` in YAML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachSets {
    /// The family of the admin's table.
    pub family: TableFamily,
    /// The admin's table.
    pub table: String,
    /// Set for IPv4 sources; `None` ignores IPv4 knockers for this door.
    pub ipv4: Option<String>,
    /// Set for IPv6 sources; `None` ignores IPv6 knockers for this door.
    pub ipv6: Option<String>,
}

/// Default time between a door's start and stop commands (the classic `Cmd_Timeout`).
pub const DEFAULT_CMD_TIMEOUT: Duration = Duration::from_secs(10);

/// Legacy shell commands of a door, as in knockd.conf. `%IP%` stands for the source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commands {
    /// Run when a knock completes.
    pub start: Option<String>,
    /// For IPv6 sources: `None` falls back to `start`; an empty command means do nothing.
    pub start_v6: Option<String>,
    /// Run `cmd_timeout` after the start command.
    pub stop: Option<String>,
    /// For IPv6 sources: `None` falls back to `stop`; an empty command means do nothing.
    pub stop_v6: Option<String>,
    /// Time from the start command to the stop command.
    pub cmd_timeout: Duration,
}

impl Default for Commands {
    fn default() -> Self {
        Commands { start: None, start_v6: None, stop: None, stop_v6: None, cmd_timeout: DEFAULT_CMD_TIMEOUT }
    }
}

impl Commands {
    /// The start command template for a source of this family, if there is one to run.
    pub fn start_for(&self, ipv6: bool) -> Option<&str> {
        Self::pick(&self.start, &self.start_v6, ipv6)
    }

    /// The stop command template for a source of this family, if there is one to run.
    pub fn stop_for(&self, ipv6: bool) -> Option<&str> {
        Self::pick(&self.stop, &self.stop_v6, ipv6)
    }

    fn pick<'a>(v4: &'a Option<String>, v6: &'a Option<String>, ipv6: bool) -> Option<&'a str> {
        let chosen = if ipv6 { v6.as_ref().or(v4.as_ref()) } else { v4.as_ref() };
        chosen.map(String::as_str).filter(|c| !c.trim().is_empty())
    }

    /// Whether the door has no command at all.
    pub fn is_empty(&self) -> bool {
        [&self.start, &self.start_v6, &self.stop, &self.stop_v6].iter().all(|c| c.is_none())
    }
}
