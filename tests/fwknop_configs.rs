//! Configs an fwknopd admin has, shaped like fwknop's own test configs (written here, not
//! copied): each loads, and the stock client's packets (tests/fixtures/fwknop) get in where
//! fwknopd lets them in.

mod util;

use std::path::Path;

use knockd::config::{self, Format, LoadOptions, PortProto};
use knockd::doors::Kinds;
use knockd::doors::fwknop::FwknopDoor;
use util::TempDir;
use util::fwknop::*;

fn load(path: &Path, start_dir: Option<&Path>) -> config::Config {
    let options = LoadOptions { start_dir: start_dir.map(Path::to_owned), fwknopd_conf: None, ..Default::default() };
    config::load_with(path, &options, &Kinds).unwrap_or_else(|e| panic!("{e}"))
}

fn notices(c: &config::Config) -> String {
    c.notices.iter().map(|n| format!("{}: {}\n", n.level, n.message)).collect()
}

/// `SOURCE 198.18.0.0/255.255.255.0`, as fwknopd writes masks too.
#[test]
fn a_dotted_netmask_in_source() {
    let dir = TempDir::new("netmask");
    let text = stanza("198.18.0.0/255.255.255.0, 198.18.9.9/255.255.255.255", "OPEN_PORTS tcp/22");
    let c = load(&dir.write_private("access.conf", &text), None);
    let from: Vec<String> = c.doors[0].from.iter().map(|n| n.to_string()).collect();
    assert_eq!(from, ["198.18.0.0/24", "198.18.9.9/32"]);
    let mut doors = kind_of(c, &dir.join("state"));
    let ssh = ssh();
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp)).0, 0);
    let r = rejection(&send(doors.as_mut(), "198.18.1.7", ssh.packet, ssh.timestamp));
    assert!(r.contains("no stanza takes packets from 198.18.1.7"), "{r}");
}

/// `SOURCE: ANY;` in a file not named access.conf is still an access.conf.
#[test]
fn a_colon_after_the_directive_in_a_file_of_any_name() {
    let dir = TempDir::new("colon");
    let text =
        format!("# hmac stanza\nSOURCE: ANY;\nKEY_BASE64: {KEY};\nHMAC_KEY_BASE64: {HMAC_KEY};\nOPEN_PORTS: tcp/22;\n");
    let path = dir.write_private("hmac_sha256_colon.conf", &text);
    assert_eq!(config::detect(&path, &text), Format::AccessConf);
    let mut doors = kind_of(load(&path, None), &dir.join("state"));
    let ssh = ssh();
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp)).0, 0);
}

/// `ACCESS_EXPIRE 3/10/01`: fwknopd reads two-digit years as 20YY.
#[test]
fn two_digit_years_in_access_expire() {
    let dir = TempDir::new("years");
    let ssh = ssh();
    for (expire, opens) in [("3/10/01", false), ("3/10/99", true), ("12/31/2099", true)] {
        let path = dir.write_private("access.conf", stanza("ANY", &format!("ACCESS_EXPIRE {expire};   ### the date")));
        // A state directory each: the same packet twice would be a replay.
        let mut doors = kind_of(load(&path, None), &dir.join(format!("state-{}", expire.replace('/', "-"))));
        let out = send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp);
        assert_eq!(out.grants.len(), usize::from(opens), "{expire}: {:?}", out.notes);
    }
}

/// `%include conf/b.conf` in conf/a.conf: fwknopd opens it from where it was started (so
/// conf/b.conf), knockd first beside the including file (conf/conf/b.conf). Both work; the
/// notices say which was read.
#[test]
fn relative_includes_mean_what_fwknopd_and_knockd_mean() {
    let dir = TempDir::new("include");
    dir.write_private(
        "conf/a.conf",
        &(stanza("198.18.9.0/24", "OPEN_PORTS tcp/443") + "%include conf/b.conf\n%include c.conf\n"),
    );
    dir.write_private("conf/b.conf", stanza("ANY", "OPEN_PORTS tcp/22"));
    dir.write_private("conf/c.conf", stanza("ANY", "OPEN_PORTS tcp/80"));
    let c = load(&dir.join("conf/a.conf"), Some(dir.path()));
    let ports: Vec<PortProto> = c.doors.iter().map(|d| d.fwknop().unwrap().open_ports[0]).collect();
    assert_eq!(ports, [PortProto::tcp(443), PortProto::tcp(22), PortProto::tcp(80)]);
    let said = notices(&c);
    let fwknopds = format!(
        "%include conf/b.conf: reading {}, in the directory knockd was started in",
        dir.join("conf/b.conf").display()
    );
    assert!(said.contains(&fwknopds), "{said}");
    let knockds = format!("%include c.conf: reading {}, beside the including file", dir.join("conf/c.conf").display());
    assert!(said.contains(&knockds), "{said}");
    let mut doors = kind_of(c, &dir.join("state"));
    let ssh = ssh();
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp)).0, 1, "conf/b.conf's stanza");

    dir.write_private("conf/a.conf", &(stanza("ANY", "") + "%include conf/nowhere.conf\n"));
    let options = LoadOptions { start_dir: Some(dir.path().to_owned()), fwknopd_conf: None, ..Default::default() };
    let error = config::load_with(&dir.join("conf/a.conf"), &options, &Kinds).unwrap_err().to_string();
    assert!(error.contains("a.conf:5:1: %include conf/nowhere.conf: there is no "), "{error}");
    assert!(error.contains("conf/conf/nowhere.conf (beside") && error.contains("nor "), "{error}");
}

