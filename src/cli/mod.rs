//! The command lines of both binaries, in the library so that man pages and shell completions
//! are generated from the very same definitions (`KNOCKD_WRITE_DOCS=1 cargo test --test docs`),
//! and what `knockd check` and `knockd status` print ([`report`]).

pub mod host_firewall;
pub mod pipe;
pub mod programs;
pub mod report;
pub mod status;

/// The `knock` client's command line lives with the client, which sends the kinds' proofs.
pub use crate::client::cli::KnockCli;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

/// Port-knocking daemon: opens ports in nftables (or runs commands) for clients that knock
/// the right sequence, or send fwknop's single packets. Reads knockd.yaml, a classic knockd.conf
/// or fwknopd's access.conf.
#[derive(Parser, Debug)]
#[command(name = "knockd", version)]
pub struct KnockdCli {
    /// What to do instead of running the daemon.
    #[command(subcommand)]
    pub command: Option<KnockdCommand>,
    /// Config file: knockd.yaml, a classic knockd.conf or fwknopd's access.conf, detected from
    /// its content. Default: /etc/knockd.yaml if it exists, else /etc/knockd.conf (for the
    /// daemon, check, status and the systemd unit alike).
    #[arg(
        short = 'c',
        long = "configfile",
        visible_alias = "config",
        value_name = "FILE",
        default_value_os_t = default_config(),
        hide_default_value = true,
        global = true
    )]
    pub config: PathBuf,
    /// Where state that must survive a restart is kept (replay caches, used rotating
    /// sequences); overrides the config's `state_dir` (access.conf has no way to say it).
    /// Default /var/lib/knockd.
    #[arg(long = "state-dir", value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Run in the background once started (writes a pid file).
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,
    /// Listen only on this interface (repeatable; overrides the config; `check` checks that way).
    #[arg(short = 'i', long = "interface", value_name = "NAME", global = true)]
    pub interfaces: Vec<String>,
    /// More log output (repeatable).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log level: 0 errors, 1 knocks and grants (default), 2 debug, 3 trace, 4 trace with library
    /// internals. `-l` without a level is the classic knockd's `-l`: --lookup.
    #[arg(
        short = 'l',
        long = "loglevel",
        value_name = "0..4",
        num_args = 0..=1,
        default_missing_value = "lookup",
        value_parser = loglevel
    )]
    pub loglevel: Option<LogLevelFlag>,
    /// Also log to this file.
    #[arg(short = 'L', long = "logfile", short_alias = 'g', value_name = "FILE")]
    pub logfile: Option<PathBuf>,
    /// Do not log to syslog.
    #[arg(short = 'n', long = "no-syslog")]
    pub no_syslog: bool,
    /// Also log to stdout.
    #[arg(short = 's', long = "stdout")]
    pub stdout: bool,
    /// Debug mode: stay in the foreground, log at debug level to stderr only.
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Pid file (default with -d: /run/knockd.pid).
    #[arg(short = 'p', long = "pidfile", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Ignore IPv6 knocks.
    #[arg(short = '4', long = "only-ip-v4")]
    pub only_ipv4: bool,
    /// Show host names (reverse DNS, looked up in the background) next to addresses in logs.
    #[arg(long = "lookup")]
    pub lookup: bool,
    /// Keep every capability (by default only CAP_NET_ADMIN and CAP_NET_RAW are kept after
    /// start-up; commands of classic doors get the same).
    #[arg(long = "keep-capabilities")]
    pub keep_capabilities: bool,
    /// The control socket: where the daemon listens, and where `status`, `revoke`, `grant`
    /// and `reload` ask it (default: the config's `control_socket`, else /run/knockd/control).
    #[arg(long = "control", value_name = "PATH", global = true)]
    pub control: Option<PathBuf>,
    /// fwknopd.conf to read with an access.conf (default: the fwknopd.conf beside it, if there
    /// is one): its interface, port, packet age and verbosity carry over; every key knockd does
    /// not honour is named in a warning.
    #[arg(long = "fwknopd-conf", value_name = "FILE", global = true)]
    pub fwknopd_conf: Option<PathBuf>,
    /// Print the config FILE (a classic knockd.conf, fwknopd's access.conf, or YAML) as
    /// knockd.yaml and exit. Keys written in an access.conf stay in the YAML: redirected to a
    /// file, that file is made mode 600.
    #[arg(
        long = "convert",
        value_name = "FILE",
        conflicts_with_all = ["daemon", "interfaces", "debug", "pidfile", "only_ipv4", "lookup", "state_dir"]
    )]
    pub convert: Option<PathBuf>,
}

/// `-l`'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevelFlag {
    /// A level, 0 to 4.
    Level(u8),
    /// `-l` alone, as the classic knockd (and its `/etc/default/knockd`) spells `--lookup`.
    Lookup,
}

