//! The matcher, driven with injected time: no clock, no network.

mod util;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use knockd::config::{Door, OpenAction, PortProto, TcpFlags, tcp_flag};
use knockd::doors::sequence::matcher::{Event, Matcher};
use knockd::packet::Knock;
use util::host_for;

const SYN: u8 = tcp_flag::SYN;

fn door(name: &str, sequence: &[PortProto], seq_timeout_ms: u64) -> Door {
    Door {
        seq_timeout: Duration::from_millis(seq_timeout_ms),
        open: Some(OpenAction {
            ports: vec![PortProto::tcp(22)],
            timeout: Duration::from_secs(30),
            per_port: false,
            attach: None,
            forward: Vec::new(),
        }),
        ..util::door(name, sequence)
    }
}

fn ssh() -> Door {
    door("ssh", &[PortProto::tcp(7000), PortProto::tcp(8000), PortProto::tcp(9000)], 5000)
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, last))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Drives a matcher and collects only the events that matter for a test.
struct Run {
    m: Matcher,
    events: Vec<Event>,
}

impl Run {
    fn new(doors: &[Door], cap: usize) -> Self {
        Run { m: Matcher::new(doors, cap), events: Vec::new() }
    }

    /// The events that change an attempt (ignored knocks are reported too, as
    /// `Event::Ignored`; `ignored` looks at those).
    fn hit(&mut self, src: IpAddr, port: PortProto, flags: u8, at: Duration) -> Vec<Event> {
        self.events.clear();
        self.m.knock(&Knock::new(src, host_for(src), port, flags), at, &mut self.events);
        self.events.iter().filter(|e| !matches!(e, Event::Ignored { .. })).cloned().collect()
    }

    /// Why the last knock did not count, per door it concerned.
    fn ignored(&self) -> Vec<&'static str> {
        self.events.iter().filter_map(|e| if let Event::Ignored { why, .. } = e { Some(*why) } else { None }).collect()
    }

    fn tcp(&mut self, src: IpAddr, port: u16, at_ms: u64) -> Vec<Event> {
        self.hit(src, PortProto::tcp(port), SYN, ms(at_ms))
    }

    fn opened(&mut self, src: IpAddr, port: u16, at_ms: u64) -> bool {
        self.tcp(src, port, at_ms).contains(&Event::Open { door: 0, src, slot: 0 })
    }
}

#[test]
fn right_order_opens_and_reports_stages() {
    let mut r = Run::new(&[ssh()], 100);
    let a = v4(2);
    assert_eq!(r.tcp(a, 7000, 0), [Event::Stage { door: 0, src: a, stage: 1, of: 3 }]);
    assert_eq!(r.tcp(a, 8000, 10), [Event::Stage { door: 0, src: a, stage: 2, of: 3 }]);
    assert_eq!(r.tcp(a, 9000, 20), [Event::Open { door: 0, src: a, slot: 0 }]);
    assert!(r.m.is_empty(), "a completed attempt is forgotten");
    // Knocking again works again: it is a fresh attempt.
    assert!(!r.opened(a, 7000, 30));
    assert!(!r.opened(a, 8000, 31));
    assert!(r.opened(a, 9000, 32));
}

#[test]
fn wrong_order_does_not_open() {
    let mut r = Run::new(&[ssh()], 100);
    let a = v4(2);
    for (port, at) in [(9000, 0), (8000, 1), (7000, 2)] {
        assert!(!r.opened(a, port, at));
    }
    let mut r = Run::new(&[ssh()], 100);
    r.tcp(a, 7000, 0);
    assert_eq!(r.tcp(a, 9000, 1), [Event::Restart { door: 0, src: a }], "skipping a knock restarts");
    assert!(!r.opened(a, 8000, 2), "the attempt is gone, 8000 alone starts nothing");
    assert!(!r.opened(a, 9000, 3));
}

#[test]
fn out_of_order_first_port_starts_a_new_attempt() {
    let mut r = Run::new(&[ssh()], 100);
    let a = v4(2);
    r.tcp(a, 7000, 0);
    r.tcp(a, 8000, 1);
    // The client starts over: the first port ends the old attempt and begins a new one.
    assert_eq!(
        r.tcp(a, 7000, 2),
        [Event::Restart { door: 0, src: a }, Event::Stage { door: 0, src: a, stage: 1, of: 3 }]
    );
    assert!(!r.opened(a, 8000, 3));
    assert!(r.opened(a, 9000, 4));
}

