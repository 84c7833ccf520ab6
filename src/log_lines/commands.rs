//! Lines about the classic layer's commands.

use std::fmt::Display;

use std::net::IpAddr;

/// `ssh: 198.18.0.2: running command: /usr/local/bin/open 198.18.0.2`.
pub fn running(door: &str, src: IpAddr, command: &str) -> String {
    format!("{door}: {src}: running command: {command}")
}

/// `ssh: 198.18.0.2: command timeout, running stop command: ...`: `cmd_timeout` after the start
/// command ended.
pub fn running_stop(door: &str, src: IpAddr, command: &str) -> String {
    format!("{door}: {src}: command timeout, running stop command: {command}")
}

/// `ssh: 198.18.0.2: command exited with status 7: <stderr>`, and why it likely failed when
/// the daemon had limited what commands may do.
pub fn command_failed(door: &str, src: IpAddr, status: &str, stderr: &str, denied_because: Option<&str>) -> String {
    let mut line = format!("{door}: {src}: command {status}");
    if !stderr.is_empty() {
        line.push_str(&format!(": {stderr}"));
    }
    if let Some(hint) = denied_because {
        line.push_str(&format!(" (likely for lack of privileges: {hint})"));
    }
    line
}

/// Said once per door whose command failed while commands run with limited privileges.
pub fn privileges_hint(door: &str, hint: &str) -> String {
    format!("{door}: if commands fail for lack of privileges: {hint}")
}

/// The same start command for the same source is still waiting or running (debug).
pub fn already_waiting(door: &str, src: IpAddr) -> String {
    format!("{door}: {src}: the same command is already waiting or running: not run twice")
}

/// The queue of start commands is full: this one is not run.
pub fn queue_full(door: &str, src: IpAddr, queue: usize, command: &str) -> String {
    format!("{door}: {src}: {queue} start commands waiting (a flood?); not running: {command}")
}

/// At shutdown: start commands that were still waiting are dropped.
pub fn not_run_at_shutdown(waiting: usize) -> String {
    format!("shutting down: {waiting} waiting start command(s) not run")
}

/// At shutdown: the stop commands still pending run now.
pub fn stops_before_exit(stops: usize) -> String {
    format!("running {stops} pending stop command(s) before exiting")
}

/// The thread that runs commands could not be started: commands do not run.
pub fn cannot_start_thread(why: &dyn Display) -> String {
    format!("cannot start the command thread: {why}")
}

/// The command thread has gone: this command is not run.
pub fn thread_gone(door: &str, src: IpAddr, command: &str) -> String {
    format!("{door}: {src}: the command thread is gone; not run: {command}")
}
