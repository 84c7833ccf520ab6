//! Lines about grants: a door opened, a grant that ended, an admin's revoke.

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
