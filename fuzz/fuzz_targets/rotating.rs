//! Any secret, door, step counter and settings through the rotating derivation: it never
//! panics, always gives `length` knocks inside the port range, and is deterministic.
#![no_main]

use std::time::Duration;

use knockd::config::Proto;
use knockd::doors::sequence::Rotating;
use knockd::doors::sequence::rotating;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 14 {
        return;
    }
    let counter = u64::from_be_bytes(data[..8].try_into().unwrap());
    let length = 1 + usize::from(data[8]) % 8;
    let low = u16::from_be_bytes([data[9], data[10]]).max(1);
    let span = u16::from_be_bytes([data[11], data[12]]).max(15);
    let high = low.saturating_add(span);
    let door = String::from_utf8_lossy(&data[13..data.len().min(45)]).into_owned();
    let secret = &data[data.len().min(45)..];
    let settings = Rotating {
        secret_files: vec!["/dev/null".into()],
        step: Duration::from_secs(30),
        length,
        ports: (low, high),
        proto: if data[8] & 0x80 == 0 { Proto::Tcp } else { Proto::Udp },
    };
    let sequence = rotating::sequence(secret, &door, counter, &settings);
    assert_eq!(sequence.len(), length);
    assert!(sequence.iter().all(|p| (low..=high).contains(&p.port) && p.proto == settings.proto));
    assert_eq!(sequence, rotating::sequence(secret, &door, counter, &settings), "not deterministic");
    let _ = rotating::counter(Duration::from_millis(counter), Duration::from_millis(u64::from(span)));
});
