//! The validated configuration every loader produces. Nothing downstream parses text.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::action::{Commands, OpenAction};
use super::ports::TcpFlags;
use super::proof::{Proof, ProofSettings};

/// Longest knock sequence accepted, as in the classic knockd (`MAX_PORTS`).
pub const MAX_SEQUENCE_LEN: usize = 32;

/// Default cap on in-progress knock attempts; sized so a spoofed flood stays within a few MiB.
pub const DEFAULT_MAX_ATTEMPTS: usize = 65_536;

/// Default `size` of each of knockd's own sets: the most grants one set holds at once. A flood
/// of spoofed completions fills a set, never the host's memory.
pub const DEFAULT_SET_SIZE: u32 = 65_536;

/// Bounds on `nftables.set_size`.
pub const SET_SIZE_RANGE: (u32, u32) = (16, 1 << 24);

/// Default sequence timeout, the classic knockd's `Seq_Timeout` default.
pub const DEFAULT_SEQ_TIMEOUT: Duration = Duration::from_secs(25);

/// Bounds on durations, shared by every config format so that a config converted from one to
/// the other always loads. They keep a typo (`30h` for `30s`, `0s`) from becoming a surprise.
pub const SEQ_TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3600));
/// Bounds on how long a grant lasts.
pub const OPEN_TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(7 * 86400));
/// Bounds on the time between a start command and its stop command.
pub const CMD_TIMEOUT_RANGE: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(7 * 86400));

