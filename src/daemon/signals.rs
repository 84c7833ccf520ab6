//! Signals: set flags in handlers, wake the event loop through a socket pair.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Signal flags, set by handlers and read by the loop; the pipe wakes the loop up.
pub struct Signals {
    pub(super) shutdown: Arc<AtomicBool>,
    pub(super) reload: Arc<AtomicBool>,
    pub(super) dump: Arc<AtomicBool>,
    pub(super) wake: UnixStream,
}

impl Signals {
    /// Installs handlers for SIGTERM and SIGINT (shut down), SIGHUP (reload) and SIGUSR1
    /// (log the counters).
    pub fn install() -> io::Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        notify.set_nonblocking(true)?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        for signal in [SIGTERM, SIGINT] {
            signal_hook::flag::register(signal, Arc::clone(&shutdown))?;
        }
        signal_hook::flag::register(SIGHUP, Arc::clone(&reload))?;
        let dump = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(SIGUSR1, Arc::clone(&dump))?;
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGUSR1] {
            signal_hook::low_level::pipe::register(signal, notify.try_clone()?)?;
        }
        Ok(Signals { shutdown, reload, dump, wake })
    }

    pub(super) fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.wake.read(&mut buf), Ok(n) if n > 0) {}
    }
}
