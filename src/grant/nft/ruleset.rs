//! The daemon's nftables objects, derived from the config as plain data: its sets and up to
//! three chains (input; on a router, forward and dstnat), in a table of its own, or inside
//! OpenWrt's fw4 where fw4's zone chains jump to them. How `nft -f` writes them: [`text`].

mod text;

use std::net::{IpAddr, SocketAddr};

use crate::config::{Config, PortProto};

/// The base chain the daemon owns in its table.
pub const CHAIN: &str = "input";
/// Chain priority: `filter`, the same as a typical admin's input chain.
pub const PRIORITY: i32 = 0;
/// `dstnat`: the nat priority of prerouting.
pub const DSTNAT_PRIORITY: i32 = -100;
/// The comment on the rules knockd inserts into another firewall's chains, so that it finds
/// (and replaces) its own.
pub const MARK: &str = "knockd";

/// Where knockd's objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A table of knockd's own, with base chains.
    Own,
    /// OpenWrt's `table inet fw4`: regular chains that the zone's `input_<zone>` and
    /// `forward_<zone>` and fw4's `dstnat` jump to, first thing.
    Fw4 {
        /// The fw4 zone (`wan`).
        zone: String,
    },
}

/// Which of knockd's chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hookpoint {
    /// Packets to this host.
    Input,
    /// Packets through it (a router's forwards).
    Forward,
    /// Destination NAT, before routing.
    Dstnat,
}

impl Hookpoint {
    /// The three, in the order they are installed.
    pub const ALL: [Hookpoint; 3] = [Hookpoint::Input, Hookpoint::Forward, Hookpoint::Dstnat];

    fn word(self) -> &'static str {
        match self {
            Hookpoint::Input => "input",
            Hookpoint::Forward => "forward",
            Hookpoint::Dstnat => "dstnat",
        }
    }
}

/// Address family of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }

    /// The nft keyword for the set's key type.
    pub fn key_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }
}

/// Name of a door's set for one family: `ssh_v4`, `ssh_v6`; a door whose name is not an nft
/// identifier (a classic `[Open rtorrent]`) gets its derived name (`config::nft_name`).
pub fn set_name(door: &str, family: Family) -> String {
    format!("{}_{}", crate::config::nft_name(door), family.suffix())
}

/// A named set of addresses whose elements time out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSpec {
    /// The set's name in the table.
    pub name: String,
    /// Which addresses it holds.
    pub family: Family,
    /// Elements are address, protocol and port (`ipv4_addr . inet_proto . inet_service`), for
    /// doors whose clients ask for ports (fwknop).
    pub per_port: bool,
    /// The most elements it holds (`size`): a flood of spoofed grants fills the set, not the
    /// host's memory.
    pub size: u32,
}

impl SetSpec {
    /// The set's key type, in nft syntax.
    pub fn key_type(&self) -> String {
        if self.per_port {
            format!("{} . inet_proto . inet_service", self.family.key_type())
        } else {
            self.family.key_type().to_owned()
        }
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum Match {
    /// `ct state established,related`
    Established,
    /// `meta iiftype loopback`: the host talking to itself is never knocked out.
    Loopback,
    /// `tcp dport 22` / `udp dport 53`
    Dport(PortProto),
    /// `ip saddr @set` / `ip6 saddr @set`
    /// `ip saddr @set` / `ip6 saddr @set`.
    SaddrIn { family: Family, set: String },
    /// `ip saddr . meta l4proto . th dport @set`: the source, with the port it knocks on.
    SaddrPortIn { family: Family, set: String },
    /// `ip daddr 192.168.1.10` / `ip6 daddr ...`: a forward's LAN host.
    Daddr(IpAddr),
    /// `ct status dnat`: a connection a DNAT rule sent on.
    CtDnat,
    /// `iifname "eth1"`: one of the interfaces knockd listens on.
    Iifname(String),
}

/// What a rule does with a packet that matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through (this chain).
    Accept,
    /// Drop it.
    Drop,
    /// Translate its destination to a LAN host (`dnat to 192.168.1.10:22`).
    Dnat(SocketAddr),
}

/// A rule: all matches, then the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// Conditions, all of which must hold.
    pub matches: Vec<Match>,
    /// What happens then.
    pub verdict: Verdict,
}

/// Everything the daemon creates: its sets and chains, in an `inet` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// The `inet` table the objects live in: knockd's own, or `fw4`.
    pub table: String,
    /// knockd's own table name (`nftables.table`): its lock, and its objects' prefix in fw4.
    pub own: String,
    /// Where the objects live.
    pub place: Place,
    /// Every door's sets.
    pub sets: Vec<SetSpec>,
    /// The input chain's rules, in order.
    pub rules: Vec<RuleSpec>,
    /// The forward chain's rules (a router's forward doors); empty: no chain.
    pub forward: Vec<RuleSpec>,
    /// The dstnat chain's rules (their DNAT); empty: no chain.
    pub dstnat: Vec<RuleSpec>,
}