fn loglevel(text: &str) -> Result<LogLevelFlag, String> {
    match text {
        "lookup" => Ok(LogLevelFlag::Lookup),
        _ => match text.parse::<u8>() {
            Ok(level) if level <= 4 => Ok(LogLevelFlag::Level(level)),
            _ => Err(format!("`{text}` is not a log level: use 0 to 4")),
        },
    }
}

/// The config file when `-c` does not name one: /etc/knockd.yaml if it exists, else
/// /etc/knockd.conf (the classic daemon's, which loads unchanged).
pub fn default_config() -> PathBuf {
    default_config_in(Path::new("/etc"))
}

/// [`default_config`] in `dir` instead of /etc.
pub fn default_config_in(dir: &Path) -> PathBuf {
    let yaml = dir.join("knockd.yaml");
    if yaml.exists() { yaml } else { dir.join("knockd.conf") }
}

/// When `config` is a knockd.yaml with a knockd.conf beside it, what to say about the one not
/// read (after `--convert`, the old file stays, and edits to it would change nothing).
pub fn unread_beside(config: &Path) -> Option<String> {
    let conf = config.with_file_name("knockd.conf");
    (config.file_name()? == "knockd.yaml" && conf.exists()).then(|| {
        format!("{} is there too and is not read: without -c, knockd reads {}", conf.display(), config.display())
    })
}

impl KnockdCli {
    /// The log level `-l` gives, if it gives one.
    pub fn log_level(&self) -> Option<u8> {
        match self.loglevel {
            Some(LogLevelFlag::Level(level)) => Some(level),
            _ => None,
        }
    }

    /// Whether to look up host names: `--lookup`, or the classic `-l`.
    pub fn lookup(&self) -> bool {
        self.lookup || self.loglevel == Some(LogLevelFlag::Lookup)
    }

    /// Makes the paths given on the command line absolute against `dir`, the directory
    /// knockd was started in, as [`crate::config::Config::anchor_paths`] does for the file's:
    /// the background daemon changes to /.
    pub fn anchor_paths(&mut self, dir: &Path) {
        let optional =
            [&mut self.state_dir, &mut self.logfile, &mut self.pidfile, &mut self.control, &mut self.fwknopd_conf];
        for path in optional.into_iter().flatten().chain([&mut self.config]).filter(|p| p.is_relative()) {
            *path = dir.join(&*path);
        }
    }

    /// What a load takes from the command line: where relative includes may also be (where
    /// knockd runs), and `--fwknopd-conf`.
    pub fn load_options(&self) -> crate::config::LoadOptions {
        let trust = crate::config::Trust::default();
        crate::config::LoadOptions {
            start_dir: std::env::current_dir().ok(),
            fwknopd_conf: self.fwknopd_conf.clone(),
            trust,
        }
    }

    /// The control socket: `--control`, else the config's `control_socket` (when the config
    /// loads), else the default for its table in this network namespace.
    pub fn control_path(&self, config: Option<&crate::config::Config>) -> PathBuf {
        self.control.clone().or_else(|| config.and_then(|c| c.control_socket.clone())).unwrap_or_else(|| {
            crate::control::default_socket(config.map_or(crate::config::DEFAULT_TABLE, |c| c.table.as_str()))
        })
    }
}

/// What `knockd` does instead of running, for admins.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum KnockdCommand {
    /// Validate the config as a start would (every key and sequence file is read), print the
    /// nftables objects it would create, and warn about likely mistakes; changes nothing.
    /// Exit status: 0 valid, 1 invalid (or an attached set a start would refuse, or an
    /// access.conf stanza a start would leave out), 3 valid but it would drop new SSH
    /// connections to the port this session came in on (or a door's sequence holds that port),
    /// 4 valid but another table's chain drops what a door opens.
    Check {
        /// Exit 0 even when a door guards this SSH session's port (or knocks on it): you have
        /// checked from a second terminal that a knock lets you in.
        #[arg(long = "lockout-ok")]
        lockout_ok: bool,
    },
    /// Ask the running daemon for its doors, grants (who opened each, time left), attempts in
    /// progress and counters; with no daemon running, read the grants from the kernel.
    Status {
        /// Print the status as one JSON document (schema: /usr/share/doc/knockd/status.md).
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// Print the counters in Prometheus' text format.
        #[arg(long)]
        prometheus: bool,
    },
    /// Remove an address's grants now (and run the stop commands of classic doors now).
    Revoke {
        /// The address.
        address: IpAddr,
        /// Only this door's grants (default: every door's).
        #[arg(long, value_name = "NAME")]
        door: Option<String>,
    },
    /// Open a door for an address, as if it had knocked (the log names your uid).
    Grant {
        /// The address.
        address: IpAddr,
        /// The door.
        #[arg(long, value_name = "NAME")]
        door: String,
        /// For how long (default: the door's timeout).
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
        /// For a door whose clients name ports (fwknop): a port to open (repeatable; default:
        /// every port the door allows).
        #[arg(long = "port", value_name = "PORT[/PROTO]")]
        ports: Vec<String>,
    },
    /// Read the config file again and switch to it; print the result (SIGHUP does the same,
    /// silently).
    Reload,
}
