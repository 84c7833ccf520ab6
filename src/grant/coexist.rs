//! Coexistence: what the host's other firewalls do with what each door opens. knockd's accept
//! cannot overrule another table's drop, so a grant that some chain drops must never be logged
//! as if it opened anything: the answer goes into `knockd check`, the start and reload logs,
//! the OPEN line and `knockd status`.

use std::fmt::Write;
use std::net::IpAddr;

use super::host::model::{CmpOp, Expr, PayloadBase, Table, nfproto};
use super::host::{Answer, Domain, Hook, HostRuleset, Interface, Probe, answer};
use crate::config::{Config, Door, PortProto, Proto, TableFamily};

/// What knockd knows of the host besides its firewall: the interfaces it listens on and its
/// addresses (packets to this host are sent to one of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostView {
    /// The interfaces knocks are heard on: the configured ones, or every one but loopback.
    pub interfaces: Vec<Interface>,
    /// This host's addresses.
    pub addresses: Vec<IpAddr>,
    /// The networks the host's interfaces are on: a forward to a LAN host leaves through the
    /// interface whose network holds it.
    pub networks: Vec<(ipnet::IpNet, Interface)>,
}

/// The answer for one port a door opens, for one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorAnswer {
    /// The door.
    pub door: String,
    /// The port it opens.
    pub port: PortProto,
    /// 4 or 6.
    pub family: u8,
    /// The interface, when the answer differs between them; `None` when it is every one's.
    pub interface: Option<String>,
    /// For a router's forward: which one (the packet is the translated or forwarded one).
    pub forward: Option<crate::config::Forward>,
    /// What the host's other tables do.
    pub answer: Answer,
}

impl DoorAnswer {
    /// `door ssh: 2222/tcp over IPv4 on eth1`.
    pub fn subject(&self) -> String {
        let on = self.interface.as_deref().map(|i| format!(" on {i}")).unwrap_or_default();
        match &self.forward {
            Some(f) => format!("door {}: forward {f} over IPv{}{on}", self.door, self.family),
            None => format!("door {}: {} over IPv{}{on}", self.door, self.port, self.family),
        }
    }
}

/// The ports a door's grants let in, as far as knockd knows them: its own guarded ports, or
/// for an attach door, the ports the rules that look its sets up compare with.
pub fn door_ports(door: &Door, ruleset: &HostRuleset) -> Vec<PortProto> {
    let Some(open) = &door.open else { return Vec::new() };
    let Some(a) = open.attach.as_ref().filter(|_| open.ports.is_empty()) else { return open.ports.clone() };
    let table = ruleset.tables.iter().find(|t| t.family == a.family.nfproto() && t.name == a.table);
    let mut ports: Vec<PortProto> = Vec::new();
    if let Some(table) = table {
        for rule in table.chains.iter().flat_map(|c| &c.rules) {
            let uses = rule.exprs.iter().any(
                |e| matches!(e, Expr::Lookup { set, .. } if [&a.ipv4, &a.ipv6].into_iter().flatten().any(|s| s == set)),
            );
            if uses {
                ports.extend(rule_ports(table, &rule.exprs));
            }
        }
    }
    ports.sort();
    ports.dedup();
    ports
}

