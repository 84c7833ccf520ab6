//! Service names (`ssh`, `domain`) from the system's services database, through libc.
#![allow(unsafe_code)]

use std::ffi::CString;

use crate::config::Proto;

/// Looks up a service name (`ssh`) in the system's services database.
pub fn port(name: &str, proto: Proto) -> Option<u16> {
    let c_name = CString::new(name).ok()?;
    let c_proto = CString::new(proto.name()).expect("no NUL in a protocol name");
    // SAFETY: both strings are valid; the result points into static storage that we read at
    // once (the client is single-threaded).
    let entry = unsafe { libc::getservbyname(c_name.as_ptr(), c_proto.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: non-null entries are valid servent structures; s_port is in network order.
    let port = unsafe { (*entry).s_port };
    Some(u16::from_be(port as u16))
}