#[test]
fn repeated_port_in_a_sequence() {
    let mut r = Run::new(&[door("d", &[PortProto::tcp(1), PortProto::tcp(1), PortProto::tcp(2)], 1000)], 10);
    let a = v4(2);
    assert!(!r.opened(a, 1, 0));
    assert!(!r.opened(a, 1, 1));
    assert!(r.opened(a, 2, 2));
}

#[test]
fn ports_outside_the_sequence_never_disturb_progress() {
    let mut r = Run::new(&[ssh()], 100);
    let a = v4(2);
    r.tcp(a, 7000, 0);
    assert!(r.tcp(a, 22, 1).is_empty());
    assert!(r.hit(a, PortProto::udp(8000), 0, ms(2)).is_empty(), "8000/udp is not 8000/tcp");
    r.tcp(a, 8000, 3);
    assert!(r.tcp(a, 443, 4).is_empty());
    assert!(r.opened(a, 9000, 5));
}

#[test]
fn sequence_must_complete_within_seq_timeout_of_first_knock() {
    let mut r = Run::new(&[ssh()], 100);
    let a = v4(2);
    r.tcp(a, 7000, 0);
    r.tcp(a, 8000, 4000);
    assert!(r.opened(a, 9000, 5000), "exactly at the timeout is still in time");

    r.tcp(a, 7000, 10_000);
    r.tcp(a, 8000, 11_000);
    assert_eq!(r.tcp(a, 9000, 15_001), [Event::TimedOut { door: 0, src: a, stage: 2, of: 3 }]);
    assert!(!r.opened(a, 9000, 15_002));
}

#[test]
fn a_slow_first_knock_after_timeout_starts_over() {
    let mut r = Run::new(&[ssh()], 100);
    let a = v4(2);
    r.tcp(a, 7000, 0);
    assert_eq!(
        r.tcp(a, 7000, 6000),
        [Event::TimedOut { door: 0, src: a, stage: 1, of: 3 }, Event::Stage { door: 0, src: a, stage: 1, of: 3 }]
    );
    r.tcp(a, 8000, 6001);
    assert!(r.opened(a, 9000, 6002));
}

#[test]
fn interleaved_sources_are_matched_independently() {
    let mut r = Run::new(&[ssh()], 10_000);
    let sources: Vec<IpAddr> =
        (0..10_000u32).map(|i| IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i))).collect();
    let mut opened = 0;
    for (step, port) in [7000, 8000, 9000].into_iter().enumerate() {
        for src in &sources {
            if r.tcp(*src, port, step as u64).contains(&Event::Open { door: 0, src: *src, slot: 0 }) {
                opened += 1;
            }
        }
    }
    assert_eq!(opened, sources.len());
    assert!(r.m.is_empty());
}

#[test]
fn one_source_interleaving_its_own_doors() {
    let doors = [ssh(), door("web", &[PortProto::udp(7000), PortProto::tcp(8000), PortProto::tcp(6000)], 5000)];
    let mut r = Run::new(&doors, 100);
    let a = v4(2);
    r.tcp(a, 7000, 0);
    r.hit(a, PortProto::udp(7000), 0, ms(1));
    // 8000/tcp is in both sequences: it advances both.
    assert_eq!(
        r.tcp(a, 8000, 2),
        [Event::Stage { door: 0, src: a, stage: 2, of: 3 }, Event::Stage { door: 1, src: a, stage: 2, of: 3 }]
    );
    // 9000 belongs to ssh only; 6000 to web only.
    assert_eq!(r.tcp(a, 9000, 3), [Event::Open { door: 0, src: a, slot: 0 }]);
    assert_eq!(r.tcp(a, 6000, 4), [Event::Open { door: 1, src: a, slot: 1 }]);
}