/// The destination ports a rule compares with (`tcp dport 2222`, or a set of them: `tcp dport
/// { 22, 2222 }`), with the protocol its `meta l4proto` compare names (TCP when it names none).
fn rule_ports(table: &Table, exprs: &[Expr]) -> Vec<PortProto> {
    let mut proto = Proto::Tcp;
    let mut dport_reg = None;
    let mut out = Vec::new();
    for e in exprs {
        match e {
            Expr::Meta { key: 16, dreg } => dport_reg = Some((*dreg, false)),
            Expr::Payload { base: PayloadBase::Transport, offset: 2, len: 2, dreg } => dport_reg = Some((*dreg, true)),
            Expr::Cmp { sreg, op: CmpOp::Eq, data } if dport_reg.is_some_and(|(r, _)| r == *sreg) => {
                match (dport_reg, data.as_slice()) {
                    (Some((_, false)), [17]) => proto = Proto::Udp,
                    (Some((_, false)), [6]) => proto = Proto::Tcp,
                    (Some((_, true)), [hi, lo]) => out.push(PortProto::new(u16::from_be_bytes([*hi, *lo]), proto)),
                    _ => {}
                }
            }
            Expr::Lookup { sreg, set, dreg: None, invert: false }
                if dport_reg.is_some_and(|(r, dport)| dport && r == *sreg) =>
            {
                // A list of ports (not ranges: an interval set's ports are not listed).
                let set = table.set(set).filter(|s| !s.interval() && s.key_len == 2);
                for e in set.and_then(|s| s.elements.as_deref()).unwrap_or_default() {
                    if let [hi, lo] = e.key.as_slice() {
                        out.push(PortProto::new(u16::from_be_bytes([*hi, *lo]), proto));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The sets the door adds its grantees to: the grantee is a member of those.
fn is_member(config: &Config, door: &Door, table: &Table, set: &str) -> bool {
    let Some(open) = &door.open else { return false };
    match &open.attach {
        Some(a) => {
            let family = match a.family {
                TableFamily::Inet => nfproto::INET,
                TableFamily::Ip => nfproto::IPV4,
                TableFamily::Ip6 => nfproto::IPV6,
            };
            table.family == family
                && table.name == a.table
                && [&a.ipv4, &a.ipv6].into_iter().flatten().any(|s| s == set)
        }
        None => {
            let (own, _) = crate::grant::nft::door_set(config, &door.name, crate::grant::nft::Family::V4);
            let sets = crate::grant::nft::Family::BOTH.map(|f| crate::grant::nft::door_set(config, &door.name, f).1);
            table.family == nfproto::INET && table.name == own && sets.iter().any(|s| s == set)
        }
    }
}

/// Who the door may grant, in one family: its `from` (or everyone), less its `not_from`.
fn grantees(door: &Door, bytes: u8) -> Domain {
    let from = if door.from.iter().any(|n| (n.addr().is_ipv4()) == (bytes == 4)) {
        Domain::of_nets(bytes, &door.from)
    } else if door.from.is_empty() {
        Domain::all(bytes)
    } else {
        Domain::none(bytes)
    };
    from.minus(&Domain::of_nets(bytes, &door.not_from))
}

/// The families a door grants: those it has sets for.
fn families(door: &Door) -> Vec<u8> {
    match door.open.as_ref().and_then(|o| o.attach.as_ref()) {
        None => vec![4, 6],
        Some(a) => {
            let mut out = Vec::new();
            if a.ipv4.is_some() && a.family != TableFamily::Ip6 {
                out.push(4);
            }
            if a.ipv6.is_some() && a.family != TableFamily::Ip {
                out.push(6);
            }
            out
        }
    }
}

/// The question for one door, port, family and interface.
fn probe(door: &Door, port: PortProto, family: u8, iif: &Interface, view: &HostView) -> Option<Probe> {
    let bytes = if family == 4 { 4 } else { 16 };
    let saddr = grantees(door, bytes);
    if saddr.is_empty() {
        return None;
    }
    let mut daddr = Domain::none(bytes);
    let to: Vec<IpAddr> = door.target.map_or_else(|| view.addresses.clone(), |t| vec![t]);
    for a in to.into_iter().filter(|a| a.is_ipv4() == (family == 4)) {
        daddr = daddr.union(&Domain::one(a));
    }
    if daddr.is_empty() {
        daddr = Domain::all(bytes);
    }
    Some(Probe { proto: port.proto, dport: port.port, saddr, daddr, iif: iif.clone(), oif: None, ct_status: 0 })
}

/// Every door's answers: for each port it opens and each family, on each interface knockd
/// listens on (one answer when they agree); and for each forward of a router's door, on the
/// forward hook. The table knockd's rules are in is left out: what they do is known (inside
/// fw4, they come first in the zone's chains; fw4's rules before the zone's are trusted).
pub fn assess(config: &Config, ruleset: &HostRuleset, view: &HostView) -> Vec<DoorAnswer> {
    let own = if config.fw4.is_some() { "fw4" } else { config.table.as_str() };
    let skip = Some((nfproto::INET, own));
    let mut out = Vec::new();
    let fallback = [Interface::ether("*", 0)];
    let interfaces: &[Interface] = if view.interfaces.is_empty() { &fallback } else { &view.interfaces };
    for door in config.doors.iter().filter(|d| d.open.is_some()) {
        let members = |t: &Table, s: &str| is_member(config, door, t, s);
        let mut ask = |port: PortProto, family: u8, forward: Option<crate::config::Forward>| {
            let answers: Vec<(String, Answer)> = interfaces
                .iter()
                .filter_map(|i| {
                    let mut p = probe(door, port, family, i, view)?;
                    let hook = match forward {
                        None => Hook::Input,
                        Some(f) => {
                            forwarded(&mut p, &f, view);
                            Hook::Forward
                        }
                    };
                    Some((i.name.clone(), answer(ruleset, hook, &p, skip, &members)))
                })
                .collect();
            collapse(&door.name, port, family, forward, answers, &mut out);
        };
        for port in door_ports(door, ruleset) {
            for family in families(door) {
                ask(port, family, None);
            }
        }
        for f in door.open.iter().flat_map(|o| &o.forward) {
            ask(f.to_port(), if f.to.is_ipv4() { 4 } else { 6 }, Some(*f));
        }
    }
    out
}

/// A forward's packet: to the LAN host (translated, for a DNAT), leaving through the
/// interface on its network.
fn forwarded(p: &mut Probe, f: &crate::config::Forward, view: &HostView) {
    p.daddr = Domain::one(f.to.ip());
    p.oif = view.networks.iter().find(|(net, _)| net.contains(&f.to.ip())).map(|(_, i)| i.clone());
    if f.port.is_some() {
        p.ct_status = super::host::probe::CT_STATUS_DNAT;
    }
}

/// One answer per door, port and family when every interface agrees; else one per interface.
fn collapse(
    door: &str,
    port: PortProto,
    family: u8,
    forward: Option<crate::config::Forward>,
    answers: Vec<(String, Answer)>,
    out: &mut Vec<DoorAnswer>,
) {
    let Some((_, first)) = answers.first() else { return };
    let same = answers.iter().all(|(_, a)| a == first);
    for (iface, a) in &answers {
        let interface = (!same).then(|| iface.clone());
        out.push(DoorAnswer { door: door.to_owned(), port, family, interface, forward, answer: a.clone() });
        if same {
            break;
        }
    }
}

/// What a grant to `addr` through `door` runs into, if a chain drops it: the suffix of its
/// OPEN line (", but table inet firewalld chain filter_INPUT rejects it (handle 12)").
pub fn caveat(answers: &[DoorAnswer], door: &str, addr: IpAddr) -> Option<String> {
    let family = if addr.is_ipv4() { 4 } else { 6 };
    answers.iter().filter(|a| a.door == door && a.family == family).find_map(|a| match &a.answer {
        Answer::Dropped(b) if a.forward.is_some() => Some(format!(", but {b} (the forward)")),
        Answer::Dropped(b) => Some(format!(", but {b}")),
        Answer::DroppedFor(b, who, _) if who.contains(addr) => Some(format!(", but {b}")),
        _ => None,
    })
}

/// What to do instead, ready to paste: let that firewall accept the port (knockd's own table
/// still drops everyone who has not knocked), or attach the door to a set of that firewall.
pub fn advice(config: &Config, a: &DoorAnswer) -> String {
    let b = match &a.answer {
        Answer::Dropped(b) | Answer::DroppedFor(b, ..) => b,
        Answer::CannotTell { table, what, .. } if what.starts_with("xtables") => return iptables_advice(table, a),
        _ => return String::new(),
    };
    let (port, proto) = (a.port.port, a.port.proto);
    let mut out = String::new();
    if a.forward.is_some() {
        let table = b.table.trim_start_matches("table ");
        let _ = writeln!(out, "  knockd's forward accept cannot overrule another table's drop.");
        if table == "inet fw4" {
            let _ = writeln!(
                out,
                "  Put knockd's rules inside fw4: `nftables: {{fw4: {{zone: wan}}}}` (the zone the knocks come from)."
            );
        } else {
            let _ = writeln!(out, "  Accept it in {} chain {}: ct status dnat {} accept", b.table, b.chain, a.port);
        }
        return out;
    }
    let standalone =
        config.doors.iter().any(|d| d.name == a.door && d.open.as_ref().is_some_and(|o| o.attach.is_none()));
    let _ = writeln!(out, "  knockd's accept cannot overrule another table's drop. Either:");
    if standalone {
        let _ = writeln!(
            out,
            "  - let {} accept {port}/{proto}; knockd's own table (inet {}) still drops everyone who has not knocked:",
            b.table, config.table
        );
        let _ = writeln!(out, "      {}", accept_line(b, a.port));
    }
    let (v4, v6) = (format!("knockd_{}_v4", a.door), format!("knockd_{}_v6", a.door));
    let set = if a.family == 4 { &v4 } else { &v6 };
    let table = b.table.trim_start_matches("table ");
    let _ = writeln!(out, "  - or let the door add its grantees to a set of {} (attach mode):", b.table);
    if table == "inet firewalld" {
        let family = if a.family == 4 { "" } else { " --option=family=inet6" };
        let _ =
            writeln!(out, "      firewall-cmd --permanent --new-ipset={set} --type=hash:ip --option=timeout=0{family}");
        let fam = if a.family == 4 { "ipv4" } else { "ipv6" };
        let _ = writeln!(
            out,
            "      firewall-cmd --permanent --add-rich-rule='rule family={fam} source ipset={set} port port={port} protocol={proto} accept'"
        );
        let _ = writeln!(out, "      firewall-cmd --reload");
        let _ = writeln!(
            out,
            "    (with NftablesTableOwner=no in /etc/firewalld/firewalld.conf: see nft-templates/firewalld/)"
        );
    } else {
        let key = if a.family == 4 { "ipv4_addr" } else { "ipv6_addr" };
        let saddr = if a.family == 4 { "ip saddr" } else { "ip6 saddr" };
        let _ = writeln!(out, "      nft add set {table} {set} '{{ type {key}; flags timeout; }}'");
        let _ = writeln!(out, "      nft insert rule {table} {} {saddr} @{set} {proto} dport {port} accept", b.chain);
    }
    let key = if a.family == 4 { "ipv4" } else { "ipv6" };
    let (family, name) = table.split_once(' ').unwrap_or(("inet", table));
    let _ = writeln!(out, "    and in the door: open: {{set: {{family: {family}, table: {name}, {key}: {set}}}}}");
    out
}

/// iptables' rules (ufw, Docker, scripts) are made of xtables matches knockd cannot look into,
/// and cannot match an nftables set: what to do instead.
fn iptables_advice(table: &str, a: &DoorAnswer) -> String {
    let (port, proto) = (a.port.port, a.port.proto);
    format!(
        "  {table} is iptables' (ufw, Docker, an iptables script): knockd cannot look into its rules, and \
         they cannot match an nftables set. Either:\n\
         \x20 - let it accept {port}/{proto}; knockd's own table still drops everyone who has not knocked:\n\
         \x20     ufw allow {port}/{proto}     (or: iptables -I INPUT -p {proto} --dport {port} -j ACCEPT)\n\
         \x20 - or have the door run ufw, as the classic knockd did:\n\
         \x20     command: ufw insert 1 allow from %IP% to any port {port} proto {proto}\n\
         \x20     stop_command: ufw delete allow from %IP% to any port {port} proto {proto}\n"
    )
}

/// The one line that makes the blocking firewall accept a port.
fn accept_line(b: &super::host::Blocker, port: PortProto) -> String {
    let table = b.table.trim_start_matches("table ");
    match table {
        "inet firewalld" => {
            format!("firewall-cmd --permanent --add-port={port} && firewall-cmd --reload")
        }
        "inet fw4" => format!(
            "uci add firewall rule; uci set firewall.@rule[-1].src=wan; uci set firewall.@rule[-1].dest_port={}; \
             uci set firewall.@rule[-1].proto={}; uci set firewall.@rule[-1].target=ACCEPT; uci commit firewall; fw4 reload",
            port.port, port.proto
        ),
        "ip filter" | "ip6 filter" => {
            let cmd = if table.starts_with("ip6") { "ip6tables" } else { "iptables" };
            format!("{cmd} -I {} -p {} --dport {} -j ACCEPT   (ufw: ufw allow {port})", b.base, port.proto, port.port)
        }
        _ => match b.handle {
            Some(h) => format!(
                "nft insert rule {table} {} position {h} {} dport {} accept   (and in your nftables.conf)",
                b.chain, port.proto, port.port
            ),
            None => format!(
                "nft add rule {table} {} {} dport {} accept   (and in your nftables.conf)",
                b.chain, port.proto, port.port
            ),
        },
    }
}
