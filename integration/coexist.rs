//! Coexistence: knockd on hosts that already run a firewall (a firewalld-shaped table, an
//! admin's drop policy) and on a bare host. `knockd check` says what drops a door's port, the
//! log and the OPEN line say it too, attaching works, and grants outlive the owner's reloads
//! and absence.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(5);

/// The firewalld fixture without the rich rule that accepts knockd's ipset: firewalld as a
/// new user has it.
fn plain_firewalld(dir: &ConfigFile) -> String {
    let text = std::fs::read_to_string(ruleset("firewalld.nft")).unwrap();
    let plain: String = text.lines().filter(|l| !l.contains("@knockd_ssh")).map(|l| format!("{l}\n")).collect();
    let path = dir.path.with_file_name("firewalld-plain.nft");
    std::fs::write(&path, plain).unwrap();
    path.display().to_string()
}

/// Port `p` of the server.
fn port(p: u16) -> SocketAddr {
    at(SERVER_V4, p)
}

/// `knockd check` on `config` in the server: its exit status and all it printed.
fn check(lab: &Lab, config: &ConfigFile) -> (Option<i32>, String) {
    let out = knockd_check(&lab.server, &config.path);
    (out.status.code(), printed(&out))
}

/// The same, which must exit with `code` and print each of `lines`; all it printed.
fn check_says(lab: &Lab, config: &ConfigFile, code: i32, lines: &[&str]) -> String {
    let (status, text) = check(lab, config);
    assert_eq!(status, Some(code), "{text}");
    for line in lines {
        assert!(text.contains(line), "`{line}` missing: {text}");
    }
    text
}

const STANDALONE: &str = "doors:\n  ssh:\n    sequence: [7000, 8000, 9000]\n    open: {ports: [2222], timeout: 30s}\n";
/// Door ssh adding its grants to firewalld's ipset (the fixture's `knockd_ssh4`).
pub(crate) const ATTACHED: &str = "doors:
  ssh:
    sequence: [7000, 8000, 9000]
    open:
      set: {family: inet, table: firewalld, ipv4: knockd_ssh4}
      timeout: 30s
";

#[test]
fn a_firewalld_host_is_reported_and_attaching_to_its_ipset_opens_exactly_the_grantee() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "0.0.0.0:2222".parse().unwrap());
    let standalone = ConfigFile::new("knockd.yaml", STANDALONE);
    lab.server.nft(&["-f", &plain_firewalld(&standalone)]);
    assert!(!gets_in(&lab, CLIENT_V4, port(2222)), "firewalld rejects 2222");

    let rejects = "door ssh: 2222/tcp over IPv4: table inet firewalld chain filter_INPUT rejects it (handle";
    check_says(&lab, &standalone, 4, &[rejects, "firewall-cmd --permanent --add-port=2222/tcp"]);
    let daemon = Daemon::start(&lab.server, &standalone, &[]);
    let rejects = format!("table inet firewalld chain filter_INPUT rejects it (handle {ANY})");
    daemon.expect_log(&log_lines::host_drops("door ssh: 2222/tcp over IPv4", &rejects), WITHIN);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    let caveat = format!(", but {rejects}");
    daemon.expect_log(&log_lines::open("ssh", CLIENT_V4, "2222/tcp", secs(30), &caveat, ""), WITHIN);
    assert!(!gets_in(&lab, CLIENT_V4, port(2222)), "the grant cannot overrule firewalld's reject");
    daemon.stop();
    lab.server.nft(&["delete", "table", "inet", "firewalld"]);
    lab.server.nft(&["-f", &ruleset("firewalld.nft")]);

    // Attached to the ipset (an interval set, as firewalld makes them): exactly the grantee.
    let attached = ConfigFile::new("knockd.yaml", ATTACHED);
    let lines = [
        "door ssh: set inet firewalld knockd_ssh4: ok",
        "door ssh: 2222/tcp over IPv4: nothing in the host's firewall drops it",
        "a start removes it", // the old table
    ];
    check_says(&lab, &attached, 0, &lines);
    lab.add_client_addr("198.18.0.41/16");
    lab.add_client_addr("198.18.0.42/16");
    lab.add_client_addr("198.18.0.43/16");
    let daemon = Daemon::start(&lab.server, &attached, &[]);
    assert!(!lab.server.nft(&["list", "tables"]).contains("knockd"), "the old guard is gone");
    knock_tcp(&lab, "198.18.0.42", SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, "198.18.0.42", port(2222), WITHIN), "{}", daemon.log_text());
    for neighbour in ["198.18.0.41", "198.18.0.43", CLIENT_V4] {
        assert!(!gets_in(&lab, neighbour, port(2222)), "{neighbour} stays out");
    }
    let set = lab.server.nft(&["list", "set", "inet", "firewalld", "knockd_ssh4"]);
    assert!(set.contains("elements = { 198.18.0.42 timeout 30s"), "one address, not a range: {set}");

    // Revoked: exactly that address goes, and nothing else is left in the set.
    ask(&lab.server, &attached, &["revoke", "198.18.0.42"]);
    assert!(eventually(WITHIN, || !gets_in(&lab, "198.18.0.42", port(2222))));
    let set = lab.server.nft(&["list", "set", "inet", "firewalld", "knockd_ssh4"]);
    assert!(!set.contains("elements"), "{set}");

    // Expired: the kernel takes exactly that address out again.
    ask(&lab.server, &attached, &["grant", "198.18.0.42", "--door", "ssh", "--for", "2s"]);
    assert!(eventually(WITHIN, || gets_in(&lab, "198.18.0.42", port(2222))));
    assert!(!gets_in(&lab, "198.18.0.43", port(2222)) && !gets_in(&lab, "198.18.0.41", port(2222)));
    assert!(eventually(WITHIN, || !gets_in(&lab, "198.18.0.42", port(2222))), "closed when the grant ends");
    let closed = log_lines::closed_again("ssh", "198.18.0.42", "set inet firewalld knockd_ssh4", secs(2));
    daemon.expect_log(&closed, WITHIN);
}

