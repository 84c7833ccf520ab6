//! Runs classic commands with `/bin/sh -c`.
//!
//! One supervisor thread starts commands as they are handed over, each in a process group of
//! its own, and watches them: it reads their stderr without blocking, reaps them, kills a group
//! that runs past the time limit, and reports each end back (waking the event loop through a
//! pipe). The daemon's side counts what runs: at most [`RUNNING`] start commands and
//! [`RUNNING`] stop commands at once, so hung or flooded start commands never hold back a stop
//! command. No thread is started per command, so a command that leaves a background process
//! holding its stderr costs nothing.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::error;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{Ended, Job, Outcome, Phase, Restrictions, Spawner};
use crate::log_lines;

/// How much of a command's stderr is kept for the log.
const STDERR_LIMIT: usize = 2048;
/// How long one command may run before its process group is killed.
pub const COMMAND_TIME_LIMIT: Duration = Duration::from_secs(60);
/// Commands of each phase (start, stop) running at once; more wait in the scheduler.
pub const RUNNING: usize = 16;
/// How often running commands are looked at.
const WATCH: Duration = Duration::from_millis(10);

/// The supervisor thread and the ends of its channels.
struct Worker {
    jobs: Sender<Job>,
    ended: Receiver<Ended>,
    /// Readable when a command has ended.
    wake: OwnedFd,
    handle: JoinHandle<()>,
}

/// Runs jobs with `/bin/sh -c` on a supervisor thread, started on first use so that a daemon
/// that forks into the background does so before any thread exists (and so that the thread
/// has the capabilities the daemon kept, which commands inherit).
#[derive(Default)]
pub struct ShellSpawner {
    worker: Option<Worker>,
    /// Jobs handed over and not yet reported ended, by phase (start, stop).
    running: [usize; 2],
    /// Ends already taken from the channel, not yet passed on.
    done: Vec<Ended>,
}

fn slot(phase: Phase) -> usize {
    match phase {
        Phase::Start => 0,
        Phase::Stop => 1,
    }
}

impl ShellSpawner {
    fn worker(&mut self) -> Option<&Worker> {
        if self.worker.is_none() {
            match start_worker() {
                Ok(worker) => self.worker = Some(worker),
                Err(e) => error!("{}", log_lines::cannot_start_thread(&e)),
            }
        }
        self.worker.as_ref()
    }

    /// Takes what has ended off the channel, waiting up to `wait` for the first one.
    fn pull(&mut self, wait: Option<Duration>) {
        let Some(worker) = &self.worker else { return };
        let mut byte = [0u8; 64];
        while nix::unistd::read(&worker.wake, &mut byte).is_ok_and(|n| n > 0) {}
        if let Some(wait) = wait {
            if let Ok(ended) = worker.ended.recv_timeout(wait) {
                self.running[slot(ended.job.phase)] -= 1;
                self.done.push(ended);
            }
        }
        while let Ok(ended) = worker.ended.try_recv() {
            self.running[slot(ended.job.phase)] -= 1;
            self.done.push(ended);
        }
    }

    /// Waits for every job handed over to finish (each is bounded by [`COMMAND_TIME_LIMIT`]).
    pub fn finish(mut self) {
        if let Some(worker) = self.worker.take() {
            drop(worker.jobs);
            let _ = worker.handle.join();
        }
    }
}

fn start_worker() -> std::io::Result<Worker> {
    let (wake, wake_tx) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
    let (jobs, incoming) = mpsc::channel();
    let (report, ended) = mpsc::channel();
    let restricted = restrictions();
    let handle = std::thread::Builder::new()
        .name("commands".into())
        .spawn(move || supervise(incoming, report, wake_tx, restricted))?;
    Ok(Worker { jobs, ended, wake, handle })
}

