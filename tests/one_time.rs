//! One-time sequence files: first unused line, marking used lines, exhaustion.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use knockd::config::PortProto;
use knockd::doors::sequence::one_time;
use knockd::store::FileStore;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("knockd-onetime-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn file(&self, text: &str) -> PathBuf {
        let path = self.0.join("seqs");
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sequences_are_used_in_order_until_none_are_left() {
    let dir = Dir::new("order");
    let path = dir.file("# my sequences\n\n1000,2000:udp,3000\nnot a sequence\n 4000,5000 \n");
    let first = one_time::current(&mut FileStore::default(), &path).unwrap().unwrap();
    assert_eq!(first, [PortProto::tcp(1000), PortProto::udp(2000), PortProto::tcp(3000)]);
    assert!(one_time::mark_used(&mut FileStore::default(), &path, &first).unwrap());
    let second = one_time::current(&mut FileStore::default(), &path).unwrap().unwrap();
    assert_eq!(second, [PortProto::tcp(4000), PortProto::tcp(5000)]);
    assert!(one_time::mark_used(&mut FileStore::default(), &path, &second).unwrap());
    assert_eq!(one_time::current(&mut FileStore::default(), &path).unwrap(), None);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# my sequences\n\n#1000,2000:udp,3000\nnot a sequence\n# 4000,5000 \n",
        "used lines are commented out in place; everything else is kept"
    );
}

#[test]
fn marking_keeps_permissions_and_leaves_no_temporary_file() {
    let dir = Dir::new("perms");
    let path = dir.file("1,2\n3,4\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    one_time::mark_used(&mut FileStore::default(), &path, &[PortProto::tcp(1), PortProto::tcp(2)]).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["seqs"]);
}

#[test]
fn a_sequence_no_longer_in_the_file_marks_nothing() {
    let dir = Dir::new("gone");
    let path = dir.file("1,2\n");
    assert!(!one_time::mark_used(&mut FileStore::default(), &path, &[PortProto::tcp(9)]).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "1,2\n");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let e = one_time::current(&mut FileStore::default(), std::path::Path::new("/nonexistent/seqs"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/seqs"), "{e}");
}

#[test]
fn a_symlink_planted_where_the_old_temporary_file_went_is_not_followed() {
    // The rewrite used to write `.seqs.knockd-<pid>` with File::create: a symlink there made it
    // overwrite the link's target. Plant one at that name (and make it the only way in).
    let dir = Dir::new("symlink");
    let path = dir.file("1,2\n3,4\n");
    let victim = dir.0.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.0.join(format!(".seqs.knockd-{}", std::process::id()))).unwrap();
    assert!(one_time::mark_used(&mut FileStore::default(), &path, &[PortProto::tcp(1), PortProto::tcp(2)]).unwrap());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n", "the link's target was overwritten");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "#1,2\n3,4\n");
}

#[test]
fn the_rewritten_file_never_gets_more_than_the_old_mode() {
    let dir = Dir::new("mode");
    let path = dir.file("1,2\n3,4\n");
    for mode in [0o600, 0o640, 0o400] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        assert!(
            one_time::mark_used(
                &mut FileStore::default(),
                &path,
                &one_time::current(&mut FileStore::default(), &path).unwrap().unwrap()
            )
            .unwrap()
        );
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, mode, "mode {mode:o}");
        std::fs::write(&path, "1,2\n3,4\n").unwrap();
    }
}