#[test]
fn grants_survive_the_owners_reload_and_absence_with_the_time_they_had_left() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "0.0.0.0:2222".parse().unwrap());
    lab.server.nft(&["-f", &ruleset("firewalld.nft")]);
    let attached = ConfigFile::new("knockd.yaml", &ATTACHED.replace("30s", "40s"));
    let daemon = Daemon::start(&lab.server, &attached, &[]);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, port(2222), WITHIN), "{}", daemon.log_text());
    std::thread::sleep(Duration::from_secs(3));

    // `firewall-cmd --reload`: the table is deleted and made again, empty.
    lab.server.nft(&["delete", "table", "inet", "firewalld"]);
    lab.server.nft(&["-f", &ruleset("firewalld.nft")]);
    assert!(eventually(Duration::from_secs(1), || gets_in(&lab, CLIENT_V4, port(2222))), "{}", daemon.log_text());
    daemon.expect_log(&log_lines::put_back(ANY, ANY, 1), WITHIN);
    let set = lab.server.nft(&["list", "set", "inet", "firewalld", "knockd_ssh4"]);
    let timeout: u64 = set.split(" timeout ").nth(1).and_then(|t| t.split('s').next()?.parse().ok()).unwrap_or(99);
    assert!(timeout <= 37, "the time it had left, not a fresh 40s: {set}");
    assert!(!gets_in(&lab, OTHER_V4, port(2222)), "a stranger stays out");

    // The owner away for a while (a firewall being restarted): knockd keeps running, says so
    // once, and puts the grant back when the set returns.
    lab.server.nft(&["delete", "table", "inet", "firewalld"]);
    let missing =
        log_lines::attached_set_unusable("ssh", &format!("set inet firewalld knockd_ssh4 does not exist{ANY}"));
    daemon.expect_log(&missing, WITHIN);
    std::thread::sleep(Duration::from_secs(2));
    let cpu = cpu_time(daemon.pid());
    std::thread::sleep(Duration::from_secs(2));
    assert!(cpu_time(daemon.pid()) - cpu < Duration::from_millis(500), "no spinning while the set is missing");
    lab.server.nft(&["-f", &ruleset("firewalld.nft")]);
    daemon.expect_log(log_lines::ATTACHED_SETS_BACK, WITHIN);
    assert!(eventually(Duration::from_secs(2), || gets_in(&lab, CLIENT_V4, port(2222))), "{}", daemon.log_text());
    assert_eq!(daemon.count(&missing), 1, "said once");
}

