//! The running daemon answers: `knockd status` (text, JSON, Prometheus), `revoke`, `grant`,
//! `reload`, and the metrics textfile; with no daemon, status reads the kernel.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);

const TWO_DOORS: &str = "doors:
  ssh:
    sequence: [7000, 8000]
    open: {ports: [22], timeout: 60s}
  web:
    sequence: [7100]
    open: {ports: [443], timeout: 10m}
";

/// A daemon on [`TWO_DOORS`] in a config not at the default path, with two grants (the
/// client's IPv4 and IPv6 addresses) and one attempt in progress (the client's other address):
/// five packets.
fn two_grants_and_an_attempt() -> (Lab, ConfigFile, Daemon) {
    let lab = Lab::new();
    let config = ConfigFile::new("elsewhere.yaml", TWO_DOORS);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000]);
    knock_tcp(&lab, CLIENT_V6, SERVER_V6, &[7000, 8000]);
    knock(&lab.client, OTHER_V4, SERVER_V4, 7000, Proto::Tcp);
    daemon.expect_log(&opened("ssh", CLIENT_V6, "22/tcp", secs(60)), WITHIN);
    daemon.expect_log(&log_lines::stage("ssh", OTHER_V4, 1, 2), WITHIN);
    (lab, config, daemon)
}

/// No -c: the default /etc/knockd.conf is not what runs; the daemon answers anyway, with its
/// doors, its grants and the time they have left, the attempts and the counters.
#[test]
fn status_asks_the_running_daemon_whatever_config_it_runs() {
    let (lab, config, daemon) = two_grants_and_an_attempt();
    let text = ask(&lab.server, &config, &["status"]);
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
}

/// `status --json`: the same answer in the documented schema (doc/status.md).
#[test]
fn status_json_is_the_documented_schema() {
    let (lab, config, _daemon) = two_grants_and_an_attempt();
    let json: serde_json::Value = serde_json::from_str(&ask(&lab.server, &config, &["status", "--json"])).unwrap();
    assert_eq!((json["schema"].as_u64(), json["source"].as_str()), (Some(2), Some("daemon")), "{json}");
    assert_eq!(json["grants"].as_array().map(Vec::len), Some(2), "{json}");
    assert_eq!(json["attempts"].as_u64(), Some(1), "{json}");
    assert_eq!(json["counters"]["opens"].as_u64(), Some(2), "{json}");
    assert_eq!(json["doors"][0]["listens"], serde_json::json!(["7000/tcp", "8000/tcp"]), "{json}");
    documented_schema_matches(&json);
}

/// `status --prometheus`: the counters in Prometheus' text format.
#[test]
fn status_prometheus_writes_the_counters() {
    let (lab, config, _daemon) = two_grants_and_an_attempt();
    let prometheus = ask(&lab.server, &config, &["status", "--prometheus"]);
    assert!(prometheus.contains("# TYPE knockd_opens_total counter\nknockd_opens_total 2\n"), "{prometheus}");
    assert!(prometheus.contains("knockd_dropped_total{reason=\"not_for_this_host\"} 0"), "{prometheus}");
}

/// SIGUSR1 still logs the counters, the kernel's among them.
#[test]
fn sigusr1_logs_the_counters() {
    let (_lab, _config, daemon) = two_grants_and_an_attempt();
    daemon.signal(libc::SIGUSR1);
    let counters = daemon.line_with(&format!("{}packets=5", log_lines::COUNTERS), WITHIN);
    for part in ["opens=2", "kernel_packets=5", "kernel_drops=0", "evictions=0", "truncated=0"] {
        assert!(counters.contains(part), "`{part}` missing: {counters}");
    }
}

/// Without the daemon: the kernel still holds the grants, and status says where it looked.
#[test]
fn with_no_daemon_status_reads_the_grants_from_the_kernel() {
    let (lab, config, daemon) = two_grants_and_an_attempt();
    assert!(daemon.stop().success());
    let text = ask(&lab.server, &config, &["status", "-c", config.path.to_str().unwrap()]);
    assert!(text.contains("no knockd answers: grants read from the kernel"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ssh") && l.contains("198.18.0.2")), "{text}");
}

/// Not root: said plainly.
#[test]
fn status_as_another_user_says_to_run_it_as_root() {
    require_root(); // to become another user
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", &knockd_path(), "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run as root"), "{out:?}");
}

#[test]
fn an_admin_grants_and_revokes_and_the_log_names_them() {
    let lab = Lab::with_sshd();
    let (config, daemon) = lab.knockd(TWO_DOORS);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT));

    let said = ask(&lab.server, &config, &["grant", CLIENT_V4, "--door", "ssh", "--for", "5m"]);
    assert!(said.contains("door ssh opened for 198.18.0.2"), "{said}");
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    daemon.expect_log(&log_lines::open("ssh", CLIENT_V4, "22/tcp", secs(300), "", &vouched("admin uid 0")), WITHIN);
    let text = ask(&lab.server, &config, &["status"]);
    assert!(text.lines().any(|l| l.contains("198.18.0.2") && l.contains("admin uid 0")), "{text}");
    // The element carries who opened it: nft shows it, and a daemon started again knows it.
    let listing = lab.server.nft(&["list", "set", "inet", "knockd", "ssh_v4"]);
    assert!(listing.contains("comment \"admin uid 0\""), "{listing}");
    assert!(daemon.stop().success());
    let daemon = Daemon::start(&lab.server, &config, &[]);
    let text = ask(&lab.server, &config, &["status"]);
    assert!(text.lines().any(|l| l.contains("198.18.0.2") && l.contains("admin uid 0")), "{text}");

    let said = ask(&lab.server, &config, &["revoke", CLIENT_V4]);
    assert!(said.contains("revoked: ssh: 198.18.0.2: 22/tcp"), "{said}");
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "closed at once");
    daemon.expect_log(&log_lines::revoked("ssh", CLIENT_V4, "22/tcp", 0), WITHIN);

    let refused = admin(&lab.server, &config, &["revoke", CLIENT_V4]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("198.18.0.2 has no grant"), "{refused:?}");
    let refused = admin(&lab.server, &config, &["grant", CLIENT_V4, "--door", "nope"]);
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
    let why = log_lines::staying_root("user knockd could not write the metrics textfile");
    assert!(daemon.logged(&why), "{}", daemon.log_text());
    assert!(text.contains("knockd_grants 0") && text.contains("knockd_opens_total 0"), "{text}");

    config.rewrite(&with_metrics(
        &TWO_DOORS.replace("  web:\n    sequence: [7100]\n    open: {ports: [443], timeout: 10m}\n", ""),
    ));
    assert_eq!(ask(&lab.server, &config, &["reload"]).trim(), log_lines::reloaded(1));
    config.rewrite("doors: [not, a, mapping]\n");
    let out = admin(&lab.server, &config, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("knockd.yaml") && stderr.contains("doors"), "{stderr}");
    assert!(daemon.logged(&log_lines::reload_failed(ANY)), "{}", daemon.log_text());
}

