//! After start-up the daemon keeps only what its work needs.
//!
//! Capabilities: CAP_NET_ADMIN (netlink: grants, repairing the table) and CAP_NET_RAW (the
//! capture sockets). The bounding set is reduced too, so commands of classic doors, which
//! inherit from the daemon, can never regain more.
//!
//! User: when no door runs commands or rewrites a one-time file (both need root), the daemon
//! also leaves uid 0 for an unprivileged user (`user:`, default `nobody`), so that even with
//! both capabilities it cannot write a file root owns. It stays root, and says why, when that
//! user could not read the config or a key file again on SIGHUP: a reload that fails later
//! is worse than a reason given now. The state directory is made the user's
//! first. Capabilities and ids are per thread in the kernel: this must run before any other
//! thread exists (the command and lookup threads start on first use, after it).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid, User, setgroups, setresgid, setresuid};

/// What the daemon keeps.
pub const KEEP: [Capability; 2] = [Capability::CAP_NET_ADMIN, Capability::CAP_NET_RAW];

/// The user the daemon runs as after start, once it has switched.
static RUN_AS: OnceLock<u32> = OnceLock::new();
/// The user whose files the daemon trusts like root's: the one it runs as after start, whose
/// files (the replay caches) a later start, still root, must be able to read.
static TRUSTED: OnceLock<u32> = OnceLock::new();

/// The uid the daemon switched to, if it did.
pub fn run_as_uid() -> Option<u32> {
    RUN_AS.get().copied()
}

/// The uid whose files are trusted like root's, if any.
pub fn trusted_uid() -> Option<u32> {
    TRUSTED.get().copied()
}

/// The user the daemon will run as after start under `config`, if it leaves root: its files
/// are trusted from now on. A user that does not exist is left to the switch to report.
pub fn trust_run_user(config: &crate::config::Config) {
    if config.user == "root" || config.needs_root().is_some() {
        return;
    }
    if let Ok(Some(user)) = User::from_name(&config.user) {
        let _ = TRUSTED.set(user.uid.as_raw());
    }
}

/// Why privileges could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// A capability call failed.
    #[error("cannot drop capabilities: {0}")]
    Caps(#[from] caps::errors::CapsError),
    /// The user does not exist, or the switch failed.
    #[error("cannot run as user {user}: {message}")]
    User {
        /// The user asked for.
        user: String,
        /// What went wrong.
        message: String,
    },
}

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

/// The user to run as after start under `config`, if the daemon leaves root: `None` for
/// `user: root`, and when a door needs root (the caller says why).
pub fn run_user(config: &crate::config::Config) -> Result<Option<User>, PrivilegeError> {
    if config.user == "root" || config.needs_root().is_some() {
        return Ok(None);
    }
    let error = |message: String| PrivilegeError::User { user: config.user.clone(), message };
    let user = User::from_name(&config.user).map_err(|e| error(e.to_string()))?.ok_or_else(|| {
        error("no such user: create it, or set `user:` to an existing one (`user: root` keeps root)".into())
    })?;
    Ok((!user.uid.is_root()).then_some(user))
}

/// The first of `paths` that `user` (with only its primary group, as [`become_user`] leaves
/// it) could not read, or could not reach through a directory: SIGHUP reads them again.
pub fn unreadable_for(user: &User, paths: &[&Path]) -> Option<PathBuf> {
    paths.iter().find_map(|path| {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let file_ok = std::fs::metadata(&path).is_ok_and(|m| allows(user, &m, 0o4));
        (!reachable(user, &path) || !file_ok).then_some(path)
    })
}

/// Whether `user` could create files in `dir` (the metrics textfile's directory).
pub fn can_write_in(user: &User, dir: &Path) -> bool {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    reachable(user, &dir) && std::fs::metadata(&dir).is_ok_and(|m| allows(user, &m, 0o3))
}

/// Whether every directory above `path` lets `user` through.
fn reachable(user: &User, path: &Path) -> bool {
    path.ancestors().skip(1).all(|dir| std::fs::metadata(dir).is_ok_and(|m| allows(user, &m, 0o1)))
}

/// The owner's, group's or others' bits of `mask` (read 4, write 2, search 1), whichever apply
/// to `user`, are all set.
fn allows(user: &User, meta: &std::fs::Metadata, mask: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode();
    let bits = if meta.uid() == user.uid.as_raw() {
        mode >> 6
    } else if meta.gid() == user.gid.as_raw() {
        mode >> 3
    } else {
        mode
    };
    bits & mask == mask
}

/// Gives `dir` (the state directory) to `user`, while the daemon still may.
pub fn give(dir: &Path, user: &User) -> Result<(), PrivilegeError> {
    if !dir.exists() {
        return Ok(());
    }
    nix::unistd::chown(dir, Some(user.uid), Some(user.gid))
        .map_err(|e| PrivilegeError::User { user: user.name.clone(), message: format!("{}: {e}", dir.display()) })
}

/// Switches to `user` (its uid, its primary group, no other group), keeping the capabilities
/// it had: call [`drop_capabilities`] right after.
pub fn become_user(user: &User) -> Result<(), PrivilegeError> {
    let error = |message: String| PrivilegeError::User { user: user.name.clone(), message };
    // Keep the permitted capabilities across the change of uid; the kernel clears the effective
    // set, which is raised again below, for `drop_capabilities` to trim.
    nix::sys::prctl::set_keepcaps(true).map_err(|e| error(e.to_string()))?;
    setgroups(&[user.gid]).map_err(|e| error(format!("setgroups: {e}")))?;
    setresgid(user.gid, user.gid, user.gid).map_err(|e| error(format!("setresgid: {e}")))?;
    setresuid(user.uid, user.uid, user.uid).map_err(|e| error(format!("setresuid: {e}")))?;
    nix::sys::prctl::set_keepcaps(false).map_err(|e| error(e.to_string()))?;
    caps::set(None, CapSet::Effective, &caps::read(None, CapSet::Permitted)?)?;
    if Uid::effective() != user.uid || Gid::effective() != user.gid {
        return Err(error("the switch did not take".into()));
    }
    let _ = RUN_AS.set(user.uid.as_raw());
    Ok(())
}