/// A door's set for `family`, as (table, set): `knockd`/`ssh_v4` in knockd's own table,
/// `fw4`/`knockd_ssh_v4` inside fw4.
pub fn door_set(config: &Config, door: &str, family: Family) -> (String, String) {
    match &config.fw4 {
        None => (config.table.clone(), set_name(door, family)),
        Some(_) => ("fw4".to_owned(), format!("{}_{}", config.table, set_name(door, family))),
    }
}

impl Ruleset {
    /// Whether the config asks nothing of nftables (only legacy command doors).
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The name the daemon's lock and monitor go by (its own table's, also inside fw4), if the
    /// daemon has nftables objects for this config at all.
    pub fn table_if_any(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.own.clone())
    }

    /// The same config's objects in the other place (a table of knockd's own, or inside fw4),
    /// with nothing in them: what an earlier run there may have left, to remove.
    pub fn elsewhere(&self) -> Ruleset {
        let (place, table) = match self.place {
            Place::Own => (Place::Fw4 { zone: String::new() }, "fw4".to_owned()),
            Place::Fw4 { .. } => (Place::Own, self.own.clone()),
        };
        Ruleset { table, place, ..self.emptied() }
    }

    /// The same objects' places with nothing in them: removing knockd's objects from fw4 is
    /// installing this.
    pub fn emptied(&self) -> Ruleset {
        Ruleset {
            table: self.table.clone(),
            own: self.own.clone(),
            place: self.place.clone(),
            sets: Vec::new(),
            rules: Vec::new(),
            forward: Vec::new(),
            dstnat: Vec::new(),
        }
    }

    /// `nftables table inet knockd`, or `knockd's rules in table inet fw4 (zone wan)`.
    pub fn describe(&self) -> String {
        match &self.place {
            Place::Own => format!("nftables table inet {}", self.table),
            Place::Fw4 { zone } => format!("knockd's rules in table inet fw4 (zone {zone})"),
        }
    }

    /// Whether the objects live in a table of knockd's own (which it may create and delete).
    pub fn owns_table(&self) -> bool {
        self.place == Place::Own
    }

    /// The name of one of knockd's chains: `input`, or `knockd_input` inside fw4.
    pub fn chain_name(&self, hook: Hookpoint) -> String {
        match self.place {
            Place::Own => hook.word().to_owned(),
            Place::Fw4 { .. } => format!("{}_{}", self.own, hook.word()),
        }
    }

    /// Inside fw4: the fw4 chain that jumps to knockd's chain for `hook`.
    pub fn entry(&self, hook: Hookpoint) -> Option<String> {
        let Place::Fw4 { zone } = &self.place else { return None };
        Some(match hook {
            Hookpoint::Input => format!("input_{zone}"),
            Hookpoint::Forward => format!("forward_{zone}"),
            Hookpoint::Dstnat => "dstnat".to_owned(),
        })
    }

    /// The rules of one of knockd's chains (empty: the chain is not made).
    pub fn chain_rules(&self, hook: Hookpoint) -> &[RuleSpec] {
        match hook {
            Hookpoint::Input => &self.rules,
            Hookpoint::Forward => &self.forward,
            Hookpoint::Dstnat => &self.dstnat,
        }
    }

    /// The chains to make, with their rules: input always (with sets), the others when a door
    /// forwards.
    pub fn chains(&self) -> impl Iterator<Item = (Hookpoint, &[RuleSpec])> {
        let any = !self.is_empty();
        Hookpoint::ALL
            .into_iter()
            .map(|h| (h, self.chain_rules(h)))
            .filter(move |(h, rules)| any && (*h == Hookpoint::Input || !rules.is_empty()))
    }

    /// The ports the chain drops unless a grant lets the packet in.
    pub fn guarded_ports(&self) -> Vec<PortProto> {
        let ports = self.rules.iter().filter(|r| r.verdict == Verdict::Drop);
        ports.flat_map(|r| &r.matches).filter_map(|m| if let Match::Dport(p) = m { Some(*p) } else { None }).collect()
    }

    /// The ruleset for `config`: each door's ports are dropped unless the packet belongs to an
    /// established connection, comes from loopback, or its source is in one of the door's sets.
    /// The chain's policy is accept, so the daemon never touches other traffic. A door's
    /// forwards add a DNAT rule and a forward accept (or, for a pinhole, a forward accept and
    /// a guard that drops everyone else's new connections to that LAN host and port).
    pub fn for_config(config: &Config) -> Ruleset {
        let mut sets = Vec::new();
        let mut rules = vec![
            RuleSpec { matches: vec![Match::Established], verdict: Verdict::Accept },
            RuleSpec { matches: vec![Match::Loopback], verdict: Verdict::Accept },
        ];
        let (mut forward, mut dstnat, mut pinholes) = (Vec::new(), Vec::new(), Vec::new());
        let mut guarded: Vec<PortProto> = Vec::new();
        for door in &config.doors {
            let Some(open) = door.open.as_ref().filter(|o| o.attach.is_none()) else { continue };
            for family in Family::BOTH {
                let (_, set) = door_set(config, &door.name, family);
                sets.push(SetSpec { name: set.clone(), family, per_port: open.per_port, size: config.set_size });
                rules.extend(accepts(open, family, &set));
            }
            guarded.extend(&open.ports);
            for f in &open.forward {
                let family = Family::of(&f.to.ip());
                let (_, set) = door_set(config, &door.name, family);
                // A per-port door's grantees are (address, protocol, the router's port).
                let grantee =
                    if open.per_port { Match::SaddrPortIn { family, set } } else { Match::SaddrIn { family, set } };
                forwards(config, f, grantee, (&mut forward, &mut dstnat, &mut pinholes));
            }
        }
        guarded.sort();
        guarded.dedup();
        // Drops come after every door's accepts: two doors may open the same port.
        rules.extend(
            guarded.into_iter().map(|port| RuleSpec { matches: vec![Match::Dport(port)], verdict: Verdict::Drop }),
        );
        if !forward.is_empty() {
            forward.insert(0, RuleSpec { matches: vec![Match::Established], verdict: Verdict::Accept });
            pinholes.dedup();
            forward.extend(pinholes.into_iter().map(|(ip, port)| RuleSpec {
                matches: vec![Match::Daddr(ip), Match::Dport(port)],
                verdict: Verdict::Drop,
            }));
        }
        let place = config.fw4.as_ref().map_or(Place::Own, |f| Place::Fw4 { zone: f.zone.clone() });
        let table = if place == Place::Own { config.table.clone() } else { "fw4".to_owned() };
        Ruleset { table, own: config.table.clone(), place, sets, rules, forward, dstnat }
    }
}

