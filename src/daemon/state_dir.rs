//! The state directory (the replay caches): made at start, given to whoever the daemon runs as
//! after start, and checked that it can write there. A replay cache that cannot be written
//! would let a replayed packet in after a restart, so a directory the daemon could not write
//! fails the start, with the command that fixes it, rather than failing packets later.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use log::info;
use nix::unistd::{Gid, Uid, User};

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("state directory {}: {message}", dir.display())]
pub struct StateDirError {
    /// The directory.
    pub dir: PathBuf,
    /// What is wrong, and how to fix it.
    pub message: String,
}

/// Who the daemon is after start, as far as files go.
#[derive(Debug, Clone)]
pub enum Owner {
    /// `user:`, with CAP_NET_ADMIN and CAP_NET_RAW only.
    User(User),
    /// Root with CAP_NET_ADMIN and CAP_NET_RAW only: no CAP_DAC_OVERRIDE, so it may write only
    /// where root's own bits allow it.
    Root,
    /// Root with every capability (`--keep-capabilities`).
    RootWithEverything,
}

impl Owner {
    fn ids(&self) -> (Uid, Gid, String) {
        match self {
            Owner::User(u) => (u.uid, u.gid, u.name.clone()),
            Owner::Root | Owner::RootWithEverything => (Uid::from_raw(0), Gid::from_raw(0), "root".into()),
        }
    }
}

/// Makes `dir` if it is missing (mode 0700), refuses it if others may write in it, gives it to
/// `owner` (an earlier run as another user may have left it that user's), and checks that
/// `owner` may write in it after start.
pub fn prepare(dir: &Path, owner: &Owner) -> Result<(), StateDirError> {
    let error = |message: String| StateDirError { dir: dir.to_owned(), message };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| error(format!("cannot create it: {e} (set `state_dir:`)")))?;
    // The directory itself, never a link in its place: the checks and the chown are made on it.
    let handle = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
        .map_err(|e| error(format!("cannot open it: {e}")))?;
    let meta = handle.metadata().map_err(|e| error(e.to_string()))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(error(format!("others may write in it (mode {mode:o}): run `chmod go-w {}`", dir.display())));
    }
    let (uid, gid, name) = owner.ids();
    if meta.uid() != uid.as_raw() {
        match nix::unistd::fchown(&handle, Some(uid), Some(gid)) {
            Ok(()) => info!("{}", crate::log_lines::state_dir_given(dir, &name, meta.uid())),
            // Checked below: the start fails only if the daemon could not write there.
            Err(e) => info!("{}", crate::log_lines::state_dir_not_given(dir, &name, &e)),
        }
    }
    let meta = handle.metadata().map_err(|e| error(e.to_string()))?;
    if !matches!(owner, Owner::RootWithEverything) && !may_write(&meta, uid, gid) {
        return Err(error(format!(
            "{name} could not write in it after start (owner uid {}, group {}, mode {:o}; the daemon keeps no \
             CAP_DAC_OVERRIDE), so the replay caches could not be kept and a replayed packet could get in after a \
             restart: run `chown {name}: {}` (or `chmod u+rwx`)",
            meta.uid(),
            meta.gid(),
            meta.mode() & 0o7777,
            dir.display()
        )));
    }
    Ok(())
}

/// Whether `uid`/`gid`, without CAP_DAC_OVERRIDE, may create and rename files in a directory.
fn may_write(meta: &std::fs::Metadata, uid: Uid, gid: Gid) -> bool {
    let bits = if meta.uid() == uid.as_raw() {
        meta.mode() >> 6
    } else if meta.gid() == gid.as_raw() {
        meta.mode() >> 3
    } else {
        meta.mode()
    };
    bits & 0o3 == 0o3
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use crate::test_dir::TestDir;

    #[test]
    fn a_missing_directory_is_made_private() {
        let d = TestDir::new("state-made");
        let me = User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
        prepare(&d.join("state"), &Owner::User(me)).unwrap();
        let mode = std::fs::metadata(d.join("state")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_directory_others_may_write_in_is_refused() {
        let d = TestDir::new("state-open");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let me = User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
        let err = prepare(&d, &Owner::User(me)).unwrap_err().to_string();
        assert!(err.contains("others may write in it (mode 777)") && err.contains("chmod go-w"), "{err}");
    }

    #[test]
    fn a_directory_the_owner_cannot_write_fails_the_start_and_says_how_to_fix_it() {
        let d = TestDir::new("state-readonly");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o500)).unwrap();
        let me = User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
        let name = me.name.clone();
        let err = prepare(&d, &Owner::User(me)).unwrap_err().to_string();
        assert!(err.contains(&format!("{name} could not write in it after start")), "{err}");
        assert!(err.contains("replayed packet could get in after a restart") && err.contains("chown"), "{err}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn a_link_in_place_of_the_directory_is_refused() {
        let d = TestDir::new("state-link");
        std::fs::create_dir_all(d.join("real")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("state")).unwrap();
        let me = User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
        assert!(prepare(&d.join("state"), &Owner::User(me)).is_err());
    }
}
