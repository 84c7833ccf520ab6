//! The YAML loader: good files load into the model; bad ones say where and what.

mod util;

use std::time::Duration;

use knockd::config::{self, ConfigError, PortProto, Proof, TcpFlags, tcp_flag};
use knockd::doors::Kinds;
use knockd::doors::sequence::OneTimeFile;
use util::{TempDir, set_mode};

fn parse(text: &str) -> Result<config::Config, ConfigError> {
    config::yaml::parse("test.yaml", text, &Kinds)
}

/// The error text for `text`, which must be invalid.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_error(text: &str, place: &str, parts: &[&str]) {
    let message = error(text);
    assert!(message.starts_with(&format!("test.yaml:{place}")), "wrong place in: {message}");
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

const MINIMAL: &str = "
doors:
  ssh:
    sequence: [7000, 8000, 9000]
    open:
      ports: [22]
      timeout: 30s
";

/// [`MINIMAL`] with one more line in door ssh, line 5 (before `open:`).
fn with_door_line(line: &str) -> String {
    MINIMAL.replace("    open:", &format!("    {line}\n    open:"))
}

#[test]
fn the_documented_example_loads() {
    let config =
        config::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/knockd.yaml")), &Kinds).unwrap();
    assert_eq!(config.table, "knockd");
    assert!(config.interfaces.is_empty());
    let ssh = &config.doors[0];
    assert_eq!(ssh.name, "ssh");
    assert_eq!(ssh.sequence(), Some(&util::fixed(&[PortProto::tcp(7000), PortProto::tcp(8000), PortProto::tcp(9000)])));
    assert_eq!(ssh.seq_timeout, Duration::from_secs(5));
    assert_eq!(ssh.tcp_flags, TcpFlags { set: tcp_flag::SYN, clear: 0 });
    let open = ssh.open.as_ref().unwrap();
    assert_eq!(open.ports, [PortProto::tcp(22)]);
    assert_eq!(open.timeout, Duration::from_secs(30));
}

#[test]
fn defaults() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.table, "knockd");
    assert_eq!(config.log.level, log::LevelFilter::Info);
    assert!(config.log.syslog);
    assert_eq!(config.max_attempts, config::DEFAULT_MAX_ATTEMPTS);
    assert_eq!(config.doors[0].seq_timeout, config::DEFAULT_SEQ_TIMEOUT);
    assert!(config.doors[0].tcp_flags.is_any());
}

#[test]
fn every_key() {
    let config = parse(
        r#"
interfaces: [eth0, wg0]
nftables:
  table: edge
log:
  level: debug
limits:
  max_attempts: 1000
doors:
  web:
    sequence: [1111, "2222/udp", "3333:tcp", "4444/UDP"]
    seq_timeout: 500ms
    tcp_flags: [syn, "!ack"]
    open:
      ports: ["443/tcp", "443/udp"]
      timeout: 1h
  ssh:
    sequence: [7000]
    tcp_flags: "syn,!ack,!rst"
    open: {ports: [22], timeout: 5m}
"#,
    )
    .unwrap();
    assert_eq!(config.interfaces, ["eth0", "wg0"]);
    assert_eq!(config.table, "edge");
    assert_eq!(config.log.level, log::LevelFilter::Debug);
    assert_eq!(config.max_attempts, 1000);
    let names: Vec<&str> = config.doors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["web", "ssh"], "doors keep file order");
    let web = &config.doors[0];
    assert_eq!(
        web.sequence(),
        Some(&util::fixed(&[PortProto::tcp(1111), PortProto::udp(2222), PortProto::tcp(3333), PortProto::udp(4444)]))
    );
    assert_eq!(web.seq_timeout, Duration::from_millis(500));
    assert_eq!(web.tcp_flags, TcpFlags { set: tcp_flag::SYN, clear: tcp_flag::ACK });
    let open = web.open.as_ref().unwrap();
    assert_eq!(open.ports, [PortProto::tcp(443), PortProto::udp(443)]);
    assert_eq!(open.timeout, Duration::from_secs(3600));
    assert_eq!(config.doors[1].tcp_flags, TcpFlags { set: tcp_flag::SYN, clear: tcp_flag::ACK | tcp_flag::RST });
    assert_eq!(
        knockd::doors::sequence::matcher::Matcher::new(&config.doors, 10).knock_ports(),
        [PortProto::tcp(1111), PortProto::udp(2222), PortProto::tcp(3333), PortProto::udp(4444), PortProto::tcp(7000)]
    );
}

