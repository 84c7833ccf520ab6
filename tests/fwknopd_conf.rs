//! fwknopd.conf beside an access.conf (or named with `--fwknopd-conf`), in the shapes of
//! fwknop's own test configs (written here): what maps onto knockd is honoured, with the stock
//! client's packets to show it; every other key is named in a warning.

mod util;

use std::time::Duration;

use knockd::config::{self, LoadOptions, PortProto};
use knockd::doors::Kinds;
use knockd::doors::fwknop::FwknopDoor;
use util::TempDir;
use util::fwknop::*;

/// Loads dir/access.conf (one stanza for tcp/22) with `fwknopd` as the fwknopd.conf beside it.
fn with(dir: &TempDir, fwknopd: &str) -> config::Config {
    dir.write_private("fwknopd.conf", fwknopd);
    let access = dir.write_private("access.conf", stanza("ANY", "OPEN_PORTS tcp/22"));
    config::load(&access, &Kinds).unwrap_or_else(|e| panic!("{e}"))
}

fn warnings(c: &config::Config) -> Vec<&str> {
    c.notices.iter().filter(|n| n.level == log::Level::Warn).map(|n| n.message.as_str()).collect()
}

#[test]
fn the_debian_default_all_comments_changes_nothing() {
    let dir = TempDir::new("fwknopd-default");
    let text = "#\n# fwknopd.conf\n#\n# PCAP_INTF                   eth0;\n#ENABLE_SPA_PACKET_AGING     Y;\n\n";
    let c = with(&dir, text);
    assert!(c.notices.is_empty(), "{:?}", c.notices);
    assert!(c.interfaces.is_empty());
    assert_eq!(c.included, [dir.join("fwknopd.conf")], "read again on reload");
}

#[test]
fn interface_port_age_and_verbosity_are_honoured() {
    let dir = TempDir::new("fwknopd-mapped");
    let c =
        with(&dir, "PCAP_INTF    kd-veth1;\nPCAP_FILTER  udp dst port 62203;\nMAX_SPA_PACKET_AGE 60;\nVERBOSE 1;\n");
    assert!(warnings(&c).is_empty(), "{:?}", c.notices);
    assert_eq!(c.interfaces, ["kd-veth1"]);
    assert_eq!(c.log.level, log::LevelFilter::Debug);
    let f = c.doors[0].fwknop().unwrap();
    assert_eq!((f.port, f.window), (62203, Duration::from_secs(60)));
    let summary = &c.notices.last().unwrap().message;
    assert!(summary.contains("fwknopd.conf: honoured PCAP_INTF (listening on kd-veth1), PCAP_FILTER"), "{summary}");

    let mut doors = kind_of(c, &dir.join("state"));
    let mut ports = Vec::new();
    doors.ports(&mut ports);
    assert_eq!(ports, [PortProto::udp(62203)]);
    let ssh = ssh();
    let r = rejection(&send_to(doors.as_mut(), "198.18.0.7", 62203, ssh.packet, ssh.timestamp + 90));
    assert!(r.contains("timestamp -90s away"), "older than MAX_SPA_PACKET_AGE: {r}");
    assert_eq!(granted(&send_to(doors.as_mut(), "198.18.0.7", 62203, ssh.packet, ssh.timestamp + 50)).0, 0);

    // Wider than fwknop's default of 120 s, too.
    let c = with(&dir, "MAX_SPA_PACKET_AGE 600;\n");
    let mut doors = kind_of(c, &dir.join("state-600"));
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp + 300)).0, 0, "5 min old");
}

#[test]
fn a_filter_knockd_cannot_read_and_the_udp_server_port() {
    let dir = TempDir::new("fwknopd-filter");
    let c = with(&dir, "PCAP_FILTER udp port 62201 or icmp;\n");
    let [warning] = warnings(&c)[..] else { panic!("{:?}", c.notices) };
    assert!(warning.contains("fwknopd.conf:1: PCAP_FILTER: `udp port 62201 or icmp` is not honoured"), "{warning}");
    assert_eq!(c.doors[0].fwknop().unwrap().port, 62201);
    let c = with(&dir, "ENABLE_UDP_SERVER Y;\nUDPSERV_PORT 62210;\nPCAP_FILTER udp port 1;\n");
    assert_eq!(c.doors[0].fwknop().unwrap().port, 62210);
    assert!(c.notices[0].message.contains("PCAP_FILTER: not used, as in fwknopd: ENABLE_UDP_SERVER is Y"));
}

/// fwknop's disable-aging shape: knockd keeps checking the age (its replay cache needs it) but
/// takes the widest window it has, and says so.
#[test]
fn aging_turned_off_is_the_widest_window_and_a_warning() {
    let dir = TempDir::new("fwknopd-aging");
    let c = with(&dir, "MAX_SPA_PACKET_AGE 30;\nENABLE_SPA_PACKET_AGING         N;\n");
    let [warning] = warnings(&c)[..] else { panic!("{:?}", c.notices) };
    assert!(
        warning.contains("ENABLE_SPA_PACKET_AGING: N is not honoured: knockd checks every packet's age"),
        "{warning}"
    );
    assert_eq!(c.doors[0].fwknop().unwrap().window, Duration::from_secs(3600));
    assert!(c.notices[0].message.contains("MAX_SPA_PACKET_AGE: not used, as in fwknopd: ENABLE_SPA_PACKET_AGING is N"));
    let mut doors = kind_of(c, &dir.join("state"));
    let ssh = ssh();
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp + 1800)).0, 0, "30 min old");
}

