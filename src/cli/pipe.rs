//! Output into a pipe that closes early (`knockd check | head`): the command ends quietly, as
//! `cat` does, instead of panicking on the broken pipe. Rust starts every program with SIGPIPE
//! ignored, which the daemon wants (a control client that hangs up must not kill it) and a
//! printing command does not.
#![allow(unsafe_code)]

use nix::sys::signal::{SigHandler, Signal, signal};

/// Gives SIGPIPE back its default action. Only for commands that print and end, never for the
/// daemon.
pub fn end_quietly_when_the_reader_leaves() {
    // SAFETY: the default action is no handler of ours, so nothing runs in signal context; it is
    // set at the start of main, before any thread is spawned.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
