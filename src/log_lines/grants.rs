//! Lines about grants: a door opened, a grant that ended, an admin's revoke.

use std::fmt::Display;

use std::time::Duration;

use crate::doors::Grant;

/// What every line of a door that opened has between who and what it opens: a line with it
/// says a grant was made (`ssh: 198.18.0.2: OPEN ...`), whoever it was for.
pub const OPENED: &str = ": OPEN ";

/// `ssh: 198.18.0.2: OPEN 22/tcp for 30s`, then the host firewall's caveat when it drops what
/// the grant opens (`, but table inet firewalld ... rejects it`), then [`provenance`].
pub fn open(door: &str, who: &str, opens: &str, timeout: Duration, caveat: &str, provenance: &str) -> String {
    let timeout = humantime::format_duration(timeout);
    format!("{door}: {who}{OPENED}{opens} for {timeout}{caveat}{provenance}")
}

/// `ssh: 198.18.0.2: OPEN (runs its command)`: a door with commands and no `open`.
pub fn open_command(door: &str, who: &str, provenance: &str) -> String {
    format!("{door}: {who}{OPENED}(runs its command){provenance}")
}

/// Who vouched for a grant, and where its proof came from when that is not the address let in:
/// ` (key alice, sent from 198.18.0.3)`; empty for a knock sequence.
pub fn provenance(grant: &Grant) -> String {
    let mut parts: Vec<String> = grant.by.iter().cloned().collect();
    if grant.src != grant.addr {
        parts.push(format!("sent from {}", grant.src));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
}

/// `ssh: 198.18.0.2: 22/tcp closed again: the grant of 30s ended`.
pub fn closed_again(door: &str, who: &str, opens: &str, timeout: Duration) -> String {
    let timeout = humantime::format_duration(timeout);
    format!("{door}: {who}: {opens} closed again: the grant of {timeout} ended")
}

/// `ssh: 198.18.0.2: 22/tcp closed: revoked by uid 0`.
pub fn revoked(door: &str, who: &str, opens: &str, uid: u32) -> String {
    format!("{door}: {who}: {opens} closed: revoked by uid {uid}")
}

/// An attach door whose admin gave no set for this address family: nothing to add the grantee to.
pub fn no_set_for_family(door: &str, addr: std::net::IpAddr) -> String {
    format!("{door}: {addr}: the door has no set for this address family; not granted")
}

/// A grant someone removed from its set by hand: knockd does not put it back.
pub fn removed_from_outside(door: &str, addr: std::net::IpAddr, set: &str) -> String {
    format!("{door}: {addr}: removed from set {set} from outside: forgotten")
}

/// A set that lost its elements (`why`: it was made again, or lost them): the live grants went
/// back with the time each had left.
pub fn put_back(set: &str, why: &str, grants: usize) -> String {
    format!("set {set} {why}: put {grants} live grant(s) back with the time each had left")
}

/// The live grants could not be put back into a set.
pub fn cannot_put_back(set: &str, grants: usize, why: &dyn Display) -> String {
    format!("set {set}: cannot put {grants} live grant(s) back: {why}")
}
