//! Builds the classic BPF program that runs in the kernel on the capture socket.
//!
//! It keeps only packets that could be knocks: frames addressed to this host (not sent by it,
//! not broadcast, not for another host's link address), on a configured interface, IPv4 (first
//! fragment) or IPv6 (no extension headers) with the IP version the frame's type says, TCP or
//! UDP, to a port of that protocol some door listens on. Everything else is dropped before it
//! is copied to user space, so noise to other ports costs the daemon nothing. Accepted packets
//! are cut to [`SNAPLEN`].
//!
//! The socket is `SOCK_DGRAM`, so offset 0 is the IP header whatever the link type.

use crate::packet::{PortProto, Proto};

/// Bytes kept of an accepted packet: a whole datagram of a 1500-byte link, with room to spare
/// (single-packet authorization needs the whole payload; knocks need only the headers).
pub const SNAPLEN: u32 = 2048;

/// The kernel's limit on classic BPF program length (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// One classic BPF instruction, as in `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// The opcode.
    pub code: u16,
    /// Jump offset when the test is true.
    pub jt: u8,
    /// Jump offset when the test is false.
    pub jf: u8,
    /// The operand.
    pub k: u32,
}

/// Why no program could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BpfError {
    /// The program would be longer than the kernel allows.
    #[error("the capture filter needs {0} instructions, more than the kernel's {MAX_INSNS}: use fewer knock ports")]
    TooLong(usize),
    /// A conditional jump is farther than classic BPF can encode.
    #[error("the capture filter has a jump too far for classic BPF: use fewer interfaces (at most 250)")]
    JumpTooFar,
}

/// Opcodes (linux/filter.h), spelled out as the assembler would.
pub mod op {
    /// `ld [k]`: a 32-bit word at an absolute offset.
    pub const LD_W_ABS: u16 = 0x20;
    /// `ldh [k]`: a 16-bit half word at an absolute offset.
    pub const LD_H_ABS: u16 = 0x28;
    /// `ldb [k]`: a byte at an absolute offset.
    pub const LD_B_ABS: u16 = 0x30;
    /// `ldh [x + k]`: a half word at an offset from the index register.
    pub const LD_H_IND: u16 = 0x48;
    /// `ldx 4*([k]&0xf)`: the IPv4 header length into the index register.
    pub const LDX_B_MSH: u16 = 0xb1;
    /// `and #k`: the accumulator masked with `k`.
    pub const ALU_AND_K: u16 = 0x54;
    /// `ja k`: jump always.
    pub const JA: u16 = 0x05;
    /// `jeq #k`: jump if equal.
    pub const JEQ_K: u16 = 0x15;
    /// `jset #k`: jump if any of the bits are set.
    pub const JSET_K: u16 = 0x45;
    /// `ret #k`: accept `k` bytes of the packet (0 drops it).
    pub const RET_K: u16 = 0x06;
}

/// Ancillary data offsets (`SKF_AD_OFF + SKF_AD_*`), read with an absolute load.
pub mod ancillary {
    const OFF: u32 = 0xffff_f000; // SKF_AD_OFF = -0x1000
    /// The link-layer protocol (ethertype) of the packet.
    pub const PROTOCOL: u32 = OFF;
    /// The packet type: to this host, broadcast, to another host, outgoing.
    pub const PKTTYPE: u32 = OFF + 4;
    /// The index of the interface the packet came in on.
    pub const IFINDEX: u32 = OFF + 8;
}

/// `PACKET_HOST`: a frame addressed to this host's link address. The others are broadcast (1),
/// multicast (2), for another host (3, seen in promiscuous mode or on a bridge) and outgoing (4).
pub const PACKET_HOST: u32 = 0;
/// `PACKET_OUTGOING`: a packet this host sent, looped back to packet sockets.
pub const PACKET_OUTGOING: u32 = 4;
const ETH_P_IP: u32 = 0x0800;
const ETH_P_IPV6: u32 = 0x86dd;
const IPV4_FRAG_OFFSET_MASK: u32 = 0x1fff;
const IPV6_HEADER_LEN: u32 = 40;

