//! `open.forward` (a door on a router opens forwards to LAN hosts) and `nftables.fw4`.

use std::net::SocketAddr;

use serde::Deserialize;
use serde::de;

use super::values::{IfName, Port};
use crate::config::{Forward, Fw4, Proto};

/// One entry of `open.forward`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForward {
    #[serde(default)]
    port: Option<Port>,
    to: String,
}

/// `nftables.fw4`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFw4 {
    zone: IfName,
}

impl RawFw4 {
    pub(super) fn into_fw4(self) -> Fw4 {
        Fw4 { zone: self.zone.0 }
    }
}

/// `192.168.1.10:22`, `[2001:db8:8::10]:22`, either with `/udp` or `/tcp` after it.
fn parse_to(text: &str) -> Result<(SocketAddr, Option<Proto>), String> {
    let (addr, proto) = match text.rsplit_once('/') {
        Some((a, "tcp")) => (a, Some(Proto::Tcp)),
        Some((a, "udp")) => (a, Some(Proto::Udp)),
        _ => (text, None),
    };
    let to: SocketAddr = addr.parse().map_err(|_| {
        format!("`{text}` is not a LAN host and port: write 192.168.1.10:22 or [2001:db8:8::10]:22 (add /udp for UDP)")
    })?;
    if to.port() == 0 || to.ip().is_unspecified() || to.ip().is_loopback() {
        return Err(format!("`{text}` is not a LAN host and port one can forward to"));
    }
    Ok((to, proto))
}

impl RawForward {
    pub(super) fn into_forward<E: de::Error>(self, door: &str) -> Result<Forward, E> {
        let (to, proto) = parse_to(&self.to).map_err(|e| E::custom(format!("door `{door}`: open.forward: {e}")))?;
        let port = self.port.map(|p| p.0);
        let proto = match (port.map(|p| p.proto), proto) {
            (Some(a), Some(b)) if a != b => {
                return Err(E::custom(format!(
                    "door `{door}`: open.forward: `port` is {a} but `to` says {b}: a forward keeps its protocol"
                )));
            }
            (a, b) => a.or(b).unwrap_or(Proto::Tcp),
        };
        Ok(Forward { port, to, proto })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_hosts_and_ports_read_with_their_protocol() {
        assert_eq!(parse_to("192.168.1.10:22").unwrap(), ("192.168.1.10:22".parse().unwrap(), None));
        assert_eq!(
            parse_to("[2001:db8:8::10]:53/udp").unwrap(),
            ("[2001:db8:8::10]:53".parse().unwrap(), Some(Proto::Udp))
        );
        assert!(parse_to("192.168.1.10").unwrap_err().contains("write 192.168.1.10:22"));
        assert!(parse_to("127.0.0.1:22").is_err() && parse_to("0.0.0.0:22").is_err() && parse_to("[::]:22").is_err());
    }
}
