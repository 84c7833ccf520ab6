//! What the host's other firewalls do with a door's packet, from rulesets written as nft text
//! in the layouts of firewalld, fw4, iptables-nft (ufw) and a drop-policy /etc/nftables.conf.
//! The end-to-end tests load the same files with the real nft and check that the kernel's copy
//! gets the same answers.

mod util;

use knockd::config::Proto;
use knockd::grant::host::model::Table;
use knockd::grant::host::text::{Indexes, parse};
use knockd::grant::host::{Answer, Domain, Hook, HostRuleset, Interface, Probe, answer};

fn fixture(name: &str) -> HostRuleset {
    let path = util::repo(&format!("tests/fixtures/rulesets/{name}"));
    let text = std::fs::read_to_string(&path).unwrap();
    let indexes = Indexes::from([("eth0".to_owned(), 2), ("eth1".to_owned(), 3), ("br-lan".to_owned(), 4)]);
    parse(&text, &indexes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn v4(proto: Proto, dport: u16, iif: &str) -> Probe {
    Probe {
        proto,
        dport,
        saddr: Domain::all(4),
        daddr: Domain::of_nets(4, &["198.18.0.1/32".parse().unwrap()]),
        iif: Interface::ether(iif, 2),
        oif: None,
        ct_status: 0,
    }
}

fn v6(proto: Proto, dport: u16, iif: &str) -> Probe {
    Probe {
        saddr: Domain::all(16),
        daddr: Domain::of_nets(16, &["2001:db8::1/128".parse().unwrap()]),
        ..v4(proto, dport, iif)
    }
}

fn ask(ruleset: &HostRuleset, probe: &Probe, members: &[&str]) -> Answer {
    let member = |_: &Table, set: &str| members.contains(&set);
    answer(ruleset, Hook::Input, probe, None, &member)
}

fn dropped_by(a: &Answer) -> (String, String, Option<u64>, bool) {
    match a {
        Answer::Dropped(b) | Answer::DroppedFor(b, ..) => (b.table.clone(), b.chain.clone(), b.handle, b.reject),
        other => panic!("not dropped: {other:?}"),
    }
}

#[test]
fn firewalld_rejects_a_port_no_zone_allows_and_accepts_ssh() {
    let fw = fixture("firewalld.nft");
    let a = ask(&fw, &v4(Proto::Tcp, 3333, "eth0"), &[]);
    let (table, chain, handle, reject) = dropped_by(&a);
    assert_eq!((table.as_str(), chain.as_str(), reject), ("table inet firewalld", "filter_INPUT", true), "{a}");
    assert!(handle.is_some(), "names the rule: {a}");
    assert!(a.to_string().starts_with("table inet firewalld chain filter_INPUT rejects it (handle"), "{a}");
    assert_eq!(ask(&fw, &v4(Proto::Tcp, 22, "eth0"), &[]), Answer::Accepted);
    assert_eq!(ask(&fw, &v6(Proto::Tcp, 22, "eth0"), &[]), Answer::Accepted);
    assert!(ask(&fw, &v6(Proto::Tcp, 3333, "eth0"), &[]).is_dropped());
    assert_eq!(ask(&fw, &v6(Proto::Tcp, 2222, "eth0"), &["knockd_ssh6"]), Answer::Accepted);
    assert!(ask(&fw, &v4(Proto::Udp, 2222, "eth0"), &[]).is_dropped());
}

#[test]
fn firewalld_accepts_the_members_of_an_ipset_it_accepts_when_knockd_adds_to_it() {
    let fw = fixture("firewalld.nft");
    assert_eq!(ask(&fw, &v4(Proto::Tcp, 2222, "eth0"), &["knockd_ssh4"]), Answer::Accepted);
    // Not the set of this door: its membership decides, and nobody knows it.
    let a = ask(&fw, &v4(Proto::Tcp, 2222, "eth0"), &[]);
    assert!(matches!(&a, Answer::CannotTell { what, .. } if what == "the membership of @knockd_ssh4"), "{a}");
}

#[test]
fn fw4_rejects_on_wan_and_accepts_from_lan() {
    let fw4 = fixture("fw4.nft");
    let wan = ask(&fw4, &v4(Proto::Tcp, 2222, "eth1"), &[]);
    // The SYN rate limit runs first: below it, the wan zone's reject decides.
    assert!(matches!(&wan, Answer::CannotTell { what, .. } if what.contains("limit")) || wan.is_dropped(), "{wan}");
    let udp = ask(&fw4, &v4(Proto::Udp, 2222, "eth1"), &[]);
    let (table, chain, _, reject) = dropped_by(&udp);
    assert_eq!((table.as_str(), chain.as_str(), reject), ("table inet fw4", "handle_reject", true), "{udp}");
    assert_eq!(ask(&fw4, &v4(Proto::Udp, 2222, "br-lan"), &[]), Answer::Accepted);
    // An interface in no zone: the input chain's final reject.
    assert!(ask(&fw4, &v4(Proto::Udp, 2222, "eth9"), &[]).is_dropped());
    assert_eq!(ask(&fw4, &v4(Proto::Udp, 68, "eth1"), &[]), Answer::Accepted, "Allow-DHCP-Renew");
}

#[test]
fn iptables_nft_rules_made_of_xtables_matches_cannot_be_told() {
    let ufw = fixture("iptables-nft.nft");
    let a = ask(&ufw, &v4(Proto::Tcp, 2222, "eth0"), &[]);
    match &a {
        Answer::CannotTell { table, what, .. } => {
            assert_eq!(table, "table ip filter");
            assert!(what.contains("xtables match"), "{a}");
        }
        other => panic!("{other:?}"),
    }
    // An ip table does not see IPv6.
    assert_eq!(ask(&ufw, &v6(Proto::Tcp, 2222, "eth0"), &[]), Answer::Accepted);
}

#[test]
fn a_drop_policy_drops_what_it_does_not_accept_except_from_the_lan() {
    let conf = fixture("drop-policy.nft");
    // Blocklisted or not, a grantee outside 10.0.0.0/8 is dropped by the policy.
    let a = ask(&conf, &v4(Proto::Tcp, 2222, "eth0"), &[]);
    match &a {
        Answer::DroppedFor(b, who, _) => {
            assert_eq!((b.table.as_str(), b.chain.as_str(), b.handle), ("table inet filter", "input", None));
            assert!(!who.contains("10.1.2.3".parse().unwrap()) && who.contains("198.18.0.2".parse().unwrap()));
            assert!(a.to_string().contains("drops it (its policy) for every grantee but those from 10.0.0.0/8"), "{a}");
        }
        other => panic!("{other:?}"),
    }
    // A door whose grantees are all on the LAN: accepted (unless blocklisted, which nobody knows).
    let mut lan = v4(Proto::Tcp, 2222, "eth0");
    lan.saddr = Domain::of_nets(4, &["10.9.0.0/16".parse().unwrap()]);
    let a = ask(&conf, &lan, &[]);
    assert!(matches!(&a, Answer::CannotTell { what, .. } if what.contains("@blocklist")), "{a}");
    // IPv6 has no LAN exception: dropped by the policy.
    assert!(matches!(ask(&conf, &v6(Proto::Tcp, 2222, "eth0"), &[]), Answer::Dropped(_)));
}

#[test]
fn no_false_alarms() {
    let none = HostRuleset::default();
    assert_eq!(ask(&none, &v4(Proto::Tcp, 2222, "eth0"), &[]), Answer::Accepted, "a bare host");
    let quiet = parse(
        "table inet mine {\n chain input {\n type filter hook input priority filter; policy accept;\n tcp dport 80 drop\n udp dport 2222 drop\n }\n}\n",
        &Indexes::new(),
    )
    .unwrap();
    assert_eq!(ask(&quiet, &v4(Proto::Tcp, 2222, "eth0"), &[]), Answer::Accepted, "a chain that never touches it");
    let accepts = parse(
        "table inet mine {\n chain input {\n type filter hook input priority filter; policy drop;\n tcp dport 2222 accept\n }\n}\n",
        &Indexes::new(),
    )
    .unwrap();
    assert_eq!(ask(&accepts, &v4(Proto::Tcp, 2222, "eth0"), &[]), Answer::Accepted, "a chain that accepts the port");
    let attach = parse(
        "table inet filter {\n set knock4 {\n type ipv4_addr\n flags timeout\n }\n chain input {\n type filter hook input priority filter; policy drop;\n tcp dport 2222 ip saddr @knock4 accept\n }\n}\n",
        &Indexes::new(),
    )
    .unwrap();
    assert_eq!(ask(&attach, &v4(Proto::Tcp, 2222, "eth0"), &["knock4"]), Answer::Accepted, "an attach rule");
}

#[test]
fn verdict_maps_jumps_gotos_and_returns() {
    let text = "table inet t {
	chain input {
		type filter hook input priority 0; policy drop;
		iifname vmap { \"eth0\" : jump wan, \"lo\" : accept }
		tcp dport 2222 accept
	}
	chain wan {
		tcp dport { 22, 2000-3000 } goto ports
		drop
	}
	chain ports {
		tcp dport 2500 drop
		return
	}
}
";
    let t = parse(text, &Indexes::new()).unwrap();
    assert_eq!(ask(&t, &v4(Proto::Tcp, 2222, "eth0"), &[]), Answer::Accepted, "goto, then return to input");
    assert!(ask(&t, &v4(Proto::Tcp, 2500, "eth0"), &[]).is_dropped());
    assert!(ask(&t, &v4(Proto::Tcp, 4000, "eth0"), &[]).is_dropped(), "wan's drop");
    assert!(ask(&t, &v4(Proto::Tcp, 4000, "eth7"), &[]).is_dropped(), "no element: the policy");
}

#[test]
fn a_priority_order_and_a_drop_anywhere_is_final() {
    let text = "table inet a {
	chain input {
		type filter hook input priority 10; policy accept;
		tcp dport 2222 drop
	}
}
table inet b {
	chain input {
		type filter hook input priority -10; policy accept;
		tcp dport 2222 accept
	}
}
table inet sleeping {
	flags dormant
	chain input {
		type filter hook input priority 0; policy drop;
	}
}
";
    let mut t = parse(text, &Indexes::new()).unwrap();
    t.tables[2].dormant = true;
    let (table, ..) = dropped_by(&ask(&t, &v4(Proto::Tcp, 2222, "eth0"), &[]));
    assert_eq!(table, "table inet a");
    assert_eq!(ask(&t, &v4(Proto::Tcp, 22, "eth0"), &[]), Answer::Accepted, "a dormant table decides nothing");
}

#[test]
fn rate_limits_and_named_sets_cannot_be_told_and_say_so() {
    let text = "table inet t {
	set allow {
		type ipv4_addr
	}
	chain input {
		type filter hook input priority 0; policy drop;
		tcp dport 2222 limit rate 10/minute accept
		ip saddr @allow accept
	}
}
";
    let t = parse(text, &Indexes::new()).unwrap();
    let a = ask(&t, &v4(Proto::Tcp, 2222, "eth0"), &[]);
    assert!(matches!(&a, Answer::CannotTell { what, .. } if what.starts_with("limit rate")), "{a}");
    assert!(a.to_string().contains("knockd cannot tell (limit rate 10/minute)"), "{a}");
    let a = ask(&t, &v4(Proto::Tcp, 80, "eth0"), &[]);
    assert!(matches!(&a, Answer::CannotTell { what, .. } if what == "the membership of @allow"), "{a}");
    assert_eq!(ask(&t, &v4(Proto::Tcp, 80, "eth0"), &["allow"]), Answer::Accepted, "knockd's own set: a member");
}

