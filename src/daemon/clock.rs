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

/// A calendar time in the host's time zone, as log lines show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Four digits, as written.
    pub year: i32,
    /// 1 to 12.
    pub month: u8,
    /// Day of the month, 1 to 31.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
    /// 0 to 60 (a leap second).
    pub second: u8,
}

/// The local (TZ) calendar time of a moment, for the log lines that carry one; `None` if the C
/// library cannot tell. Unsafe only for the C call: Rust's standard library has no time zones.
#[allow(unsafe_code)]
pub fn local(unix_seconds: i64) -> Option<LocalTime> {
    let time: libc::time_t = unix_seconds;
    // SAFETY: an all-zero `tm` is a valid value of the plain C struct, which localtime_r fills.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live values of the right types for the call; localtime_r is
    // the reentrant form, and knockd never changes its environment (TZ) while running.
    if unsafe { libc::localtime_r(&time, &mut tm) }.is_null() {
        return None;
    }
    let small = |v: libc::c_int| u8::try_from(v).ok();
    Some(LocalTime {
        year: tm.tm_year.checked_add(1900)?,
        month: small(tm.tm_mon.checked_add(1)?)?,
        day: small(tm.tm_mday)?,
        hour: small(tm.tm_hour)?,
        minute: small(tm.tm_min)?,
        second: small(tm.tm_sec)?,
    })
}

/// The clock of one call into the engine: `mono` (the loop's own monotonic time), the time of
/// day, and when this host booted.
pub fn now(mono: Duration) -> Clock {
    Clock { mono, unix: unix_now(), boot: boot_time() }
}
