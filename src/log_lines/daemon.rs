//! Lines about the daemon's life: start, reloads, shutdown.

use std::fmt::Display;

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

/// The `knockd` user is missing: the daemon stays root, and how to fix that.
pub fn no_default_user(user: &str) -> String {
    format!(
        "user {user} does not exist: staying root after start (with CAP_NET_ADMIN and CAP_NET_RAW only). Create it \
         (`useradd --system --no-create-home --shell /usr/sbin/nologin {user}`; the Debian package does), or set \
         `user: root` to say so"
    )
}

/// A reload that would move `state_dir`: refused, since what is kept there (replay caches, used
/// sequences) is read at start and made ready for the daemon's user then; a door switched
/// over would let what it accepted before the reload be replayed after the next restart.
pub fn state_dir_moved(running: &Path, new: &Path) -> String {
    format!(
        "state_dir would move from {} to {}: replay caches and used sequences are kept there and read at \
         start, so a reload cannot move them: restart knockd",
        running.display(),
        new.display()
    )
}

/// The state directory belonged to another user (an upgrade from a run as nobody): taken back.
pub fn state_dir_given(dir: &Path, user: &str, was_uid: u32) -> String {
    format!("state directory {}: given to {user} (it was uid {was_uid}'s)", dir.display())
}

/// The state directory could not be given to the daemon's user.
pub fn state_dir_not_given(dir: &Path, user: &str, why: &dyn Display) -> String {
    format!("state directory {}: cannot give it to {user}: {why}", dir.display())
}

/// How the SIGUSR1 line starts; `name=value` pairs follow (doc/status.md names the counters).
pub const COUNTERS: &str = "counters: ";

/// SIGUSR1: the counters on one line; `counters` and `dropped` are `name=value` lists.
pub fn counters(packets: u64, kernel_packets: u64, kernel_drops: u64, counters: &str, dropped: &str) -> String {
    format!(
        "{COUNTERS}packets={packets} kernel_packets={kernel_packets} kernel_drops={kernel_drops} {counters} dropped: {dropped}"
    )
}

/// Under systemd, `-d` means nothing: systemd keeps the daemon in the background.
pub const DETACH_IGNORED: &str = "-d is ignored under systemd: systemd runs the daemon in the background";

/// The pid file could not be written; under systemd nothing is lost.
pub fn no_pid_file(why: &dyn Display) -> String {
    format!("{why}: going on without a pid file (systemd knows the pid)")
}

/// nftables' change events cannot be subscribed to: the chain is polled instead.
pub fn cannot_watch_nftables(why: &dyn Display) -> String {
    format!("cannot watch nftables for changes ({why}): reading the chain back twice a second instead")
}

/// The control socket's file cannot be removed at exit.
pub fn socket_stays(why: &dyn Display) -> String {
    format!("{why}: the socket file stays behind when the daemon exits")
}

/// `commands: {privileges: full}`: said at start, since it gives commands all of root.
pub const COMMANDS_FULL_PRIVILEGES: &str =
    "commands run with every capability root has (`commands: {privileges: full}`)";

/// The control socket refused someone who is not root.
pub fn control_refused(uid: u32) -> String {
    format!("control socket: refused a request from uid {uid}")
}

/// The metrics file could not be made: the grants could not be read.
pub fn metrics_cannot_read(why: &dyn Display) -> String {
    format!("metrics: cannot read the grants: {why}")
}

/// The metrics file could not be written; `hint` is said the first time.
pub fn metrics_cannot_write(path: &Path, why: &dyn Display, hint: &str) -> String {
    format!("metrics: cannot write {}: {why}{hint}", path.display())
}
