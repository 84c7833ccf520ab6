//! The core promise, seen from a client: closed before the knock, open after it for the
//! knocker only, closed again when the kernel expires the grant.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::support::*;

const OPEN_WITHIN: Duration = Duration::from_secs(3);

/// The example door with short timeouts so the suite runs in seconds.
fn config(open_timeout: &str) -> String {
    format!(
        "log: {{level: debug}}
doors:
  ssh:
    sequence: [7000, \"8000/udp\", 9000]
    seq_timeout: 2s
    tcp_flags: syn
    open:
      ports: [\"22/tcp\"]
      timeout: {open_timeout}
"
    )
}

/// The door's sequence.
fn sequence() -> [PortProto; 3] {
    [PortProto::tcp(7000), PortProto::udp(8000), PortProto::tcp(9000)]
}

/// Waits (bounded) until `addr` has left the door's set.
fn wait_until_expired(lab: &Lab, set: &str, addr: &str, within: Duration) -> bool {
    eventually(within, || !lab.server.set_elements("knockd", set).contains(addr))
}

#[test]
fn knock_opens_for_the_knocker_only_until_the_kernel_expires_it() {
    let lab = Lab::with_sshd();
    assert!(
        connect(&lab.client, CLIENT_V4, ssh_v4(), Duration::from_secs(2)).is_ok(),
        "baseline: the service answers without knockd"
    );

    let (_config, daemon) = lab.knockd(&config("3s"));
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "closed before the knock");

    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence());
    let granted_at = Instant::now();
    assert!(
        connects_within(&lab.client, CLIENT_V4, ssh_v4(), OPEN_WITHIN),
        "open after the knock:\n{}",
        daemon.log_text()
    );
    let mut session =
        connect(&lab.client, CLIENT_V4, ssh_v4(), Duration::from_secs(2)).expect("a session during the grant");
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "another address of the same host stays out");
    assert!(is_dropped(&lab.client, CLIENT_V6, ssh_v6(), DROP_WAIT), "the knocker's IPv6 address was not granted");

    let elements = lab.server.set_elements("knockd", "ssh_v4");
    assert!(elements.contains("198.18.0.2") && elements.contains("timeout 3s"), "{elements}");
    let stage = |n| log_lines::stage("ssh", CLIENT_V4, n, 3);
    for line in [stage(1), stage(2), opened("ssh", CLIENT_V4, "22/tcp", secs(3))] {
        daemon.expect_log(&line, Duration::from_secs(2));
    }

    assert!(
        wait_until_expired(&lab, "ssh_v4", "198.18.0.2", Duration::from_secs(10)),
        "the kernel removes the element"
    );
    let lifetime = granted_at.elapsed();
    assert!(lifetime >= Duration::from_millis(2500), "the grant lasted only {lifetime:?}");
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "closed again after the timeout");
    // The log says so when it happens, and said OPEN once.
    daemon.expect_log(&log_lines::closed_again("ssh", CLIENT_V4, "22/tcp", secs(3)), Duration::from_secs(2));
    assert_eq!(daemon.count(log_lines::OPENED), 1, "one line per grant:\n{}", daemon.log_text());

    session.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    session.write_all(b"still here").unwrap();
    let mut buf = [0u8; 10];
    session.read_exact(&mut buf).expect("the established session survives the expiry");
    assert_eq!(&buf, b"still here");
    drop(daemon);
}

#[test]
fn ipv6_knock_opens_over_ipv6() {
    let lab = Lab::with_sshd();
    let (_config, daemon) = lab.knockd(&config("30s"));
    assert!(is_dropped(&lab.client, CLIENT_V6, ssh_v6(), DROP_WAIT));

    knock_all(&lab, CLIENT_V6, SERVER_V6, &sequence());
    assert!(connects_within(&lab.client, CLIENT_V6, ssh_v6(), OPEN_WITHIN), "{}", daemon.log_text());
    assert!(is_dropped(&lab.client, OTHER_V6, ssh_v6(), DROP_WAIT));
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "an IPv6 grant opens nothing for IPv4");
    assert!(lab.server.set_elements("knockd", "ssh_v6").contains("2001:db8::2"));
}

