//! Runs classic commands with `/bin/sh -c`.
#![allow(unsafe_code)]

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{error, info, warn};

use super::{Job, Phase, Spawner};

/// How much of a command's stderr is kept for the log.
const STDERR_LIMIT: usize = 2048;

/// How long one command may run before its process group is killed.
pub const COMMAND_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Jobs queued for the worker before `spawn` reports it full (and the scheduler retries).
const QUEUE: usize = 1024;

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
    /// Whether it exited with status 0.
    pub success: bool,
    /// "exited with status 3", "was killed by signal 9", "timed out after 60s and was killed"
    pub status: String,
    /// The start of what it wrote to stderr.
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
