//! The control socket: how `knockd status`, `revoke`, `grant` and `reload` talk to the running
//! daemon. A Unix stream socket only root can use (mode 0600, and the peer's uid is checked),
//! one JSON request and one JSON answer per connection ([`protocol`]); no network listener.

pub mod prometheus;
pub mod protocol;
pub mod socket;

pub use protocol::{DoorStatus, GrantStatus, Request, Response, SCHEMA, Status};
pub use socket::{ControlError, Listener, ask};

/// Where the daemon listens unless told otherwise (`--control`, `control_socket:`): in the
/// RuntimeDirectory the unit creates.
pub const DEFAULT_SOCKET: &str = "/run/knockd/control";
