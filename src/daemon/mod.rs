//! The daemon: a long-running process around the engine.
//!
//! Contract: [`run`] is the event loop. It waits for packets, signals, nftables change events,
//! address changes or the next due stop command; feeds the engine; commits grants; keeps the
//! capture filter in step with the doors' ports; and repairs the daemon's table the moment
//! someone else changes it. The other modules are what a daemon needs besides: [`signals`],
//! the [`pidfile`], the per-table [`lock`], dropping [`privileges`], [`logging`] and going
//! into the [`background`]; the only place the wall clock is read is [`clock`].

pub mod background;
mod classic_log;
pub mod clock;
mod control;
pub mod inherited;
pub mod lock;
pub mod logging;
pub mod names;
pub mod pidfile;
pub mod privileges;
pub mod rate_limit;
pub mod signals;

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use log::{error, info, warn};

pub use signals::Signals;

use crate::capture::local::LocalAddresses;
use crate::capture::{BATCH, Capture, Lane, PacketSource, RecvBatch};
use crate::config::{self, Config};
use crate::engine::Engine;
use crate::grant::Firewall;
use crate::grant::legacy_command::Spawner;
use crate::grant::nft::{Monitor, Ruleset};
use lock::TableLock;

/// Packets handled before grants are committed and signals looked at again, so a flood can
/// neither delay a grant nor starve shutdown.
const PACKETS_PER_ROUND: usize = 1024;
/// How often idle housekeeping runs.
const TICK: Duration = Duration::from_secs(1);
/// How often the daemon reads its chain back when change events tell it nothing: a backstop
/// with events, the only check (and fast enough to repair within a second) without them.
const VERIFY_WITH_EVENTS: Duration = Duration::from_secs(10);
const VERIFY_WITHOUT_EVENTS: Duration = Duration::from_millis(500);

/// Where the running config came from, so SIGHUP can read it again.
pub struct ConfigSource {
    /// The config file.
    pub path: PathBuf,
    /// `-i` from the command line, which overrides the file's interfaces.
    pub interfaces: Vec<String>,
    /// `--state-dir` from the command line, which overrides the file's.
    pub state_dir: Option<PathBuf>,
    /// The directory the daemon was started in: relative paths in the file mean files there,
    /// on every reload too (`None` when it could not be read; they stay relative).
    pub workdir: Option<PathBuf>,
}

impl ConfigSource {
    /// Reads the config again, with the command line's overrides applied.
    pub fn load(&self) -> Result<Config, config::ConfigError> {
        let mut config = config::load(&self.path)?;
        if !self.interfaces.is_empty() {
            config.interfaces = self.interfaces.clone();
        }
        if let Some(dir) = &self.state_dir {
            config.state_dir = dir.clone();
        }
        if let Some(dir) = &self.workdir {
            config.anchor_paths(dir);
        }
        Ok(config)
    }
}

/// Everything the event loop drives.
pub struct Daemon<F: Firewall, S: Spawner> {
    /// The packet path.
    pub engine: Engine<F, S>,
    /// The capture socket and its filter.
    pub capture: Capture,
    /// SIGTERM, SIGHUP, SIGUSR1.
    pub signals: Signals,
    /// The config file, for SIGHUP.
    pub source: ConfigSource,
    /// nftables change events for the daemon's table; `None` reads the chain back often.
    pub monitor: Option<Monitor>,
    /// This host's addresses; `None` counts knocks to any address.
    pub local: Option<LocalAddresses>,
    /// The lock on the daemon's table, while it has one.
    pub lock: Option<TableLock>,
    /// What SIGHUP does besides the engine (the binary reopens its log file).
    pub on_reload: Box<dyn FnMut()>,
    /// The control socket (`knockd status`, `revoke`, `grant`, `reload`), if it could be made.
    pub control: Option<crate::control::Listener>,
    /// When the daemon started.
    pub started: Instant,
    /// When `metrics.textfile` was last written (monotonic, since the loop started).
    pub metrics_written: Option<Duration>,
}

