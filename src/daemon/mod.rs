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
pub mod namespace;
pub mod pidfile;
pub mod privileges;
pub mod signals;
pub mod state_dir;
mod syslog;

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
use crate::grant::nft::{Changes, Monitor, Ruleset};
use crate::log_lines;
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
/// How long another table's changes may go on before the daemon looks: a firewall's reload
/// is a burst of events, and one look after it is enough.
const SETTLE: Duration = Duration::from_millis(100);

/// Where the running config came from, so SIGHUP can read it again.
pub struct ConfigSource {
    /// The config file.
    pub path: PathBuf,
    /// `-i` from the command line, which overrides the file's interfaces.
    pub interfaces: Vec<String>,
    /// `--state-dir` from the command line, which overrides the file's.
    pub state_dir: Option<PathBuf>,
    /// `--fwknopd-conf` from the command line, for an access.conf.
    pub fwknopd_conf: Option<PathBuf>,
    /// The directory the daemon was started in: relative paths in the file mean files there,
    /// on every reload too (`None` when it could not be read; they stay relative).
    pub workdir: Option<PathBuf>,
    /// Whose files are trusted like root's ([`privileges::trust`]), once the first load told.
    pub trust: config::Trust,
}

impl ConfigSource {
    /// Reads the config again, with the command line's overrides applied.
    pub fn load(&self) -> Result<Config, config::ConfigError> {
        let options = config::LoadOptions {
            start_dir: self.workdir.clone(),
            fwknopd_conf: self.fwknopd_conf.clone(),
            trust: self.trust.clone(),
        };
        let mut config = config::load_with(&self.path, &options, &crate::doors::Kinds)?;
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
    commands: bool,
}

/// Runs until SIGTERM or SIGINT, then runs pending stop commands and returns.
pub fn run<F: Firewall, S: Spawner>(d: &mut Daemon<F, S>) -> io::Result<()> {
    let origin = Instant::now();
    let mut last_tick = Duration::ZERO;
    let mut last_verify = Duration::ZERO;
    let mut others_due: Option<Duration> = None;
    let mut batch = RecvBatch::default();
    if let Some(local) = &d.local {
        d.engine.set_local_addresses(local.addresses());
    }
    d.update_host_view();
    loop {
        // A new rotating step's ports go into the filter now, not after the next wake-up.
        d.follow_ports();
        let clock = clock::now(origin.elapsed());
        let now = clock.mono;
        let settle = others_due.map_or(TICK, |due| due.saturating_sub(now));
        let until_wall = d.engine.next_wall_due().map_or(TICK, |due| due.saturating_sub(clock.unix));
        let until_due =
            d.engine.next_due().map_or(TICK, |due| due.saturating_sub(now)).min(TICK).min(until_wall).min(settle);
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
        let clock = clock::now(origin.elapsed());
        let now = clock.mono;
        if ready.commands {
            d.engine.commands(now);
        }
        let wall_due = d.engine.next_wall_due().is_some_and(|due| due <= clock.unix);
        if wall_due || d.engine.next_due().is_some_and(|due| due <= now) || now - last_tick >= TICK {
            d.engine.tick(clock);
            d.follow_interfaces();
            last_tick = now;
        }
        let every = if d.monitor.is_some() { VERIFY_WITH_EVENTS } else { VERIFY_WITHOUT_EVENTS };
        let own_port = d.engine.firewall().netlink_port();
        let changes = match (&mut d.monitor, ready.monitor) {
            (Some(monitor), true) => monitor.changed(own_port),
            _ => Changes::default(),
        };
        if changes.reloaded {
            d.engine.note_owner_reload();
        }
        if changes.others && others_due.is_none() {
            others_due = Some(now + SETTLE);
        }
        let others = others_due.is_some_and(|due| due <= now);
        if others {
            others_due = None;
        }
        if changes.ours || others || now - last_verify >= every {
            d.engine.verify(others);
            last_verify = now;
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
        let control_at = push(&mut fds, self.control.as_ref().map(|c| c.as_fd()));
        let commands_at = push(&mut fds, self.engine.spawner().wake_fd());
        let millis = PollTimeout::try_from(poll_millis(timeout)).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, millis) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let readable = |at: Option<usize>| at.is_some_and(|i| fds[i].any().unwrap_or(false));
        Ok(Ready {
            monitor: readable(monitor_at),
            local: readable(local_at),
            control: readable(control_at),
            commands: readable(commands_at),
        })
    }

    fn handle_signals(&mut self) {
        if self.signals.reload.swap(false, Ordering::Relaxed) {
            info!("{}", log_lines::reloading(&self.source.path));
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
                let clock = clock::now(origin.elapsed());
                for packet in batch.packets() {
                    self.engine.packet_in(lane, packet, clock);
                }
            }
        }
        self.engine.flush();
        self.follow_ports();
        Ok(())
    }

    /// Puts the doors' ports into the capture filter, if they changed.
    fn follow_ports(&mut self) {
        if self.engine.take_filter_changed() {
            if let Err(e) = self.capture.set_ports(&self.engine.capture_ports()) {
                error!("{}", log_lines::cannot_update_filter(&e));
            }
        }
    }

    fn refresh_addresses(&mut self) {
        if let Some(local) = &mut self.local {
            if local.refresh() {
                self.engine.set_local_addresses(local.addresses());
                self.update_host_view();
            }
        }
    }

