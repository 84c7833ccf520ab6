//! Where log lines go: syslog (ident `knockd`, facility daemon), a log file, stdout, stderr,
//! any combination. Sinks are reopened after forking into the background (syslog lines carry
//! the pid) and on SIGHUP (so logrotate can move the file away).
//!
//! Without a syslog socket (containers, minimal hosts) and nowhere else to write, lines go to
//! the journal when it is there, else to stderr, and the daemon says so once. With `format:
//! classic` the lines read as the classic knockd's did ([`super::classic_log`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::classic_log;
use super::syslog::{Syslog, severity as priority};
use crate::config::LogFormat;

/// systemd-journald's socket for its native protocol (journal-fields(7)).
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

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
    /// How lines read.
    pub format: LogFormat,
}

impl Targets {
    /// Whether a line reaches anything besides syslog.
    fn elsewhere(&self) -> bool {
        self.file.is_some() || self.stdout || self.stderr || self.journal
    }
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

enum Sink {
    Syslog(Syslog),
    File(File),
    Stdout,
    Stderr,
    Journal,
    /// journald's own socket, when syslog's is missing.
    JournalSocket(UnixDatagram),
    /// stderr in syslog's place, when its socket and the journal's are missing.
    StderrForSyslog,
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
    LOGGER.get().is_some_and(|l| l.targets.stderr || l.targets.journal) || STDERR_FOR_SYSLOG.load(Ordering::Relaxed)
}

/// Lines go to stderr because syslog could not be reached.
static STDERR_FOR_SYSLOG: AtomicBool = AtomicBool::new(false);

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
        match Syslog::connect() {
            Ok(logger) => sinks.push(Sink::Syslog(logger)),
            Err(e) => sinks.extend(instead_of_syslog(targets, &e.to_string())),
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

/// Where lines go when syslog cannot be reached: nowhere else if they go elsewhere already,
/// else the journal when its socket answers, else stderr. Said once, on stderr.
fn instead_of_syslog(targets: &Targets, why: &str) -> Option<Sink> {
    static SAID: AtomicBool = AtomicBool::new(false);
    let say = |what: &str| {
        if !SAID.swap(true, Ordering::Relaxed) {
            eprintln!("knockd: syslog is not available ({why}): {what}");
        }
    };
    if targets.elsewhere() {
        say("not logging there");
        return None;
    }
    let journal = UnixDatagram::unbound().and_then(|s| s.connect(JOURNAL_SOCKET).map(|()| s));
    match journal {
        Ok(socket) => {
            say("logging to the journal instead");
            Some(Sink::JournalSocket(socket))
        }
        Err(_) => {
            say("logging to stderr instead");
            STDERR_FOR_SYSLOG.store(true, Ordering::Relaxed);
            Some(Sink::StderrForSyslog)
        }
    }
}

/// One line in journald's native protocol: `KEY=value` lines (journal-fields(7)).
fn journal_entry(priority: u8, message: &str) -> String {
    // A newline would end the field; log lines are single lines, keep it that way.
    let message = message.replace('\n', " ");
    format!("PRIORITY={priority}\nSYSLOG_IDENTIFIER=knockd\nSYSLOG_FACILITY=3\nMESSAGE={message}\n")
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        let ours = metadata.target().starts_with("knockd");
        metadata.level() <= self.targets.level && (ours || self.targets.libraries || metadata.level() <= Level::Warn)
    }

    /// With the classic format, the sinks log parsers read (syslog, the journal, the log file)
    /// get the classic daemon's lines; a terminal (`-D`, `-s`) keeps knockd's, for people.
    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let classic = (self.targets.format == LogFormat::Classic).then(|| classic_log::lines(record)).flatten();
        let own = (!classic_log::classic_only(record)).then(|| vec![record.args().to_string()]);
        let stamps = Stamps::of(SystemTime::now(), self.targets.format);
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for sink in sinks.iter_mut() {
            let read_by_parsers = !matches!(sink, Sink::Stdout | Sink::Stderr);
            let lines = if read_by_parsers { classic.as_ref().or(own.as_ref()) } else { own.as_ref() };
            for line in lines.into_iter().flatten() {
                write(sink, record.level(), line, &stamps);
            }
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

/// One moment, as each sink writes it.
struct Stamps {
    unix_seconds: i64,
    /// For people: `-D`, `-s`.
    rfc3339: humantime::Rfc3339Timestamp,
    /// The log file's: the classic `[YYYY-MM-DD HH:MM]`, or the terminal's with the level.
    file: String,
}

impl Stamps {
    fn of(now: SystemTime, format: LogFormat) -> Self {
        let seconds = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let unix_seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
        let rfc3339 = humantime::format_rfc3339_seconds(now);
        let file = match format {
            LogFormat::Classic => classic_log::stamp(unix_seconds),
            LogFormat::Knockd => String::new(),
        };
        Stamps { unix_seconds, rfc3339, file }
    }
}

/// One line to one sink. A full disk or a vanished syslog must not take the daemon down: the
/// line is dropped.
fn write(sink: &mut Sink, level: Level, message: &str, stamps: &Stamps) {
    let stamp = &stamps.rfc3339;
    let _ = match sink {
        Sink::Syslog(s) => s.send(level, stamps.unix_seconds, message).map_err(drop),
        Sink::File(f) if stamps.file.is_empty() => writeln!(f, "[{stamp}] {level}: {message}").map_err(drop),
        Sink::File(f) => writeln!(f, "{} {message}", stamps.file).map_err(drop),
        Sink::Stdout => writeln!(std::io::stdout(), "[{stamp} {level:5}] {message}").map_err(drop),
        Sink::Stderr | Sink::StderrForSyslog => {
            writeln!(std::io::stderr(), "[{stamp} {level:5}] {message}").map_err(drop)
        }
        Sink::Journal => writeln!(std::io::stderr(), "<{}>{message}", priority(level)).map_err(drop),
        Sink::JournalSocket(s) => s.send(journal_entry(priority(level), message).as_bytes()).map(drop).map_err(drop),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_in_place_of_the_log_file_is_not_followed() {
        let dir = crate::test_dir::TestDir::new("logfile");
        let target = dir.link_to_file("knockd.log", "shadow", "");
        let targets = Targets {
            level: LevelFilter::Info,
            libraries: false,
            syslog: false,
            file: Some(dir.join("knockd.log")),
            stdout: false,
            stderr: false,
            journal: false,
            format: LogFormat::default(),
        };
        assert!(open(&targets).is_err(), "a link is refused");
        assert_eq!(std::fs::metadata(&target).unwrap().len(), 0);
    }
}