/// Checks a duration against one of the ranges above.
pub fn check_range(d: Duration, (min, max): (Duration, Duration)) -> Result<Duration, String> {
    if d < min || d > max {
        return Err(format!(
            "{} is out of range: use {} to {}",
            humantime::format_duration(d),
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// One door: a knock sequence and what it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    /// The door's name: part of set names and log lines.
    pub name: String,
    /// What proves a client: at least one; at most one of them a knock sequence.
    pub proofs: Vec<Proof>,
    /// The whole sequence must arrive within this time of its first knock.
    pub seq_timeout: Duration,
    /// TCP knocks must have these flags set and clear.
    pub tcp_flags: TcpFlags,
    /// Only knocks addressed to this address count (the classic `Target`).
    pub target: Option<IpAddr>,
    /// Only these sources may knock (empty: any), and never these.
    pub from: Vec<ipnet::IpNet>,
    /// Sources never allowed.
    pub not_from: Vec<ipnet::IpNet>,
    /// The nftables grant, if the door opens ports or adds to a set.
    pub open: Option<OpenAction>,
    /// Classic shell commands.
    pub commands: Commands,
}

impl Door {
    /// The door's knock sequence proof (fixed, one-time or rotating), if it has one.
    pub fn sequence(&self) -> Option<&Proof> {
        self.proofs.iter().find(|p| p.is_sequence())
    }

    /// The door's proof of kind `T`, if it has one.
    pub fn proof<T: ProofSettings>(&self) -> Option<&T> {
        self.proofs.iter().find_map(Proof::get)
    }

    /// The door's proof of kind `T`, to change, if it has one.
    pub fn proof_mut<T: ProofSettings>(&mut self) -> Option<&mut T> {
        self.proofs.iter_mut().find_map(Proof::get_mut)
    }

    /// Why knockd takes no packet for the door at all, when its loader left it out.
    pub fn left_out(&self) -> Option<&str> {
        self.proofs.iter().find_map(|p| p.left_out())
    }

    /// What `knockd check` and every start warn about the door's proofs.
    pub fn warnings(&self) -> Vec<String> {
        self.proofs.iter().filter_map(|p| p.warning(self)).collect()
    }

    /// Whether `addr` may knock on this door (`from` / `not_from`).
    pub fn admits(&self, addr: &IpAddr) -> bool {
        admits(&self.from, &self.not_from, addr)
    }
}

/// Whether `addr` is in `from` (or `from` is empty) and not in `not_from`.
pub fn admits(from: &[ipnet::IpNet], not_from: &[ipnet::IpNet], addr: &IpAddr) -> bool {
    (from.is_empty() || from.iter().any(|n| n.contains(addr))) && !not_from.iter().any(|n| n.contains(addr))
}

/// OpenWrt's fw4: the doors' rules live in fw4's table (`nftables.fw4`), put back after its
/// reloads and restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fw4 {
    /// The fw4 zone whose input and forward chains the doors' rules go into (`wan`).
    pub zone: String,
}

/// Where state that must survive a restart lives when the config does not say (the unit's
/// `StateDirectory`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/knockd";

/// Log verbosity from the config; the command line may raise it.
pub type LogLevel = log::LevelFilter;

/// How log lines read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// knockd's own lines: `ssh: 198.18.0.2: stage 1 of 3`.
    #[default]
    Knockd,
    /// The classic knockd's lines, for the log parsers and fail2ban filters written for them:
    /// `198.18.0.2: ssh: Stage 1`, `OPEN SESAME`, and `[YYYY-MM-DD HH:MM]` in the log file.
    Classic,
}

/// Where and how much the daemon logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Most verbose level logged.
    pub level: LogLevel,
    /// Log to syslog (the default; `-n` turns it off).
    pub syslog: bool,
    /// Also append to this file.
    pub file: Option<PathBuf>,
    /// How the lines read (`log.format`; a knockd.conf reads as classic).
    pub format: LogFormat,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { level: LogLevel::Info, syslog: true, file: None, format: LogFormat::Knockd }
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Interfaces to capture on; empty means every interface.
    pub interfaces: Vec<String>,
    /// Name of the `inet` table the daemon owns.
    pub table: String,
    /// The `size` of each set in that table.
    pub set_size: u32,
    /// Inside OpenWrt's fw4 instead of a table of knockd's own.
    pub fw4: Option<Fw4>,
    /// Where and how much to log.
    pub log: LogOptions,
    /// Pid file to write and lock.
    pub pidfile: Option<PathBuf>,
    /// Cap on in-progress knock attempts across all sources and doors.
    pub max_attempts: usize,
    /// Where the daemon keeps what must survive a restart (SPA replay caches).
    pub state_dir: PathBuf,
    /// The user the daemon runs as after start when nothing needs root (`root` keeps root).
    pub user: String,
    /// Files the config file included (access.conf's `%include`), read again on reload.
    pub included: Vec<PathBuf>,
    /// Where the control socket is (`None`: [`crate::control::DEFAULT_SOCKET`]).
    pub control_socket: Option<PathBuf>,
    /// Where to write the counters for node_exporter's textfile collector, every 15 s.
    pub metrics_textfile: Option<PathBuf>,
    /// What classic commands may do (`commands: {privileges: ...}`).
    pub command_privileges: CommandPrivileges,
    /// Every door, in file order.
    pub doors: Vec<Door>,
    /// What the loader noticed and a start logs (`knockd check` prints it): settings knockd
    /// does not honour, stanzas it leaves out, include paths it found another way.
    pub notices: Vec<Notice>,
}

/// One thing a loader noticed about a config that is valid all the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// How loud: `Warn` for what the admin should change, `Info` for what is merely said.
    pub level: log::Level,
    /// The line, naming the file, the line number and the key.
    pub message: String,
}

/// The daemon's table when the config does not name one.
pub const DEFAULT_TABLE: &str = "knockd";

/// The user the daemon runs as after start when the config does not say: a user of its own
/// (the Debian package creates it), never `nobody`, whose files any other service running as
/// `nobody` could have written.
pub const DEFAULT_USER: &str = "knockd";

/// What classic commands may do. They run as root either way (a door with commands keeps the
/// daemon root); the difference is the capabilities an exec gives them back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CommandPrivileges {
    /// CAP_NET_ADMIN and CAP_NET_RAW only, like the daemon: enough for `nft`, `iptables`,
    /// `ipset`; not for switching users, binding ports below 1024 or writing files root does
    /// not own.
    #[default]
    Network,
    /// Every capability root has (the daemon itself still keeps only its two): commands run as
    /// they did under the classic knockd.
    Full,
}

