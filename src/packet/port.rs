//! Ports and protocols: the words a knock is made of, and what a door opens.

use std::fmt;

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
    /// being read does (knockd.conf writes `7000:udp`).
    pub fn parse_spelled(text: &str, separator: char) -> Result<Self, String> {
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
}