#[test]
fn ipv6_and_udp() {
    let d = door("v6", &[PortProto::udp(5000), PortProto::tcp(5001), PortProto::udp(5002)], 1000);
    let mut r = Run::new(&[d], 100);
    let a: IpAddr = IpAddr::V6("2001:db8::2".parse::<Ipv6Addr>().unwrap());
    let b: IpAddr = IpAddr::V6("2001:db8::3".parse::<Ipv6Addr>().unwrap());
    r.hit(a, PortProto::udp(5000), 0, ms(0));
    r.hit(b, PortProto::udp(5000), 0, ms(0));
    r.hit(a, PortProto::tcp(5001), SYN, ms(1));
    assert!(r.hit(b, PortProto::udp(5001), 0, ms(1)).is_empty(), "5001/udp is not in the sequence");
    assert_eq!(r.hit(b, PortProto::udp(5002), 0, ms(1)), [Event::Restart { door: 0, src: b }]);
    assert_eq!(r.hit(a, PortProto::udp(5002), 0, ms(2)), [Event::Open { door: 0, src: a, slot: 0 }]);
    assert!(r.hit(b, PortProto::udp(5002), 0, ms(2)).is_empty());
}

#[test]
fn tcp_flags_filter_ignores_instead_of_resetting() {
    let mut d = ssh();
    d.tcp_flags = TcpFlags::parse_list("syn,!ack").unwrap();
    let mut r = Run::new(&[d], 100);
    let a = v4(2);
    assert!(r.hit(a, PortProto::tcp(7000), tcp_flag::SYN | tcp_flag::ACK, ms(0)).is_empty());
    assert_eq!(r.ignored(), ["its TCP flags are not the door's tcp_flags"]);
    assert!(r.m.is_empty(), "a SYN-ACK does not start an attempt");
    r.hit(a, PortProto::tcp(7000), SYN, ms(1));
    // A stray ACK to a later port is ignored, not counted as out of order.
    assert!(r.hit(a, PortProto::tcp(9000), tcp_flag::ACK, ms(2)).is_empty());
    assert!(r.hit(a, PortProto::tcp(8000), tcp_flag::RST, ms(3)).is_empty());
    r.hit(a, PortProto::tcp(8000), SYN, ms(4));
    assert!(r.hit(a, PortProto::tcp(9000), SYN, ms(5)).contains(&Event::Open { door: 0, src: a, slot: 0 }));
    // UDP knocks have no flags to check.
    let mut udp = door("u", &[PortProto::udp(1), PortProto::udp(2)], 1000);
    udp.tcp_flags = TcpFlags::parse_list("syn").unwrap();
    let mut r = Run::new(&[udp], 10);
    r.hit(a, PortProto::udp(1), 0, ms(0));
    assert_eq!(r.hit(a, PortProto::udp(2), 0, ms(1)), [Event::Open { door: 0, src: a, slot: 0 }]);
}

#[test]
fn single_knock_door_opens_without_state() {
    let mut r = Run::new(&[door("one", &[PortProto::udp(4000)], 1000)], 10);
    let a = v4(2);
    assert_eq!(r.hit(a, PortProto::udp(4000), 0, ms(0)), [Event::Open { door: 0, src: a, slot: 0 }]);
    assert!(r.m.is_empty());
}

#[test]
fn table_is_capped_and_evicts_the_oldest_attempt() {
    let mut r = Run::new(&[ssh()], 100);
    let legit = v4(1);
    r.tcp(legit, 7000, 0);
    // A flood of spoofed first knocks, ten times the cap.
    for i in 0..1000u32 {
        let spoofed = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + i));
        r.tcp(spoofed, 7000, 1);
        assert!(r.m.len() <= 100);
    }
    assert_eq!(r.m.len(), 100);
    assert_eq!(r.m.stats().evictions, 901);
    // The legitimate attempt was the oldest and was evicted: it must start over, and can.
    assert!(!r.opened(legit, 8000, 2));
    r.tcp(legit, 7000, 3);
    r.tcp(legit, 8000, 4);
    assert!(r.opened(legit, 9000, 5));
    assert_eq!(r.m.len(), 100 - 1, "the completed attempt left the table");
}

#[test]
fn a_recent_attempt_survives_a_flood_smaller_than_the_cap() {
    let mut r = Run::new(&[ssh()], 1000);
    let legit = v4(1);
    for i in 0..500u32 {
        r.tcp(IpAddr::V4(Ipv4Addr::from(0xc612_0100 + i)), 7000, 0);
    }
    r.tcp(legit, 7000, 1);
    for i in 500..1400u32 {
        r.tcp(IpAddr::V4(Ipv4Addr::from(0xc612_0100 + i)), 7000, 2);
    }
    r.tcp(legit, 8000, 3);
    assert!(r.opened(legit, 9000, 4), "the 900 newer attempts evicted only older ones");
}

