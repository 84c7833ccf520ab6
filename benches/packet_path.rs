//! Nanoseconds per packet on the hot path: parsing a frame, matching a knock, and both through
//! the engine; and the one expensive check, an SPA packet's Ed25519 signature (which the SPA
//! budget allows 2,000 times a second). `cargo bench` prints the figures, `cargo bench --profile
//! small` those of the router build; nothing here asserts a time.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use knockd::config::{self, PortProto};
use knockd::doors::sequence::matcher::Matcher;
use knockd::doors::spa::{Key, Request, Verifier};
use knockd::doors::{Clock, Kinds, spa};
use knockd::engine::Engine;
use knockd::grant::MemoryFirewall;
use knockd::grant::legacy_command::MemorySpawner;
use knockd::packet::{self, Knock};

const CONFIG: &str = "log: {level: error}
doors:
  ssh: {sequence: [7000, 8000, 9000], seq_timeout: 5s, tcp_flags: syn, open: {ports: [22], timeout: 30s}}
";

const HOST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// A SYN from `src` to this host's `dport`, built as the tests build theirs.
fn syn(src: Ipv4Addr, dport: u16) -> Vec<u8> {
    Knock::tcp_syn(src, HOST, dport).emit()
}

fn benches(c: &mut Criterion) {
    let packet = syn(Ipv4Addr::new(198, 18, 0, 2), 7000);
    c.bench_function("packet::parse IPv4 TCP SYN", |b| b.iter(|| packet::parse(black_box(&packet))));

    let config = config::yaml::parse("bench.yaml", CONFIG, &Kinds).unwrap();
    // A first knock from a new source each time: the insert path, with the table filling up
    // and evicting (cap 65536).
    c.bench_function("matcher: first knock, new source", |b| {
        let mut m = Matcher::new(&config.doors, config.max_attempts);
        let mut events = Vec::with_capacity(4);
        let mut n: u32 = 0;
        b.iter(|| {
            n = n.wrapping_add(1);
            let knock = Knock::new(
                IpAddr::V4(Ipv4Addr::from(0xc612_0000 | (n & 0x1_ffff))),
                IpAddr::V4(HOST),
                PortProto::tcp(7000),
                0x02,
            );
            events.clear();
            m.knock(black_box(&knock), Duration::from_millis(u64::from(n)), &mut events);
        })
    });
    c.bench_function("matcher: knock to a port of no door", |b| {
        let mut m = Matcher::new(&config.doors, config.max_attempts);
        let mut events = Vec::new();
        let knock = Knock::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)), IpAddr::V4(HOST), PortProto::tcp(80), 0x02);
        b.iter(|| m.knock(black_box(&knock), Duration::ZERO, &mut events))
    });
    c.bench_function("engine: full sequence (3 packets), parse + match + grant", |b| {
        let packets: Vec<Vec<u8>> = [7000, 8000, 9000].iter().map(|p| syn(Ipv4Addr::new(198, 18, 0, 2), *p)).collect();
        b.iter_batched(
            || Engine::start(config.clone(), MemoryFirewall::default(), MemorySpawner::default()).unwrap(),
            |mut engine| {
                for (i, p) in packets.iter().enumerate() {
                    engine.packet(p, Duration::from_millis(i as u64));
                }
                engine.flush()
            },
            BatchSize::SmallInput,
        )
    });
}

/// One Ed25519-signed SPA packet checked (not remembered, so every round checks it afresh).
fn spa_signature(c: &mut Criterion) {
    let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let public = vec![("alice".to_owned(), signing.verifying_key())];
    let mut verifier = Verifier::new(None, public, Duration::from_secs(30));
    verifier.set_boot_time(Duration::ZERO);
    let request = Request { timestamp: 1_790_000_000, nonce: [9; 16], door: "ssh".into(), address: None };
    let packet = spa::encode(&request, &Key::Ed25519(signing));
    let clock = Clock::new(Duration::ZERO, Duration::from_secs(1_790_000_001));
    assert!(verifier.check(&packet, "ssh", &clock).is_ok(), "the packet verifies");
    c.bench_function("spa: an Ed25519-signed packet checked", |b| {
        b.iter(|| verifier.check(black_box(&packet), "ssh", &clock))
    });
}

criterion_group!(packet_path, benches, spa_signature);
criterion_main!(packet_path);