#[test]
fn a_drop_policy_table_is_reported_until_the_admin_accepts_the_port_and_knockd_still_guards_it() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "0.0.0.0:2222".parse().unwrap());
    lab.server.nft(&["-f", &ruleset("drop-policy.nft")]);
    let config = ConfigFile::new("knockd.yaml", STANDALONE);
    let drops = "door ssh: 2222/tcp over IPv4: table inet filter chain input drops it (its policy)";
    check_says(&lab, &config, 4, &[drops, "nft add rule inet filter input tcp dport 2222 accept"]);

    let daemon = Daemon::start(&lab.server, &config, &[]);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    let caveat = ", but table inet filter chain input drops it (its policy)";
    daemon.expect_log(&log_lines::open("ssh", CLIENT_V4, "2222/tcp", secs(30), caveat, ""), WITHIN);
    assert!(!gets_in(&lab, CLIENT_V4, port(2222)));
    let status = ask(&lab.server, &config, &["status"]);
    assert!(
        status.contains("door ssh: 2222/tcp over IPv6: table inet filter chain input drops it (its policy)"),
        "{status}"
    );

    // The admin does what check said: knockd notices, and its own table still guards the port.
    lab.server.nft(&["add", "rule", "inet", "filter", "input", "tcp", "dport", "2222", "accept"]);
    daemon.expect_log(&log_lines::host_lets_in("door ssh: 2222/tcp over IPv6"), WITHIN);
    // For IPv4, the admin's blocklist still drops its members: a note, not a warning.
    let blocklist = format!("{ANY}(the membership of @blocklist)");
    daemon.expect_log(&log_lines::host_cannot_tell("door ssh: 2222/tcp over IPv4", &blocklist, true), WITHIN);
    assert!(gets_in(&lab, CLIENT_V4, port(2222)), "the grant works now");
    assert!(!gets_in(&lab, OTHER_V4, port(2222)), "a stranger is still dropped by knockd's guard");
    check_says(&lab, &config, 0, &[]);
}

#[test]
fn on_a_bare_host_check_is_clean() {
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.yaml", STANDALONE);
    let text = check_says(&lab, &config, 0, &["host firewall: ok"]);
    assert!(!text.contains("note:") && !text.contains("warning"), "{text}");
}

#[test]
fn a_reload_from_ports_to_an_attached_set_removes_the_old_guard() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "0.0.0.0:2222".parse().unwrap());
    lab.server.nft(&["-f", &template("attach.nft")]);
    lab.server.nft(&[
        "add",
        "rule",
        "inet",
        "filter",
        "input",
        "tcp",
        "dport",
        "2222",
        "ip",
        "saddr",
        "@knock_ssh4",
        "accept",
    ]);
    let (config, daemon) = lab.knockd(STANDALONE);
    assert!(lab.server.nft(&["list", "table", "inet", "knockd"]).contains("tcp dport 2222 drop"));
    config.rewrite(
        "doors:\n  ssh:\n    sequence: [7000, 8000, 9000]\n    open:\n      set: {table: filter, ipv4: knock_ssh4, ipv6: knock_ssh6}\n      timeout: 30s\n",
    );
    daemon.signal(libc::SIGHUP);
    daemon.expect_log(&log_lines::removed_table("knockd", "the last config"), WITHIN);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, port(2222), WITHIN), "{}", daemon.log_text());
    assert!(!gets_in(&lab, OTHER_V4, port(2222)), "a stranger stays out");
}

#[test]
fn knockds_own_table_deleted_comes_back_with_its_live_grants() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "0.0.0.0:2222".parse().unwrap());
    let (_config, daemon) = lab.knockd(STANDALONE);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, port(2222), WITHIN), "{}", daemon.log_text());
    lab.server.nft(&["delete", "table", "inet", "knockd"]);
    daemon.expect_log(&log_lines::restored("nftables table inet knockd"), WITHIN);
    assert!(eventually(Duration::from_secs(1), || gets_in(&lab, CLIENT_V4, port(2222))), "{}", daemon.log_text());
    assert!(lab.server.set_elements("knockd", "ssh_v4").contains("198.18.0.2"));
    assert!(!gets_in(&lab, OTHER_V4, port(2222)));
}

/// Where a blocker's rule sits in its chain (handles differ between the kernel and the text).
fn normalized(ruleset: &knockd::grant::host::HostRuleset, answer: knockd::grant::host::Answer) -> String {
    use knockd::grant::host::Answer;
    let at = |b: &knockd::grant::host::Blocker| {
        let table = ruleset.tables.iter().find(|t| t.title() == b.table).unwrap();
        let chain = table.chain(&b.chain).unwrap();
        b.handle.map(|h| chain.rules.iter().position(|r| r.handle == h).unwrap())
    };
    match &answer {
        Answer::Dropped(b) | Answer::DroppedFor(b, ..) => {
            format!("{answer:?} at rule {:?}", at(b)).replace(&format!("{:?}", b.handle), "_")
        }
        other => format!("{other:?}"),
    }
}

