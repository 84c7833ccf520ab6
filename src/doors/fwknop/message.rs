//! The plaintext of an fwknop packet: colon-separated fields, the last one a digest of the rest.
//!
//! `RAND:B64(user):TIMESTAMP:VERSION:TYPE:B64(message)[:B64(nat)][:B64(server_auth)][:TIMEOUT]:DIGEST`
//!
//! Access messages are taken (type 1, and 3 with the client's timeout), and NAT access messages
//! (`fwknop -N`: 2, and 4 with the client's timeout), which a door's `open.forward` decides.
//! Commands (type 0) and local NAT (5, 6) are refused by name, so the log says why a client is
//! not let in.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::FwknopError;
use super::digest;
use super::settings::HmacDigest;
use crate::config::{PortProto, Proto};
use crate::doors::key_file::{decode_base64, encode_base64};

/// fwknop's limits on the fields, in characters.
const MAX_USERNAME: usize = 64;
const MAX_MESSAGE: usize = 256;
const MAX_TIMESTAMP: usize = 12;
const MAX_VERSION: usize = 8;
/// Digits in the random value that opens every plaintext.
const RAND_LEN: usize = 16;
/// The message type of a plain access request, and of one that names its own timeout.
pub const ACCESS: u8 = 1;
/// An access request with the client's timeout (`fwknop -f`).
pub const ACCESS_WITH_TIMEOUT: u8 = 3;
/// A NAT access request (`fwknop -N`).
pub const NAT_ACCESS: u8 = 2;
/// A NAT access request with the client's timeout.
pub const NAT_ACCESS_WITH_TIMEOUT: u8 = 4;

/// What an access message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The user the client runs as (or `-U`).
    pub user: String,
    /// When the client built the packet, in seconds since the Unix epoch.
    pub timestamp: u64,
    /// The client's protocol version (`3.0.0` for fwknop 2.6).
    pub version: String,
    /// The address to open for; `None` when the client sent `0.0.0.0` (`-s`): its own source.
    pub allow: Option<IpAddr>,
    /// The ports asked for (`-A tcp/22,udp/53`).
    pub ports: Vec<PortProto>,
    /// How long, in seconds, when the client said (`-f`; type 3).
    pub client_timeout: Option<u32>,
    /// For a NAT access message (`fwknop -N HOST:PORT`): the host and port behind this one to
    /// be forwarded to.
    pub nat: Option<SocketAddr>,
    /// The type of the inner digest.
    pub digest: HmacDigest,
}

fn malformed(what: &'static str) -> FwknopError {
    FwknopError::Malformed(what)
}

/// Base64 text (without padding) decoded into printable ASCII with no `:`.
fn text_field(field: &str, max: usize, what: &'static str) -> Result<String, FwknopError> {
    if field.is_empty() || field.len() > max {
        return Err(malformed(what));
    }
    let bytes = decode_base64(field).ok_or_else(|| malformed(what))?;
    let text = String::from_utf8(bytes).map_err(|_| malformed(what))?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') || text.contains(':') {
        return Err(malformed(what));
    }
    Ok(text)
}

fn number<T: std::str::FromStr>(field: &str, max: usize, what: &'static str) -> Result<T, FwknopError> {
    if field.is_empty() || field.len() > max || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(what));
    }
    field.parse().map_err(|_| malformed(what))
}

/// Checks the digest (the last field) against the rest, trying both digests of its length.
fn check_digest(plaintext: &str) -> Result<(&str, HmacDigest), FwknopError> {
    let (body, written) = plaintext.rsplit_once(':').ok_or_else(|| malformed("no digest"))?;
    let mut types = digest::types_of_len(written.len()).peekable();
    if types.peek().is_none() {
        return Err(malformed("a digest of no known length"));
    }
    let found = types.find(|d| encode_base64(&digest::hash(*d, body.as_bytes())) == written);
    Ok((body, found.ok_or(FwknopError::Digest)?))
}

