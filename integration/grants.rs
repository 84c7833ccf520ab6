//! Grants nobody can cut short, and sets a flood cannot overfill: an admin's long grant
//! survives a knock with a shorter timeout, and a door's set stops at its `size`, saying so
//! once, while the daemon keeps serving.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::support::frames::{Sender, spoofed};
use crate::support::*;

const WITHIN: Duration = Duration::from_secs(5);

#[test]
fn a_knock_never_shortens_an_admins_longer_grant() {
    let lab = Lab::new();
    let (config, daemon) = lab.knockd("doors:\n  ssh:\n    sequence: [7000]\n    open: {ports: [22], timeout: 30s}\n");
    ask(&lab.server, &config, &["grant", CLIENT_V4, "--door", "ssh", "--for", "1h"]);
    assert!(eventually(WITHIN, || lab.server.set_elements("knockd", "ssh_v4").contains("timeout 1h")));
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    daemon.expect_log(&opened("ssh", CLIENT_V4, "22/tcp", secs(59 * 60)), WITHIN);
    let set = lab.server.set_elements("knockd", "ssh_v4");
    assert!(set.contains("timeout 1h") && set.contains("comment \"admin uid 0\""), "kept, with who opened it: {set}");
    // A grant that outlasts the live one replaces it, as before.
    ask(&lab.server, &config, &["grant", CLIENT_V4, "--door", "ssh", "--for", "2h"]);
    assert!(eventually(WITHIN, || lab.server.set_elements("knockd", "ssh_v4").contains("timeout 2h")));
}

#[test]
fn a_flood_of_spoofed_grants_fills_the_set_to_its_size_and_says_so_once() {
    let lab = Lab::with_sshd();
    let (_config, daemon) = lab.knockd(
        "nftables: {set_size: 16}\ndoors:\n  ssh:\n    sequence: [7000]\n    open: {ports: [22], timeout: 3s}\n",
    );
    assert!(lab.server.nft(&["list", "set", "inet", "knockd", "ssh_v4"]).contains("size 16"));
    let sender = Sender::new(&lab, 0x0800);
    let server: Ipv4Addr = SERVER_V4.parse().unwrap();
    for n in 0..40u32 {
        sender.send(&Knock::tcp_syn(spoofed(n), server, 7000).emit());
        std::thread::sleep(Duration::from_millis(2));
    }
    let full = "the set is full";
    daemon.expect_log(full, WITHIN);
    let set = lab.server.set_elements("knockd", "ssh_v4");
    assert_eq!(set.matches("timeout").count(), 16, "{set}");
    assert_eq!(daemon.count(full), 1, "said once: {}", daemon.log_text());
    // Once the grants end (and the kernel has collected them), a real client gets in.
    let got_in = eventually(Duration::from_secs(20), || {
        knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
        connects_within(&lab.client, CLIENT_V4, ssh_v4(), Duration::from_millis(500))
    });
    assert!(got_in, "{}", daemon.log_text());
    daemon.expect_log(&log_lines::set_has_room(&"inet", "knockd", "ssh_v4"), WITHIN);
}

#[test]
fn a_drop_policy_put_on_knockds_chain_is_repaired() {
    let lab = Lab::new();
    let _web = Echo::start(&lab.server, "0.0.0.0:80".parse().unwrap());
    let (_config, daemon) = lab.knockd("doors:\n  ssh:\n    sequence: [7000]\n    open: {ports: [22], timeout: 30s}\n");
    let web = at(SERVER_V4, 80);
    assert!(connect(&lab.client, CLIENT_V4, web, WITHIN).is_ok(), "knockd's chain leaves other ports alone");
    lab.server.nft(&["add", "chain", "inet", "knockd", "input", "{", "policy", "drop", ";", "}"]);
    let changed = "the policy, hook or priority of chain inet knockd input was changed";
    daemon.expect_log(&log_lines::putting_back(changed), WITHIN);
    assert!(eventually(WITHIN, || lab
        .server
        .nft(&["list", "chain", "inet", "knockd", "input"])
        .contains("policy accept")));
    assert!(connects_within(&lab.client, CLIENT_V4, web, WITHIN), "port 80 is reachable again");
}