#[test]
fn unknown_keys_are_errors() {
    assert_error(
        &with_door_line("sequnce: 5s"),
        "5:5",
        &["doors.ssh", "unknown key `sequnce`: did you mean `sequence`?", "`seq_timeout`"],
    );
    assert_error(
        &format!("interface: [eth0]\n{MINIMAL}"),
        "1:1",
        &["unknown key `interface`: did you mean `interfaces`?"],
    );
    assert_error(
        &MINIMAL.replace("timeout: 30s", "timeout: 30s\n      timout: 5s"),
        "8:7",
        &["doors.ssh.open", "`timout`"],
    );
}

#[test]
fn bad_ports() {
    // The second knock's port, and what the error at its place (4:22) says.
    let second: [(&str, &[&str]); 5] = [
        ("0", &["doors.ssh.sequence[1]", "port 0 is out of range", "1-65535"]),
        ("70000", &["doors.ssh.sequence[1]", "70000"]),
        ("-1", &["doors.ssh.sequence[1]", "-1"]),
        ("\"8000/sctp\"", &["sequence[1]", "unknown protocol `sctp`", "tcp or udp"]),
        ("8000.5", &["sequence[1]", "invalid type"]),
    ];
    for (port, parts) in second {
        assert_error(&MINIMAL.replace("8000", port), "4:22", parts);
    }
    assert_error(&MINIMAL.replace("[22]", "[ssh]"), "6:15", &["doors.ssh.open.ports[0]", "`ssh` is not a port"]);
    assert_error(&MINIMAL.replace("[22]", "[]"), "6:14", &["doors.ssh.open.ports", "empty"]);
}

#[test]
fn sequences_are_bounded() {
    assert_error(&MINIMAL.replace("[7000, 8000, 9000]", "[]"), "4:15", &["doors.ssh.sequence", "the list is empty"]);
    let long: Vec<String> = (1..=33).map(|p| p.to_string()).collect();
    let text = MINIMAL.replace("[7000, 8000, 9000]", &format!("[{}]", long.join(", ")));
    assert_error(&text, "4:", &["doors.ssh.sequence", "more than 32"]);
    let max: Vec<String> = (1..=32).map(|p| p.to_string()).collect();
    assert!(parse(&MINIMAL.replace("[7000, 8000, 9000]", &format!("[{}]", max.join(", ")))).is_ok());
}

#[test]
fn bad_durations() {
    assert_error(&MINIMAL.replace("30s", "30"), "7:16", &["doors.ssh.open.timeout", "`30` is not a duration", "5s"]);
    assert_error(&MINIMAL.replace("30s", "0s"), "7:16", &["doors.ssh.open.timeout", "out of range"]);
    assert_error(&MINIMAL.replace("30s", "30x"), "7:16", &["doors.ssh.open.timeout", "not a duration"]);
    assert_error(&with_door_line("seq_timeout: 2h"), "5:18", &["doors.ssh.seq_timeout", "out of range"]);
}

#[test]
fn bad_names_and_levels() {
    // Any name a classic knockd.conf section took loads (so --convert's YAML does); its sets get
    // a derived nftables name.
    let spaced = parse(&MINIMAL.replace("  ssh:", "  \"Open rtorrent\":")).unwrap();
    assert_eq!(spaced.doors[0].name, "Open rtorrent");
    assert!(config::nft_name("Open rtorrent").starts_with("Open_rtorrent_"));
    assert_error(&MINIMAL.replace("  ssh:", "  \"s\\ts\":"), "3:3", &["control character"]);
    assert_error(&MINIMAL.replace("  ssh:", &format!("  {}:", "x".repeat(128))), "3:3", &["longer than 127"]);
    // Clients send the name of an SPA or rotating door: it stays a plain identifier.
    let spa =
        "doors:\n  \"my door\":\n    spa: {port: 62201, hmac_key_file: /k}\n    open: {ports: [22], timeout: 5s}\n";
    assert_error(spa, "", &["door `my door`", "not a valid name", "clients send the name"]);
    // `open:` one level too far out reads as a door named `open`: the error says where it goes.
    let misplaced = "doors:\n  ssh:\n    sequence: [7000]\n  open:\n    ports: [22]\n    timeout: 30s\n";
    assert_error(
        misplaced,
        "5:5",
        &["doors.open: `open:` is indented as a door of its own", "indent it under the door"],
    );
    assert_error(
        &format!("nftables: {{table: \"1x\"}}\n{MINIMAL}"),
        "1:19",
        &["nftables.table", "`1x` is not a valid name"],
    );
    assert_error(
        &format!("log: {{level: loud}}\n{MINIMAL}"),
        "1:14",
        &["log.level", "unknown log level `loud`", "debug"],
    );
    assert_error(&format!("interfaces: [\"eth0/1\"]\n{MINIMAL}"), "1:14", &["interfaces[0]", "not an interface name"]);
    assert_error(&format!("interfaces: [averyveryverylongname]\n{MINIMAL}"), "1:14", &["interfaces[0]", "at most 15"]);
}

