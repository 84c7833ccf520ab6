//! Classic knockd.conf commands: `%IP%` substitution, the start command when a knock
//! completes, the stop command `cmd_timeout` after the start command has finished (as the
//! classic knockd does).
//!
//! The [`Scheduler`] is pure (time is given): it keeps the waiting start commands (a bounded
//! queue) and the stop commands, and hands jobs to a [`Spawner`] when it has room, stops
//! before starts. [`shell::ShellSpawner`] runs them with `/bin/sh -c`, each in its own process
//! group and with a time limit, and says when each has ended.

mod hint;
mod scheduler;
mod shell;

pub use hint::{Restrictions, looks_denied, privilege_hint};
pub use scheduler::{MAX_PENDING_STOPS, START_QUEUE, Scheduler};
pub use shell::{COMMAND_TIME_LIMIT, RUNNING, ShellSpawner, run};

use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use crate::config::PortProto;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The door's start command, when a knock completes.
    Start,
    /// Its stop command, `cmd_timeout` after the start command finished.
    Stop,
}

/// One expanded command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Which job this is, so that the spawner can say when it has ended.
    pub id: u64,
    /// The door's name, for the log.
    pub door: String,
    /// The address `%IP%` stands for.
    pub src: IpAddr,
    /// Start or stop.
    pub phase: Phase,
    /// The command line, `%IP%` replaced.
    pub command: String,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether it exited with status 0.
    pub success: bool,
    /// "exited with status 3", "was killed by signal 9", "timed out after 60s and was killed"
    pub status: String,
    /// The start of what it wrote to stderr.
    pub stderr: String,
}

impl Outcome {
    /// A command that exited with status 0 and wrote nothing to stderr.
    pub fn ok() -> Self {
        Outcome { success: true, status: "exited with status 0".into(), stderr: String::new() }
    }
}

/// A job that has ended, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The job.
    pub job: Job,
    /// How it ended.
    pub outcome: Outcome,
    /// What the command could not do for lack of privileges (capabilities dropped), if anything.
    pub restricted: Option<Restrictions>,
}

/// Runs jobs. `spawn` never blocks the caller and gives the job back when every slot of the
/// job's phase is taken (starts and stops have slots of their own, so starts never hold back
/// a stop); `spawn_blocking` waits for a slot (at shutdown, when no stop may be lost).
pub trait Spawner {
    /// Starts a job now, or gives it back when there is no room for it now.
    fn spawn(&mut self, job: Job) -> Result<(), Job>;
    /// Starts a job, waiting for room if need be.
    fn spawn_blocking(&mut self, job: Job);
    /// Appends the jobs that have ended since the last call; never blocks.
    fn ended(&mut self, out: &mut Vec<Ended>);
    /// Waits (briefly, bounded) until a job ends, then appends what has ended. Used at shutdown
    /// to let running start commands finish before their stop commands run.
    fn wait_ended(&mut self, out: &mut Vec<Ended>);
    /// Jobs handed over that have not ended yet.
    fn running(&self) -> usize;
    /// A descriptor that becomes readable when a job ends, for the event loop to wake up.
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

/// A spawner that records jobs, for tests of everything above it. Jobs end at once unless
/// `hold` is set; `slots` limits how many of each phase may run at once.
#[derive(Debug, Default)]
pub struct MemorySpawner {
    /// Every job handed over, oldest first.
    pub jobs: Vec<Job>,
    /// Refuse every job (no room).
    pub full: bool,
    /// Keep jobs running until [`MemorySpawner::finish`] (else they end at once).
    pub hold: bool,
    /// Jobs of each phase that may run at once (`None`: any number).
    pub slots: Option<usize>,
    /// How every job ends (`None`: exit status 0).
    pub outcome: Option<Outcome>,
    /// Jobs running now (with `hold`).
    pub live: Vec<Job>,
    /// Jobs that have ended, not yet reported.
    pub done: Vec<Job>,
}

impl MemorySpawner {
    /// Ends every running job now (it is reported by the next [`Spawner::ended`]).
    pub fn finish(&mut self) {
        self.done.append(&mut self.live);
    }

    fn take(&mut self, job: Job) {
        self.jobs.push(job.clone());
        if self.hold { self.live.push(job) } else { self.done.push(job) }
    }
}

impl Spawner for MemorySpawner {
    fn spawn(&mut self, job: Job) -> Result<(), Job> {
        let busy = self.live.iter().filter(|j| j.phase == job.phase).count();
        if self.full || self.slots.is_some_and(|n| busy >= n) {
            return Err(job);
        }
        self.take(job);
        Ok(())
    }

    fn spawn_blocking(&mut self, job: Job) {
        self.take(job);
    }

    fn ended(&mut self, out: &mut Vec<Ended>) {
        let outcome = self.outcome.clone().unwrap_or_else(Outcome::ok);
        out.extend(self.done.drain(..).map(|job| Ended { job, outcome: outcome.clone(), restricted: None }));
    }

    fn wait_ended(&mut self, out: &mut Vec<Ended>) {
        self.finish();
        self.ended(out);
    }

    fn running(&self) -> usize {
        self.live.len() + self.done.len()
    }
}
