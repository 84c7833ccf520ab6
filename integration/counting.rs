//! Every knock counts once, and only knocks addressed to this host count: copies of one frame
//! (a bridge, a VLAN interface, a retransmitted SYN) are one knock; traffic a router forwards
//! and frames for another host's link address are none.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use knockd::packet::ipv4::Ipv4Mut;
use knockd::packet::tcp::TcpMut;

use crate::support::frames::Sender;
use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);
const DOOR: &str =
    "doors:\n  ssh: {sequence: [7000, 8000, 9000], seq_timeout: 20s, open: {ports: [22], timeout: 30s}}\n";

#[test]
fn behind_a_bridge_each_knock_counts_once() {
    let lab = Lab::new();
    // The server's address moves to a bridge with the veth as its port: the daemon, listening
    // on every interface, sees each frame on the port and again on the bridge.
    lab.server.ip(&["link", "add", "br0", "type", "bridge"]);
    lab.server.ip(&["link", "set", &lab.server_if, "master", "br0"]);
    lab.server.ip(&["addr", "flush", "dev", &lab.server_if]);
    lab.server.ip(&["addr", "add", &format!("{SERVER_V4}/16"), "dev", "br0", "nodad"]);
    lab.server.ip(&["link", "set", "br0", "up"]);
    let _echo = lab.sshd();
    let (_config, daemon) = lab.knockd(DOOR);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh(SERVER_V4), WITHIN), "{}", daemon.log_text());
    assert!(!daemon.logged(&anyone(|src| log_lines::restarted("ssh", src))), "{}", daemon.log_text());
}

/// On a host with a VLAN interface, the parent interface shows each tagged frame too (the
/// kernel strips the tag before packet sockets see it), so every knock arrives twice. This
/// machine's kernel has no 802.1Q support (CONFIG_VLAN_8021Q is off), so the sub-interface
/// cannot be made here; the frames it would show are sent instead: each knock plain and tagged.
#[test]
fn a_knock_seen_tagged_and_untagged_counts_once() {
    let lab = Lab::with_sshd();
    let (_config, daemon) = lab.knockd(DOOR);
    let (plain, tagged) = (Sender::new(&lab, 0x0800), Sender::new(&lab, 0x8100));
    let (src, dst): (Ipv4Addr, Ipv4Addr) = (CLIENT_V4.parse().unwrap(), SERVER_V4.parse().unwrap());
    for (i, port) in [7000, 8000, 9000].into_iter().enumerate() {
        let syn = Knock::tcp_syn(src, dst, port).src_port(45000 + i as u16).seq(99).emit();
        plain.send(&syn);
        tagged.send(&[&[0x00, 0x0a, 0x08, 0x00][..], &syn].concat()); // VLAN 10, then IPv4
    }
    assert!(connects_within(&lab.client, CLIENT_V4, ssh(SERVER_V4), WITHIN), "{}", daemon.log_text());
    assert!(!daemon.logged(&anyone(|src| log_lines::restarted("ssh", src))), "{}", daemon.log_text());
}

#[test]
fn a_client_whose_syns_are_retransmitted_still_gets_in() {
    let lab = Lab::new();
    // The knock ports drop SYNs (as a firewall would), so a client that connects with a timeout
    // retransmits each one after a second.
    lab.server.nft(&["add", "table", "inet", "admin"]);
    lab.server.nft(&["add", "chain", "inet", "admin", "in", "{ type filter hook input priority -10; }"]);
    lab.server.nft(&["add", "rule", "inet", "admin", "in", "tcp", "dport", "{ 7000, 8000, 9000 }", "drop"]);
    let _echo = lab.sshd();
    let (_config, daemon) = lab.knockd(DOOR);
    for port in [7000, 8000, 9000] {
        let to = at(SERVER_V4, port);
        assert!(connect(&lab.client, CLIENT_V4, to, Duration::from_millis(1500)).is_err(), "the knock port answers");
    }
    assert!(connects_within(&lab.client, CLIENT_V4, ssh(SERVER_V4), WITHIN), "{}", daemon.log_text());
    let counted = daemon.logged(&log_lines::stage("ssh", CLIENT_V4, 3, 3)) || daemon.logged(&any_open_for(CLIENT_V4));
    assert!(counted, "{}", daemon.log_text());
}

#[test]
fn repeated_packets_are_one_knock_and_repeated_ports_still_work() {
    let lab = Lab::with_sshd();
    let (_config, daemon) = lab.knockd(
        "doors:\n  ssh: {sequence: [7000, 7000, 8000, 9000], seq_timeout: 20s, open: {ports: [22], timeout: 30s}}\n",
    );
    // Raw frames: every packet twice, each knock its own connection (source port, sequence).
    let sender = Sender::new(&lab, 0x0800);
    let (src, dst): (Ipv4Addr, Ipv4Addr) = (OTHER_V4.parse().unwrap(), SERVER_V4.parse().unwrap());
    for (sport, port) in [(41000, 7000), (41001, 7000), (41002, 8000), (41003, 9000)] {
        let syn = Knock::tcp_syn(src, dst, port).src_port(sport).seq(u32::from(sport) * 7).emit();
        sender.send(&syn);
        sender.send(&syn);
    }
    assert!(connects_within(&lab.client, OTHER_V4, ssh(SERVER_V4), WITHIN), "{}", daemon.log_text());
    // And the knock client, one connection per knock, on the repeated port.
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh(SERVER_V4), WITHIN), "{}", daemon.log_text());
}