/// `IP,proto/port[,proto/port...]`.
fn access(text: &str) -> Result<(Option<IpAddr>, Vec<PortProto>), FwknopError> {
    let mut parts = text.split(',');
    let ip: IpAddr = parts.next().unwrap_or("").trim().parse().map_err(|_| malformed("no address in the message"))?;
    let allow = (ip != IpAddr::V4(Ipv4Addr::UNSPECIFIED)).then_some(ip);
    let ports = parts
        .map(|spec| {
            let (proto, port) = spec.trim().split_once('/').ok_or_else(|| malformed("a port without a protocol"))?;
            let proto = match proto.to_ascii_lowercase().as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => {
                    return Err(FwknopError::Refused(format!(
                        "asks for `{spec}`: knockd opens tcp and udp ports only"
                    )));
                }
            };
            let port: u16 = number(port, 5, "a port that is not a number")?;
            if port == 0 {
                return Err(malformed("port 0"));
            }
            Ok(PortProto { port, proto })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ports.is_empty() {
        return Err(malformed("the message asks for no port"));
    }
    Ok((allow, ports))
}

/// Parses a decrypted plaintext, checking its digest first.
pub fn parse(plaintext: &[u8]) -> Result<Message, FwknopError> {
    let text = std::str::from_utf8(plaintext).map_err(|_| malformed("the plaintext is not text"))?;
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed("the plaintext is not printable"));
    }
    let (body, digest) = check_digest(text)?;
    let fields: Vec<&str> = body.split(':').collect();
    if fields.len() < 6 {
        return Err(malformed("too few fields"));
    }
    let rand = fields[0];
    if rand.len() < RAND_LEN || !rand.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("no random value"));
    }
    let user = text_field(fields[1], MAX_USERNAME, "a bad user name")?;
    let timestamp = number(fields[2], MAX_TIMESTAMP, "a bad timestamp")?;
    let version = fields[3];
    if version.is_empty() || version.len() > MAX_VERSION {
        return Err(malformed("a bad version"));
    }
    let kind: u8 = number(fields[4], 2, "a bad message type")?;
    let rest = &fields[6..];
    let (client_timeout, nat) = match (kind, rest) {
        (ACCESS, []) => (None, None),
        (ACCESS_WITH_TIMEOUT, [timeout]) => (Some(number(timeout, 10, "a bad client timeout")?), None),
        (NAT_ACCESS, [nat]) => (None, Some(nat_field(nat)?)),
        (NAT_ACCESS_WITH_TIMEOUT, [nat, timeout]) => {
            (Some(number(timeout, 10, "a bad client timeout")?), Some(nat_field(nat)?))
        }
        (ACCESS | ACCESS_WITH_TIMEOUT | NAT_ACCESS | NAT_ACCESS_WITH_TIMEOUT, _) => {
            return Err(FwknopError::Refused("the packet has a server_auth field, which knockd does not take".into()));
        }
        (0, _) => {
            return Err(FwknopError::Refused(
                "a command message (CMD_EXEC): knockd runs no commands a packet sends".into(),
            ));
        }
        (5 | 6, _) => {
            return Err(FwknopError::Refused(
                "a local NAT message (fwknop --nat-local): knockd forwards to hosts behind it (a door's \
                 open.forward), not to a port of its own"
                    .into(),
            ));
        }
        _ => return Err(malformed("an unknown message type")),
    };
    if fields[5].len() > MAX_MESSAGE {
        return Err(malformed("the message is too long"));
    }
    let (allow, ports) = access(&text_field(fields[5], MAX_MESSAGE, "a bad access message")?)?;
    Ok(Message { user, timestamp, version: version.to_owned(), allow, ports, client_timeout, nat, digest })
}

/// The NAT field: `HOST,PORT` (an IPv4 address and a port), base64.
fn nat_field(field: &str) -> Result<SocketAddr, FwknopError> {
    let text = text_field(field, MAX_MESSAGE, "a bad NAT field")?;
    let (host, port) = text.split_once(',').ok_or_else(|| malformed("a bad NAT field"))?;
    let host: IpAddr = host.trim().parse().map_err(|_| malformed("a bad NAT address"))?;
    let port: u16 = port.trim().parse().ok().filter(|p| *p > 0).ok_or_else(|| malformed("a bad NAT port"))?;
    Ok(SocketAddr::new(host, port))
}

