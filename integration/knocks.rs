//! Knocks as real clients send them, end to end: rotating sequences around a step boundary,
//! from a clock that runs ahead, replayed after a restart; two connections per knock.

use std::time::{Duration, Instant};

use knockd::doors::sequence::Rotating;
use knockd::doors::sequence::rotating;

use crate::support::*;

const SECRET: &str = "a shared secret of some length\n";
const WITHIN: Duration = Duration::from_secs(3);

/// A rotating door `ssh` with a `step`-second step and its secret file.
fn rotating_door(step: u64) -> (ConfigFile, ConfigFile) {
    let secret = ConfigFile::private("secret", SECRET);
    let yaml = format!(
        "doors:\n  ssh:\n    rotating: {{secret_file: {}, step: {step}s, length: 3}}\n    open: {{ports: [22], timeout: 30s}}\n",
        secret.path.display()
    );
    (ConfigFile::new("knockd.yaml", &yaml), secret)
}

/// The door's sequence for step `counter`, as the `knock` client derives it.
fn sequence(counter: u64) -> Vec<PortProto> {
    let r = Rotating {
        secret_files: Vec::new(),
        step: Duration::from_secs(30),
        length: 3,
        ports: knockd::doors::sequence::ROTATING_PORTS,
        proto: Proto::Tcp,
    };
    rotating::sequence(SECRET.trim_end().as_bytes(), "ssh", counter, &r)
}

fn unix_now() -> Duration {
    knockd::daemon::clock::unix_now()
}

/// Sleeps until `offset` after the next boundary of `step`-second steps; returns that step.
fn after_next_boundary(step: u64, offset: Duration) -> u64 {
    let next = unix_now().as_secs() / step + 1;
    let at = Duration::from_secs(next * step) + offset;
    std::thread::sleep(at.saturating_sub(unix_now()));
    next
}

#[test]
fn rotating_knocks_just_after_a_step_boundary_open() {
    let lab = Lab::with_sshd();
    let (config, _secret) = rotating_door(5);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    for (i, offset_ms) in [50u64, 300, 700, 1200].into_iter().enumerate() {
        let src = format!("198.18.0.{}", 10 + i);
        lab.add_client_addr(&format!("{src}/16"));
        let counter = after_next_boundary(5, Duration::from_millis(offset_ms));
        let started = Instant::now();
        knock_all(&lab, &src, SERVER_V4, &sequence(counter));
        let sent = started.elapsed();
        assert!(
            connects_within(&lab.client, &src, ssh_v4(), WITHIN),
            "knocks {offset_ms} ms after the boundary (sent in {sent:?}) did not open:\n{}",
            daemon.log_text()
        );
    }
}

#[test]
fn a_client_whose_clock_runs_2_s_ahead_opens() {
    let lab = Lab::with_sshd();
    let (config, _secret) = rotating_door(5);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    // 1.5 s before a boundary, the client's clock (2 s ahead) is already in the next step.
    let server_step = after_next_boundary(5, Duration::from_millis(3500));
    let client_step = (unix_now() + Duration::from_secs(2)).as_secs() / 5;
    assert_eq!(client_step, server_step + 1, "the test's timing is off");
    knock_all(&lab, CLIENT_V4, SERVER_V4, &sequence(client_step));
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
}

#[test]
fn a_rotating_sequence_used_before_a_restart_is_refused_after_it() {
    let lab = Lab::with_sshd();
    let (config, _secret) = rotating_door(30);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    let counter = unix_now().as_secs() / 30;
    let used = sequence(counter);
    knock_all(&lab, CLIENT_V4, SERVER_V4, &used);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    assert!(daemon.stop().success());

    // Restarted within the sequence's validity: an eavesdropper's replay opens nothing.
    lab.server.nft(&["flush", "set", "inet", "knockd", "ssh_v4"]);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    knock_all(&lab, OTHER_V4, SERVER_V4, &used);
    // Time for a grant to be committed, were there one: a connect right away could beat it.
    std::thread::sleep(Duration::from_millis(500));
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "the replay opened the door");
    assert!(!daemon.logged(&any_open_for(OTHER_V4)), "{}", daemon.log_text());
    // The door itself works: the next step's sequence opens.
    knock_all(&lab, OTHER_V4, SERVER_V4, &sequence(counter + 1));
    assert!(connects_within(&lab.client, OTHER_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
}

#[test]
fn a_browser_knocking_with_two_connections_per_knock_opens() {
    let lab = Lab::with_sshd();
    let yaml = "doors:\n  ssh:\n    sequence: [7000, 8000, 9000]\n    open: {ports: [22], timeout: 30s}\n";
    let (_config, daemon) = lab.knockd(&format!("log: {{level: debug}}\n{yaml}"));
    // Each knock twice, from two sockets (two source ports), as browsers and phone apps send it.
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 7000, 8000, 8000, 9000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    assert!(!daemon.logged(&anyone(|src| log_lines::restarted("ssh", src))), "{}", daemon.log_text());
    // The matcher's words for why the second connection of a knock does not count.
    let repeat = "it repeats the knock that just matched (another connection)";
    assert!(daemon.logged(&log_lines::not_counted("ssh", ip(CLIENT_V4), repeat)), "{}", daemon.log_text());
}
