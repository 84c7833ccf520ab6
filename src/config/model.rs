//! The validated configuration every loader produces. Nothing downstream parses text.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Longest knock sequence accepted, as in the classic knockd (`MAX_PORTS`).
pub const MAX_SEQUENCE_LEN: usize = 32;

/// Default cap on in-progress knock attempts; sized so a spoofed flood stays within a few MiB.
pub const DEFAULT_MAX_ATTEMPTS: usize = 65_536;

/// Default sequence timeout, the classic knockd's `Seq_Timeout` default.
pub const DEFAULT_SEQ_TIMEOUT: Duration = Duration::from_secs(25);

/// Bounds on durations, shared by every config format so that a config converted from one to
/// the other always loads. They keep a typo (`30h` for `30s`, `0s`) from becoming a surprise.
pub const SEQ_TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3600));
pub const OPEN_TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(7 * 86400));
pub const CMD_TIMEOUT_RANGE: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(7 * 86400));

/// Checks a duration against one of the ranges above.
pub fn check_range(d: Duration, (min, max): (Duration, Duration)) -> Result<Duration, String> {
    if d < min || d > max {
        return Err(format!(
            "{} is out of range: use {} to {}",
            humantime::format_duration(d),
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// Transport protocol of a knock or an opened port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// The IANA protocol number, as found in the IPv4 protocol / IPv6 next-header field.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A port with its protocol: one knock, or one port a door opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortProto {
    pub port: u16,
    pub proto: Proto,
}

impl PortProto {
    pub fn new(port: u16, proto: Proto) -> Self {
        Self { port, proto }
    }

    pub fn tcp(port: u16) -> Self {
        Self::new(port, Proto::Tcp)
    }

    pub fn udp(port: u16) -> Self {
        Self::new(port, Proto::Udp)
    }

    /// Parses `7000`, `7000/udp` or the knockd.conf spelling `7000:udp`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (port, proto) = match text.find(['/', ':']) {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        let proto = match proto.map(|p| p.trim().to_ascii_lowercase()) {
            None => Proto::Tcp,
            Some(p) if p == "tcp" => Proto::Tcp,
            Some(p) if p == "udp" => Proto::Udp,
            Some(p) => {
                return Err(format!("unknown protocol `{p}` in `{text}`: use tcp or udp"));
            }
        };
        let port: u64 = port.trim().parse().map_err(|_| {
            format!("`{text}` is not a port: write a number 1-65535, optionally followed by /tcp or /udp")
        })?;
        Self::checked(port, proto)
    }

    /// Parses a comma-separated sequence (`7000,8000:udp,9000`), as in knockd.conf.
    pub fn parse_sequence(text: &str) -> Result<Vec<Self>, String> {
        let ports = text.split(',').map(Self::parse).collect::<Result<Vec<_>, _>>()?;
        if ports.len() > MAX_SEQUENCE_LEN {
            return Err(format!("more than {MAX_SEQUENCE_LEN} knock ports"));
        }
        Ok(ports)
    }

    /// Builds from a number that came from a config file, rejecting 0 and anything above 65535.
    pub fn checked(port: u64, proto: Proto) -> Result<Self, String> {
        match u16::try_from(port) {
            Ok(p) if p != 0 => Ok(Self::new(p, proto)),
            _ => Err(format!("port {port} is out of range: ports are 1-65535")),
        }
    }
}

impl fmt::Display for PortProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

/// TCP flag bits as they appear in byte 13 of the TCP header.
pub mod tcp_flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;

    /// Names as written in configs (`TCPFlags = syn,!ack`), with their bit.
    pub const NAMES: [(&str, u8); 6] =
        [("fin", FIN), ("syn", SYN), ("rst", RST), ("psh", PSH), ("ack", ACK), ("urg", URG)];
}

/// Which TCP flags a knock must have set and must have clear. UDP knocks ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    pub set: u8,
    pub clear: u8,
}

