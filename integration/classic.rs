//! Classic knockd compatibility, end to end: knockd.conf files, command strings run for real,
//! one-time sequences, signals and the classic command line.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);

/// Debian's default knockd.conf, as shipped, with its iptables commands (iptables-nft here).
const DEBIAN_DEFAULT: &str = include_str!("../tests/fixtures/debian-knockd.conf");

#[test]
fn the_debian_default_config_opens_and_closes_with_iptables() {
    let lab = Lab::with_sshd();
    // The admin's firewall: everything is dropped unless a rule accepts it.
    lab.server.run(|| cmd("iptables", &["-P", "INPUT", "DROP"]));
    let (_config, daemon) = lab.knockd_conf(DEBIAN_DEFAULT);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT));

    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    let rules = lab.server.run(|| cmd("iptables", &["-S", "INPUT"]));
    assert!(rules.contains("-A INPUT -s 198.18.0.2/32 -p tcp -m tcp --dport 22 -j ACCEPT"), "{rules}");
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT));
    daemon.expect_log(&log_lines::running("openSSH", ip(CLIENT_V4), "/sbin/iptables -A INPUT -s 198.18.0.2"), WITHIN);

    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[9000, 8000, 7000]);
    let closed = eventually(WITHIN, || !lab.server.run(|| cmd("iptables", &["-S", "INPUT"])).contains("198.18.0.2"));
    assert!(closed, "{}", daemon.log_text());
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "closed again by closeSSH");
    assert_eq!(
        lab.server.nft(&["list", "tables"]).lines().filter(|l| l.contains("knockd")).count(),
        0,
        "no table of ours"
    );
}

