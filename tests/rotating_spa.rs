//! Rotating sequences and single-packet authorization: known answers (computed independently
//! with Python's hmac and hashlib), replay, tampering and clock skew. No root, no network.

mod util;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use knockd::config::{self, PortProto, Proto};
use knockd::doors::sequence::{Rotating, rotating};
use knockd::doors::spa::{self, Key, Request, SpaError, Verified, Verifier};
use knockd::doors::{Clock, Kinds};
use util::{MemoryEngine, TempDir, tcp_syn, udp};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn rot(length: usize, ports: (u16, u16)) -> Rotating {
    Rotating { secret_files: vec![PathBuf::new()], step: Duration::from_secs(30), length, ports, proto: Proto::Tcp }
}

fn tcp(ports: &[u16]) -> Vec<PortProto> {
    ports.iter().map(|p| PortProto::tcp(*p)).collect()
}

#[test]
fn rotating_derivation_known_answers() {
    assert_eq!(rotating::sequence(SECRET, "ssh", 0, &rot(4, (20000, 40000))), tcp(&[25456, 32339, 25150, 25194]));
    assert_eq!(
        rotating::sequence(SECRET, "ssh", 58_000_000, &rot(4, (20000, 40000))),
        tcp(&[28847, 26658, 32015, 39384])
    );
    assert_eq!(
        rotating::sequence(SECRET, "web", 58_000_000, &rot(8, (1000, 1999))),
        tcp(&[1895, 1163, 1834, 1901, 1947, 1100, 1070, 1185])
    );
    assert_eq!(rotating::counter(Duration::from_secs(1_740_000_000), Duration::from_secs(30)), 58_000_000);
    assert_eq!(rotating::counter(Duration::from_secs(1_740_000_029), Duration::from_secs(30)), 58_000_000);
    assert_eq!(rotating::counter(Duration::from_secs(1_740_000_030), Duration::from_secs(30)), 58_000_001);
}

/// An HMAC packet: version 1, HMAC (2), timestamp 1790000000, nonce 00..0f, door "ssh",
/// address 198.18.0.9, then HMAC-SHA256 over all of that.
const HMAC_KEY: &[u8] = b"spa-shared-secret-0123456789";
/// Version 2 (with the key id `b9d41f7a94540af9`), as `knock` sends it; computed with Python's hmac.
const HMAC_PACKET: &str = "0202b9d41f7a94540af9000000006ab13b80000102030405060708090a0b0c0d0e0f0373736804c612000997888eec995cca958145967c6667965a29e1b323a73bfce8bde252f801f51fc4";
/// The same request as version 1 (no key id), as knock 0.1 sent it: still accepted.
const HMAC_PACKET_V1: &str = "0102000000006ab13b80000102030405060708090a0b0c0d0e0f0373736804c61200093b2b532b1dca30232aa91531c85c91710abc811c311a8542069cd8087c325de7";

fn request() -> Request {
    Request {
        timestamp: 1_790_000_000,
        nonce: core::array::from_fn(|i| i as u8),
        door: "ssh".into(),
        address: Some("198.18.0.9".parse().unwrap()),
    }
}

