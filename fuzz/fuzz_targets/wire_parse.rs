//! Any bytes as a captured packet: parsing never panics, and a knock is only ever read from a
//! complete IP header and transport header of the IP version the packet claims.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(knock) = knockd::wire::parse(data) {
        // Whatever was accepted came from a complete IP header and transport header.
        assert!(data.len() >= 28);
        assert!(knock.src.is_ipv4() == (data[0] >> 4 == 4));
    }
});
