//! Classic knockd.conf commands: `%IP%` substitution, the start command when a knock
//! completes, the stop command `cmd_timeout` later.
//!
//! The [`Scheduler`] is pure (time is given); it hands jobs to a [`Spawner`], which must not
//! block. [`shell::ShellSpawner`] runs them with `/bin/sh -c`, each in its own process group
//! and with a time limit.

mod shell;

pub use shell::{COMMAND_TIME_LIMIT, Outcome, ShellSpawner, run};

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::time::Duration;

use log::error;

use crate::config::{Door, PortProto};

/// Stop commands waiting at once; past this, a start whose stop could not be kept is refused,
/// so nothing is ever opened without its close.
pub const MAX_PENDING_STOPS: usize = 65_536;

/// What a command's placeholders stand for. Every value comes from a parsed packet or the
/// config: the result only ever holds addresses and numbers where placeholders were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    /// `%IP%` and `%SRC%`: the address let in.
    pub ip: IpAddr,
    /// `%PKT_SRC%`: the packet's source (fwknop; the address let in otherwise).
    pub pkt_src: Option<IpAddr>,
    /// `%DST%`: the address the packet was sent to.
    pub dst: Option<IpAddr>,
    /// `%PORT%` and `%PROTO%` (the protocol's number): the first port asked for (fwknop).
    pub port: Option<PortProto>,
    /// `%CLIENT_TIMEOUT%`: the timeout the client asked for, in seconds (else the door's).
    pub timeout: Option<Duration>,
    /// When the client sent the packet: `%TIMEOUT%` is this plus the timeout (fwknop).
    pub sent_at: Option<u64>,
}

impl From<IpAddr> for Vars {
    fn from(ip: IpAddr) -> Self {
        Vars { ip, pkt_src: None, dst: None, port: None, timeout: None, sent_at: None }
    }
}

/// Replaces the placeholders (`%IP%`, and fwknop's `%SRC%`, `%PKT_SRC%`, `%DST%`, `%PORT%`,
/// `%PROTO%`, `%TIMEOUT%`, `%CLIENT_TIMEOUT%`) that have a value; others stay as written.
pub fn expand(template: &str, vars: impl Into<Vars>) -> String {
    expand_with(template, &vars.into(), None)
}

fn expand_with(template: &str, vars: &Vars, cmd_timeout: Option<Duration>) -> String {
    let timeout = vars.timeout.or(cmd_timeout).map(|t| t.as_secs());
    let values: [(&str, Option<String>); 8] = [
        ("%IP%", Some(vars.ip.to_string())),
        ("%SRC%", Some(vars.ip.to_string())),
        ("%PKT_SRC%", Some(vars.pkt_src.unwrap_or(vars.ip).to_string())),
        ("%DST%", vars.dst.map(|d| d.to_string())),
        ("%PORT%", vars.port.map(|p| p.port.to_string())),
        ("%PROTO%", vars.port.map(|p| p.proto.number().to_string())),
        ("%TIMEOUT%", vars.sent_at.zip(timeout).map(|(at, t)| (at + t).to_string())),
        ("%CLIENT_TIMEOUT%", timeout.map(|t| t.to_string())),
    ];
    let mut out = template.to_owned();
    for (placeholder, value) in values {
        if let Some(value) = value {
            out = out.replace(placeholder, &value);
        }
    }
    out
}

/// Whether a job opens or closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The door's start command, when a knock completes.
    Start,
    /// Its stop command, `cmd_timeout` later.
    Stop,
}

/// One expanded command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The door's name, for the log.
    pub door: String,
    /// The address `%IP%` stands for.
    pub src: IpAddr,
    /// Start or stop.
    pub phase: Phase,
    /// The command line, `%IP%` replaced.
    pub command: String,
}

/// Runs jobs. `spawn` never blocks the caller and gives the job back when it cannot take it
/// now; `spawn_blocking` waits for room (used at shutdown, when no stop may be lost).
pub trait Spawner {
    /// Takes a job without waiting, or gives it back when it cannot now.
    fn spawn(&mut self, job: Job) -> Result<(), Job>;
    /// Takes a job, waiting for room if need be.
    fn spawn_blocking(&mut self, job: Job);
}

