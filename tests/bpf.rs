//! The capture filter, run on a classic BPF interpreter written here with the kernel's
//! semantics, and checked by the kernel's own verifier (attaching to a UDP socket needs no root).

mod util;

use std::net::IpAddr;

use knockd::capture::bpf::{self, BpfError, Insn, SNAPLEN, ancillary, op};
use knockd::config::PortProto;
use knockd::packet::Knock;
use knockd::packet::build::KnockPacket;
use knockd::packet::ipv4::Ipv4Mut;
use knockd::packet::ipv6::Ipv6Mut;
use knockd::packet::tcp::TcpMut;

/// What the kernel knows about a packet besides its bytes.
#[derive(Clone, Copy)]
struct Meta {
    protocol: u32,
    pkttype: u32,
    ifindex: u32,
}

const INCOMING_V4: Meta = Meta { protocol: 0x0800, pkttype: 0, ifindex: 2 };
const INCOMING_V6: Meta = Meta { protocol: 0x86dd, pkttype: 0, ifindex: 2 };

/// Runs `prog` like the kernel: out-of-bounds packet loads end the program with 0.
fn run(prog: &[Insn], packet: &[u8], meta: Meta) -> u32 {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let load = |at: usize, n: usize| -> Option<u32> {
        packet.get(at..at + n).map(|b| b.iter().fold(0u32, |v, byte| (v << 8) | u32::from(*byte)))
    };
    for _ in 0..prog.len() {
        let i = prog[pc];
        pc += 1;
        match i.code {
            op::LD_W_ABS if i.k >= ancillary::PROTOCOL => {
                a = match i.k {
                    ancillary::PROTOCOL => meta.protocol,
                    ancillary::PKTTYPE => meta.pkttype,
                    ancillary::IFINDEX => meta.ifindex,
                    k => panic!("unexpected ancillary load {k:#x}"),
                }
            }
            op::LD_W_ABS | op::LD_H_ABS | op::LD_B_ABS | op::LD_H_IND => {
                let width = match i.code {
                    op::LD_W_ABS => 4,
                    op::LD_B_ABS => 1,
                    _ => 2,
                };
                let at = i.k as usize + if i.code == op::LD_H_IND { x as usize } else { 0 };
                match load(at, width) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            op::LDX_B_MSH => match load(i.k as usize, 1) {
                Some(v) => x = 4 * (v & 0xf),
                None => return 0,
            },
            op::ALU_AND_K => a &= i.k,
            op::JA => pc += i.k as usize,
            op::JEQ_K | op::JSET_K => {
                let hit = if i.code == op::JEQ_K { a == i.k } else { a & i.k != 0 };
                pc += usize::from(if hit { i.jt } else { i.jf });
            }
            op::RET_K => return i.k,
            code => panic!("unexpected opcode {code:#x}"),
        }
        assert!(pc < prog.len(), "jumped past the end");
    }
    panic!("program did not return");
}

/// The structural checks the kernel's classic BPF checker makes.
fn assert_well_formed(prog: &[Insn]) {
    assert!(!prog.is_empty() && prog.len() <= bpf::MAX_INSNS);
    assert_eq!(prog.last().unwrap().code, op::RET_K, "must end in a return");
    for (pc, i) in prog.iter().enumerate() {
        let targets: Vec<usize> = match i.code {
            op::JA => vec![i.k as usize],
            op::JEQ_K | op::JSET_K => vec![usize::from(i.jt), usize::from(i.jf)],
            _ => vec![],
        };
        for t in targets {
            assert!(pc + 1 + t < prog.len(), "jump at {pc} leaves the program");
        }
    }
}

/// A knock from 198.18.0.2 to 198.18.0.1 on `dport` with an IPv4 header of `ihl_words` 4-byte
/// words: a datagram for UDP, else a SYN whose header names `proto`.
fn ipv4(proto: u8, dport: u16, ihl_words: u8) -> Vec<u8> {
    let mut p = knock("198.18.0.2", proto, dport).ipv4_header_len(usize::from(ihl_words) * 4).emit();
    Ipv4Mut::new(&mut p).set_protocol(proto);
    p
}

/// The same over IPv6, from 2001:db8::2, with `next_header` in the fixed header.
fn ipv6(next_header: u8, dport: u16) -> Vec<u8> {
    let mut p = knock("2001:db8::2", next_header, dport).emit();
    Ipv6Mut::new(&mut p).set_next_header(next_header);
    p
}

/// A knock on `dport` from `src` to this host: UDP for `proto` 17, else TCP.
fn knock(src: &str, proto: u8, dport: u16) -> KnockPacket {
    let src: IpAddr = src.parse().unwrap();
    let port = if proto == UDP { PortProto::udp(dport) } else { PortProto::tcp(dport) };
    Knock::on(src, util::host_for(src), port)
}

const TCP: u8 = 6;
const UDP: u8 = 17;

fn knocks() -> Vec<PortProto> {
    vec![PortProto::tcp(7000), PortProto::tcp(8000), PortProto::udp(9000)]
}

#[test]
fn accepts_knocks_and_only_knocks() {
    let prog = bpf::build(&knocks(), None, true).unwrap();
    assert_well_formed(&prog);
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 5), INCOMING_V4), SNAPLEN);
    assert_eq!(run(&prog, &ipv4(TCP, 8000, 5), INCOMING_V4), SNAPLEN);
    assert_eq!(run(&prog, &ipv4(UDP, 9000, 5), INCOMING_V4), SNAPLEN);
    assert_eq!(run(&prog, &ipv6(TCP, 7000), INCOMING_V6), SNAPLEN);
    assert_eq!(run(&prog, &ipv6(UDP, 9000), INCOMING_V6), SNAPLEN);

    assert_eq!(run(&prog, &ipv4(TCP, 22, 5), INCOMING_V4), 0, "not a knock port");
    assert_eq!(run(&prog, &ipv4(UDP, 7000, 5), INCOMING_V4), 0, "7000 is a TCP knock");
    assert_eq!(run(&prog, &ipv4(TCP, 9000, 5), INCOMING_V4), 0, "9000 is a UDP knock");
    assert_eq!(run(&prog, &ipv6(UDP, 7000), INCOMING_V6), 0);
    assert_eq!(run(&prog, &ipv4(1, 7000, 5), INCOMING_V4), 0, "ICMP");
    assert_eq!(run(&prog, &ipv6(58, 7000), INCOMING_V6), 0, "ICMPv6");
}

