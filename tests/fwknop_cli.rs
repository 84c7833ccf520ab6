//! Moving over from fwknopd on the command line: `knockd check` on an access.conf, and
//! `knockd --convert`. Nothing here needs root.

mod util;

use std::process::{Command, Stdio};

use knockd::doors::Kinds;
use util::fwknop::*;
use util::{KNOCKD, TempDir, knockd, text};

/// A stanza knockd leaves out makes `check` fail, naming it and what it does instead; the
/// notices a start logs are printed too.
#[test]
fn check_fails_while_a_stanza_would_be_left_out() {
    let dir = TempDir::new("cli-check");
    let state = dir.join("state");
    let access = dir.write_private(
        "access.conf",
        &(stanza("ANY", "OPEN_PORTS tcp/22\nDIGEST_TYPE SHA256")
            + &stanza("ANY", "OPEN_PORTS tcp/80\nGPG_DECRYPT_ID ABCD1234")),
    );
    let args = ["check", "-c", access.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
    let out = knockd(&args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("door stanza2: LEFT OUT, takes no packet (GPG: knockd does not take"), "{stdout}");
    assert!(stdout.contains("warning: ") && stdout.contains("access.conf:6: stanza2 is left out: GPG"), "{stdout}");
    assert!(stdout.contains("note: ") && stdout.contains("DIGEST_TYPE: ignored"), "{stdout}");
    assert!(stdout.contains("tcp dport 80 drop"), "its port stays guarded: {stdout}");
    assert!(text(&out.stderr).contains("1 stanza(s) would be left out"), "{}", text(&out.stderr));

    dir.write_private("access.conf", stanza("ANY", "OPEN_PORTS tcp/22"));
    let out = knockd(&args);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));

    // `--fwknopd-conf FILE`: read as a start reads it.
    let fwknopd = dir.write_private("server/fwknopd.conf", "PCAP_FILTER udp port 62209;\nLOCALE C;\n");
    let out = knockd(&[&args[..], &["--fwknopd-conf", fwknopd.to_str().unwrap()]].concat());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("fwknop packets on 62209/udp"), "{stdout}");
    assert!(stdout.contains("warning: ") && stdout.contains("fwknopd.conf:2: LOCALE: not honoured"), "{stdout}");
}

/// `knockd --convert access.conf > knockd.yaml`: the YAML holds the keys, so its file is made
/// mode 600, the output says so, and knockd loads it.
#[test]
fn convert_writes_the_keys_into_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("cli-convert");
    let access = dir.write_private(
        "access.conf",
        &(stanza("198.18.0.0/16", "OPEN_PORTS tcp/22") + &stanza("ANY", "ENCRYPTION_MODE ecb\nOPEN_PORTS tcp/80")),
    );
    let yaml = dir.join("knockd.yaml");
    let file = std::fs::File::create(&yaml).unwrap();
    std::fs::set_permissions(&yaml, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out =
        Command::new(KNOCKD).args(["--convert", access.to_str().unwrap()]).stdout(Stdio::from(file)).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the YAML holds the keys of") && text(&out.stderr).contains("mode 600"));
    assert!(text(&out.stderr).contains("stanza2 is left out: ENCRYPTION_MODE ecb"), "{}", text(&out.stderr));
    assert_eq!(std::fs::metadata(&yaml).unwrap().permissions().mode() & 0o777, 0o600);
    let converted = std::fs::read_to_string(&yaml).unwrap();
    assert!(converted.starts_with("# This file holds keys: keep it mode 600"), "{converted}");
    assert!(
        converted.contains("# stanza2 is left out (it kept 80/tcp closed; no door here does): ENCRYPTION_MODE ecb")
    );
    let loaded = knockd::config::load(&yaml, &Kinds).unwrap_or_else(|e| panic!("{e}\n{converted}"));
    assert_eq!(loaded.doors.len(), 1);

    // To a pipe, the mode cannot be set: it says what to do instead.
    let out = knockd(&["--convert", access.to_str().unwrap()]);
    assert!(text(&out.stderr).contains("keep the file it goes to mode 600"), "{}", text(&out.stderr));
}

#[test]
fn help_names_access_conf_and_fwknopd_conf() {
    let help = text(&knockd(&["--help"]).stdout).replace('\n', " ");
    assert!(help.contains("--convert <FILE>"), "{help}");
    assert!(help.contains("Print the config FILE (a classic knockd.conf, fwknopd's access.conf, or YAML)"), "{help}");
    assert!(help.contains("--fwknopd-conf <FILE>"), "{help}");
}
