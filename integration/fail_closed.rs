//! Never fail open, never lock out: big configs, failed starts and reloads, outside changes to
//! the daemon's chain, a second daemon, renamed tables and dropped doors.

use std::fmt::Write;
use std::time::{Duration, Instant};

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);

/// `n` doors: door `dI` knocks 7000 then 8000+I and opens port 10000+I.
fn many_doors(n: u16, timeout: &str) -> String {
    let mut yaml = String::from("log: {level: warn}\ndoors:\n");
    for i in 0..n {
        let _ = writeln!(
            yaml,
            "  d{i}: {{sequence: [7000, {}], open: {{ports: [{}], timeout: {timeout}}}}}",
            8000 + i,
            10000 + i
        );
    }
    yaml
}

#[test]
fn a_thousand_doors_start_reload_and_open() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "[::]:10999".parse().unwrap());
    let (config, daemon) = lab.knockd(&many_doors(1000, "30s"));
    let chain = lab.server.nft(&["list", "chain", "inet", "knockd", "input"]);
    assert_eq!(chain.matches(" drop").count(), 1000, "one drop per door's port");
    assert_eq!(lab.server.nft(&["list", "sets", "inet"]).matches("set d").count(), 2000);
    let door999 = at(SERVER_V4, 10999);
    assert!(is_dropped(&lab.client, CLIENT_V4, door999, DROP_WAIT));
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8999]);
    assert!(connects_within(&lab.client, CLIENT_V4, door999, WITHIN), "{}", daemon.log_text());

    // A reload to 1000 doors with other timeouts: one transaction again, and grants stay.
    config.rewrite(&many_doors(1000, "45s"));
    daemon.signal(libc::SIGHUP);
    daemon.expect_log(&log_lines::reloaded(1000), Duration::from_secs(20));
    assert!(connect(&lab.client, CLIENT_V4, door999, Duration::from_secs(2)).is_ok(), "the grant survived the reload");
    assert!(!daemon.logged(&log_lines::reload_failed(ANY)), "{}", daemon.log_text());
}

#[test]
fn a_start_or_reload_the_kernel_refuses_leaves_it_exactly_as_it_was() {
    let lab = Lab::new();
    // Something in the table that the config's ruleset cannot coexist with: a set named like
    // door web's IPv4 set, of the wrong type. The kernel refuses the whole transaction.
    lab.server.nft(&["add", "table", "inet", "knockd"]);
    lab.server.nft(&["add", "set", "inet", "knockd", "web_v4", "{ type ipv6_addr; flags timeout; }"]);
    let before = lab.server.nft(&["list", "ruleset"]);
    let two_doors = "doors:\n  ssh: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n  web: {sequence: [7001, 8001], open: {ports: [80], timeout: 30s}}\n";
    let config = ConfigFile::new("knockd.yaml", two_doors);
    let mut failed = Daemon::spawn(&lab.server, &config, &[]);
    assert_eq!(failed.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(1), "{}", failed.log_text());
    assert!(failed.log_text().contains("install table inet knockd"), "{}", failed.log_text());
    assert_eq!(lab.server.nft(&["list", "ruleset"]), before, "a failed start changed the kernel");

    // The same at a reload: the running ruleset stays, byte for byte. (The start removes the
    // foreign set, the table being the daemon's: it comes back after.)
    config.rewrite("doors:\n  ssh: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n");
    let daemon = Daemon::start(&lab.server, &config, &[]);
    lab.server.nft(&["add", "set", "inet", "knockd", "web_v4", "{ type ipv6_addr; flags timeout; }"]);
    let running = lab.server.nft(&["list", "ruleset"]);
    config.rewrite(two_doors);
    daemon.signal(libc::SIGHUP);
    daemon.expect_log(&log_lines::reload_failed(ANY), WITHIN);
    assert_eq!(lab.server.nft(&["list", "ruleset"]), running, "a failed reload changed the kernel");
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "the door is still guarded");
}

/// Whether the daemon's chain holds its drop rule for port 22 again.
fn guarded(lab: &Lab) -> bool {
    lab.server.nft(&["list", "chain", "inet", "knockd", "input"]).contains("tcp dport 22 drop")
}

#[test]
fn outside_changes_to_the_chain_are_repaired_within_a_second() {
    let lab = Lab::with_sshd();
    let (_config, daemon) = lab.knockd("doors:\n  ssh: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n");
    let installed = lab.server.nft(&["list", "chain", "inet", "knockd", "input"]);
    let changes: [(&str, &[&str]); 4] = [
        ("a flushed chain", &["flush", "chain", "inet", "knockd", "input"]),
        ("the table made dormant", &["add", "table", "inet", "knockd", "{", "flags", "dormant", ";", "}"]),
        ("an accept inserted first", &["insert", "rule", "inet", "knockd", "input", "tcp", "dport", "22", "accept"]),
        ("the drop rule deleted", &[]),
    ];
    for (what, args) in changes {
        let repairs = daemon.count(&log_lines::putting_back(ANY));
        if args.is_empty() {
            let listing = lab.server.nft(&["-a", "list", "chain", "inet", "knockd", "input"]);
            let line = listing.lines().find(|l| l.contains("tcp dport 22 drop")).unwrap();
            let handle = line.rsplit("handle ").next().unwrap().trim();
            lab.server.nft(&["delete", "rule", "inet", "knockd", "input", "handle", handle]);
        } else {
            lab.server.nft(args);
        }
        let changed_at = Instant::now();
        assert!(
            eventually(Duration::from_secs(1), || lab.server.nft(&["list", "chain", "inet", "knockd", "input"])
                == installed),
            "{what}: not repaired within 1 s:\n{}",
            daemon.log_text()
        );
        eprintln!("{what}: repaired after {:?}", changed_at.elapsed());
        assert!(guarded(&lab));
        assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "{what}: the port is closed again");
        assert!(
            eventually(WITHIN, || daemon.count(&log_lines::putting_back(ANY)) > repairs),
            "{what}: the repair is logged:\n{}",
            daemon.log_text()
        );
    }
}