/// Review 18: what the kernel drops, knockd must never call accepted.
#[test]
fn a_goto_from_a_base_chain_ends_in_the_base_chains_policy() {
    // Reproduced in a namespace: the kernel drops a SYN to 2222 (nothing in `wan` decides, so
    // the policy of `input`, the chain the packet entered, does).
    let text = "table inet t {
	chain wan {
		tcp dport 22 accept
	}
	chain back {
		tcp dport 22 accept
		return
	}
	chain input {
		type filter hook input priority 0; policy drop;
		iifname \"eth0\" goto wan
		goto back
	}
}
";
    let t = parse(text, &Indexes::new()).unwrap();
    assert!(matches!(ask(&t, &v4(Proto::Tcp, 2222, "eth0"), &[]), Answer::Dropped(_)), "falls off a goto'd chain");
    assert!(matches!(ask(&t, &v4(Proto::Tcp, 2222, "eth1"), &[]), Answer::Dropped(_)), "returns from one");
    assert_eq!(ask(&t, &v4(Proto::Tcp, 22, "eth0"), &[]), Answer::Accepted);
}

#[test]
fn an_inverted_set_lookup_keeps_the_addresses_it_finds() {
    // `ip saddr != { A, B } accept` under a drop policy: A and B are dropped.
    let text = "table inet t {
	chain input {
		type filter hook input priority 0; policy drop;
		ip saddr != { 198.18.0.2, 203.0.113.0/24 } accept
	}
}
";
    let t = parse(text, &Indexes::new()).unwrap();
    let a = ask(&t, &v4(Proto::Tcp, 2222, "eth0"), &[]);
    let Answer::DroppedFor(_, who, _) = &a else { panic!("{a}") };
    assert!(who.contains("198.18.0.2".parse().unwrap()) && who.contains("203.0.113.9".parse().unwrap()), "{a}");
    assert!(!who.contains("198.18.0.3".parse().unwrap()), "{a}");
}