fn at(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[test]
fn spa_packet_format_known_answer() {
    let packet = spa::encode(&request(), &Key::Hmac(HMAC_KEY.to_vec()));
    assert_eq!(hex::encode(&packet), HMAC_PACKET);
    let decoded = spa::decode(&packet).unwrap();
    assert_eq!(decoded.request, request());
    assert_eq!(decoded.auth, spa::wire::AUTH_HMAC_SHA256);
    assert_eq!(decoded.key_id.map(hex::encode).as_deref(), Some("b9d41f7a94540af9"));
    let v1 = hex::decode(HMAC_PACKET_V1).unwrap();
    let decoded = spa::decode(&v1).unwrap();
    assert_eq!((decoded.request, decoded.key_id), (request(), None));
}

#[test]
fn version_1_packets_are_still_accepted() {
    let packet = hex::decode(HMAC_PACKET_V1).unwrap();
    let mut v = Verifier::new(Some(("shared".into(), HMAC_KEY.to_vec())), vec![], Duration::from_secs(30));
    assert_eq!(v.verify(&packet, "ssh", at(1_790_000_010)).map(|v| v.key), Ok("shared".into()));
    assert_eq!(v.verify(&packet, "ssh", at(1_790_000_010)), Err(SpaError::Replayed));
}

#[test]
fn a_timestamp_far_from_now_is_stale_not_an_overflow() {
    // u64 timestamps near the ends: the difference must not overflow (it panicked in debug builds).
    let key = Key::Hmac(HMAC_KEY.to_vec());
    let mut v = Verifier::new(Some(("shared".into(), HMAC_KEY.to_vec())), vec![], Duration::from_secs(30));
    for ts in [u64::MAX, 0, i64::MAX as u64 + 7] {
        let packet = spa::encode(&Request { timestamp: ts, ..request() }, &key);
        assert!(matches!(v.verify(&packet, "ssh", at(1_790_000_000)), Err(SpaError::Stale { .. })), "{ts}");
    }
}

#[test]
fn hmac_packets_verify_once_and_only_untampered() {
    let packet = hex::decode(HMAC_PACKET).unwrap();
    let mut v = Verifier::new(Some(("shared".into(), HMAC_KEY.to_vec())), vec![], Duration::from_secs(30));
    assert_eq!(v.verify(&packet, "ssh", at(1_790_000_010)), Ok(Verified { request: request(), key: "shared".into() }));
    assert_eq!(v.verify(&packet, "ssh", at(1_790_000_011)), Err(SpaError::Replayed), "a captured packet replayed");
    for i in 0..packet.len() {
        let mut tampered = packet.clone();
        tampered[i] ^= 0x01;
        let mut fresh = Verifier::new(Some(("shared".into(), HMAC_KEY.to_vec())), vec![], Duration::from_secs(30));
        assert!(fresh.verify(&tampered, "ssh", at(1_790_000_010)).is_err(), "byte {i} flipped was accepted");
    }
    let mut wrong_key =
        Verifier::new(Some(("other".into(), b"another-shared-secret-xx".to_vec())), vec![], Duration::from_secs(30));
    // The packet's key id names no key of this door: refused before any MAC is computed.
    assert_eq!(wrong_key.verify(&packet, "ssh", at(1_790_000_010)), Err(SpaError::NoKey));
    // A version 1 packet names no key: the door's key is tried, and fails.
    let v1 = hex::decode(HMAC_PACKET_V1).unwrap();
    assert_eq!(wrong_key.verify(&v1, "ssh", at(1_790_000_010)), Err(SpaError::BadSignature));
    assert_eq!(wrong_key.verify(&packet, "web", at(1_790_000_010)), Err(SpaError::OtherDoor));
    assert!(spa::decode(&packet[..packet.len() - 1]).is_err());
    assert!(spa::decode(&[packet.clone(), vec![0]].concat()).is_err(), "trailing bytes");
}

#[test]
fn clock_skew_within_and_beyond_the_window() {
    let key = Key::Hmac(HMAC_KEY.to_vec());
    let packet_at = |ts: u64, n: u8| spa::encode(&Request { timestamp: ts, nonce: [n; 16], ..request() }, &key);
    let mut v = Verifier::new(Some(("shared".into(), HMAC_KEY.to_vec())), vec![], Duration::from_secs(30));
    let now = at(1_800_000_000);
    assert!(v.verify(&packet_at(1_800_000_030, 1), "ssh", now).is_ok(), "30 s ahead: inside");
    assert!(v.verify(&packet_at(1_799_999_970, 2), "ssh", now).is_ok(), "30 s behind: inside");
    assert_eq!(v.verify(&packet_at(1_800_000_031, 3), "ssh", now), Err(SpaError::Stale { skew_secs: 31 }));
    assert_eq!(v.verify(&packet_at(1_799_999_969, 4), "ssh", now), Err(SpaError::Stale { skew_secs: -31 }));
}

#[test]
fn a_packet_sent_before_the_host_booted_is_refused() {
    // Its nonce was written without a sync: a crash of the host may have lost it.
    let key = Key::Hmac(HMAC_KEY.to_vec());
    let packet_at = |ts: u64, n: u8| spa::encode(&Request { timestamp: ts, nonce: [n; 16], ..request() }, &key);
    let mut v = Verifier::new(Some(("shared".into(), HMAC_KEY.to_vec())), vec![], Duration::from_secs(30));
    v.set_boot_time(at(1_800_000_000));
    let now = at(1_800_000_010);
    assert_eq!(v.verify(&packet_at(1_799_999_999, 1), "ssh", now), Err(SpaError::BeforeBoot));
    assert!(v.verify(&packet_at(1_800_000_000, 2), "ssh", now).is_ok(), "sent at boot: after");
}

#[test]
fn ed25519_packets_verify_with_the_right_public_key_only() {
    let dir = TempDir::new("spa");
    let (alice, mallory) = (dir.join("alice"), dir.join("mallory"));
    let alice_pub = knockd::client::keygen::generate(&alice).unwrap();
    knockd::client::keygen::generate(&mallory).unwrap();
    assert!(knockd::client::keygen::generate(&alice).is_err(), "never overwrites a key");
    let public = spa::read_public_key(&alice_pub).unwrap();
    let alice_key = spa::read_key(&alice).unwrap();
    let mallory_key = spa::read_key(&mallory).unwrap();
    assert!(spa::read_public_key(&alice).is_err(), "a secret key is no public key");

    let mut v = Verifier::new(None, vec![("alice".into(), public)], Duration::from_secs(30));
    let now = at(1_790_000_000);
    let good = spa::encode(&request(), &alice_key);
    assert_eq!(good.len(), 1 + 1 + 8 + 8 + 16 + 1 + 3 + 1 + 4 + 64);
    assert_eq!(v.verify(&good, "ssh", now), Ok(Verified { request: request(), key: "alice".into() }));
    assert_eq!(v.verify(&good, "ssh", now), Err(SpaError::Replayed));
    // Mallory's packet names Mallory's key, which this door does not have.
    let forged = spa::encode(&Request { nonce: [9; 16], ..request() }, &mallory_key);
    assert_eq!(v.verify(&forged, "ssh", now), Err(SpaError::NoKey));
    // A packet that names Alice's key but was signed by Mallory: one verification, and it fails.
    let mut claimed = forged.clone();
    claimed[2..10].copy_from_slice(&alice_key.id());
    assert_eq!(v.verify(&claimed, "ssh", now), Err(SpaError::BadSignature));
    let hmac = spa::encode(&Request { nonce: [8; 16], ..request() }, &Key::Hmac(HMAC_KEY.to_vec()));
    assert_eq!(v.verify(&hmac, "ssh", now), Err(SpaError::NoKey), "this door has no HMAC key");
}

/// An engine on the config `yaml` writes, given a directory that holds the secret files
/// `secret` and `hmac` and is the engine's state directory; that directory too.
fn engine_with(yaml: impl Fn(&TempDir) -> String) -> (MemoryEngine, TempDir) {
    let dir = TempDir::new("engine-rot");
    dir.write_private("secret", SECRET);
    dir.write_private("hmac", HMAC_KEY);
    let text = std::fs::read_to_string(dir.config(&yaml(&dir))).unwrap();
    (util::engine(&text), dir)
}

/// Knocks `sequence` from `src`, one knock a second from `t`; how many grants that made.
fn knock(e: &mut MemoryEngine, src: &str, sequence: &[PortProto], t: u64, wall: Duration) -> usize {
    for (i, p) in sequence.iter().enumerate() {
        e.packet(&tcp_syn(src, p.port), Clock::new(at(t + i as u64), wall));
    }
    e.flush()
}

#[test]
fn the_engine_accepts_the_previous_current_and_next_step_once_each() {
    let (mut e, _dir) = engine_with(|dir| {
        format!(
            "doors:\n  ssh:\n    rotating: {{secret_file: {}, step: 30s, length: 4}}\n    open: {{ports: [22], timeout: 1m}}\n",
            dir.join("secret").display()
        )
    });
    let step = 58_000_000u64;
    let seq = |c: u64| rotating::sequence(SECRET, "ssh", c, &rot(4, (20000, 40000)));
    let mut wall = at(step * 30);
    e.tick(Clock::new(at(0), wall));
    let mut ports = e.capture_ports().knocks;
    let mut three: Vec<PortProto> = seq(step).into_iter().chain(seq(step - 1)).chain(seq(step + 1)).collect();
    three.sort();
    three.dedup();
    ports.dedup();
    assert_eq!(ports, three, "the filter follows the rotation: previous, current and next step");
    assert_eq!(e.next_wall_due(), Some(at((step + 1) * 30)), "the loop wakes at the step boundary");
    assert_eq!(knock(&mut e, "198.18.0.2", &seq(step), 0, wall), 1, "the current step's sequence opens");
    assert_eq!(
        knock(&mut e, "198.18.0.3", &seq(step), 10, wall),
        0,
        "and only once: replaying it within its step does not"
    );
    assert_eq!(knock(&mut e, "198.18.0.3", &seq(step - 1), 20, wall), 1, "the previous step's sequence opens too");
    assert_eq!(knock(&mut e, "198.18.0.4", &seq(step - 2), 30, wall), 0, "older ones do not");
    assert_eq!(
        knock(&mut e, "198.18.0.4", &seq(step + 1), 40, wall),
        1,
        "the next step's does: a client's clock ahead"
    );
    assert_eq!(knock(&mut e, "198.18.0.6", &seq(step + 2), 50, wall), 0, "two steps ahead does not");
    // The next step: the used ones stay refused while they are still valid.
    wall = at((step + 1) * 30);
    assert_eq!(knock(&mut e, "198.18.0.5", &seq(step), 60, wall), 0);
    assert_eq!(knock(&mut e, "198.18.0.5", &seq(step + 1), 70, wall), 0);
    assert_eq!(knock(&mut e, "198.18.0.5", &seq(step + 2), 80, wall), 1);
}

#[test]
fn a_used_rotating_sequence_stays_used_after_a_restart() {
    let yaml = |dir: &TempDir| {
        format!(
            "doors:
  ssh:
    rotating: {{secret_file: {}, step: 30s, length: 4}}
    open: {{ports: [22], timeout: 1m}}
",
            dir.join("secret").display()
        )
    };
    let (mut e, dir) = engine_with(yaml);
    let step = 58_000_000u64;
    let seq = |c: u64| rotating::sequence(SECRET, "ssh", c, &rot(4, (20000, 40000)));
    let mut wall = at(step * 30);
    assert_eq!(knock(&mut e, "198.18.0.2", &seq(step), 0, wall), 1);
    drop(e);
    // A new engine on the same state directory: the daemon restarted.
    let text = std::fs::read_to_string(dir.join("knockd.yaml")).unwrap();
    let mut e = util::engine(&text);
    wall = at(step * 30 + 5);
    assert_eq!(knock(&mut e, "198.18.0.3", &seq(step), 10, wall), 0, "the captured sequence replayed after a restart");
    assert_eq!(knock(&mut e, "198.18.0.3", &seq(step + 1), 20, wall), 1, "the others still open");
    // A reload that changes the door (its seq_timeout): the used sequences stay used.
    let changed = text.replace("length: 4}", "length: 4}\n    seq_timeout: 20s");
    assert_ne!(changed, text);
    e.reconfigure(util::parsed(&changed)).unwrap();
    assert_eq!(knock(&mut e, "198.18.0.4", &seq(step), 30, wall), 0, "replayed after a reload");
    assert_eq!(knock(&mut e, "198.18.0.4", &seq(step + 1), 40, wall), 0, "replayed after a reload");
    assert_eq!(knock(&mut e, "198.18.0.4", &seq(step - 1), 50, wall), 1);
    let journal = std::fs::read_to_string(dir.join("state/ssh.rotating")).unwrap();
    assert_eq!(journal.lines().count(), 4, "a header and the three uses: {journal}");
    assert!(!journal.contains(&hex::encode(SECRET)), "the secret is not in it");
}

#[test]
fn the_engine_grants_by_spa_and_refuses_replays_and_strangers() {
    let (mut e, _dir) = engine_with(|dir| {
        format!(
            "doors:\n  ssh:\n    spa: {{port: 62201, hmac_key_file: {}}}\n    from: [198.18.0.0/16]\n    open: {{ports: [22], timeout: 1m}}\n",
            dir.join("hmac").display()
        )
    });
    let ports = e.capture_ports();
    assert_eq!((ports.knocks, ports.datagrams), (vec![], vec![PortProto::udp(62201)]), "SPA has a socket of its own");
    let wall = |t: u64| Clock::new(at(t), at(1_790_000_005));
    let packet = hex::decode(HMAC_PACKET).unwrap();
    e.packet(&udp("198.18.0.2", 62201, &packet), wall(0));
    assert_eq!(e.flush(), 1);
    let granted: Vec<IpAddr> = e.firewall().elements.iter().map(|el| el.addr).collect();
    assert_eq!(granted, ["198.18.0.9".parse::<IpAddr>().unwrap()], "the address in the packet (NAT) is granted");
    e.packet(&udp("198.18.0.2", 62201, &packet), wall(1));
    assert_eq!(e.flush(), 0, "a replayed packet grants nothing");
    let fresh = spa::encode(&Request { nonce: [7; 16], ..request() }, &Key::Hmac(HMAC_KEY.to_vec()));
    e.packet(&udp("198.19.0.2", 62201, &fresh), wall(2));
    assert_eq!(e.flush(), 0, "a source outside `from` is refused");
    e.packet(&udp("198.18.0.2", 62201, b"\\x01garbage"), wall(3));
    assert_eq!(e.counter("spa_accepted"), 1);
    assert_eq!(e.counter("spa_rejected"), 3);
}

#[test]
fn yaml_rotating_spa_and_source_lists() {
    let c = config::yaml::parse(
        "t.yaml",
        "doors:\n  a:\n    rotating: {secret_file: /s, step: 1m, length: 8, ports: 1000-1999, protocol: udp}\n    not_from: [198.18.0.7, \"2001:db8::/32\"]\n    open: {ports: [22], timeout: 1m}\n  b:\n    spa: {port: 62201, public_keys: [/k.pub], window: 10s}\n",
        &Kinds,
    )
    .unwrap();
    let Some(r) = c.doors[0].proof::<Rotating>() else { panic!() };
    assert_eq!((r.step, r.length, r.ports, r.proto), (Duration::from_secs(60), 8, (1000, 1999), Proto::Udp));
    assert!(!c.doors[0].admits(&"198.18.0.7".parse().unwrap()));
    assert!(c.doors[0].admits(&"198.18.0.8".parse().unwrap()));
    assert_eq!(c.doors[1].sequence(), None);
    let yaml = config::convert::to_yaml(&c);
    assert_eq!(config::yaml::parse("again.yaml", &yaml, &Kinds).unwrap(), c, "{yaml}");
    let error = |text: &str| config::yaml::parse("t.yaml", text, &Kinds).unwrap_err().to_string();
    assert!(error("doors:\n  a:\n    rotating: {secret_file: /s, length: 9}\n").contains("use 2 to 8"));
    assert!(error("doors:\n  a:\n    rotating: {secret_file: /s, length: 1}\n").contains("any port scan"));
    assert!(error("doors:\n  a:\n    rotating: {secret_file: /s, ports: 10-20}\n").contains("not a port range"));
    assert!(error("doors:\n  a:\n    spa: {port: 1}\n").contains("needs `hmac_key_file:` or `public_keys:`"));
    assert!(error("doors:\n  a:\n    sequence: [1]\n    rotating: {secret_file: /s}\n").contains("more than one of"));
    assert!(error("doors:\n  a:\n    sequence: [1]\n    from: [nowhere]\n").contains("not an address prefix"));
}

/// Two clients of one rotating door, each with a secret of their own: both get in within the
/// same step (one shared secret would let only the first), each grant names its secret, and an
/// attempt in progress survives a reload.
#[test]
fn one_secret_per_client_and_attempts_survive_a_reload() {
    const BOB: &[u8] = b"another secret of bob, 32 bytes.";
    let (mut e, dir) = engine_with(|dir| {
        dir.write_private("bob.secret", BOB);
        format!(
            "doors:\n  ssh:\n    rotating: {{secret_files: [{}, {}], length: 3}}\n    open: {{ports: [22], timeout: 1m}}\n",
            dir.join("secret").display(),
            dir.join("bob.secret").display()
        )
    });
    let step = 58_000_000u64;
    let mut wall = at(step * 30);
    let seq = |secret: &[u8]| rotating::sequence(secret, "ssh", step, &rot(3, (20000, 40000)));
    assert_eq!(knock(&mut e, "198.18.0.2", &seq(SECRET), 0, wall), 1, "the first client gets in");
    assert_eq!(knock(&mut e, "198.18.0.3", &seq(BOB), 10, wall), 1, "and so does the second, in the same step");
    assert_eq!(knock(&mut e, "198.18.0.4", &seq(BOB), 20, wall), 0, "each sequence once");

    // Half of a new step's sequence, a reload, then the rest: the attempt carried over.
    wall = at((step + 1) * 30);
    let next = rotating::sequence(BOB, "ssh", step + 1, &rot(3, (20000, 40000)));
    e.packet(&tcp_syn("198.18.0.5", next[0].port), Clock::new(at(30), wall));
    let text = std::fs::read_to_string(dir.join("knockd.yaml")).unwrap();
    e.reconfigure(config::yaml::parse("again.yaml", &text, &Kinds).unwrap()).unwrap();
    e.packet(&tcp_syn("198.18.0.5", next[1].port), Clock::new(at(31), wall));
    e.packet(&tcp_syn("198.18.0.5", next[2].port), Clock::new(at(32), wall));
    assert_eq!(e.flush(), 1, "the attempt survived the reload");
    let status = e.status().unwrap().1;
    let bob = status.iter().find(|g| g.address.to_string() == "198.18.0.5").unwrap();
    assert_eq!(bob.by.as_deref(), Some("secret bob"));
}
