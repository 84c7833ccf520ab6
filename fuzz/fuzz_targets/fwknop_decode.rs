//! Any bytes as an fwknop datagram: screening, HMAC checks, decryption and the plaintext parser
//! never panic and nothing forged opens anything; the bytes as a request's fields, sealed with
//! the stanza's keys, open at most once.
#![no_main]

use std::net::IpAddr;
use std::time::Duration;

use knockd::config::PortProto;
use knockd::doors::fwknop::{self, HmacDigest, message, wire};
use knockd::doors::{Clock, DoorKind, Outcomes};
use knockd::packet::{Knock, Packet};
use knockd::store::MemoryStore;
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzz-rijndael-key-0123456789abcd";
const HMAC_KEY: &[u8] = b"fuzz-hmac-key-0123456789abcdef0123456789";
const NOW: u64 = 1_795_600_000;

/// The stanza's door kind, with its replay journal in a store of its own: each input starts
/// afresh.
fn stanzas() -> (Box<dyn DoorKind>, MemoryStore) {
    let b64 = knockd::doors::key_file::encode_base64;
    let text = format!("SOURCE ANY\nKEY_BASE64 {}\nHMAC_KEY_BASE64 {}\n", b64(KEY), b64(HMAC_KEY));
    let config = knockd::doors::fwknop::access_conf::parse("fuzz.conf", &text).unwrap();
    let mut store = MemoryStore::default();
    (fwknop::build(&config, &mut store).unwrap().unwrap(), store)
}

fn send((kind, store): &mut (Box<dyn DoorKind>, MemoryStore), payload: &[u8]) -> usize {
    let src: IpAddr = "198.18.0.2".parse().unwrap();
    let knock = Knock::new(src, "198.18.0.1".parse().unwrap(), PortProto::udp(62201), 0);
    let mut out = Outcomes::default();
    let clock = Clock::new(Duration::from_secs(1), Duration::from_secs(NOW));
    kind.packet(&Packet { knock, payload: Some(payload) }, &clock, store, &mut out);
    out.grants.len()
}

fuzz_target!(|data: &[u8]| {
    let _ = message::parse(data);
    if let Ok(text) = wire::screen(data) {
        for d in HmacDigest::ALL {
            if let Some((ciphertext, tag)) = wire::split(text, d) {
                let _ = wire::check_hmac(ciphertext, tag, d, HMAC_KEY);
                let _ = wire::decrypt(ciphertext, KEY);
            }
        }
    }
    let mut kind = stanzas();
    assert_eq!(send(&mut kind, data), 0, "bytes nobody sealed opened the door");

    // The bytes as the plaintext's fields, sealed with the stanza's keys.
    if data.len() >= 4 {
        let text = String::from_utf8_lossy(&data[4..]);
        let m = message::Message {
            user: text.chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect(),
            timestamp: NOW.wrapping_add(u64::from(data[0]) % 256).wrapping_sub(128),
            version: "3.0.0".into(),
            allow: None,
            ports: vec![PortProto::tcp(u16::from_be_bytes([data[1], data[2]]).max(1))],
            client_timeout: (data[3] & 1 == 1).then_some(u32::from(data[3])),
            nat: None,
            digest: HmacDigest::ALL[usize::from(data[3]) % HmacDigest::ALL.len()],
        };
        let packet = wire::seal(message::format(&m, 1234567890123456).as_bytes(), KEY, HMAC_KEY, HmacDigest::Sha256, [data[0]; 8]);
        let first = send(&mut kind, packet.as_bytes());
        assert_eq!(send(&mut kind, packet.as_bytes()), 0, "a packet opened twice");
        if first == 1 {
            let mut flipped = packet.into_bytes();
            let at = usize::from(data[1]) % flipped.len();
            flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
            assert_eq!(send(&mut stanzas(), &flipped), 0, "a changed packet opened the door");
        }
    }
});