/// What commands, run as root by this process, would lack of root's usual capabilities: the
/// bounding set caps what an exec gives back to root, and `no_new_privs` caps it at what the
/// process has now. Read before the thread starts: it inherits them.
fn restrictions() -> Option<Restrictions> {
    use caps::{CapSet, Capability::*};
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let no_new_privs = nix::sys::prctl::get_no_new_privs().unwrap_or(false);
    let available = caps::read(None, if no_new_privs { CapSet::Permitted } else { CapSet::Bounding }).ok()?;
    let usual = [
        CAP_CHOWN,
        CAP_DAC_OVERRIDE,
        CAP_FOWNER,
        CAP_KILL,
        CAP_SETGID,
        CAP_SETUID,
        CAP_NET_BIND_SERVICE,
        CAP_SYS_ADMIN,
    ];
    let missing: Vec<String> = usual.iter().filter(|c| !available.contains(c)).map(|c| c.to_string()).collect();
    (!missing.is_empty()).then_some(Restrictions { missing, no_new_privs })
}

impl Spawner for ShellSpawner {
    fn spawn(&mut self, job: Job) -> Result<(), Job> {
        let phase = slot(job.phase);
        if self.running[phase] >= RUNNING {
            self.pull(None);
            if self.running[phase] >= RUNNING {
                return Err(job);
            }
        }
        let Some(worker) = self.worker() else { return Err(job) };
        worker.jobs.send(job).map_err(|mpsc::SendError(job)| job)?;
        self.running[phase] += 1;
        Ok(())
    }

    fn spawn_blocking(&mut self, job: Job) {
        // Bounded: every running command ends within the time limit.
        while self.running[slot(job.phase)] >= RUNNING && self.worker.is_some() {
            self.pull(Some(WATCH));
        }
        if let Err(job) = self.spawn(job) {
            error!("{}", log_lines::thread_gone(&job.door, job.src, &job.command));
        }
    }

    fn ended(&mut self, out: &mut Vec<Ended>) {
        self.pull(None);
        out.append(&mut self.done);
    }

    fn wait_ended(&mut self, out: &mut Vec<Ended>) {
        if self.done.is_empty() {
            self.pull(Some(WATCH * 10));
        }
        self.ended(out);
    }

    fn running(&self) -> usize {
        self.running.iter().sum::<usize>() + self.done.len()
    }

    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.worker.as_ref().map(|w| w.wake.as_fd())
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

/// The supervisor: starts jobs as they come, watches running ones, reports each end, until
/// the daemon hangs up and everything has finished.
fn supervise(jobs: Receiver<Job>, report: Sender<Ended>, wake: OwnedFd, restricted: Option<Restrictions>) {
    let mut running: Vec<Running> = Vec::new();
    let mut open = true;
    while open || !running.is_empty() {
        let next = if running.is_empty() {
            jobs.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            jobs.recv_timeout(WATCH)
        };
        let mut incoming = Vec::new();
        match next {
            Ok(job) => incoming.push(job),
            Err(RecvTimeoutError::Disconnected) => open = false,
            Err(RecvTimeoutError::Timeout) => {}
        }
        incoming.extend(jobs.try_iter());
        let mut ended = Vec::new();
        for job in incoming {
            match Process::start(&job.command, COMMAND_TIME_LIMIT) {
                Ok(process) => running.push(Running { job, process }),
                Err(e) => ended.push((
                    job,
                    Outcome { success: false, status: format!("could not be started: {e}"), stderr: String::new() },
                )),
            }
        }
        running.retain_mut(|r| match r.process.poll() {
            Ok(None) => true,
            Ok(Some(outcome)) => {
                ended.push((r.job.clone(), outcome));
                false
            }
            Err(e) => {
                ended.push((
                    r.job.clone(),
                    Outcome { success: false, status: format!("cannot be watched: {e}"), stderr: String::new() },
                ));
                false
            }
        });
        for (job, outcome) in ended {
            let _ = report.send(Ended { job, outcome, restricted: restricted.clone() });
            // A full pipe already says that something ended.
            let _ = nix::unistd::write(&wake, b"1");
        }
    }
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
