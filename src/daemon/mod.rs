//! The daemon: a long-running process around the engine.
//!
//! Contract: [`run`] is the event loop: it waits for packets, signals or the next due stop
//! command, feeds the engine, commits grants, and keeps the capture filter in step with the
//! doors' ports. The other modules are what a daemon needs besides: [`signals`], the
//! [`pidfile`], dropping [`privileges`], [`logging`] and going into the [`background`]; the
//! only place the wall clock is read is [`clock`].

pub mod background;
pub mod clock;
pub mod logging;
pub mod names;
pub mod pidfile;
pub mod privileges;
pub mod rate_limit;
pub mod signals;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use log::{error, info, warn};

pub use signals::Signals;

use crate::capture::{BATCH, Capture, PacketSource, RecvBatch};
use crate::config::{self, Config};
use crate::engine::Engine;
use crate::grant::Firewall;
use crate::grant::legacy_command::Spawner;

/// Packets handled before grants are committed and signals looked at again, so a flood can
/// neither delay a grant nor starve shutdown.
const PACKETS_PER_ROUND: usize = 1024;
/// How often idle housekeeping runs.
const TICK: Duration = Duration::from_secs(1);
/// How often the daemon checks that its nftables objects are still there.
const VERIFY_EVERY: Duration = Duration::from_secs(2);

/// Where the running config came from, so SIGHUP can read it again.
pub struct ConfigSource {
    /// The config file.
    pub path: PathBuf,
    /// `-i` from the command line, which overrides the file's interfaces.
    pub interfaces: Vec<String>,
}

impl ConfigSource {
    /// Reads the config again, with `-i` applied.
    pub fn load(&self) -> Result<Config, config::ConfigError> {
        let mut config = config::load(&self.path)?;
        if !self.interfaces.is_empty() {
            config.interfaces = self.interfaces.clone();
        }
        Ok(config)
    }
}

/// What the loop calls on SIGHUP besides the engine (the binary reopens its log file).
pub type ReloadHook<'a> = &'a mut dyn FnMut();

/// Runs until SIGTERM or SIGINT, then runs pending stop commands and returns.
pub fn run<F: Firewall, S: Spawner>(
    engine: &mut Engine<F, S>,
    capture: &mut Capture,
    signals: &mut Signals,
    source: &ConfigSource,
    on_reload: ReloadHook,
) -> io::Result<()> {
    let origin = Instant::now();
    let mut last_tick = Duration::ZERO;
    let mut last_verify = Duration::ZERO;
    let mut batch = RecvBatch::default();
    loop {
        engine.set_wall_clock(clock::unix_now());
        let now = origin.elapsed();
        let until_due = engine.next_due().map_or(TICK, |due| due.saturating_sub(now)).min(TICK);
        wait(capture, &signals.wake, until_due)?;
        signals.drain();
        if signals.shutdown.load(Ordering::Relaxed) {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
            info!("shutting down; granted addresses stay open until their timeouts");
            engine.shutdown();
            return Ok(());
        }
        if signals.reload.swap(false, Ordering::Relaxed) {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
            on_reload();
            reload(engine, capture, source);
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        }
        if signals.dump.swap(false, Ordering::Relaxed) {
            log_counters(engine, capture);
        }
        for _ in 0..PACKETS_PER_ROUND / BATCH {
            if capture.socket.recv_batch(&mut batch)? == 0 {
                break;
            }
            let now = origin.elapsed();
            for packet in batch.packets() {
                engine.packet(packet, now);
            }
        }
        engine.flush();
        if engine.take_filter_changed() {
            if let Err(e) = capture.set_ports(&engine.capture_ports()) {
                error!("cannot update the capture filter: {e}");
            }
        }
        let now = origin.elapsed();
        if engine.next_due().is_some_and(|due| due <= now) || now - last_tick >= TICK {
            engine.tick(now);
            follow_interfaces(capture);
            last_tick = now;
        }
        if now - last_verify >= VERIFY_EVERY {
            engine.verify();
            last_verify = now;
        }
    }
}

/// SIGUSR1: everything the daemon counts, in one log line.
fn log_counters<F: Firewall, S: Spawner>(engine: &Engine<F, S>, capture: &Capture) {
    let s = engine.stats();
    let kernel = capture.socket.kernel_stats().unwrap_or_default();
    let counters: Vec<String> =
        engine.counters().iter().skip(1).map(|(name, value)| format!("{name}={value}")).collect();
    let drops: Vec<String> =
        crate::packet::Drop::ALL.iter().map(|d| format!("{}={}", d.key(), s.dropped[d.index()])).collect();
    info!(
        "counters: packets={} kernel_packets={} kernel_drops={} {} dropped: {}",
        s.packets,
        kernel.packets,
        kernel.drops,
        counters.join(" "),
        drops.join(" ")
    );
}

/// Loads the config again and switches to it, or keeps the running one and says why.
fn reload<F: Firewall, S: Spawner>(engine: &mut Engine<F, S>, capture: &mut Capture, source: &ConfigSource) {
    info!("SIGHUP: reloading {}", source.path.display());
    let config = match source.load() {
        Ok(config) => config,
        Err(e) => return error!("reload failed, keeping the running config: {e}"),
    };
    let interfaces = config.interfaces.clone();
    if let Err(e) = engine.reconfigure(config) {
        return error!("reload failed, keeping the running config: {e}");
    }
    engine.take_filter_changed();
    match capture.reconfigure(&interfaces, &engine.capture_ports()) {
        Ok(()) => info!("reloaded: {} door(s)", engine.config().doors.len()),
        Err(e) => error!("reloaded, but the capture filter still listens as before: {e}"),
    }
    warn_missing(capture);
}

/// Says which named interfaces do not exist, so a typo does not go unnoticed.
pub fn warn_missing(capture: &Capture) {
    for name in capture.missing() {
        warn!("interface {name} does not exist (yet): knocks on it will be heard once it appears");
    }
}

fn follow_interfaces(capture: &mut Capture) {
    match capture.follow_interfaces() {
        Ok(true) => {
            let missing = capture.missing();
            if missing.is_empty() {
                info!("interfaces changed: listening on all of them again");
            } else {
                warn!("interfaces changed: {} missing now; listening on the others", missing.join(", "));
            }
        }
        Ok(false) => {}
        Err(e) => error!("cannot follow the interfaces: {e}"),
    }
}

/// Blocks until a packet or a signal arrives, or `timeout` passes.
fn wait(capture: &Capture, wake: &UnixStream, timeout: Duration) -> io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds =
        [PollFd::new(capture.socket.as_fd(), PollFlags::POLLIN), PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
    let millis = PollTimeout::try_from(timeout.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, millis) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
