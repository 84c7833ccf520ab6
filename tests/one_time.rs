//! One-time sequence files: first unused line, marking used lines, exhaustion.

mod util;

use std::path::PathBuf;

use knockd::config::PortProto;
use knockd::doors::sequence::one_time;
use knockd::store::FileStore;
use util::{TempDir, mode, set_mode};

/// A directory with the one-time file `seqs` holding `text`.
fn seqs(tag: &str, text: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(&format!("onetime-{tag}"));
    let path = dir.write("seqs", text);
    (dir, path)
}

#[test]
fn sequences_are_used_in_order_until_none_are_left() {
    let (_dir, path) = seqs("order", "# my sequences\n\n1000,2000:udp,3000\nnot a sequence\n 4000,5000 \n");
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
    let (dir, path) = seqs("perms", "1,2\n3,4\n");
    set_mode(&path, 0o600);
    one_time::mark_used(&mut FileStore::default(), &path, &[PortProto::tcp(1), PortProto::tcp(2)]).unwrap();
    assert_eq!(mode(&path), 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["seqs"]);
}

#[test]
fn a_sequence_no_longer_in_the_file_marks_nothing() {
    let (_dir, path) = seqs("gone", "1,2\n");
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
    let (dir, path) = seqs("symlink", "1,2\n3,4\n");
    let victim = dir.write("victim", "precious\n");
    std::os::unix::fs::symlink(&victim, dir.join(format!(".seqs.knockd-{}", std::process::id()))).unwrap();
    assert!(one_time::mark_used(&mut FileStore::default(), &path, &[PortProto::tcp(1), PortProto::tcp(2)]).unwrap());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n", "the link's target was overwritten");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "#1,2\n3,4\n");
}

#[test]
fn the_rewritten_file_never_gets_more_than_the_old_mode() {
    let (_dir, path) = seqs("mode", "1,2\n3,4\n");
    for old in [0o600, 0o640, 0o400] {
        set_mode(&path, old);
        assert!(
            one_time::mark_used(
                &mut FileStore::default(),
                &path,
                &one_time::current(&mut FileStore::default(), &path).unwrap().unwrap()
            )
            .unwrap()
        );
        assert_eq!(mode(&path), old, "mode {old:o}");
        std::fs::write(&path, "1,2\n3,4\n").unwrap();
    }
}
