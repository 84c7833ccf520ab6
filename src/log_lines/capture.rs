//! Lines about what knockd listens on: interfaces, the capture filter, this host's addresses.

use std::fmt::Display;

/// A named interface is not there: knocks on it count once it appears.
pub fn interface_missing(name: &str) -> String {
    format!("interface {name} does not exist (yet): knocks on it will be heard once it appears")
}

/// Every named interface is there again.
pub const INTERFACES_BACK: &str = "interfaces changed: listening on all of them again";

/// Some named interfaces went away; the others are still heard.
pub fn interfaces_missing(missing: &[String]) -> String {
    format!("interfaces changed: {} missing now; listening on the others", missing.join(", "))
}

/// The interfaces could not be followed (netlink failed).
pub fn cannot_follow_interfaces(why: &dyn Display) -> String {
    format!("cannot follow the interfaces: {why}")
}

/// The doors' ports changed but the kernel filter could not be updated.
pub fn cannot_update_filter(why: &dyn Display) -> String {
    format!("cannot update the capture filter: {why}")
}

/// A reload whose new ports could not reach the kernel filter: the doors changed, the filter not.
pub fn reloaded_filter_unchanged(reloaded: &str, why: &dyn Display) -> String {
    format!("{reloaded}, but the capture filter still listens as before: {why}")
}

/// This host's addresses could not be read again: packets are judged by the old list.
pub fn cannot_read_addresses(why: &dyn Display) -> String {
    format!("cannot read this host's addresses: {why}")
}
