//! fwknopd's access.conf, loaded unchanged; and the same door written in knockd.yaml.

mod util;

use std::time::Duration;

use knockd::config::{self, Config, Format, PortProto};
use knockd::doors::Kinds;
use knockd::doors::fwknop::{Fwknop, FwknopDoor, HmacDigest, KeyMaterial};
use util::TempDir;
use util::fwknop::{HMAC_KEY, KEY};

fn parse(text: &str) -> Result<Config, String> {
    knockd::doors::fwknop::access_conf::parse("/etc/fwknop/access.conf", text).map_err(|e| e.to_string())
}

fn stanza(extra: &str) -> String {
    format!("SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC_KEY}\n{extra}")
}

#[test]
fn the_debian_example_stanza_loads() {
    let text = "# access.conf\n%include_folder /nonexistent-is-not-read-unless-named\n";
    assert!(parse(text).unwrap_err().contains("nonexistent"), "a missing folder is an error, not skipped");
    let text = format!(
        "SOURCE              198.18.0.0/16, 2001:db8::/32;  # comment\nOPEN_PORTS          tcp/22, udp/1194\n\
         RESTRICT_PORTS      tcp/23\nKEY_BASE64          {KEY}\nHMAC_KEY_BASE64     {HMAC_KEY}\n\
         HMAC_DIGEST_TYPE    SHA512\nFW_ACCESS_TIMEOUT   45\nMAX_FW_TIMEOUT      600\nREQUIRE_USERNAME    alice\n\
         REQUIRE_SOURCE_ADDRESS Y\nENCRYPTION_MODE CBC\nDESTINATION 198.18.0.1\nACCESS_EXPIRE 01/31/2027\n"
    );
    let c = parse(&text).unwrap();
    let door = &c.doors[0];
    assert_eq!(door.name, "stanza1");
    assert_eq!(door.from.len(), 2);
    let Some(f) = door.fwknop() else { panic!("{door:?}") };
    assert_eq!((f.port, f.name.as_str(), f.hmac_digest), (62201, "stanza1", HmacDigest::Sha512));
    assert_eq!(f.key, KeyMaterial::Base64(KEY.into()));
    assert_eq!(f.open_ports, [PortProto::tcp(22), PortProto::udp(1194)]);
    assert_eq!(f.restrict_ports, [PortProto::tcp(23)]);
    assert_eq!((f.max_timeout, f.window), (Duration::from_secs(600), Duration::from_secs(120)));
    assert!(f.require_source_address);
    assert_eq!(f.require_username.as_deref(), Some("alice"));
    assert_eq!(f.expires, Some(1_801_353_600), "midnight UTC, 2027-01-31");
    let open = door.open.as_ref().unwrap();
    assert!(open.per_port);
    assert_eq!((open.ports.clone(), open.timeout), (f.open_ports.clone(), Duration::from_secs(45)));
}

#[test]
fn mistakes_are_errors_that_say_where_and_why() {
    let cases = [
        ("FW_ACCESS_TIMEOUT soon\n", "access.conf:4:1: FW_ACCESS_TIMEOUT: `soon` is not a number of seconds"),
        ("OPEN_PORTS icmp/0\n", "unknown protocol `icmp`"),
        ("SOMETHING_NEW 1\n", "access.conf:4:1: SOMETHING_NEW: unknown directive: knockd reads SOURCE"),
        ("HMAC_DIGEST_TYPE sha224\n", "use md5, sha1, sha256"),
        ("CMD_CYCLE_OPEN /bin/true $IP\n", "CMD_CYCLE_OPEN needs CMD_CYCLE_CLOSE"),
        ("FORCE_NAT 198.18.0.5\n", "write an address and a port"),
        (&format!("HMAC_KEY_BASE64 {}\n", "A".repeat(200)), "access.conf:4:1: HMAC_KEY_BASE64: the key is 150 bytes"),
        ("KEY_BASE64 QUFB*\n", "access.conf:4:1: KEY_BASE64: `QUFB*` is not base64"),
    ];
    for (extra, wanted) in cases {
        let error = parse(&stanza(extra)).unwrap_err();
        assert!(error.starts_with("/etc/fwknop/access.conf:"), "{error}");
        assert!(error.contains(wanted), "{extra}: {error}");
    }
    let changeme = parse("SOURCE ANY\nKEY_BASE64 __CHANGEME__\n").unwrap_err();
    assert!(changeme.contains("access.conf:2:1") && changeme.contains("__CHANGEME__"), "{changeme}");
    let orphan = parse("OPEN_PORTS tcp/22\n").unwrap_err();
    assert!(orphan.contains("comes before any `SOURCE` line"), "{orphan}");
    assert!(parse("# nothing\n").unwrap_err().contains("no stanza is defined"));
    let same = parse(&format!("SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {KEY}\n")).unwrap_err();
    assert!(same.contains("must not be the same"), "{same}");
}

