//! Lines about the daemon's life: start, reloads, shutdown.

use std::path::Path;

/// How the line that says the daemon is up starts, whatever it listens on: what to wait for.
pub const LISTENING: &str = "listening on ";

/// `listening on all interfaces for 1 door(s) of /etc/knockd.yaml; nftables table inet knockd
/// installed`. `installed` describes what was installed, if anything was.
pub fn listening(interfaces: &str, doors: usize, config: &Path, installed: Option<&str>) -> String {
    let table = installed.map(|t| format!("; {t} installed")).unwrap_or_default();
    format!("{LISTENING}{interfaces} for {doors} door(s) of {}{table}", config.display())
}

/// SIGHUP received.
pub fn reloading(config: &Path) -> String {
    format!("SIGHUP: reloading {}", config.display())
}

/// `reloaded: 2 door(s)`, with what changed after it.
pub fn reloaded(doors: usize) -> String {
    format!("reloaded: {doors} door(s)")
}

/// A reload that failed, and why: nothing changed.
pub fn reload_failed(why: &str) -> String {
    format!("reload failed, keeping the running config: {why}")
}

/// What stopping leaves behind, and how to undo it: the guarded ports stay closed to everyone
/// but the current grants, on purpose. `undo` is the command that opens them at once.
pub fn shutting_down(guarded: &[String], undo: &str) -> String {
    if guarded.is_empty() {
        return "shutting down".into();
    }
    format!(
        "shutting down; {} stay closed to all but current grants until those time out (to open them now: {undo})",
        guarded.join(", ")
    )
}

/// After start, the daemon runs as its own user with two capabilities.
pub fn running_as(user: &str) -> String {
    format!("running as user {user} with CAP_NET_ADMIN and CAP_NET_RAW only")
}

/// After start, the daemon stays root, and why.
pub fn staying_root(why: &str) -> String {
    format!("staying root after start: {why}")
}