/// One forward's rules: a DNAT (on each interface knockd listens on) and a forward accept
/// for translated connections; or, for a pinhole, a forward accept and a guard for later.
fn forwards(
    config: &Config,
    f: &crate::config::Forward,
    grantee: Match,
    (forward, dstnat, pinholes): (&mut Vec<RuleSpec>, &mut Vec<RuleSpec>, &mut Vec<(IpAddr, PortProto)>),
) {
    let lan = [Match::Daddr(f.to.ip()), Match::Dport(f.to_port())];
    match f.port {
        Some(port) => {
            let nat = |iif: Option<&String>| {
                let mut matches: Vec<Match> = iif.map(|i| Match::Iifname(i.clone())).into_iter().collect();
                matches.extend([grantee.clone(), Match::Dport(port)]);
                RuleSpec { matches, verdict: Verdict::Dnat(f.to) }
            };
            if config.interfaces.is_empty() {
                dstnat.push(nat(None));
            } else {
                dstnat.extend(config.interfaces.iter().map(|i| nat(Some(i))));
            }
            // A connection translated to that host and port: by the DNAT rule above, which only
            // grantees match (or by a port forward of the admin's own, which already forwards
            // there). A per-port grantee's port is the router's, gone after the translation.
            let mut matches = vec![Match::CtDnat];
            if let Match::SaddrIn { .. } = grantee {
                matches.push(grantee);
            }
            matches.extend(lan);
            forward.push(RuleSpec { matches, verdict: Verdict::Accept });
        }
        None => {
            let mut matches = vec![grantee];
            matches.extend(lan.clone());
            forward.push(RuleSpec { matches, verdict: Verdict::Accept });
            pinholes.push((f.to.ip(), f.to_port()));
        }
    }
}

/// The rules that let a door's grants in: per port for a plain door, one rule for a per-port
/// door (its set names the ports).
fn accepts(open: &crate::config::OpenAction, family: Family, set: &str) -> Vec<RuleSpec> {
    if open.per_port {
        let matches = vec![Match::SaddrPortIn { family, set: set.to_owned() }];
        return vec![RuleSpec { matches, verdict: Verdict::Accept }];
    }
    open.ports
        .iter()
        .map(|port| RuleSpec {
            matches: vec![Match::Dport(*port), Match::SaddrIn { family, set: set.to_owned() }],
            verdict: Verdict::Accept,
        })
        .collect()
}