/// What knockd will not do leaves that stanza out, never the file: GPG, other modes, the
/// legacy IV, no HMAC key, NAT. Its ports stay guarded; the other stanzas load.
#[test]
fn unsafe_stanzas_are_left_out_one_by_one() {
    let cases = [
        ("GPG_DECRYPT_ID ABCD1234\nGPG_REQUIRE_SIG Y\n", "GPG: knockd does not take fwknop's GPG packets"),
        ("ENCRYPTION_MODE ECB\n", "ENCRYPTION_MODE ECB: knockd does only CBC, fwknop's default (clients: drop -M ecb)"),
        ("ENCRYPTION_MODE legacy\n", "the legacy IV"),
        ("FORCE_SNAT 198.18.0.9\n", "FORCE_SNAT: not honoured"),
        ("FORWARD_ALL Y\n", "FORWARD_ALL: not honoured"),
    ];
    for (extra, wanted) in cases {
        let text = format!("{}\n{}", stanza(&format!("OPEN_PORTS tcp/80\n{extra}")), stanza("OPEN_PORTS tcp/22\n"));
        let c = parse(&text).unwrap_or_else(|e| panic!("{extra}: {e}"));
        let (left, served) = (c.doors[0].fwknop().unwrap(), c.doors[1].fwknop().unwrap());
        assert!(left.refused.as_deref().is_some_and(|r| r.contains(wanted)), "{extra}: {:?}", left.refused);
        assert_eq!(served.refused, None);
        assert_eq!(c.doors[0].open.as_ref().unwrap().ports, [PortProto::tcp(80)], "still guarded");
        let warning = c.notices.iter().find(|n| n.level == log::Level::Warn).unwrap();
        assert!(
            warning.message.starts_with("/etc/fwknop/access.conf:1: stanza1 is left out: ")
                && warning
                    .message
                    .ends_with("knockd serves the other stanzas. Its ports (80/tcp) stay closed to every client."),
            "{}",
            warning.message
        );
    }
    let nat = parse(&format!("{}{}", stanza("FORCE_NAT 198.18.0.5 22\n"), stanza(""))).unwrap();
    let want = "198.18.0.5".parse().ok().map(|ip| (ip, 22));
    assert_eq!(nat.doors[0].fwknop().unwrap().nat.force_nat, want, "read into the model");
    let no_hmac = parse(&format!("SOURCE ANY\nKEY_BASE64 {KEY}\n\n{}", stanza(""))).unwrap();
    assert!(no_hmac.doors[0].fwknop().unwrap().refused.as_deref().unwrap().contains("no HMAC_KEY_BASE64"));
    let none = parse(&format!("SOURCE ANY\nKEY_BASE64 {KEY}\n")).unwrap_err();
    assert!(none.contains("no stanza knockd can serve") && none.contains("no HMAC_KEY_BASE64"), "{none}");
}

