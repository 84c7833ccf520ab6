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

/// Elements per netlink message; keeps each message far below the netlink size limit.
const ELEMENTS_PER_MESSAGE: usize = 256;

/// One message's elements are nested in one attribute, whose length is a `u16`. The most an
/// element takes: its own header, the key (an IPv6 address, protocol and port), the timeout,
/// and the longest comment with its NUL, each attribute padded to 4 bytes.
const MOST_PER_ELEMENT: usize =
    4 + (4 + 4 + 24) + (4 + 8) + (4 + (2 + super::comment::MAX_LEN + 1).next_multiple_of(4));
const _: () = assert!(ELEMENTS_PER_MESSAGE * MOST_PER_ELEMENT < u16::MAX as usize);

/// One batch that removes every element (they must exist).
pub(super) fn delete_batch(elements: &[Element]) -> Batch {
    let mut batch = Batch::new();
    let mut messages = Vec::new();
    for group in by_set(elements) {
        for chunk in group.chunks(ELEMENTS_PER_MESSAGE) {
            let mut keys = ElementsMsg::new(chunk[0].family, &chunk[0].table, &chunk[0].set);
            for e in chunk {
                keys.push(&super::concat::key(&e.addr, e.port), None, None);
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

/// One batch that adds every element, or restarts its timeout if it is there already.
pub(super) fn batch(elements: &[Element]) -> Batch {
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
                with_timeout.push(&key, Some(e.timeout), comment.as_deref());
                keys_only.push(&key, None, None);
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

    fn push(&mut self, key: &[u8], timeout: Option<Duration>, userdata: Option<&[u8]>) {
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
