//! `open:`, what a door opens: its ports in knockd's own table, an admin's sets (attach mode),
//! or forwards to LAN hosts.

use serde::Deserialize;
use serde::de;

use super::forward;
use super::values::{Family, OpenPorts, OpenTimeout, TableName};
use crate::config::{AttachSets, Forward, OpenAction, PortProto, TableFamily};

/// `open:` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOpen {
    #[serde(default)]
    ports: Option<OpenPorts>,
    #[serde(default)]
    set: Option<RawAttach>,
    #[serde(default)]
    forward: Option<Vec<forward::RawForward>>,
    timeout: OpenTimeout,
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
    /// `allowed`: for a door whose clients ask for ports, the key of the proof they ask with
    /// and the ports they may ask for (empty for any): those are the ones guarded.
    pub(super) fn into_action<E: de::Error>(
        self,
        door: &str,
        allowed: Option<(&str, Vec<PortProto>)>,
    ) -> Result<OpenAction, E> {
        let timeout = self.timeout.0;
        let per_port = allowed.is_some();
        let forward: Vec<Forward> =
            self.forward.unwrap_or_default().into_iter().map(|f| f.into_forward(door)).collect::<Result<_, E>>()?;
        if !forward.is_empty() && self.set.is_some() {
            return Err(E::custom(format!(
                "door `{door}`: `forward` needs knockd's own sets: leave `set` out of `open` (attach mode opens \
                 what your own rules say)"
            )));
        }
        let (attach, allowed) = match (self.ports, self.set, allowed) {
            (Some(_), None, Some((key, _))) => {
                return Err(E::custom(format!(
                    "door `{door}`: {key}'s clients name the ports they want: list those they may ask for in \
                     `{key}.open_ports`, and leave `ports` out of `open`"
                )));
            }
            (Some(ports), None, None) => {
                return Ok(OpenAction { ports: ports.0, per_port, timeout, attach: None, forward });
            }
            (None, None, Some((_, ports))) => {
                return Ok(OpenAction { ports, per_port, timeout, attach: None, forward });
            }
            (None, None, None) if !forward.is_empty() => {
                return Ok(OpenAction { ports: Vec::new(), per_port, timeout, attach: None, forward });
            }
            (None, Some(set), allowed) => (set, allowed.map(|(_, ports)| ports).unwrap_or_default()),
            (Some(_), Some(_), _) => {
                return Err(E::custom(format!(
                    "door `{door}`: `open` has both `ports` (the daemon's own table) and `set` (your table): \
                     keep one; with `set`, your own rules decide which ports the set opens"
                )));
            }
            (None, None, None) => {
                return Err(E::custom(format!("door `{door}`: `open` needs `ports:`, `set:` or `forward:`")));
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
        // A per-port door keeps the ports its clients may ask for: its grants are checked
        // against them, and `knockd check` asks the host's firewall about them.
        Ok(OpenAction {
            ports: allowed,
            per_port,
            timeout,
            attach: Some(AttachSets { family, table: attach.table.0, ipv4, ipv6 }),
            forward,
        })
    }
}
