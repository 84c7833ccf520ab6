//! The daemon's log lines as the tests look for them. The log is an API (admins grep it,
//! fail2ban filters parse it), so its words live in `knockd::log_lines` alone: a test builds
//! the line it waits for with the same function the daemon writes it with, and gives only the
//! values (the door, the address, what opened, how long). Where a test does not know a value
//! (a rule's handle, an error's wording), [`ANY`] stands in for it.
//!
//! Left as text: what other programs write (the classic knockd 0.8, fwknop, nft, the shell),
//! and the daemon's lines that `log_lines` does not build yet.

use std::net::IpAddr;
use std::time::Duration;

use knockd::doors::Grant;
use knockd::log_lines;

/// A value a test does not know, in a line it builds to look for: any text on that line fits
/// there (`log_lines::command_failed(.., Some(ANY))`: whatever the hint says).
pub const ANY: &str = "\u{0}";

/// Whether `line` has `pattern` in it, each [`ANY`] in the pattern standing for any text.
pub fn fits(line: &str, pattern: &str) -> bool {
    let mut rest = line;
    for piece in pattern.split(ANY) {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// A pattern as a failure message shows it, with `…` for each [`ANY`].
pub fn shown(pattern: &str) -> String {
    pattern.replace(ANY, "…")
}

/// A lab address, as `log_lines` takes it.
pub fn ip(addr: &str) -> IpAddr {
    addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"))
}

/// `n` seconds: a grant's or a timeout's length, as the log says it (`60` is `1m`).
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `ssh: 198.18.0.2: OPEN 22/tcp for 30s`: door `door` opened `opens` for `who`, found also in
/// a line that goes on (the host firewall's caveat, who vouched for the grant).
pub fn opened(door: &str, who: &str, opens: &str, timeout: Duration) -> String {
    log_lines::open(door, who, opens, timeout, "", "")
}

/// ` (key alice)`: how the OPEN line of a grant that `by` vouched for ends (`key alice`,
/// `admin uid 0`: the words of whoever vouched).
pub fn vouched(by: &str) -> String {
    let here = ip(super::lab::SERVER_V4);
    let grant = Grant { by: Some(by.to_owned()), ..Grant::new(0, here, here, here) };
    log_lines::provenance(&grant)
}

/// `198.18.0.3: OPEN `: a part of every OPEN line for `who`, whatever the door and what it
/// opened.
pub fn any_open_for(who: &str) -> String {
    format!("{who}{}", log_lines::OPENED)
}

/// `12 grant log lines left out in the last seconds (flood?)`, whatever the number.
pub fn left_out(what: log_lines::Flood) -> String {
    const SOME: u64 = 918_273_645;
    log_lines::left_out(SOME, what).replace(&SOME.to_string(), ANY)
}

/// A line about a source the test does not name (`anyone(|src| log_lines::restarted("ssh",
/// src))`: any source's restart): `line` built for a stand-in address, which [`ANY`] replaces.
pub fn anyone(line: impl Fn(IpAddr) -> String) -> String {
    let stand_in = ip("198.19.255.254");
    line(stand_in).replace(&stand_in.to_string(), ANY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_stands_for_any_text_on_the_line_and_nothing_else_does() {
        let line = "ssh: 198.18.0.2: OPEN 2222/tcp for 30s, but table inet filter chain input rejects it (handle 38)";
        let caveat = format!(", but table inet filter chain input rejects it (handle {ANY})");
        assert!(fits(line, &log_lines::open("ssh", "198.18.0.2", "2222/tcp", secs(30), &caveat, "")));
        assert!(fits(line, &opened("ssh", "198.18.0.2", "2222/tcp", secs(30))), "a line that goes on");
        assert!(fits(line, &any_open_for("198.18.0.2")));
        assert!(!fits(line, &opened("ssh", "198.18.0.3", "2222/tcp", secs(30))), "another source");
        assert!(!fits(line, &opened("ssh", "198.18.0.2", "2222/tcp", secs(60))), "another timeout");
        // The pieces around ANY must come in order.
        assert!(!fits(line, &format!("(handle 38){ANY}ssh: ")));
        let restart = anyone(|src| log_lines::restarted("web", src));
        assert!(fits("web: 2001:db8::7: knock out of order, sequence restarted", &restart));
        assert!(!fits("ssh: 198.18.0.2: knock out of order, sequence restarted", &restart));
        let held_back = left_out(log_lines::Flood::Grants);
        assert!(fits("12 grant log lines left out in the last seconds (flood?)", &held_back));
        assert!(!fits("12 knock log lines left out in the last seconds (flood?)", &held_back));
        assert!(fits(" (key alice)", &vouched("key alice")));
    }
}
