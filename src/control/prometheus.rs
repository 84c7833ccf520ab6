//! The status document's counters in Prometheus' text format, for `knockd status --prometheus`
//! and for node_exporter's textfile collector (`metrics.textfile`).

use std::fmt::Write;

use super::Status;
use crate::doors::{Counter, Measure};

/// The status document's counters of its own (the daemon's, besides the engine's and the
/// kinds', which the caller describes).
static OWN: [Counter; 3] = [
    Counter::new("kernel_packets", Measure::Total, "Packets the kernel's capture sockets saw.").always(),
    Counter::new(
        "kernel_drops",
        Measure::Total,
        "Packets the kernel dropped because the daemon's capture queue was full.",
    )
    .always(),
    Counter::new("grants", Measure::Gauge, "Grants live in the kernel now.").always(),
];

/// `name`'s description among `described` and the document's own; a counter without one is a
/// total whose sentence says where it is documented.
fn describe<'a>(name: &str, described: &[&'a Counter]) -> (Measure, std::borrow::Cow<'a, str>) {
    match described.iter().copied().chain(OWN.iter()).find(|c| c.name == name) {
        Some(c) => (c.measure, c.help.into()),
        None => {
            (Measure::Total, format!("The {} counter (doc/status.md describes it).", name.replace('_', " ")).into())
        }
    }
}

/// One `# HELP`, `# TYPE` and sample per counter, `knockd_` before each name; gauges keep
/// their name, running totals get `_total`. Dropped packets are one family, by reason. What
/// each counter is comes from `described` (the engine's and the kinds' counters).
pub fn render(status: &Status, described: &[&Counter]) -> String {
    let mut out = String::new();
    let mut dropped = Vec::new();
    for (name, value) in &status.counters {
        if let Some(reason) = name.strip_prefix("dropped_") {
            dropped.push((reason, value));
            continue;
        }
        let (measure, help) = describe(name, described);
        let (metric, kind) = match measure {
            Measure::Gauge => (format!("knockd_{name}"), "gauge"),
            Measure::Total => (format!("knockd_{name}_total"), "counter"),
        };
        let _ = writeln!(out, "# HELP {metric} {help}");
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
        let text = render(&status, &crate::engine::counter_descriptions());
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
        let described = crate::engine::counter_descriptions();
        for name in names.filter(|n| !n.starts_with("dropped_")) {
            let sentence = describe(name, &described).1;
            assert!(!sentence.contains("doc/status.md describes it"), "{name} has no help sentence");
            assert!(sentence.ends_with('.') && sentence.split(' ').count() >= 5, "{name}: {sentence}");
        }
    }
}