#[test]
fn traffic_for_other_hosts_is_not_a_knock() {
    let lab = Lab::with_sshd();
    let (_config, daemon) = lab.knockd(DOOR);
    let (src, server): (Ipv4Addr, Ipv4Addr) = (CLIENT_V4.parse().unwrap(), SERVER_V4.parse().unwrap());
    // A router's view: frames to its own link address, for an address that is not its own.
    let to_server = Sender::new(&lab, 0x0800);
    let elsewhere: Ipv4Addr = "198.18.77.1".parse().unwrap();
    for (i, port) in [7000, 8000, 9000].into_iter().enumerate() {
        to_server.send(&Knock::tcp_syn(src, elsewhere, port).src_port(42000 + i as u16).seq(1).emit());
    }
    // Frames for the server's address, but to another host's link address.
    let other_host = Sender::to_mac(&lab, 0x0800, [0x02, 0, 0, 0, 0, 0x99]);
    for (i, port) in [7000, 8000, 9000].into_iter().enumerate() {
        other_host.send(&Knock::tcp_syn(src, server, port).src_port(43000 + i as u16).seq(1).emit());
    }
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh(SERVER_V4), DROP_WAIT), "{}", daemon.log_text());
    daemon.expect_log(&log_lines::not_to_this_host(src.into(), elsewhere.into()), WITHIN);
    assert!(!daemon.logged(&log_lines::stage("ssh", CLIENT_V4, 1, 3)), "{}", daemon.log_text());
    // The same knocks, addressed to this host, open.
    for (i, port) in [7000, 8000, 9000].into_iter().enumerate() {
        to_server.send(&Knock::tcp_syn(src, server, port).src_port(44000 + i as u16).seq(1).emit());
    }
    assert!(connects_within(&lab.client, CLIENT_V4, ssh(SERVER_V4), WITHIN), "{}", daemon.log_text());
}

/// A flood of frames for other hosts (what a router or a bridge sees) is held back in the log
/// like a flood of knocks, and the log says how many lines it left out: also once the flood
/// has stopped, and every one of them.
#[test]
fn a_flood_for_other_hosts_is_held_back_in_the_log_and_summed_up() {
    let lab = Lab::new();
    let (_config, daemon) = lab.knockd(DOOR);
    let sender = Sender::new(&lab, 0x0800);
    let elsewhere: Ipv4Addr = "198.18.77.1".parse().unwrap();
    // Five times the knock lines a second the log takes, from as many sources.
    let flood: Vec<Vec<u8>> =
        (0..1000).map(|n| Knock::tcp_syn(crate::support::frames::spoofed(n), elsewhere, 7000).emit()).collect();
    for chunk in flood.chunks(64) {
        sender.send_many(chunk);
    }
    let summary = left_out(log_lines::Flood::Knocks);
    daemon.expect_log(&summary, WITHIN);
    // Each frame the daemon saw is a line, or counted in a summary.
    let line = anyone(|src| log_lines::not_to_this_host(src, elsewhere.into()));
    let said = || {
        let held: u64 = daemon
            .log_text()
            .lines()
            .filter(|l| fits(l, &summary))
            .filter_map(|l| l.split("] ").nth(1)?.split(' ').next()?.parse::<u64>().ok())
            .sum();
        daemon.count(&line) as u64 + held
    };
    let seen = || counter(&daemon.counters(), "not_for_this_host").unwrap_or(0);
    assert!(eventually(WITHIN, || said() == seen()), "{} said, {} seen: {}", said(), seen(), daemon.log_text());
    assert!(daemon.count(&line) < 1000, "held back: {}", daemon.log_text());
}

#[test]
fn with_ipv4_only_an_ipv6_packet_in_an_ipv4_frame_never_passes_the_filter() {
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.yaml", DOOR);
    let daemon = Daemon::start(&lab.server, &config, &["-4"]);
    // IPv6 bytes in a frame that says IPv4, laid out so that an IPv4 reading finds no fragment
    // offset, protocol TCP and (header length 0) port 7000.
    let (client, server): (Ipv6Addr, Ipv6Addr) = (CLIENT_V6.parse().unwrap(), SERVER_V6.parse().unwrap());
    let mut packet = Knock::tcp_syn(client, server, 7000).emit();
    let mut as_ipv4 = Ipv4Mut::new(&mut packet);
    as_ipv4.set_flags_and_offset(0);
    as_ipv4.set_protocol(6);
    TcpMut::new(&mut packet).set_dst_port(7000);
    let sender = Sender::new(&lab, 0x0800);
    for _ in 0..5 {
        sender.send(&packet);
    }
    // A real knock afterwards, so the counters below are read once everything has arrived.
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    daemon.expect_log(&log_lines::stage("ssh", CLIENT_V4, 1, 3), WITHIN);
    let counters = daemon.counters();
    assert!(counters.contains(&format!("{}packets=1 kernel_packets=1 ", log_lines::COUNTERS)), "{counters}");
}
