//! The classic knockd.conf loader, format detection and `--convert`.

mod util;

use std::path::Path;
use std::time::Duration;

use knockd::config::{self, Config, Format, PortProto, Proof, TcpFlags, convert, tcp_flag};
use knockd::doors::Kinds;
use knockd::doors::sequence::{OneTimeFile, SequenceDoor, knockd_conf};

/// Debian's default /etc/knockd.conf for knockd 0.8, unchanged.
const DEBIAN_DEFAULT: &str = include_str!("fixtures/debian-knockd.conf");

/// Every directive of knockd 0.8, in mixed case, with aliases and comments.
const EVERY_DIRECTIVE: &str = "# all of it
[Options]
    UseSyslog
    LogFile = /var/log/knockd.log
    PidFile = /run/knockd.pid
    Interface = eth0
[opencloseSSH]
    Sequence = 2222:udp,3333:tcp,4444
    Seq_Timeout = 15
    TCPFlags = syn,!ack
    Start_Command = /sbin/iptables -A INPUT -s %IP% -p tcp --syn --dport 22 -j ACCEPT
    Start_Command_6 = /sbin/ip6tables -A INPUT -s %IP% -p tcp --syn --dport 22 -j ACCEPT
    Cmd_Timeout = 10
    Stop_Command = /sbin/iptables -D INPUT -s %IP% -p tcp --syn --dport 22 -j ACCEPT
    Stop_Command_6 = /sbin/ip6tables -D INPUT -s %IP% -p tcp --syn --dport 22 -j ACCEPT
    Target = 198.18.0.1
[onetime]
    one_time_sequences = /etc/knockd/onetime.seq
    TIMEOUT = 3
    COMMAND = logger knock from %IP%
    COMMAND_6 =
";

fn parse(text: &str) -> Config {
    knockd_conf::parse("knockd.conf", text).unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> String {
    knockd_conf::parse("knockd.conf", text).unwrap_err().to_string()
}

#[test]
fn the_debian_default_loads_unchanged() {
    let config = parse(DEBIAN_DEFAULT);
    assert!(config.log.syslog);
    let names: Vec<&str> = config.doors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["openSSH", "closeSSH", "openHTTPS"]);
    let open = &config.doors[0];
    assert_eq!(
        open.sequence(),
        Some(&util::fixed(&[PortProto::tcp(7000), PortProto::tcp(8000), PortProto::tcp(9000)]))
    );
    assert_eq!(open.seq_timeout, Duration::from_secs(5));
    assert_eq!(open.tcp_flags, TcpFlags { set: tcp_flag::SYN, clear: 0 });
    assert_eq!(open.commands.start_for(false), Some("/sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT"));
    assert_eq!(open.commands.start_for(true), open.commands.start_for(false), "IPv6 falls back to the IPv4 command");
    assert_eq!(open.commands.stop_for(false), None);
    assert_eq!(open.open, None, "a classic door opens nothing through nftables");
    assert_eq!(config.doors[2].fixed_sequence().unwrap().len(), 4);
}

#[test]
fn every_directive() {
    let config = parse(EVERY_DIRECTIVE);
    assert_eq!(config.log.file.as_deref(), Some(Path::new("/var/log/knockd.log")));
    assert_eq!(config.pidfile.as_deref(), Some(Path::new("/run/knockd.pid")));
    assert_eq!(config.interfaces, ["eth0"]);
    let d = &config.doors[0];
    assert_eq!(d.name, "opencloseSSH");
    assert_eq!(d.sequence(), Some(&util::fixed(&[PortProto::udp(2222), PortProto::tcp(3333), PortProto::tcp(4444)])));
    assert_eq!(d.seq_timeout, Duration::from_secs(15));
    assert_eq!(d.tcp_flags, TcpFlags { set: tcp_flag::SYN, clear: tcp_flag::ACK });
    assert!(d.commands.start_for(true).unwrap().starts_with("/sbin/ip6tables -A"));
    assert!(d.commands.stop_for(false).unwrap().starts_with("/sbin/iptables -D"));
    assert!(d.commands.stop_for(true).unwrap().starts_with("/sbin/ip6tables -D"));
    assert_eq!(d.commands.cmd_timeout, Duration::from_secs(10));
    assert_eq!(d.target, Some("198.18.0.1".parse().unwrap()));
    let one = &config.doors[1];
    assert_eq!(one.sequence(), Some(&Proof::new(OneTimeFile("/etc/knockd/onetime.seq".into()))));
    assert_eq!(one.seq_timeout, Duration::from_secs(3), "TIMEOUT is an alias of Seq_Timeout");
    assert_eq!(one.commands.start_for(false), Some("logger knock from %IP%"));
    assert_eq!(one.commands.start_for(true), None, "an empty Command_6 means nothing for IPv6");
}