#[test]
fn ipv4_options_move_the_transport_header() {
    let prog = bpf::build(&knocks(), None, true).unwrap();
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 6), INCOMING_V4), SNAPLEN);
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 15), INCOMING_V4), SNAPLEN);
    let mut tricky = ipv4(TCP, 22, 6);
    TcpMut::new(&mut tricky[20..]).set_dst_port(7000); // 7000 where the port would be without options
    assert_eq!(run(&prog, &tricky, INCOMING_V4), 0);
}

#[test]
fn drops_what_cannot_be_a_knock() {
    let prog = bpf::build(&knocks(), None, true).unwrap();
    let outgoing = Meta { pkttype: bpf::PACKET_OUTGOING, ..INCOMING_V4 };
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 5), outgoing), 0, "our own packets");
    for (pkttype, what) in [(1, "broadcast"), (2, "multicast"), (3, "for another host (a bridge, promiscuous mode)")] {
        assert_eq!(run(&prog, &ipv4(TCP, 7000, 5), Meta { pkttype, ..INCOMING_V4 }), 0, "{what}");
    }
    let arp = Meta { protocol: 0x0806, ..INCOMING_V4 };
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 5), arp), 0);

    let mut later_fragment = ipv4(TCP, 7000, 5);
    Ipv4Mut::new(&mut later_fragment).set_flags_and_offset(0x0010);
    assert_eq!(run(&prog, &later_fragment, INCOMING_V4), 0);
    let mut first_fragment = ipv4(TCP, 7000, 5);
    Ipv4Mut::new(&mut first_fragment).set_flags_and_offset(0x2000); // more fragments, offset 0
    assert_eq!(run(&prog, &first_fragment, INCOMING_V4), SNAPLEN);

    // IPv6 with a hop-by-hop header: the knock is behind it, which the filter does not walk.
    assert_eq!(run(&prog, &ipv6(0, 7000), INCOMING_V6), 0);
}

#[test]
fn truncated_packets_are_dropped() {
    let prog = bpf::build(&knocks(), None, true).unwrap();
    let full = ipv4(TCP, 7000, 5);
    for len in 0..24 {
        assert_eq!(run(&prog, &full[..len], INCOMING_V4), 0, "len {len}");
    }
    let full6 = ipv6(TCP, 7000);
    for len in 0..44 {
        assert_eq!(run(&prog, &full6[..len], INCOMING_V6), 0, "len {len}");
    }
}