/// Which of the loop's descriptors have something to read.
#[derive(Default)]
struct Ready {
    monitor: bool,
    local: bool,
    control: bool,
}

/// Runs until SIGTERM or SIGINT, then runs pending stop commands and returns.
pub fn run<F: Firewall, S: Spawner>(d: &mut Daemon<F, S>) -> io::Result<()> {
    let origin = Instant::now();
    let mut last_tick = Duration::ZERO;
    let mut last_verify = Duration::ZERO;
    let mut batch = RecvBatch::default();
    if let Some(local) = &d.local {
        d.engine.set_local_addresses(local.addresses());
    }
    loop {
        d.engine.set_wall_clock(clock::unix_now());
        let now = origin.elapsed();
        let until_due = d.engine.next_due().map_or(TICK, |due| due.saturating_sub(now)).min(TICK);
        let ready = d.wait(until_due)?;
        d.signals.drain();
        if d.signals.shutdown.load(Ordering::Relaxed) {
            d.shutdown();
            return Ok(());
        }
        d.handle_signals();
        if ready.local {
            d.refresh_addresses();
        }
        d.packets(&mut batch, origin)?;
        let now = origin.elapsed();
        if d.engine.next_due().is_some_and(|due| due <= now) || now - last_tick >= TICK {
            d.engine.tick(now);
            d.follow_interfaces();
            last_tick = now;
        }
        let every = if d.monitor.is_some() { VERIFY_WITH_EVENTS } else { VERIFY_WITHOUT_EVENTS };
        let changed = ready.monitor && d.monitor.as_mut().is_some_and(Monitor::changed);
        if changed || now - last_verify >= every {
            d.engine.verify();
            last_verify = now;
        }
        if let Some(lock) = &d.lock {
            lock.answer();
        }
        if ready.control {
            d.serve_control();
        }
        d.write_metrics(now);
    }
}