#[test]
fn doors_are_required_and_unique() {
    assert_error("doors: {}\n", "", &["doors: no doors are defined"]);
    assert_error("log: {level: info}\n", "1:1", &["missing field `doors`"]);
    let twice = format!("{MINIMAL}  ssh:\n    sequence: [1]\n    open: {{ports: [22], timeout: 1s}}\n");
    assert_error(&twice, "", &["doors", "door `ssh` is defined twice"]);
    // A door may only log (or only run commands): `open` is optional.
    let only_logs = parse(&MINIMAL.replace("    open:\n      ports: [22]\n      timeout: 30s\n", "")).unwrap();
    assert_eq!(only_logs.doors[0].open, None);
    // But it needs exactly one knock.
    assert_error(
        "doors:\n  ssh:\n    open: {ports: [22], timeout: 1s}\n",
        "2:3",
        &["door `ssh` has no knock", "sequence:"],
    );
    assert_error(
        "doors:\n  ssh:\n    sequence: [1]\n    one_time_sequences: /etc/x\n",
        "2:3",
        &["door `ssh` has more than one of `sequence`, `one_time_sequences` and `rotating`"],
    );
}

#[test]
fn classic_door_keys_in_yaml() {
    let config = parse(
        r#"
doors:
  ssh:
    one_time_sequences: /etc/knockd/ssh.seq
    target: 198.18.0.1
    start_command: "/usr/sbin/iptables -I INPUT -s %IP% -j ACCEPT"
    command_6: ""
    stop_command: "/usr/sbin/iptables -D INPUT -s %IP% -j ACCEPT"
    stop_command_6: "echo '%IP%: done'"
    cmd_timeout: 0s
"#,
    )
    .unwrap();
    let d = &config.doors[0];
    assert_eq!(d.sequence(), Some(&Proof::new(OneTimeFile("/etc/knockd/ssh.seq".into()))));
    assert_eq!(d.target, Some("198.18.0.1".parse().unwrap()));
    assert_eq!(d.commands.start_for(false), Some("/usr/sbin/iptables -I INPUT -s %IP% -j ACCEPT"));
    assert_eq!(d.commands.start_for(true), None, "an empty _6 command means do nothing for IPv6");
    assert_eq!(d.commands.stop_for(true), Some("echo '%IP%: done'"));
    assert_eq!(d.commands.cmd_timeout, Duration::ZERO);
    assert_error(&with_door_line("target: nowhere"), "5:13", &["doors.ssh.target", "invalid IP"]);
    assert_error(&with_door_line("command: \"a\\nb\""), "5:14", &["doors.ssh.command", "one line"]);
}

#[test]
fn tcp_flag_errors() {
    assert_error(&with_door_line("tcp_flags: xmas"), "5:16", &["doors.ssh.tcp_flags", "unknown TCP flag `xmas`"]);
    // An unquoted `!ack` is a YAML tag: the message says to quote it.
    assert_error(
        &with_door_line("tcp_flags: !ack"),
        "5:16",
        &["doors.ssh.tcp_flags", "`!ack` reads as a YAML tag: quote it, like \"!ack\""],
    );
    assert_error(&with_door_line("tcp_flags: \"syn,!syn\""), "5:16", &["both required and forbidden"]);
}

