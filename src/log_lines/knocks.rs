//! Lines about knocks and single packets: stages, restarts, timeouts, refusals.

use std::fmt::Display;
use std::net::IpAddr;
use std::time::Duration;

use log::{Level, debug, info, log};

use super::event;
use crate::config::Door;
use crate::doors::Note;

/// `ssh: 198.18.0.2: stage 1 of 3`.
pub fn stage(door: &str, src: &str, stage: usize, of: usize) -> String {
    format!("{door}: {src}: stage {stage} of {of}")
}

/// `ssh: 198.18.0.2: knock out of order, sequence restarted` (debug).
pub fn restarted(door: &str, src: IpAddr) -> String {
    format!("{door}: {src}: knock out of order, sequence restarted")
}

/// `ssh: 198.18.0.2: knock not counted: <why>` (debug).
pub fn not_counted(door: &str, src: IpAddr, why: &str) -> String {
    format!("{door}: {src}: knock not counted: {why}")
}

/// A packet to another host (forwarded, or seen on a bridge) is no knock (debug).
pub fn not_to_this_host(src: IpAddr, dst: IpAddr) -> String {
    format!("{src}: not counted: sent to {dst}, not to this host")
}

/// `ssh: 198.18.0.2: sequence timed out after 2 of 3 knocks (seq_timeout 5s)`.
pub fn seq_timeout(door: &str, src: IpAddr, stage: usize, of: usize, timeout: Duration) -> String {
    let timeout = humantime::format_duration(timeout);
    format!("{door}: {src}: sequence timed out after {stage} of {of} knocks (seq_timeout {timeout})")
}

/// `ssh: 198.18.0.2: SPA packet rejected: replayed`, or without a door when the packet named
/// none of them.
pub fn rejected(door: Option<&str>, src: IpAddr, reason: &str) -> String {
    match door {
        Some(door) => format!("{door}: {src}: {reason}"),
        None => format!("{src}: {reason}"),
    }
}

/// Logs what a kind reported, at its level, with the key-values the classic format reads.
/// `name` is how a source reads (with its host name under `--lookup`).
pub(crate) fn note(note: &Note, doors: &[Door], name: &mut dyn FnMut(IpAddr) -> String) {
    let door = |id: usize| doors[id].name.as_str();
    match *note {
        // The last stage is logged for the classic format (`Stage 3`); knockd's says OPEN.
        Note::Stage { door: id, src, stage: n, of } => {
            let (door, src, last) = (door(id), name(src), n == of);
            info!(event = event::STAGE, door, src, stage = n, last; "{}", stage(door, &src, n, of))
        }
        Note::Restart { door: id, src } => debug!("{}", restarted(door(id), src)),
        Note::Ignored { door: id, src, why } => debug!("{}", not_counted(door(id), src, why)),
        // A lone first knock that goes nowhere is mostly a port scan: debug only.
        Note::TimedOut { door: id, src, stage, of } => {
            let line = seq_timeout(door(id), src, stage, of, doors[id].seq_timeout);
            let level = if stage > 1 { Level::Info } else { Level::Debug };
            log!(level, event = event::SEQ_TIMEOUT, door = door(id), src:% = src, stage; "{line}")
        }
        Note::Rejected { door: Some(id), src, ref reason } => info!("{}", rejected(Some(door(id)), src, reason)),
        Note::Rejected { door: None, src, ref reason } => debug!("{}", rejected(None, src, reason)),
        Note::Changed { door: id, level, ref message } => log!(level, "{}: {message}", door(id)),
        // Counted by its kind; the grant's line says it.
        Note::Accepted { .. } => {}
    }
}

/// A frame that is no knock (truncated, not IP, ...), and why (trace).
pub fn dropped_packet(reason: &dyn Display) -> String {
    format!("dropped a packet: {reason}")
}

/// A knock on one of the doors' ports (trace).
pub fn knock_on(src: IpAddr, port: &dyn Display) -> String {
    format!("{src}: knock on {port}")
}

/// A door that neither opens anything nor runs a command.
pub fn does_nothing(door: &str) -> String {
    format!("{door}: has neither `open` nor a command: completed knocks are only logged")
}
