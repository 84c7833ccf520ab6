//! The example drop-in for commands that need more than the unit's sandbox allows
//! (`packaging/knockd.service.d/commands.conf`): systemd reads it without a complaint, and with
//! it the unit's commands may gain privileges and write the whole file system.

mod util;

use std::process::Command;

use util::{TempDir, repo};

/// A copy of the unit (its ExecStart pointed at the binary under test, which systemd-analyze
/// checks exists) in a directory of its own, with `dropin` as its only drop-in, if any.
fn unit_with(tag: &str, dropin: Option<&str>) -> TempDir {
    let dir = TempDir::new(&format!("systemd-{tag}"));
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
    dir.write("knockd.service", unit);
    if let Some(text) = dropin {
        dir.write("knockd.service.d/commands.conf", text);
    }
    dir
}

fn analyze(args: &[&str], dir: &TempDir) -> (bool, String, String) {
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
}