#[test]
fn a_verdict_map_on_what_knockd_cannot_know_is_not_an_accept() {
    // The kernel drops these (mark 0, any source port above 1023): knockd cannot know, and says so.
    for rule in ["tcp dport 2222 meta mark vmap { 0x0 : drop, 0x1 : accept }", "tcp sport vmap { 1024-65535 : drop }"] {
        let text = format!(
            "table inet t {{\n chain input {{\n type filter hook input priority 0; policy accept;\n {rule}\n }}\n}}\n"
        );
        let t = parse(&text, &Indexes::new()).unwrap();
        let a = ask(&t, &v4(Proto::Tcp, 2222, "eth0"), &[]);
        assert!(matches!(a, Answer::CannotTell { .. }), "{rule}: {a}");
    }
}

#[test]
fn a_large_set_is_one_path_per_verdict_not_one_per_element() {
    use knockd::grant::host::eval::Run;
    let elements: Vec<String> = (0..200).map(|i| format!("10.0.{i}.1")).collect();
    let text = format!(
        "table inet t {{\n chain input {{\n type filter hook input priority 0; policy accept;\n ip saddr {{ {} }} drop\n }}\n}}\n",
        elements.join(", ")
    );
    let t = parse(&text, &Indexes::new()).unwrap();
    let a = ask(&t, &v4(Proto::Tcp, 2222, "eth0"), &[]);
    let Answer::DroppedFor(_, who, _) = &a else { panic!("{a}") };
    assert!(who.contains("10.0.7.1".parse().unwrap()) && !who.contains("10.0.7.2".parse().unwrap()), "{a}");
    let table = &t.tables[0];
    let member = |_: &Table, _: &str| false;
    let outcomes = Run::chain(table, 0, &v4(Proto::Tcp, 2222, "eth0"), &member);
    assert!(outcomes.len() <= 2, "{} paths", outcomes.len());
}

