//! Set elements with per-element timeouts, which nftnl's safe API lacks: built here through
//! nftnl-sys.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::raw::c_char;
use std::ptr::NonNull;
use std::time::Duration;

use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::{Batch, MsgType, NlMsg};

use super::install::cstring;
use crate::config::TableFamily;
use crate::grant::Element;
// The key of the address after a plain address key, or `None` after the last one.
use crate::grant::host::text::next_key as next_address;

/// Elements per netlink message; keeps each message far below the netlink size limit.
const ELEMENTS_PER_MESSAGE: usize = 256;

/// One message's elements are nested in one attribute, whose length is a `u16`. The most an
/// element takes: its own header, the key (an IPv6 address, protocol and port), the timeout,
/// and the longest comment with its NUL, each attribute padded to 4 bytes.
const MOST_PER_ELEMENT: usize =
    4 + (4 + 4 + 24) + (4 + 8) + (4 + (2 + super::comment::MAX_LEN + 1).next_multiple_of(4));
/// An address in an interval set takes two elements (its start, and the range's end: a key
/// and a flag, no comment).
const MOST_PER_ADDRESS: usize = MOST_PER_ELEMENT + 4 + (4 + 4 + 24) + (4 + 4) + (4 + 8);
const _: () = assert!(ELEMENTS_PER_MESSAGE * MOST_PER_ADDRESS < u16::MAX as usize);

/// `NFT_SET_ELEM_INTERVAL_END`.
const INTERVAL_END: u32 = 1;
/// `NFTNL_SET_ELEM_FLAGS`, `NFTNL_SET_ELEM_KEY_END` (libnftnl 1.1.6 and later).
const ELEM_FLAGS: u16 = 0;
const ELEM_KEY_END: u16 = 10;

/// How a set holds one address: an interval set needs the range of one spelled out, and an
/// address added to it as a plain element would open every address above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A plain (hash) set: the key.
    Plain,
    /// An interval set: the key, and an element flagged as the range's end at the next key
    /// (none after the last address, whose range ends there anyway).
    Interval,
    /// An interval set of concatenations (address . protocol . port): the key, with itself as
    /// the range's end.
    ConcatInterval,
}

impl Layout {
    /// The layout of a set with these flags and keys.
    pub fn of(interval: bool, per_port: bool) -> Layout {
        match (interval, per_port) {
            (false, _) => Layout::Plain,
            (true, false) => Layout::Interval,
            (true, true) => Layout::ConcatInterval,
        }
    }
}

/// One batch that removes every element (they must exist), in its set's `layout`.
pub(super) fn delete_batch(elements: &[Element], layout: impl Fn(&Element) -> Layout) -> Batch {
    let mut batch = Batch::new();
    let mut messages = Vec::new();
    for group in by_set(elements) {
        for chunk in group.chunks(ELEMENTS_PER_MESSAGE) {
            let mut keys = ElementsMsg::new(chunk[0].family, &chunk[0].table, &chunk[0].set);
            for e in chunk {
                keys.push_address(&super::concat::key(&e.addr, e.port), layout(e), None, None);
            }
            messages.push(keys);
        }
    }
    for keys in &messages {
        batch.add(keys, MsgType::Del);
    }
    batch
}

/// The elements, grouped by set.
fn by_set(elements: &[Element]) -> Vec<Vec<&Element>> {
    let mut sorted: Vec<&Element> = elements.iter().collect();
    sorted.sort_by(|a, b| (a.family.nfproto(), &a.table, &a.set).cmp(&(b.family.nfproto(), &b.table, &b.set)));
    sorted.chunk_by(|a, b| a.family == b.family && a.table == b.table && a.set == b.set).map(<[_]>::to_vec).collect()
}

/// One batch that adds every element, or restarts its timeout if it is there already, in its
/// set's `layout`.
pub(super) fn batch(elements: &[Element], layout: impl Fn(&Element) -> Layout) -> Batch {
    // Per set, in one transaction: add (no-op if present), delete, add again. That creates
    // the element or restarts its timeout, without a lookup first and on every kernel.
    let mut messages = Vec::new();
    for group in by_set(elements) {
        for chunk in group.chunks(ELEMENTS_PER_MESSAGE) {
            let mut with_timeout = ElementsMsg::new(chunk[0].family, &chunk[0].table, &chunk[0].set);
            let mut keys_only = ElementsMsg::new(chunk[0].family, &chunk[0].table, &chunk[0].set);
            for e in chunk {
                let key = super::concat::key(&e.addr, e.port);
                let comment = e.comment.as_deref().map(super::comment::encode);
                with_timeout.push_address(&key, layout(e), Some(e.timeout), comment.as_deref());
                keys_only.push_address(&key, layout(e), None, None);
            }
            messages.push((with_timeout, keys_only));
        }
    }
    let mut batch = Batch::new();
    for (with_timeout, keys_only) in &messages {
        batch.add(with_timeout, MsgType::Add);
        batch.add(keys_only, MsgType::Del);
        batch.add(with_timeout, MsgType::Add);
    }
    batch
}

