//! Classic commands under pressure and as classic configs expect them: a flood of spoofed
//! completions never delays a real stop command, the stop runs `cmd_timeout` after the start
//! command has finished, and a command that fails for lack of privileges says how to give
//! them back.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);

/// The time (seconds since the epoch, from `date +%s.%N`) on the line of `path` that starts
/// with `tag`, once there is one (bounded wait).
fn stamp(path: &Path, tag: &str, within: Duration) -> Option<f64> {
    let find = || {
        let text = std::fs::read_to_string(path).ok()?;
        text.lines().find(|l| l.starts_with(tag))?.split_whitespace().last()?.parse().ok()
    };
    let mut found = None;
    eventually(within, || {
        found = find();
        found.is_some()
    });
    found
}

#[test]
fn two_thousand_spoofed_completions_never_delay_a_real_stop_command() {
    let lab = Lab::new();
    // Each start command takes 0.2 s: 2,000 of them, 16 at a time, would take 25 s.
    let (out, _config, daemon) = lab.knockd_writing(
        "doors:\n  ssh:\n    sequence: [7000]\n    command: \"sleep 0.2; echo start %IP% $(date +%s.%N) >> {out}\"\n    \
         stop_command: \"echo stop %IP% $(date +%s.%N) >> {out}\"\n    cmd_timeout: 1s\n",
    );

    // The real client completes, then 2,000 spoofed sources complete the same door at once.
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    let sender = frames::Sender::new(&lab, 0x0800);
    let server: Ipv4Addr = SERVER_V4.parse().unwrap();
    let packets: Vec<Vec<u8>> = (0..2000).map(|n| Knock::tcp_syn(frames::spoofed(n), server, 7000).emit()).collect();
    for chunk in packets.chunks(64) {
        sender.send_many(chunk);
    }

    let started = stamp(&out.path, "start 198.18.0.2", WITHIN).unwrap_or_else(|| panic!("{}", daemon.log_text()));
    let stopped = stamp(&out.path, "stop 198.18.0.2", Duration::from_secs(10));
    let stopped = stopped.unwrap_or_else(|| panic!("the real stop did not run within 10 s:\n{}", daemon.log_text()));
    let late = stopped - started;
    println!("the real stop ran {late:.3} s after its start command finished (cmd_timeout 1 s)");
    assert!((1.0..2.0).contains(&late), "the stop ran {late:.3} s after its start finished, not 1 s");

    let counters = daemon.counters();
    let opens = counter(&counters, "opens").unwrap();
    assert!(opens > 1000, "the flood reached the daemon: {counters}");
    let refused = counter(&counters, "commands_refused").unwrap();
    assert!(refused > 1000, "the start queue is bounded and its refusals counted: {counters}");
    // The log is not a flood of its own: grant and command lines are rate-limited and summed up.
    daemon.expect_log(&left_out(log_lines::Flood::Grants), WITHIN);
    daemon.expect_log(&left_out(log_lines::Flood::Commands), WITHIN);
    let open_lines = daemon.count(&log_lines::open_command("ssh", ANY, ""));
    assert!(open_lines <= 300, "{open_lines} OPEN lines for {opens} grants");
    assert!(daemon.stop().success());
}

#[test]
fn the_stop_command_runs_cmd_timeout_after_the_start_command_has_finished() {
    let lab = Lab::new();
    let (out, _config, daemon) = lab.knockd_writing(
        "doors:\n  ssh:\n    sequence: [7000]\n    command: \"echo begin $(date +%s.%N) >> {out}; sleep 2; echo end \
         $(date +%s.%N) >> {out}\"\n    stop_command: \"echo stop $(date +%s.%N) >> {out}\"\n    cmd_timeout: 1s\n",
    );
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    let begin = stamp(&out.path, "begin", WITHIN).unwrap_or_else(|| panic!("{}", daemon.log_text()));
    let stop = stamp(&out.path, "stop", Duration::from_secs(8)).unwrap_or_else(|| panic!("{}", daemon.log_text()));
    let end = stamp(&out.path, "end", WITHIN).expect("the start command finished");
    println!("start command {:.3} s, stop {:.3} s after it finished", end - begin, stop - end);
    assert!(stop - end >= 1.0, "the stop ran {:.3} s after the start finished: before cmd_timeout", stop - end);
    assert!(stop - end < 2.0, "the stop ran {:.3} s after the start finished: late", stop - end);
    assert!(daemon.stop().success());
}

#[test]
fn a_command_that_lacks_privileges_says_how_to_restore_them_and_the_key_does() {
    let lab = Lab::new();
    let (out, config, daemon) = lab
        .knockd_writing("doors:\n  ssh:\n    sequence: [7000]\n    command: \"runuser -u nobody -- id -u > {out}\"\n");
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    // As classic configs meet it: runuser cannot switch users without CAP_SETUID/CAP_SETGID.
    let (status, stderr) = ("exited with status 1", "runuser: cannot set groups: Operation not permitted");
    // Likely for lack of privileges, says the line; the hint (the command runner's words) says
    // what gives them back.
    let line = daemon.line_with(&log_lines::command_failed("ssh", ip(CLIENT_V4), status, stderr, Some(ANY)), WITHIN);
    for part in ["without CAP_CHOWN", "CAP_SETUID", "`commands: {privileges: full}`", "--keep-capabilities"] {
        assert!(line.contains(part), "`{part}` missing: {line}");
    }
    assert!(daemon.stop().success());

    config.rewrite(&format!("commands: {{privileges: full}}\n{}", config.text()));
    let daemon = Daemon::start(&lab.server, &config, &[]);
    assert!(daemon.log_text().contains(log_lines::COMMANDS_FULL_PRIVILEGES), "{}", daemon.log_text());
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    let ran = eventually(WITHIN, || std::fs::read_to_string(&out.path).is_ok_and(|t| t.trim() == "65534"));
    assert!(ran, "runuser worked: {:?}\n{}", std::fs::read_to_string(&out.path), daemon.log_text());
    // The daemon itself still keeps only its two capabilities.
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    assert!(status.lines().any(|l| l == "CapEff:\t0000000000003000"), "{status}");
    assert!(daemon.stop().success());
}
