//! Netlink messages as bytes: headers, acknowledgements and attributes, read in safe Rust.
//!
//! What the kernel sends back (acknowledgements, dumps, monitor events) is read here with
//! bounds-checked slices, never by casting a buffer to a C struct: a short or odd message is an
//! error, not undefined behaviour. libnftnl still builds the requests.

use std::ops::Range;

/// `NLMSG_ERROR`: an acknowledgement (errno 0) or an error.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NFNL_SUBSYS_NFTABLES`, the high byte of an nftables message type.
const SUBSYS_NFTABLES: u16 = 10;
/// `nlmsghdr` and `nfgenmsg` sizes.
const HEADER: usize = 16;
const NFGENMSG: usize = 4;
/// `NLA_TYPE_MASK`: attribute type bits (the rest are the nested/byte-order flags).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// `NLM_F_REQUEST`, `NLM_F_ACK`, `NLM_F_DUMP`.
pub const F_REQUEST: u16 = 1;
/// Ask for an acknowledgement.
pub const F_ACK: u16 = 4;
/// Ask for every object that matches.
pub const F_DUMP: u16 = 0x300;

/// Builds one nftables request: header, `nfgenmsg`, then attributes.
pub struct Request {
    bytes: Vec<u8>,
}

impl Request {
    /// A request of type `NFT_MSG_*` `nft_type` about `family`.
    pub fn new(nft_type: u16, family: u8, flags: u16, seq: u32) -> Self {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        bytes.extend_from_slice(&((SUBSYS_NFTABLES << 8) | nft_type).to_ne_bytes());
        bytes.extend_from_slice(&(flags | F_REQUEST).to_ne_bytes());
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&[family, 0, 0, 0]); // nfgenmsg: family, version 0, res_id 0
        Request { bytes }
    }

    /// Appends a NUL-terminated string attribute.
    pub fn str(mut self, kind: u16, value: &str) -> Self {
        let len = 4 + value.len() + 1;
        self.bytes.extend_from_slice(&(len as u16).to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.push(0);
        self.bytes.resize(align4(self.bytes.len()), 0);
        self
    }

    /// The finished message.
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.bytes.len() as u32;
        self.bytes[..4].copy_from_slice(&len.to_ne_bytes());
        self.bytes
    }
}

/// A netlink message that does not hold together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed netlink message")]
pub struct Malformed;

/// One netlink message: its header fields and what follows the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`: for an event, the port of the socket whose change caused it.
    pub portid: u32,
    /// Everything after the 16-byte header.
    pub payload: &'a [u8],
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The messages in a buffer the kernel filled, in order.
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { buf }
}

/// Iterator of [`messages`].
pub struct Messages<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let parsed = (|| {
            let len = u32_at(self.buf, 0)? as usize;
            let body = self.buf.get(HEADER..len)?;
            Some((
                Message {
                    kind: u16_at(self.buf, 4)?,
                    seq: u32_at(self.buf, 8)?,
                    portid: u32_at(self.buf, 12)?,
                    payload: body,
                },
                len,
            ))
        })();
        match parsed {
            Some((message, len)) => {
                self.buf = self.buf.get(align4(len)..).unwrap_or_default();
                Some(Ok(message))
            }
            None => {
                self.buf = &[];
                Some(Err(Malformed))
            }
        }
    }
}

impl<'a> Message<'a> {
    /// For an `NLMSG_ERROR` message: the errno it carries, 0 for an acknowledgement.
    pub fn errno(&self) -> Option<i32> {
        if self.kind != NLMSG_ERROR {
            return None;
        }
        u32_at(self.payload, 0).map(|e| (e as i32).saturating_neg())
    }

    /// For an nftables message: its `NFT_MSG_*` type.
    pub fn nft_type(&self) -> Option<u16> {
        (self.kind >> 8 == SUBSYS_NFTABLES).then_some(self.kind & 0xff)
    }

    /// For an nftables message: the address family (`nfgen_family`) it is about.
    pub fn family(&self) -> Option<u8> {
        self.payload.first().copied()
    }

