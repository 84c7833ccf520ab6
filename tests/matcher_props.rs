//! Properties of the matcher over random knock streams (proptest).

mod util;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use knockd::config::{Door, PortProto, TcpFlags, tcp_flag};
use knockd::doors::sequence::FixedSequence;
use knockd::doors::sequence::matcher::{Event, Matcher};
use knockd::packet::Knock;
use proptest::prelude::*;

fn door(name: &str, sequence: Vec<PortProto>, timeout_ms: u64, flags: TcpFlags) -> Door {
    Door { seq_timeout: Duration::from_millis(timeout_ms), tcp_flags: flags, ..util::door(name, &sequence) }
}

/// Two doors sharing ports, one with a repeated port and a flag filter.
fn doors() -> Vec<Door> {
    vec![
        door("a", vec![PortProto::tcp(1), PortProto::tcp(2), PortProto::udp(3)], 50, TcpFlags::default()),
        door(
            "b",
            vec![PortProto::tcp(2), PortProto::tcp(2), PortProto::tcp(4)],
            30,
            TcpFlags { set: tcp_flag::SYN, clear: tcp_flag::ACK },
        ),
    ]
}

/// A knock: source (a small pool, so attempts collide), port (door ports and noise), flags,
/// and time since the previous knock.
fn knock() -> impl Strategy<Value = (u8, PortProto, u8, u64)> {
    let port = prop_oneof![
        Just(PortProto::tcp(1)),
        Just(PortProto::tcp(2)),
        Just(PortProto::udp(3)),
        Just(PortProto::tcp(3)),
        Just(PortProto::tcp(4)),
        Just(PortProto::tcp(5)),
    ];
    let flags = prop_oneof![Just(tcp_flag::SYN), Just(tcp_flag::SYN | tcp_flag::ACK), Just(tcp_flag::ACK)];
    (0u8..6, port, flags, 0u64..20)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_opens_without_the_sequence_in_order_in_time_and_never_exceeds_the_cap(
        stream in proptest::collection::vec(knock(), 1..300),
        cap in 1usize..8,
    ) {
        let doors = doors();
        let mut m = Matcher::new(&doors, cap);
        let mut history: Vec<(IpAddr, PortProto, u8, Duration)> = Vec::new();
        let mut now = Duration::ZERO;
        let mut events = Vec::new();
        for (src, port, flags, gap) in stream {
            now += Duration::from_millis(gap);
            let src = IpAddr::V4(Ipv4Addr::new(198, 18, 0, src));
            let flags = if port.proto == knockd::config::Proto::Udp { 0 } else { flags };
            history.push((src, port, flags, now));
            events.clear();
            m.knock(&Knock::new(src, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), port, flags), now, &mut events);
            prop_assert!(m.len() <= cap, "{} attempts with a cap of {cap}", m.len());
            for event in &events {
                if let Event::Open { door, src, .. } = event {
                    let d = &doors[*door];
                    let Some(FixedSequence(sequence)) = d.proof::<FixedSequence>() else { unreachable!() };
                    // The door's ports, in order, from this source, with matching flags,
                    // all within seq_timeout before now, ending with this very knock.
                    let window: Vec<PortProto> = history
                        .iter()
                        .filter(|(s, p, f, t)| s == src && now - *t <= d.seq_timeout
                            && (p.proto != knockd::config::Proto::Tcp || d.tcp_flags.matches(*f)))
                        .map(|(_, p, _, _)| *p)
                        .collect();
                    prop_assert_eq!(window.last(), sequence.last());
                    let mut wanted = sequence.iter().peekable();
                    for port in &window {
                        if wanted.peek() == Some(&port) {
                            wanted.next();
                        }
                    }
                    prop_assert!(wanted.peek().is_none(), "{:?} opened {} from {:?}", src, d.name, window);
                }
            }
        }
    }

    #[test]
    fn a_clean_sequence_always_opens(gaps in proptest::collection::vec(0u64..16, 3), noise in 0usize..50) {
        // Any amount of other sources' traffic, and the sequence well within its timeout.
        let doors = doors();
        let mut m = Matcher::new(&doors, 1024);
        let mut events = Vec::new();
        let mut now = Duration::ZERO;
        let me = IpAddr::V4(Ipv4Addr::new(198, 18, 9, 9));
        for (i, port) in [PortProto::tcp(1), PortProto::tcp(2), PortProto::udp(3)].into_iter().enumerate() {
            for n in 0..noise {
                let other = IpAddr::V4(Ipv4Addr::new(198, 19, 0, n as u8));
                m.knock(&Knock::new(other, me, PortProto::tcp(1), tcp_flag::SYN), now, &mut events);
            }
            now += Duration::from_millis(gaps[i]);
            events.clear();
            m.knock(&Knock::new(me, me, port, tcp_flag::SYN), now, &mut events);
        }
        let opened = events.contains(&Event::Open { door: 0, src: me, slot: 0 });
        prop_assert!(opened, "a clean sequence did not open");
    }
}
