//! Door names: what an admin calls a door (any section name the classic knockd took, such as
//! `[Open rtorrent]`), and the nftables name derived from it for the door's sets.
//!
//! The name an admin wrote is the one logs, `knockd status` and `--door` use. nftables names
//! must be identifiers, so a name that is not one gets a derived name: its letters, digits, `_`
//! and `-` (others become `_`), and 8 hex digits of a SHA-256 of the whole name. It depends on
//! the name alone, so it is the same on every start and reload (the sets, and the grants in
//! them, are found again), and two names that clean up to the same letters still differ.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::model::{Door, check_identifier};

/// Longest door name: the classic knockd kept 127 characters of a section name.
pub const MAX_DOOR_NAME: usize = 127;

/// Longest door name used in nftables names as it is (longer ones are derived).
const MAX_NFT_DOOR: usize = 32;

/// Letters kept from a name that is not an identifier, before the hash.
const KEPT: usize = 20;

/// Checks a door's name: 1-127 characters, no control characters, nothing blank around it.
pub fn check_door_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("a door needs a name".into());
    }
    if name.chars().count() > MAX_DOOR_NAME {
        return Err(format!("`{name}` is longer than {MAX_DOOR_NAME} characters: shorten it"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{name:?} holds a control character: use printable characters only"));
    }
    if name.trim() != name {
        return Err(format!("`{name}` starts or ends with a blank: remove it"));
    }
    Ok(())
}

/// The name a door's nftables sets are named after (`<it>_v4`, `<it>_v6`): the door's own name
/// when it is an identifier of up to 32 characters (every name knockd.yaml took before classic
/// names were allowed, so their sets keep their names), else a derived one.
pub fn nft_name(door: &str) -> Cow<'_, str> {
    if check_identifier(door, MAX_NFT_DOOR).is_ok() {
        return Cow::Borrowed(door);
    }
    let mut kept: String =
        door.chars().take(KEPT).map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    if !kept.starts_with(|c: char| c.is_ascii_alphabetic()) {
        kept.insert_str(0, "d_");
    }
    let hash = Sha256::digest(door.as_bytes());
    Cow::Owned(format!("{kept}_{}", hex::encode(&hash[..4])))
}

/// Two doors whose nftables names are equal, if there are any: one would take the other's
/// grants. Only a name made on purpose to look like a derived one can do it.
pub fn clashing_nft_names(doors: &[Door]) -> Option<(&str, &str)> {
    let names: Vec<Cow<'_, str>> = doors.iter().map(|d| nft_name(&d.name)).collect();
    for (i, a) in names.iter().enumerate() {
        if let Some(j) = names[i + 1..].iter().position(|b| b == a) {
            return Some((doors[i].name.as_str(), doors[i + 1 + j].name.as_str()));
        }
    }
    None
}

/// What a door whose clients send its name (SPA packets, rotating sequences) must be called:
/// something every client accepts and the packet can carry.
pub fn check_sent_name(name: &str) -> Result<(), String> {
    check_identifier(name, MAX_NFT_DOOR)
        .map_err(|e| format!("{e}: clients send the name of a door with `spa` or `rotating`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_stay_others_are_derived() {
        assert_eq!(nft_name("ssh"), "ssh");
        assert_eq!(nft_name("web-2_x"), "web-2_x");
        let spaced = nft_name("Open rtorrent");
        assert!(spaced.starts_with("Open_rtorrent_") && spaced.len() == "Open_rtorrent_".len() + 8, "{spaced}");
        assert!(nft_name("2ssh").starts_with("d_2ssh_"));
        let long = "a".repeat(40);
        assert!(nft_name(&long).len() <= 32, "{}", nft_name(&long));
        assert_eq!(nft_name("Open rtorrent"), spaced, "stable");
        assert_ne!(nft_name("Open.rtorrent"), spaced, "same letters, other name");
        for name in ["Open rtorrent", "2ssh", &long, "ünïcode door", "[x]"] {
            assert!(check_identifier(&nft_name(name), 40).is_ok(), "{name}: {}", nft_name(name));
        }
    }

    #[test]
    fn names() {
        assert!(check_door_name("Open rtorrent").is_ok());
        assert!(check_door_name(&"a".repeat(127)).is_ok());
        assert!(check_door_name(&"a".repeat(128)).is_err());
        assert!(check_door_name("").is_err());
        assert!(check_door_name(" ssh").is_err());
        assert!(check_door_name("a\tb").is_err());
    }
}
