//! The `knockd` command line as a user meets it; nothing here needs root.

use std::process::{Command, Output};

const KNOCKD: &str = env!("CARGO_BIN_EXE_knockd");

fn knockd(args: &[&str]) -> Output {
    Command::new(KNOCKD).args(args).output().unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn help_lists_every_classic_flag() {
    let help = text(&knockd(&["--help"]).stdout);
    for flag in [
        "-c, --configfile",
        "-d, --daemon",
        "-i, --interface",
        "-v, --verbose",
        "-l, --loglevel",
        "-L, --logfile",
        "-n, --no-syslog",
        "-s, --stdout",
        "-D, --debug",
        "-p, --pidfile",
        "-4, --only-ip-v4",
        "--lookup",
        "--convert",
        "-V, --version",
        "-h, --help",
    ] {
        assert!(help.contains(flag), "`{flag}` missing from --help:\n{help}");
    }
    assert!(help.contains("/etc/knockd.conf"), "the classic default config path");
    let short = knockd(&["-h"]);
    assert!(short.status.success());
    assert!(text(&short.stdout).contains("--configfile"));
}

#[test]
fn version() {
    let out = knockd(&["-V"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), format!("knockd {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_flags_exit_2() {
    for args in [&["-l", "9"][..], &["--no-such-flag"][..], &["--convert"][..]] {
        let out = knockd(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn a_config_error_exits_1_naming_the_place() {
    let dir = std::env::temp_dir().join(format!("knockd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("knockd.conf");
    std::fs::write(&conf, "[ssh]\nsequence = 7000\nfrobnicate = yes\n").unwrap();
    let out = knockd(&["-c", conf.to_str().unwrap()]);
    let missing = knockd(&["-c", "/nonexistent/knockd.conf"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("knockd.conf:3:1: [ssh] frobnicate: unknown directive"), "{stderr}");
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("/nonexistent/knockd.conf: cannot read the config"));
}

#[test]
fn convert_prints_yaml_that_loads() {
    let dir = std::env::temp_dir().join(format!("knockd-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("knockd.conf");
    std::fs::write(
        &conf,
        "[options]\n UseSyslog\n[openSSH]\n sequence = 7000,8000:udp\n command = iptables -A INPUT -s %IP% -j ACCEPT\n",
    )
    .unwrap();
    let out = knockd(&["--convert", conf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    let converted = dir.join("converted.yaml");
    std::fs::write(&converted, &yaml).unwrap();
    let back = knockd::config::load(&converted);
    let original = knockd::config::load(&conf).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(back.unwrap(), original, "{yaml}");
    assert!(
        yaml.contains("openSSH:")
            && yaml.contains("8000/udp")
            && yaml.contains("command: iptables -A INPUT -s %IP% -j ACCEPT"),
        "{yaml}"
    );
}
