//! The example drop-in for commands that need more than the unit's sandbox allows
//! (`packaging/knockd.service.d/commands.conf`): systemd reads it without a complaint, and with
//! it the unit's commands may gain privileges and write the whole file system.

use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A copy of the unit (its ExecStart pointed at the binary under test, which systemd-analyze
/// checks exists) in a directory of its own, with `dropin` as its only drop-in, if any.
fn unit_with(tag: &str, dropin: Option<&str>) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("knockd-systemd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("knockd.service.d")).unwrap();
    let unit = std::fs::read_to_string(repo("packaging/knockd.service")).unwrap();
    let unit: String = unit
        .lines()
        .map(|l| match l.strip_prefix("ExecStart=") {
            Some(rest) => {
                let args = rest.split_once(' ').map_or("", |(_, args)| args);
                format!("ExecStart={} {args}\n", env!("CARGO_BIN_EXE_knockd"))
            }
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(dir.join("knockd.service"), unit).unwrap();
    if let Some(text) = dropin {
        std::fs::write(dir.join("knockd.service.d/commands.conf"), text).unwrap();
    }
    dir
}

fn analyze(args: &[&str], dir: &Path) -> (bool, String, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(dir.join("knockd.service"))
        .output()
        .expect("systemd-analyze (scripts/install-deps installs systemd)");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_commands_drop_in_verifies_and_relaxes_the_sandbox() {
    let dropin = std::fs::read_to_string(repo("packaging/knockd.service.d/commands.conf")).unwrap();
    let with = unit_with("with", Some(&dropin));
    let (ok, _, stderr) = analyze(&["verify", "--man=no"], &with);
    assert!(ok && stderr.is_empty(), "{stderr}");
    // The drop-in is read: a key systemd does not know in it is reported.
    let typo = unit_with("typo", Some(&format!("{dropin}NoNewPrivilege=no\n")));
    let (_, _, stderr) = analyze(&["verify", "--man=no"], &typo);
    assert!(stderr.contains("commands.conf") && stderr.contains("Unknown key"), "{stderr}");

    // What it changes, as systemd sees the unit with and without it.
    let without = unit_with("without", None);
    let (_, plain, _) = analyze(&["security", "--offline=yes"], &without);
    let (_, relaxed, _) = analyze(&["security", "--offline=yes"], &with);
    let says =
        |report: &str, setting: &str, what: &str| report.lines().any(|l| l.contains(setting) && l.contains(what));
    assert!(says(&plain, "NoNewPrivileges=", "cannot acquire new privileges"), "{plain}");
    assert!(says(&relaxed, "NoNewPrivileges=", "may acquire new privileges"), "{relaxed}");
    assert!(says(&plain, "ProtectSystem=", "strict read-only access"), "{plain}");
    assert!(says(&relaxed, "ProtectSystem=", "full access to the OS file hierarchy"), "{relaxed}");
    assert!(says(&relaxed, "CapabilityBoundingSet=~CAP_SYS_ADMIN", "has administrator privileges"), "{relaxed}");
    for dir in [with, typo, without] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