#[test]
fn the_kernels_copy_of_a_ruleset_gets_the_same_answers_as_its_text() {
    use knockd::config::Proto;
    use knockd::grant::host::model::Table;
    use knockd::grant::host::text::{Indexes, parse};
    use knockd::grant::host::{Domain, Hook, Interface, Probe, answer};
    use knockd::grant::nft::NetlinkFirewall;

    for name in ["firewalld.nft", "fw4.nft", "drop-policy.nft"] {
        let lab = Lab::new();
        lab.server.nft(&["-f", &ruleset(name)]);
        let kernel = lab.server.run(|| NetlinkFirewall::open().unwrap().host_ruleset().unwrap());
        let text = parse(&std::fs::read_to_string(ruleset(name)).unwrap(), &Indexes::new()).unwrap();
        let tables = |r: &knockd::grant::host::HostRuleset| r.tables.iter().map(|t| t.title()).collect::<Vec<_>>();
        assert_eq!(tables(&kernel), tables(&text), "{name}");
        let mut asked = 0;
        for (proto, dport) in
            [(Proto::Tcp, 22), (Proto::Tcp, 2222), (Proto::Udp, 68), (Proto::Udp, 546), (Proto::Tcp, 9090)]
        {
            for iif in ["eth0", "eth1", "br-lan", "lo"] {
                for bytes in [4u8, 16] {
                    let probe = Probe {
                        proto,
                        dport,
                        saddr: Domain::all(bytes),
                        daddr: Domain::all(bytes),
                        iif: Interface {
                            name: iif.into(),
                            index: if iif == "lo" { 1 } else { 7 },
                            kind: if iif == "lo" { 772 } else { 1 },
                        },
                        oif: None,
                        ct_status: 0,
                    };
                    for members in [&[][..], &["knockd_ssh4"][..]] {
                        let member = |_: &Table, s: &str| members.contains(&s);
                        let from_kernel = answer(&kernel, Hook::Input, &probe, None, &member);
                        let from_text = answer(&text, Hook::Input, &probe, None, &member);
                        assert_eq!(
                            normalized(&kernel, from_kernel),
                            normalized(&text, from_text),
                            "{name}: {proto:?} {dport} on {iif}, {bytes}-byte addresses"
                        );
                        asked += 1;
                    }
                }
            }
        }
        assert_eq!(asked, 80);
    }
}

#[test]
fn iptables_rules_cannot_be_looked_into_and_check_says_what_to_do() {
    let lab = Lab::new();
    let ipt = |args: &[&str]| {
        let mut all = vec!["netns", "exec", &lab.server.0, "iptables"];
        all.extend_from_slice(args);
        cmd("ip", &all)
    };
    // What ufw leaves, in short: a drop policy, conntrack and limit matches, a final reject.
    ipt(&["-P", "INPUT", "DROP"]);
    ipt(&["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"]);
    ipt(&["-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]);
    ipt(&["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"]);
    ipt(&["-A", "INPUT", "-j", "REJECT"]);
    let config = ConfigFile::new("knockd.yaml", STANDALONE);
    // A note, not an error.
    let note = "note: door ssh: 2222/tcp over IPv4: table ip filter chain INPUT may drop it: knockd cannot tell (xtables match conntrack)";
    let text = check_says(&lab, &config, 0, &[note]);
    assert!(
        text.contains("ufw allow 2222/tcp")
            && text.contains("command: ufw insert 1 allow from %IP% to any port 2222 proto tcp"),
        "{text}"
    );
    assert!(text.contains("door ssh: 2222/tcp over IPv6: nothing in the host's firewall drops it"), "{text}");
}

/// fwknop's stock client, built with `fwknop -T -B` (nothing sent): its packet from `src`.
fn fwknop_packet(lab: &Lab, dir: &ConfigFile, src: &str, access: &str) -> Vec<u8> {
    const KEY: &str = "aK2BZ8AjOPhp0jccEbZvTtK53QHY91/Kq/fk3RW/iII=";
    const HMAC: &str = "oexBgiCECuijnxbs1WGVYgziybEaV5p2Do4WguSColBAw6SpYSDGynkf/U26G7EjVGLrAUA8af2jNd7h89Iegw==";
    let file = dir.path.with_file_name(format!("spa-{src}"));
    let path = file.to_str().unwrap();
    // The stock client takes no IPv6 allow address: `-s` (0.0.0.0) lets the source decide.
    let (server, allow) = if src.contains(':') { (SERVER_V4, vec!["-s"]) } else { (SERVER_V4, vec!["-a", src]) };
    cmd(
        "ip",
        &["netns", "exec", &lab.client.0, "fwknop", "--no-rc-file", "--no-save-args", "--use-hmac"][..]
            .iter()
            .copied()
            .chain(["--key-base64-rijndael", KEY, "--key-base64-hmac", HMAC, "-T", "-B", path, "-D", server])
            .chain(["-A", access])
            .chain(allow)
            .collect::<Vec<_>>(),
    );
    std::fs::read(&file).unwrap().trim_ascii_end().to_vec()
}

#[test]
fn an_fwknop_door_attaches_to_per_port_sets_of_the_admins_table() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "[::]:2222".parse().unwrap());
    let admin = "table inet filter {
	set fw4 { type ipv4_addr . inet_proto . inet_service; flags interval,timeout; }
	set fw6 { type ipv6_addr . inet_proto . inet_service; flags timeout; }
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif \"lo\" accept
		meta l4proto ipv6-icmp accept
		ip saddr . meta l4proto . th dport @fw4 accept
		ip6 saddr . meta l4proto . th dport @fw6 accept
	}
}
";
    let yaml = "doors:
  stanza1:
    fwknop:
      port: 62201
      key_base64: aK2BZ8AjOPhp0jccEbZvTtK53QHY91/Kq/fk3RW/iII=
      hmac_key_base64: oexBgiCECuijnxbs1WGVYgziybEaV5p2Do4WguSColBAw6SpYSDGynkf/U26G7EjVGLrAUA8af2jNd7h89Iegw==
      open_ports: [2222]
    open:
      set: {table: filter, ipv4: fw4, ipv6: fw6}
      timeout: 30s