impl TcpFlags {
    /// Parses one item (`syn`, `!ack`) and merges it in.
    pub fn add(&mut self, item: &str) -> Result<(), String> {
        let item = item.trim().to_ascii_lowercase();
        let (negated, name) = match item.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, item.as_str()),
        };
        let bit = tcp_flag::NAMES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b).ok_or_else(|| {
            format!("unknown TCP flag `{item}`: use fin, syn, rst, psh, ack or urg, with ! to negate")
        })?;
        if negated {
            self.clear |= bit;
        } else {
            self.set |= bit;
        }
        if self.set & self.clear != 0 {
            return Err(format!("TCP flag `{name}` is both required and forbidden"));
        }
        Ok(())
    }

    /// Parses a comma-separated list, the knockd.conf spelling.
    pub fn parse_list(text: &str) -> Result<Self, String> {
        let mut flags = Self::default();
        for item in text.split(',').filter(|s| !s.trim().is_empty()) {
            flags.add(item)?;
        }
        Ok(flags)
    }

    pub fn matches(self, flags: u8) -> bool {
        flags & self.set == self.set && flags & self.clear == 0
    }

    pub fn is_any(self) -> bool {
        self.set == 0 && self.clear == 0
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, bit) in tcp_flag::NAMES {
            for (mask, prefix) in [(self.set, ""), (self.clear, "!")] {
                if mask & bit != 0 {
                    if !first {
                        f.write_str(",")?;
                    }
                    write!(f, "{prefix}{name}")?;
                    first = false;
                }
            }
        }
        Ok(())
    }
}

/// What a completed knock opens: an element with a timeout in an nftables set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAction {
    /// Ports the daemon's own chain guards for this door; empty in attach mode.
    pub ports: Vec<PortProto>,
    /// Lifetime of the set element; the kernel removes it by itself.
    pub timeout: Duration,
    /// Attach mode: the admin's own sets, in the admin's own table, instead of the daemon's.
    pub attach: Option<AttachSets>,
}

/// Address family of an nftables table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableFamily {
    Inet,
    Ip,
    Ip6,
}

impl TableFamily {
    pub fn name(self) -> &'static str {
        match self {
            TableFamily::Inet => "inet",
            TableFamily::Ip => "ip",
            TableFamily::Ip6 => "ip6",
        }
    }

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
    pub family: TableFamily,
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
    pub start: Option<String>,
    /// For IPv6 sources: `None` falls back to `start`; an empty command means do nothing.
    pub start_v6: Option<String>,
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

    pub fn is_empty(&self) -> bool {
        [&self.start, &self.start_v6, &self.stop, &self.stop_v6].iter().all(|c| c.is_none())
    }
}

/// Where a door's knock sequence comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sequence {
    Fixed(Vec<PortProto>),
    /// A file of sequences, one per line; each is used once (`One_Time_Sequences`).
    OneTime(PathBuf),
    /// Derived from a secret and the time, changing every step (doc/rotating.md).
    Rotating(Rotating),
    /// No knock sequence: the door opens by single-packet authorization only.
    None,
}

/// A rotating sequence: `length` ports in `ports`, derived from the secret every `step`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotating {
    pub secret_file: PathBuf,
    pub step: Duration,
    pub length: usize,
    /// Inclusive port range the knocks are drawn from.
    pub ports: (u16, u16),
    pub proto: Proto,
}

/// Defaults shared by the daemon and the `knock` client, so a door and a client that both
/// leave them out agree.
pub const ROTATING_STEP: Duration = Duration::from_secs(30);
pub const ROTATING_LENGTH: usize = 4;
pub const ROTATING_PORTS: (u16, u16) = (20000, 40000);
/// Most knocks a rotating sequence can have: 32 bytes of HMAC, 4 per knock.
pub const ROTATING_MAX_LENGTH: usize = 8;

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
}

pub const SPA_WINDOW: Duration = Duration::from_secs(30);

