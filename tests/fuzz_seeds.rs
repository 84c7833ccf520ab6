//! The fuzz targets' packet seeds (fuzz/seeds/wire_parse, fuzz/seeds/engine_packets) are built
//! with the packet builder the tests use. This test fails when a committed seed is not what
//! the builder makes; `KNOCKD_WRITE_SEEDS=1 cargo test --test fuzz_seeds` writes them again.

mod util;

use std::net::{Ipv4Addr, Ipv6Addr};

use knockd::packet::Knock;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// One packet per file for `wire_parse`: each version and protocol, and an IPv4 header with
/// options.
fn wire_parse() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("tcp_syn_v4", Knock::tcp_syn(CLIENT, SERVER, 7000).emit()),
        ("tcp_syn_v6", Knock::tcp_syn(CLIENT_V6, SERVER_V6, 7000).emit()),
        ("udp_v4", Knock::udp(CLIENT, SERVER, 62201, b"knok").emit()),
        ("udp_v6", Knock::udp(CLIENT_V6, SERVER_V6, 9000, b"knok").emit()),
        ("ipv4_options", Knock::tcp_syn(CLIENT, SERVER, 7000).ipv4_header_len(28).emit()),
    ]
}

/// The stream `engine_packets` reads (per packet: a time step in 8 ms units, a length, the
/// bytes) that opens both doors of its config: a is 1, 2/udp, 1; b is 2, 3 to 198.18.0.1.
fn engine_packets() -> Vec<(&'static str, Vec<u8>)> {
    let knocks = [
        Knock::tcp_syn(CLIENT, SERVER, 1),
        Knock::udp(CLIENT, SERVER, 2, &[]),
        Knock::tcp_syn(CLIENT, SERVER, 1).src_port(40001),
        Knock::tcp_syn(CLIENT, SERVER, 2).src_port(40002),
        Knock::tcp_syn(CLIENT, SERVER, 3).src_port(40003),
    ];
    let mut stream = Vec::new();
    for knock in knocks {
        let bytes = knock.emit();
        stream.push(1);
        stream.push(u8::try_from(bytes.len()).unwrap());
        stream.extend_from_slice(&bytes);
    }
    vec![("a_then_b", stream)]
}

#[test]
fn the_packet_seeds_are_what_the_builder_makes() {
    let write = std::env::var_os("KNOCKD_WRITE_SEEDS").is_some();
    for (target, seeds) in [("wire_parse", wire_parse()), ("engine_packets", engine_packets())] {
        let dir = util::repo("fuzz/seeds").join(target);
        for (name, bytes) in &seeds {
            let path = dir.join(name);
            if write {
                std::fs::write(&path, bytes).unwrap();
            }
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(
                &committed == bytes,
                "{} is stale: KNOCKD_WRITE_SEEDS=1 cargo test --test fuzz_seeds",
                path.display()
            );
        }
        let mut names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        let mut built: Vec<String> = seeds.iter().map(|(name, _)| name.to_string()).collect();
        built.sort();
        assert_eq!(names, built, "{}: every seed is one this test builds", dir.display());
    }
}

/// The seeds are packets the parser takes: the fuzzer starts from knocks, not from noise.
#[test]
fn every_packet_seed_parses() {
    for (name, bytes) in wire_parse() {
        assert!(knockd::packet::parse(&bytes).is_ok(), "{name}");
    }
}
