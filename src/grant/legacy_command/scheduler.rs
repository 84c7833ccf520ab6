//! When classic commands run: start commands as soon as there is room, each stop command
//! `cmd_timeout` after its start command has finished (as the classic knockd does), and stops
//! before starts. Pure: time is given, and processes are the [`Spawner`]'s business.
//!
//! A flood of spoofed completions must not delay a real stop command, nor grow without bound:
//! the start commands waiting for a slot are a bounded queue (a full queue refuses, and counts
//! it), the same start command for the same door and source is not queued twice while one is
//! still waiting or running, and stop commands have slots of their own in the spawner.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use log::{Level, debug, info, log};

use super::hint::{looks_denied, privilege_hint};
use super::{Ended, Job, Phase, Spawner, Vars, expand_with};
use crate::config::Door;
use crate::log_lines::{self, Flood};
use crate::rate_limit::LogBudget;

/// Stop commands waiting at once; past this, a start whose stop could not be kept is refused,
/// so nothing is ever opened without its close.
pub const MAX_PENDING_STOPS: usize = 65_536;
/// Start commands waiting for a free slot; past this, a new one is refused and counted.
pub const START_QUEUE: usize = 256;
/// Command log lines a second (running, stop, failed); the rest are counted and summarized.
const LINES_PER_SECOND: u32 = 100;

/// One start command per door, source and command line while it waits or runs.
type Key = (String, IpAddr, String);

/// A stop command, and how long after its start command has finished it runs.
#[derive(Debug)]
struct Stop {
    job: Job,
    after: Duration,
}

/// A start command waiting for a slot, with its stop.
#[derive(Debug)]
struct Waiting {
    job: Job,
    stop: Option<Stop>,
}

/// A start command that is running, with its stop; `hurry` once revoked: the stop then runs
/// as soon as the start has ended.
#[derive(Debug)]
struct Running {
    key: Key,
    stop: Option<Stop>,
    hurry: bool,
}

/// A stop command and when it is due; ordered by due time, then by arrival.
#[derive(Debug)]
struct Scheduled {
    due: Duration,
    job: Job,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.job.id) == (other.due, other.job.id)
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
        (self.due, self.job.id).cmp(&(other.due, other.job.id))
    }
}

fn key(job: &Job) -> Key {
    (job.door.clone(), job.src, job.command.clone())
}

/// Start commands now (or as soon as there is room), stop commands later. Independent of the
/// config, so a reload never loses a pending stop.
#[derive(Debug)]
pub struct Scheduler {
    waiting: VecDeque<Waiting>,
    running: HashMap<u64, Running>,
    /// The keys of the start commands waiting or running.
    live: HashSet<Key>,
    stops: BinaryHeap<Reverse<Scheduled>>,
    next_id: u64,
    refused: u64,
    merged: u64,
    log: LogBudget,
    /// Doors whose failed commands were already given the privileges hint.
    hinted: HashSet<String>,
    scratch: Vec<Ended>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler {
            waiting: VecDeque::new(),
            running: HashMap::new(),
            live: HashSet::new(),
            stops: BinaryHeap::new(),
            next_id: 0,
            refused: 0,
            merged: 0,
            log: LogBudget::new(LINES_PER_SECOND, Flood::Commands),
            hinted: HashSet::new(),
            scratch: Vec::new(),
        }
    }
}

impl Scheduler {
    /// `door` opened for `vars.ip` at `now`: queue its start command (its stop runs
    /// `cmd_timeout` after the start has finished), and start what there is room for.
    pub fn open(&mut self, door: &Door, vars: impl Into<Vars>, now: Duration, spawner: &mut dyn Spawner) {
        let vars = vars.into();
        let (src, ipv6, after) = (vars.ip, vars.ip.is_ipv6(), door.commands.cmd_timeout);
        let expand = |template: &str| expand_with(template, &vars, Some(after));
        let (start, stop) = (door.commands.start_for(ipv6).map(expand), door.commands.stop_for(ipv6).map(expand));
        if stop.is_some() && self.pending() >= MAX_PENDING_STOPS {
            self.refused += 1;
            let line =
                format!("{}: {src}: {MAX_PENDING_STOPS} stop commands pending; not running its commands", door.name);
            return self.say(now, Level::Error, line);
        }
        let stop = stop.map(|command| Stop { job: self.job(&door.name, src, Phase::Stop, command), after });
        let Some(command) = start else {
            // Nothing to wait for: the stop runs `cmd_timeout` from now.
            return stop.into_iter().for_each(|s| self.schedule(now + s.after, s.job));
        };
        let job = self.job(&door.name, src, Phase::Start, command);
        if self.live.contains(&key(&job)) {
            // The same command for the same source still waits or runs: its stop, due after
            // it has finished, closes what this grant would have opened.
            self.merged += 1;
            return debug!("{}", log_lines::already_waiting(&door.name, src));
        }
        if self.waiting.len() >= START_QUEUE {
            self.refused += 1;
            let line = log_lines::queue_full(&door.name, src, START_QUEUE, &job.command);
            return self.say(now, Level::Warn, line);
        }
        self.live.insert(key(&job));
        self.waiting.push_back(Waiting { job, stop });
        self.run(now, spawner);
    }