#[test]
fn wrong_or_slow_sequences_do_not_open() {
    let lab = Lab::with_sshd();
    let (_config, daemon) = lab.knockd(&config("30s"));

    let (tcp, udp) = (PortProto::tcp, PortProto::udp);
    let attempts: [(&str, &[PortProto]); 4] = [
        ("reversed", &[tcp(9000), udp(8000), tcp(7000)]),
        ("a knock missing", &[tcp(7000), tcp(9000)]),
        ("wrong protocol", &[tcp(7000), tcp(8000), tcp(9000)]),
        ("the first knock again in the middle", &[tcp(7000), udp(8000), tcp(7000), tcp(9000)]),
    ];
    for (what, ports) in attempts {
        knock_all(&lab, CLIENT_V4, SERVER_V4, ports);
        assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "{what} opened the door");
    }
    // Too slow: the last knock arrives after seq_timeout (2s) from the first.
    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence()[..2]);
    std::thread::sleep(Duration::from_millis(2300));
    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence()[2..]);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "a slow sequence opened the door");
    assert!(!daemon.logged(log_lines::OPENED), "{}", daemon.log_text());

    // The same daemon still opens for a correct knock: the refusals above were the matcher's.
    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence());
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), OPEN_WITHIN), "{}", daemon.log_text());
}

#[test]
fn two_hundred_interleaved_knockers_all_get_in() {
    let lab = Lab::with_sshd();
    let sources: Vec<String> = (1..=200).map(|i| format!("198.18.{}.{}", 10 + i / 100, i % 100 + 1)).collect();
    for src in &sources {
        lab.add_client_addr(&format!("{src}/16"));
    }
    let (_config, daemon) = lab.knockd(&config("60s").replace("seq_timeout: 2s", "seq_timeout: 20s"));

    // Round-robin: every source's first knock, then every second knock, then every third.
    let server: IpAddr = SERVER_V4.parse().unwrap();
    lab.client.run(|| {
        for p in sequence() {
            for src in &sources {
                send_knock(src.parse().unwrap(), SocketAddr::new(server, p.port), p.proto).unwrap();
            }
        }
    });
    let opened = sources.iter().filter(|src| connects_within(&lab.client, src, ssh_v4(), OPEN_WITHIN)).count();
    assert_eq!(opened, sources.len(), "{}", daemon.log_text());
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "a source that did not knock stays out");
}

#[test]
fn sigterm_exits_cleanly_and_a_restart_keeps_grants() {
    let lab = Lab::with_sshd();
    let (config, daemon) = lab.knockd(&config("8s"));
    let installed = lab.server.nft(&["list", "chain", "inet", "knockd", "input"]);

    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence());
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), OPEN_WITHIN));
    let status = daemon.stop();
    assert!(status.success(), "SIGTERM exit status: {status}");

    // Stopped: the grant is the kernel's now, and everyone else is still kept out.
    assert!(connect(&lab.client, CLIENT_V4, ssh_v4(), Duration::from_secs(2)).is_ok());
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT));

    let daemon = Daemon::start(&lab.server, &config, &[]);
    assert_eq!(
        lab.server.nft(&["list", "chain", "inet", "knockd", "input"]),
        installed,
        "the restart re-created the same chain, once"
    );
    let tables = lab.server.nft(&["list", "tables"]);
    assert_eq!(tables.trim(), "table inet knockd");
    assert!(lab.server.set_elements("knockd", "ssh_v4").contains("198.18.0.2"), "the grant survived the restart");
    assert!(connect(&lab.client, CLIENT_V4, ssh_v4(), Duration::from_secs(2)).is_ok());
    // The new daemon did not make the grant, and still says when it ends.
    daemon.expect_log(&log_lines::closed_again("ssh", CLIENT_V4, "22/tcp", secs(8)), Duration::from_secs(10));
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "closed again after the timeout");
    drop(daemon);
}

