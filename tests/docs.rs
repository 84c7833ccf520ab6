//! Man pages and shell completions are generated from the clap definitions and committed under
//! doc/. This test fails when they are stale; `KNOCKD_WRITE_DOCS=1 cargo test --test docs`
//! regenerates them. It also checks the systemd unit with systemd-analyze.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use clap_complete::Shell;
use knockd::cli::{KnockCli, KnockdCli};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn man(command: clap::Command, section: &str) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command).section(section).render(&mut out).unwrap();
    out
}

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![
        (repo("doc/man/knockd.8"), man(KnockdCli::command(), "8")),
        (repo("doc/man/knock.1"), man(KnockCli::command(), "1")),
    ];
    for (shell, dir, suffix) in [(Shell::Bash, "bash", ""), (Shell::Zsh, "zsh", ""), (Shell::Fish, "fish", ".fish")] {
        for (name, mut command) in [("knockd", KnockdCli::command()), ("knock", KnockCli::command())] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, name, &mut out);
            let file = if shell == Shell::Zsh { format!("_{name}") } else { format!("{name}{suffix}") };
            files.push((repo(&format!("doc/completions/{dir}/{file}")), out));
        }
    }
    files
}

#[test]
fn man_pages_and_completions_are_current() {
    let write = std::env::var_os("KNOCKD_WRITE_DOCS").is_some();
    for (path, content) in generated() {
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &content).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(committed == content, "{} is stale: run KNOCKD_WRITE_DOCS=1 cargo test --test docs", path.display());
    }
}

#[test]
fn man_pages_cover_every_flag() {
    let page = String::from_utf8(std::fs::read(repo("doc/man/knockd.8")).unwrap()).unwrap();
    for flag in [
        "configfile",
        "daemon",
        "interface",
        "loglevel",
        "logfile",
        "no\\-syslog",
        "pidfile",
        "only\\-ip\\-v4",
        "lookup",
        "convert",
    ] {
        assert!(page.contains(flag), "knockd.8 lacks {flag}");
    }
    let config_page = std::fs::read_to_string(repo("doc/man/knockd.yaml.5")).unwrap();
    for key in
        ["seq_timeout", "tcp_flags", "one_time_sequences", "stop_command", "cmd_timeout", "max_attempts", "target"]
    {
        assert!(config_page.contains(key), "knockd.yaml.5 does not document {key}");
    }
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(repo("packaging/knockd.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_CHOWN",
        "StateDirectory=knockd",
        "RuntimeDirectory=knockd",
        "LogsDirectory=knockd",
        "ReadWritePaths=-/var/log/knockd.log",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW",
        "RestrictAddressFamilies=AF_NETLINK AF_PACKET AF_UNIX AF_INET AF_INET6",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks `{line}`");
    }
    // systemd-analyze checks that ExecStart exists: point it at the binary under test.
    let dir = std::env::temp_dir().join(format!("knockd-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("knockd.service");
    std::fs::write(&copy, unit.replace("/usr/sbin/knockd", env!("CARGO_BIN_EXE_knockd"))).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze (scripts/install-deps installs systemd)");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
