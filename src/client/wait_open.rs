//! `--wait-open PORT`: connect as soon as the door opens. The first SYN usually races the grant
//! and is dropped, and the kernel would resend it only after a second. So attempts start at
//! growing intervals (5 ms, 10 ms, 20 ms ... at most 200 ms apart) and stay in flight side by
//! side until the first one is answered: the wait is about the grant's delay plus one round
//! trip, on a fast link and on a slow one alike.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::{Protocol, SockAddr, Socket, Type};

use super::Origin;

/// The first interval between attempts; it doubles after each.
const FIRST_GAP: Duration = Duration::from_millis(5);
/// The longest interval between attempts.
const MAX_GAP: Duration = Duration::from_millis(200);
/// Attempts in flight at most; the oldest is abandoned for a new one.
const IN_FLIGHT: usize = 8;

/// Tries to connect to `target` until one attempt is answered or `within` has passed. Bounded:
/// at most one new attempt per interval and eight sockets at a time.
pub fn wait_open(target: SocketAddr, origin: &Origin, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut attempts: VecDeque<Socket> = VecDeque::new();
    let (mut gap, mut next_start) = (FIRST_GAP, Instant::now());
    loop {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if now >= next_start {
            if attempts.len() == IN_FLIGHT {
                attempts.pop_front();
            }
            // A socket that cannot even be made (no route yet) is tried again next interval.
            attempts.extend(start(target, origin).ok());
            next_start = now + gap;
            gap = (gap * 2).min(MAX_GAP);
        }
        if answered(&mut attempts, next_start.min(deadline).saturating_duration_since(now)) {
            return true;
        }
    }
}

/// A non-blocking connect, under way.
fn start(target: SocketAddr, origin: &Origin) -> io::Result<Socket> {
    let socket = origin.socket(&target, Type::STREAM, Protocol::TCP)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&SockAddr::from(target)) {
        Ok(()) => Ok(socket),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
        Err(e) => Err(e),
    }
}

/// Waits up to `wait` for an attempt to finish; true when one connected. Attempts that failed
/// (refused, unreachable) are dropped.
fn answered(attempts: &mut VecDeque<Socket>, wait: Duration) -> bool {
    if attempts.is_empty() {
        std::thread::sleep(wait);
        return false;
    }
    let timeout = PollTimeout::try_from(wait.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
    let mut fds: Vec<PollFd> = attempts.iter().map(|s| PollFd::new(s.as_fd(), PollFlags::POLLOUT)).collect();
    if !poll(&mut fds, timeout).is_ok_and(|ready| ready > 0) {
        return false;
    }
    let done: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
    drop(fds);
    let mut connected = false;
    let mut i = 0;
    attempts.retain(|socket| {
        let finished = done[i];
        i += 1;
        if finished && matches!(socket.take_error(), Ok(None)) && socket.peer_addr().is_ok() {
            connected = true;
        }
        !finished
    });
    connected
}
