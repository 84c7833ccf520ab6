//! Every door kind that keeps state refuses what it cannot make durable (fail closed), and
//! what it did keep is refused again after a restart: shown with a store in memory, which can
//! be made to fail, and a restart that builds the kinds again from the same store.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::fwknop::HmacDigest;
use super::{Clock, DoorKind, Note, Outcomes};
use crate::config::{Config, PortProto};
use crate::packet::{Knock, Packet};
use crate::store::MemoryStore;

const UNIX: u64 = 1_790_000_000;
const SECRET: &[u8] = b"a rotating secret of 32 bytes...";
const HMAC: &[u8] = b"an spa hmac key of 32 bytes.....";

fn config(doors: &str) -> Config {
    crate::config::yaml::parse("test.yaml", &format!("state_dir: /state\ndoors:\n{doors}"), &super::Kinds).unwrap()
}

/// A store with the keys and the one-time file the doors below read.
fn store() -> MemoryStore {
    let mut store = MemoryStore::default();
    store.files.insert("/keys/secret".into(), SECRET.to_vec());
    store.files.insert("/keys/hmac".into(), HMAC.to_vec());
    store.files.insert("/seqs".into(), b"1001,1002\n1003,1004\n".to_vec());
    store
}

/// The kinds of `config`, built from `store`: a start, or a restart.
fn kinds(config: &Config, store: &mut MemoryStore) -> Vec<Box<dyn DoorKind>> {
    super::build(config, store).unwrap()
}

fn clock(mono: u64) -> Clock {
    Clock::new(Duration::from_secs(mono), Duration::from_secs(UNIX))
}

/// Sends each of `knocks` (port, payload) from 198.18.0.2 to every kind; what came of it.
fn send(kinds: &mut [Box<dyn DoorKind>], store: &mut MemoryStore, knocks: &[(PortProto, &[u8])]) -> Outcomes {
    let mut out = Outcomes::default();
    let (src, dst): (IpAddr, IpAddr) = ("198.18.0.2".parse().unwrap(), "198.18.0.1".parse().unwrap());
    // As the engine does: the kinds learn the time of day (a rotating door's ports) first.
    kinds.iter_mut().for_each(|kind| kind.tick(&clock(0), store, &mut out));
    for (i, (port, payload)) in knocks.iter().enumerate() {
        let knock = Knock::new(src, dst, *port, crate::config::tcp_flag::SYN);
        let packet = Packet { knock, payload: Some(payload) };
        for kind in kinds.iter_mut() {
            let mut ports = Vec::new();
            kind.ports(&mut ports);
            if ports.contains(port) {
                kind.packet(&packet, &clock(i as u64), store, &mut out);
            }
        }
    }
    out
}

