//! Lines to the local syslog daemon: RFC 3164 datagrams on `/dev/log`, shaped as the C
//! library's syslog(3) sends them (`<priority>Mmm dd hh:mm:ss knockd[pid]: message`), which
//! rsyslog, journald, busybox syslogd and OpenWrt's logd all read.
//!
//! Written here rather than taken from the `syslog` crate: that crate brings the `time` crate
//! for one timestamp, and on a router every kilobyte of flash counts (the `small` profile has a
//! 2 MiB budget). Unlike syslog(3), the socket is ours, so a missing daemon is seen at start
//! (and the caller falls back) instead of lines vanishing silently.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use log::Level;

use super::clock::LocalTime;

/// The socket every Linux syslog daemon listens on.
const SOCKET: &str = "/dev/log";

/// Facility `daemon` (3), shifted as RFC 3164 wants it.
const FACILITY_DAEMON: u8 = 3 << 3;

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A connection to the syslog daemon.
pub struct Syslog {
    socket: UnixDatagram,
    path: PathBuf,
    pid: u32,
}

impl Syslog {
    /// Connects to `/dev/log`; an error when no syslog daemon listens there.
    pub fn connect() -> io::Result<Self> {
        Self::connect_to(Path::new(SOCKET))
    }

    fn connect_to(path: &Path) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(Syslog { socket, path: path.to_path_buf(), pid: std::process::id() })
    }

    /// Sends one line. When the daemon was restarted since (its socket is a new one), connects
    /// again and sends once more; a line that still cannot go is the caller's to drop.
    pub fn send(&mut self, level: Level, unix_seconds: i64, message: &str) -> io::Result<()> {
        let datagram = datagram(level, super::clock::local(unix_seconds), self.pid, message);
        if self.socket.send(datagram.as_bytes()).is_ok() {
            return Ok(());
        }
        *self = Self::connect_to(&self.path.clone())?;
        self.socket.send(datagram.as_bytes()).map(drop)
    }
}

/// syslog(3) severities: err 3, warning 4, info 6, debug 7 (the journal's priorities too).
pub(super) fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// One datagram. Without a local time the timestamp is left out, which RFC 3164 allows (the
/// daemon stamps the line itself).
fn datagram(level: Level, local: Option<LocalTime>, pid: u32, message: &str) -> String {
    let priority = FACILITY_DAEMON | severity(level);
    let month = local.and_then(|t| MONTHS.get(usize::from(t.month).checked_sub(1)?));
    match (local, month) {
        (Some(t), Some(month)) => format!(
            "<{priority}>{month} {:>2} {:02}:{:02}:{:02} knockd[{pid}]: {message}",
            t.day, t.hour, t.minute, t.second
        ),
        _ => format!("<{priority}>knockd[{pid}]: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(month: u8, day: u8, hour: u8, minute: u8, second: u8) -> LocalTime {
        LocalTime { year: 2026, month, day, hour, minute, second }
    }

    #[test]
    fn datagrams_read_as_the_c_library_writes_them() {
        let line = datagram(Level::Info, Some(tm(12, 6, 8, 5, 9)), 42, "openSSH: 198.18.0.2: OPEN");
        assert_eq!(line, "<30>Dec  6 08:05:09 knockd[42]: openSSH: 198.18.0.2: OPEN");
        let line = datagram(Level::Error, Some(tm(1, 16, 23, 59, 0)), 7, "x");
        assert_eq!(line, "<27>Jan 16 23:59:00 knockd[7]: x");
        assert_eq!(datagram(Level::Warn, None, 7, "x"), "<28>knockd[7]: x");
        assert_eq!(datagram(Level::Debug, Some(tm(13, 1, 0, 0, 0)), 7, "x"), "<31>knockd[7]: x");
    }

    #[test]
    fn a_restarted_syslog_daemon_gets_the_next_line() {
        let dir = crate::test_dir::TestDir::new("syslog");
        let path = dir.join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let mut syslog = Syslog::connect_to(&path).unwrap();
        syslog.send(Level::Info, 0, "first").unwrap();
        let mut buf = [0u8; 256];
        let n = daemon.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("]: first"));
        drop(daemon);
        std::fs::remove_file(&path).unwrap();
        let daemon = UnixDatagram::bind(&path).unwrap();
        syslog.send(Level::Info, 0, "second").unwrap();
        let n = daemon.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("]: second"));
    }

    #[test]
    fn no_daemon_is_an_error_at_connect() {
        assert!(Syslog::connect_to(Path::new("/nonexistent/knockd/log")).is_err());
    }
}
