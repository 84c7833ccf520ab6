//! The one place the wall clock is read (by the daemon loop and the client); everything else is
//! given the time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
