//! The SPA datagram, byte by byte (doc/spa.md): encoding for the client, decoding for the door.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ed25519_dalek::Signer;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SpaError;
use super::keys::Key;

/// The packet format's version: 2 carries a key id; 1 (without) is still accepted.
pub const VERSION: u8 = 2;
/// The first version, without a key id.
pub const VERSION_1: u8 = 1;
/// Bytes of key id in a version 2 packet.
pub const KEY_ID_LEN: usize = 8;
/// Authentication types.
pub const AUTH_ED25519: u8 = 1;
/// HMAC-SHA256 with a shared key.
pub const AUTH_HMAC_SHA256: u8 = 2;
/// Bytes of random nonce in every packet.
pub const NONCE_LEN: usize = 16;
/// Longest door name a packet carries.
const MAX_DOOR: usize = 32;

/// What a packet asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Seconds since the Unix epoch when the client sent it.
    pub timestamp: u64,
    /// Random bytes that make every packet unique (the replay cache remembers them).
    pub nonce: [u8; NONCE_LEN],
    /// The door the packet is for.
    pub door: String,
    /// The address to open for, when it is not the packet's source (a client behind NAT).
    pub address: Option<IpAddr>,
}

/// The part every packet starts with, signed together with everything after it.
fn body(request: &Request, auth: u8, key_id: &[u8; KEY_ID_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(72);
    out.extend_from_slice(&[VERSION, auth]);
    out.extend_from_slice(key_id);
    out.extend_from_slice(&request.timestamp.to_be_bytes());
    out.extend_from_slice(&request.nonce);
    out.push(request.door.len() as u8);
    out.extend_from_slice(request.door.as_bytes());
    match request.address {
        None => out.push(0),
        Some(IpAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
    out
}

/// The datagram for `request`, signed with `key`.
pub fn encode(request: &Request, key: &Key) -> Vec<u8> {
    let key_id = key.id();
    match key {
        Key::Ed25519(k) => {
            let mut packet = body(request, AUTH_ED25519, &key_id);
            let signature = k.sign(&packet);
            packet.extend_from_slice(&signature.to_bytes());
            packet
        }
        Key::Hmac(secret) => {
            let mut packet = body(request, AUTH_HMAC_SHA256, &key_id);
            let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(&packet);
            packet.extend_from_slice(&mac.finalize().into_bytes());
            packet
        }
    }
}

/// A parsed packet: the request, its authentication kind, what was signed and the tag.
pub struct Packet<'a> {
    /// [`AUTH_ED25519`] or [`AUTH_HMAC_SHA256`].
    pub auth: u8,
    /// Which key signed it (version 2); version 1 packets do not say.
    pub key_id: Option<[u8; KEY_ID_LEN]>,
    /// What the packet asks for.
    pub request: Request,
    /// The bytes the signature covers.
    pub signed: &'a [u8],
    /// The signature or MAC.
    pub tag: &'a [u8],
}

/// Reads a packet front to back; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SpaError> {
        let slice = self.bytes.get(self.at..self.at + n).ok_or(SpaError::Malformed("too short"))?;
        self.at += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SpaError> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn byte(&mut self) -> Result<u8, SpaError> {
        Ok(self.take(1)?[0])
    }
}

/// Parses a datagram without checking its signature. Never panics on any input.
pub fn decode(bytes: &[u8]) -> Result<Packet<'_>, SpaError> {
    let mut c = Cursor { bytes, at: 0 };
    let version = c.byte()?;
    if version != VERSION && version != VERSION_1 {
        return Err(SpaError::Version(version));
    }
    let auth = c.byte()?;
    let key_id = if version == VERSION { Some(c.array()?) } else { None };
    let timestamp = u64::from_be_bytes(c.array()?);
    let nonce: [u8; NONCE_LEN] = c.array()?;
    let door_len = usize::from(c.byte()?);
    if door_len == 0 || door_len > MAX_DOOR {
        return Err(SpaError::Malformed("door name length"));
    }
    let door = std::str::from_utf8(c.take(door_len)?).map_err(|_| SpaError::Malformed("door name"))?.to_owned();
    let address = match c.byte()? {
        0 => None,
        4 => Some(IpAddr::V4(Ipv4Addr::from(c.array::<4>()?))),
        6 => Some(IpAddr::V6(Ipv6Addr::from(c.array::<16>()?))),
        _ => return Err(SpaError::Malformed("address type")),
    };
    let signed_len = c.at;
    let tag_len = match auth {
        AUTH_ED25519 => 64,
        AUTH_HMAC_SHA256 => 32,
        _ => return Err(SpaError::Malformed("authentication type")),
    };
    let tag = c.take(tag_len)?;
    if c.at != bytes.len() {
        return Err(SpaError::Malformed("trailing bytes"));
    }
    let request = Request { timestamp, nonce, door, address };
    Ok(Packet { auth, key_id, request, signed: &bytes[..signed_len], tag })
}

/// A fresh random nonce.
pub fn nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).expect("the kernel's random source");
    nonce
}
