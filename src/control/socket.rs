//! Both ends of the control socket. The daemon's end never blocks its event loop for long: it
//! accepts without waiting, and reads a request (one line of JSON, 64 KiB at most) within half
//! a second. Only root, and the user the daemon runs as, may ask anything: the socket file is
//! 0600 and each connection's uid is checked as well.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Request, Response};

/// Largest request read.
const MAX_REQUEST: u64 = 64 * 1024;
/// How long the daemon waits for a request once connected.
const READ_WAIT: Duration = Duration::from_millis(500);
/// How long a client waits for the answer (a reload reads files and talks to the kernel).
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// Why the control socket cannot be used.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum ControlError {
    /// No daemon listens there.
    #[error("no knockd answers on {}", path.display())]
    NoDaemon { path: PathBuf },
    /// The socket is root's.
    #[error("{}: permission denied: run as root", path.display())]
    Denied { path: PathBuf },
    /// Another daemon already answers there.
    #[error("another knockd answers on {}: stop it, or give this one another --control", path.display())]
    InUse { path: PathBuf },
    /// Anything else, with what was being done.
    #[error("control socket {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> ControlError {
    ControlError::Io { path: path.to_owned(), message: e.to_string() }
}

/// The daemon's end: a listening socket only root (and the daemon's user) can connect to.
pub struct Listener {
    socket: UnixListener,
    path: PathBuf,
    /// The clean-up helper, waiting on a pipe to its stdin ([`Listener::remove_after_exit`]).
    cleanup: Option<std::process::Child>,
}

/// The clean-up helper: ignores the signals a terminal or a `kill` of the daemon's group sends,
/// notes which file the socket is (inode and change time, to the nanosecond), waits until the
/// pipe on its stdin is closed (the daemon is stopping, or crashed), then removes the socket file
/// if it is still that file.
const CLEANUP: &str = "trap '' HUP INT QUIT TERM USR1 USR2 PIPE; id=$(stat -c '%i %z' -- \"$1\") || exit 0; \
     while read -r _; do :; done; [ -S \"$1\" ] && [ \"$(stat -c '%i %z' -- \"$1\")\" = \"$id\" ] && rm -f -- \"$1\"";

/// How long a stopping daemon waits for the helper to remove the socket file.
const CLEANUP_WAIT: Duration = Duration::from_secs(2);

/// One connection, with the uid of the process at the other end.
pub struct Connection {
    stream: UnixStream,
    /// Who asks.
    pub uid: u32,
}

impl Listener {
    /// Listens at `path`, replacing a socket no daemon answers on any more (a crash leaves it).
    pub fn bind(path: &Path) -> Result<Self, ControlError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| io_error(path, format!("cannot create {}: {e}", dir.display())))?;
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(io_error(path, "it exists and is not a socket: remove it, or give another --control"));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse { path: path.to_owned() });
            }
            std::fs::remove_file(path).map_err(|e| io_error(path, e))?;
        }
        // Created 0600 from the start: no moment in which others could connect. The daemon is
        // single-threaded here, so the process-wide umask changes nothing else.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        nix::sys::stat::umask(old);
        let socket = bound.map_err(|e| io_error(path, e))?;
        socket.set_nonblocking(true).map_err(|e| io_error(path, e))?;
        Ok(Listener { socket, path: path.to_owned(), cleanup: None })
    }

    /// Has the socket file removed after this process exits, by a small helper started now,
    /// while the daemon is still root: once it leaves root, it may not remove a file from a
    /// directory only root may change (`/run/knockd`), and a foreground daemon would leave the
    /// file behind. Not needed under systemd when the socket is in the unit's
    /// `RuntimeDirectory`, which systemd removes itself.
    pub fn remove_after_exit(&mut self) -> Result<(), ControlError> {
        let runtime = std::env::var_os("RUNTIME_DIRECTORY").unwrap_or_default();
        if std::env::split_paths(&runtime).any(|dir| !dir.as_os_str().is_empty() && self.path.starts_with(dir)) {
            return Ok(());
        }
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", CLEANUP, "knockd-cleanup"])
            .arg(&self.path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| io_error(&self.path, format!("cannot start the helper that removes it at exit: {e}")))?;
        self.cleanup = Some(child);
        Ok(())
    }

    /// A waiting connection, if there is one (never blocks).
    pub fn accept(&self) -> Option<Connection> {
        let (stream, _) = self.socket.accept().ok()?;
        let uid = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?.uid();
        stream.set_nonblocking(false).ok()?;
        stream.set_read_timeout(Some(READ_WAIT)).ok()?;
        stream.set_write_timeout(Some(READ_WAIT)).ok()?;
        Some(Connection { stream, uid })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // After leaving root the directory may not be ours to change: the helper removes the
        // file. It is told now, and waited for while this socket still listens, so a daemon
        // started meanwhile on the same path is refused rather than losing its socket to it.
        // (A killed daemon's helper removes the file when the process has gone; if it could not
        // start, the next start replaces the file.)
        if let Some(mut helper) = self.cleanup.take() {
            drop(helper.stdin.take());
            let deadline = std::time::Instant::now() + CLEANUP_WAIT;
            while matches!(helper.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl Connection {
    /// Reads the request: one line of JSON.
    pub fn request(&mut self) -> Result<Request, String> {
        let mut line = String::new();
        BufReader::new((&self.stream).take(MAX_REQUEST))
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the request: {e}"))?;
        serde_json::from_str(&line).map_err(|e| format!("not a request: {e}"))
    }

    /// Writes the answer and closes the connection.
    pub fn answer(mut self, response: &Response) {
        if let Ok(mut text) = serde_json::to_string(response) {
            text.push('\n');
            let _ = self.stream.write_all(text.as_bytes());
        }
    }
}

/// Asks the daemon listening at `path`.
pub fn ask(path: &Path, request: &Request) -> Result<Response, ControlError> {
    let mut stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ControlError::NoDaemon { path: path.to_owned() }
        }
        std::io::ErrorKind::PermissionDenied => ControlError::Denied { path: path.to_owned() },
        _ => io_error(path, e),
    })?;
    stream.set_read_timeout(Some(ANSWER_WAIT)).map_err(|e| io_error(path, e))?;
    let mut text = serde_json::to_string(request).map_err(|e| io_error(path, e))?;
    text.push('\n');
    stream.write_all(text.as_bytes()).map_err(|e| io_error(path, e))?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| io_error(path, e))?;
    serde_json::from_str(&answer).map_err(|e| io_error(path, format!("an answer that is not JSON: {e}")))
}
