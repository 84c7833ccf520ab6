//! Any bytes as an SPA datagram: decoding and verifying never panic, nothing forged is ever
//! accepted, and a packet accepted once is never accepted again.
#![no_main]

use std::time::Duration;

use knockd::doors::spa::{self, Key, Request, Verifier};
use libfuzzer_sys::fuzz_target;

const HMAC_KEY: &[u8] = b"fuzz-shared-secret-0123456789";
const NOW: u64 = 1_790_000_000;

fuzz_target!(|data: &[u8]| {
    let mut v = Verifier::new(Some(("shared".into(), HMAC_KEY.to_vec())), vec![], Duration::from_secs(30));
    let now = Duration::from_secs(NOW);
    // Raw bytes: whatever decodes, no key of the door signed it (the fuzzer cannot forge a MAC).
    if let Ok(packet) = spa::decode(data) {
        let _ = (packet.request.door.len(), packet.key_id, packet.tag.len());
    }
    assert!(v.verify(data, "ssh", now).is_err(), "accepted bytes nobody signed");

    // The bytes as a request's fields, signed properly: accepted once at most, never twice.
    if data.len() >= 17 {
        let request = Request {
            timestamp: NOW.wrapping_add(u64::from(data[0]) % 64).wrapping_sub(32),
            nonce: data[1..17].try_into().unwrap(),
            door: "ssh".into(),
            address: None,
        };
        let packet = spa::encode(&request, &Key::Hmac(HMAC_KEY.to_vec()));
        let first = v.verify(&packet, "ssh", now);
        assert!(v.verify(&packet, "ssh", now).is_err(), "a packet was accepted twice");
        if first.is_ok() {
            let mut flipped = packet.clone();
            let at = usize::from(data[0]) % flipped.len();
            flipped[at] ^= 1 | data[1];
            let mut fresh = Verifier::new(Some(("shared".into(), HMAC_KEY.to_vec())), vec![], Duration::from_secs(30));
            assert!(fresh.verify(&flipped, "ssh", now).is_err(), "a tampered packet was accepted");
        }
    }
});
