//! Sets keyed on address, protocol and port (`ipv4_addr . inet_proto . inet_service`), for
//! doors whose clients ask for ports: the key types, the layout of a key, and the expressions
//! that load a packet's source, protocol and port into consecutive 32-bit registers for a
//! lookup. nftnl's own expressions all use register 1, which a concatenation cannot.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::net::IpAddr;
use std::ptr::NonNull;

use nftnl::Rule;
use nftnl::expr::Expression;
use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::set::{Set, SetKey};

use crate::config::PortProto;
use crate::grant::nft::Family;

/// nftables' type numbers: a concatenation is its parts' numbers, 6 bits each.
const TYPE_BITS: u32 = 6;
const IPV4_ADDR: u32 = 7;
const IPV6_ADDR: u32 = 8;
const INET_PROTO: u32 = 12;
const INET_SERVICE: u32 = 13;

/// The key type number of a per-port set of `family`.
pub const fn key_type(family: Family) -> u32 {
    let addr = match family {
        Family::V4 => IPV4_ADDR,
        Family::V6 => IPV6_ADDR,
    };
    ((addr << TYPE_BITS) | INET_PROTO) << TYPE_BITS | INET_SERVICE
}

/// The key of a per-port set for IPv4 (only its type and length matter to nftnl).
pub struct V4Port;
/// The key of a per-port set for IPv6.
pub struct V6Port;

impl SetKey for V4Port {
    const TYPE: u32 = key_type(Family::V4);
    const LEN: u32 = 12;
    fn data(&self) -> Box<[u8]> {
        Box::new([])
    }
}

impl SetKey for V6Port {
    const TYPE: u32 = key_type(Family::V6);
    const LEN: u32 = 24;
    fn data(&self) -> Box<[u8]> {
        Box::new([])
    }
}

/// A set element's key: the address, then the protocol and the port, each part padded to 4
/// bytes as registers hold them.
pub fn key(addr: &IpAddr, port: Option<PortProto>) -> Vec<u8> {
    let mut key = match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    if let Some(p) = port {
        key.extend_from_slice(&[p.proto.number(), 0, 0, 0]);
        let [hi, lo] = p.port.to_be_bytes();
        key.extend_from_slice(&[hi, lo, 0, 0]);
    }
    key
}

/// The parts of a key read back: the address and, for a per-port key, the port.
pub fn parse_key(key: &[u8]) -> Option<(IpAddr, Option<PortProto>)> {
    let (addr, rest): (IpAddr, &[u8]) = match key.len() {
        4 | 12 => (IpAddr::from(<[u8; 4]>::try_from(&key[..4]).ok()?), &key[4..]),
        16 | 24 => (IpAddr::from(<[u8; 16]>::try_from(&key[..16]).ok()?), &key[16..]),
        _ => return None,
    };
    if rest.is_empty() {
        return Some((addr, None));
    }
    let proto = match rest[0] {
        6 => crate::config::Proto::Tcp,
        17 => crate::config::Proto::Udp,
        _ => return None,
    };
    Some((addr, Some(PortProto::new(u16::from_be_bytes([rest[4], rest[5]]), proto))))
}

/// `NFT_REG32_00`: the first 32-bit register.
const REG32_00: u32 = libc::NFT_REG32_00 as u32;

fn alloc(name: &std::ffi::CStr) -> NonNull<sys::nftnl_expr> {
    // SAFETY: allocating an expression by a valid name; a failure is out of memory.
    NonNull::new(unsafe { sys::nftnl_expr_alloc(name.as_ptr()) }).unwrap_or_else(|| std::process::abort())
}

/// Loads `len` bytes at `offset` of a header (`base`) into the register `dreg`.
struct Load {
    base: u32,
    offset: u32,
    len: u32,
    dreg: u32,
}

impl Expression for Load {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        let expr = alloc(c"payload");
        // SAFETY: `expr` is a live payload expression; these are its attributes.
        unsafe {
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_PAYLOAD_BASE as u16, self.base);
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_PAYLOAD_OFFSET as u16, self.offset);
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_PAYLOAD_LEN as u16, self.len);
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_PAYLOAD_DREG as u16, self.dreg);
        }
        expr
    }
}

/// Loads the transport protocol number (`meta l4proto`) into `dreg`.
struct L4Proto {
    dreg: u32,
}

impl Expression for L4Proto {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        let expr = alloc(c"meta");
        // SAFETY: `expr` is a live meta expression; these are its attributes.
        unsafe {
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_META_KEY as u16, libc::NFT_META_L4PROTO as u32);
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_META_DREG as u16, self.dreg);
        }
        expr
    }
}

/// Looks the key starting at `sreg` up in a set of the same batch.
struct Lookup {
    set: CString,
    set_id: u32,
    sreg: u32,
}

impl Expression for Lookup {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        let expr = alloc(c"lookup");
        // SAFETY: `expr` is a live lookup expression; libnftnl copies the name.
        unsafe {
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_LOOKUP_SREG as u16, self.sreg);
            sys::nftnl_expr_set_str(expr.as_ptr(), sys::NFTNL_EXPR_LOOKUP_SET as u16, self.set.as_ptr());
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_LOOKUP_SET_ID as u16, self.set_id);
        }
        expr
    }
}

/// Adds `saddr . l4proto . th dport @set` to `rule`.
pub fn add_lookup<K: SetKey>(rule: &mut Rule, family: Family, set: &Set<'_, K>) {
    let (offset, len) = match family {
        Family::V4 => (12, 4),
        Family::V6 => (8, 16),
    };
    let network = libc::NFT_PAYLOAD_NETWORK_HEADER as u32;
    let transport = libc::NFT_PAYLOAD_TRANSPORT_HEADER as u32;
    let after_addr = REG32_00 + len / 4;
    rule.add_expr(&Load { base: network, offset, len, dreg: REG32_00 });
    rule.add_expr(&L4Proto { dreg: after_addr });
    rule.add_expr(&Load { base: transport, offset: 2, len: 2, dreg: after_addr + 1 });
    rule.add_expr(&Lookup { set: set.get_name().to_owned(), set_id: set.get_id(), sreg: REG32_00 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_types() {
        // nft's own numbers for `ipv4_addr . inet_proto . inet_service` and its IPv6 twin.
        assert_eq!(key_type(Family::V4), 29453);
        assert_eq!(key_type(Family::V6), 33549);
        let addr: IpAddr = "198.18.0.2".parse().unwrap();
        let key = key(&addr, Some(PortProto::tcp(22)));
        assert_eq!(key, [198, 18, 0, 2, 6, 0, 0, 0, 0, 22, 0, 0]);
        assert_eq!(parse_key(&key), Some((addr, Some(PortProto::tcp(22)))));
        assert_eq!(parse_key(&[198, 18, 0, 2]), Some((addr, None)));
        assert_eq!(parse_key(&[1, 2, 3]), None);
    }
}
