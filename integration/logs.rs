//! The log tells the story: an attempt that times out says so when it does, `-D` says why a
//! packet did not count, and an error is written once, to stderr only.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use crate::support::frames::Sender;
use crate::support::*;

const WITHIN: Duration = Duration::from_secs(5);

const DOORS: &str = "doors:
  ssh:
    sequence: [7000, 8000, 9000]
    seq_timeout: 2s
    open: {ports: [22], timeout: 30s}
  fin:
    sequence: [7500]
    tcp_flags: fin
    open: {ports: [443], timeout: 30s}
";

#[test]
fn a_timed_out_attempt_is_logged_when_it_ends_and_debug_says_why_knocks_did_not_count() {
    let lab = Lab::new();
    let (_config, daemon) = lab.knockd(DOORS);
    let log = |line: String| daemon.expect_log(&line, WITHIN);
    let client = ip(CLIENT_V4);

    // Two of three knocks, then nothing: the line comes at the timeout, not at the next knock.
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000]);
    log(log_lines::stage("ssh", CLIENT_V4, 2, 3));
    log(log_lines::seq_timeout("ssh", client, 2, 3, secs(2)));
    // The late third knock: -D says why it did not open (in the matcher's words).
    knock(&lab.client, CLIENT_V4, SERVER_V4, 9000, Proto::Tcp);
    log(log_lines::not_counted("ssh", client, "not the first knock, and no attempt is in progress"));

    // Out of order: the attempt restarts, and -D says so.
    knock_tcp(&lab, OTHER_V4, SERVER_V4, &[7000, 9000]);
    log(log_lines::restarted("ssh", ip(OTHER_V4)));

    // A SYN where the door wants FIN.
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7500, Proto::Tcp);
    log(log_lines::not_counted("fin", client, "its TCP flags are not the door's tcp_flags"));

    // A knock addressed to another host on the link (as a router would see it).
    let elsewhere = Ipv4Addr::new(198, 18, 0, 77);
    let knock = Knock::tcp_syn(CLIENT_V4.parse::<Ipv4Addr>().unwrap(), elsewhere, 7000);
    Sender::new(&lab, 0x0800).send(&knock.emit());
    log(log_lines::not_to_this_host(client, elsewhere.into()));

    // None of it opened anything.
    assert!(!daemon.logged(log_lines::OPENED), "{}", daemon.log_text());
}

#[test]
fn debug_writes_each_error_once_to_stderr_and_no_log_file() {
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.yaml", DOORS);
    let logfile = config.path.with_file_name("knockd.log");
    // A start error after logging is set up: the pid file's folder does not exist.
    let pidfile = config.path.with_file_name("missing/knockd.pid");
    let out = Command::new("timeout")
        .args(["20", "ip", "netns", "exec", &lab.server.0, &knockd_path()])
        .args(["-D", "-c", config.path.to_str().unwrap(), "-p", pidfile.to_str().unwrap()])
        .args(["-L", logfile.to_str().unwrap()])
        .args(["--control", config.control().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("missing/knockd.pid")).collect();
    assert_eq!(errors.len(), 1, "one line for one error:\n{stderr}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(!logfile.exists(), "-D writes to stderr only, never to the log file");
}
