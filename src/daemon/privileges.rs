//! After start-up the daemon keeps only the capabilities its work needs.
//!
//! CAP_NET_ADMIN (netlink: grants, restoring the table) and CAP_NET_RAW (the capture socket).
//! The bounding set is reduced too, so commands of classic doors, which inherit from the
//! daemon, can never regain more. Capabilities are per thread: this must run before any other
//! thread exists (the command and lookup threads start on first use, after it).

use caps::{CapSet, Capability, CapsHashSet};

/// What the daemon keeps.
pub const KEEP: [Capability; 2] = [Capability::CAP_NET_ADMIN, Capability::CAP_NET_RAW];

/// Why capabilities could not be dropped.
#[derive(Debug, thiserror::Error)]
#[error("cannot drop capabilities: {0}")]
pub struct PrivilegeError(#[from] caps::errors::CapsError);

/// Drops every capability but [`KEEP`] from the bounding, inheritable, permitted and effective
/// sets of the calling thread.
pub fn drop_capabilities() -> Result<(), PrivilegeError> {
    let keep: CapsHashSet = KEEP.into_iter().collect();
    // Shrinking the bounding set needs CAP_SETPCAP, so it goes first.
    for cap in caps::read(None, CapSet::Bounding)? {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)?;
        }
    }
    caps::clear(None, CapSet::Inheritable)?;
    let kept: CapsHashSet = caps::read(None, CapSet::Permitted)?.intersection(&keep).copied().collect();
    caps::set(None, CapSet::Effective, &kept)?;
    caps::set(None, CapSet::Permitted, &kept)?;
    Ok(())
}
