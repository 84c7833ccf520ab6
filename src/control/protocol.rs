//! What `knockd status`, `revoke`, `grant` and `reload` ask the running daemon, and what it
//! answers: one JSON document each way, one request per connection. The status document is
//! the one `knockd status --json` prints; its schema is documented in doc/status.md and its
//! `schema` number changes only when a field changes meaning or goes away.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The status document's schema version: 2 since `doors[].listens` holds one entry per port
/// (schema 1 joined a sequence's ports in one string).
pub const SCHEMA: u32 = 2;

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case")]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum Request {
    /// The status document.
    Status,
    /// Removes `address`'s grants now, from `door` or from every door.
    Revoke { address: IpAddr, door: Option<String> },
    /// Opens `door` for `address`, for `seconds` (else the door's timeout), the `ports` of a
    /// door whose clients name ports (else the ports it allows).
    Grant { address: IpAddr, door: String, seconds: Option<u64>, ports: Vec<String> },
    /// Reads the config file again and switches to it, or says why not.
    Reload,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What happened, for a person.
    pub message: String,
    /// For `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl Response {
    /// Carried out, with what happened.
    pub fn ok(message: impl Into<String>) -> Self {
        Response { ok: true, message: message.into(), status: None }
    }

    /// Refused or failed, with why.
    pub fn error(message: impl Into<String>) -> Self {
        Response { ok: false, message: message.into(), status: None }
    }
}

/// Everything `knockd status` shows (doc/status.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// [`SCHEMA`].
    pub schema: u32,
    /// Where the document comes from: `daemon`, or `kernel` when no daemon answered (then
    /// `pid`, `attempts` and `counters` are empty and `by` is unknown).
    pub source: String,
    /// The daemon's process id.
    pub pid: Option<u32>,
    /// The config file it runs.
    pub config: String,
    /// Seconds since it started.
    pub uptime_seconds: Option<u64>,
    /// Its nftables table, when a door uses one.
    pub table: Option<String>,
    /// Every door, in config order.
    pub doors: Vec<DoorStatus>,
    /// Every live grant, read from the kernel.
    pub grants: Vec<GrantStatus>,
    /// Knock attempts in progress.
    pub attempts: Option<u64>,
    /// Running totals and gauges by name (doc/status.md lists them).
    pub counters: BTreeMap<String, u64>,
}

/// One door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorStatus {
    /// Its name.
    pub name: String,
    /// Its kinds of proof: `sequence`, `one_time`, `rotating`, `spa`, `fwknop`.
    pub kinds: Vec<String>,
    /// What it listens on, one entry per port: `7000/tcp`, `62201/udp`, `20000-40000/tcp
    /// (rotating)`.
    pub listens: Vec<String>,
    /// What a grant opens: `22/tcp`, `any port a client asks for`, `set inet filter x`,
    /// `command`.
    pub opens: Vec<String>,
    /// How long a grant lasts, when it opens something.
    pub timeout_seconds: Option<u64>,
    /// Why its grants may not open what they say: a chain of another table that drops its
    /// ports, an attached set that is missing. Empty when nothing is in the way.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// One live grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantStatus {
    /// The door.
    pub door: String,
    /// The address let in.
    pub address: IpAddr,
    /// What it opens: `22/tcp`, `22/tcp, 443/tcp`, or the attached set.
    pub opens: String,
    /// Who opened it: `key alice`, `key stanza1, user alice`, `admin uid 0`; `null` for a
    /// knock sequence, or when unknown.
    pub by: Option<String>,
    /// Seconds until the kernel removes it.
    pub seconds_left: Option<u64>,
}
