//! The local host: a local user cannot keep the daemon from starting, daemons in two network
//! namespaces both start with default settings, totals survive a reload, and the state
//! directory is checked at start.

use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::spa_packets::{fresh_packet, spa_config};
use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);
const ONE_DOOR: &str = "doors:\n  ssh: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n";

/// A process of an unprivileged user (uid 65534) in `ns`, killed when dropped.
struct Squatter(Child);

impl Squatter {
    /// Binds the abstract socket name the lock used to be and tries to create the files a lock
    /// could be; says what it managed on stdout, then waits to be killed.
    fn start(ns: &Netns) -> (Squatter, String) {
        let script = r#"
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0knockd/inet/knockd"); s.listen(1)
print("bound the abstract name")
for path in ["/run/knockd", "/run/knockd/knockd.lock", "/run/knockd/control"]:
    try:
        os.makedirs(path) if path == "/run/knockd" else open(path, "w")
        print("created " + path)
    except OSError as e:
        print("refused " + path + ": " + e.strerror)
print("ready"); sys.stdout.flush(); time.sleep(60)
"#;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.0, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["/usr/bin/python3", "-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        use std::io::BufRead;
        let mut said = String::new();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref().take(10).map_while(Result::ok) {
            said.push_str(&line);
            said.push('\n');
            if line == "ready" {
                break;
            }
        }
        (Squatter(child), said)
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_squatted_lock_does_not_stop_the_start_and_a_second_daemon_is_still_refused() {
    let lab = Lab::new();
    let (_squatter, said) = Squatter::start(&lab.server);
    assert!(said.contains("bound the abstract name") && said.contains("ready"), "{said}");
    assert!(!said.contains("created"), "an unprivileged user created a file where locks are:\n{said}");
    let config = ConfigFile::new("knockd.yaml", ONE_DOOR);
    let first = Daemon::start(&lab.server, &config, &[]);
    let mut second = Daemon::spawn(&lab.server, &config, &[]);
    assert_eq!(second.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(1));
    let expected = format!("another knockd is running (pid {}) with table inet knockd", first.pid());
    assert!(second.log_text().contains(&expected), "{}", second.log_text());
    // The lock is a file only root may create, in a directory only root may write in.
    let lock = std::fs::metadata(lock_file(&lab.server)).expect("the lock file");
    assert_eq!(lock.uid(), 0);
    let run = std::fs::metadata("/run/knockd").unwrap();
    assert_eq!((run.uid(), run.mode() & 0o022), (0, 0), "/run/knockd is root's alone");
    assert!(first.stop().success());
}

/// The lock file of table `knockd` in `ns`.
fn lock_file(ns: &Netns) -> String {
    let namespace = std::fs::metadata(format!("/run/netns/{}", ns.0)).unwrap().ino();
    format!("/run/knockd/knockd.net{namespace}.lock")
}

#[test]
fn two_daemons_in_two_namespaces_with_default_settings_both_start_and_answer_status() {
    let lab = Lab::new();
    let configs = [ConfigFile::new("knockd.yaml", ONE_DOOR), ConfigFile::new("knockd.yaml", ONE_DOOR)];
    let mut daemons = Vec::new();
    for (ns, config) in [&lab.server, &lab.client].into_iter().zip(&configs) {
        // No --control: the default socket, and the default lock.
        let daemon = Daemon::spawn_program(ns, &knockd_path(), &["-D", "-c", config.path.to_str().unwrap()]);
        daemon.expect_log(log_lines::LISTENING, Duration::from_secs(20));
        daemons.push(daemon);
    }
    for ((ns, config), daemon) in [&lab.server, &lab.client].into_iter().zip(&configs).zip(&daemons) {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.0, &knockd_path(), "status", "-c", config.path.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("knockd (pid {}) runs", daemon.pid())), "{text}");
    }
    for daemon in daemons {
        assert!(daemon.stop().success());
    }
}

#[test]
fn totals_survive_a_reload() {
    let lab = Lab::new();
    let (_config, keys, daemon) = lab.spa_knockd(1, "", "");
    send_datagram(&lab, CLIENT_V4, SERVER_V4, 62201, &fresh_packet(&keys[0]));
    daemon.expect_log(&opened("ssh", CLIENT_V4, "22/tcp", secs(30)), WITHIN);
    let before = daemon.counters();
    assert_eq!(counter(&before, "spa_verified"), Some(1), "{before}");
    assert_eq!(counter(&before, "spa_accepted"), Some(1), "{before}");

    daemon.signal(libc::SIGHUP);
    daemon.expect_log(&log_lines::reloaded(1), WITHIN);
    let after = daemon.counters();
    for name in ["spa_verified", "spa_dropped_in_flood", "spa_accepted", "opens", "packets"] {
        assert_eq!(counter(&after, name), counter(&before, name), "{name} after SIGHUP: {after}");
    }
    // And they go on counting from there.
    send_datagram(&lab, CLIENT_V4, SERVER_V4, 62201, &fresh_packet(&keys[0]));
    assert!(eventually(WITHIN, || counter(&daemon.counters(), "spa_verified") == Some(2)), "{}", daemon.log_text());
    assert!(daemon.stop().success());
}

#[test]
fn a_state_directory_left_to_nobody_is_taken_back_or_the_start_fails_saying_how_to_fix_it() {
    let lab = Lab::new();
    // An SPA door (it keeps a replay cache in the state directory) that stays root.
    let (config, _keys) = spa_config(1, "user: root\n", "");
    let state = config.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();

    // Without CAP_CHOWN the daemon cannot take it back: root without CAP_DAC_OVERRIDE (as the
    // daemon is after start) could not write there, so the start fails, and says the fix.
    let args = ["--bounding-set", "-chown", &knockd_path(), "-D", "-c", config.path.to_str().unwrap()];
    let control = config.control();
    let mut args = args.to_vec();
    args.extend(["--control", control.to_str().unwrap()]);
    let mut refused = Daemon::spawn_program(&lab.server, "setpriv", &args);
    assert_eq!(refused.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(1), "{}", refused.log_text());
    let log = refused.log_text();
    assert!(log.contains("root could not write in it after start"), "{log}");
    assert!(log.contains(&format!("run `chown root: {}`", state.display())), "{log}");
    assert!(lab.server.nft(&["list", "tables"]).trim().is_empty(), "the failed start touched nothing");

    // With it (as under the unit), the directory is given back to root, and the cache written.
    let daemon = Daemon::start(&lab.server, &config, &[]);
    assert!(daemon.log_text().contains("given to root (it was uid 65534's)"), "{}", daemon.log_text());
    assert_eq!(std::fs::metadata(&state).unwrap().uid(), 0);
    assert!(daemon.stop().success());

    // A replay cache nobody wrote is never trusted: any service running as nobody could have.
    let replay = state.join("ssh.replay");
    std::fs::write(&replay, "").unwrap();
    std::os::unix::fs::chown(&replay, Some(65534), Some(65534)).unwrap();
    let mut refused = Daemon::spawn(&lab.server, &config, &[]);
    assert_eq!(refused.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(1), "{}", refused.log_text());
    assert!(refused.log_text().contains("owned by uid 65534"), "{}", refused.log_text());
}
