//! The validated configuration every loader produces. Nothing downstream parses text.

use std::fmt;
use std::time::Duration;

/// Longest knock sequence accepted, as in the classic knockd (`MAX_PORTS`).
pub const MAX_SEQUENCE_LEN: usize = 32;

/// Default cap on in-progress knock attempts; sized so a spoofed flood stays within a few MiB.
pub const DEFAULT_MAX_ATTEMPTS: usize = 65_536;

/// Default sequence timeout, the classic knockd's `Seq_Timeout` default.
pub const DEFAULT_SEQ_TIMEOUT: Duration = Duration::from_secs(25);

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
                return Err(format!(
                    "unknown protocol `{p}` in `{text}`: use tcp or udp"
                ));
            }
        };
        let port: u64 = port
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a port: write a number 1-65535, optionally followed by /tcp or /udp"))?;
        Self::checked(port, proto)
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
    pub const NAMES: [(&str, u8); 6] = [
        ("fin", FIN),
        ("syn", SYN),
        ("rst", RST),
        ("psh", PSH),
        ("ack", ACK),
        ("urg", URG),
    ];
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
        let bit = tcp_flag::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
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

/// What a completed knock opens through the daemon's own nftables sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAction {
    pub ports: Vec<PortProto>,
    /// Lifetime of the set element; the kernel removes it by itself.
    pub timeout: Duration,
}

/// One door: a knock sequence and what it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    pub name: String,
    pub sequence: Vec<PortProto>,
    pub seq_timeout: Duration,
    pub tcp_flags: TcpFlags,
    pub open: OpenAction,
}

/// Log verbosity from the config; the command line may raise it.
pub type LogLevel = log::LevelFilter;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Interfaces to capture on; empty means every interface.
    pub interfaces: Vec<String>,
    /// Name of the `inet` table the daemon owns.
    pub table: String,
    pub log_level: LogLevel,
    /// Cap on in-progress knock attempts across all sources and doors.
    pub max_attempts: usize,
    pub doors: Vec<Door>,
}

impl Config {
    /// Every distinct knock port of every door, sorted; what the capture filter lets through.
    pub fn knock_ports(&self) -> Vec<PortProto> {
        let mut ports: Vec<PortProto> = self
            .doors
            .iter()
            .flat_map(|d| d.sequence.iter().copied())
            .collect();
        ports.sort();
        ports.dedup();
        ports
    }
}

/// Checks a name used in nftables object names and log lines: letters, digits, `_` and `-`,
/// starting with a letter, so it is a valid nft identifier without quoting.
pub fn check_identifier(name: &str, max_len: usize) -> Result<(), String> {
    let valid = name.len() <= max_len
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
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
