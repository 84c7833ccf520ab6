//! After start-up the daemon keeps only what its work needs.
//!
//! Capabilities: CAP_NET_ADMIN (netlink: grants, repairing the table) and CAP_NET_RAW (the
//! capture sockets). The bounding set is reduced too, so commands of classic doors, which
//! inherit from the daemon, can never regain more.
//!
//! With `commands: {privileges: full}` the bounding set is kept whole: the daemon still keeps
//! only its two capabilities, but a command, run as root, gets every capability root has, as
//! under the classic knockd.
//!
//! User: when no door runs commands or rewrites a one-time file (both need root), the daemon
//! also leaves uid 0 for an unprivileged user (`user:`, default `knockd`, a user of its own),
//! so that even with both capabilities it cannot write a file root owns. It stays root, and
//! says why, when that user could not read the config or a key file again on SIGHUP: a reload
//! that fails later is worse than a reason given now. The state directory is made the run
//! user's at start, and the start fails when that user could not write it. Capabilities and
//! ids are per thread in the kernel: this must run before any other thread exists (the
//! command and lookup threads start on first use, after it).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid, User, setgroups, setresgid, setresuid};

use super::state_dir::Owner;
use crate::config::{CommandPrivileges, DEFAULT_USER, Trust};

/// What the daemon keeps.
pub const KEEP: [Capability; 2] = [Capability::CAP_NET_ADMIN, Capability::CAP_NET_RAW];

/// The user the daemon runs as after start, once it has switched.
static RUN_AS: OnceLock<u32> = OnceLock::new();

/// The uid the daemon switched to, if it did.
pub fn run_as_uid() -> Option<u32> {
    RUN_AS.get().copied()
}

/// Whose files the daemon trusts like root's under `config`: the user it will run as after
/// start, if it leaves root, and its own user (`knockd`), whose files (the replay caches) a
/// later start, perhaps as root or as another user, must be able to read. A user that does not
/// exist is left to the switch to report. `nobody` never is: any service running as `nobody`
/// could have written them. Every reader of a private file is given this ([`Trust`]).
pub fn trust(config: &crate::config::Config) -> Trust {
    let uid = |name: &str| User::from_name(name).ok().flatten().map(|u| u.uid.as_raw());
    let run_user = (config.user != "root" && config.needs_root().is_none()).then(|| uid(&config.user)).flatten();
    let nobody = uid("nobody");
    let trusted = [run_user, uid(DEFAULT_USER)].into_iter().flatten().filter(|u| Some(*u) != nobody && *u != 0);
    Trust::users(trusted)
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

/// Drops every capability but [`KEEP`] from the inheritable, permitted and effective sets of
/// the calling thread, and from its bounding set unless `commands` may have every privilege
/// (the bounding set is what an exec gives back to root: to commands).
pub fn drop_capabilities(commands: CommandPrivileges) -> Result<(), PrivilegeError> {
    let keep: CapsHashSet = KEEP.into_iter().collect();
    // Shrinking the bounding set needs CAP_SETPCAP, so it goes first.
    for cap in caps::read(None, CapSet::Bounding)? {
        if !keep.contains(&cap) && commands == CommandPrivileges::Network {
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
/// `user: root`, and when a door needs root (the caller says why). The default user missing
/// (a source install without the package's `knockd` user) keeps root, with a warning; a user
/// the config names missing is an error.
pub fn run_user(config: &crate::config::Config) -> Result<Option<User>, PrivilegeError> {
    if config.user == "root" || config.needs_root().is_some() {
        return Ok(None);
    }
    let error = |message: String| PrivilegeError::User { user: config.user.clone(), message };
    match User::from_name(&config.user).map_err(|e| error(e.to_string()))? {
        Some(user) => Ok((!user.uid.is_root()).then_some(user)),
        None if config.user == DEFAULT_USER => {
            log::warn!("{}", crate::log_lines::no_default_user(DEFAULT_USER));
            Ok(None)
        }
        None => {
            Err(error("no such user: create it, or set `user:` to an existing one (`user: root` keeps root)".into()))
        }
    }
}

/// Who the daemon will be after start: `user:` when nothing needs root, else root with two
/// capabilities (saying why). `files` are what SIGHUP reads again; `access_conf`: the config is
/// fwknopd's access.conf, which cannot say `user:`.
pub fn owner_after_start(
    config: &crate::config::Config,
    files: &[&Path],
    access_conf: bool,
) -> Result<Owner, PrivilegeError> {
    let user = run_user(config)?;
    let why_root = user.as_ref().and_then(|u| root_needed_for(u, config, files, access_conf));
    match user {
        Some(user) if why_root.is_none() => Ok(Owner::User(user)),
        _ => {
            for why in why_root.into_iter().chain(config.needs_root()) {
                log::info!("{}", crate::log_lines::staying_root(&why));
            }
            Ok(Owner::Root)
        }
    }
}

/// Why the daemon must keep root to do its work as `user` later: a file SIGHUP reads again, or
/// the directory the metrics textfile is written in.
fn root_needed_for(user: &User, config: &crate::config::Config, files: &[&Path], access_conf: bool) -> Option<String> {
    if let Some(file) = unreadable_for(user, files) {
        if access_conf {
            // access.conf holds the keys and has no `user:`: staying root is the only way.
            return Some(format!(
                "{} is fwknopd's access.conf (or one of its files), whose keys only root may read, and a reload \
                 reads it again; knockd keeps CAP_NET_ADMIN and CAP_NET_RAW only",
                file.display()
            ));
        }
        return Some(format!(
            "user {} could not read {} again on SIGHUP (make it readable to that user, e.g. with its group and \
             mode 640, or set `user: root` to say so)",
            user.name,
            file.display()
        ));
    }
    let dir = config.metrics_textfile.as_ref().and_then(|f| f.parent()).filter(|d| !d.as_os_str().is_empty());
    match dir {
        Some(dir) if !can_write_in(user, dir) => Some(format!(
            "user {} could not write the metrics textfile in {} (give that user the directory, or set `user: \
             root` to say so)",
            user.name,
            dir.display()
        )),
        _ => None,
    }
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