/// A stanza that lets clients run commands is served: its access requests work, command
/// packets are refused by name (tests/fwknop.rs). The command settings are named as unused.
#[test]
fn command_execution_is_a_warning_not_a_refusal() {
    let c = parse(&stanza("ENABLE_CMD_EXEC Y\nCMD_EXEC_USER nobody\nENABLE_CMD_SUDO_EXEC N\n")).unwrap();
    assert_eq!(c.doors[0].fwknop().unwrap().refused, None);
    let said: Vec<&str> = c.notices.iter().map(|n| n.message.as_str()).collect();
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said[0].starts_with("/etc/fwknop/access.conf:4: ENABLE_CMD_EXEC: knockd runs no command"), "{said:?}");
    assert!(said[1].contains(":5: CMD_EXEC_USER: not used"), "{said:?}");
}

#[test]
fn command_cycles_run_through_the_classic_command_layer_with_fwknops_variables() {
    let c = parse(&stanza(
        "CMD_CYCLE_OPEN /usr/sbin/knock-open $IP $PORT $PROTO $SRC $PKT_SRC $DST $TIMEOUT $HOME\n\
         CMD_CYCLE_CLOSE /usr/sbin/knock-close $IP\nCMD_CYCLE_TIMER 60\nOPEN_PORTS tcp/22\n",
    ))
    .unwrap();
    let door = &c.doors[0];
    assert_eq!(door.open, None, "fwknopd runs the command instead of adding a rule");
    assert_eq!(
        door.commands.start.as_deref(),
        Some("/usr/sbin/knock-open %IP% %PORT% %PROTO% %SRC% %PKT_SRC% %DST% %TIMEOUT% $HOME")
    );
    assert_eq!(door.commands.stop.as_deref(), Some("/usr/sbin/knock-close %IP%"));
    assert_eq!(door.commands.cmd_timeout, Duration::from_secs(60));
    assert_eq!(door.fwknop().unwrap().open_ports, [PortProto::tcp(22)], "OPEN_PORTS still limits what is asked");
    assert!(c.needs_root().is_some(), "commands keep the daemon root");
}

#[test]
fn includes_folders_detection_and_private_files() {
    let dir = TempDir::new("access");
    let main = dir.write_private("main.conf", format!("{}\n%include_folder access.d\n", stanza("OPEN_PORTS tcp/22\n")));
    let b = dir.write_private("access.d/b.conf", stanza("OPEN_PORTS tcp/443\n"));
    let a = dir.write_private("access.d/a.conf", stanza("OPEN_PORTS tcp/80\n"));
    dir.write("access.d/ignored.txt", "not read");
    assert_eq!(config::detect(&main, &std::fs::read_to_string(&main).unwrap()), Format::AccessConf);
    let c = config::load(&main, &Kinds).unwrap();
    let ports: Vec<u16> = c.doors.iter().map(|d| d.fwknop().unwrap().open_ports[0].port).collect();
    assert_eq!(ports, [22, 80, 443], "the stanza, then the folder's files in name order");
    assert_eq!(c.included, [a, b.clone()]);

    util::set_mode(&b, 0o644);
    let error = config::load(&main, &Kinds).unwrap_err().to_string();
    assert!(error.contains("b.conf: refusing to use it: every user can read the keys in it (mode 644)"), "{error}");

    dir.write_private("main.conf", format!("%include {}\n", main.display()));
    let error = config::load(&main, &Kinds).unwrap_err().to_string();
    assert!(error.contains("main.conf:1:1: %include ") && error.contains("at most 3 levels deep"), "{error}");
}

#[test]
fn converted_to_yaml_it_loads_as_the_same_doors() {
    let text = format!(
        "{}\n{}",
        stanza("OPEN_PORTS tcp/22\nMAX_FW_TIMEOUT 600\nREQUIRE_SOURCE_ADDRESS Y\nACCESS_EXPIRE_EPOCH 1801440000\n"),
        stanza("HMAC_DIGEST_TYPE sha3_256\nRESTRICT_PORTS tcp/23\nDESTINATION 198.18.0.1\n")
            .replace("SOURCE ANY", "SOURCE 198.18.0.0/16")
    );
    let c = parse(&text).unwrap();
    let yaml = config::convert::to_yaml(&c);
    assert!(yaml.contains("fwknop:") && yaml.contains("hmac_key_base64:"), "{yaml}");
    let again = config::yaml::parse("converted.yaml", &yaml, &Kinds).unwrap();
    assert_eq!(again.doors, c.doors, "{yaml}");
}

