//! What `knockd check` and `knockd status` show an admin.

use std::fmt::Write;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Config, Door, OpenAction, PortProto, Proof, TableFamily};
use crate::grant::FirewallError;
use crate::grant::nft::{Family, NetlinkFirewall, Ruleset, set_name};

/// A warning when the config would drop new SSH connections to the port of the session that
/// runs the check. `ssh_connection` is `$SSH_CONNECTION`: "client_ip client_port server_ip
/// server_port".
pub fn lockout_warning(config: &Config, ssh_connection: Option<&str>) -> Option<String> {
    let fields: Vec<&str> = ssh_connection?.split_whitespace().collect();
    let client: IpAddr = fields.first()?.parse().ok()?;
    let port: u16 = fields.get(3)?.parse().ok()?;
    let guarding: Vec<&str> = config
        .doors
        .iter()
        .filter(|d| d.open.as_ref().is_some_and(|o| o.attach.is_none() && o.ports.contains(&PortProto::tcp(port))))
        .map(|d| d.name.as_str())
        .collect();
    if guarding.is_empty() {
        return None;
    }
    Some(format!(
        "WARNING: door(s) {} guard TCP port {port}, the port of the SSH session you are running this from \
         (from {client}). This session stays up: established connections are kept. But every new \
         connection to port {port}, yours included, is dropped until it knocks. Before you log out, \
         knock and connect from a second terminal.",
        guarding.join(", ")
    ))
}

/// One line per door, then the nftables objects the daemon would create.
pub fn check_report(config: &Config) -> String {
    let mut out = String::new();
    for door in &config.doors {
        let _ = writeln!(out, "door {}: {}", door.name, describe(door));
    }
    let ruleset = Ruleset::for_config(config);
    if ruleset.is_empty() {
        out.push_str("\nNo nftables objects: no door has `open` with `ports`.\n");
    } else {
        let _ = write!(out, "\nnftables objects knockd creates (and replaces on start and reload):\n\n{ruleset}");
    }
    out
}

fn describe(door: &Door) -> String {
    let mut parts = proofs(door);
    let list = |l: &[ipnet::IpNet]| l.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ");
    if !door.from.is_empty() {
        parts.push(format!("only from {}", list(&door.from)));
    }
    if !door.not_from.is_empty() {
        parts.push(format!("never from {}", list(&door.not_from)));
    }
    if !door.tcp_flags.is_any() {
        parts.push(format!("tcp flags {}", door.tcp_flags));
    }
    if let Some(target) = door.target {
        parts.push(format!("to {target} only"));
    }
    parts.extend(door.open.as_ref().map(opens));
    if let Some(start) = &door.commands.start {
        parts.push(format!("runs `{start}`"));
    }
    if let Some(stop) = &door.commands.stop {
        parts.push(format!("then `{stop}` after {}", humantime::format_duration(door.commands.cmd_timeout)));
    }
    parts.join("; ")
}

/// How a client proves itself to the door, one part per proof.
fn proofs(door: &Door) -> Vec<String> {
    let mut parts = Vec::new();
    match door.sequence() {
        Some(Proof::Sequence(s)) => {
            let knocks: Vec<String> = s.iter().map(PortProto::to_string).collect();
            parts.push(format!("knock {} within {}", knocks.join(", "), humantime::format_duration(door.seq_timeout)));
        }
        Some(Proof::OneTime(path)) => parts.push(format!("one-time sequences from {}", path.display())),
        Some(Proof::Rotating(r)) => parts.push(format!(
            "rotating sequence of {} {} knocks in {}-{}, new every {} (secret {})",
            r.length,
            r.proto,
            r.ports.0,
            r.ports.1,
            humantime::format_duration(r.step),
            r.secret_file.display()
        )),
        _ => {}
    }
    if let Some(spa) = door.spa() {
        parts.push(format!("single-packet authorization on {}/udp", spa.port));
    }
    if let Some(f) = door.fwknop() {
        let mut line = format!(
            "fwknop packets on {}/udp (key {}, HMAC {}; clients may ask for up to {})",
            f.port,
            f.name,
            f.hmac_digest.name(),
            humantime::format_duration(f.max_timeout)
        );
        if f.require_source_address {
            line.push_str("; an address is required (no -s)");
        }
        parts.push(line);
    }
    parts
}

/// What a grant of the door opens, for how long.
fn opens(open: &OpenAction) -> String {
    let timeout = humantime::format_duration(open.timeout);
    let ports: Vec<String> = open.ports.iter().map(PortProto::to_string).collect();
    match &open.attach {
        None if open.per_port && open.ports.is_empty() => {
            format!("opens the ports a client asks for, any port, for {timeout}")
        }
        None if open.per_port => format!("opens the ports a client asks for, of {}, for {timeout}", ports.join(", ")),
        None => format!("opens {} for {timeout}", ports.join(", ")),
        Some(a) => {
            let sets: Vec<String> =
                [&a.ipv4, &a.ipv6].into_iter().flatten().map(|s| format!("{} {} {s}", a.family, a.table)).collect();
            format!("adds the source to set {} for {timeout}", sets.join(" / "))
        }
    }
}

/// A current grant, as `knockd status` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The door whose set holds the grant.
    pub door: String,
    /// The address let in.
    pub addr: IpAddr,
    /// What the grant opens: ports, or the set it is in.
    pub opens: String,
    /// Time until the kernel removes it.
    pub left: Option<Duration>,
}

/// Every grant in the sets the config's doors use, read from the kernel.
pub fn grants(config: &Config, firewall: &mut NetlinkFirewall) -> Result<Vec<Grant>, FirewallError> {
    let mut grants = Vec::new();
    for door in &config.doors {
        let Some(open) = &door.open else { continue };
        let sets: Vec<(TableFamily, String, String, String)> = match &open.attach {
            None => {
                let ports: Vec<String> = open.ports.iter().map(PortProto::to_string).collect();
                Family::BOTH
                    .iter()
                    .map(|f| (TableFamily::Inet, config.table.clone(), set_name(&door.name, *f), ports.join(", ")))
                    .collect()
            }
            Some(a) => [&a.ipv4, &a.ipv6]
                .into_iter()
                .flatten()
                .map(|s| (a.family, a.table.clone(), s.clone(), format!("set {} {} {s}", a.family, a.table)))
                .collect(),
        };
        for (family, table, set, opens) in sets {
            for e in firewall.list_elements(family, &table, &set)? {
                // A per-port set's element names the one port it opens.
                let opens = e.port.map_or_else(|| opens.clone(), |p| p.to_string());
                grants.push(Grant { door: door.name.clone(), addr: e.addr, opens, left: e.expires });
            }
        }
    }
    Ok(grants)
}

/// The grants as an aligned table.
pub fn format_grants(grants: &[Grant]) -> String {
    if grants.is_empty() {
        return "no current grants\n".into();
    }
    let rows: Vec<[String; 4]> = grants
        .iter()
        .map(|g| {
            let left = g.left.map_or_else(
                || "-".to_owned(),
                |d| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string(),
            );
            [g.door.clone(), g.addr.to_string(), g.opens.clone(), left]
        })
        .collect();
    let header = ["DOOR", "ADDRESS", "OPENS", "TIME LEFT"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}
