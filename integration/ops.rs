//! Operations: attach mode into an admin's own table, the templates, `knockd status`, SIGUSR1.

use std::time::Duration;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);

#[test]
fn every_template_parses_with_nft_check() {
    let lab = Lab::new();
    for name in ["standalone.nft", "attach.nft"] {
        lab.server.nft(&["-c", "-f", &template(name)]);
    }
    assert_eq!(lab.server.nft(&["list", "ruleset"]).trim(), "", "-c applies nothing");
}

const ATTACH: &str = "doors:
  ssh:
    sequence: [7000, 8000, 9000]
    open:
      set: {family: inet, table: filter, ipv4: knock_ssh4, ipv6: knock_ssh6}
      timeout: 30s
";

#[test]
fn attach_mode_adds_to_the_admins_sets_and_touches_nothing_else() {
    let lab = Lab::with_sshd();
    lab.server.nft(&["-f", &template("attach.nft")]);
    let chain_before = lab.server.nft(&["list", "chain", "inet", "filter", "input"]);
    let (config, daemon) = lab.knockd(ATTACH);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "the admin's drop policy holds");

    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    daemon.expect_log(&opened("ssh", CLIENT_V4, "set inet filter knock_ssh4", secs(30)), WITHIN);
    let elements = lab.server.nft(&["list", "set", "inet", "filter", "knock_ssh4"]);
    assert!(elements.contains("198.18.0.2 timeout 30s"), "{elements}");
    assert_eq!(lab.server.nft(&["list", "chain", "inet", "filter", "input"]), chain_before, "rules untouched");
    let tables = lab.server.nft(&["list", "tables"]);
    assert_eq!(tables.trim(), "table inet filter", "no table of knockd's own");

    let check = knockd_check(&lab.server, &config.path);
    assert!(check.status.success(), "{}", printed(&check));
    let check = String::from_utf8_lossy(&check.stdout);
    assert!(check.contains("door ssh: set inet filter knock_ssh4: ok"), "{check}");
    assert!(check.contains("door ssh: set inet filter knock_ssh6: ok"), "{check}");
    let status = ask(&lab.server, &config, &["status"]);
    let line = status.lines().find(|l| l.contains("198.18.0.2")).unwrap_or_else(|| panic!("{status}"));
    assert!(line.starts_with("ssh") && line.contains("set inet filter knock_ssh4"), "{status}");
}

#[test]
fn attach_mode_refuses_to_start_without_the_sets() {
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.yaml", ATTACH);
    let mut missing = Daemon::spawn(&lab.server, &config, &[]);
    assert_eq!(missing.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(1));
    assert!(
        missing.log_text().contains("door ssh: set inet filter knock_ssh4 does not exist"),
        "{}",
        missing.log_text()
    );

    // A set without `flags timeout` could never expire a grant: refused too.
    lab.server.nft(&["add", "table", "inet", "filter"]);
    lab.server.nft(&["add", "set", "inet", "filter", "knock_ssh4", "{ type ipv4_addr; }"]);
    lab.server.nft(&["add", "set", "inet", "filter", "knock_ssh6", "{ type ipv6_addr; flags timeout; }"]);
    // `knockd check` reports each set, including the wrong key type it once missed.
    lab.server.nft(&["add", "set", "inet", "filter", "knock_ssh4_wrong", "{ type ipv6_addr; flags timeout; }"]);
    let wrong = ConfigFile::new("wrong.yaml", &ATTACH.replace("ipv4: knock_ssh4,", "ipv4: knock_ssh4_wrong,"));
    let check = String::from_utf8_lossy(&knockd_check(&lab.server, &wrong.path).stdout).into_owned();
    assert!(check.contains("knock_ssh4_wrong does not hold ipv4_addr elements"), "{check}");
    assert!(check.contains("knock_ssh6: ok"), "{check}");
    let mut no_timeout = Daemon::spawn(&lab.server, &config, &[]);
    assert_eq!(no_timeout.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(1));
    assert!(no_timeout.log_text().contains("has no `flags timeout`"), "{}", no_timeout.log_text());
    assert_eq!(lab.server.nft(&["list", "set", "inet", "filter", "knock_ssh6"]).matches("elements").count(), 0);
}

#[test]
fn under_systemd_it_notifies_and_logs_with_priorities() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixDatagram;
    use std::process::{Command, Stdio};

    let lab = Lab::new();
    let config =
        ConfigFile::new("knockd.yaml", "doors:\n  ssh:\n    sequence: [7000]\n    open: {ports: [22], timeout: 30s}\n");
    let notify_path = config.path.with_file_name("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    // Like systemd's /run/systemd/notify: a daemon that has left root can still write to it.
    std::fs::set_permissions(&notify_path, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.server.0, &knockd_path(), "-c", config.path.to_str().unwrap()])
        .args(["--control", config.control().to_str().unwrap()])
        .env("NOTIFY_SOCKET", &notify_path)
        .env("JOURNAL_STREAM", "8:12345")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed when the test ends, also when it fails half-way.
    let mut child = KillOnDrop(child);
    let mut buf = [0u8; 256];
    let mut next = || {
        let n = notify.recv(&mut buf).expect("a notification within 10s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1\n");
    // SAFETY: signalling our own child (ip netns exec replaced itself with knockd).
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    assert_eq!(next(), "RELOADING=1\n");
    assert_eq!(next(), "READY=1\n");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(next(), "STOPPING=1\n");
    assert!(child.wait().unwrap().success());
    let lines: Vec<String> = BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok).collect();
    // main.rs's words for no -i; `<6>`: info, for the journal.
    let listening = format!("<6>{}", log_lines::listening("all interfaces", 1, &config.path, None));
    assert!(lines.iter().any(|l| l.starts_with(&listening)), "{lines:?}");
    assert!(lines.iter().all(|l| l.starts_with('<')), "every line has a priority: {lines:?}");
}

/// A child process that is killed (and reaped) when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
