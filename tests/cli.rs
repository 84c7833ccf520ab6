//! The `knockd` command line as a user meets it; nothing here needs root.

mod util;

use std::process::Command;

use knockd::doors::Kinds;
use util::{KNOCKD, TempDir, knockd, text};

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
    assert!(!help.contains("[default: /etc"), "the default depends on the machine: the help says the rule");
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
    let dir = TempDir::new("cli");
    let conf = dir.write("knockd.conf", "[ssh]\nsequence = 7000\nfrobnicate = yes\n");
    let out = knockd(&["-c", conf.to_str().unwrap()]);
    let missing = knockd(&["-c", "/nonexistent/knockd.conf"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("knockd.conf:3:1: [ssh] frobnicate: unknown directive"), "{stderr}");
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("/nonexistent/knockd.conf: cannot read the config"));
}

#[test]
fn convert_prints_yaml_that_loads() {
    let dir = TempDir::new("convert");
    let conf = dir.write(
        "knockd.conf",
        "[options]\n UseSyslog\n[openSSH]\n sequence = 7000,8000:udp\n command = iptables -A INPUT -s %IP% -j ACCEPT\n",
    );
    let out = knockd(&["--convert", conf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    let converted = dir.write("converted.yaml", &yaml);
    let back = knockd::config::load(&converted, &Kinds);
    let original = knockd::config::load(&conf, &Kinds).unwrap();
    assert_eq!(back.unwrap(), original, "{yaml}");
    assert!(
        yaml.contains("openSSH:")
            && yaml.contains("8000/udp")
            && yaml.contains("command: iptables -A INPUT -s %IP% -j ACCEPT"),
        "{yaml}"
    );
}

/// `knockd check` fails exactly where a start would: every file a door reads is read.
#[test]
fn check_reads_what_a_start_reads() {
    let dir = TempDir::new("check-files");
    let secret = dir.write_private("ssh.secret", "a shared secret of 32 bytes.....");
    let config = |door: &str| {
        let path = dir.config(&format!("doors:\n  d:\n{door}    open: {{ports: [22], timeout: 30s}}\n"));
        path.display().to_string()
    };
    let cases = [
        ("    one_time_sequences: /nonexistent/seqs\n".to_owned(), "/nonexistent/seqs"),
        (format!("    rotating: {{secret_file: {}}}\n", dir.join("missing.secret").display()), "missing.secret"),
        ("    spa: {port: 62201, public_keys: [/nonexistent/alice.pub]}\n".to_owned(), "/nonexistent/alice.pub"),
    ];
    for (door, wanted) in cases {
        let out = knockd(&["check", "-c", &config(&door)]);
        assert_eq!(out.status.code(), Some(1), "{door}: {}", text(&out.stdout));
        assert!(text(&out.stderr).contains(wanted), "{door}: {}", text(&out.stderr));
    }
    let rotating = format!("    rotating: {{secret_file: {}}}\n", secret.display());
    assert!(knockd(&["check", "-c", &config(&rotating)]).status.success());
    util::set_mode(&secret, 0o666);
    let out = knockd(&["check", "-c", &config(&rotating)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("writable by every user"), "{}", text(&out.stderr));
}

#[test]
fn check_warns_about_likely_mistakes() {
    let dir = TempDir::new("check-warnings");
    let config = dir.config(
        "interfaces: [kd-nosuchif]\ndoors:\n  a: {sequence: [7000, 8000], open: {ports: [22], timeout: 30s}}\n  b: {sequence: [7000, 8000, 9000], open: {ports: [443], timeout: 30s}}\n  c: {sequence: [7000, 8000], open: {ports: [80], timeout: 30s}}\n  d: {sequence: [5000]}\n",
    );
    let out = knockd(&["check", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for warning in [
        "warning: interface kd-nosuchif does not exist now",
        "warning: door a's sequence is the start of door b's: knocking b opens a too",
        "warning: doors a and c have the same sequence",
        "warning: door c's sequence is the start of door b's",
        "warning: door d: has neither `open` nor a command",
    ] {
        assert!(stdout.contains(warning), "`{warning}` missing:\n{stdout}");
    }
}

#[test]
fn check_says_which_command_programs_do_not_exist() {
    let dir = TempDir::new("check-programs");
    let stock = include_str!("fixtures/debian-knockd.conf");
    let config = dir.write_mode("knockd.conf", stock.replace("/sbin/iptables", "/bin/true"), 0o644);
    let out = Command::new(KNOCKD).arg("check").arg("-c").arg(config).env("PATH", "/usr/bin:/bin").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let warning = "warning: door openHTTPS: its command runs /usr/local/sbin/knock_add, which does not exist here";
    assert!(stdout.contains(warning), "{stdout}");
    assert_eq!(stdout.matches("does not exist here").count(), 1, "/bin/true exists:\n{stdout}");
}

/// Without `-c`: /etc/knockd.yaml if it exists, else /etc/knockd.conf, for every command (the
/// rule is one clap default; integration/install.rs runs the binary against both in a private
/// /etc).
#[test]
fn the_config_file_rule() {
    use knockd::cli::default_config_in;
    let dir = TempDir::new("rule");
    let dir = dir.path();
    assert_eq!(default_config_in(dir), dir.join("knockd.conf"), "neither: the classic path, named in errors");
    std::fs::write(dir.join("knockd.conf"), "[ssh]\nsequence = 1\n").unwrap();
    assert_eq!(default_config_in(dir), dir.join("knockd.conf"));
    std::fs::write(dir.join("knockd.yaml"), "doors: {ssh: {sequence: [1]}}\n").unwrap();
    assert_eq!(default_config_in(dir), dir.join("knockd.yaml"), "both: the YAML");
    std::fs::remove_file(dir.join("knockd.conf")).unwrap();
    assert_eq!(default_config_in(dir), dir.join("knockd.yaml"));
    let help = text(&knockd(&["--help"]).stdout);
    assert!(help.contains("/etc/knockd.yaml if it exists, else /etc/knockd.conf"), "{help}");
}

/// Classic knockd flags as /etc/default/knockd's KNOCKD_OPTS holds them: `-l` alone is the
/// classic `--lookup`, `-l N` is a log level.
#[test]
fn classic_dash_l_is_lookup() {
    use clap::Parser;
    use knockd::cli::KnockdCli;
    let classic = KnockdCli::try_parse_from(["knockd", "-i", "eth1", "-l"]).unwrap();
    assert!(classic.lookup() && classic.log_level().is_none());
    let level = KnockdCli::try_parse_from(["knockd", "-l", "2", "-i", "eth1"]).unwrap();
    assert!(!level.lookup() && level.log_level() == Some(2));
    assert!(KnockdCli::try_parse_from(["knockd", "-l", "5"]).is_err());
}

/// `knockd check | head`: when the reader leaves early, check ends as `cat` would (SIGPIPE),
/// without a panic message on the terminal.
#[test]
fn check_into_a_pipe_that_closes_early_ends_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let dir = TempDir::new("check-pipe");
    // Far more than a pipe holds (64 KiB), so that check is still writing when the reader goes.
    let doors: String = (0..400)
        .map(|i| {
            format!(
                "  d{i}:\n    sequence: [{}, {}]\n    open: {{ports: [22], timeout: 30s}}\n",
                10000 + i * 3,
                10001 + i * 3
            )
        })
        .collect();
    let config = dir.config(&format!("doors:\n{doors}"));
    let mut child = Command::new(KNOCKD)
        .args(["check", "--lockout-ok", "-c", config.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(13), "ended by SIGPIPE: {:?}", out.status);
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
}
