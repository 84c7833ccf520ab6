//! nft-templates/ stays what the code generates; `knockd check` and its lock-out guard.

mod util;

use std::path::Path;
use std::process::{Command, Output};

use knockd::config;
use knockd::doors::Kinds;
use knockd::grant::nft::Ruleset;
use util::{KNOCKD, TempDir, repo};

#[test]
fn the_standalone_template_is_what_the_daemon_installs_for_the_example() {
    let template = std::fs::read_to_string(repo("nft-templates/standalone.nft")).unwrap();
    let body = &template[template.find("\ntable inet").expect("a table") + 1..];
    let example = config::load(&repo("knockd.yaml"), &Kinds).unwrap();
    assert_eq!(body, Ruleset::for_config(&example).to_string(), "regenerate nft-templates/standalone.nft");
}

/// An admin's SSH session to port 22 of this host, as sshd describes it in `SSH_CONNECTION`.
const SESSION_TO_22: &str = "198.18.0.2 51000 198.18.0.1 22";

/// `knockd check OPTIONS -c CONFIG` run from the SSH session `session` (`SSH_CONNECTION`), or
/// from none.
fn check(options: &[&str], config: &Path, session: Option<&str>) -> Output {
    let mut command = Command::new(KNOCKD);
    command.arg("check").args(options).arg("-c").arg(config);
    match session {
        Some(session) => command.env("SSH_CONNECTION", session),
        None => command.env_remove("SSH_CONNECTION"),
    };
    command.output().unwrap()
}

#[test]
fn check_validates_and_prints_the_ruleset_without_root() {
    let out = check(&[], &repo("knockd.yaml"), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("valid, 1 door(s)"), "{text}");
    assert!(
        text.contains("door ssh: knock 7000/tcp, 8000/tcp, 9000/tcp within 5s; tcp flags syn; opens 22/tcp for 30s"),
        "{text}"
    );
    assert!(text.contains("tcp dport 22 ip saddr @ssh_v4 accept"), "{text}");
}

#[test]
fn check_warns_when_the_config_would_lock_out_this_ssh_session() {
    let example = repo("knockd.yaml");
    let locked = check(&[], &example, Some(SESSION_TO_22));
    assert_eq!(locked.status.code(), Some(3));
    let warning = String::from_utf8_lossy(&locked.stderr);
    assert!(warning.contains("WARNING: door(s) ssh guard TCP port 22") && warning.contains("198.18.0.2"), "{warning}");
    // The last line says why the status is 3 and how to go ahead.
    let last = warning.trim_end().lines().last().unwrap();
    assert!(last.starts_with("knockd check: exit status 3") && last.contains("--lockout-ok"), "{warning}");
    let elsewhere = check(&[], &example, Some("198.18.0.2 51000 198.18.0.1 2222"));
    assert_eq!(elsewhere.status.code(), Some(0), "an SSH daemon on another port is not affected");
    let ok = check(&["--lockout-ok"], &example, Some(SESSION_TO_22));
    assert_eq!(ok.status.code(), Some(0), "--lockout-ok: the admin has checked");
    assert!(String::from_utf8_lossy(&ok.stderr).contains("WARNING: door(s) ssh guard TCP port 22"), "still warned");
}

/// `sequence = 22` with a ban command: every SSH login is a knock, and the admin's next one
/// completes it. The lock-out warning covers it.
#[test]
fn check_warns_when_a_sequence_holds_this_ssh_sessions_port() {
    let dir = TempDir::new("seq22");
    let conf = dir.write("knockd.conf", "[ban]\nsequence = 22\ncommand = ufw insert 1 deny from %IP%\n");
    let out = check(&[], &conf, Some(SESSION_TO_22));
    assert_eq!(out.status.code(), Some(3));
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("the knock sequence of door(s) ban holds TCP port 22")
            && warning.contains("ufw insert 1 deny"),
        "{warning}"
    );
}

#[test]
fn check_rejects_a_bad_config_with_status_1() {
    let dir = TempDir::new("check");
    let bad = dir.write("bad.yaml", "doors:\n  ssh:\n    sequence: [0]\n");
    let out = check(&[], &bad, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml:3:16: doors.ssh.sequence[0]"));
}