/// The plaintext a client builds for `message`, with the random value `rand` (16 digits): for
/// tests, fuzzing and the benchmark.
pub fn format(message: &Message, rand: u64) -> String {
    let allow = message.allow.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let ports: Vec<String> = message.ports.iter().map(|p| format!("{}/{}", p.proto, p.port)).collect();
    let access = format!("{allow},{}", ports.join(","));
    let kind = match (message.nat, message.client_timeout) {
        (None, None) => ACCESS,
        (None, Some(_)) => ACCESS_WITH_TIMEOUT,
        (Some(_), None) => NAT_ACCESS,
        (Some(_), Some(_)) => NAT_ACCESS_WITH_TIMEOUT,
    };
    let mut body = format!(
        "{rand:016}:{}:{}:{}:{kind}:{}",
        encode_base64(message.user.as_bytes()),
        message.timestamp,
        message.version,
        encode_base64(access.as_bytes())
    );
    if let Some(to) = message.nat {
        body.push_str(&format!(":{}", encode_base64(format!("{},{}", to.ip(), to.port()).as_bytes())));
    }
    if let Some(timeout) = message.client_timeout {
        body.push_str(&format!(":{timeout}"));
    }
    let digest = encode_base64(&digest::hash(message.digest, body.as_bytes()));
    format!("{body}:{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message {
            user: "alice".into(),
            timestamp: 1_764_063_000,
            version: "3.0.0".into(),
            allow: Some("198.18.0.2".parse().unwrap()),
            ports: vec![PortProto::tcp(22), PortProto::udp(53)],
            client_timeout: None,
            nat: None,
            digest: HmacDigest::Sha256,
        }
    }

    #[test]
    fn round_trips_every_digest_and_the_client_timeout() {
        for digest in HmacDigest::ALL {
            for client_timeout in [None, Some(600)] {
                let message = Message { digest, client_timeout, ..sample() };
                assert_eq!(parse(format(&message, 1234567890123456).as_bytes()).unwrap(), message);
            }
        }
    }

    #[test]
    fn zero_address_means_the_source() {
        let message = Message { allow: None, ..sample() };
        let text = format(&message, 1);
        assert!(text.contains(&encode_base64(b"0.0.0.0,tcp/22,udp/53")));
        assert_eq!(parse(text.as_bytes()).unwrap().allow, None);
    }

    #[test]
    fn a_changed_field_fails_the_digest() {
        let text = format(&sample(), 1).replacen("1764063000", "1764063001", 1);
        assert_eq!(parse(text.as_bytes()), Err(FwknopError::Digest));
    }

    /// Builds a plaintext of `kind` with `rest` after the message, digest included.
    fn with_type(kind: u8, rest: &str) -> String {
        let body = format!("1234567890123456:YWxpY2U:1764063000:3.0.0:{kind}:MTk4LjE4LjAuMix0Y3AvMjI{rest}");
        let digest = encode_base64(&digest::hash(HmacDigest::Sha256, body.as_bytes()));
        format!("{body}:{digest}")
    }

    #[test]
    fn commands_and_local_nat_are_refused_by_name_and_nat_access_names_its_host() {
        let refused = |text: String| match parse(text.as_bytes()) {
            Err(FwknopError::Refused(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(refused(with_type(0, "")).contains("command"));
        for nat in [5, 6] {
            assert!(refused(with_type(nat, ":MTk4LjE4LjAuMywyMg")).contains("local NAT"), "type {nat}");
        }
        // "198.18.0.3,22"
        let nat = parse(with_type(2, ":MTk4LjE4LjAuMywyMg").as_bytes()).unwrap();
        assert_eq!(nat.nat, Some("198.18.0.3:22".parse().unwrap()));
        let timed = parse(with_type(4, ":MTk4LjE4LjAuMywyMg:30").as_bytes()).unwrap();
        assert_eq!((timed.nat, timed.client_timeout), (nat.nat, Some(30)));
        assert!(parse(with_type(2, ":eHl6").as_bytes()).is_err(), "\"xyz\" is no host and port");
        assert!(refused(with_type(1, ":Y3J5cHQ")).contains("server_auth"));
        assert!(parse(with_type(9, "").as_bytes()).is_err());
        assert!(parse(with_type(1, "").as_bytes()).is_ok());
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        for text in ["", ":", "a:b", "x".repeat(2000).as_str(), "1234567890123456:::::::::::x", "\u{7f}:::"] {
            assert!(parse(text.as_bytes()).is_err(), "{text}");
        }
    }
}
