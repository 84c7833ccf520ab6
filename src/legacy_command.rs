//! Classic knockd.conf commands: `%IP%` substitution, the start command when a knock
//! completes, the stop command `cmd_timeout` later.
//!
//! The [`Scheduler`] is pure (time is given); it hands jobs to a [`Spawner`], which must not
//! block. [`ShellSpawner`] runs them with `/bin/sh -c` on a worker thread, one after another in
//! the order they were due, each in its own process group and with a time limit.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{error, info, warn};

use crate::config::Door;

/// Stop commands waiting at once; past this, a start whose stop could not be kept is refused,
/// so nothing is ever opened without its close.
pub const MAX_PENDING_STOPS: usize = 65_536;
/// Jobs queued for the worker before `spawn` reports it full (and the scheduler retries).
const QUEUE: usize = 1024;
/// How long one command may run before its process group is killed.
pub const COMMAND_TIME_LIMIT: Duration = Duration::from_secs(60);
/// How much of a command's stderr is kept for the log.
const STDERR_LIMIT: usize = 2048;

/// Replaces every `%IP%` with the address. The address comes from a parsed packet, so the
/// result only ever contains an IP literal where the placeholder was.
pub fn expand(template: &str, addr: IpAddr) -> String {
    template.replace("%IP%", &addr.to_string())
}

/// Whether a job opens or closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Start,
    Stop,
}

/// One expanded command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub door: String,
    pub src: IpAddr,
    pub phase: Phase,
    pub command: String,
}

/// Runs jobs. `spawn` never blocks the caller and gives the job back when it cannot take it
/// now; `spawn_blocking` waits for room (used at shutdown, when no stop may be lost).
pub trait Spawner {
    fn spawn(&mut self, job: Job) -> Result<(), Job>;
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
    /// A knock on `door` from `src` completed at `now`: run its start command, schedule its stop.
    pub fn open(&mut self, door: &Door, src: IpAddr, now: Duration, spawner: &mut dyn Spawner) {
        let ipv6 = src.is_ipv6();
        let stop = door.commands.stop_for(ipv6).map(|t| expand(t, src));
        if stop.is_some() && self.stops.len() >= MAX_PENDING_STOPS {
            error!("{}: {src}: {MAX_PENDING_STOPS} stop commands pending; not running the start command", door.name);
            return;
        }
        if let Some(template) = door.commands.start_for(ipv6) {
            let job = Job { door: door.name.clone(), src, phase: Phase::Start, command: expand(template, src) };
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

    pub fn pending(&self) -> usize {
        self.stops.len()
    }
}

/// Runs jobs with `/bin/sh -c` on a worker thread, started on first use so that a daemon that
/// forks into the background does so before any thread exists.
#[derive(Default)]
pub struct ShellSpawner {
    worker: Option<(SyncSender<Job>, JoinHandle<()>)>,
}

impl ShellSpawner {
    fn queue(&mut self) -> &SyncSender<Job> {
        &self
            .worker
            .get_or_insert_with(|| {
                let (queue, jobs) = mpsc::sync_channel(QUEUE);
                let handle = std::thread::Builder::new()
                    .name("commands".into())
                    .spawn(move || work(jobs))
                    .expect("cannot start the command thread");
                (queue, handle)
            })
            .0
    }

    /// Waits for every queued job to finish (each is bounded by [`COMMAND_TIME_LIMIT`]).
    pub fn finish(mut self) {
        if let Some((queue, worker)) = self.worker.take() {
            drop(queue);
            let _ = worker.join();
        }
    }
}

impl Spawner for ShellSpawner {
    fn spawn(&mut self, job: Job) -> Result<(), Job> {
        self.queue().try_send(job).map_err(|e| match e {
            TrySendError::Full(job) | TrySendError::Disconnected(job) => job,
        })
    }

    fn spawn_blocking(&mut self, job: Job) {
        if let Err(mpsc::SendError(job)) = self.queue().send(job) {
            error!("{}: {}: the command thread is gone; not run: {}", job.door, job.src, job.command);
        }
    }
}

fn work(jobs: Receiver<Job>) {
    for job in jobs {
        let what = match job.phase {
            Phase::Start => "running command",
            Phase::Stop => "command timeout, running stop command",
        };
        info!("{}: {}: {what}: {}", job.door, job.src, job.command);
        match run(&job.command, COMMAND_TIME_LIMIT) {
            Ok(outcome) if outcome.success => {}
            Ok(outcome) => warn!(
                "{}: {}: command {}{}",
                job.door,
                job.src,
                outcome.status,
                if outcome.stderr.is_empty() { String::new() } else { format!(": {}", outcome.stderr.trim_end()) }
            ),
            Err(e) => error!("{}: {}: cannot run command: {e}", job.door, job.src),
        }
    }
}

/// How a command ended.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    /// "exited with status 3", "was killed by signal 9", "timed out after 60s and was killed"
    pub status: String,
    pub stderr: String,
}

/// Runs one command line with the shell, in a process group of its own, within `limit`.
pub fn run(command: &str, limit: Duration) -> std::io::Result<Outcome> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let mut stderr = child.stderr.take().expect("piped");
    // Read on the side: a command that leaves a background process holding stderr open must
    // not hold up the worker.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = STDERR_LIMIT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // SAFETY: signalling the process group we created for this child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = rx.recv_timeout(Duration::from_millis(500)).unwrap_or_default();
    Ok(match status {
        Some(s) if s.success() => Outcome { success: true, status: "exited with status 0".into(), stderr },
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Outcome { success: false, status: format!("exited with status {code}"), stderr },
            (_, signal) => {
                Outcome { success: false, status: format!("was killed by signal {}", signal.unwrap_or(0)), stderr }
            }
        },
        None => Outcome {
            success: false,
            status: format!("timed out after {} and was killed", humantime::format_duration(limit)),
            stderr,
        },
    })
}

/// A spawner that records jobs, for tests of everything above it.
#[derive(Debug, Default)]
pub struct MemorySpawner {
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