/// A stop command and when it is due; ordered by due time, then by arrival.
#[derive(Debug)]
struct Scheduled {
    due: Duration,
    seq: u64,
    job: Job,
}

impl Scheduled {
    fn key(&self) -> (Duration, u64) {
        (self.due, self.seq)
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// Start commands now, stop commands later. Independent of the config, so a reload never
/// loses a pending stop.
#[derive(Debug, Default)]
pub struct Scheduler {
    stops: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
}

impl Scheduler {
    /// `door` opened for `vars.ip` at `now`: run its start command, schedule its stop.
    pub fn open(&mut self, door: &Door, vars: impl Into<Vars>, now: Duration, spawner: &mut dyn Spawner) {
        let vars = vars.into();
        let (src, ipv6) = (vars.ip, vars.ip.is_ipv6());
        let cmd_timeout = Some(door.commands.cmd_timeout);
        let stop = door.commands.stop_for(ipv6).map(|t| expand_with(t, &vars, cmd_timeout));
        if stop.is_some() && self.stops.len() >= MAX_PENDING_STOPS {
            error!("{}: {src}: {MAX_PENDING_STOPS} stop commands pending; not running the start command", door.name);
            return;
        }
        if let Some(template) = door.commands.start_for(ipv6) {
            let command = expand_with(template, &vars, cmd_timeout);
            let job = Job { door: door.name.clone(), src, phase: Phase::Start, command };
            if let Err(job) = spawner.spawn(job) {
                // Nothing was started, so nothing needs stopping.
                return error!("{}: {src}: command queue full; not running: {}", job.door, job.command);
            }
        }
        if let Some(command) = stop {
            let job = Job { door: door.name.clone(), src, phase: Phase::Stop, command };
            self.push(now + door.commands.cmd_timeout, job);
        }
    }

    fn push(&mut self, due: Duration, job: Job) {
        self.seq += 1;
        self.stops.push(Reverse(Scheduled { due, seq: self.seq, job }));
    }

    /// Hands every stop that is due at `now` to the spawner; any it cannot take now stay queued.
    pub fn run_due(&mut self, now: Duration, spawner: &mut dyn Spawner) {
        while self.stops.peek().is_some_and(|Reverse(s)| s.due <= now) {
            let Reverse(s) = self.stops.pop().expect("peeked");
            if let Err(job) = spawner.spawn(s.job) {
                self.stops.push(Reverse(Scheduled { job, ..s }));
                return;
            }
        }
    }

    /// Runs `door`'s pending stops for `src` now (`knockd revoke`); returns how many.
    pub fn run_now(&mut self, door: &str, src: IpAddr, spawner: &mut dyn Spawner) -> usize {
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.stops).into_iter().partition(|Reverse(s)| s.job.door == door && s.job.src == src);
        self.stops = later.into_iter().collect();
        let count = now.len();
        for Reverse(s) in now {
            spawner.spawn_blocking(s.job);
        }
        count
    }

    /// At shutdown: every pending stop, now, in due order, waiting for room if need be.
    pub fn drain(&mut self, spawner: &mut dyn Spawner) {
        while let Some(Reverse(s)) = self.stops.pop() {
            spawner.spawn_blocking(s.job);
        }
    }

    /// When the next stop is due, so the event loop can wake up for it.
    pub fn next_due(&self) -> Option<Duration> {
        self.stops.peek().map(|Reverse(s)| s.due)
    }

    /// Stop commands waiting for their time.
    pub fn pending(&self) -> usize {
        self.stops.len()
    }
}

/// A spawner that records jobs, for tests of everything above it.
#[derive(Debug, Default)]
pub struct MemorySpawner {
    /// Every job handed over, oldest first.
    pub jobs: Vec<Job>,
    /// Refuse every job (a full queue).
    pub full: bool,
}

impl Spawner for MemorySpawner {
    fn spawn(&mut self, job: Job) -> Result<(), Job> {
        if self.full {
            return Err(job);
        }
        self.jobs.push(job);
        Ok(())
    }

    fn spawn_blocking(&mut self, job: Job) {
        self.jobs.push(job);
    }
}
