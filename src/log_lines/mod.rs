//! The lines knockd logs about knocks, grants, commands and its own life: one function per
//! line. The engine, the granter, the command runner and the daemon say *what* happened and
//! route it here; they format nothing themselves.
//!
//! The log is an API: admins grep it, fail2ban filters parse it, and the classic format
//! ([`classic`]) rewrites it in knockd 0.8's words. So the text of each line lives in exactly one
//! function, the tests build the lines they wait for with these same functions (never with
//! copies of the text), and changing a line is one change here that the tests follow.
//!
//! Lines about a knock, a grant or a command carry key-values (`event`, `door`, `src`, ...):
//! the classic format reads those, never the text.

mod capture;
pub mod classic;
mod commands;
mod daemon;
mod firewall;
mod grants;
mod knocks;

pub use capture::*;
pub use commands::*;
pub use daemon::*;
pub use firewall::*;
pub use grants::*;
pub(crate) use knocks::note;
pub use knocks::*;

/// The `event` key-value of the lines the classic format rewrites.
pub mod event {
    /// A knock in order: `ssh: 198.18.0.2: stage 1 of 3`.
    pub const STAGE: &str = "stage";
    /// A door opened: `ssh: 198.18.0.2: OPEN 22/tcp for 30s`.
    pub const OPEN: &str = "open";
    /// An attempt ran past `seq_timeout` with knocks in it.
    pub const SEQ_TIMEOUT: &str = "seq_timeout";
    /// A classic command started (key-value `stop`: a stop command).
    pub const COMMAND: &str = "command";
    /// A classic command failed (key-value `code`: its exit status).
    pub const COMMAND_FAILED: &str = "command_failed";
    /// The daemon started (key-value `interfaces`).
    pub const START: &str = "start";
}

/// Lines held back by a budget of lines a second: a flood of spoofed packets must not become a
/// flood of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    /// Knock lines (stages, timeouts, refusals).
    Knocks,
    /// OPEN and closed-again lines.
    Grants,
    /// Command lines.
    Commands,
}

/// `12 knock log lines left out in the last seconds (flood?)`, said before the next line that
/// is logged.
pub fn left_out(n: u64, what: Flood) -> String {
    let what = match what {
        Flood::Knocks => "knock",
        Flood::Grants => "grant",
        Flood::Commands => "command",
    };
    format!("{n} {what} log lines left out in the last seconds (flood?)")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn lines_read_as_the_readme_shows_them() {
        let minute = Duration::from_secs(60);
        assert_eq!(
            open("ssh", "198.18.0.2", "22/tcp", minute, "", " (key alice)"),
            "ssh: 198.18.0.2: OPEN 22/tcp for 1m (key alice)"
        );
        assert_eq!(open_command("ssh", "198.18.0.2", ""), "ssh: 198.18.0.2: OPEN (runs its command)");
        assert_eq!(
            listening("all interfaces", 1, "/etc/knockd.yaml".as_ref(), Some("nftables table inet knockd")),
            "listening on all interfaces for 1 door(s) of /etc/knockd.yaml; nftables table inet knockd installed"
        );
        assert_eq!(
            closed_again("ssh", "198.18.0.2", "22/tcp", minute),
            "ssh: 198.18.0.2: 22/tcp closed again: the grant of 1m ended"
        );
        let src = "198.18.0.2".parse().unwrap();
        assert_eq!(
            seq_timeout("ssh", src, 2, 3, Duration::from_secs(5)),
            "ssh: 198.18.0.2: sequence timed out after 2 of 3 knocks (seq_timeout 5s)"
        );
        assert_eq!(rejected(None, src, "not an SPA packet"), "198.18.0.2: not an SPA packet");
        assert_eq!(left_out(12, Flood::Knocks), "12 knock log lines left out in the last seconds (flood?)");
        assert_eq!(shutting_down(&[], "nft delete table inet knockd"), "shutting down");
        assert_eq!(
            command_failed("ssh", src, "exited with status 7", "", Some("x")),
            "ssh: 198.18.0.2: command exited with status 7 (likely for lack of privileges: x)"
        );
    }
}
