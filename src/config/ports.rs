//! Knock sequences and TCP flags as configs write them. Ports and protocols themselves are the
//! packet's words ([`crate::packet::PortProto`]), re-exported here for the config's readers.

use std::fmt;

use super::model::MAX_SEQUENCE_LEN;
pub use crate::packet::{PortProto, Proto};

/// Parses a comma-separated sequence (`7000,8000:udp,9000`), as in knockd.conf and one-time
/// sequence files: at most [`MAX_SEQUENCE_LEN`] knocks.
pub fn parse_sequence(text: &str) -> Result<Vec<PortProto>, String> {
    let ports = text.split(',').map(|p| PortProto::parse_spelled(p, ':')).collect::<Result<Vec<_>, _>>()?;
    if ports.len() > MAX_SEQUENCE_LEN {
        return Err(format!("more than {MAX_SEQUENCE_LEN} knock ports"));
    }
    Ok(ports)
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