/// Builds the filter for `ports`: on every interface (`None`) or only on these (`Some`, where
/// an empty list passes nothing: the named interfaces do not exist yet), IPv4 only unless `ipv6`.
pub fn build(ports: &[PortProto], ifindexes: Option<&[u32]>, ipv6: bool) -> Result<Vec<Insn>, BpfError> {
    use To::Next;
    let mut a = Asm::default();
    let (drop, tcp_ports, udp_ports) = (a.label(), a.label(), a.label());

    a.stmt(op::LD_W_ABS, ancillary::PKTTYPE);
    a.drop_unless(op::JEQ_K, PACKET_HOST);
    if let Some(ifindexes) = ifindexes {
        let on_interface = a.label();
        a.stmt(op::LD_W_ABS, ancillary::IFINDEX);
        for &index in ifindexes {
            a.jump(op::JEQ_K, index, on_interface.into(), Next);
        }
        a.stmt(op::RET_K, 0);
        a.bind(on_interface);
    }

    let (v4, v6) = (a.label(), a.label());
    a.stmt(op::LD_W_ABS, ancillary::PROTOCOL);
    a.jump(op::JEQ_K, ETH_P_IP, v4.into(), Next);
    a.jump(op::JEQ_K, ETH_P_IPV6, if ipv6 { v6 } else { drop }.into(), drop.into());

    a.bind(v4);
    // The frame's type and the packet's own version must agree.
    a.stmt(op::LD_B_ABS, 0);
    a.stmt(op::ALU_AND_K, 0xf0);
    a.jump(op::JEQ_K, 0x40, Next, drop.into());
    a.stmt(op::LD_H_ABS, 6);
    a.jump(op::JSET_K, IPV4_FRAG_OFFSET_MASK, drop.into(), Next);
    a.stmt(op::LD_B_ABS, 9);
    for (proto, ports) in [(Proto::Tcp, tcp_ports), (Proto::Udp, udp_ports)] {
        let skip = a.label();
        a.jump(op::JEQ_K, u32::from(proto.number()), Next, skip.into());
        a.stmt(op::LDX_B_MSH, 0);
        a.stmt(op::LD_H_IND, 2);
        a.ja(ports);
        a.bind(skip);
    }
    a.ja(drop);

    a.bind(v6);
    a.stmt(op::LD_B_ABS, 0);
    a.stmt(op::ALU_AND_K, 0xf0);
    a.jump(op::JEQ_K, 0x60, Next, drop.into());
    a.stmt(op::LD_B_ABS, 6);
    for (proto, ports) in [(Proto::Tcp, tcp_ports), (Proto::Udp, udp_ports)] {
        let skip = a.label();
        a.jump(op::JEQ_K, u32::from(proto.number()), Next, skip.into());
        a.stmt(op::LD_H_ABS, IPV6_HEADER_LEN + 2);
        a.ja(ports);
        a.bind(skip);
    }
    a.bind(drop);
    a.stmt(op::RET_K, 0);

    for (proto, label) in [(Proto::Tcp, tcp_ports), (Proto::Udp, udp_ports)] {
        a.bind(label);
        for port in ports.iter().filter(|p| p.proto == proto) {
            // `jeq #port, 0, 1; ret #SNAPLEN`: no jump is longer than one instruction,
            // however many ports there are.
            let miss = a.label();
            a.jump(op::JEQ_K, u32::from(port.port), Next, miss.into());
            a.stmt(op::RET_K, SNAPLEN);
            a.bind(miss);
        }
        a.stmt(op::RET_K, 0);
    }
    a.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy)]
enum To {
    /// Fall through to the next instruction.
    Next,
    At(Label),
}

impl From<Label> for To {
    fn from(l: Label) -> To {
        To::At(l)
    }
}

enum Item {
    Stmt { code: u16, k: u32 },
    Jump { code: u16, k: u32, jt: To, jf: To },
    Ja(Label),
    Bind(Label),
}

/// A tiny assembler: labels are resolved at the end, and a jump that does not fit is an error.
#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }

    fn stmt(&mut self, code: u16, k: u32) {
        self.items.push(Item::Stmt { code, k });
    }

    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.items.push(Item::Jump { code, k, jt, jf });
    }

    /// Drops the packet unless the test is true; otherwise falls through.
    fn drop_unless(&mut self, code: u16, k: u32) {
        let pass = self.label();
        self.jump(code, k, pass.into(), To::Next);
        self.stmt(op::RET_K, 0);
        self.bind(pass);
    }

    fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    fn finish(self) -> Result<Vec<Insn>, BpfError> {
        let mut at = vec![usize::MAX; self.labels];
        let mut len = 0;
        for item in &self.items {
            match item {
                Item::Bind(l) => at[l.0] = len,
                _ => len += 1,
            }
        }
        if len > MAX_INSNS {
            return Err(BpfError::TooLong(len));
        }
        // Classic BPF only jumps forward; a backward or unbound target is a builder bug.
        let offset = |pc: usize, to: To| match to {
            To::Next => Some(0),
            To::At(l) => at[l.0].checked_sub(pc + 1),
        };
        let mut out = Vec::with_capacity(len);
        for item in &self.items {
            let pc = out.len();
            let insn = match *item {
                Item::Bind(_) => continue,
                Item::Stmt { code, k } => Insn { code, jt: 0, jf: 0, k },
                Item::Ja(l) => {
                    let off = offset(pc, To::At(l)).ok_or(BpfError::JumpTooFar)?;
                    Insn { code: op::JA, jt: 0, jf: 0, k: off as u32 }
                }
                Item::Jump { code, k, jt, jf } => {
                    let short = |to| offset(pc, to).and_then(|o| u8::try_from(o).ok()).ok_or(BpfError::JumpTooFar);
                    Insn { code, jt: short(jt)?, jf: short(jf)?, k }
                }
            };
            out.push(insn);
        }
        Ok(out)
    }
}
