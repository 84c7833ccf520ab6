//! `scripts/install`: a source install whose daemon, unit, man pages and completions agree.
//! It installs the binaries under test into temporary roots; nothing here needs root.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::{KNOCKD, TempDir, repo};

/// `scripts/install ARGS --binaries <the binaries under test>`.
fn install(args: &[&str]) {
    let binaries = Path::new(KNOCKD).parent().unwrap();
    let out = Command::new(repo("scripts/install")).args(args).arg("--binaries").arg(binaries).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn exec_start(unit: &Path) -> String {
    let text = std::fs::read_to_string(unit).unwrap_or_else(|e| panic!("{}: {e}", unit.display()));
    text.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart line").to_owned()
}

/// Installed into a temporary root as the prefix: the unit runs the daemon installed beside
/// it, `systemd-analyze verify` accepts it (it checks that ExecStart's program exists), and
/// the man pages, completions and docs are where a source install puts them.
#[test]
fn the_installed_unit_runs_the_installed_daemon() {
    let root = TempDir::new("install-prefix");
    let prefix = root.join("usr/local");
    install(&["--prefix", prefix.to_str().unwrap()]);
    let unit = prefix.join("lib/systemd/system/knockd.service");
    let start = exec_start(&unit);
    let daemon = prefix.join("sbin/knockd");
    assert_eq!(start, format!("{} $KNOCKD_OPTS", daemon.display()));
    let version = Command::new(&daemon).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("knockd "), "{version:?}");
    let verify = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&unit).output().unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.lines().any(|l| l == "EnvironmentFile=-/etc/default/knockd"), "{text}");
    assert!(text.contains(&format!("{}/share/doc/knockd/examples", prefix.display())), "the unit names the docs");
    for (installed, source) in [
        ("bin/knock", None),
        ("share/man/man8/knockd.8", Some("doc/man/knockd.8")),
        ("share/man/man1/knock.1", Some("doc/man/knock.1")),
        ("share/man/man5/knockd.yaml.5", Some("doc/man/knockd.yaml.5")),
        ("share/bash-completion/completions/knockd", Some("doc/completions/bash/knockd")),
        ("share/zsh/site-functions/_knockd", Some("doc/completions/zsh/_knockd")),
        ("share/fish/vendor_completions.d/knock.fish", Some("doc/completions/fish/knock.fish")),
        ("share/doc/knockd/spa.md", Some("doc/spa.md")),
        ("share/doc/knockd/rotating.md", Some("doc/rotating.md")),
        ("share/doc/knockd/fwknop.md", Some("doc/fwknop.md")),
        ("share/doc/knockd/status.md", Some("doc/status.md")),
        ("share/doc/knockd/examples/knockd.yaml", Some("knockd.yaml")),
        ("share/knockd/nft-templates/attach.nft", Some("nft-templates/attach.nft")),
    ] {
        let path = prefix.join(installed);
        assert!(path.is_file(), "{installed} is not installed");
        if let Some(source) = source {
            assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(repo(source)).unwrap(), "{installed}");
        }
    }
    // The classic package's page is knockd(1), which man shows before knockd(8): ours answers
    // to knockd(1) as well, from the earlier directory.
    let alias = std::fs::read_to_string(prefix.join("share/man/man1/knockd.1")).unwrap();
    assert_eq!(alias, ".so man8/knockd.8\n");

    install(&["--prefix", prefix.to_str().unwrap(), "--uninstall"]);
    let left: Vec<_> = walk(root.path()).into_iter().filter(|p| p.is_file()).collect();
    assert!(left.is_empty(), "--uninstall left {left:?}");
}

/// Staged for a package (`--destdir`): the files go under the stage, the unit names where they
/// will be.
#[test]
fn a_staged_install_names_the_final_paths() {
    let stage = TempDir::new("install-stage");
    install(&["--destdir", stage.path().to_str().unwrap()]);
    let unit = stage.join("usr/local/lib/systemd/system/knockd.service");
    assert_eq!(exec_start(&unit), "/usr/local/sbin/knockd $KNOCKD_OPTS");
    assert!(stage.join("usr/local/sbin/knockd").is_file());
    let usr = TempDir::new("install-usr");
    install(&["--destdir", usr.path().to_str().unwrap(), "--prefix", "/usr"]);
    assert_eq!(exec_start(&usr.join("usr/lib/systemd/system/knockd.service")), "/usr/sbin/knockd $KNOCKD_OPTS");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
