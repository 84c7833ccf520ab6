//! Any bytes as a captured packet: parsing never panics, a knock is only ever read from a
//! complete IP header and transport header of the IP version the packet claims, and a UDP
//! payload never reaches past the datagram's own length field.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = knockd::packet::parse(data) {
        // Whatever was accepted came from a complete IP header and transport header.
        assert!(data.len() >= 28);
        assert!(packet.knock.src.is_ipv4() == (data[0] >> 4 == 4));
        if let Some(payload) = packet.payload {
            assert!(payload.len() + 28 <= data.len());
        }
    }
});