    fn job(&mut self, door: &str, src: IpAddr, phase: Phase, command: String) -> Job {
        self.next_id += 1;
        Job { id: self.next_id, door: door.to_owned(), src, phase, command }
    }

    fn schedule(&mut self, due: Duration, job: Job) {
        self.stops.push(Reverse(Scheduled { due, job }));
    }

    /// At `now`: takes note of the commands that have ended (their stops are due
    /// `cmd_timeout` later), then hands the spawner every stop that is due and as many
    /// waiting starts as it has room for.
    pub fn run(&mut self, now: Duration, spawner: &mut dyn Spawner) {
        self.collect(now, spawner);
        self.hand_over_stops(now, spawner);
        self.hand_over_starts(now, spawner);
        // A spawner that reports at once (tests, a command that could not be started).
        self.collect(now, spawner);
        self.hand_over_stops(now, spawner);
        self.log.say_left_out(now);
    }

    fn collect(&mut self, now: Duration, spawner: &mut dyn Spawner) {
        let mut ended = std::mem::take(&mut self.scratch);
        spawner.ended(&mut ended);
        for e in ended.drain(..) {
            self.ended(e, now);
        }
        self.scratch = ended;
    }

    fn ended(&mut self, ended: Ended, now: Duration) {
        if let Some(running) = self.running.remove(&ended.job.id) {
            self.live.remove(&running.key);
            if let Some(stop) = running.stop {
                let due = if running.hurry { now } else { now + stop.after };
                self.schedule(due, stop.job);
            }
        }
        if !ended.outcome.success {
            self.report_failure(&ended, now);
        }
    }

    /// A failed command's line, with its status and stderr; and, when the daemon had limited
    /// what commands may do, the hint that says how to give it back: on the line itself when
    /// stderr reads like a refusal, else once per door.
    fn report_failure(&mut self, ended: &Ended, now: Duration) {
        let (job, outcome) = (&ended.job, &ended.outcome);
        let stderr = outcome.stderr.trim_end();
        let (mut denied, mut hint) = (None, None);
        if let Some(restrictions) = &ended.restricted {
            if looks_denied(stderr) || looks_denied(&outcome.status) {
                denied = Some(privilege_hint(restrictions));
            } else if self.hinted.insert(job.door.clone()) {
                hint = Some(log_lines::privileges_hint(&job.door, &privilege_hint(restrictions)));
            }
        }
        if self.may_say(now) {
            let line = log_lines::command_failed(&job.door, job.src, &outcome.status, stderr, denied.as_deref());
            // The exit code on its own, for the classic format's "non-zero status code (N)".
            let code = outcome.status.strip_prefix("exited with status ").unwrap_or("");
            log::warn!(event = log_lines::event::COMMAND_FAILED, door = job.door.as_str(), code; "{line}");
        }
        if let Some(hint) = hint {
            log::warn!("{hint}");
        }
    }

    fn hand_over_stops(&mut self, now: Duration, spawner: &mut dyn Spawner) {
        while self.stops.peek().is_some_and(|Reverse(s)| s.due <= now) {
            let Reverse(s) = self.stops.pop().expect("peeked");
            let said = said(&s.job);
            match spawner.spawn(s.job) {
                Ok(()) => {
                    if self.may_say(now) {
                        let (door, src, command) = (said.0.as_str(), said.1, said.2.as_str());
                        let line = log_lines::running_stop(door, src, command);
                        info!(event = log_lines::event::COMMAND, door, src:% = src, command, stop = true; "{line}");
                    }
                }
                Err(job) => {
                    // No room now: it goes first when a stop slot is free again.
                    self.stops.push(Reverse(Scheduled { job, ..s }));
                    return;
                }
            }
        }
    }