/// A NEWSETELEM/DELSETELEM message for one set, with optional per-element timeouts and
/// comments.
struct ElementsMsg {
    set: NonNull<sys::nftnl_set>,
    family: u16,
}

impl ElementsMsg {
    fn new(family: TableFamily, table: &str, set_name: &str) -> Self {
        // SAFETY: plain libnftnl allocation; strings are copied by libnftnl.
        unsafe {
            let set = NonNull::new(sys::nftnl_set_alloc()).unwrap_or_else(|| std::process::abort());
            sys::nftnl_set_set_str(set.as_ptr(), sys::NFTNL_SET_TABLE as u16, cstring(table).as_ptr());
            sys::nftnl_set_set_str(set.as_ptr(), sys::NFTNL_SET_NAME as u16, cstring(set_name).as_ptr());
            sys::nftnl_set_set_u32(set.as_ptr(), sys::NFTNL_SET_FAMILY as u16, u32::from(family.nfproto()));
            ElementsMsg { set, family: u16::from(family.nfproto()) }
        }
    }

    /// Adds the element (or elements) that hold one address in a set of `layout`. The end
    /// element of a range carries no timeout or comment (the kernel refuses them there); when
    /// the start expires, the kernel's garbage collection takes its end with it.
    fn push_address(&mut self, key: &[u8], layout: Layout, timeout: Option<Duration>, userdata: Option<&[u8]>) {
        match layout {
            Layout::Plain => self.push(key, None, 0, timeout, userdata),
            Layout::ConcatInterval => self.push(key, Some(key), 0, timeout, userdata),
            Layout::Interval => {
                self.push(key, None, 0, timeout, userdata);
                if let Some(end) = next_address(key) {
                    self.push(&end, None, INTERVAL_END, None, None);
                }
            }
        }
    }

    fn push(
        &mut self,
        key: &[u8],
        key_end: Option<&[u8]>,
        flags: u32,
        timeout: Option<Duration>,
        userdata: Option<&[u8]>,
    ) {
        // SAFETY: the element is handed to the set, which owns and frees it.
        unsafe {
            let elem = sys::nftnl_set_elem_alloc();
            if elem.is_null() {
                std::process::abort();
            }
            sys::nftnl_set_elem_set(
                elem,
                sys::NFTNL_SET_ELEM_KEY as u16,
                key.as_ptr().cast::<c_void>(),
                key.len() as u32,
            );
            if let Some(end) = key_end {
                sys::nftnl_set_elem_set(elem, ELEM_KEY_END, end.as_ptr().cast::<c_void>(), end.len() as u32);
            }
            if flags != 0 {
                sys::nftnl_set_elem_set_u32(elem, ELEM_FLAGS, flags);
            }
            if let Some(t) = timeout {
                let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
                sys::nftnl_set_elem_set_u64(elem, sys::NFTNL_SET_ELEM_TIMEOUT as u16, ms);
            }
            if let Some(data) = userdata {
                // libnftnl copies the bytes.
                let len = data.len() as u32;
                sys::nftnl_set_elem_set(elem, sys::NFTNL_SET_ELEM_USERDATA as u16, data.as_ptr().cast::<c_void>(), len);
            }
            sys::nftnl_set_elem_add(self.set.as_ptr(), elem);
        }
    }
}

// SAFETY: `write` only writes one message into the buffer the batch hands it.
unsafe impl NlMsg for ElementsMsg {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, msg_type: MsgType) {
        let (kind, flags) = match msg_type {
            MsgType::Add => (libc::NFT_MSG_NEWSETELEM, libc::NLM_F_CREATE | libc::NLM_F_ACK),
            MsgType::Del => (libc::NFT_MSG_DELSETELEM, libc::NLM_F_ACK),
        };
        // SAFETY: the batch hands a buffer of nft_nlmsg_maxsize bytes; the set is live.
        unsafe {
            let header = sys::nftnl_nlmsg_build_hdr(buf.cast::<c_char>(), kind as u16, self.family, flags as u16, seq);
            sys::nftnl_set_elems_nlmsg_build_payload(header, self.set.as_ptr());
        }
    }
}

impl Drop for ElementsMsg {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`; frees the elements too.
        unsafe { sys::nftnl_set_free(self.set.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_address_carries_and_ends_after_the_last() {
        assert_eq!(next_address(&[198, 18, 0, 42]), Some(vec![198, 18, 0, 43]));
        assert_eq!(next_address(&[198, 18, 0, 255]), Some(vec![198, 18, 1, 0]));
        assert_eq!(next_address(&[255; 4]), None);
        let mut v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
        let next = next_address(&v6).unwrap();
        v6[13] = 1;
        v6[14] = 0;
        v6[15] = 0;
        assert_eq!(next, v6);
        assert_eq!(next_address(&[255; 16]), None);
    }

    #[test]
    fn layouts() {
        assert_eq!(Layout::of(false, true), Layout::Plain);
        assert_eq!(Layout::of(true, false), Layout::Interval);
        assert_eq!(Layout::of(true, true), Layout::ConcatInterval);
    }
}
