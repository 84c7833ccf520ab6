//! The `knock` client against the real daemon, across the namespaces.

use std::time::{Duration, Instant};

use crate::support::*;

/// A door with a mixed TCP/UDP sequence, and one that is UDP only.
const CONFIG: &str = "doors:
  ssh:
    sequence: [7000, \"8000/udp\", 9000]
    seq_timeout: 5s
    open: {ports: [22], timeout: 30s}
  udponly:
    sequence: [\"5001/udp\", \"5002/udp\"]
    open: {ports: [2222], timeout: 30s}
";

fn setup() -> (Lab, Daemon, ConfigFile, Echo, Echo) {
    let lab = Lab::new();
    let ssh = lab.sshd();
    let other = Echo::start(&lab.server, "[::]:2222".parse().unwrap());
    let (config, daemon) = lab.knockd(CONFIG);
    (lab, daemon, config, ssh, other)
}

#[test]
fn the_client_opens_the_door_over_ipv4_and_ipv6() {
    let (lab, daemon, _config, _ssh, _other) = setup();
    assert!(is_dropped(&lab.client, CLIENT_V4, at(SERVER_V4, 22), DROP_WAIT));
    let out = knock_client(&lab.client, &["-v", SERVER_V4, "7000", "8000:udp", "9000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hitting tcp 198.18.0.1:7000\nhitting udp 198.18.0.1:8000\nhitting tcp 198.18.0.1:9000\n"
    );
    assert!(
        connects_within(&lab.client, CLIENT_V4, at(SERVER_V4, 22), Duration::from_secs(3)),
        "{}",
        daemon.log_text()
    );

    assert!(is_dropped(&lab.client, CLIENT_V6, at(SERVER_V6, 22), DROP_WAIT));
    // Two addresses on the client: name the source, as the kernel may pick either. The ports
    // as one comma-separated argument, as a knockd.conf Sequence line writes them.
    let out = knock_client(&lab.client, &["-6", "-d", "50", "--source", CLIENT_V6, SERVER_V6, "7000,8000/udp,9000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        connects_within(&lab.client, CLIENT_V6, at(SERVER_V6, 22), Duration::from_secs(3)),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn udp_flag_and_wait_open() {
    let (lab, daemon, _config, _ssh, _other) = setup();
    let started = Instant::now();
    let out = knock_client(&lab.client, &["-u", "--wait-open", "2222", SERVER_V4, "5001", "5002"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), daemon.log_text());
    assert!(started.elapsed() < Duration::from_secs(5));
    // The wrong knock: --wait-open gives up within its bound and says so, exit status 1.
    let started = Instant::now();
    let out = knock_client(
        &lab.client,
        &["--wait-open", "22", "--wait-timeout", "1", "--source", OTHER_V4, SERVER_V4, "9000", "8000:udp", "7000"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("198.18.0.1:22 did not open within 1s"));
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn source_picks_who_gets_in() {
    let (lab, daemon, _config, _ssh, _other) = setup();
    let out =
        knock_client(&lab.client, &["--source", OTHER_V4, "--wait-open", "22", SERVER_V4, "7000", "8000:udp", "9000"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), daemon.log_text());
    assert!(connect(&lab.client, OTHER_V4, at(SERVER_V4, 22), Duration::from_secs(2)).is_ok());
    assert!(is_dropped(&lab.client, CLIENT_V4, at(SERVER_V4, 22), DROP_WAIT), "only --source got in");
    daemon.expect_log(&opened("ssh", OTHER_V4, "22/tcp", secs(30)), Duration::from_secs(5));
}

#[test]
fn unreachable_or_unresolvable_hosts_exit_1() {
    let lab = Lab::new();
    // No route to the resolver from inside the namespace: resolution fails at once, locally.
    let out = knock_client(&lab.client, &["no-such-host.invalid", "7000"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot resolve no-such-host.invalid"));
    // 198.19.0.1 is in the test range but has no route in the namespace: the hit cannot be sent.
    let out = knock_client(&lab.client, &["198.19.0.1", "7000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot send a TCP knock to 198.19.0.1:7000"));
}