    fn hand_over_starts(&mut self, now: Duration, spawner: &mut dyn Spawner) {
        while let Some(Waiting { job, stop }) = self.waiting.pop_front() {
            let said = said(&job);
            let (id, key) = (job.id, key(&job));
            match spawner.spawn(job) {
                Ok(()) => {
                    self.running.insert(id, Running { key, stop, hurry: false });
                    if self.may_say(now) {
                        let (door, src, command) = (said.0.as_str(), said.1, said.2.as_str());
                        let line = log_lines::running(door, src, command);
                        info!(event = log_lines::event::COMMAND, door, src:% = src, command, stop = false; "{line}");
                    }
                }
                Err(job) => {
                    self.waiting.push_front(Waiting { job, stop });
                    return;
                }
            }
        }
    }

    /// A command line at `level`, within the budget of lines a second.
    fn say(&mut self, now: Duration, level: Level, line: String) {
        if self.may_say(now) {
            log!(level, "{line}");
        }
    }

    /// Whether a command line may be logged at `now`, within the budget of lines a second;
    /// says first how many were left out. The lines carry key-values (`event`, `door`, `src`,
    /// ...) for the classic log format.
    fn may_say(&mut self, now: Duration) -> bool {
        self.log.may_log(now)
    }

    /// `knockd revoke`: `door`'s commands for `src` close now. A start still waiting is
    /// dropped (it opened nothing); a running one's stop runs as soon as it has ended; a
    /// pending stop runs now. Returns how many grants that closed.
    pub fn run_now(&mut self, door: &str, src: IpAddr, now: Duration, spawner: &mut dyn Spawner) -> usize {
        let hit = |job: &Job| job.door == door && job.src == src;
        let before = self.waiting.len();
        let live = &mut self.live;
        self.waiting.retain(|w| !(hit(&w.job) && live.remove(&key(&w.job))));
        let mut count = before - self.waiting.len();
        for running in self.running.values_mut().filter(|r| r.key.0 == door && r.key.1 == src) {
            running.hurry = true;
            count += usize::from(running.stop.is_some());
        }
        let (mine, others): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.stops).into_iter().partition(|Reverse(s)| hit(&s.job));
        self.stops = others.into_iter().collect();
        count += mine.len();
        for Reverse(s) in mine {
            self.schedule(now, s.job);
        }
        self.run(now, spawner);
        count
    }

    /// At shutdown: start commands still waiting are dropped (they opened nothing); running
    /// ones finish (each within the time limit), then every pending stop runs, in due order,
    /// waiting for room if need be.
    pub fn drain(&mut self, spawner: &mut dyn Spawner) {
        if !self.waiting.is_empty() {
            info!("{}", log_lines::not_run_at_shutdown(self.waiting.len()));
        }
        self.waiting.clear();
        for running in self.running.values_mut() {
            running.hurry = true;
        }
        let mut ended = Vec::new();
        while !self.running.is_empty() && spawner.running() > 0 {
            spawner.wait_ended(&mut ended);
            for e in ended.drain(..) {
                self.ended(e, Duration::ZERO);
            }
        }
        // A start the spawner lost track of still gets its stop.
        for (_, running) in self.running.drain() {
            if let Some(stop) = running.stop {
                self.stops.push(Reverse(Scheduled { due: Duration::ZERO, job: stop.job }));
            }
        }
        self.live.clear();
        while let Some(Reverse(s)) = self.stops.pop() {
            spawner.spawn_blocking(s.job);
        }
    }

    /// When the next stop is due, so the event loop can wake up for it. (Starts waiting for a
    /// slot go when a command ends, which wakes the loop through the spawner.)
    pub fn next_due(&self) -> Option<Duration> {
        self.stops.peek().map(|Reverse(s)| s.due)
    }

    /// Stop commands still to run: due later, or after their start command.
    pub fn pending(&self) -> usize {
        let after_start = self.running.values().filter(|r| r.stop.is_some()).count();
        self.stops.len() + after_start + self.waiting.iter().filter(|w| w.stop.is_some()).count()
    }

    /// Start commands refused so far: the queue was full (or too many stops pending).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Start commands not run because the same one was already waiting or running.
    pub fn merged(&self) -> u64 {
        self.merged
    }
}

/// What a command's log line names: its door, source and command.
fn said(job: &Job) -> (String, IpAddr, String) {
    (job.door.clone(), job.src, job.command.clone())
}