#[test]
fn the_interface_option_limits_where_knocks_are_heard() {
    let lab = Lab::with_sshd();
    let config = ConfigFile::new("knockd.yaml", &config("30s"));

    let daemon = Daemon::start(&lab.server, &config, &["-i", "lo"]);
    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence());
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "a knock on another interface was heard");
    drop(daemon);

    let daemon = Daemon::start(&lab.server, &config, &["-i", &lab.server_if]);
    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence());
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), OPEN_WITHIN), "{}", daemon.log_text());
    drop(daemon);

    // A named interface that does not exist is waited for, loudly, and hears nothing meanwhile.
    let missing = Daemon::start(&lab.server, &config, &["-i", "nosuch0"]);
    assert!(missing.log_text().contains(&log_lines::interface_missing("nosuch0")), "{}", missing.log_text());
    knock_all(&lab, OTHER_V4, SERVER_V4, &sequence());
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "heard a knock on no interface");
}

#[test]
fn a_bad_config_exits_1_and_touches_no_firewall() {
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.yaml", &config("30s").replace("[\"22/tcp\"]", "[\"70000/tcp\"]"));
    let mut daemon = Daemon::spawn(&lab.server, &config, &[]);
    let status = daemon.wait_exit(Duration::from_secs(10)).expect("exits by itself");
    assert_eq!(status.code(), Some(1));
    let log = daemon.log_text();
    assert!(
        log.contains("knockd.yaml:8:") && log.contains("doors.ssh.open.ports[0]") && log.contains("70000"),
        "{log}"
    );
    assert_eq!(lab.server.nft(&["list", "ruleset"]).trim(), "", "nothing was applied");
}

#[test]
fn sighup_reloads_and_a_broken_reload_keeps_the_running_config() {
    let lab = Lab::with_sshd();
    let (config, daemon) = lab.knockd(&config("30s"));

    config.rewrite(&config_text_with_sequence("[6000, 6001]"));
    daemon.signal(libc::SIGHUP);
    daemon.expect_log(&log_lines::reloaded(1), Duration::from_secs(5));
    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence());
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "the old sequence still opens");

    config.rewrite("doors: [this is not a door]\n");
    daemon.signal(libc::SIGHUP);
    daemon.expect_log(&log_lines::reload_failed(ANY), Duration::from_secs(5));
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[6000, 6001]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), OPEN_WITHIN), "{}", daemon.log_text());
}

#[test]
fn a_reload_that_moves_the_state_dir_is_refused_and_the_running_config_stays() {
    let lab = Lab::with_sshd();
    let (config, daemon) = lab.knockd(&config("30s"));
    let running = config.state_dir();
    let moved = running.with_file_name("moved-state");
    config.rewrite(&format!("{}state_dir: {}\n", config_text_with_sequence("[6000, 6001]"), moved.display()));
    let out = admin(&lab.server, &config, &["reload"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = log_lines::state_dir_moved(&running, &moved);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&said), "{out:?}");
    assert!(daemon.logged(&log_lines::reload_failed(&said)), "{}", daemon.log_text());
    // The running config stays: its sequence still opens, the new one does not.
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[6000, 6001]);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "the refused config's sequence opened");
    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence());
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), OPEN_WITHIN), "{}", daemon.log_text());
}

fn config_text_with_sequence(sequence: &str) -> String {
    format!("doors:\n  ssh:\n    sequence: {sequence}\n    open: {{ports: [22], timeout: 30s}}\n")
}

#[test]
fn knocking_again_restarts_the_timeout() {
    let lab = Lab::new();
    let (_config, daemon) = lab.knockd(&config("3s"));
    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence());
    let open = opened("ssh", CLIENT_V4, "22/tcp", secs(3));
    daemon.expect_log(&open, Duration::from_secs(3));
    let first = Instant::now();
    std::thread::sleep(Duration::from_millis(2000));
    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence());
    // Bounded: the second grant is logged within a few seconds or the test fails.
    eventually(Duration::from_secs(3), || daemon.count(&open) >= 2);
    assert_eq!(daemon.count(&open), 2, "{}", daemon.log_text());
    // Past the first grant's expiry, the element is still there: its timeout was restarted.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(first.elapsed()) + Duration::from_millis(500));
    let elements = lab.server.set_elements("knockd", "ssh_v4");
    assert!(elements.contains("198.18.0.2"), "the refreshed grant expired with the first one: {elements}");
    assert_eq!(elements.matches("198.18.0.2").count(), 1, "one element, not two: {elements}");
    assert!(wait_until_expired(&lab, "ssh_v4", "198.18.0.2", Duration::from_secs(5)), "and it still expires");
}
