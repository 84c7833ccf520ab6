//! SPA packets the tests and the benchmark send: a fresh request as the client builds one, and
//! a flood of forged ones that pass every cheap check.

use std::path::PathBuf;

use knockd::doors::spa;

use crate::frames;
use crate::lab::SERVER_V4;

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
    let server = SERVER_V4.parse().unwrap();
    (0..4096u32)
        .map(|n| {
            let mut packet = spa::encode(&fresh_request("ssh"), &mallory);
            packet[2..10].copy_from_slice(&ids[n as usize % ids.len()]);
            frames::udp(frames::spoofed(n * 53), 40000, server, 62201, &packet)
        })
        .collect()
}
