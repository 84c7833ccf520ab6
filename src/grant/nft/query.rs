//! Read-only netlink queries: describe a set, list a set's elements.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::raw::c_char;
use std::time::Duration;

use mnl::CbResult;
use nftnl::nftnl_sys::{self as sys, libc};

use super::netlink::{self, NetlinkFirewall};
use crate::config::TableFamily;
use crate::grant::{FirewallError, SetInfo};

/// One element of a set, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementInfo {
    /// The element's address.
    pub addr: IpAddr,
    /// The element's own timeout, if it has one.
    pub timeout: Option<Duration>,
    /// Time left before the kernel removes it.
    pub expires: Option<Duration>,
}

/// An `nftnl_set` naming one set, freed on drop.
struct SetRef(*mut sys::nftnl_set);

impl SetRef {
    fn new(family: TableFamily, table: &str, name: &str) -> Result<SetRef, FirewallError> {
        let c = |s: &str| {
            CString::new(s).map_err(|_| FirewallError::Refused {
                operation: format!("look up set {family} {table} {name}"),
                source: std::io::ErrorKind::InvalidInput.into(),
            })
        };
        let (table, name) = (c(table)?, c(name)?);
        // SAFETY: a fresh allocation; libnftnl copies the strings.
        unsafe {
            let set = sys::nftnl_set_alloc();
            if set.is_null() {
                std::process::abort();
            }
            sys::nftnl_set_set_str(set, sys::NFTNL_SET_TABLE as u16, table.as_ptr());
            sys::nftnl_set_set_str(set, sys::NFTNL_SET_NAME as u16, name.as_ptr());
            sys::nftnl_set_set_u32(set, sys::NFTNL_SET_FAMILY as u16, u32::from(family.nfproto()));
            Ok(SetRef(set))
        }
    }
}

