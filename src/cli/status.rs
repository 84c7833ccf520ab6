//! `knockd status`: asks the running daemon (the control socket); when none answers, reads
//! the grants of the config's doors from the kernel, and says so.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config};
use crate::control::{self, ControlError, GrantStatus, Request, SCHEMA, Status};
use crate::grant::FirewallError;
use crate::grant::ledger::Key;
use crate::grant::nft::{NetlinkFirewall, Ruleset};
use crate::grant::sets::{door_sets, opens};

/// Why no status could be had.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Not root.
    #[error("run as root: the control socket and nftables are root's")]
    NotRoot,
    /// The daemon answered with an error.
    #[error("knockd answered: {0}")]
    Daemon(String),
    /// The control socket failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// No daemon answered, and the config the kernel could be asked about does not load.
    #[error("no knockd answers on {}, and the grants cannot be read from the kernel without a config: {source}", control.display())]
    Config {
        /// The control socket tried.
        control: PathBuf,
        /// Why the config does not load.
        source: config::ConfigError,
    },
    /// No daemon answered, and the kernel could not be asked.
    #[error("no knockd answers on {}; reading the grants from the kernel failed: {source}", control.display())]
    Kernel {
        /// The control socket tried.
        control: PathBuf,
        /// What the kernel said.
        source: FirewallError,
    },
}

/// The status: from the daemon at `socket`, else from the kernel for the doors of the config
/// at `config_path`.
pub fn gather(socket: &Path, config_path: &Path) -> Result<Status, StatusError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(StatusError::NotRoot);
    }
    match control::ask(socket, &Request::Status) {
        Ok(response) => response.status.ok_or(StatusError::Daemon(response.message)),
        Err(ControlError::NoDaemon { .. }) => {
            let config = config::load(config_path, &crate::doors::Kinds)
                .map_err(|source| StatusError::Config { control: socket.to_owned(), source })?;
            from_kernel(&config, config_path)
                .map_err(|source| StatusError::Kernel { control: socket.to_owned(), source })
        }
        Err(e) => Err(e.into()),
    }
}

/// What the kernel holds for `config`'s doors, without the daemon's knowledge.
fn from_kernel(config: &Config, path: &Path) -> Result<Status, FirewallError> {
    let mut firewall = NetlinkFirewall::open()?;
    let mut grants = Vec::new();
    for door in &config.doors {
        for (family, table, set) in door_sets(config, door) {
            let elements = match firewall.list_elements(family, &table, &set) {
                Err(FirewallError::NotFound { .. }) => continue,
                other => other?,
            };
            for e in elements {
                let key = Key { door: door.name.clone(), addr: e.addr, port: e.port };
                let (opens, seconds_left) = (opens(config, &key), e.expires.map(|d| d.as_secs()));
                grants.push(GrantStatus {
                    door: door.name.clone(),
                    address: e.addr,
                    opens,
                    by: e.comment,
                    seconds_left,
                });
            }
        }
    }
    Ok(Status {
        schema: SCHEMA,
        source: "kernel".into(),
        pid: None,
        config: path.display().to_string(),
        uptime_seconds: None,
        table: Ruleset::for_config(config).table_if_any(),
        doors: config.doors.iter().map(crate::engine::door_status).collect(),
        grants,
        attempts: None,
        counters: BTreeMap::new(),
    })
}

fn seconds(s: u64) -> String {
    humantime::format_duration(Duration::from_secs(s)).to_string()
}

/// Rows as an aligned table, the header first.
fn table<const N: usize>(header: [&str; N], rows: Vec<[String; N]>) -> String {
    let header = header.map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// The status for a person.
pub fn format(status: &Status) -> String {
    let mut out = match (status.pid, status.uptime_seconds) {
        (Some(pid), Some(up)) => format!("knockd (pid {pid}) runs {}, up {}", status.config, seconds(up)),
        _ => format!("no knockd answers: grants read from the kernel for the doors of {}", status.config),
    };
    if let Some(table) = &status.table {
        let _ = write!(out, "; nftables table inet {table}");
    }
    out.push_str("\n\n");
    let doors = status.doors.iter().map(|d| {
        let timeout = d.timeout_seconds.map_or_else(|| "-".into(), seconds);
        [d.name.clone(), d.kinds.join(", "), d.listens.join(", "), d.opens.join(", "), timeout]
    });
    out.push_str(&table(["DOOR", "KIND", "LISTENS ON", "OPENS", "FOR"], doors.collect()));
    for d in &status.doors {
        for problem in &d.problems {
            let _ = writeln!(out, "door {}: {problem}", d.name);
        }
    }
    out.push('\n');
    if status.grants.is_empty() {
        out.push_str("no current grants\n");
    } else {
        let grants = status.grants.iter().map(|g| {
            let left = g.seconds_left.map_or_else(|| "-".into(), seconds);
            [g.door.clone(), g.address.to_string(), g.opens.clone(), g.by.clone().unwrap_or_else(|| "-".into()), left]
        });
        out.push_str(&table(["DOOR", "ADDRESS", "OPENS", "BY", "TIME LEFT"], grants.collect()));
    }
    if let Some(attempts) = status.attempts {
        let _ = writeln!(out, "\nattempts in progress: {attempts}");
    }
    if !status.counters.is_empty() {
        let counters: Vec<String> = status.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "counters: {}", counters.join(" "));
    }
    out
}