#[test]
fn commands_get_the_knocker_address_for_ipv4_and_ipv6() {
    let lab = Lab::new();
    let (out, _config, daemon) = lab.knockd_writing(
        "doors:
  ssh:
    sequence: [7000, \"8000/udp\"]
    command: \"echo start %IP% %IP% >> {out}\"
    command_6: \"echo start6 %IP% >> {out}\"
    stop_command: \"echo stop %IP% >> {out}\"
    cmd_timeout: 1s
",
    );
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    knock(&lab.client, CLIENT_V4, SERVER_V4, 8000, Proto::Udp);
    knock(&lab.client, CLIENT_V6, SERVER_V6, 7000, Proto::Tcp);
    knock(&lab.client, CLIENT_V6, SERVER_V6, 8000, Proto::Udp);
    for line in ["start 198.18.0.2 198.18.0.2", "start6 2001:db8::2", "stop 198.18.0.2", "stop 2001:db8::2"] {
        assert!(file_contains(&out.path, line, Duration::from_secs(5)), "missing `{line}`\n{}", daemon.log_text());
    }
    // Stops come cmd_timeout after their start, not before.
    let text = std::fs::read_to_string(&out.path).unwrap();
    assert!(text.find("start 198.18.0.2").unwrap() < text.find("stop 198.18.0.2").unwrap(), "{text}");
}

#[test]
fn a_failing_command_is_logged_with_status_and_stderr() {
    let lab = Lab::new();
    let (_config, daemon) = lab.knockd_conf("[ssh]\nsequence = 7000\ncommand = echo no such thing >&2; exit 7\n");
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    let failed = log_lines::command_failed("ssh", ip(CLIENT_V4), "exited with status 7", "no such thing", None);
    daemon.expect_log(&failed, WITHIN);
}

#[test]
fn one_time_sequences_are_used_once_until_they_run_out() {
    let lab = Lab::with_sshd();
    let seqs = ConfigFile::new("ssh.seq", "# one line per knock\n7001,7002\n7003,7004\n");
    let yaml = format!(
        "doors:
  ssh:
    one_time_sequences: {}
    open: {{ports: [22], timeout: 2s}}
  web:
    sequence: [6000, 6001]
    open: {{ports: [22], timeout: 30s}}
",
        seqs.path.display()
    );
    let (_config, daemon) = lab.knockd(&yaml);

    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7001, 7002]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    assert!(file_contains(&seqs.path, "#7001,7002", WITHIN));
    // Wait for the grant to expire, then replay the used sequence: it no longer opens.
    std::thread::sleep(Duration::from_millis(2500));
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7001, 7002]);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "a used sequence opened again");

    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7003, 7004]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    daemon.expect_log("ssh: no more one-time sequences", WITHIN);
    assert_eq!(std::fs::read_to_string(&seqs.path).unwrap(), "# one line per knock\n#7001,7002\n#7003,7004\n");

    // The exhausted door is disabled; the daemon and its other doors carry on.
    knock_tcp(&lab, OTHER_V4, SERVER_V4, &[6000, 6001]);
    assert!(connects_within(&lab.client, OTHER_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
}

#[test]
fn sighup_keeps_progress_and_pending_stops() {
    let lab = Lab::new();
    let (out, _config, daemon) = lab.knockd_writing(
        "doors:
  ssh:
    sequence: [7000, 8000, 9000]
    seq_timeout: 20s
    command: \"echo open %IP% >> {out}\"
    stop_command: \"echo close %IP% >> {out}\"
    cmd_timeout: 3s
",
    );
    // A grant whose stop is pending, and a second source half-way through its knock.
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(file_contains(&out.path, "open 198.18.0.2", WITHIN));
    knock_tcp(&lab, OTHER_V4, SERVER_V4, &[7000, 8000]);
    daemon.expect_log(&log_lines::stage("ssh", OTHER_V4, 2, 3), WITHIN);

    daemon.signal(libc::SIGHUP);
    daemon.expect_log(&log_lines::reloaded(1), WITHIN);
    knock_tcp(&lab, OTHER_V4, SERVER_V4, &[9000]);
    assert!(file_contains(&out.path, "open 198.18.0.3", WITHIN), "progress lost on SIGHUP:\n{}", daemon.log_text());
    assert!(file_contains(&out.path, "close 198.18.0.2", Duration::from_secs(6)), "stop lost on SIGHUP");
}

#[test]
fn sigterm_runs_pending_stop_commands_before_exiting() {
    let lab = Lab::new();
    let (out, _config, daemon) = lab.knockd_conf_writing(
        "[ssh]\nsequence = 7000\ncommand = echo open %IP% >> {out}\nstop_command = echo close %IP% >> {out}\ncmd_timeout = 3600\n",
    );
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    assert!(file_contains(&out.path, "open 198.18.0.2", WITHIN));
    let status = daemon.stop();
    assert!(status.success());
    assert!(std::fs::read_to_string(&out.path).unwrap().contains("close 198.18.0.2"), "the stop ran at shutdown");
}

#[test]
fn daemon_mode_detaches_writes_a_locked_pidfile_logs_to_a_file_and_reloads() {
    let lab = Lab::with_sshd();
    // `user: root`: a daemon that stays root removes its pid file at exit (one that gives root up
    // can only empty it: reliability.rs). Every path is relative, on the command line and in the
    // file: the background daemon changes to /, and must still find them all on reload.
    let config = ConfigFile::new(
        "knockd.yaml",
        "user: root\ndoors:\n  ssh:\n    sequence: [7000]\n    open: {ports: [22], timeout: 30s}\n  \
         once:\n    one_time_sequences: once.seq\n    open: {ports: [22], timeout: 30s}\n",
    );
    let dir = config.path.parent().unwrap();
    config.write("once.seq", "7101,7102\n7103,7104\n");
    let (pidfile, logfile) = (dir.join("knockd.pid"), dir.join("knockd.log"));
    let run = |extra: &[&str]| {
        let knockd = knockd_path();
        let control = config.control();
        let mut args = vec!["netns", "exec", &lab.server.0, &knockd, "-c", "knockd.yaml", "-n"];
        args.extend(["--control", control.to_str().unwrap()]);
        args.extend_from_slice(extra);
        Command::new("ip").args(&args).current_dir(dir).output().unwrap()
    };
    let first = run(&["-d", "-p", "knockd.pid", "-L", "knockd.log"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let _stray = KillOnDrop(pid);
    // SAFETY: probing a pid with signal 0.
    let alive = |pid| unsafe { libc::kill(pid, 0) } == 0;
    assert!(alive(pid), "the background daemon runs as the pid in the pid file");

    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN));
    let open = opened("ssh", CLIENT_V4, "22/tcp", secs(30));
    assert!(file_contains(&logfile, &open, WITHIN), "{}", read(&logfile));

    let reload = run(&["reload"]);
    assert!(reload.status.success(), "{}", String::from_utf8_lossy(&reload.stderr));
    assert!(String::from_utf8_lossy(&reload.stdout).contains(&log_lines::reloaded(2)), "{reload:?}");
    // After the reload the log is reopened where it was, and the one-time file is read and
    // rewritten where it is.
    knock_tcp(&lab, OTHER_V4, SERVER_V4, &[7101, 7102]);
    assert!(connects_within(&lab.client, OTHER_V4, ssh_v4(), WITHIN), "{}", read(&logfile));
    let open = opened("once", OTHER_V4, "22/tcp", secs(30));
    assert!(file_contains(&logfile, &open, WITHIN), "{}", read(&logfile));
    assert!(file_contains(&dir.join("once.seq"), "#7101,7102", WITHIN));

    let second = run(&["-d", "-p", "knockd.pid"]);
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains(&format!("another knockd is running (pid {pid}")), "{stderr}");

    // SAFETY: stopping the daemon we started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(eventually(Duration::from_secs(10), || !alive(pid)), "SIGTERM stops the background daemon");
    assert!(!pidfile.exists(), "a clean exit removes the pid file");
}

/// A background daemon, killed if the test fails before it stops it.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // SAFETY: signalling the daemon this test started, which a failed assertion left
            // running (a test that passed stopped it, and its pid may since be another's).
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

/// A file's text, or nothing, for a failure message.
fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn the_daemon_survives_its_interface_disappearing() {
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.conf", "[ssh]\nsequence = 7000,8000\ncommand = true\n");
    let mut daemon = Daemon::start(&lab.server, &config, &["-i", &lab.server_if]);
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    daemon.expect_log(&log_lines::stage("ssh", CLIENT_V4, 1, 2), WITHIN);
    lab.server.ip(&["link", "del", &lab.server_if]);
    assert_eq!(daemon.wait_exit(Duration::from_millis(1500)), None, "the daemon exited:\n{}", daemon.log_text());
    assert!(daemon.stop().success());
}
