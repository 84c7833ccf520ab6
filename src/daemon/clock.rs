//! The one place the wall clock is read (by the daemon loop and the client); everything else is
//! given the time, as a [`Clock`] read once per call.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::doors::Clock;

/// Time since the Unix epoch; zero if the clock is set before 1970.
pub fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// When this host booted, as time since the Unix epoch (the wall clock less the time since
/// boot, suspended time included); zero if it cannot be told.
pub fn boot_time() -> Duration {
    let since_boot = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map_or(Duration::MAX, Duration::from);
    unix_now().saturating_sub(since_boot)
}

/// The clock of one call into the engine: `mono` (the loop's own monotonic time), the time of
/// day, and when this host booted.
pub fn now(mono: Duration) -> Clock {
    Clock { mono, unix: unix_now(), boot: boot_time() }
}
