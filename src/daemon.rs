//! The daemon's event loop: wait for packets or signals, feed the engine, commit grants.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{error, info, warn};

use crate::bpf;
use crate::capture::{PacketSocket, PacketSource, interface_index};
use crate::config::{self, Config};
use crate::engine::Engine;
use crate::firewall::Firewall;

/// Packets handled before grants are committed and signals looked at again, so a flood can
/// neither delay a grant nor starve shutdown.
const PACKETS_PER_ROUND: usize = 1024;
/// How often idle housekeeping runs.
const TICK: Duration = Duration::from_secs(1);

/// Signal flags, set by handlers and read by the loop; the pipe wakes the loop up.
pub struct Signals {
    shutdown: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    wake: UnixStream,
}

impl Signals {
    /// Installs handlers for SIGTERM and SIGINT (shut down) and SIGHUP (reload).
    pub fn install() -> io::Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        notify.set_nonblocking(true)?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        for signal in [SIGTERM, SIGINT] {
            signal_hook::flag::register(signal, Arc::clone(&shutdown))?;
        }
        signal_hook::flag::register(SIGHUP, Arc::clone(&reload))?;
        for signal in [SIGTERM, SIGINT, SIGHUP] {
            signal_hook::low_level::pipe::register(signal, notify.try_clone()?)?;
        }
        Ok(Signals {
            shutdown,
            reload,
            wake,
        })
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.wake.read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// Where the running config came from, so SIGHUP can read it again.
pub struct ConfigSource {
    pub path: PathBuf,
    /// `-i` from the command line, which overrides the file's interfaces.
    pub interfaces: Vec<String>,
}

impl ConfigSource {
    pub fn load(&self) -> Result<Config, config::ConfigError> {
        let mut config = config::load(&self.path)?;
        if !self.interfaces.is_empty() {
            config.interfaces = self.interfaces.clone();
        }
        Ok(config)
    }
}

/// The kernel filter for `config`, with interface names resolved to indexes.
pub fn capture_filter(config: &Config) -> anyhow::Result<Vec<bpf::Insn>> {
    let mut indexes = Vec::new();
    for name in &config.interfaces {
        let index = interface_index(name).map_err(|e| anyhow::anyhow!("interface {name}: {e}"))?;
        indexes.push(index);
    }
    Ok(bpf::build(&config.knock_ports(), &indexes)?)
}

/// Runs until SIGTERM or SIGINT.
pub fn run<F: Firewall>(
    engine: &mut Engine<F>,
    capture: &mut PacketSocket,
    signals: &mut Signals,
    source: &ConfigSource,
) -> io::Result<()> {
    let origin = Instant::now();
    let mut last_tick = Duration::ZERO;
    let mut buf = [0u8; bpf::SNAPLEN as usize];
    loop {
        wait(capture, &signals.wake, TICK)?;
        signals.drain();
        if signals.shutdown.load(Ordering::Relaxed) {
            engine.flush();
            info!("shutting down; granted addresses stay open until their timeouts");
            return Ok(());
        }
        if signals.reload.swap(false, Ordering::Relaxed) {
            reload(engine, capture, source);
        }
        for _ in 0..PACKETS_PER_ROUND {
            match capture.recv(&mut buf)? {
                Some(len) => engine.packet(&buf[..len], origin.elapsed()),
                None => break,
            }
        }
        engine.flush();
        let now = origin.elapsed();
        if now - last_tick >= TICK {
            engine.tick(now);
            last_tick = now;
        }
    }
}

fn reload<F: Firewall>(engine: &mut Engine<F>, capture: &PacketSocket, source: &ConfigSource) {
    info!("SIGHUP: reloading {}", source.path.display());
    let config = match source.load() {
        Ok(config) => config,
        Err(e) => return error!("reload failed, keeping the running config: {e}"),
    };
    let filter = match capture_filter(&config) {
        Ok(filter) => filter,
        Err(e) => return error!("reload failed, keeping the running config: {e}"),
    };
    if let Err(e) = engine.reconfigure(config) {
        return error!("reload failed, keeping the running config: {e}");
    }
    match capture.set_filter(&filter) {
        Ok(()) => info!("reloaded: {} door(s)", engine.config().doors.len()),
        Err(e) => warn!("reloaded, but the capture filter could not be replaced: {e}"),
    }
}

/// Blocks until a packet or a signal arrives, or `timeout` passes.
fn wait(capture: &PacketSocket, wake: &UnixStream, timeout: Duration) -> io::Result<()> {
    let mut fds = [
        libc::pollfd {
            fd: capture.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: `fds` is a valid array of two pollfd structures for the duration of the call.
    let n = unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            timeout.as_millis() as i32,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}