/// `%include_keys FILE` in a stanza: its keys from a file of their own; other lines there are
/// not the stanza's.
#[test]
fn include_keys_reads_a_stanzas_keys_from_a_file() {
    let dir = TempDir::new("include-keys");
    dir.write_private(
        "keys/alice.conf",
        format!("SOURCE 198.18.99.0/24\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC_KEY}\nFW_ACCESS_TIMEOUT 3\n"),
    );
    let path = dir.write_private("access.conf", "SOURCE ANY\nOPEN_PORTS tcp/22\n%include_keys keys/alice.conf\n");
    let c = load(&path, None);
    assert_eq!(c.included, [dir.join("keys/alice.conf")], "read again on reload, and checked to be private");
    let said = notices(&c);
    assert!(said.contains("alice.conf:1: SOURCE: ignored: a file named by %include_keys sets keys only"), "{said}");
    assert!(said.contains("alice.conf:4: FW_ACCESS_TIMEOUT: ignored"), "{said}");
    let mut doors = kind_of(c, &dir.join("state"));
    let ssh = ssh();
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp)).0, 0);

    // Keys without an HMAC key: that stanza is left out, as fwknopd skips it when its keys fail.
    dir.write_private("keys/alice.conf", format!("KEY_BASE64 {KEY}\n"));
    dir.write_private("access.conf", format!("SOURCE ANY\n%include_keys keys/alice.conf\n\n{}", stanza("ANY", "")));
    let c = load(&path, None);
    assert!(c.doors[0].fwknop().unwrap().refused.as_deref().unwrap().contains("no HMAC_KEY_BASE64"));
}

/// `DIGEST_TYPE` in a stanza: fwknopd ignores it with a log line; so does knockd.
#[test]
fn digest_type_is_ignored_with_a_line() {
    let dir = TempDir::new("digest-type");
    let path = dir.write_private("access.conf", stanza("ANY", "DIGEST_TYPE SHA1\nOPEN_PORTS tcp/22"));
    let c = load(&path, None);
    assert_eq!(c.notices.len(), 1);
    assert_eq!(c.notices[0].level, log::Level::Info);
    assert!(c.notices[0].message.contains("access.conf:4: DIGEST_TYPE: ignored, as fwknopd ignores it"));
    let mut doors = kind_of(c, &dir.join("state"));
    let ssh = ssh();
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp)).0, 0, "the SHA-256 digest");
}

/// An `%include_folder` with a stanza that has no HMAC key: that stanza is left out (a
/// warning), the folder's other stanzas are served.
#[test]
fn a_keyless_stanza_in_an_include_folder_leaves_only_itself_out() {
    let dir = TempDir::new("folder");
    dir.write_private("access.d/a.conf", stanza("ANY", "OPEN_PORTS tcp/80"));
    dir.write_private("access.d/b.conf", "SOURCE ANY\nKEY fwknoptest\nOPEN_PORTS tcp/2222\n");
    dir.write_private("access.d/c.conf", stanza("ANY", "OPEN_PORTS tcp/22"));
    let path = dir.write_private("access.conf", "%include_folder access.d\n");
    let c = load(&path, None);
    let left: Vec<bool> = c.doors.iter().map(|d| d.fwknop().unwrap().refused.is_some()).collect();
    assert_eq!(left, [false, true, false]);
    let warning = c.notices.iter().find(|n| n.level == log::Level::Warn).expect("a warning");
    assert!(warning.message.contains("b.conf:1: stanza2 is left out: no HMAC_KEY_BASE64"), "{}", warning.message);
    assert!(warning.message.contains("Its ports (2222/tcp) stay closed to every client"), "{}", warning.message);
    let mut doors = kind_of(c, &dir.join("state"));
    let ssh = ssh();
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp)).0, 2, "c.conf's stanza");
}

/// A stanza without OPEN_PORTS guards nothing: check and every start say so, and what to do.
#[test]
fn a_stanza_without_open_ports_is_said_to_guard_nothing() {
    let c = knockd::doors::fwknop::access_conf::parse("access.conf", &stanza("ANY", "")).unwrap();
    let warnings = knockd::cli::report::warnings(&c, |_| true);
    let [warning] = warnings.as_slice() else { panic!("{warnings:?}") };
    assert!(warning.starts_with("door stanza1 guards no port"), "{warning}");
    assert!(warning.contains("its grants open nothing") && warning.contains("cannot overrule a drop"), "{warning}");
    assert!(warning.contains("OPEN_PORTS (RESTRICT_PORTS only takes ports away)") && warning.contains("open.set"));
    assert!(knockd::cli::report::check_report(&c).contains("door stanza1: fwknop packets on 62201/udp"));
    assert!(knockd::cli::report::check_report(&c).contains("guards no port (no OPEN_PORTS)"));
    let guarded =
        knockd::doors::fwknop::access_conf::parse("access.conf", &stanza("ANY", "OPEN_PORTS tcp/22")).unwrap();
    assert!(knockd::cli::report::warnings(&guarded, |_| true).is_empty());
}