#[test]
fn errors_name_the_line_and_the_fix() {
    let cases: [(&str, &str, &[&str]); 15] = [
        // Found by fuzzing: a bound the YAML loader rejects, so --convert produced YAML that did not load.
        ("[ssh]\nsequence = 1\nseq_timeout = 53500\n", "knockd.conf:3:1", &["[ssh] seq_timeout", "out of range", "1h"]),
        (
            "[ssh]\nsequence = 1,2\nsequense = 3\n",
            "knockd.conf:3:1",
            &["[ssh] sequense", "unknown directive", "Sequence"],
        ),
        (
            "[options]\nLogLevel = 3\n[ssh]\nsequence=1\n",
            "knockd.conf:2:1",
            &["unknown option `LogLevel`", "UseSyslog"],
        ),
        ("sequence = 1\n", "knockd.conf:1:1", &["must be inside a section"]),
        ("[ssh]\nsequence = 1,0\n", "knockd.conf:2:1", &["[ssh] sequence", "port 0 is out of range"]),
        ("[ssh]\nsequence = 1,70000\n", "knockd.conf:2:1", &["70000"]),
        ("[ssh]\nsequence = 1:icmp\n", "knockd.conf:2:1", &["unknown protocol `icmp`"]),
        (
            "[ssh]\nsequence = 1\nseq_timeout = soon\n",
            "knockd.conf:3:1",
            &["[ssh] seq_timeout", "not a number of seconds"],
        ),
        ("[ssh]\nsequence = 1\nseq_timeout = 0\n", "knockd.conf:3:1", &["can never be met"]),
        ("[ssh]\nsequence = 1\ntcpflags = syn,xmas\n", "knockd.conf:3:1", &["unknown TCP flag `xmas`"]),
        ("[ssh]\nsequence = 1\ntarget = host\n", "knockd.conf:3:1", &["`host` is not an IP address"]),
        ("[ssh]\nseq_timeout = 5\n", "knockd.conf:1:1", &["[ssh]", "empty knock sequence"]),
        ("[ssh]\nsequence = 7000/udp\n", "knockd.conf:2:1", &["`7000:udp`", "TCP port 7000", "write `7000`"]),
        ("[ssh]\nsequence = 7000,x\n", "knockd.conf:2:1", &["`x` is not a port", "followed by :tcp or :udp"]),
        (
            "[ssh]\nsequence = {{ knock_sequence }}\n",
            "knockd.conf:2:1",
            &["`{{ knock_sequence }}` is not a port", "template placeholder", "port 0"],
        ),
    ];
    for (text, place, parts) in cases {
        let message = error(text);
        assert!(message.starts_with(place), "`{place}` is not where `{message}` starts");
        for part in parts {
            assert!(message.contains(part), "`{part}` missing from `{message}`");
        }
    }
    assert!(error("[options]\nUseSyslog\n").contains("no doors"));
    assert!(error("[ssh]\nsequence\n").contains("`sequence` needs a value"));
    let long: Vec<String> = (1..=33).map(|p| p.to_string()).collect();
    assert!(error(&format!("[ssh]\nsequence = {}\n", long.join(","))).contains("more than 32"));
}

/// The section names classic knockd.conf files use load unchanged: the name as written for logs
/// and status, and a valid, distinct nftables name for sets, the same on every load.
#[test]
fn classic_section_names_load_with_valid_distinct_stable_set_names() {
    let forty = "a".repeat(40);
    let text = format!(
        "[Open rtorrent]\nsequence = 1\n[2nd door]\nsequence = 2\n[{forty}]\nsequence = 3\n\
         [Open.rtorrent]\nsequence = 4\n[Open_rtorrent]\nsequence = 5\n"
    );
    let config = parse(&text);
    let names: Vec<&str> = config.doors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["Open rtorrent", "2nd door", forty.as_str(), "Open.rtorrent", "Open_rtorrent"]);
    assert!(config.notices.is_empty(), "{:?}", config.notices);
    let nft: Vec<String> = config.doors.iter().map(|d| config::nft_name(&d.name).into_owned()).collect();
    for name in &nft {
        assert!(config::check_identifier(name, 32).is_ok(), "{name}");
    }
    let mut distinct = nft.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), nft.len(), "{nft:?}");
    assert_eq!(nft[4], "Open_rtorrent", "an identifier keeps its name");
    let again: Vec<String> = parse(&text).doors.iter().map(|d| config::nft_name(&d.name).into_owned()).collect();
    assert_eq!(again, nft, "stable across loads");
    // --convert keeps the names, and the YAML loads back.
    let yaml = convert::to_yaml(&config);
    assert_eq!(config::yaml::parse("converted.yaml", &yaml, &Kinds).unwrap(), config, "{yaml}");
    // A name made to look like another door's derived name is refused, not merged.
    let clash = format!("[Open rtorrent]\nsequence = 1\n[{}]\nsequence = 2\n", nft[0]);
    assert!(error(&clash).contains("would share nftables sets: rename one"), "{}", error(&clash));
    assert!(error(&format!("[{}]\nsequence = 1\n", "b".repeat(128))).contains("longer than 127"));
}