/// The message of the one error note in `out`.
fn refusal(out: &Outcomes) -> String {
    assert!(out.grants.is_empty(), "fail closed: no grant while the store fails: {:?}", out.grants);
    let errors: Vec<&String> = out
        .notes
        .iter()
        .filter_map(|n| match n {
            Note::Changed { level: log::Level::Error, message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{:?}", out.notes);
    errors[0].clone()
}

/// Sends `knocks` while the store fails (refused, nothing kept), then while it works (granted,
/// kept), then again after a restart (refused: replayed).
fn fails_closed_and_survives_a_restart(doors: &str, knocks: &[(PortProto, &[u8])], says: &str) {
    let config = config(doors);
    let mut store = store();
    let mut running = kinds(&config, &mut store);
    store.failing = true;
    let message = refusal(&send(&mut running, &mut store, knocks));
    assert!(message.contains(says), "{message}");
    store.failing = false;
    let mut running = kinds(&config, &mut store);
    assert_eq!(send(&mut running, &mut store, knocks).grants.len(), 1, "refused before, so it may come again");
    let mut restarted = kinds(&config, &mut store);
    let again = send(&mut restarted, &mut store, knocks);
    assert!(again.grants.is_empty(), "replayed after a restart: {:?}", again.notes);
}

#[test]
fn spa_refuses_a_packet_whose_nonce_cannot_be_kept() {
    let request = super::spa::Request { timestamp: UNIX, nonce: [7; 16], door: "ssh".into(), address: None };
    let packet = super::spa::encode(&request, &super::spa::Key::Hmac(HMAC.to_vec()));
    let door = "  ssh:\n    spa: {port: 62201, hmac_key_file: /keys/hmac}\n    open: {ports: [22], timeout: 1m}\n";
    fails_closed_and_survives_a_restart(door, &[(PortProto::udp(62201), &packet)], "could not be made replay-proof");
}

/// Door ssh taking fwknop packets on 62201, and a packet from alice for tcp/22 sent at `UNIX`.
fn fwknop_door_and_packet() -> (String, String) {
    use super::fwknop::{message, wire};
    let (key, hmac) = (b"fwknop-rijndael-key-0123456789ab", b"fwknop-hmac-key-0123456789abcdef");
    let b64 = super::key_file::encode_base64;
    let message = message::Message {
        user: "alice".into(),
        timestamp: UNIX,
        version: "3.0.0".into(),
        allow: Some("198.18.0.2".parse().unwrap()),
        ports: vec![PortProto::tcp(22)],
        client_timeout: None,
        nat: None,
        digest: HmacDigest::Sha256,
    };
    let packet =
        wire::seal(message::format(&message, 1234567890123456).as_bytes(), key, hmac, HmacDigest::Sha256, [3; 8]);
    let door = format!(
        "  ssh:\n    fwknop: {{key_base64: \"{}\", hmac_key_base64: \"{}\", open_ports: [22]}}\n    open: {{timeout: 1m}}\n",
        b64(key),
        b64(hmac)
    );
    (door, packet)
}

#[test]
fn fwknop_refuses_a_packet_whose_digest_cannot_be_kept() {
    let (door, packet) = fwknop_door_and_packet();
    let knocks = [(PortProto::udp(62201), packet.as_bytes())];
    fails_closed_and_survives_a_restart(&door, &knocks, "could not be made replay-proof");
}

#[test]
fn a_rotating_sequence_is_refused_when_its_use_cannot_be_kept() {
    let rotating = super::sequence::Rotating {
        secret_files: vec!["/keys/secret".into()],
        step: Duration::from_secs(30),
        length: 2,
        ports: (20000, 40000),
        proto: crate::config::Proto::Tcp,
    };
    let counter = super::sequence::rotating::counter(Duration::from_secs(UNIX), rotating.step);
    let sequence = super::sequence::rotating::sequence(SECRET, "ssh", counter, &rotating);
    let knocks: Vec<(PortProto, &[u8])> = sequence.iter().map(|p| (*p, &[][..])).collect();
    let door = "  ssh:\n    rotating: {secret_file: /keys/secret, length: 2}\n    open: {ports: [22], timeout: 1m}\n";
    fails_closed_and_survives_a_restart(door, &knocks, "could not be made replay-proof");
}

#[test]
fn a_one_time_sequence_is_refused_when_it_cannot_be_marked_used() {
    let knocks = [(PortProto::tcp(1001), &[][..]), (PortProto::tcp(1002), &[][..])];
    let door = "  ssh:\n    one_time_sequences: /seqs\n    open: {ports: [22], timeout: 1m}\n";
    fails_closed_and_survives_a_restart(door, &knocks, "could not be marked used");
    let mut store = store();
    let mut running = kinds(&config(door), &mut store);
    assert_eq!(send(&mut running, &mut store, &knocks).grants.len(), 1);
    assert_eq!(store.text(Path::new("/seqs")).unwrap(), "#1001,1002\n1003,1004\n", "marked, through the store");
}

/// The kinds of `config` after a reload from `running`: built afresh, each taking over from
/// the running one of its type, as the engine pairs them.
fn reloaded(running: Vec<Box<dyn DoorKind>>, config: &Config, store: &mut MemoryStore) -> Vec<Box<dyn DoorKind>> {
    let mut old = running;
    let mut new = kinds(config, store);
    for kind in &mut new {
        if let Some(i) = old.iter().position(|o| kind.same_kind(&**o)) {
            kind.carry_from(old.swap_remove(i));
        }
    }
    new
}

/// Whether `out` refused the packet as a replay.
fn replayed(out: &Outcomes) -> bool {
    let says = |n: &Note| matches!(n, Note::Rejected { reason, .. } if reason.ends_with("rejected: replayed"));
    out.grants.is_empty() && out.notes.iter().any(says)
}

/// A reload that moves `state_dir`: what a door accepted before it stays refused after it,
/// and what it accepts after it is written where the next start reads (the new directory), so
/// a restart still refuses it.
fn keeps_what_it_accepts_after_a_reload_that_moves_the_state_dir(doors: &str, knocks: &[(PortProto, &[u8])]) {
    let before = config(doors);
    let moved = Config { state_dir: "/moved".into(), ..config(doors) };
    let mut store = store();
    let mut running = kinds(&before, &mut store);
    assert_eq!(send(&mut running, &mut store, knocks).grants.len(), 1);
    let mut running = reloaded(running, &moved, &mut store);
    assert!(replayed(&send(&mut running, &mut store, knocks)), "accepted again after the reload");

    let mut store = self::store();
    let running = kinds(&before, &mut store);
    let mut running = reloaded(running, &moved, &mut store);
    assert_eq!(send(&mut running, &mut store, knocks).grants.len(), 1, "accepted after the reload");
    assert!(replayed(&send(&mut running, &mut store, knocks)), "accepted again before a restart");
    let again = send(&mut kinds(&moved, &mut store), &mut store, knocks);
    assert!(replayed(&again), "accepted again after a restart: {:?}", again.notes);
}

#[test]
fn spa_keeps_its_nonces_in_the_state_dir_a_reload_moved_it_to() {
    let request = super::spa::Request { timestamp: UNIX, nonce: [8; 16], door: "ssh".into(), address: None };
    let packet = super::spa::encode(&request, &super::spa::Key::Hmac(HMAC.to_vec()));
    let door = "  ssh:\n    spa: {port: 62201, hmac_key_file: /keys/hmac}\n    open: {ports: [22], timeout: 1m}\n";
    keeps_what_it_accepts_after_a_reload_that_moves_the_state_dir(door, &[(PortProto::udp(62201), &packet)]);
}

#[test]
fn fwknop_keeps_its_digests_in_the_state_dir_a_reload_moved_it_to() {
    let (door, packet) = fwknop_door_and_packet();
    keeps_what_it_accepts_after_a_reload_that_moves_the_state_dir(&door, &[(PortProto::udp(62201), packet.as_bytes())]);
}