impl<F: Firewall, S: Spawner> Daemon<F, S> {
    /// Blocks until a descriptor has something to read, or `timeout` passes.
    fn wait(&self, timeout: Duration) -> io::Result<Ready> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = vec![
            PollFd::new(self.capture.socket(Lane::Knocks).as_fd(), PollFlags::POLLIN),
            PollFd::new(self.capture.socket(Lane::Datagrams).as_fd(), PollFlags::POLLIN),
            PollFd::new(self.signals.wake.as_fd(), PollFlags::POLLIN),
        ];
        fn push<'a>(fds: &mut Vec<PollFd<'a>>, fd: Option<BorrowedFd<'a>>) -> Option<usize> {
            fds.push(PollFd::new(fd?, PollFlags::POLLIN));
            Some(fds.len() - 1)
        }
        let monitor_at = push(&mut fds, self.monitor.as_ref().map(|m| m.as_fd()));
        let local_at = push(&mut fds, self.local.as_ref().map(|l| l.as_fd()));
        push(&mut fds, self.lock.as_ref().map(|l| l.as_fd()));
        let control_at = push(&mut fds, self.control.as_ref().map(|c| c.as_fd()));
        let millis =
            PollTimeout::try_from(timeout.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, millis) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let readable = |at: Option<usize>| at.is_some_and(|i| fds[i].any().unwrap_or(false));
        Ok(Ready { monitor: readable(monitor_at), local: readable(local_at), control: readable(control_at) })
    }

    fn handle_signals(&mut self) {
        if self.signals.reload.swap(false, Ordering::Relaxed) {
            info!("SIGHUP: reloading {}", self.source.path.display());
            let _ = self.reload();
        }
        if self.signals.dump.swap(false, Ordering::Relaxed) {
            self.log_counters();
        }
    }

    /// Reads a round of packets from each socket, knocks first, commits the grants they
    /// earned, and follows port changes.
    fn packets(&mut self, batch: &mut RecvBatch, origin: Instant) -> io::Result<()> {
        for lane in Lane::ALL {
            for _ in 0..PACKETS_PER_ROUND / BATCH {
                if self.capture.socket_mut(lane).recv_batch(batch)? == 0 {
                    break;
                }
                // An address added just before a knock was sent is reported before the knock
                // arrives: look at the reports once more now that the knock is here.
                self.refresh_addresses();
                let now = origin.elapsed();
                for packet in batch.packets() {
                    self.engine.packet_in(lane, packet, now);
                }
            }
        }
        self.engine.flush();
        if self.engine.take_filter_changed() {
            if let Err(e) = self.capture.set_ports(&self.engine.capture_ports()) {
                error!("cannot update the capture filter: {e}");
            }
        }
        Ok(())
    }

    fn refresh_addresses(&mut self) {
        if let Some(local) = &mut self.local {
            if local.refresh() {
                self.engine.set_local_addresses(local.addresses());
            }
        }
    }

    fn shutdown(&mut self) {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        info!("{}", shutdown_line(self.engine.config()));
        self.engine.shutdown();
    }

    /// SIGUSR1: everything the daemon counts, in one log line (packets first, drops last).
    fn log_counters(&self) {
        let s = self.engine.stats();
        let kernel = self.capture.kernel_stats();
        let counters: Vec<String> =
            self.engine.counters().iter().skip(1).map(|(name, value)| format!("{name}={value}")).collect();
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

    /// Loads the config again and switches to it, or keeps the running one; logs and returns
    /// what happened (`knockd reload` shows it).
    fn reload(&mut self) -> Result<String, String> {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
        (self.on_reload)();
        let result = self.switch_config();
        match &result {
            Ok(message) => info!("{message}"),
            Err(message) => error!("reload failed, keeping the running config: {message}"),
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        result
    }

    fn switch_config(&mut self) -> Result<String, String> {
        let config = self.source.load().map_err(|e| e.to_string())?;
        if let (Some(_), Some(why)) = (privileges::run_as_uid(), config.needs_root()) {
            return Err(format!("{why}, which needs root, and knockd gave root up at start: restart it"));
        }
        let table = Ruleset::for_config(&config).table_if_any();
        let new_lock = match (&table, &self.lock) {
            (Some(t), Some(held)) if held.table() == t => None,
            (Some(t), _) => Some(TableLock::take(t).map_err(|e| e.to_string())?),
            (None, _) => None,
        };
        let interfaces = config.interfaces.clone();
        self.engine.reconfigure(config).map_err(|e| e.to_string())?;
        if new_lock.is_some() || table.is_none() {
            self.lock = new_lock;
        }
        if let (Some(monitor), Some(t)) = (&mut self.monitor, &table) {
            monitor.set_table(t);
        }
        self.engine.take_filter_changed();
        self.metrics_written = None;
        let doors = self.engine.config().doors.len();
        let result = match self.capture.reconfigure(&interfaces, &self.engine.capture_ports()) {
            Ok(()) => Ok(format!("reloaded: {doors} door(s)")),
            Err(e) => {
                error!("cannot update the capture filter: {e}");
                Ok(format!("reloaded: {doors} door(s), but the capture filter still listens as before: {e}"))
            }
        };
        warn_missing(&self.capture);
        result
    }

    fn follow_interfaces(&mut self) {
        match self.capture.follow_interfaces() {
            Ok(true) => {
                let missing = self.capture.missing();
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
}

/// What stopping leaves behind, and how to undo it: the guarded ports stay closed to everyone
/// but the current grants, on purpose.
pub fn shutdown_line(config: &Config) -> String {
    let ruleset = Ruleset::for_config(config);
    let guarded = ruleset.guarded_ports();
    if guarded.is_empty() {
        return "shutting down".into();
    }
    let ports: Vec<String> = guarded.iter().map(|p| p.to_string()).collect();
    format!(
        "shutting down; {} stay closed to all but current grants until those time out (to open them now: \
         `nft delete table inet {}`)",
        ports.join(", "),
        ruleset.table
    )
}

/// Says which named interfaces do not exist, so a typo does not go unnoticed.
pub fn warn_missing(capture: &Capture) {
    for name in capture.missing() {
        warn!("interface {name} does not exist (yet): knocks on it will be heard once it appears");
    }
}