/// Every key knockd does not honour is named, with why; set to what knockd does, it is not.
#[test]
fn every_key_not_honoured_is_named() {
    let dir = TempDir::new("fwknopd-keys");
    let text = "ENABLE_DESTINATION_RULE           Y;\nENABLE_DIGEST_PERSISTENCE N;\nENABLE_PCAP_PROMISC Y;\n\
                IPT_INPUT_ACCESS ACCEPT, filter, INPUT, 1, FWKNOP_INPUT, 1;\nFLUSH_IPT_AT_INIT N;\nLOCALE C;\n\
                SYSLOG_FACILITY LOG_LOCAL7;\nDIGEST_FILE /var/run/fwknop/digest.cache;\nGPG_HOME_DIR /root/.gnupg;\n\
                PCAP_LOOP_SLEEP 10000;\nFWKNOP_PID_FILE $FWKNOP_RUN_DIR/fwknopd.pid;\nNO_SUCH_KEY 1;\n\
                ENABLE_DIGEST_PERSISTENCE Y;\nENABLE_PCAP_ANY_DIRECTION N;\nENABLE_TCP_SERVER N;\nTCPSERV_PORT 62201;\n";
    let c = with(&dir, text);
    let said = warnings(&c);
    let keys = [
        ("ENABLE_DESTINATION_RULE", "Y is not honoured: knockd's grants open the port on every address"),
        ("ENABLE_DIGEST_PERSISTENCE", "N is not honoured: knockd keeps its replay cache on disk"),
        ("ENABLE_PCAP_PROMISC", "never listens promiscuously"),
        ("IPT_INPUT_ACCESS", "knockd writes its own nftables table"),
        ("FLUSH_IPT_AT_INIT", "knockd writes its own nftables table"),
        ("LOCALE", "not honoured"),
        ("SYSLOG_FACILITY", "SyslogFacility="),
        ("DIGEST_FILE", "fwknop.replay"),
        ("GPG_HOME_DIR", "no GPG packets"),
        ("PCAP_LOOP_SLEEP", "has no such setting"),
        ("FWKNOP_PID_FILE", "-p"),
        ("NO_SUCH_KEY", "unknown key"),
    ];
    assert_eq!(said.len(), keys.len(), "{said:#?}");
    for ((key, why), line) in keys.iter().zip(&said) {
        assert!(line.contains(&format!(": {key}: ")) && line.contains(why), "{key}: {line}");
    }
    assert!(c.notices.iter().any(|n| n.message.contains("TCPSERV_PORT: not used, as in fwknopd")));
}

/// Forwarding is honoured (FORCE_NAT stanzas, fwknop -N against a door's forwards); local NAT
/// and SNAT are read and named, not honoured. A NAT request to a stanza that forwards nothing
/// is refused by name.
#[test]
fn nat_settings_are_read_and_named_not_honoured() {
    let dir = TempDir::new("fwknopd-nat");
    let c = with(
        &dir,
        "ENABLE_IPT_FORWARDING Y;\nENABLE_IPT_LOCAL_NAT Y;\nENABLE_IPT_SNAT Y;\nSNAT_TRANSLATE_IP 198.18.0.1;\n",
    );
    let nat = &c.doors[0].fwknop().unwrap().nat;
    assert!(nat.forwarding && nat.local_nat && nat.snat);
    assert_eq!(nat.snat_translate_ip, "198.18.0.1".parse().ok());
    let said = warnings(&c);
    assert_eq!(said.len(), 3, "{said:?}");
    assert!(said.iter().all(|w| w.contains("not honoured: knockd forwards with DNAT only")), "{said:?}");
    assert!(c.notices.iter().any(|n| n.message.contains("ENABLE_IPT_FORWARDING")), "honoured, and said");
    let mut doors = kind_of(c, &dir.join("state"));
    let (sent, nat) = more("nat");
    let why = rejection(&send(doors.as_mut(), "198.18.0.7", nat, sent));
    assert!(why.contains("(fwknop -N), and the stanza forwards nothing"), "{why}");
}

#[test]
fn named_with_fwknopd_conf_and_only_with_an_access_conf() {
    let dir = TempDir::new("fwknopd-named");
    let named = dir.write_private("elsewhere/server.conf", "PCAP_INTF kd-eth9;\n");
    let access = dir.write_private("access.conf", stanza("ANY", "OPEN_PORTS tcp/22"));
    let options = LoadOptions { start_dir: None, fwknopd_conf: Some(named.clone()), ..Default::default() };
    assert_eq!(config::load_with(&access, &options, &Kinds).unwrap().interfaces, ["kd-eth9"]);
    let yaml = dir.write_private("knockd.yaml", "doors:\n  a: {sequence: [7000], open: {ports: [22], timeout: 30s}}\n");
    let error = config::load_with(&yaml, &options, &Kinds).unwrap_err().to_string();
    assert!(error.contains("fwknopd.conf goes with fwknopd's access.conf"), "{error}");
    // The named file with another text: the error names its line and value.
    let error = |text: &str| {
        dir.write_private("elsewhere/server.conf", text);
        config::load_with(&access, &options, &Kinds).unwrap_err().to_string()
    };
    let bad = error("MAX_SPA_PACKET_AGE soon;\n");
    assert!(bad.contains("server.conf:1:1: MAX_SPA_PACKET_AGE: `soon` is not a number"), "{bad}");
    let bad = error("PCAP_INTF eth0-that-is-far-too-long;\n");
    assert!(bad.contains("server.conf:1:1: PCAP_INTF: `eth0-that-is-far-too-long` is not an interface"), "{bad}");
}
