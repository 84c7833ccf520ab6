//! The classic knockd's log lines (`log.format: classic`, and every knockd.conf), for the log
//! parsers and fail2ban filters written for them:
//!
//! ```text
//! [2026-11-25 14:03] 198.18.0.2: openSSH: Stage 1
//! [2026-11-25 14:03] 198.18.0.2: openSSH: OPEN SESAME
//! [2026-11-25 14:03] openSSH: running command: /sbin/iptables -A INPUT -s 198.18.0.2 ...
//! ```
//!
//! The lines that knockd 0.8 wrote about knocks and commands are written with its words; the
//! log file's lines start with its `[YYYY-MM-DD HH:MM]` in local time. Lines the classic daemon
//! had no equivalent for keep knockd's words. Which line is which comes from the record's
//! key-values (`event = "stage"`, `door`, `src`, ...), which the engine and the command runner
//! attach; their text is never parsed.

use log::Record;
use log::kv::Key;

use crate::log_lines::{classic, event};

/// One key-value of a record, as text.
fn field(record: &Record, name: &str) -> Option<String> {
    record.key_values().get(Key::from_str(name)).map(|v| v.to_string())
}

/// Whether the record is a line only the classic format writes (the last stage of a
/// sequence: knockd's own format says OPEN instead).
pub fn classic_only(record: &Record) -> bool {
    field(record, "last").as_deref() == Some("true")
}

/// The record's lines in the classic daemon's words, or `None` when it had no such line.
pub fn lines(record: &Record) -> Option<Vec<String>> {
    let event = field(record, "event")?;
    let get = |name: &str| field(record, name).unwrap_or_default();
    let (door, src) = (get("door"), get("src"));
    Some(match event.as_str() {
        event::STAGE => vec![classic::stage(&src, &door, &get("stage"))],
        event::OPEN => vec![classic::open_sesame(&src, &door)],
        event::SEQ_TIMEOUT => vec![classic::seq_timeout(&src, &door, &get("stage"))],
        event::COMMAND if get("stop") == "true" => {
            vec![classic::command_timeout(&src, &door), classic::running_command(&door, &get("command"))]
        }
        event::COMMAND => vec![classic::running_command(&door, &get("command"))],
        event::COMMAND_FAILED => match get("code") {
            code if code.is_empty() => return None,
            code => vec![classic::non_zero_status(&door, &code)],
        },
        event::START => vec![classic::starting_up(&get("interfaces"))],
        _ => return None,
    })
}

/// `[YYYY-MM-DD HH:MM]` in local time for `unix_seconds`, as the classic daemon stamped its
/// log file's lines.
pub fn stamp(unix_seconds: i64) -> String {
    match super::clock::local(unix_seconds) {
        Some(t) => format!("[{:04}-{:02}-{:02} {:02}:{:02}]", t.year, t.month, t.day, t.hour, t.minute),
        None => format!("[@{unix_seconds}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(record: &Record) -> Vec<String> {
        lines(record).unwrap_or_default()
    }

    #[test]
    fn classic_words() {
        let kvs: &[(&str, &str)] = &[("event", "stage"), ("door", "openSSH"), ("src", "198.18.0.2"), ("stage", "2")];
        let args = format_args!("openSSH: 198.18.0.2: stage 2 of 3");
        let record = Record::builder().args(args).key_values(&kvs).build();
        assert_eq!(lines_of(&record), ["198.18.0.2: openSSH: Stage 2"]);
        let kvs: &[(&str, &str)] =
            &[("event", "command"), ("door", "d"), ("src", "198.18.0.2"), ("stop", "true"), ("command", "x")];
        let record = Record::builder().args(format_args!("")).key_values(&kvs).build();
        assert_eq!(lines_of(&record), ["198.18.0.2: d: command timeout", "d: running command: x"]);
        let record = Record::builder().args(format_args!("plain")).build();
        assert!(lines(&record).is_none(), "a line without an event keeps its words");
    }

    #[test]
    fn stamp_has_the_classic_shape() {
        let s = stamp(1_700_000_000);
        assert_eq!(s.len(), "[2023-11-14 22:13]".len(), "{s}");
        assert!(s.starts_with("[2023-11-1") && s.ends_with(']'), "{s}");
    }
}