impl Drop for SetRef {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`.
        unsafe { sys::nftnl_set_free(self.0) };
    }
}

impl NetlinkFirewall {
    /// Sends one request and feeds every reply message to `parse`, until the kernel is done.
    fn request<T>(
        &mut self,
        build: impl FnOnce(*mut c_char, u32),
        parse: mnl::Callback<T>,
        data: &mut T,
        operation: impl FnOnce() -> String,
    ) -> Result<(), FirewallError> {
        let socket = self.socket()?;
        let seq = 1;
        let mut request = vec![0u8; nftnl::nft_nlmsg_maxsize() as usize];
        build(request.as_mut_ptr().cast::<c_char>(), seq);
        // SAFETY: `build` wrote a netlink header at the start of the buffer, which a Vec<u8> does
        // not align for it: read it unaligned.
        let len = unsafe { request.as_ptr().cast::<libc::nlmsghdr>().read_unaligned() }.nlmsg_len as usize;
        let portid = socket.portid();
        let result = (|| {
            socket.send(&request[..len])?;
            // u64 storage keeps the buffer aligned for nlmsghdr.
            let mut storage = vec![0u64; nftnl::nft_nlmsg_maxsize() as usize / 8];
            // SAFETY: viewing the u64 buffer as bytes.
            let buffer =
                unsafe { std::slice::from_raw_parts_mut(storage.as_mut_ptr().cast::<u8>(), storage.len() * 8) };
            loop {
                let n = socket.recv_raw(buffer)?;
                if let CbResult::Stop = mnl::cb_run2(&buffer[..n], seq, portid, parse, data)? {
                    return Ok(());
                }
            }
        })();
        result.map_err(|source| {
            self.reset();
            netlink::error(operation(), source)
        })
    }

    /// Describes a set; `None` when the table or the set does not exist.
    pub fn set_info(&mut self, family: TableFamily, table: &str, name: &str) -> Result<Option<SetInfo>, FirewallError> {
        let set = SetRef::new(family, table, name)?;
        let mut info: Option<SetInfo> = None;
        let build = |buf: *mut c_char, seq: u32| {
            // SAFETY: the buffer is nft_nlmsg_maxsize bytes; `set` is valid.
            unsafe {
                let nlh = sys::nftnl_nlmsg_build_hdr(
                    buf,
                    libc::NFT_MSG_GETSET as u16,
                    u16::from(family.nfproto()),
                    libc::NLM_F_ACK as u16,
                    seq,
                );
                sys::nftnl_set_nlmsg_build_payload(nlh, set.0);
            }
        };
        let result = self.request(build, parse_set, &mut info, || format!("look up set {family} {table} {name}"));
        match result {
            Ok(()) => Ok(info),
            Err(FirewallError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether a chain exists.
    pub fn chain_exists(&mut self, family: TableFamily, table: &str, name: &str) -> Result<bool, FirewallError> {
        let invalid = || FirewallError::Refused {
            operation: format!("look up chain {family} {table} {name}"),
            source: std::io::ErrorKind::InvalidInput.into(),
        };
        let (c_table, c_name) =
            (CString::new(table).map_err(|_| invalid())?, CString::new(name).map_err(|_| invalid())?);
        let build = |buf: *mut c_char, seq: u32| {
            // SAFETY: a fresh chain object naming the chain, freed right after building.
            unsafe {
                let chain = sys::nftnl_chain_alloc();
                if chain.is_null() {
                    std::process::abort();
                }
                sys::nftnl_chain_set_str(chain, sys::NFTNL_CHAIN_TABLE as u16, c_table.as_ptr());
                sys::nftnl_chain_set_str(chain, sys::NFTNL_CHAIN_NAME as u16, c_name.as_ptr());
                let nlh = sys::nftnl_nlmsg_build_hdr(
                    buf,
                    libc::NFT_MSG_GETCHAIN as u16,
                    u16::from(family.nfproto()),
                    libc::NLM_F_ACK as u16,
                    seq,
                );
                sys::nftnl_chain_nlmsg_build_payload(nlh, chain);
                sys::nftnl_chain_free(chain);
            }
        };
        let mut found = false;
        let result = self.request(build, note_reply, &mut found, || format!("look up chain {family} {table} {name}"));
        match result {
            Ok(()) => Ok(found),
            Err(FirewallError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every element of a set, with its timeout and time left.
    pub fn list_elements(
        &mut self,
        family: TableFamily,
        table: &str,
        name: &str,
    ) -> Result<Vec<ElementInfo>, FirewallError> {
        let set = SetRef::new(family, table, name)?;
        let mut elements = Vec::new();
        let build = |buf: *mut c_char, seq: u32| {
            // SAFETY: as in `set_info`; a dump request with table and set name.
            unsafe {
                let flags = (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16;
                let nlh = sys::nftnl_nlmsg_build_hdr(
                    buf,
                    libc::NFT_MSG_GETSETELEM as u16,
                    u16::from(family.nfproto()),
                    flags,
                    seq,
                );
                sys::nftnl_set_elems_nlmsg_build_payload(nlh, set.0);
            }
        };
        self.request(build, parse_elements, &mut elements, || format!("list set {family} {table} {name}"))?;
        Ok(elements)
    }
}

fn note_reply(_: &libc::nlmsghdr, found: &mut bool) -> libc::c_int {
    *found = true;
    1 // MNL_CB_OK
}

fn parse_set(header: &libc::nlmsghdr, info: &mut Option<SetInfo>) -> libc::c_int {
    // SAFETY: `header` is a complete netlink message; the set is freed by SetRef.
    unsafe {
        let set = SetRef(sys::nftnl_set_alloc());
        if set.0.is_null() || sys::nftnl_set_nlmsg_parse(header, set.0) < 0 {
            return mnl_sys_error();
        }
        let flags = sys::nftnl_set_get_u32(set.0, sys::NFTNL_SET_FLAGS as u16);
        *info = Some(SetInfo {
            timeout: flags & libc::NFT_SET_TIMEOUT as u32 != 0,
            key_type: sys::nftnl_set_get_u32(set.0, sys::NFTNL_SET_KEY_TYPE as u16),
        });
    }
    1 // MNL_CB_OK
}

fn parse_elements(header: &libc::nlmsghdr, out: &mut Vec<ElementInfo>) -> libc::c_int {
    // SAFETY: `header` is a complete netlink message; elements belong to the set, freed by SetRef.
    unsafe {
        let set = SetRef(sys::nftnl_set_alloc());
        if set.0.is_null() || sys::nftnl_set_elems_nlmsg_parse(header, set.0) < 0 {
            return mnl_sys_error();
        }
        let iter = sys::nftnl_set_elems_iter_create(set.0);
        if iter.is_null() {
            return mnl_sys_error();
        }
        let mut elem = sys::nftnl_set_elems_iter_next(iter);
        while !elem.is_null() {
            let mut len = 0u32;
            let key = sys::nftnl_set_elem_get(elem, sys::NFTNL_SET_ELEM_KEY as u16, &mut len);
            let addr = match len {
                4 => Some(IpAddr::V4(Ipv4Addr::from(*key.cast::<[u8; 4]>()))),
                16 => Some(IpAddr::V6(Ipv6Addr::from(*key.cast::<[u8; 16]>()))),
                _ => None,
            };
            let ms = |attr: u32| {
                (sys::nftnl_set_elem_is_set(elem, attr as u16))
                    .then(|| Duration::from_millis(sys::nftnl_set_elem_get_u64(elem, attr as u16)))
            };
            if let Some(addr) = addr {
                out.push(ElementInfo {
                    addr,
                    timeout: ms(sys::NFTNL_SET_ELEM_TIMEOUT),
                    expires: ms(sys::NFTNL_SET_ELEM_EXPIRATION),
                });
            }
            elem = sys::nftnl_set_elems_iter_next(iter);
        }
        sys::nftnl_set_elems_iter_destroy(iter);
    }
    1 // MNL_CB_OK
}

/// MNL_CB_ERROR: stops processing and reports the message as unparsable.
fn mnl_sys_error() -> libc::c_int {
    -1
}
