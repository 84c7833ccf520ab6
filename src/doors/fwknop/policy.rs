//! What a stanza allows an authentic packet: the checks fwknopd makes after decryption, in its
//! order, and one it does not make (the address to open for must be within `SOURCE` too, or a
//! client inside `SOURCE` could open the door for anyone).

use std::net::IpAddr;
use std::time::Duration;

use super::settings::Fwknop;
use super::{FwknopError, Message};
use crate::config::Door;
use crate::doors::{DoorId, Grant};

fn refused(why: String) -> FwknopError {
    FwknopError::Refused(why)
}

/// The grant `message` earns at `unix_now` from the stanza (`door` with `fwknop`), sent from
/// `src` to `dst`; or why it earns none.
pub fn grant(
    id: DoorId,
    door: &Door,
    fwknop: &Fwknop,
    message: &Message,
    (src, dst): (IpAddr, IpAddr),
    unix_now: Duration,
) -> Result<Grant, FwknopError> {
    let (ts, now) = (message.timestamp, unix_now.as_secs());
    let skew = ts.abs_diff(now);
    if skew > fwknop.window.as_secs() {
        let magnitude = i64::try_from(skew).unwrap_or(i64::MAX);
        return Err(FwknopError::Stale { skew_secs: if ts > now { magnitude } else { -magnitude } });
    }
    if let Some(required) = &fwknop.require_username
        && required != &message.user
    {
        return Err(refused(format!("user `{}` is not the required `{required}` (REQUIRE_USERNAME)", message.user)));
    }
    let addr = match message.allow {
        Some(addr) => addr,
        None if fwknop.require_source_address => {
            return Err(refused(
                "asks to open for its own source (0.0.0.0, `-s`), and the stanza \
                                requires an address (REQUIRE_SOURCE_ADDRESS)"
                    .into(),
            ));
        }
        None => src,
    };
    if !door.admits(&addr) {
        return Err(refused(format!("asks to open for {addr}, which is outside the stanza's SOURCE")));
    }
    for port in &message.ports {
        if !fwknop.open_ports.is_empty() && !fwknop.open_ports.contains(port) {
            return Err(refused(format!("asks for {}/{}, which OPEN_PORTS does not list", port.proto, port.port)));
        }
        if fwknop.restrict_ports.contains(port) {
            return Err(refused(format!("asks for {}/{}, which RESTRICT_PORTS forbids", port.proto, port.port)));
        }
    }
    if let Some(to) = message.nat {
        forwarded(door, &message.ports, to)?;
    }
    let timeout =
        message.client_timeout.filter(|t| *t > 0).map(|t| Duration::from_secs(u64::from(t)).min(fwknop.max_timeout));
    Ok(Grant {
        by: Some(format!("key {}, user {}", fwknop.name, message.user)),
        ports: message.ports.clone(),
        timeout,
        sent_at: Some(ts),
        ..Grant::new(id, addr, src, dst)
    })
}

/// A NAT access request (`fwknop -N HOST:PORT`, for the ports asked for) is served only where
/// the door forwards each of those ports to that host and port (`open.forward`; an
/// access.conf's `FORCE_NAT`): fwknopd's `ENABLE_IPT_FORWARDING` lets a client name any host
/// behind the router, knockd only the ones its config names.
fn forwarded(door: &Door, ports: &[crate::config::PortProto], to: std::net::SocketAddr) -> Result<(), FwknopError> {
    let forwards = door.open.as_ref().map(|o| o.forward.as_slice()).unwrap_or_default();
    if forwards.is_empty() {
        return Err(refused(format!(
            "asks to be forwarded to {to} (fwknop -N), and the stanza forwards nothing: give the door \
             `open.forward` (an access.conf: FORCE_NAT with ENABLE_IPT_FORWARDING Y in fwknopd.conf)"
        )));
    }
    for port in ports {
        if !forwards.iter().any(|f| f.port == Some(*port) && f.to == to) {
            let list: Vec<String> = forwards.iter().map(|f| f.to_string()).collect();
            return Err(refused(format!(
                "asks to be forwarded from {}/{} to {to}, which the door does not forward (it forwards {})",
                port.proto,
                port.port,
                list.join(", ")
            )));
        }
    }
    Ok(())
}
