//! The running daemon answers: `knockd status` (text, JSON, Prometheus), `revoke`, `grant`,
//! `reload`, and the metrics textfile; with no daemon, status reads the kernel.

use std::process::{Command, Output};
use std::time::Duration;

use crate::daemon::{ConfigFile, Daemon, knockd_path};
use crate::lab::*;

const WITHIN: Duration = Duration::from_secs(3);
const DROP_WAIT: Duration = Duration::from_millis(700);

/// `knockd ARGS --control <the config's socket>` in the server namespace.
fn knockd(lab: &Lab, config: &ConfigFile, args: &[&str]) -> Output {
    let control = config.control();
    Command::new("ip")
        .args(["netns", "exec", &lab.server.0, &knockd_path()])
        .args(args)
        .args(["--control", control.to_str().unwrap()])
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ssh(addr: &str) -> std::net::SocketAddr {
    let ip: std::net::IpAddr = addr.parse().unwrap();
    std::net::SocketAddr::new(ip, 22)
}

const TWO_DOORS: &str = "doors:
  ssh:
    sequence: [7000, 8000]
    open: {ports: [22], timeout: 60s}
  web:
    sequence: [7100]
    open: {ports: [443], timeout: 10m}
";

#[test]
fn status_asks_the_running_daemon_whatever_config_it_runs() {
    let lab = Lab::new();
    let config = ConfigFile::new("elsewhere.yaml", TWO_DOORS);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    for src in [CLIENT_V4, CLIENT_V6] {
        let dst = if src.contains(':') { SERVER_V6 } else { SERVER_V4 };
        knock(&lab.client, src, dst, 7000, false);
        knock(&lab.client, src, dst, 8000, false);
    }
    knock(&lab.client, OTHER_V4, SERVER_V4, 7000, false);
    assert!(daemon.wait_log("ssh: 2001:db8::2: OPEN 22/tcp for 1m", WITHIN), "{}", daemon.log_text());
    assert!(daemon.wait_log("ssh: 198.18.0.3: stage 1 of 2", WITHIN), "{}", daemon.log_text());

    // No -c: the default /etc/knockd.conf is not what runs; the daemon answers anyway.
    let text = stdout(&knockd(&lab, &config, &["status"]));
    assert!(text.contains(&format!("knockd (pid {}) runs {}", daemon.pid(), config.path.display())), "{text}");
    let row = |first: &str, second: &str| -> Vec<String> {
        let line =
            text.lines().find(|l| l.starts_with(first) && l.contains(second)).unwrap_or_else(|| panic!("{text}"));
        line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()
    };
    assert_eq!(row("ssh", "sequence"), ["ssh", "sequence", "7000/tcp, 8000/tcp", "22/tcp", "1m"], "{text}");
    assert_eq!(row("web", "sequence"), ["web", "sequence", "7100/tcp", "443/tcp", "10m"], "{text}");
    for addr in ["198.18.0.2", "2001:db8::2"] {
        let cells = row("ssh", addr);
        assert_eq!(cells[..4], ["ssh", addr, "22/tcp", "-"], "{text}");
        let left = humantime::parse_duration(&cells[4]).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!((Duration::from_secs(50)..=Duration::from_secs(60)).contains(&left), "{text}");
    }
    assert!(text.contains("attempts in progress: 1"), "{text}");
    assert!(text.contains(" opens=2 ") && text.contains("grants=2"), "{text}");

    let json: serde_json::Value = serde_json::from_str(&stdout(&knockd(&lab, &config, &["status", "--json"]))).unwrap();
    assert_eq!((json["schema"].as_u64(), json["source"].as_str()), (Some(1), Some("daemon")), "{json}");
    assert_eq!(json["grants"].as_array().map(Vec::len), Some(2), "{json}");
    assert_eq!(json["attempts"].as_u64(), Some(1), "{json}");
    assert_eq!(json["counters"]["opens"].as_u64(), Some(2), "{json}");
    assert_eq!(json["doors"][0]["listens"][0].as_str(), Some("7000/tcp, 8000/tcp"), "{json}");
    let prometheus = stdout(&knockd(&lab, &config, &["status", "--prometheus"]));
    assert!(prometheus.contains("# TYPE knockd_opens_total counter\nknockd_opens_total 2\n"), "{prometheus}");
    assert!(prometheus.contains("knockd_dropped_total{reason=\"not_for_this_host\"} 0"), "{prometheus}");

    // SIGUSR1 still logs the counters.
    daemon.signal(libc::SIGUSR1);
    assert!(daemon.wait_log("counters: packets=5", WITHIN), "{}", daemon.log_text());
    let counters = daemon.log_text().lines().find(|l| l.contains("counters:")).unwrap().to_owned();
    for part in ["opens=2", "kernel_packets=5", "kernel_drops=0", "evictions=0", "truncated=0"] {
        assert!(counters.contains(part), "`{part}` missing: {counters}");
    }

    // Without the daemon: the kernel still holds the grants, and status says where it looked.
    assert!(daemon.stop().success());
    let text = stdout(&knockd(&lab, &config, &["status", "-c", config.path.to_str().unwrap()]));
    assert!(text.contains("no knockd answers: grants read from the kernel"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ssh") && l.contains("198.18.0.2")), "{text}");

    // Not root: said plainly.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", &knockd_path(), "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run as root"), "{out:?}");
}

#[test]
fn an_admin_grants_and_revokes_and_the_log_names_them() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "[::]:22".parse().unwrap());
    let config = ConfigFile::new("knockd.yaml", TWO_DOORS);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh(SERVER_V4), DROP_WAIT));

    let said = stdout(&knockd(&lab, &config, &["grant", CLIENT_V4, "--door", "ssh", "--for", "5m"]));
    assert!(said.contains("door ssh opened for 198.18.0.2"), "{said}");
    assert!(connects_within(&lab.client, CLIENT_V4, ssh(SERVER_V4), WITHIN), "{}", daemon.log_text());
    assert!(daemon.wait_log("ssh: 198.18.0.2: OPEN 22/tcp for 5m (admin uid 0)", WITHIN), "{}", daemon.log_text());
    let text = stdout(&knockd(&lab, &config, &["status"]));
    assert!(text.lines().any(|l| l.contains("198.18.0.2") && l.contains("admin uid 0")), "{text}");
    // The element carries who opened it: nft shows it, and a daemon started again knows it.
    let listing = lab.server.nft(&["list", "set", "inet", "knockd", "ssh_v4"]);
    assert!(listing.contains("comment \"admin uid 0\""), "{listing}");
    assert!(daemon.stop().success());
    let daemon = Daemon::start(&lab.server, &config, &[]);
    let text = stdout(&knockd(&lab, &config, &["status"]));
    assert!(text.lines().any(|l| l.contains("198.18.0.2") && l.contains("admin uid 0")), "{text}");

    let said = stdout(&knockd(&lab, &config, &["revoke", CLIENT_V4]));
    assert!(said.contains("revoked: ssh: 198.18.0.2: 22/tcp"), "{said}");
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh(SERVER_V4), DROP_WAIT), "closed at once");
    assert!(daemon.wait_log("ssh: 198.18.0.2: 22/tcp closed: revoked by uid 0", WITHIN), "{}", daemon.log_text());

    let refused = knockd(&lab, &config, &["revoke", CLIENT_V4]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("198.18.0.2 has no grant"), "{refused:?}");
    let refused = knockd(&lab, &config, &["grant", CLIENT_V4, "--door", "nope"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no door is named nope"), "{refused:?}");
}

#[test]
fn reload_reports_the_result_and_metrics_are_written() {
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.yaml", TWO_DOORS);
    let metrics = config.path.with_file_name("knockd.prom");
    let with_metrics = |doors: &str| format!("metrics: {{textfile: {}}}\n{doors}", metrics.display());
    config.rewrite(&with_metrics(TWO_DOORS));
    ensure_knockd_user();
    let daemon = Daemon::start(&lab.server, &config, &[]);
    eventually(WITHIN, || metrics.exists());
    let text = std::fs::read_to_string(&metrics).expect("the textfile is written at start");
    let why = "staying root after start: user knockd could not write the metrics textfile";
    assert!(daemon.log_text().contains(why), "{}", daemon.log_text());
    assert!(text.contains("knockd_grants 0") && text.contains("knockd_opens_total 0"), "{text}");

    config.rewrite(&with_metrics(
        &TWO_DOORS.replace("  web:\n    sequence: [7100]\n    open: {ports: [443], timeout: 10m}\n", ""),
    ));
    assert_eq!(stdout(&knockd(&lab, &config, &["reload"])).trim(), "reloaded: 1 door(s)");
    config.rewrite("doors: [not, a, mapping]\n");
    let out = knockd(&lab, &config, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("knockd.yaml") && stderr.contains("doors"), "{stderr}");
    assert!(daemon.log_text().contains("reload failed, keeping the running config"), "{}", daemon.log_text());
}
