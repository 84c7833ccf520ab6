//! Read-only netlink queries: describe a set, list a set's elements, list a table's sets, read
//! back the daemon's chain. Requests and answers are built and parsed in safe Rust (`nlmsg`).

use std::time::Duration;

use super::netlink::{self, NetlinkFirewall};
use super::nlmsg::{self, F_ACK, F_DUMP, Message, NLMSG_DONE, Request};
use crate::config::TableFamily;
use crate::grant::{ElementInfo, FirewallError, SetInfo};

// NFT_MSG_* request types and NFTA_* attribute types (linux/netfilter/nf_tables.h).
const GETTABLE: u16 = 1;
const GETSET: u16 = 10;
const GETSETELEM: u16 = 13;
const TABLE_NAME: u16 = 1;
const SET_TABLE: u16 = 1;
const SET_NAME: u16 = 2;
const SET_FLAGS: u16 = 3;
const SET_KEY_TYPE: u16 = 4;
const SET_HANDLE: u16 = 16;
const TABLE_FLAGS: u16 = 2;
/// `NFT_TABLE_F_OWNER`.
const TABLE_F_OWNER: u32 = 2;
const SET_ELEM_LIST_ELEMENTS: u16 = 3;
const LIST_ELEM: u16 = 1;
const SET_ELEM_KEY: u16 = 1;
const SET_ELEM_TIMEOUT: u16 = 4;
const SET_ELEM_EXPIRATION: u16 = 5;
const SET_ELEM_USERDATA: u16 = 6;
const DATA_VALUE: u16 = 1;
/// `NFT_SET_CONSTANT`, `NFT_SET_INTERVAL`, `NFT_SET_MAP`, `NFT_SET_TIMEOUT`, `NFT_SET_OBJECT`.
const SET_F_CONSTANT: u32 = 0x2;
const SET_F_INTERVAL: u32 = 0x4;
const SET_F_MAP: u32 = 0x8;
const SET_F_TIMEOUT: u32 = 0x10;
const SET_F_OBJECT: u32 = 0x40;
const SET_ELEM_FLAGS: u16 = 3;
/// `NFT_SET_ELEM_INTERVAL_END`: the element ends a range; it is not an address of its own.
const ELEM_F_INTERVAL_END: u32 = 1;

fn be_u32(data: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(data.try_into().ok()?))
}

fn be_ms(data: &[u8]) -> Option<Duration> {
    Some(Duration::from_millis(u64::from_be_bytes(data.try_into().ok()?)))
}

