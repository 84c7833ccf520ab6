//! What the fwknop tests share: the stock client's packets (tests/fixtures/fwknop, built by
//! Debian's fwknop-client 2.6.10 with `-T -B`), their keys, and a door kind to send the
//! packets to.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use knockd::config::{Config, PortProto, Proto};
use knockd::doors::fwknop::HmacDigest;
use knockd::doors::{Clock, DoorKind, Note, Outcomes, fwknop};
use knockd::store::FileStore;

/// The keys every fixture packet was built with.
pub const KEY: &str = "aiAWG9B/dq+7bUR12Zrw4d4UBHVrZmeMTrEfP31C2kw=";
pub const HMAC_KEY: &str = "eD+riu6fYSbODfJFHEbjnD8BBrMMpSsHVw9lvYtAugoCiGf7WRmsRio3SdXVgi/TvpTG6xN8EO/c+ldSc+8zxg==";
/// Another key, which verifies none of them.
pub const OTHER_KEY: &str = "c2VjcmV0LWJ1dC1ub3QtdGhlLW9uZQ";
const PACKETS: &str = include_str!("../fixtures/fwknop/packets.txt");
const MORE: &str = include_str!("../fixtures/fwknop/more.txt");

/// One line of packets.txt: what the client was asked for, and what it built.
pub struct Case {
    pub name: &'static str,
    pub hmac: HmacDigest,
    pub digest: HmacDigest,
    pub timestamp: u64,
    pub user: &'static str,
    pub allow: Option<IpAddr>,
    pub ports: Vec<PortProto>,
    pub timeout: Option<u32>,
    pub packet: &'static str,
}

pub fn cases() -> Vec<Case> {
    PACKETS
        .lines()
        .map(|line| {
            let f: Vec<&'static str> = line.split(' ').collect();
            let ports = f[6]
                .split(',')
                .map(|p| {
                    let (proto, port) = p.split_once('/').unwrap();
                    PortProto::new(port.parse().unwrap(), if proto == "tcp" { Proto::Tcp } else { Proto::Udp })
                })
                .collect();
            Case {
                name: f[0],
                hmac: HmacDigest::parse(f[1]).unwrap(),
                digest: HmacDigest::parse(f[2]).unwrap(),
                timestamp: f[3].parse().unwrap(),
                user: f[4],
                allow: Some(f[5].parse().unwrap()).filter(|a: &IpAddr| !a.is_unspecified()),
                ports,
                timeout: f[7].parse().ok(),
                packet: f[8],
            }
        })
        .collect()
}

/// The plain request for tcp/22 from alice, for 198.18.0.2 (SHA-256 HMAC and digest).
pub fn ssh() -> Case {
    cases().into_iter().find(|c| c.name == "hmac-sha256").unwrap()
}

/// A packet of more.txt, by name (web: tcp/80; ecb, cfb: other modes; command; nat), with
/// its timestamp. All for 198.18.0.2, with SHA-256 HMAC.
pub fn more(name: &str) -> (u64, &'static str) {
    let line = MORE.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("{name}"));
    let f: Vec<&'static str> = line.split(' ').collect();
    (f[1].parse().unwrap(), f[2])
}

/// A stanza with the fixtures' keys and the lines `extra`.
pub fn stanza(source: &str, extra: &str) -> String {
    format!("SOURCE {source}\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC_KEY}\n{extra}\n")
}

/// The fwknop door kind of `config`, keeping its state in `state`.
pub fn kind_of(mut config: Config, state: &Path) -> Box<dyn DoorKind> {
    // The daemon makes its state directory at start; here the test does.
    std::fs::create_dir_all(state).unwrap();
    config.state_dir = state.to_owned();
    fwknop::build(&config, &mut FileStore::default()).unwrap().expect("fwknop doors")
}

/// The door kind of an access.conf text, keeping its state in `state`.
pub fn kind(text: &str, state: &super::TempDir) -> Box<dyn DoorKind> {
    kind_of(knockd::doors::fwknop::access_conf::parse("access.conf", text).unwrap(), state.path())
}

/// Sends `packet` from `src` to 198.18.0.1, UDP port `port`, at Unix time `unix`; what came of it.
pub fn send_to(kind: &mut dyn DoorKind, src: &str, port: u16, packet: &str, unix: u64) -> Outcomes {
    let mut out = Outcomes::default();
    let src: IpAddr = src.parse().unwrap();
    let knock = knockd::packet::Knock::new(src, "198.18.0.1".parse().unwrap(), PortProto::udp(port), 0);
    let packet = knockd::packet::Packet { knock, payload: Some(packet.as_bytes()) };
    let clock = Clock::new(Duration::from_secs(unix), Duration::from_secs(unix));
    kind.packet(&packet, &clock, &mut FileStore::default(), &mut out);
    out
}

/// Sends `packet` from `src` to 198.18.0.1, port 62201, at Unix time `unix`.
pub fn send(kind: &mut dyn DoorKind, src: &str, packet: &str, unix: u64) -> Outcomes {
    send_to(kind, src, 62201, packet, unix)
}

/// The one rejection in `out`, and the door it names.
pub fn rejection(out: &Outcomes) -> String {
    assert!(out.grants.is_empty(), "expected no grant: {:?}", out.grants);
    match out.notes.as_slice() {
        [Note::Rejected { reason, .. }] => reason.clone(),
        other => panic!("expected one rejection: {other:?}"),
    }
}

/// The door (index) of the one grant in `out`, and its ports.
pub fn granted(out: &Outcomes) -> (usize, Vec<PortProto>) {
    match out.grants.as_slice() {
        [grant] => (grant.door, grant.ports.clone()),
        _ => panic!("expected one grant: {:?}", out.notes),
    }
}
