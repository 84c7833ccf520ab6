//! SPA packets the tests and the benchmark send: a fresh request as the client builds one, and
//! a flood of forged ones that pass every cheap check; the door they are sent to, and the
//! client that sends a real one.

use std::path::{Path, PathBuf};
use std::process::Output;

use knockd::doors::spa;
use knockd::packet::Knock;

use super::frames;
use super::lab::{Lab, SERVER_V4};
use super::process::{ConfigFile, Daemon, knock_client};

/// A knockd.yaml (`before` first: `log: ...`, `user: root`) of door ssh taking SPA packets on
/// port 62201 signed by any of `n` keys, opening port 22 for 30s (`extra`: more of its `spa`
/// settings); and the key pairs `key0 ..` (and `.pub`) beside it, made by the library `knock
/// --spa-keygen` uses.
pub fn spa_config(n: usize, before: &str, extra: &str) -> (ConfigFile, Vec<PathBuf>) {
    let config = ConfigFile::new("knockd.yaml", "");
    let keys: Vec<PathBuf> = (0..n).map(|i| config.path.with_file_name(format!("key{i}"))).collect();
    for key in &keys {
        knockd::client::keygen::generate(key).unwrap();
    }
    config.rewrite(&format!("{before}{}", spa_door(&keys, extra)));
    (config, keys)
}

/// `knock --spa` run in the client, as a user runs it: a packet for door ssh signed by the
/// secret key `key`, from `source`, then waiting up to `wait` seconds for port 22 of `server`
/// to open.
pub fn knock_spa(lab: &Lab, key: &Path, source: &str, server: &str, wait: &str) -> Output {
    let key = key.to_str().unwrap();
    let args = ["--spa", "--key", key, "--door", "ssh", "--source", source, "--wait-open", "22"];
    knock_client(&lab.client, &[&args[..], &["--wait-timeout", wait, server]].concat())
}

impl Lab {
    /// knockd started in the server on [`spa_config`]`(n, before, extra)`: the config, the
    /// secret keys and the daemon.
    pub fn spa_knockd(&self, n: usize, before: &str, extra: &str) -> (ConfigFile, Vec<PathBuf>, Daemon) {
        let (config, keys) = spa_config(n, before, extra);
        let daemon = Daemon::start(&self.server, &config, &[]);
        (config, keys, daemon)
    }
}

/// Door ssh of [`spa_config`], for the secret keys `keys`.
pub fn spa_door(keys: &[PathBuf], extra: &str) -> String {
    let public: Vec<String> = keys.iter().map(|k| format!("{}.pub", k.display())).collect();
    format!(
        "doors:\n  ssh:\n    spa: {{port: 62201, public_keys: [{}]{extra}}}\n    open: {{ports: [22], timeout: 30s}}\n",
        public.join(", ")
    )
}

/// A fresh packet for door ssh, signed by the secret key at `key`, as the client sends it.
pub fn fresh_packet(key: &Path) -> Vec<u8> {
    spa::encode(&fresh_request("ssh"), &spa::read_key(key).unwrap())
}

/// A request for `door`, timestamped now with a new nonce, naming no address.
pub fn fresh_request(door: &str) -> spa::Request {
    spa::Request {
        timestamp: knockd::daemon::clock::unix_now().as_secs(),
        nonce: spa::nonce(),
        door: door.into(),
        address: None,
    }
}

/// 4096 well-formed frames for door ssh on port 62201, timestamped now, naming the real key ids
/// of `keys` but signed by another key, from 480 spoofed /24 prefixes: only the signature fails.
pub fn forged_frames(keys: &[PathBuf]) -> Vec<Vec<u8>> {
    let mallory = spa::Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    let ids: Vec<[u8; 8]> = keys.iter().map(|k| spa::read_key(k).unwrap().id()).collect();
    let server: std::net::Ipv4Addr = SERVER_V4.parse().unwrap();
    (0..4096u32)
        .map(|n| {
            let mut packet = spa::encode(&fresh_request("ssh"), &mallory);
            packet[2..10].copy_from_slice(&ids[n as usize % ids.len()]);
            Knock::udp(frames::spoofed(n * 53), server, 62201, &packet).emit()
        })
        .collect()
}

/// A version 1 packet (no key id) for `request`, signed with `key`: the daemon tries every
/// Ed25519 key of the door on it.
pub fn version_1(request: &spa::Request, key: &ed25519_dalek::SigningKey) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let mut packet = vec![spa::wire::VERSION_1, spa::wire::AUTH_ED25519];
    packet.extend_from_slice(&request.timestamp.to_be_bytes());
    packet.extend_from_slice(&request.nonce);
    packet.push(request.door.len() as u8);
    packet.extend_from_slice(request.door.as_bytes());
    packet.push(0);
    let signature = key.sign(&packet);
    packet.extend_from_slice(&signature.to_bytes());
    packet
}

/// Forged packets for door ssh on port 62201 over IPv6, as [`forged_frames`], from `prefixes`
/// spoofed /48s (2001:db8:1000::/48 on, clear of the lab's own 2001:db8::/48).
pub fn forged_frames_v6(keys: &[PathBuf], prefixes: u32) -> Vec<Vec<u8>> {
    let mallory = spa::Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    let ids: Vec<[u8; 8]> = keys.iter().map(|k| spa::read_key(k).unwrap().id()).collect();
    let packets: Vec<Vec<u8>> = (0..64)
        .map(|n| {
            let mut packet = spa::encode(&fresh_request("ssh"), &mallory);
            packet[2..10].copy_from_slice(&ids[n % ids.len()]);
            packet
        })
        .collect();
    let server: std::net::Ipv6Addr = super::lab::SERVER_V6.parse().unwrap();
    (0..prefixes)
        .map(|n| {
            let prefix = 0x2001_0db8_1000_u128 + u128::from(n);
            let src = std::net::Ipv6Addr::from((prefix << 80) | 7);
            // Each its own nonce and signature, so no two are copies; it fails either way.
            let mut packet = packets[n as usize % packets.len()].clone();
            let end = packet.len();
            packet[18..22].copy_from_slice(&n.to_be_bytes());
            packet[end - 4..].copy_from_slice(&n.to_be_bytes());
            Knock::udp(src, server, 62201, &packet).emit()
        })
        .collect()
}