#[test]
fn a_second_daemon_on_the_same_table_refuses_and_names_the_first() {
    let lab = Lab::new();
    let config =
        ConfigFile::new("knockd.yaml", "doors:\n  ssh: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n");
    let first = Daemon::start(&lab.server, &config, &[]);
    let installed = lab.server.nft(&["list", "ruleset"]);
    let mut second = Daemon::spawn(&lab.server, &config, &[]);
    assert_eq!(second.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(1));
    let expected = format!("another knockd is running (pid {}) with table inet knockd", first.pid());
    assert!(second.log_text().contains(&expected), "{}", second.log_text());
    assert_eq!(lab.server.nft(&["list", "ruleset"]), installed, "the second daemon touched nothing");
    // Another namespace is another table: no conflict there (its control socket is another file).
    let other = Lab::new();
    let same_doors =
        ConfigFile::new("knockd.yaml", "doors:\n  ssh: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n");
    drop(Daemon::start(&other.server, &same_doors, &[]));
    drop(first);
}

#[test]
fn a_reload_removes_a_renamed_table_and_the_sets_of_dropped_doors() {
    let lab = Lab::new();
    let two = "doors:\n  ssh: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n  web: {sequence: [7001, 8001], open: {ports: [80], timeout: 30s}}\n";
    let (config, daemon) = lab.knockd(two);
    assert!(lab.server.nft(&["list", "sets", "inet"]).contains("web_v4"));

    config.rewrite("doors:\n  ssh: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n");
    daemon.signal(libc::SIGHUP);
    daemon.expect_log(&log_lines::reloaded(1), WITHIN);
    let sets = lab.server.nft(&["list", "sets", "inet"]);
    assert!(!sets.contains("web_v4") && !sets.contains("web_v6"), "the dropped door's sets are gone:\n{sets}");
    assert!(sets.contains("ssh_v4"));

    config.rewrite(
        "nftables: {table: guard}\ndoors:\n  ssh: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n",
    );
    daemon.signal(libc::SIGHUP);
    assert!(eventually(WITHIN, || daemon.count(&log_lines::reloaded(1)) == 2), "{}", daemon.log_text());
    assert_eq!(lab.server.nft(&["list", "tables"]).trim(), "table inet guard", "the old table is gone");
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "and the new one guards the port");
}

#[test]
fn the_lockout_warning_at_a_foreground_start_and_the_shutdown_line() {
    let lab = Lab::new();
    let config =
        ConfigFile::new("knockd.yaml", "doors:\n  ssh: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n");
    let child = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.server.0,
            &knockd_path(),
            "-D",
            "-c",
            config.path.to_str().unwrap(),
            "--control",
            config.control().to_str().unwrap(),
        ])
        .env("SSH_CONNECTION", "198.18.0.2 50000 198.18.0.1 22")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child (ip netns exec replaced itself with knockd).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WARNING: door(s) ssh guard TCP port 22, the port of the SSH session"), "{stderr}");
    let shutdown = log_lines::shutting_down(&["22/tcp".to_owned()], "`nft delete table inet knockd`");
    assert!(stderr.contains(&shutdown), "{stderr}");
}

#[test]
fn doors_sharing_a_set_and_a_missing_set_cost_no_other_grant() {
    let lab = Lab::with_sshd();
    lab.server.nft(&["-f", &template("attach.nft")]);
    lab.server.nft(&["add", "set", "inet", "filter", "knock_web4", "{ type ipv4_addr; flags timeout; }"]);
    // Three doors on one knock: two share the admin's set, the third has its own.
    let set = |name: &str| format!("open: {{set: {{family: inet, table: filter, ipv4: {name}}}, timeout: 30s}}");
    let yaml = format!(
        "doors:\n  a: {{sequence: [7000, 8000], {}}}\n  b: {{sequence: [7000, 8000], {}}}\n  c: {{sequence: [7000, 8000], {}}}\n",
        set("knock_ssh4"),
        set("knock_ssh4"),
        set("knock_web4")
    );
    let (_config, daemon) = lab.knockd(&yaml);
    // The admin's set of door c goes away after the start: c's grants fail, and only c's.
    lab.server.nft(&["delete", "set", "inet", "filter", "knock_web4"]);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    let elements = lab.server.nft(&["list", "set", "inet", "filter", "knock_ssh4"]);
    assert_eq!(elements.matches("198.18.0.2").count(), 1, "one element for both doors: {elements}");
    daemon.expect_log(&opened("a", CLIENT_V4, "set inet filter knock_ssh4", secs(30)), WITHIN);
    assert!(
        daemon.wait_log(&log_lines::cannot_grant(1, &ANY), WITHIN),
        "c's failure is reported: {}",
        daemon.log_text()
    );
}