/// Review 18: an attach door whose accepting rule names its ports in a set, or names none, is
/// still checked against the other tables; never "host firewall: ok" without a look.
#[test]
fn an_attach_door_is_checked_when_its_rule_names_ports_in_a_set_or_none() {
    use knockd::cli::host_firewall::{Finding, report};
    use knockd::config::TableFamily;
    use knockd::grant::coexist::HostView;
    use knockd::grant::{KEY_IPV4, MemoryFirewall, SetInfo};
    let config = "doors:\n  ssh:\n    sequence: [7000]\n    open: {set: {table: fw, ipv4: k4}, timeout: 1h}\n";
    let config = util::parsed(config);
    let view = HostView {
        interfaces: vec![Interface::ether("eth0", 2)],
        addresses: vec!["198.18.0.1".parse().unwrap()],
        networks: Vec::new(),
    };
    let admin = "table inet admin {\n chain input {\n type filter hook input priority 10; policy drop;\n tcp dport 22 accept\n }\n}\n";
    for accept in ["tcp dport { 22, 2222 } ip saddr @k4 accept", "ip saddr @k4 accept"] {
        let text = format!(
            "table inet fw {{\n set k4 {{\n type ipv4_addr\n flags timeout\n }}\n chain input {{\n type filter hook input priority 0; policy accept;\n {accept}\n }}\n}}\n{admin}"
        );
        let mut fw = MemoryFirewall { host: parse(&text, &Indexes::new()).unwrap(), ..MemoryFirewall::default() };
        fw.foreign_sets.push((TableFamily::Inet, "fw".into(), "k4".into(), SetInfo::timeout_set(KEY_IPV4)));
        let r = report(&config, &mut fw, &view).unwrap();
        assert!(r.finding > Finding::Clear && !r.text.contains("host firewall: ok"), "{accept}:\n{}", r.text);
        if accept.contains("2222") {
            assert!(
                r.text.contains("door ssh: 2222/tcp over IPv4: table inet admin chain input drops it"),
                "{}",
                r.text
            );
        }
    }
}

#[test]
fn prerouting_chains_vote_first_and_reverse_path_filters_pass_a_grantee() {
    let text = "table inet raw {
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		meta nfproto ipv6 fib saddr . mark . iif oif missing drop
		fib daddr type broadcast drop
		tcp dport 3333 drop
	}
}
";
    let t = parse(text, &Indexes::new()).unwrap();
    let (table, chain, ..) = dropped_by(&ask(&t, &v4(Proto::Tcp, 3333, "eth0"), &[]));
    assert_eq!((table.as_str(), chain.as_str()), ("table inet raw", "pre"), "a prerouting drop is final");
    assert_eq!(ask(&t, &v6(Proto::Tcp, 2222, "eth0"), &[]), Answer::Accepted, "the grantee's address routes back");
    assert_eq!(ask(&t, &v4(Proto::Tcp, 2222, "eth0"), &[]), Answer::Accepted, "sent to a local address");
    // firewalld's own reverse-path filter, in its prerouting chain, lets an IPv6 grantee through.
    assert_eq!(ask(&fixture("firewalld.nft"), &v6(Proto::Tcp, 2222, "eth0"), &["knockd_ssh6"]), Answer::Accepted);
}