#[test]
fn wrong_types_and_syntax() {
    assert_error(&MINIMAL.replace("[7000, 8000, 9000]", "7000"), "4:15", &["doors.ssh.sequence", "invalid type"]);
    assert_error("doors: [ssh]\n", "1:8", &["doors", "invalid type"]);
    assert_error("doors:\n  ssh: {sequence: [1\n", "", &["did not find expected"]);
    assert_error("", "", &["missing field `doors`"]);
}

/// A billion-laughs document: ten to the ninth strings if expanded. The typed schema rejects
/// the first expanded element, so it fails at once instead of eating memory.
#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("interfaces:\n  - &a [x, x, x, x, x, x, x, x, x, x]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 10].join(", ");
        text.push_str(&format!("  - &{} [{refs}]\n", pair[1]));
    }
    text.push_str(MINIMAL);
    assert_error(&text, "2:5", &["interfaces[0]", "invalid type"]);
}

#[test]
fn unreadable_and_huge_files() {
    let missing = config::load(std::path::Path::new("/nonexistent/knockd.yaml"), &Kinds).unwrap_err().to_string();
    assert!(missing.starts_with("/nonexistent/knockd.yaml: cannot read the config"), "{missing}");
    let dir = TempDir::new("config-test");
    let huge = dir.write("huge.yaml", "#".repeat(2 << 20));
    let message = config::load(&huge, &Kinds).unwrap_err().to_string();
    assert!(message.contains("larger than"), "{message}");
}

#[test]
fn files_others_can_write_are_refused() {
    let dir = TempDir::new("perms");
    let path = dir.write_mode("knockd.yaml", MINIMAL, 0o666);
    let world = config::load(&path, &Kinds).unwrap_err().to_string();
    set_mode(&path, 0o600);
    let private = config::load(&path, &Kinds);
    let seqs = dir.write_mode("seqs", "1,2\n", 0o646);
    let secret = knockd::doors::sequence::one_time::current(&mut knockd::store::FileStore::default(), &seqs)
        .unwrap_err()
        .to_string();
    // A directory is no config either.
    let dir_error = config::load(dir.path(), &Kinds).unwrap_err().to_string();
    assert!(world.contains("refusing to use it: it is writable by every user (mode 666): run `chmod o-w"), "{world}");
    assert!(private.is_ok());
    assert!(secret.contains("refusing to use it") && secret.contains("writable by every user"), "{secret}");
    assert!(dir_error.contains("cannot read the config"), "{dir_error}");
}

#[test]
fn relative_paths_are_anchored_where_the_daemon_started() {
    let mut config = parse(
        r#"
log: {file: knockd.log}
pidfile: run/knockd.pid
state_dir: state
control_socket: /run/knockd/control
metrics: {textfile: metrics/knockd.prom}
doors:
  once:
    one_time_sequences: once.seq
    open: {ports: [22], timeout: 30s}
  turn:
    rotating: {secret_files: [keys/alice, /etc/knockd/bob]}
    open: {ports: [22], timeout: 30s}
  spa:
    spa: {port: 62201, hmac_key_file: keys/hmac, public_keys: [keys/carol.pub]}
    open: {ports: [22], timeout: 30s}
  fwknop:
    fwknop: {key_file: keys/fwknop.key, hmac_key_file: keys/fwknop.hmac}
    open: {timeout: 30s}
"#,
    )
    .unwrap();
    config.anchor_paths(std::path::Path::new("/srv/gate"));
    let at = |p: &str| std::path::PathBuf::from(p);
    assert_eq!(config.log.file, Some(at("/srv/gate/knockd.log")));
    assert_eq!(config.pidfile, Some(at("/srv/gate/run/knockd.pid")));
    assert_eq!(config.state_dir, at("/srv/gate/state"));
    assert_eq!(config.control_socket, Some(at("/run/knockd/control")), "an absolute path stays as it is");
    assert_eq!(config.metrics_textfile, Some(at("/srv/gate/metrics/knockd.prom")));
    let files: Vec<&str> = config.door_files().iter().map(|p| p.to_str().unwrap()).collect();
    assert_eq!(
        files,
        [
            "/srv/gate/once.seq",
            "/srv/gate/keys/alice",
            "/etc/knockd/bob",
            "/srv/gate/keys/hmac",
            "/srv/gate/keys/carol.pub",
            "/srv/gate/keys/fwknop.key",
            "/srv/gate/keys/fwknop.hmac"
        ]
    );
}