/// doc/status.md against a real document: every field the daemon writes is in the doc's table
/// with the type it has there, every field of the table is written, every counter is listed,
/// and the doc's example has the same fields and schema number.
fn documented_schema_matches(real: &serde_json::Value) {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/doc/status.md")).unwrap();
    // `| `path` | type | meaning |` rows of the schema table, and the counters table's names.
    let rows: Vec<Vec<&str>> = doc.lines().filter(|l| l.starts_with("| `")).map(|l| l.split(" | ").collect()).collect();
    let table: Vec<(String, String)> = rows
        .iter()
        .filter(|r| !r[1].starts_with("total") && !r[1].starts_with("gauge"))
        .map(|r| (r[0].trim_start_matches("| ").trim_matches('`').to_owned(), r[1].to_owned()))
        .collect();
    let counters: Vec<&str> = rows
        .iter()
        .filter(|r| r[1].starts_with("total") || r[1].starts_with("gauge"))
        .flat_map(|r| r[0].split('`').skip(1).step_by(2))
        .collect();
    let fields = leaves(real);
    for (path, value) in &fields {
        let kind = table.iter().find(|(p, _)| p == path).map(|(_, k)| k.as_str());
        let kind = kind.unwrap_or_else(|| panic!("doc/status.md lacks `{path}` ({value})"));
        assert!(has_type(value, kind), "doc/status.md says `{path}` is {kind}; the daemon wrote {value}");
    }
    for (path, _) in &table {
        assert!(fields.iter().any(|(p, _)| p == path), "doc/status.md lists `{path}`, which the daemon did not write");
    }
    for name in real["counters"].as_object().unwrap().keys() {
        assert!(counters.contains(&name.as_str()), "doc/status.md's counters table lacks `{name}`");
    }
    let start = doc.find("```json\n").unwrap() + "```json\n".len();
    let example: serde_json::Value = serde_json::from_str(&doc[start..start + doc[start..].find("```").unwrap()])
        .unwrap_or_else(|e| panic!("doc/status.md's example: {e}"));
    assert_eq!(example["schema"], real["schema"], "the example's schema number");
    let mut example_paths: Vec<String> = leaves(&example).into_iter().map(|(p, _)| p).collect();
    let mut real_paths: Vec<String> = fields.into_iter().map(|(p, _)| p).collect();
    for paths in [&mut example_paths, &mut real_paths] {
        paths.sort();
        paths.dedup();
    }
    assert_eq!(example_paths, real_paths, "doc/status.md's example has other fields than the daemon writes");
}

/// Every field as `doors[].listens` with its value; `counters` is one field (an object).
fn leaves(value: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for (key, v) in value.as_object().unwrap() {
        match v {
            serde_json::Value::Array(items) if items.first().is_some_and(|i| i.is_object()) => {
                for item in items {
                    out.extend(item.as_object().unwrap().iter().map(|(k, v)| (format!("{key}[].{k}"), v.clone())));
                }
            }
            _ => out.push((key.clone(), v.clone())),
        }
    }
    out
}

fn has_type(value: &serde_json::Value, kind: &str) -> bool {
    let nullable = kind.ends_with(" or null");
    match value {
        serde_json::Value::Null => nullable,
        serde_json::Value::Number(_) => kind.starts_with("number"),
        serde_json::Value::String(_) => kind.starts_with("string") && kind != "strings",
        serde_json::Value::Array(items) => kind == "strings" && items.iter().all(|i| i.is_string()),
        serde_json::Value::Object(_) => kind == "object",
        serde_json::Value::Bool(_) => kind.starts_with("boolean"),
    }
}

/// A foreground daemon that left root cannot remove its control socket from a directory only
/// root may change; the helper it started while root does, when it stops and when it is killed.
#[test]
fn a_daemon_that_left_root_leaves_no_control_socket_behind() {
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.yaml", TWO_DOORS);
    let socket = config.control();
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let daemon = Daemon::start(&lab.server, &config, &[]);
        daemon.expect_log(&log_lines::running_as("knockd"), WITHIN);
        assert!(socket.exists(), "the socket is there while the daemon runs");
        let parent = std::fs::metadata(socket.parent().unwrap()).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&parent), 0, "a directory only root may change");
        daemon.signal(signal);
        assert!(eventually(WITHIN, || !socket.exists()), "signal {signal}: {} is left behind", socket.display());
        drop(daemon);
    }
}