/// The classic daemon takes a name twice (two doors), and only exactly `[options]`: both load,
/// each with a warning that says what it means and how to say it plainly.
#[test]
fn duplicate_names_and_options_in_another_case_load_with_a_warning() {
    let config = parse("[ssh]\nsequence = 1\n[ssh]\nsequence = 2\n[ssh]\nsequence = 3\n");
    let names: Vec<&str> = config.doors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["ssh", "ssh (2)", "ssh (3)"]);
    assert_eq!(config.notices.len(), 2, "{:?}", config.notices);
    assert!(
        config.notices[0].message.starts_with("knockd.conf:3: a second door is named [ssh]: it is called `ssh (2)`")
    );
    let options = parse("[Options]\nLogFile = /var/log/knockd.log\n[ssh]\nsequence = 1\n");
    assert_eq!(options.log.file.as_deref(), Some(Path::new("/var/log/knockd.log")));
    assert_eq!(options.doors.len(), 1);
    assert!(options.notices[0].message.contains("[Options] is read as [options]"), "{:?}", options.notices);
    assert!(parse(DEBIAN_DEFAULT).notices.is_empty());
}

#[test]
fn format_is_detected_from_name_or_content() {
    assert_eq!(config::detect(Path::new("/etc/knockd.conf"), DEBIAN_DEFAULT), Format::KnockdConf);
    assert_eq!(config::detect(Path::new("/etc/knockd.conf"), EVERY_DIRECTIVE), Format::KnockdConf);
    assert_eq!(config::detect(Path::new("/etc/knockd.conf"), "doors:\n  a: {sequence: [1]}\n"), Format::Yaml);
    assert_eq!(config::detect(Path::new("/etc/knockd.yml"), "[options]\n"), Format::Yaml);
    assert_eq!(config::detect(Path::new("knockd"), "[ssh]\nsequence = 1\n"), Format::KnockdConf);
}

/// Inputs the fuzzer found, replayed: each is an error or converts to YAML that loads back equal.
#[test]
fn fuzz_findings_stay_fixed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions/knockd_conf");
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = String::from_utf8_lossy(&std::fs::read(entry.unwrap().path()).unwrap()).into_owned();
        if let Ok(mut classic) = knockd_conf::parse("fuzz.conf", &text) {
            classic.notices.clear();
            let yaml = convert::to_yaml(&classic);
            assert_eq!(config::yaml::parse("converted.yaml", &yaml, &Kinds).unwrap(), classic, "{yaml}");
        }
    }
}

#[test]
fn convert_gives_yaml_that_loads_back_equal() {
    for text in [DEBIAN_DEFAULT, EVERY_DIRECTIVE] {
        let mut classic = parse(text);
        // Warnings are about how the knockd.conf is written; the YAML says it plainly.
        classic.notices.clear();
        let yaml = convert::to_yaml(&classic);
        assert!(yaml.contains("format: classic"), "{yaml}");
        let back = config::yaml::parse("converted.yaml", &yaml, &Kinds).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(back, classic, "{yaml}");
    }
    let example = config::load(&util::repo("knockd.yaml"), &Kinds).unwrap();
    let yaml = convert::to_yaml(&example);
    assert_eq!(config::yaml::parse("again.yaml", &yaml, &Kinds).unwrap(), example, "{yaml}");
    assert!(yaml.contains("sequence:\n    - 7000"), "{yaml}");
}

#[test]
fn trailing_comments_and_use_syslog_as_the_classic_daemon_reads_them() {
    let c = parse(
        "[options]\n logfile = /var/log/knockd.log   # where\n[ssh]\n sequence = 7000,8000 # the knock\n seq_timeout = 5 # seconds\n command = echo %IP% '#not a comment'\n",
    );
    let door = &c.doors[0];
    assert_eq!(door.seq_timeout, std::time::Duration::from_secs(5));
    assert_eq!(door.fixed_sequence().unwrap().len(), 2);
    assert_eq!(door.commands.start.as_deref(), Some("echo %IP% '#not a comment'"), "commands keep their #");
    assert_eq!(c.log.file.as_deref(), Some(std::path::Path::new("/var/log/knockd.log")));
    assert!(!c.log.syslog, "LogFile without UseSyslog: a file, no syslog");
    let yaml = knockd::config::convert::to_yaml(&c);
    assert!(yaml.contains("syslog: false"), "{yaml}");
    assert!(parse("[options]\n UseSyslog # yes\n logfile = /l\n[ssh]\n sequence = 1\n").log.syslog);
    assert!(parse("[ssh]\n sequence = 1\n").log.syslog, "neither: syslog rather than no log at all");
}