/// One door: a knock sequence and what it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    pub name: String,
    pub sequence: Sequence,
    pub seq_timeout: Duration,
    pub tcp_flags: TcpFlags,
    /// Only knocks addressed to this address count (the classic `Target`).
    pub target: Option<IpAddr>,
    /// Only these sources may knock (empty: any), and never these.
    pub from: Vec<ipnet::IpNet>,
    pub not_from: Vec<ipnet::IpNet>,
    pub spa: Option<Spa>,
    pub open: Option<OpenAction>,
    pub commands: Commands,
}

impl Door {
    /// The sequence if it is fixed; one-time and rotating sequences are known only at run time.
    pub fn fixed_sequence(&self) -> Option<&[PortProto]> {
        match &self.sequence {
            Sequence::Fixed(s) => Some(s),
            _ => None,
        }
    }

    /// Whether `addr` may knock on this door (`from` / `not_from`).
    pub fn admits(&self, addr: &IpAddr) -> bool {
        (self.from.is_empty() || self.from.iter().any(|n| n.contains(addr)))
            && !self.not_from.iter().any(|n| n.contains(addr))
    }
}

/// Whether `addr` is in `from` (or `from` is empty) and not in `not_from`.
pub fn admits(from: &[ipnet::IpNet], not_from: &[ipnet::IpNet], addr: &IpAddr) -> bool {
    (from.is_empty() || from.iter().any(|n| n.contains(addr))) && !not_from.iter().any(|n| n.contains(addr))
}

/// Log verbosity from the config; the command line may raise it.
pub type LogLevel = log::LevelFilter;

/// Where and how much the daemon logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    pub level: LogLevel,
    /// Log to syslog (the default; `-n` turns it off).
    pub syslog: bool,
    /// Also append to this file.
    pub file: Option<PathBuf>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { level: LogLevel::Info, syslog: true, file: None }
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Interfaces to capture on; empty means every interface.
    pub interfaces: Vec<String>,
    /// Name of the `inet` table the daemon owns.
    pub table: String,
    pub log: LogOptions,
    pub pidfile: Option<PathBuf>,
    /// Cap on in-progress knock attempts across all sources and doors.
    pub max_attempts: usize,
    pub doors: Vec<Door>,
}

/// Checks a name used in nftables object names and log lines: letters, digits, `_` and `-`,
/// starting with a letter, so it is a valid nft identifier without quoting.
pub fn check_identifier(name: &str, max_len: usize) -> Result<(), String> {
    let valid = name.len() <= max_len
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name: use 1-{max_len} letters, digits, `_` or `-`, starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_spellings() {
        assert_eq!(PortProto::parse("7000"), Ok(PortProto::tcp(7000)));
        assert_eq!(PortProto::parse("9000/udp"), Ok(PortProto::udp(9000)));
        assert_eq!(PortProto::parse("9000:UDP"), Ok(PortProto::udp(9000)));
        assert_eq!(PortProto::parse(" 22/tcp "), Ok(PortProto::tcp(22)));
        assert!(PortProto::parse("0").is_err());
        assert!(PortProto::parse("70000").is_err());
        assert!(PortProto::parse("22/sctp").unwrap_err().contains("sctp"));
        assert!(PortProto::parse("ssh").is_err());
    }

    #[test]
    fn tcp_flag_lists() {
        let f = TcpFlags::parse_list("syn,!ack").unwrap();
        assert!(f.matches(tcp_flag::SYN));
        assert!(!f.matches(tcp_flag::SYN | tcp_flag::ACK));
        assert!(!f.matches(tcp_flag::ACK));
        assert_eq!(f.to_string(), "syn,!ack");
        assert!(TcpFlags::parse_list("syn,!syn").is_err());
        assert!(TcpFlags::parse_list("xmas").unwrap_err().contains("xmas"));
        assert!(TcpFlags::default().matches(0xff));
    }

    #[test]
    fn identifiers() {
        assert!(check_identifier("ssh", 32).is_ok());
        assert!(check_identifier("web-2_x", 32).is_ok());
        assert!(check_identifier("2ssh", 32).is_err());
        assert!(check_identifier("", 32).is_err());
        assert!(check_identifier("a b", 32).is_err());
        assert!(check_identifier(&"a".repeat(33), 32).is_err());
    }
}
