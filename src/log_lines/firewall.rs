//! Lines about knockd's nftables objects and the sets it attaches to.

use std::fmt::Display;

/// `nftables table inet knockd installed`; `what` is what the ruleset says it is.
pub fn installed(what: &str) -> String {
    format!("{what} installed")
}

/// Someone changed knockd's objects: `table inet knockd was removed from outside: putting it
/// back`; `what` says what changed.
pub fn putting_back(what: &str) -> String {
    format!("{what} from outside: putting it back")
}

/// `nftables table inet knockd restored`.
pub fn restored(what: &str) -> String {
    format!("{what} restored")
}

/// Every set a door attaches to is there again (after one went missing).
pub const ATTACHED_SETS_BACK: &str = "the attached sets are all back";

/// A set that was full took a grant again.
pub fn set_has_room(family: &dyn Display, table: &str, set: &str) -> String {
    format!("set {family} {table} {set} has room again")
}

/// A table of knockd's that nothing needs any more: `removed table inet knockd left by the
/// last config: no door guards a port in it now`.
pub fn removed_table(table: &str, left_by: &str) -> String {
    format!("removed table inet {table} left by {left_by}: no door guards a port in it now")
}

/// The host's other firewalls could not be read, so what they do with the doors' ports is not
/// known.
pub fn cannot_read_host_ruleset(why: &dyn Display) -> String {
    format!("cannot read the host's nftables ruleset to check the doors' ports: {why}")
}

/// `door ssh: 22/tcp over IPv4: the host's firewalls let it in now`, after a drop went away.
pub fn host_lets_in(subject: &str) -> String {
    format!("{subject}: the host's firewalls let it in now")
}

/// `door ssh: 22/tcp over IPv4: table inet firewalld chain filter_INPUT rejects it (handle 38):
/// grants will not open it; ...`.
pub fn host_drops(subject: &str, answer: &dyn Display) -> String {
    format!("{subject}: {answer}: grants will not open it; `knockd check` says what to do")
}

/// A rule whose verdict knockd cannot work out (a named set, a rate limit...); `was_dropped`:
/// it replaced a drop.
pub fn host_cannot_tell(subject: &str, answer: &dyn Display, was_dropped: bool) -> String {
    let now = if was_dropped { " (no chain drops it for sure now)" } else { "" };
    format!("{subject}: note: {answer}{now}")
}

/// Grants could not be added to a set (other than for a full set, said once).
pub fn cannot_grant(sources: usize, why: &dyn Display) -> String {
    format!("cannot grant access to {sources} source(s): {why}")
}

/// knockd's objects were changed from outside and could not be put back.
pub fn cannot_restore(what: &str, why: &dyn Display) -> String {
    format!("cannot restore {what}: {why}")
}

/// Inside fw4, fw4's table is gone (a restart): said once, and waited for.
pub fn waiting_for_fw4(operation: &str) -> String {
    format!("cannot {operation}: the doors' rules go back in when it returns")
}

/// A set a door attaches to is missing or unusable: said once.
pub fn attached_set_unusable(door: &str, problem: &str) -> String {
    format!("door {door}: {problem}; its grants fail until that is fixed")
}

/// The grants in a set could not be read back at start (debug): the ledger does not know them.
pub fn cannot_read_grants(set: &str, why: &dyn Display) -> String {
    format!("cannot read the grants in set {set}: {why}")
}

/// Something knockd reads back to check its objects could not be read (debug).
pub fn cannot_check(what: &str, why: &dyn Display) -> String {
    format!("cannot check {what}: {why}")
}