    /// For an nftables message: its attributes.
    pub fn attrs(&self) -> Attrs<'a> {
        attrs(self.payload.get(NFGENMSG..).unwrap_or_default())
    }
}

/// One attribute: its type and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// The type, without the nested/byte-order flags.
    pub kind: u16,
    /// The value, without padding.
    pub data: &'a [u8],
}

impl<'a> Attr<'a> {
    /// A string attribute, without its terminating NUL.
    pub fn str(&self) -> &'a [u8] {
        self.data.strip_suffix(&[0]).unwrap_or(self.data)
    }

    /// The attributes nested in this one.
    pub fn nested(&self) -> Attrs<'a> {
        attrs(self.data)
    }
}

/// The attributes in `bytes`, in order; stops at the first that does not fit.
pub fn attrs(bytes: &[u8]) -> Attrs<'_> {
    Attrs { bytes }
}

/// Iterator of [`attrs`]; a copy starts over where the original is.
#[derive(Clone)]
pub struct Attrs<'a> {
    bytes: &'a [u8],
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Attr<'a>;

    fn next(&mut self) -> Option<Attr<'a>> {
        let len = usize::from(u16_at(self.bytes, 0)?);
        let kind = u16_at(self.bytes, 2)? & NLA_TYPE_MASK;
        let data: Range<usize> = 4..len;
        let attr = Attr { kind, data: self.bytes.get(data)? };
        self.bytes = self.bytes.get(align4(len.max(4))..).unwrap_or_default();
        Some(attr)
    }
}

impl<'a> Attrs<'a> {
    /// The first attribute of type `kind`.
    pub fn get(mut self, kind: u16) -> Option<Attr<'a>> {
        self.find(|a| a.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NLMSG_ERROR for seq 7 carrying -ENOENT, then an NFT_MSG_NEWRULE event for table
    /// "knockd" (family inet) from port 4242.
    fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        // nlmsghdr: len 36, type 2, flags 0, seq 7, pid 0; nlmsgerr: error -2, then 16 bytes.
        b.extend_from_slice(&36u32.to_ne_bytes());
        b.extend_from_slice(&2u16.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&7u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&(-2i32).to_ne_bytes());
        b.extend_from_slice(&[0; 16]);
        // nlmsghdr: len 16 + 4 + 12, type (10 << 8) | 6, seq 0, pid 4242; nfgenmsg inet;
        // attribute 1 "knockd\0" (len 11, padded to 12).
        b.extend_from_slice(&32u32.to_ne_bytes());
        b.extend_from_slice(&((10u16 << 8) | 6).to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&4242u32.to_ne_bytes());
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&11u16.to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(b"knockd\0\0");
        b
    }

    #[test]
    fn deconstruct() {
        let buf = sample();
        let all: Vec<Message> = messages(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].seq, all[0].errno()), (7, Some(libc::ENOENT)));
        assert_eq!((all[1].nft_type(), all[1].family(), all[1].portid), (Some(6), Some(1), 4242));
        assert_eq!(all[1].attrs().get(1).map(|a| a.str()), Some(&b"knockd"[..]));
        assert_eq!(all[1].errno(), None);
    }

    #[test]
    fn construct() {
        let bytes = Request::new(10, 1, F_ACK, 9).str(1, "knockd").str(2, "ssh_v4").finish();
        assert_eq!(bytes.len(), 16 + 4 + 12 + 12);
        let m = messages(&bytes).next().unwrap().unwrap();
        assert_eq!((m.nft_type(), m.family(), m.seq), (Some(10), Some(1), 9));
        let names: Vec<&[u8]> = m.attrs().map(|a| a.str()).collect();
        assert_eq!(names, [&b"knockd"[..], &b"ssh_v4"[..]]);
    }

    #[test]
    fn truncated_is_malformed_never_a_panic() {
        let buf = sample();
        for len in 1..buf.len() {
            let parsed: Vec<_> = messages(&buf[..len]).collect();
            if len < 36 {
                assert_eq!(parsed, [Err(Malformed)], "len {len}");
            }
            for m in parsed.into_iter().flatten() {
                let _ = (m.errno(), m.attrs().count());
            }
        }
    }
}
