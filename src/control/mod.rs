//! The control socket: how `knockd status`, `revoke`, `grant` and `reload` talk to the running
//! daemon. A Unix stream socket only root can use (mode 0600, and the peer's uid is checked),
//! one JSON request and one JSON answer per connection ([`protocol`]); no network listener.

pub mod prometheus;
pub mod protocol;
pub mod socket;

pub use protocol::{DoorStatus, GrantStatus, Request, Response, SCHEMA, Status};
pub use socket::{ControlError, Listener, ask};

/// Where the daemon listens unless told otherwise (`--control`, `control_socket:`): in the
/// RuntimeDirectory the unit creates, for the table `knockd` in the host's network namespace.
pub const DEFAULT_SOCKET: &str = "/run/knockd/control";

/// The default control socket of a daemon with `table` in this network namespace:
/// [`DEFAULT_SOCKET`] for the table `knockd` in the host's namespace, and beside it one name
/// per table and namespace (`/run/knockd/control.edge.net4026532281`), so that daemons in two
/// namespaces (or with two tables) never claim the same socket. `knockd status` in the same
/// namespace, with the same config, finds the same name.
pub fn default_socket(table: &str) -> std::path::PathBuf {
    let table = if table == crate::config::DEFAULT_TABLE { String::new() } else { format!(".{table}") };
    format!("{DEFAULT_SOCKET}{table}{}", crate::daemon::namespace::suffix()).into()
}