#[test]
fn expire_frees_stale_attempts() {
    let doors = [ssh(), door("fast", &[PortProto::tcp(1), PortProto::tcp(2)], 100)];
    let mut r = Run::new(&doors, 100);
    r.tcp(v4(1), 7000, 0);
    r.tcp(v4(2), 1, 0);
    let mut events = Vec::new();
    r.m.expire(ms(101), &mut events);
    assert_eq!(r.m.len(), 1, "only the fast door's attempt is stale");
    assert_eq!(events, [Event::TimedOut { door: 1, src: v4(2), stage: 1, of: 2 }], "and it says so");
    r.m.expire(ms(5001), &mut events);
    assert!(r.m.is_empty());
    assert_eq!(r.m.stats().expired, 2);
    assert_eq!(events.len(), 2);
}

#[test]
fn a_target_limits_which_knocks_count() {
    let mut d = ssh();
    d.target = Some("198.18.0.9".parse().unwrap());
    let mut m = Matcher::new(&[d], 10);
    let mut events = Vec::new();
    let a = v4(2);
    for port in [7000, 8000, 9000] {
        m.knock(&Knock::new(a, v4(1), PortProto::tcp(port), SYN), ms(0), &mut events);
    }
    assert!(
        events.iter().all(|e| matches!(e, Event::Ignored { why, .. } if why.contains("target"))),
        "knocks to another address are not for this door: {events:?}"
    );
    for port in [7000, 8000, 9000] {
        m.knock(&Knock::new(a, v4(9), PortProto::tcp(port), SYN), ms(1), &mut events);
    }
    assert!(events.contains(&Event::Open { door: 0, src: a, slot: 0 }));
}

#[test]
fn sequences_can_be_swapped_and_disabled() {
    let mut r = Run::new(&[ssh()], 10);
    let a = v4(2);
    r.tcp(a, 7000, 0);
    r.m.set_sequence(0, vec![PortProto::tcp(1), PortProto::tcp(2)]);
    assert!(r.m.is_empty(), "attempts on the old sequence are gone");
    assert_eq!(r.m.knock_ports(), [PortProto::tcp(1), PortProto::tcp(2)]);
    assert!(!r.opened(a, 1, 1));
    assert!(r.opened(a, 2, 2));
    r.m.set_sequence(0, Vec::new());
    assert!(r.m.knock_ports().is_empty());
    assert!(!r.opened(a, 1, 3) && !r.opened(a, 2, 4), "a disabled door never opens");
}

#[test]
fn a_reload_keeps_attempts_of_unchanged_doors_only() {
    let web = door("web", &[PortProto::tcp(1), PortProto::tcp(2)], 5000);
    let mut old = Run::new(&[ssh(), web.clone()], 100);
    let a = v4(2);
    old.tcp(a, 7000, 0);
    old.tcp(a, 1, 0);
    // The new config drops nothing of ssh but changes web's sequence and adds a door first.
    let mut web2 = web;
    web2.proofs = vec![util::fixed(&[PortProto::tcp(1), PortProto::tcp(3)])];
    let extra = door("extra", &[PortProto::tcp(5)], 1000);
    let mut new = Run::new(&[extra, ssh(), web2], 100);
    new.m.carry_over(old.m);
    assert_eq!(new.m.len(), 1, "only ssh's attempt carried over");
    new.tcp(a, 8000, 1);
    assert_eq!(new.tcp(a, 9000, 2), [Event::Open { door: 1, src: a, slot: 1 }], "ssh (now door 1) kept its progress");
}

#[test]
fn a_flood_of_first_knocks_never_evicts_a_client_part_way_through() {
    let mut r = Run::new(&[ssh()], 100);
    let legit = v4(1);
    r.tcp(legit, 7000, 0);
    r.tcp(legit, 8000, 1);
    for i in 0..10_000u32 {
        r.tcp(IpAddr::V4(Ipv4Addr::from(0xc613_0000 + i)), 7000, 2);
        assert!(r.m.len() <= 100);
    }
    assert!(r.opened(legit, 9000, 3), "the advanced attempt kept its place");
    assert_eq!(r.m.stats().evictions, 10_000 - 99);
}

/// A knock with a fingerprint: the TCP source port and sequence number of one connection.
fn knock_fp(src: IpAddr, port: u16, fingerprint: u64) -> Knock {
    Knock { fingerprint, ..Knock::new(src, host_for(src), PortProto::tcp(port), SYN) }
}