    /// Tells the engine the interfaces knocks are heard on and this host's addresses, for the
    /// answers of the host's other firewalls; and the monitor which tables' sets matter.
    fn update_host_view(&mut self) {
        let addresses = self.local.as_ref().map(|l| l.addresses().iter().copied().collect()).unwrap_or_default();
        let view = crate::capture::local::host_view(&self.engine.config().interfaces, addresses);
        self.engine.set_host_view(view);
        if let Some(monitor) = &mut self.monitor {
            monitor.watch(self.engine.watched_tables());
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
        // Packets come first, with the kernel's; the rest in the engine's order.
        let rest = self.engine.counters().into_iter().filter(|r| r.counter != &crate::engine::PACKETS);
        let counters: Vec<String> = rest.map(|r| format!("{}={}", r.counter.name, r.value)).collect();
        let drops: Vec<String> =
            crate::packet::Drop::ALL.iter().map(|d| format!("{}={}", d.key(), s.dropped[d.index()])).collect();
        let line = log_lines::counters(s.packets, kernel.packets, kernel.drops, &counters.join(" "), &drops.join(" "));
        info!("{line}");
    }

    /// Loads the config again and switches to it, or keeps the running one; logs and returns
    /// what happened (`knockd reload` shows it).
    fn reload(&mut self) -> Result<String, String> {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
        (self.on_reload)();
        let result = self.switch_config();
        match &result {
            Ok(message) => info!("{message}"),
            Err(message) => error!("{}", log_lines::reload_failed(message)),
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        result
    }

    fn switch_config(&mut self) -> Result<String, String> {
        let config = self.source.load().map_err(|e| e.to_string())?;
        if let (Some(_), Some(why)) = (privileges::run_as_uid(), config.needs_root()) {
            return Err(format!("{why}, which needs root, and knockd gave root up at start: restart it"));
        }
        let running = &self.engine.config().state_dir;
        if config.state_dir != *running {
            return Err(log_lines::state_dir_moved(running, &config.state_dir));
        }
        let table = Ruleset::for_config(&config).table_if_any();
        // `Some(new)`: the lock to hold from now on; `None`: keep the one held.
        let new_lock = match (&table, &self.lock) {
            (Some(t), Some(held)) if held.table() == t => None,
            (Some(t), _) => match TableLock::take(t) {
                Ok(lock) => Some(Some(lock)),
                Err(e @ lock::LockError::NotRoot { .. }) => {
                    warn!("{e}");
                    Some(None)
                }
                Err(e) => return Err(e.to_string()),
            },
            (None, _) => Some(None),
        };
        let interfaces = config.interfaces.clone();
        self.engine.reconfigure(config).map_err(|e| e.to_string())?;
        if let Some(lock) = new_lock {
            self.lock = lock;
        }
        if let (Some(monitor), Some(_)) = (&mut self.monitor, &table) {
            // The table the objects live in: knockd's own, or fw4's.
            monitor.set_table(&Ruleset::for_config(self.engine.config()).table);
        }
        self.update_host_view();
        self.engine.take_filter_changed();
        self.metrics_written = None;
        let doors = self.engine.config().doors.len();
        let result = match self.capture.reconfigure(&interfaces, &self.engine.capture_ports()) {
            Ok(()) => Ok(log_lines::reloaded(doors)),
            Err(e) => {
                error!("{}", log_lines::cannot_update_filter(&e));
                Ok(log_lines::reloaded_filter_unchanged(&log_lines::reloaded(doors), &e))
            }
        };
        warn_missing(&self.capture);
        result
    }

    fn follow_interfaces(&mut self) {
        match self.capture.follow_interfaces() {
            Ok(true) => {
                self.update_host_view();
                let missing = self.capture.missing();
                if missing.is_empty() {
                    info!("{}", log_lines::INTERFACES_BACK);
                } else {
                    warn!("{}", log_lines::interfaces_missing(&missing));
                }
            }
            Ok(false) => {}
            Err(e) => error!("{}", log_lines::cannot_follow_interfaces(&e)),
        }
    }
}

/// `poll`'s timeout for `timeout`, rounded up: a due time under a millisecond away waits a
/// millisecond, where rounding down would make `poll` return at once and the loop spin.
fn poll_millis(timeout: Duration) -> i32 {
    timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
}

/// What stopping leaves behind, and how to undo it: the guarded ports stay closed to everyone
/// but the current grants, on purpose.
pub fn shutdown_line(config: &Config) -> String {
    let ruleset = Ruleset::for_config(config);
    let ports: Vec<String> = ruleset.guarded_ports().iter().map(|p| p.to_string()).collect();
    let undo = if ruleset.owns_table() {
        format!("`nft delete table inet {}`", ruleset.table)
    } else {
        "`fw4 reload`, which renders fw4's table without knockd's rules".to_owned()
    };
    log_lines::shutting_down(&ports, &undo)
}

/// Says which named interfaces do not exist, so a typo does not go unnoticed.
pub fn warn_missing(capture: &Capture) {
    for name in capture.missing() {
        warn!("{}", log_lines::interface_missing(&name));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_due_time_under_a_millisecond_away_waits_a_millisecond() {
        use std::time::Duration;
        assert_eq!(super::poll_millis(Duration::ZERO), 0);
        assert_eq!(super::poll_millis(Duration::from_micros(1)), 1);
        assert_eq!(super::poll_millis(Duration::from_micros(999)), 1);
        assert_eq!(super::poll_millis(Duration::from_micros(1001)), 2);
        assert_eq!(super::poll_millis(Duration::from_secs(1)), 1000);
    }
}
