//! Ports, protocols and TCP flags: the words knocks are written in.

use std::fmt;

use super::model::MAX_SEQUENCE_LEN;

/// Transport protocol of a knock or an opened port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP (6).
    Tcp,
    /// UDP (17).
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

    /// The name as written in configs and nft: `tcp`, `udp`.
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
    /// The port number, 1-65535.
    pub port: u16,
    /// TCP or UDP.
    pub proto: Proto,
}

impl PortProto {
    /// A port of either protocol.
    pub fn new(port: u16, proto: Proto) -> Self {
        Self { port, proto }
    }

    /// A TCP port.
    pub fn tcp(port: u16) -> Self {
        Self::new(port, Proto::Tcp)
    }

    /// A UDP port.
    pub fn udp(port: u16) -> Self {
        Self::new(port, Proto::Udp)
    }

    /// Parses `7000`, `7000/udp` or the knockd.conf spelling `7000:udp`.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_spelled(text, '/')
    }

    /// [`PortProto::parse`], whose errors spell the protocol after `separator`, as the file
    /// being read does.
    fn parse_spelled(text: &str, separator: char) -> Result<Self, String> {
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
            let placeholder = if text.chars().any(|c| c.is_ascii_digit()) {
                ""
            } else {
                " (a template placeholder that was never filled in? the classic knockd read it as port 0)"
            };
            format!(
                "`{text}` is not a port: write a number 1-65535, optionally followed by {separator}tcp or \
                 {separator}udp{placeholder}"
            )
        })?;
        Self::checked(port, proto)
    }

    /// Parses a comma-separated sequence (`7000,8000:udp,9000`), as in knockd.conf.
    pub fn parse_sequence(text: &str) -> Result<Vec<Self>, String> {
        let ports = text.split(',').map(|p| Self::parse_spelled(p, ':')).collect::<Result<Vec<_>, _>>()?;
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
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;

    /// Names as written in configs (`TCPFlags = syn,!ack`), with their bit.
    pub const NAMES: [(&str, u8); 6] =
        [("fin", FIN), ("syn", SYN), ("rst", RST), ("psh", PSH), ("ack", ACK), ("urg", URG)];
}

/// Which TCP flags a knock must have set and must have clear. UDP knocks ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    /// Flags that must be set.
    pub set: u8,
    /// Flags that must be clear.
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

    /// Whether a flags byte satisfies both lists.
    pub fn matches(self, flags: u8) -> bool {
        flags & self.set == self.set && flags & self.clear == 0
    }

    /// Whether any flags at all pass.
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
}