#[test]
fn a_door_with_both_a_sequence_and_fwknop_is_refused() {
    // A completed knock would open nothing there: fwknop's grants name ports, knocks do not.
    for sequence in ["sequence: [7000]", "rotating: {secret_file: s}", "one_time_sequences: once.seq"] {
        let text = format!(
            "doors:\n  gate:\n    {sequence}\n    fwknop: {{key_file: k, hmac_key_file: h}}\n    open: {{timeout: 30s}}\n"
        );
        let e = error(&text);
        assert!(e.contains("door `gate` has both a knock sequence and `fwknop`") && e.contains("two doors"), "{e}");
    }
}

#[test]
fn the_run_user_is_knockd_and_never_nobody() {
    assert_eq!(parse(MINIMAL).unwrap().user, "knockd");
    let e = error(&format!("user: nobody\n{MINIMAL}"));
    assert!(e.contains("`nobody` is shared by other services") && e.contains("useradd --system"), "{e}");
    assert_eq!(parse(&format!("user: gatekeeper\n{MINIMAL}")).unwrap().user, "gatekeeper");
}

#[test]
fn commands_may_be_given_every_privilege() {
    use config::CommandPrivileges;
    assert_eq!(parse(MINIMAL).unwrap().command_privileges, CommandPrivileges::Network);
    let full = parse(&format!("commands: {{privileges: full}}\n{MINIMAL}")).unwrap();
    assert_eq!(full.command_privileges, CommandPrivileges::Full);
    let yaml = config::convert::to_yaml(&full);
    assert!(yaml.contains("commands:\n  privileges: full"), "{yaml}");
    assert_eq!(config::yaml::parse("again.yaml", &yaml, &Kinds).unwrap(), full, "--convert keeps it");
    assert_error(
        &format!("commands: {{privileges: root}}\n{MINIMAL}"),
        "1:",
        &["commands.privileges", "`root` is not a privilege level", "`full`"],
    );
}

#[test]
fn forward_doors_and_fw4() {
    let yaml = "nftables: {fw4: {zone: wan}}\ndoors:\n  nas:\n    sequence: [7801]\n    open:\n      forward:\n        - {port: 2522/tcp, to: \"192.168.1.10:22\"}\n        - {to: \"[2001:db8:8::10]:53/udp\"}\n      timeout: 60s\n";
    let config = knockd::config::yaml::parse("knockd.yaml", yaml, &Kinds).unwrap();
    assert_eq!(config.fw4.as_ref().map(|f| f.zone.as_str()), Some("wan"));
    let open = config.doors[0].open.as_ref().unwrap();
    assert_eq!(open.forward.len(), 2);
    assert_eq!(open.forward[0].to_string(), "2522/tcp to 192.168.1.10:22");
    assert_eq!(open.forward[1].to_string(), "to [2001:db8:8::10]:53/udp");
    // Written back, it reads the same.
    let again = knockd::config::yaml::parse("again.yaml", &knockd::config::convert::to_yaml(&config), &Kinds).unwrap();
    assert_eq!(again.doors[0].open, config.doors[0].open);
    assert_eq!(again.fw4, config.fw4);
}

#[test]
fn forward_mistakes_say_what_to_write() {
    let door = |open: &str| format!("doors:\n  nas:\n    sequence: [7801]\n    open: {open}\n");
    assert_error(&door("{forward: [{to: \"192.168.1.10\"}], timeout: 1m}"), "", &["write 192.168.1.10:22"]);
    assert_error(
        &door("{forward: [{port: 2522/udp, to: \"192.168.1.10:22/tcp\"}], timeout: 1m}"),
        "",
        &["a forward keeps its protocol"],
    );
    assert_error(
        &door("{forward: [{to: \"192.168.1.10:22\"}], set: {table: filter, ipv4: x}, timeout: 1m}"),
        "",
        &["`forward` needs knockd's own sets"],
    );
    assert_error(
        &format!("nftables: {{table: fw4}}\n{MINIMAL}"),
        "",
        &["another firewall's table", "nftables: {fw4: {zone: wan}}"],
    );
}
