//! The status document's counters in Prometheus' text format, for `knockd status --prometheus`
//! and for node_exporter's textfile collector (`metrics.textfile`).

use std::fmt::Write;

use super::Status;

/// Values that go up and down; every other counter only grows (and is kept across reloads).
pub const GAUGES: [&str; 4] = ["attempts", "attempts_cap", "pending_stops", "grants"];

/// What each counter counts, for its `# HELP` line (doc/status.md says the same).
const HELP: [(&str, &str); 21] = [
    ("packets", "Packets the capture handed to the daemon (knocks and single packets)."),
    ("kernel_packets", "Packets the kernel's capture sockets saw."),
    ("kernel_drops", "Packets the kernel dropped because the daemon's capture queue was full."),
    ("opens", "Grants made: completed knocks, accepted single packets and admins' grants."),
    ("grant_errors", "Grants the firewall refused; each is logged with the kernel's reason."),
    ("restarts", "Knock attempts restarted by a knock out of order."),
    ("timeouts", "Knock attempts that ran past their door's seq_timeout."),
    ("expired", "Knock attempts forgotten because they could no longer complete in time."),
    ("evictions", "Knock attempts evicted because the attempt table was full (limits.max_attempts)."),
    ("attempts", "Knock attempts in progress now."),
    ("attempts_cap", "The most knock attempts kept at once (limits.max_attempts)."),
    ("grants", "Grants live in the kernel now."),
    ("pending_stops", "Stop commands of classic doors waiting for their cmd_timeout."),
    ("spa_accepted", "Single packets (SPA and fwknop) that passed every check."),
    ("spa_rejected", "Single packets (SPA and fwknop) refused by a check; the log says which."),
    ("spa_verified", "SPA signatures and MACs checked."),
    (
        "spa_dropped_in_flood",
        "SPA packets left unchecked because their source network's share of the budget was spent.",
    ),
    ("fwknop_checked", "fwknop packets whose HMAC was checked."),
    (
        "commands_refused",
        "Completions whose start command was not run because 256 were already waiting (a flood, say).",
    ),
    (
        "commands_merged",
        "Completions whose start command was already waiting or running for the same source: run once.",
    ),
    ("fwknop_dropped_in_flood", "fwknop packets left unchecked because their source network's share was spent."),
];

/// `name`'s help sentence; a counter added without one still gets a sentence that says where
/// it is documented.
fn help(name: &str) -> String {
    match HELP.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => (*text).to_owned(),
        None => format!("The {} counter (doc/status.md describes it).", name.replace('_', " ")),
    }
}

/// One `# HELP`, `# TYPE` and sample per counter, `knockd_` before each name; gauges keep
/// their name, running totals get `_total`. Dropped packets are one family, by reason.
pub fn render(status: &Status) -> String {
    let mut out = String::new();
    let mut dropped = Vec::new();
    for (name, value) in &status.counters {
        if let Some(reason) = name.strip_prefix("dropped_") {
            dropped.push((reason, value));
            continue;
        }
        let (metric, kind) = if GAUGES.contains(&name.as_str()) {
            (format!("knockd_{name}"), "gauge")
        } else {
            (format!("knockd_{name}_total"), "counter")
        };
        let _ = writeln!(out, "# HELP {metric} {}", help(name));
        let _ = writeln!(out, "# TYPE {metric} {kind}\n{metric} {value}");
    }
    if !dropped.is_empty() {
        out.push_str(
            "# HELP knockd_dropped_total Packets dropped before matching, by reason (truncated, not for this host, \
             ...).\n",
        );
        out.push_str("# TYPE knockd_dropped_total counter\n");
        for (reason, value) in dropped {
            let _ = writeln!(out, "knockd_dropped_total{{reason=\"{reason}\"}} {value}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_dropped_reasons() {
        let counters = [("opens", 3), ("attempts", 2), ("dropped_truncated", 5), ("dropped_bad_version", 1)];
        let status = Status {
            schema: super::super::SCHEMA,
            source: "daemon".into(),
            pid: Some(1),
            config: "/etc/knockd.yaml".into(),
            uptime_seconds: Some(5),
            table: None,
            doors: Vec::new(),
            grants: Vec::new(),
            attempts: Some(2),
            counters: counters.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        };
        let text = render(&status);
        assert!(text.contains("# TYPE knockd_opens_total counter\nknockd_opens_total 3\n"), "{text}");
        assert!(text.contains("# TYPE knockd_attempts gauge\nknockd_attempts 2\n"), "{text}");
        assert!(text.contains("knockd_dropped_total{reason=\"truncated\"} 5\n"), "{text}");
        assert_eq!(text.matches("# TYPE knockd_dropped_total").count(), 1);
        assert!(text.contains("# HELP knockd_opens_total Grants made: completed knocks"), "{text}");
    }

    /// Every counter doc/status.md lists has a sentence of its own, not the generic one.
    #[test]
    fn every_documented_counter_has_a_help_sentence() {
        let doc = include_str!("../../doc/status.md");
        let section = &doc[doc.find("## Counters").expect("a counters section")..];
        let names = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|l| l.split(" | ").next().unwrap_or("").split('`').skip(1).step_by(2));
        for name in names.filter(|n| !n.starts_with("dropped_")) {
            let sentence = help(name);
            assert!(!sentence.contains("doc/status.md describes it"), "{name} has no help sentence");
            assert!(sentence.ends_with('.') && sentence.split(' ').count() >= 5, "{name}: {sentence}");
        }
    }
}