impl NetlinkFirewall {
    /// Sends one request and hands every answer to `each`, until the kernel is done.
    pub(super) fn request(&mut self, request: Request, mut each: impl FnMut(&Message<'_>)) -> std::io::Result<()> {
        let socket = self.socket().map_err(|e| std::io::Error::other(e.to_string()))?;
        socket.send(&[&request.finish()])?;
        let mut buf = vec![0u8; 1 << 17];
        loop {
            let n = socket.recv(&mut buf)?;
            for message in nlmsg::messages(&buf[..n]) {
                let message = message.map_err(std::io::Error::other)?;
                match message.errno() {
                    Some(0) => return Ok(()),
                    Some(errno) => return Err(std::io::Error::from_raw_os_error(errno)),
                    None if message.kind == NLMSG_DONE => return Ok(()),
                    None => each(&message),
                }
            }
        }
    }

    /// Like [`request`](Self::request), with errors typed and the socket reset after one.
    pub(super) fn query(
        &mut self,
        request: Request,
        each: impl FnMut(&Message<'_>),
        operation: impl FnOnce() -> String,
    ) -> Result<(), FirewallError> {
        self.request(request, each).map_err(|source| {
            self.reset();
            netlink::error(operation(), source)
        })
    }

    pub(super) fn seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        self.next_seq
    }

    /// Describes a set; `None` when the table or the set does not exist.
    pub fn set_info(&mut self, family: TableFamily, table: &str, name: &str) -> Result<Option<SetInfo>, FirewallError> {
        let request =
            Request::new(GETSET, family.nfproto(), F_ACK, self.seq()).str(SET_TABLE, table).str(SET_NAME, name);
        let mut info = None;
        let each = |m: &Message<'_>| {
            let attr = |kind| m.attrs().get(kind).and_then(|a| be_u32(a.data)).unwrap_or(0);
            let flags = attr(SET_FLAGS);
            let handle = m.attrs().get(SET_HANDLE).and_then(|a| Some(u64::from_be_bytes(a.data.try_into().ok()?)));
            info = Some(SetInfo {
                timeout: flags & SET_F_TIMEOUT != 0,
                interval: flags & SET_F_INTERVAL != 0,
                unusable: flags & (SET_F_CONSTANT | SET_F_MAP | SET_F_OBJECT) != 0,
                owned: false,
                handle: handle.unwrap_or(0),
                key_type: attr(SET_KEY_TYPE),
            });
        };
        match self.query(request, each, || format!("look up set {family} {table} {name}")) {
            Ok(()) => {}
            Err(FirewallError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let owned = self.table_flags(family, table)?.unwrap_or(0) & TABLE_F_OWNER != 0;
        Ok(info.map(|i| SetInfo { owned, ..i }))
    }

    /// A table's flags; `None` when it does not exist.
    pub(super) fn table_flags(&mut self, family: TableFamily, table: &str) -> Result<Option<u32>, FirewallError> {
        let request = Request::new(GETTABLE, family.nfproto(), F_ACK, self.seq()).str(TABLE_NAME, table);
        let mut flags = None;
        let each = |m: &Message<'_>| flags = Some(m.attrs().get(TABLE_FLAGS).and_then(|a| be_u32(a.data)).unwrap_or(0));
        match self.query(request, each, || format!("look up table {family} {table}")) {
            Ok(()) => Ok(flags),
            Err(FirewallError::NotFound { .. }) => Ok(None),
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
        let request =
            Request::new(GETSETELEM, family.nfproto(), F_DUMP, self.seq()).str(SET_TABLE, table).str(SET_NAME, name);
        let mut elements = Vec::new();
        let each = |m: &Message<'_>| {
            let Some(list) = m.attrs().get(SET_ELEM_LIST_ELEMENTS) else { return };
            for elem in list.nested().filter(|a| a.kind == LIST_ELEM) {
                let flags = elem.nested().get(SET_ELEM_FLAGS).and_then(|a| be_u32(a.data)).unwrap_or(0);
                if flags & ELEM_F_INTERVAL_END != 0 {
                    continue;
                }
                let key = elem.nested().get(SET_ELEM_KEY).and_then(|k| k.nested().get(DATA_VALUE));
                let Some((addr, port)) = key.and_then(|k| super::concat::parse_key(k.data)) else { continue };
                let ms = |kind| elem.nested().get(kind).and_then(|a| be_ms(a.data));
                let (timeout, expires) = (ms(SET_ELEM_TIMEOUT), ms(SET_ELEM_EXPIRATION));
                let comment = elem.nested().get(SET_ELEM_USERDATA).and_then(|a| super::comment::decode(a.data));
                elements.push(ElementInfo { addr, port, timeout, expires, comment });
            }
        };
        self.query(request, each, || format!("list set {family} {table} {name}"))?;
        Ok(elements)
    }

    /// The names of every set in the `inet` table `table`; `None` when the table does not exist.
    pub(super) fn set_names(&mut self, table: &str) -> Result<Option<Vec<String>>, FirewallError> {
        let request = Request::new(GETSET, TableFamily::Inet.nfproto(), F_DUMP, self.seq()).str(SET_TABLE, table);
        let mut names = Vec::new();
        let each = |m: &Message<'_>| {
            names.extend(m.attrs().get(SET_NAME).map(|a| String::from_utf8_lossy(a.str()).into_owned()));
        };
        match self.query(request, each, || format!("list the sets of table inet {table}")) {
            Ok(()) => Ok(Some(names)),
            Err(FirewallError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the `inet` table `name` exists.
    pub(super) fn table_exists(&mut self, name: &str) -> Result<bool, FirewallError> {
        let request = Request::new(GETTABLE, TableFamily::Inet.nfproto(), F_ACK, self.seq()).str(TABLE_NAME, name);
        match self.query(request, |_| {}, || format!("look up table inet {name}")) {
            Ok(()) => Ok(true),
            Err(FirewallError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
