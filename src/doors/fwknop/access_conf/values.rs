//! The values of access.conf directives (and of fwknopd.conf keys), as fwknopd reads them.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::config::yaml::check_command;
use crate::config::{PortProto, Proto};
use crate::doors::fwknop::settings::KeyMaterial;

/// `VAR value` (fwknopd: the value runs to a `;` or the end of the line; a `:` after the
/// directive is allowed).
pub(crate) fn split(line: &str) -> Option<(&str, &str)> {
    let (var, rest) = line.split_once(char::is_whitespace)?;
    let value = rest.split(';').next()?.trim();
    (!value.is_empty()).then_some((var.trim_end_matches(':'), value))
}

/// `ANY`, or addresses and prefixes separated by commas. A prefix is written with a length
/// (`198.18.0.0/16`) or, as fwknopd also reads it, with a dotted netmask
/// (`198.18.0.0/255.255.0.0`).
pub(crate) fn prefixes(value: &str) -> Result<Vec<ipnet::IpNet>, String> {
    if value.eq_ignore_ascii_case("ANY") {
        return Ok(Vec::new());
    }
    value.split(',').map(|item| prefix(item.trim())).collect()
}

fn prefix(item: &str) -> Result<ipnet::IpNet, String> {
    let bad = || format!("`{item}` is not an address or a prefix: write ANY, 198.18.0.0/16 or 198.18.0.2");
    let net = match item.split_once('/') {
        Some((addr, mask)) if mask.contains('.') => {
            let addr: Ipv4Addr = addr.trim().parse().map_err(|_| bad())?;
            let mask: Ipv4Addr = mask.trim().parse().map_err(|_| bad())?;
            let len = netmask_len(mask).ok_or_else(|| {
                format!(
                    "`{item}`: the netmask {mask} is not a run of ones then zeros: write the prefix length, like /24"
                )
            })?;
            ipnet::IpNet::new(IpAddr::V4(addr), len).map_err(|_| bad())?
        }
        Some(_) => item.parse::<ipnet::IpNet>().map_err(|_| bad())?,
        None => item.parse::<IpAddr>().map(ipnet::IpNet::from).map_err(|_| bad())?,
    };
    Ok(net.trunc())
}

/// The prefix length of a contiguous netmask (`255.255.255.0` is 24).
fn netmask_len(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// `tcp/22, udp/1194`.
pub(crate) fn ports(value: &str) -> Result<Vec<PortProto>, String> {
    value
        .split(',')
        .map(|item| {
            let (proto, port) =
                item.trim().split_once('/').ok_or_else(|| format!("`{item}`: write proto/port, like tcp/22"))?;
            let proto = match proto.trim().to_ascii_lowercase().as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                other => return Err(format!("`{item}`: unknown protocol `{other}`: use tcp or udp")),
            };
            let port: u64 = port.trim().parse().map_err(|_| format!("`{item}` is not a port"))?;
            PortProto::checked(port, proto)
        })
        .collect()
}

pub(crate) fn seconds(value: &str) -> Result<Duration, String> {
    value.parse::<u64>().map(Duration::from_secs).map_err(|_| format!("`{value}` is not a number of seconds"))
}

/// `Y`/`N` as fwknopd reads it: anything starting with `Y` (or `y`) is yes.
pub(crate) fn yes(value: &str) -> bool {
    value.starts_with(['Y', 'y'])
}

/// Longest Rijndael key fwknop takes, and longest HMAC key, in bytes.
const MAX_KEY: usize = 32;
const MAX_HMAC_KEY: usize = 128;

/// A key as written after `KEY`/`KEY_BASE64` (`hmac` false) or `HMAC_KEY`/`HMAC_KEY_BASE64`.
pub(crate) fn key(value: &str, base64: bool, hmac: bool) -> Result<KeyMaterial, String> {
    if value.eq_ignore_ascii_case("__CHANGEME__") {
        return Err("the value is still `__CHANGEME__`: set the key (`fwknop --key-gen` makes a pair)".into());
    }
    let len = if base64 {
        crate::doors::key_file::decode_base64(value).ok_or_else(|| format!("`{value}` is not base64"))?.len()
    } else {
        value.len()
    };
    let (max, what) = if hmac { (MAX_HMAC_KEY, "HMAC keys") } else { (MAX_KEY, "encryption keys") };
    if len == 0 || len > max {
        return Err(format!(
            "the key is {len} bytes: fwknop's {what} are 1 to {max} (`fwknop --key-gen` makes a pair)"
        ));
    }
    Ok(if base64 { KeyMaterial::Base64(value.to_owned()) } else { KeyMaterial::Text(value.to_owned()) })
}

/// `MM/DD/YYYY`, midnight UTC; as in fwknopd, a year of one or two digits is 20YY.
pub(crate) fn date(value: &str) -> Result<u64, String> {
    let bad = || format!("`{value}` is not a date: write MM/DD/YYYY");
    let parts: Vec<&str> = value.split('/').map(str::trim).collect();
    let [month, day, year] = parts.as_slice() else { return Err(bad()) };
    let year = match year.len() {
        1 | 2 => format!("20{year:0>2}"),
        4 => (*year).to_owned(),
        _ => return Err(bad()),
    };
    let text = format!("{year}-{month:0>2}-{day:0>2} 00:00:00");
    humantime::parse_rfc3339_weak(&text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .ok_or_else(bad)
}

/// fwknopd's command variables (`$IP`), as knockd's placeholders (`%IP%`).
pub(crate) fn command(value: &str) -> Result<String, String> {
    const VARS: [&str; 8] = ["CLIENT_TIMEOUT", "PKT_SRC", "TIMEOUT", "PROTO", "PORT", "SRC", "DST", "IP"];
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match VARS.iter().find(|v| after.starts_with(*v)) {
            Some(var) => {
                out.push_str(&format!("%{var}%"));
                rest = &after[var.len()..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    check_command(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_netmasks_are_prefix_lengths() {
        let nets = prefixes("198.18.1.7/255.255.255.0, 198.18.0.0/255.255.0.0,198.18.2.2/255.255.255.255").unwrap();
        let text: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
        assert_eq!(text, ["198.18.1.0/24", "198.18.0.0/16", "198.18.2.2/32"]);
        assert_eq!(prefixes("198.18.0.0/0.0.0.0").unwrap()[0].to_string(), "0.0.0.0/0");
        let e = prefixes("198.18.0.0/255.0.255.0").unwrap_err();
        assert!(e.contains("not a run of ones then zeros"), "{e}");
        assert!(prefixes("198.18.0.0/255.255.0").is_err());
        assert!(prefixes("2001:db8::/255.255.0.0").is_err());
    }

    #[test]
    fn two_digit_years_are_this_century() {
        assert_eq!(date("3/10/01"), date("03/10/2001"));
        assert_eq!(date("12/31/99").unwrap(), date("12/31/2099").unwrap());
        assert_eq!(date("1/1/2027").unwrap(), 1_798_761_600);
        for bad in ["1/1/027", "13/1/2027", "1/1", "x/y/z", "1/1/20277"] {
            assert!(date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_lengths_are_fwknops() {
        assert!(key("c2VjcmV0", true, false).is_ok());
        let e = key(&"A".repeat(60), true, false).unwrap_err();
        assert!(e.contains("the key is 45 bytes: fwknop's encryption keys are 1 to 32"), "{e}");
        assert!(key(&"k".repeat(128), false, true).is_ok());
        assert!(key(&"k".repeat(129), false, true).unwrap_err().contains("HMAC keys are 1 to 128"));
    }
}