";
    let config = ConfigFile::private("knockd.yaml", yaml);
    let rules = config.write("admin.nft", admin);
    lab.server.nft(&["-f", rules.to_str().unwrap()]);
    check_says(&lab, &config, 0, &["door stanza1: 2222/tcp over IPv4: nothing in the host's firewall drops it"]);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    for (src, server) in [(CLIENT_V4, SERVER_V4), (CLIENT_V6, SERVER_V6)] {
        let packet = fwknop_packet(&lab, &config, src, "tcp/2222");
        send_datagram(&lab, src, server, 62201, &packet);
        let to = at(server, 2222);
        assert!(connects_within(&lab.client, src, to, WITHIN), "{src}: {}", daemon.log_text());
        let other = if src == CLIENT_V4 { OTHER_V4 } else { OTHER_V6 };
        assert!(!gets_in(&lab, other, to), "{other} stays out");
    }
    let set = lab.server.nft(&["list", "set", "inet", "filter", "fw4"]);
    assert!(set.contains("198.18.0.2 . tcp . 2222"), "{set}");
    assert!(!set.contains("198.18.0.3"), "{set}");
}

#[test]
fn the_firewalld_templates_open_the_port_both_ways() {
    let dir = format!("{}/nft-templates/firewalld", env!("CARGO_MANIFEST_DIR"));
    for script in ["ports.sh", "ipset.sh"] {
        cmd("sh", &["-n", &format!("{dir}/{script}")]);
    }
    let ipset = std::fs::read_to_string(format!("{dir}/ipset.sh")).unwrap();
    assert!(ipset.contains("source ipset=knockd_ssh4 port port=2222 protocol=tcp accept"), "{ipset}");
    let lab = Lab::new();
    // Way 2, as firewalld renders ipset.sh (the fixture holds the same sets and rich rules).
    lab.server.nft(&["-f", &ruleset("firewalld.nft")]);
    let yaml = std::fs::read_to_string(format!("{dir}/knockd-firewalld.yaml")).unwrap();
    let attached = ConfigFile::new("knockd.yaml", &yaml);
    let lines = [
        "door ssh: set inet firewalld knockd_ssh4: ok",
        "door ssh: set inet firewalld knockd_ssh6: ok",
        "door ssh: 2222/tcp over IPv4: nothing in the host's firewall drops it",
        "door ssh: 2222/tcp over IPv6: nothing in the host's firewall drops it",
    ];
    check_says(&lab, &attached, 0, &lines);
    // Way 1, as firewalld renders ports.sh's --add-port in the public zone.
    lab.server.nft(&["delete", "table", "inet", "firewalld"]);
    let standalone = ConfigFile::new("knockd.yaml", STANDALONE);
    lab.server.nft(&["-f", &plain_firewalld(&standalone)]);
    lab.server.nft(&[
        "add",
        "rule",
        "inet",
        "firewalld",
        "filter_IN_public_allow",
        "tcp",
        "dport",
        "2222",
        "ct",
        "state",
        "{",
        "new,",
        "untracked",
        "}",
        "accept",
    ]);
    check_says(&lab, &standalone, 0, &["host firewall: ok"]);
}
