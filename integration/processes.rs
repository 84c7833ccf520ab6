//! What classic commands inherit and how they run: no descriptor of the daemon's, no waiting
//! behind another door's hung command, no thread left behind by a command's background child.

use std::time::{Duration, Instant};

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);

/// Waits (bounded) until `path` holds `needle`; returns the file's text.
fn wait_for(path: &std::path::Path, needle: &str, within: Duration) -> String {
    file_contains(path, needle, within);
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_command_inherits_no_descriptor_of_the_daemon() {
    let lab = Lab::new();
    // An nftables door too, so the netlink sockets exist; `ls` lists what it inherited (and
    // the directory it reads, as its fd 3).
    let (out, _config, daemon) = lab.knockd_writing(
        "doors:\n  ssh:\n    sequence: [7000]\n    open: {ports: [22], timeout: 30s}\n    \
         command: \"ls -l /proc/self/fd > {out}; echo done >> {out}\"\n",
    );
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    let text = wait_for(&out.path, "done", WITHIN);
    let fds: Vec<&str> = text.lines().filter_map(|l| l.split_once(" -> ")?.0.split_whitespace().last()).collect();
    assert_eq!(
        fds,
        ["0", "1", "2", "3"],
        "the command inherited more than stdin, stdout, stderr:\n{text}\n{}",
        daemon.log_text()
    );
    assert!(!text.contains("socket:"), "{text}");
}

#[test]
fn a_hung_start_command_does_not_hold_back_another_doors_stop() {
    let lab = Lab::new();
    let (out, _config, daemon) = lab.knockd_writing(
        "doors:\n  hung:\n    sequence: [6000]\n    command: \"sleep 30\"\n  \
         quick:\n    sequence: [7000]\n    command: \"echo start %IP% >> {out}\"\n    \
         stop_command: \"echo stop %IP% >> {out}\"\n    cmd_timeout: 1s\n",
    );
    knock(&lab.client, CLIENT_V4, SERVER_V4, 6000, Proto::Tcp);
    daemon.expect_log(&log_lines::running("hung", ip(CLIENT_V4), "sleep 30"), WITHIN);
    let knocked = Instant::now();
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    let text = wait_for(&out.path, "stop 198.18.0.2", Duration::from_secs(5));
    assert!(text.contains("start 198.18.0.2\nstop 198.18.0.2"), "{text}\n{}", daemon.log_text());
    eprintln!("the stop ran {:?} after the knock (cmd_timeout 1s)", knocked.elapsed());
}

#[test]
fn commands_that_leave_a_background_child_holding_stderr_leave_no_thread() {
    let lab = Lab::new();
    let (_config, daemon) =
        lab.knockd("doors:\n  bg:\n    sequence: [7000]\n    command: \"sleep 33 & echo started\"\n");
    // Twenty sources: one source's same command, while it still runs, runs once.
    for n in 1..=20 {
        let src = format!("198.18.1.{n}");
        lab.add_client_addr(&format!("{src}/16"));
        knock(&lab.client, &src, SERVER_V4, 7000, Proto::Tcp);
    }
    let ran = anyone(|src| log_lines::running("bg", src, "sleep 33"));
    eventually(WITHIN, || daemon.count(&ran) >= 20);
    assert_eq!(daemon.count(&ran), 20, "{}", daemon.log_text());
    std::thread::sleep(Duration::from_millis(300));
    let threads = proc_status(daemon.pid(), "Threads:");
    assert!(threads <= 3, "{threads} threads: one per command still blocked on a background child's stderr?");
    // The background sleeps (of this test alone: 33 s) are the test's to end.
    let _ = std::process::Command::new("pkill").args(["-f", "^sleep 33$"]).status();
}
