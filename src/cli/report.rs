//! What `knockd check` shows an admin.

use std::fmt::Write;
use std::net::IpAddr;

use crate::config::{Config, Door, OpenAction, PortProto};
use crate::grant::nft::Ruleset;

/// What `knockd check` prints last when it exits with status 3: why, and how to go ahead.
pub const LOCKOUT_EXIT: &str = "knockd check: exit status 3, so `knockd check && systemctl enable --now knockd` \
     stops here on purpose: once a knock from a second terminal lets you in, go ahead with `knockd check \
     --lockout-ok && systemctl enable --now knockd`";

/// A warning when the config would drop new SSH connections to the port of the session that
/// runs the check, or when a door's knock sequence holds that port (every new SSH connection
/// then knocks: `sequence = 22` with a `ufw deny` command bans the admin's next login).
/// `ssh_connection` is `$SSH_CONNECTION`: "client_ip client_port server_ip server_port".
pub fn lockout_warning(config: &Config, ssh_connection: Option<&str>) -> Option<String> {
    let fields: Vec<&str> = ssh_connection?.split_whitespace().collect();
    let client: IpAddr = fields.first()?.parse().ok()?;
    let port: u16 = fields.get(3)?.parse().ok()?;
    let names = |doors: Vec<&Door>| doors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
    let guarding: Vec<&Door> = config
        .doors
        .iter()
        .filter(|d| d.open.as_ref().is_some_and(|o| o.attach.is_none() && o.ports.contains(&PortProto::tcp(port))))
        .collect();
    let knocked: Vec<&Door> =
        config.doors.iter().filter(|d| d.proofs.iter().any(|p| p.knocks_on(PortProto::tcp(port)))).collect();
    let mut out = Vec::new();
    if !guarding.is_empty() {
        out.push(format!(
            "WARNING: door(s) {} guard TCP port {port}, the port of the SSH session you are running this from \
             (from {client}). This session stays up: established connections are kept. But every new \
             connection to port {port}, yours included, is dropped until it knocks. Before you log out, \
             knock and connect from a second terminal.",
            names(guarding)
        ));
    }
    if !knocked.is_empty() {
        out.push(format!(
            "WARNING: the knock sequence of door(s) {} holds TCP port {port}, the port of the SSH session you are \
             running this from (from {client}): every new SSH connection, yours included, is also a knock, and \
             completing the sequence does what the door does for that address (a command such as `ufw insert 1 \
             deny from %IP%` bans you at your next login). Use knock ports no service listens on.",
            names(knocked)
        ));
    }
    (!out.is_empty()).then(|| out.join("\n"))
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

/// Likely mistakes in a valid config: interfaces that do not exist now (`exists` says which
/// do), what the kinds see across doors (doors one knock sequence opens together), doors that
/// open nothing, what the doors' proofs warn about.
pub fn warnings(config: &Config, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = config
        .interfaces
        .iter()
        .filter(|i| !exists(i))
        .map(|i| format!("interface {i} does not exist now: knocks on it are heard only once it appears"))
        .collect();
    out.extend(crate::doors::KINDS.iter().flat_map(|k| k.warnings(config)));
    for door in &config.doors {
        if door.open.is_none() && door.commands.is_empty() {
            out.push(format!(
                "door {}: has neither `open` nor a command: a completed knock only logs a line",
                door.name
            ));
        }
    }
    out.extend(config.doors.iter().flat_map(Door::warnings));
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
    door.proofs.iter().map(|p| p.describe(door)).collect()
}

/// What a grant of the door opens, for how long.
fn opens(open: &OpenAction) -> String {
    let timeout = humantime::format_duration(open.timeout);
    let ports: Vec<String> = open.ports.iter().map(PortProto::to_string).collect();
    match &open.attach {
        None if open.per_port && open.ports.is_empty() => {
            "guards no port (no OPEN_PORTS): a client may ask for any, and a grant opens nothing here".to_owned()
        }
        None if open.per_port => format!("opens the ports a client asks for, of {}, for {timeout}", ports.join(", ")),
        None => {
            let forwards = open.forward.iter().map(|f| format!("forwards {f}"));
            let all: Vec<String> = ports.into_iter().chain(forwards).collect();
            format!("opens {} for {timeout}", all.join(", "))
        }
        Some(a) => {
            let sets: Vec<String> =
                [&a.ipv4, &a.ipv6].into_iter().flatten().map(|s| format!("{} {} {s}", a.family, a.table)).collect();
            format!("adds the source to set {} for {timeout}", sets.join(" / "))
        }
    }
}
