//! Runs classic commands with `/bin/sh -c`.
//!
//! One supervisor thread starts commands, each in a process group of its own, and watches them:
//! it reads their stderr without blocking, reaps them, and kills a group that runs past the
//! time limit. Commands of different doors or sources run side by side, so a hung start
//! command never holds back another door's stop command; commands of one door and source run
//! one after another, in order, so a stop never overtakes its start. No thread is started per
//! command, so a command that leaves a background process holding its stderr costs nothing.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{Job, Phase, Spawner};

/// How much of a command's stderr is kept for the log.
const STDERR_LIMIT: usize = 2048;
/// How long one command may run before its process group is killed.
pub const COMMAND_TIME_LIMIT: Duration = Duration::from_secs(60);
/// Jobs queued for the supervisor before `spawn` reports it full (and the scheduler retries).
const QUEUE: usize = 1024;
/// Commands running at once; more wait their turn.
const RUNNING: usize = 16;
/// How often running commands are looked at.
const WATCH: Duration = Duration::from_millis(10);

/// Runs jobs with `/bin/sh -c` on a supervisor thread, started on first use so that a daemon
/// that forks into the background does so before any thread exists.
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
                    .spawn(move || supervise(jobs))
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

/// A command that is running.
struct Running {
    job: Job,
    process: Process,
}

/// A shell process, its stderr and its deadline.
struct Process {
    child: Child,
    stderr: ChildStderr,
    kept: Vec<u8>,
    deadline: Instant,
    limit: Duration,
}

impl Process {
    fn start(command: &str, limit: Duration) -> std::io::Result<Process> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let flags = fcntl(stderr.as_fd(), FcntlArg::F_GETFL)?;
        fcntl(stderr.as_fd(), FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK))?;
        Ok(Process { child, stderr, kept: Vec::new(), deadline: Instant::now() + limit, limit })
    }

    /// Reads what stderr has now, keeping the first [`STDERR_LIMIT`] bytes.
    fn read_stderr(&mut self) {
        let mut buf = [0u8; 512];
        while let Ok(n) = self.stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = STDERR_LIMIT.saturating_sub(self.kept.len());
            self.kept.extend_from_slice(&buf[..n.min(room)]);
        }
    }

    /// How it ended, once it has; kills its process group past the deadline.
    fn poll(&mut self) -> std::io::Result<Option<Outcome>> {
        self.read_stderr();
        let status = match self.child.try_wait()? {
            Some(status) => Some(status),
            None if Instant::now() >= self.deadline => {
                let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
                self.child.wait()?;
                None
            }
            None => return Ok(None),
        };
        // What is left in the pipe now; a background process still holding it is not waited for.
        self.read_stderr();
        Ok(Some(outcome(status, self.limit, String::from_utf8_lossy(&self.kept).into_owned())))
    }
}

/// The supervisor: starts jobs as their turn comes, watches running ones, until the daemon
/// hangs up and everything has finished.
fn supervise(jobs: Receiver<Job>) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let mut running: Vec<Running> = Vec::new();
    let mut open = true;
    while open || !waiting.is_empty() || !running.is_empty() {
        let next = if waiting.is_empty() && running.is_empty() {
            jobs.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            jobs.recv_timeout(WATCH)
        };
        match next {
            Ok(job) => waiting.push_back(job),
            Err(RecvTimeoutError::Disconnected) => open = false,
            Err(RecvTimeoutError::Timeout) => {}
        }
        start_ready(&mut waiting, &mut running);
        running.retain_mut(|r| match r.process.poll() {
            Ok(None) => true,
            Ok(Some(outcome)) => {
                report(&r.job, &outcome);
                false
            }
            Err(e) => {
                error!("{}: {}: cannot watch command: {e}", r.job.door, r.job.src);
                false
            }
        });
    }
}

/// Starts every waiting job whose door and source have nothing running, in order, up to the
/// limit of commands at once.
fn start_ready(waiting: &mut VecDeque<Job>, running: &mut Vec<Running>) {
    let mut i = 0;
    while i < waiting.len() && running.len() < RUNNING {
        let job = &waiting[i];
        let busy = |j: &Job| j.door == job.door && j.src == job.src;
        if running.iter().any(|r| busy(&r.job)) || waiting.iter().take(i).any(busy) {
            i += 1;
            continue;
        }
        let job = waiting.remove(i).expect("index in range");
        let what = match job.phase {
            Phase::Start => "running command",
            Phase::Stop => "command timeout, running stop command",
        };
        let (door, command, stop) = (job.door.as_str(), job.command.as_str(), job.phase == Phase::Stop);
        info!(event = "command", door, src:% = job.src, command, stop; "{door}: {}: {what}: {command}", job.src);
        match Process::start(&job.command, COMMAND_TIME_LIMIT) {
            Ok(process) => running.push(Running { job, process }),
            Err(e) => error!("{}: {}: cannot run command: {e}", job.door, job.src),
        }
    }
}

fn report(job: &Job, outcome: &Outcome) {
    if !outcome.success {
        let stderr = if outcome.stderr.is_empty() { String::new() } else { format!(": {}", outcome.stderr.trim_end()) };
        // The exit code on its own, for the classic format's "non-zero status code (N)".
        let code = outcome.status.strip_prefix("exited with status ").unwrap_or("");
        warn!(event = "command_failed", door = job.door.as_str(), code; "{}: {}: command {}{stderr}", job.door, job.src, outcome.status);
    }
}

/// How a command ended.
#[derive(Debug)]
pub struct Outcome {
    /// Whether it exited with status 0.
    pub success: bool,
    /// "exited with status 3", "was killed by signal 9", "timed out after 60s and was killed"
    pub status: String,
    /// The start of what it wrote to stderr.
    pub stderr: String,
}

fn outcome(status: Option<ExitStatus>, limit: Duration, stderr: String) -> Outcome {
    match status {
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
    }
}

/// Runs one command line with the shell, in a process group of its own, within `limit`, and
/// waits for it (the supervisor does the same without waiting).
pub fn run(command: &str, limit: Duration) -> std::io::Result<Outcome> {
    let mut process = Process::start(command, limit)?;
    loop {
        if let Some(outcome) = process.poll()? {
            return Ok(outcome);
        }
        std::thread::sleep(WATCH);
    }
}
