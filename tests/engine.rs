//! Packets in, firewall operations out, with the in-memory firewall: the daemon's whole packet
//! path except the sockets.

mod util;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use knockd::config::{PortProto, TableFamily};
use knockd::engine::Engine;
use knockd::grant::legacy_command::MemorySpawner;
use knockd::grant::memory::Failure;
use knockd::grant::nft::{Family, Match, Ruleset, Verdict};
use knockd::grant::{Element, MemoryFirewall};
use knockd::packet::ipv4::Ipv4Mut;
use knockd::packet::{Drop, Knock};
use util::{MemoryEngine, TempDir, knock_on, parsed, start, tcp_syn};

const CONFIG: &str = "
nftables: {table: edge}
doors:
  ssh:
    sequence: [7000, 8000, \"9000/udp\"]
    seq_timeout: 5s
    open: {ports: [\"22/tcp\"], timeout: 30s}
  web:
    sequence: [7000, 6000]
    open: {ports: [\"443/tcp\", \"22/tcp\"], timeout: 2m}
";

fn engine() -> MemoryEngine {
    util::engine(CONFIG)
}

fn at(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[test]
fn start_installs_the_ruleset() {
    let e = engine();
    let installed = &e.firewall().installed;
    assert_eq!(installed.len(), 1);
    let rs: &Ruleset = &installed[0];
    assert_eq!(rs.table, "edge");
    let sets: Vec<(&str, Family)> = rs.sets.iter().map(|s| (s.name.as_str(), s.family)).collect();
    assert_eq!(sets, [("ssh_v4", Family::V4), ("ssh_v6", Family::V6), ("web_v4", Family::V4), ("web_v6", Family::V6)]);
    assert_eq!(rs.rules[0].matches, [Match::Established]);
    assert_eq!(rs.rules[1].matches, [Match::Loopback]);
    // Port 22 is opened by both doors: both accepts come before its single drop.
    let drops: Vec<String> = rs.rules.iter().filter(|r| r.verdict == Verdict::Drop).map(|r| r.to_string()).collect();
    assert_eq!(drops, ["tcp dport 22 drop", "tcp dport 443 drop"]);
    let last_accept = rs.rules.iter().rposition(|r| r.verdict == Verdict::Accept).unwrap();
    let first_drop = rs.rules.iter().position(|r| r.verdict == Verdict::Drop).unwrap();
    assert!(last_accept < first_drop);
    let text = rs.to_string();
    assert!(text.contains("tcp dport 22 ip saddr @web_v4 accept"), "{text}");
    assert!(text.contains("tcp dport 443 ip6 saddr @web_v6 accept"), "{text}");
    assert!(text.contains("type filter hook input priority 0; policy accept;"), "{text}");
}

#[test]
fn a_completed_knock_becomes_one_element_per_source() {
    let mut e = engine();
    for (i, port) in [PortProto::tcp(7000), PortProto::tcp(8000), PortProto::udp(9000)].into_iter().enumerate() {
        e.packet(&knock_on("198.18.0.2", port), at(i as u64));
        e.packet(&knock_on("2001:db8::2", port), at(i as u64));
    }
    assert_eq!(e.flush(), 2, "both grants go in one firewall call");
    assert_eq!(
        e.firewall().elements,
        [
            Element {
                family: TableFamily::Inet,
                table: "edge".into(),
                set: "ssh_v4".into(),
                addr: "198.18.0.2".parse().unwrap(),
                port: None,
                timeout: Duration::from_secs(30),
                comment: None
            },
            Element {
                family: TableFamily::Inet,
                table: "edge".into(),
                set: "ssh_v6".into(),
                addr: "2001:db8::2".parse().unwrap(),
                port: None,
                timeout: Duration::from_secs(30),
                comment: None
            },
        ]
    );
    assert_eq!(e.stats().opens, 2);
    assert_eq!(e.flush(), 0, "nothing pending any more");
}

#[test]
fn the_other_door_uses_its_own_set_and_timeout() {
    let mut e = engine();
    e.packet(&tcp_syn("198.18.0.3", 7000), at(0));
    e.packet(&tcp_syn("198.18.0.3", 6000), at(1));
    e.flush();
    let el = &e.firewall().elements;
    assert_eq!(el.len(), 1);
    assert_eq!((el[0].set.as_str(), el[0].timeout), ("web_v4", Duration::from_secs(120)));
}

#[test]
fn malformed_packets_are_counted_and_dropped() {
    let mut e = engine();
    e.packet(&[], at(0));
    e.packet(&[0x45, 0, 0], at(0));
    e.packet(&[0x75; 40], at(0));
    let mut frag = tcp_syn("198.18.0.2", 7000);
    Ipv4Mut::new(&mut frag).set_flags_and_offset(1); // a later fragment: offset 8 bytes
    e.packet(&frag, at(0));
    let mut icmp = tcp_syn("198.18.0.2", 7000);
    Ipv4Mut::new(&mut icmp).set_protocol(1);
    e.packet(&icmp, at(0));
    let s = e.stats();
    assert_eq!(s.packets, 5);
    assert_eq!(s.dropped[Drop::Truncated.index()], 2);
    assert_eq!(s.dropped[Drop::BadVersion.index()], 1);
    assert_eq!(s.dropped[Drop::Fragment.index()], 1);
    assert_eq!(s.dropped[Drop::NotTcpOrUdp.index()], 1);
    assert_eq!(e.attempts(), 0);
}

#[test]
fn a_refused_grant_is_counted_not_fatal() {
    let mut e = engine();
    e.firewall_mut().fail_with = Some(Failure::NotFound);
    e.packet(&tcp_syn("198.18.0.3", 7000), at(0));
    e.packet(&tcp_syn("198.18.0.3", 6000), at(1));
    assert_eq!(e.flush(), 0);
    assert_eq!(e.stats().grant_errors, 1);
    // The next knock after the firewall recovers is granted.
    e.firewall_mut().fail_with = None;
    e.packet(&tcp_syn("198.18.0.3", 7000), at(2));
    e.packet(&tcp_syn("198.18.0.3", 6000), at(3));
    assert_eq!(e.flush(), 1);
    assert_eq!(e.firewall().elements.len(), 1);
}

#[test]
fn a_refused_ruleset_stops_the_start_and_says_why() {
    let config = parsed(CONFIG);
    let failing = MemoryFirewall { fail_with: Some(Failure::Refused(libc::EPERM)), ..MemoryFirewall::default() };
    let err = Engine::start(config, failing, MemorySpawner::default()).err().unwrap().to_string();
    assert!(err.contains("install the ruleset") && err.contains("Operation not permitted"), "{err}");
}

#[test]
fn a_refused_reload_keeps_the_running_config() {
    let mut e = engine();
    let other = parsed("doors:\n  x:\n    sequence: [1]\n    open: {ports: [22], timeout: 1m}\n");
    e.firewall_mut().fail_with = Some(Failure::Refused(libc::EINVAL));
    assert!(e.reconfigure(other).is_err());
    e.firewall_mut().fail_with = None;
    assert_eq!(e.config().table, "edge");
    assert_eq!(e.config().doors.len(), 2);
    e.packet(&tcp_syn("198.18.0.3", 7000), at(0));
    e.packet(&tcp_syn("198.18.0.3", 6000), at(1));
    assert_eq!(e.flush(), 1);
}

#[test]
fn reconfigure_replaces_the_ruleset_and_keeps_running() {
    let mut e = engine();
    let smaller =
        parsed("nftables: {table: edge}\ndoors:\n  ssh:\n    sequence: [1, 2]\n    open: {ports: [22], timeout: 1m}\n");
    e.reconfigure(smaller).unwrap();
    assert_eq!(e.firewall().installed.len(), 2);
    assert_eq!(e.config().doors.len(), 1);
    e.packet(&tcp_syn("198.18.0.2", 1), at(0));
    e.packet(&tcp_syn("198.18.0.2", 2), at(1));
    assert_eq!(e.flush(), 1);
}

fn classic(text: &str) -> MemoryEngine {
    start(knockd::doors::sequence::knockd_conf::parse("knockd.conf", text).unwrap())
}

fn knock_seq(e: &mut MemoryEngine, src: &str, ports: &[u16], at_ms: u64) {
    for (i, port) in ports.iter().enumerate() {
        e.packet(&tcp_syn(src, *port), at(at_ms + i as u64));
    }
}

#[test]
fn classic_doors_run_commands_and_touch_no_nftables() {
    let mut e =
        classic("[ssh]\nsequence = 1,2\nstart_command = open %IP%\nstop_command = close %IP%\ncmd_timeout = 5\n");
    assert!(e.firewall().installed.is_empty(), "a classic-only config creates no table");
    knock_seq(&mut e, "198.18.0.2", &[1, 2], 0);
    assert_eq!(e.flush(), 0);
    let commands: Vec<&str> = e.spawner().jobs.iter().map(|j| j.command.as_str()).collect();
    assert_eq!(commands, ["open 198.18.0.2"]);
    assert_eq!(e.next_due(), Some(at(5001)));
    e.tick(at(5001));
    assert_eq!(e.spawner().jobs.last().unwrap().command, "close 198.18.0.2");
}

#[test]
fn the_same_host_opening_twice_at_the_same_moment_is_one_grant_and_one_command() {
    // Two doors with the same sequence open at once; each door once, though the host completed
    // each twice in the same round (a bridge that shows every packet twice, say).
    let mut e = classic(
        "[ssh]\nsequence = 1\ncommand = open %IP%\nstop_command = close %IP%\n[web]\nsequence = 1\ncommand = web %IP%\n",
    );
    for sport in [40000u16, 40001] {
        // Two connections: two different knocks.
        let p = Knock::tcp_syn(Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 1), 1).src_port(sport);
        e.packet(&p.emit(), at(u64::from(sport - 40000)));
    }
    e.flush();
    let commands: Vec<&str> = e.spawner().jobs.iter().map(|j| j.command.as_str()).collect();
    assert_eq!(commands, ["open 198.18.0.2", "web 198.18.0.2"]);
    assert_eq!(e.stats().opens, 2, "one grant per door, not per duplicate");
    assert_eq!(e.pending_stops(), 1);
}

#[test]
fn pending_stops_survive_a_reload_and_run_at_shutdown() {
    let text = "[ssh]\nsequence = 1,2\ncommand = open %IP%\nstop_command = close %IP%\ncmd_timeout = 600\n";
    let mut e = classic(text);
    knock_seq(&mut e, "198.18.0.2", &[1, 2], 0);
    let other = knockd::doors::sequence::knockd_conf::parse("knockd.conf", "[web]\nsequence = 5\n").unwrap();
    e.reconfigure(other).unwrap();
    assert_eq!(e.pending_stops(), 1, "the reload did not drop the stop");
    e.shutdown();
    assert_eq!(e.pending_stops(), 0);
    assert_eq!(e.spawner().jobs.last().unwrap().command, "close 198.18.0.2");
}

#[test]
fn a_reload_keeps_progress_on_unchanged_doors() {
    let mut e = engine();
    e.packet(&tcp_syn("198.18.0.2", 7000), at(0));
    e.packet(&tcp_syn("198.18.0.2", 8000), at(1));
    let same = parsed(CONFIG);
    e.reconfigure(same).unwrap();
    e.packet(&knock_on("198.18.0.2", PortProto::udp(9000)), at(2));
    assert_eq!(e.flush(), 1, "the attempt survived the reload");
}

#[test]
fn one_time_sequences_advance_and_run_out() {
    let dir = TempDir::new("engine-onetime");
    let seqs = dir.write("seqs", "1,2\n3,4\n");
    let text = format!("doors:\n  ot:\n    one_time_sequences: {}\n    command: go %IP%\n", seqs.display());
    let config = parsed(&text);
    let mut e = start(config);
    let ports = |e: &MemoryEngine| e.capture_ports().knocks.iter().map(|p| p.port).collect::<Vec<_>>();
    assert_eq!(ports(&e), [1, 2]);

    knock_seq(&mut e, "2001:db8::2", &[1, 2], 0);
    assert!(e.take_filter_changed());
    assert_eq!(ports(&e), [3, 4], "the next line took effect");
    knock_seq(&mut e, "198.18.0.2", &[1, 2], 10);
    e.flush();
    assert_eq!(e.spawner().jobs.len(), 1, "a used sequence does not open again");
    knock_seq(&mut e, "198.18.0.2", &[3, 4], 20);
    e.flush();
    assert_eq!(e.spawner().jobs.len(), 2);
    assert!(ports(&e).is_empty(), "out of sequences: the door is disabled");
    assert_eq!(std::fs::read_to_string(&seqs).unwrap(), "#1,2\n#3,4\n");
    knock_seq(&mut e, "198.18.0.2", &[3, 4], 30);
    e.flush();
    assert_eq!(e.spawner().jobs.len(), 2);
}

#[test]
fn a_table_removed_from_outside_is_put_back_and_the_grant_retried() {
    let mut e = engine();
    e.firewall_mut().deleted = true; // `nft flush ruleset`
    e.verify(false);
    assert_eq!(e.firewall().installed.len(), 2, "verify reinstalled the ruleset");
    assert!(!e.firewall().deleted);
    // Removed again between two checks: the grant fails, the table is put back, the grant retried.
    e.firewall_mut().deleted = true;
    e.packet(&tcp_syn("198.18.0.3", 7000), at(0));
    e.packet(&tcp_syn("198.18.0.3", 6000), at(1));
    assert_eq!(e.flush(), 1);
    assert_eq!(e.firewall().installed.len(), 3);
    assert_eq!(e.stats().grant_errors, 0);
    e.verify(false);
    assert_eq!(e.firewall().installed.len(), 3, "nothing to do when all is there");
}

#[test]
fn a_start_that_fails_on_a_file_applies_nothing() {
    let text = "doors:\n  ssh:\n    sequence: [1]\n    open: {ports: [22], timeout: 1m}\n  ot:\n    one_time_sequences: /nonexistent/seqs\n    open: {ports: [23], timeout: 1m}\n";
    let config = parsed(text);
    let probe = std::cell::RefCell::new(Vec::new());
    struct Recording<'a>(&'a std::cell::RefCell<Vec<&'static str>>);
    impl knockd::grant::Firewall for Recording<'_> {
        fn install(
            &mut self,
            _: &knockd::grant::nft::Ruleset,
            _: Option<&knockd::grant::nft::Ruleset>,
        ) -> Result<(), knockd::grant::FirewallError> {
            self.0.borrow_mut().push("install");
            Ok(())
        }
        fn add_elements(&mut self, _: &[Element]) -> Result<(), knockd::grant::FirewallError> {
            Ok(())
        }
        fn set_info(
            &mut self,
            _: TableFamily,
            _: &str,
            _: &str,
        ) -> Result<Option<knockd::grant::SetInfo>, knockd::grant::FirewallError> {
            Ok(None)
        }
        fn list_elements(
            &mut self,
            _: TableFamily,
            _: &str,
            _: &str,
        ) -> Result<Vec<knockd::grant::ElementInfo>, knockd::grant::FirewallError> {
            Ok(Vec::new())
        }
        fn delete_elements(&mut self, _: &[Element]) -> Result<(), knockd::grant::FirewallError> {
            Ok(())
        }
        fn remove_table(&mut self, _: &str) -> Result<bool, knockd::grant::FirewallError> {
            Ok(false)
        }
        fn host_ruleset(&mut self) -> Result<knockd::grant::host::HostRuleset, knockd::grant::FirewallError> {
            Ok(Default::default())
        }
        fn drift(&mut self, _: &knockd::grant::nft::Ruleset) -> Result<Option<String>, knockd::grant::FirewallError> {
            Ok(None)
        }
    }
    let err = Engine::start(config, Recording(&probe), MemorySpawner::default())
        .err()
        .expect("a missing file fails the start");
    assert!(err.to_string().contains("/nonexistent/seqs"), "{err}");
    assert!(probe.borrow().is_empty(), "the ruleset was installed before every file was read");
}

#[test]
fn one_source_twice_in_a_round_is_one_element_and_one_bad_set_costs_only_its_grants() {
    let mut e = engine();
    // The same source completes door web twice before the grants are committed.
    knock_seq(&mut e, "198.18.0.2", &[7000, 6000], 0);
    knock_seq(&mut e, "198.18.0.2", &[7000, 6000], 10);
    assert_eq!(e.flush(), 1);
    let web: Vec<&Element> = e.firewall().elements.iter().filter(|el| el.set == "web_v4").collect();
    assert_eq!(web.len(), 1, "one element, not two: {web:?}");

    // ssh_v4 is gone (and stays gone: the table looks intact otherwise); web's grant in the
    // same round still goes through, in a transaction of its own.
    e.firewall_mut().missing_sets = vec!["ssh_v4".into()];
    e.firewall_mut().elements.clear();
    let before = e.firewall().transactions;
    e.packet(&tcp_syn("198.18.0.3", 7000), at(100));
    e.packet(&tcp_syn("198.18.0.3", 8000), at(101));
    e.packet(&knock_on("198.18.0.3", PortProto::udp(9000)), at(102));
    knock_seq(&mut e, "198.18.0.4", &[7000, 6000], 103);
    assert_eq!(e.flush(), 2, "ssh's set is put back and its grant retried; web's never waited for it");
    let sets: Vec<&str> = e.firewall().elements.iter().map(|el| el.set.as_str()).collect();
    assert!(sets.contains(&"web_v4") && sets.contains(&"ssh_v4"), "{sets:?}");
    assert!(e.firewall().transactions - before >= 2, "one transaction per set");
    assert_eq!(e.stats().grant_errors, 0);
}

#[test]
fn a_set_that_stays_missing_fails_alone() {
    let mut e = engine();
    knock_seq(&mut e, "198.18.0.5", &[7000, 6000], 0);
    e.packet(&tcp_syn("198.18.0.6", 7000), at(1));
    e.packet(&tcp_syn("198.18.0.6", 8000), at(2));
    e.packet(&knock_on("198.18.0.6", PortProto::udp(9000)), at(3));
    // A set the daemon cannot put back: `install` fails too.
    e.firewall_mut().missing_sets = vec!["ssh_v4".into()];
    e.firewall_mut().fail_install = true;
    assert_eq!(e.flush(), 1, "web's grant is committed although ssh's set is missing");
    assert_eq!(e.stats().grant_errors, 1);
    assert!(
        e.firewall().elements.iter().any(|el| el.set == "web_v4" && el.addr == "198.18.0.5".parse::<IpAddr>().unwrap())
    );
}
