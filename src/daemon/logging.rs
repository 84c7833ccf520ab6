//! Where log lines go: syslog (ident `knockd`, facility daemon), a log file, stdout, stderr,
//! any combination. Sinks are reopened after forking into the background (syslog lines carry
//! the pid) and on SIGHUP (so logrotate can move the file away).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Where to log and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// Most verbose level logged.
    pub level: LevelFilter,
    /// Also log the netlink crates' own messages (`-l 4`).
    pub libraries: bool,
    /// Log to syslog.
    pub syslog: bool,
    /// Also append to this file.
    pub file: Option<PathBuf>,
    /// Also write to stdout (`-s`).
    pub stdout: bool,
    /// Write to stderr (`-D`).
    pub stderr: bool,
    /// Under systemd: stderr lines prefixed with `<priority>`, which the journal reads.
    pub journal: bool,
}

/// A sink that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the log file {}: {source}", path.display())]
pub struct LogFileError {
    /// The log file that could not be opened.
    pub path: PathBuf,
    /// Why not.
    #[source]
    pub source: std::io::Error,
}

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

enum Sink {
    Syslog(Syslog),
    File(File),
    Stdout,
    Stderr,
    Journal,
}

struct Logger {
    targets: Targets,
    sinks: Mutex<Vec<Sink>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the logger. A missing syslog socket is reported on stderr and skipped; a log file
/// that cannot be opened is an error.
pub fn init(targets: Targets) -> Result<(), LogFileError> {
    let sinks = open(&targets)?;
    let level = targets.level;
    let logger = LOGGER.get_or_init(|| Logger { targets, sinks: Mutex::new(sinks) });
    // A second init (tests) keeps the first logger.
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
    Ok(())
}

/// Whether log lines already go to the terminal's stderr (`-D`, or under systemd's journal):
/// then an error is said once, by the log, not also by the binary.
pub fn writes_stderr() -> bool {
    LOGGER.get().is_some_and(|l| l.targets.stderr || l.targets.journal)
}

/// Reopens every sink: after a fork, and on SIGHUP.
pub fn reopen() -> Result<(), LogFileError> {
    let Some(logger) = LOGGER.get() else { return Ok(()) };
    let sinks = open(&logger.targets)?;
    *logger.sinks.lock().unwrap_or_else(|e| e.into_inner()) = sinks;
    Ok(())
}

fn open(targets: &Targets) -> Result<Vec<Sink>, LogFileError> {
    let mut sinks = Vec::new();
    if targets.syslog {
        let formatter = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_DAEMON,
            hostname: None,
            process: "knockd".into(),
            pid: std::process::id(),
        };
        match syslog::unix(formatter) {
            Ok(logger) => sinks.push(Sink::Syslog(logger)),
            Err(e) => eprintln!("knockd: syslog is not available ({e}); not logging there"),
        }
    }
    if let Some(path) = &targets.file {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            // Never through a link: whoever could place one would choose what root appends to.
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|source| LogFileError { path: path.clone(), source })?;
        sinks.push(Sink::File(file));
    }
    if targets.stdout {
        sinks.push(Sink::Stdout);
    }
    if targets.stderr {
        sinks.push(Sink::Stderr);
    }
    if targets.journal {
        sinks.push(Sink::Journal);
    }
    Ok(sinks)
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        let ours = metadata.target().starts_with("knockd");
        metadata.level() <= self.targets.level && (ours || self.targets.libraries || metadata.level() <= Level::Warn)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now());
        let level = record.level();
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for sink in sinks.iter_mut() {
            // A full disk or a vanished syslog must not take the daemon down: drop the line.
            let _ = match sink {
                Sink::Syslog(s) => match level {
                    Level::Error => s.err(&message),
                    Level::Warn => s.warning(&message),
                    Level::Info => s.info(&message),
                    Level::Debug | Level::Trace => s.debug(&message),
                }
                .map_err(drop),
                Sink::File(f) => writeln!(f, "[{stamp}] {level}: {message}").map_err(drop),
                Sink::Stdout => writeln!(std::io::stdout(), "[{stamp} {level:5}] {message}").map_err(drop),
                Sink::Stderr => writeln!(std::io::stderr(), "[{stamp} {level:5}] {message}").map_err(drop),
                // sd-daemon(3) priorities: err 3, warning 4, info 6, debug 7.
                Sink::Journal => {
                    let priority = match level {
                        Level::Error => 3,
                        Level::Warn => 4,
                        Level::Info => 6,
                        Level::Debug | Level::Trace => 7,
                    };
                    writeln!(std::io::stderr(), "<{priority}>{message}").map_err(drop)
                }
            };
        }
    }

    fn flush(&self) {
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for sink in sinks.iter_mut() {
            if let Sink::File(f) = sink {
                let _ = f.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_in_place_of_the_log_file_is_not_followed() {
        let dir = std::env::temp_dir().join(format!("knockd-logfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("shadow");
        std::fs::write(&target, "").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("knockd.log")).unwrap();
        let targets = Targets {
            level: LevelFilter::Info,
            libraries: false,
            syslog: false,
            file: Some(dir.join("knockd.log")),
            stdout: false,
            stderr: false,
            journal: false,
        };
        assert!(open(&targets).is_err(), "a link is refused");
        assert_eq!(std::fs::metadata(&target).unwrap().len(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