#[test]
fn interfaces_limit_capture() {
    let prog = bpf::build(&knocks(), Some(&[3, 7]), true).unwrap();
    assert_well_formed(&prog);
    let on = |ifindex| Meta { ifindex, ..INCOMING_V4 };
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 5), on(3)), SNAPLEN);
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 5), on(7)), SNAPLEN);
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 5), on(2)), 0);
    let none_yet = bpf::build(&knocks(), Some(&[]), true).unwrap();
    assert_well_formed(&none_yet);
    assert_eq!(run(&none_yet, &ipv4(TCP, 7000, 5), on(3)), 0, "named interfaces that do not exist: nothing passes");
    let many: Vec<u32> = (1..=250).collect();
    let prog = bpf::build(&knocks(), Some(&many), true).unwrap();
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 5), on(250)), SNAPLEN);
    let too_many: Vec<u32> = (1..=300).collect();
    assert_eq!(bpf::build(&knocks(), Some(&too_many), true), Err(BpfError::JumpTooFar));
}

#[test]
fn no_ports_drops_everything() {
    let prog = bpf::build(&[], None, true).unwrap();
    assert_well_formed(&prog);
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 5), INCOMING_V4), 0);
    assert_eq!(run(&prog, &ipv6(UDP, 9000), INCOMING_V6), 0);
}

#[test]
fn many_ports_and_the_length_limit() {
    let ports: Vec<PortProto> = (1000..3000).map(PortProto::tcp).collect();
    let prog = bpf::build(&ports, None, true).unwrap();
    assert_well_formed(&prog);
    assert_eq!(run(&prog, &ipv4(TCP, 2999, 5), INCOMING_V4), SNAPLEN);
    assert_eq!(run(&prog, &ipv4(TCP, 3000, 5), INCOMING_V4), 0);
    let too_many: Vec<PortProto> = (1000..4000).map(PortProto::tcp).collect();
    assert!(matches!(bpf::build(&too_many, None, true), Err(BpfError::TooLong(n)) if n > bpf::MAX_INSNS));
}

/// The kernel's checker accepts the program (any socket takes a filter; no root needed).
#[test]
fn the_kernel_accepts_the_program() {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    for ifindexes in [None, Some(&[2, 3][..]), Some(&[][..])] {
        let prog = bpf::build(&knocks(), ifindexes, true).unwrap();
        let filter: Vec<socket2::SockFilter> =
            prog.iter().map(|i| socket2::SockFilter::new(i.code, i.jt, i.jf, i.k)).collect();
        socket.attach_filter(&filter).unwrap();
    }
}

#[test]
fn the_frame_type_and_the_ip_version_must_agree() {
    for with_v6 in [true, false] {
        let prog = bpf::build(&knocks(), None, with_v6).unwrap();
        // An IPv6 packet in a frame that says IPv4, with bytes where an IPv4 reading finds no
        // fragment offset, protocol TCP and (header length 0) port 7000.
        let mut v6_in_v4 = ipv6(TCP, 7000);
        let mut as_v4 = Ipv4Mut::new(&mut v6_in_v4);
        as_v4.set_flags_and_offset(0);
        as_v4.set_protocol(TCP);
        TcpMut::new(&mut v6_in_v4).set_dst_port(7000);
        assert_eq!(run(&prog, &v6_in_v4, INCOMING_V4), 0, "ipv6 enabled: {with_v6}");
        // And the other way round: an IPv4 packet read as IPv6 finds TCP and port 7000.
        let mut v4_in_v6 = ipv4(TCP, 7000, 5);
        v4_in_v6.resize(60, 0);
        Ipv6Mut::new(&mut v4_in_v6).set_next_header(TCP);
        TcpMut::new(&mut v4_in_v6[40..]).set_dst_port(7000);
        assert_eq!(run(&prog, &v4_in_v6, INCOMING_V6), 0, "ipv6 enabled: {with_v6}");
    }
}

#[test]
fn ipv4_only_drops_every_ipv6_knock() {
    let prog = bpf::build(&knocks(), None, false).unwrap();
    assert_well_formed(&prog);
    assert_eq!(run(&prog, &ipv4(TCP, 7000, 5), INCOMING_V4), SNAPLEN);
    assert_eq!(run(&prog, &ipv6(TCP, 7000), INCOMING_V6), 0);
    assert_eq!(run(&prog, &ipv6(UDP, 9000), INCOMING_V6), 0);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    let filter: Vec<socket2::SockFilter> =
        prog.iter().map(|i| socket2::SockFilter::new(i.code, i.jt, i.jf, i.k)).collect();
    socket.attach_filter(&filter).expect("the kernel accepts the IPv4-only program");
}