#[test]
fn the_yaml_door_kind() {
    let yaml = format!(
        "doors:\n  ssh:\n    fwknop:\n      key_base64: {KEY}\n      hmac_key_base64: {HMAC_KEY}\n      hmac_digest: sha384\n      open_ports: [22, 53/udp]\n      max_timeout: 10m\n      expires: 2027-01-31\n      name: alice\n    open: {{timeout: 30s}}\n"
    );
    let c = config::yaml::parse("t.yaml", &yaml, &Kinds).unwrap();
    let [proof] = c.doors[0].proofs.as_slice() else { panic!() };
    let f = proof.get::<Fwknop>().unwrap();
    assert_eq!((f.name.as_str(), f.hmac_digest, f.expires), ("alice", HmacDigest::Sha384, Some(1_801_353_600)));
    assert_eq!(c.doors[0].open.as_ref().unwrap().ports, [PortProto::tcp(22), PortProto::udp(53)]);
    let error = |text: &str| config::yaml::parse("t.yaml", text, &Kinds).unwrap_err().to_string();
    let e = error(&yaml.replace("open: {timeout: 30s}", "open: {ports: [22], timeout: 30s}"));
    assert!(e.contains("fwknop.open_ports"), "{e}");
    let e = error(&yaml.replace("      hmac_key_base64", "      hmac_key_file: /k\n      hmac_key_base64"));
    assert!(e.contains("more than one of `hmac_key`"), "{e}");
    let e = error(&yaml.replace("hmac_digest: sha384", "hmac_digest: crc32"));
    assert!(e.contains("unknown hmac_digest `crc32`"), "{e}");
    let e = error(&yaml.replace(&format!("key_base64: {KEY}"), "key_base64: not*base64"));
    assert!(e.contains("key_base64"), "{e}");
}

/// `FORCE_NAT`: the stanza's ports are forwarded to that host, where forwarding is on
/// (`ENABLE_IPT_FORWARDING Y` in fwknopd.conf), as with fwknopd; left out where it is not.
#[test]
fn force_nat_forwards_the_stanzas_ports_where_forwarding_is_on() {
    let text = stanza("OPEN_PORTS tcp/2522, udp/53\nFORCE_NAT 198.19.1.10 22\n");
    let c = parse(&text).unwrap();
    let forward: Vec<String> = c.doors[0].open.as_ref().unwrap().forward.iter().map(|f| f.to_string()).collect();
    assert_eq!(forward, ["2522/tcp to 198.19.1.10:22", "53/udp to 198.19.1.10:22"]);
    assert_eq!(c.doors[0].fwknop().unwrap().refused, None);
    let mut off = c.clone();
    knockd::doors::fwknop::access_conf::require_forwarding(&mut off);
    let why = off.doors[0].fwknop().unwrap().refused.clone().unwrap_or_default();
    assert!(why.contains("FORCE_NAT needs ENABLE_IPT_FORWARDING Y"), "{why}");
    assert!(off.doors[0].open.as_ref().unwrap().forward.is_empty(), "a stanza left out forwards nothing");
    let mut on = c;
    if let Some(f) = on.doors[0].proof_mut::<Fwknop>() {
        f.nat.forwarding = true;
    }
    knockd::doors::fwknop::access_conf::require_forwarding(&mut on);
    assert_eq!(on.doors[0].fwknop().unwrap().refused, None);
    let two = format!("{}\n{}", stanza("FORCE_NAT 198.19.1.10 22\n"), stanza("OPEN_PORTS tcp/22\n"));
    let refused = parse(&two).unwrap().doors[0].fwknop().unwrap().refused.clone().unwrap_or_default();
    assert!(refused.contains("FORCE_NAT needs OPEN_PORTS"), "{refused}");
}