#[test]
fn a_repeat_of_the_same_packet_counts_once() {
    // A bridge or a VLAN interface shows every frame twice; a client that connects with a
    // timeout retransmits its SYN. The copies carry the same fingerprint.
    let mut r = Run::new(&[ssh()], 100);
    let a = v4(2);
    let mut events = Vec::new();
    for (port, fp) in [(7000, 1), (7000, 1), (8000, 2), (8000, 2), (8000, 2), (9000, 3)] {
        r.m.knock(&knock_fp(a, port, fp), ms(0), &mut events);
    }
    assert!(events.contains(&Event::Open { door: 0, src: a, slot: 0 }), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::Restart { .. })), "{events:?}");
    let repeats = events.iter().filter(|e| matches!(e, Event::Ignored { why, .. } if why.contains("repeats"))).count();
    assert_eq!(repeats, 3);
}

#[test]
fn a_repeated_port_with_a_new_packet_still_counts() {
    let d = door("rep", &[PortProto::tcp(7000), PortProto::tcp(7000), PortProto::tcp(8000)], 5000);
    let mut m = Matcher::new(&[d], 10);
    let a = v4(2);
    let mut events = Vec::new();
    // Each knock a new connection (new fingerprint); each also seen twice.
    for (port, fp) in [(7000, 1), (7000, 1), (7000, 2), (7000, 2), (8000, 3), (8000, 3)] {
        m.knock(&knock_fp(a, port, fp), ms(0), &mut events);
    }
    let opens = events.iter().filter(|e| matches!(e, Event::Open { .. })).count();
    assert_eq!(opens, 1, "{events:?}");
    // Without fingerprints (0), nothing is taken for a repeat: 7000, 7000, 8000 opens.
    let mut events = Vec::new();
    for port in [7000, 7000, 8000] {
        m.knock(&knock_fp(v4(3), port, 0), ms(1), &mut events);
    }
    assert!(events.contains(&Event::Open { door: 0, src: v4(3), slot: 0 }), "{events:?}");
    // Two connections per knock: the second 7000 is the second knock, the next two are repeats.
    let mut events = Vec::new();
    for (port, fp) in [(7000, 1), (7000, 2), (7000, 3), (7000, 4), (8000, 5), (8000, 6)] {
        m.knock(&knock_fp(v4(4), port, fp), ms(2), &mut events);
    }
    assert!(events.contains(&Event::Open { door: 0, src: v4(4), slot: 0 }), "{events:?}");
}

#[test]
fn a_second_connection_for_each_knock_neither_advances_nor_restarts() {
    // A browser or phone app: two SYNs per knock, from two source ports (new fingerprints).
    let mut r = Run::new(&[ssh()], 100);
    let a = v4(2);
    let mut events = Vec::new();
    for (port, fp) in [(7000, 1), (7000, 2), (8000, 3), (8000, 4), (9000, 5)] {
        r.m.knock(&knock_fp(a, port, fp), ms(0), &mut events);
    }
    assert!(events.contains(&Event::Open { door: 0, src: a, slot: 0 }), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::Restart { .. })), "{events:?}");
    let repeats = events.iter().filter(|e| matches!(e, Event::Ignored { why, .. } if why.contains("just matched")));
    assert_eq!(repeats.count(), 2, "{events:?}");
}

#[test]
fn a_repeat_does_not_stand_for_the_next_knock() {
    // 7000 twice is not 7000, 8000: the repeat neither advances nor ends the attempt.
    let mut r = Run::new(&[ssh()], 100);
    let a = v4(2);
    r.tcp(a, 7000, 0);
    assert_eq!(r.tcp(a, 7000, 1), [], "neither a stage nor a restart");
    assert_eq!(r.ignored(), ["it repeats the knock that just matched (another connection)"]);
    assert!(!r.opened(a, 9000, 2), "still waiting for 8000: 9000 restarts it");
    // Another port than the one that just matched still restarts.
    r.tcp(a, 7000, 3);
    r.tcp(a, 8000, 4);
    assert_eq!(
        r.tcp(a, 7000, 5),
        [Event::Restart { door: 0, src: a }, Event::Stage { door: 0, src: a, stage: 1, of: 3 }]
    );
}
