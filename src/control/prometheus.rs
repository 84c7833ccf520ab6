//! The status document's counters in Prometheus' text format, for `knockd status --prometheus`
//! and for node_exporter's textfile collector (`metrics.textfile`).

use std::fmt::Write;

use super::Status;

/// Values that go up and down; every other counter only grows (and is kept across reloads).
pub const GAUGES: [&str; 4] = ["attempts", "attempts_cap", "pending_stops", "grants"];

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
        let _ = writeln!(out, "# HELP {metric} knockd's {} counter.", name.replace('_', " "));
        let _ = writeln!(out, "# TYPE {metric} {kind}\n{metric} {value}");
    }
    if !dropped.is_empty() {
        out.push_str("# HELP knockd_dropped_total Packets dropped before matching, by reason.\n");
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
            schema: 1,
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
    }
}