impl Config {
    /// A config with these doors and every other setting at its default: what the file
    /// formats that cannot say more (knockd.conf, access.conf) start from.
    pub fn with_doors(doors: Vec<Door>) -> Self {
        Config {
            interfaces: Vec::new(),
            table: DEFAULT_TABLE.into(),
            set_size: DEFAULT_SET_SIZE,
            fw4: None,
            log: LogOptions::default(),
            pidfile: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            state_dir: DEFAULT_STATE_DIR.into(),
            user: DEFAULT_USER.into(),
            included: Vec::new(),
            control_socket: None,
            metrics_textfile: None,
            command_privileges: CommandPrivileges::default(),
            doors,
            notices: Vec::new(),
        }
    }

    /// Every door's proofs.
    fn proofs(&self) -> impl Iterator<Item = &Proof> {
        self.doors.iter().flat_map(|d| &d.proofs)
    }

    /// Whether a door keeps state that must survive a restart, in [`Config::state_dir`] (replay
    /// caches, rotating sequences used).
    pub fn keeps_state(&self) -> bool {
        self.proofs().any(|p| p.keeps_state())
    }

    /// Whether a door's secrets are written in the config itself (access.conf's `KEY_BASE64`),
    /// which makes the config files secrets too.
    pub fn has_inline_secrets(&self) -> bool {
        self.proofs().any(|p| p.inline_secrets())
    }

    /// Every file the doors read their keys and sequences from, read again on reload.
    pub fn door_files(&self) -> Vec<&std::path::Path> {
        self.proofs().flat_map(|p| p.files()).collect()
    }

    /// Makes every relative path in the config absolute against `dir`, the directory the
    /// daemon was started in: the background daemon changes to /, and a reload, a log file
    /// reopened or a one-time file rewritten must still mean the files the admin named.
    pub fn anchor_paths(&mut self, dir: &std::path::Path) {
        let own = [&mut self.log.file, &mut self.pidfile, &mut self.control_socket, &mut self.metrics_textfile];
        let doors = self.doors.iter_mut().flat_map(|d| &mut d.proofs).flat_map(|p| p.files_mut());
        let all = own.into_iter().flatten().chain([&mut self.state_dir]).chain(&mut self.included).chain(doors);
        for path in all.filter(|p| p.is_relative()) {
            *path = dir.join(&*path);
        }
    }

    /// Why the daemon must stay root after start, if it must: a door runs commands (they run
    /// as the daemon), or a proof needs it (rewrites a one-time sequence file in a directory
    /// root owns).
    pub fn needs_root(&self) -> Option<String> {
        self.doors.iter().find_map(|door| {
            if !door.commands.is_empty() {
                return Some(format!("door {} runs commands", door.name));
            }
            let why = door.proofs.iter().find_map(|p| p.needs_root())?;
            Some(format!("door {} {why}", door.name))
        })
    }
}

/// Longest interface name the kernel takes (`IFNAMSIZ` less the terminating NUL).
pub const MAX_IFNAME: usize = 15;

/// Checks an interface name as the kernel would take it.
pub fn check_interface(name: &str) -> Result<(), String> {
    let valid = !name.is_empty() && name.len() <= MAX_IFNAME && !name.contains(['/', ' ', '\0', ':']);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an interface name: use the name `ip link` shows (at most {MAX_IFNAME} characters)"
        ))
    }
}

/// Checks a name used in nftables object names and log lines: letters, digits, `_` and `-`,
/// starting with a letter, so it is a valid nft identifier without quoting.
pub fn check_identifier(name: &str, max_len: usize) -> Result<(), String> {
    let valid = name.len() <= max_len
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name: use 1-{max_len} letters, digits, `_` or `-`, starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(check_identifier("ssh", 32).is_ok());
        assert!(check_identifier("web-2_x", 32).is_ok());
        assert!(check_identifier("2ssh", 32).is_err());
        assert!(check_identifier("", 32).is_err());
        assert!(check_identifier("a b", 32).is_err());
        assert!(check_identifier(&"a".repeat(33), 32).is_err());
    }
}
