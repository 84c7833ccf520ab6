//! fwknopd.conf: fwknopd's server-wide settings, read with an access.conf (the one beside it,
//! or `--fwknopd-conf FILE`) so that an admin's settings carry over. Each key is honoured, or
//! named in a warning that says why not (doc/fwknop.md lists them all): none is silently
//! ignored. A key set to what knockd does anyway (`ENABLE_DIGEST_PERSISTENCE Y`) is honoured.

use std::path::Path;
use std::time::Duration;

use super::access_conf::values::{split, yes};
use super::settings::{FWKNOP_PORT, Fwknop};
use crate::config::{Config, ConfigError, Location, Notice, Trust, check_interface, read_text};

/// The file fwknopd reads, looked for beside an access.conf.
pub const FILE_NAME: &str = "fwknopd.conf";
/// Largest file read.
const MAX_FILE: u64 = 1 << 20;
/// The widest window knockd allows (and what it uses when aging is turned off).
const MAX_WINDOW: Duration = Duration::from_secs(3600);

const FIREWALL: &str = "knockd writes its own nftables table, not iptables, firewalld, ipfw or pf rules";
const CAPTURE: &str = "knockd's capture (a socket with a kernel filter, read as packets arrive) has no such setting";
const NAT: &str = "not honoured: knockd forwards with DNAT only, to the hosts a stanza or door names (FORCE_NAT, \
     open.forward); it neither translates to a port of its own (local NAT) nor rewrites sources (SNAT)";
const UDP_ONLY: &str = "knockd takes fwknop's packets over UDP only";

/// One `KEY value` line.
struct Entry {
    line: usize,
    key: String,
    value: String,
}

/// What knockd makes of a key.
enum Verdict {
    /// Honoured: what it does.
    Honoured(String),
    /// Set to what knockd does anyway.
    Same,
    /// Not honoured, and why (a warning).
    Not(String),
    /// Not used, as fwknopd would not use it either (said at info).
    Unused(String),
}

/// Reads the fwknopd.conf for the access.conf at `access`: `named`, else the one beside it
/// (none there is fine), and applies it to `config`; a file owned by a user `trust` trusts is
/// read like root's.
pub fn apply_for(access: &Path, named: Option<&Path>, config: &mut Config, trust: &Trust) -> Result<(), ConfigError> {
    let path = match named {
        Some(path) => path.to_owned(),
        None => match access.parent().map(|dir| dir.join(FILE_NAME)) {
            Some(beside) if beside.exists() => beside,
            _ => return Ok(()),
        },
    };
    let file = path.display().to_string();
    let (text, _) = read_text(&path, &file, MAX_FILE, trust)?;
    apply(&file, &text, config)?;
    // Read again on reload, like the access.conf's includes.
    config.included.push(path);
    Ok(())
}

/// Applies the fwknopd.conf text of `file` to `config` (an access.conf's).
pub fn apply(file: &str, text: &str, config: &mut Config) -> Result<(), ConfigError> {
    let entries = entries(file, text, &mut config.notices);
    let get = |key: &str| entries.iter().rev().find(|e| e.key == key);
    let udp_server = get("ENABLE_UDP_SERVER").is_some_and(|e| yes(&e.value));
    let aging = get("ENABLE_SPA_PACKET_AGING").is_none_or(|e| yes(&e.value));
    let mut honoured = Vec::new();
    for entry in &entries {
        let here = |message: String| ConfigError::Invalid {
            file: file.to_owned(),
            location: Some(Location { line: entry.line, column: 1 }),
            message: format!("{}: {message}", entry.key),
        };
        let verdict = match entry.key.as_str() {
            "PCAP_INTF"
            | "PCAP_FILTER"
            | "UDPSERV_PORT"
            | "MAX_SPA_PACKET_AGE"
            | "ENABLE_SPA_PACKET_AGING"
            | "VERBOSE" => mapped(entry, (udp_server, aging), config).map_err(here)?,
            key if key.contains("NAT") || key.contains("FORWARDING") => nat(entry, config).map_err(here)?,
            _ => other(entry, &get),
        };
        let at = format!("{file}:{}: {}", entry.line, entry.key);
        match verdict {
            Verdict::Honoured(what) => honoured.push(format!("{} ({what})", entry.key)),
            Verdict::Same => {}
            Verdict::Not(why) => {
                config.notices.push(Notice { level: log::Level::Warn, message: format!("{at}: {why}") })
            }
            Verdict::Unused(why) => {
                config.notices.push(Notice { level: log::Level::Info, message: format!("{at}: {why}") })
            }
        }
    }
    if !honoured.is_empty() {
        let message = format!("{file}: honoured {}", honoured.join(", "));
        config.notices.push(Notice { level: log::Level::Info, message });
    }
    Ok(())
}

/// The file's `KEY value` lines, `$KEY` at the start of a value expanded as fwknopd does.
fn entries(file: &str, text: &str, notices: &mut Vec<Notice>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let Some((key, value)) = split(line) else {
            let message = format!("{file}:{}: `{line}` is not `KEY value`: ignored, as fwknopd does", index + 1);
            notices.push(Notice { level: log::Level::Warn, message });
            continue;
        };
        let mut value = value.to_owned();
        if let Some(rest) = value.strip_prefix('$') {
            let name: String = rest.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
            if let Some(earlier) = entries.iter().rev().find(|e| e.key == name) {
                value = format!("{}{}", earlier.value, &rest[name.len()..]);
            }
        }
        entries.push(Entry { line: index + 1, key: key.to_ascii_uppercase(), value });
    }
    entries
}

/// Every fwknop door of `config`.
fn stanzas(config: &mut Config) -> impl Iterator<Item = &mut Fwknop> {
    config.doors.iter_mut().flat_map(|d| &mut d.proofs).filter_map(|p| p.get_mut::<Fwknop>())
}

/// The keys that map onto knockd: interface, port, window, verbosity.
/// `udp_server` and `aging`: whether fwknopd.conf turns the UDP server and packet aging on.
fn mapped(entry: &Entry, (udp_server, aging): (bool, bool), config: &mut Config) -> Result<Verdict, String> {
    let value = entry.value.as_str();
    Ok(match entry.key.as_str() {
        "PCAP_INTF" if value.eq_ignore_ascii_case("any") => {
            config.interfaces.clear();
            Verdict::Honoured("every interface".into())
        }
        "PCAP_INTF" => {
            check_interface(value)?;
            config.interfaces = vec![value.to_owned()];
            Verdict::Honoured(format!("listening on {value}"))
        }
        "PCAP_FILTER" if udp_server => Verdict::Unused("not used, as in fwknopd: ENABLE_UDP_SERVER is Y".into()),
        "PCAP_FILTER" => match filter_port(value) {
            Some(port) => set_port(config, port),
            None => Verdict::Not(format!(
                "`{value}` is not honoured: knockd reads only `udp port N` from it, and takes fwknop's packets on \
                 UDP port {} (its own kernel filter passes nothing else to it)",
                stanzas(config).next().map_or(FWKNOP_PORT, |f| f.port)
            )),
        },
        "UDPSERV_PORT" if !udp_server => Verdict::Unused("not used, as in fwknopd: ENABLE_UDP_SERVER is N".into()),
        "UDPSERV_PORT" => set_port(config, value.parse().map_err(|_| format!("`{value}` is not a port"))?),
        "MAX_SPA_PACKET_AGE" if !aging => {
            Verdict::Unused("not used, as in fwknopd: ENABLE_SPA_PACKET_AGING is N".into())
        }
        "MAX_SPA_PACKET_AGE" => {
            let secs: u64 = value.parse().map_err(|_| format!("`{value}` is not a number of seconds"))?;
            let window = Duration::from_secs(secs.max(1)).min(MAX_WINDOW);
            stanzas(config).for_each(|f| f.window = window);
            if window.as_secs() != secs {
                return Ok(Verdict::Not(format!("{secs} s is outside 1 s to 1 h: knockd uses {}", window.as_secs())));
            }
            Verdict::Honoured(format!("packets up to {secs} s old or early"))
        }
        "ENABLE_SPA_PACKET_AGING" if yes(value) => Verdict::Same,
        "ENABLE_SPA_PACKET_AGING" => {
            stanzas(config).for_each(|f| f.window = MAX_WINDOW);
            Verdict::Not(
                "N is not honoured: knockd checks every packet's age, as its replay cache forgets packets once \
                 they are too old to be taken; it takes packets up to 1 h old or early, the most it allows"
                    .into(),
            )
        }
        _ => match value.parse::<u32>() {
            Ok(0) => Verdict::Same,
            Ok(_) => {
                config.log.level = config.log.level.max(log::LevelFilter::Debug);
                Verdict::Honoured("logging at debug level".into())
            }
            Err(_) => return Err(format!("`{value}` is not a number")),
        },
    })
}

fn set_port(config: &mut Config, port: u16) -> Verdict {
    if port == 0 {
        return Verdict::Not("port 0 is not a port: knockd keeps the stanzas' port".into());
    }
    stanzas(config).for_each(|f| f.port = port);
    Verdict::Honoured(format!("fwknop's packets on UDP port {port}"))
}

/// The port of a PCAP_FILTER of the forms `udp port N` and `udp dst port N` (`and` allowed).
fn filter_port(filter: &str) -> Option<u16> {
    let words: Vec<String> = filter.split_whitespace().map(str::to_ascii_lowercase).collect();
    let at = words.iter().position(|w| w == "port")?;
    let port = words.get(at + 1)?.parse().ok()?;
    let others: Vec<&str> =
        words.iter().enumerate().filter(|(i, _)| *i != at && *i != at + 1).map(|(_, w)| w.as_str()).collect();
    (others.contains(&"udp") && others.iter().all(|w| ["udp", "dst", "and"].contains(w))).then_some(port)
}

/// The NAT and forwarding keys: read into every stanza. Forwarding is honoured (a stanza's
/// `FORCE_NAT`, fwknop -N against a door's `open.forward`); the rest is not.
fn nat(entry: &Entry, config: &mut Config) -> Result<Verdict, String> {
    let on = yes(&entry.value);
    match entry.key.as_str() {
        "ENABLE_IPT_FORWARDING" | "ENABLE_FIREWD_FORWARDING" => {
            stanzas(config).for_each(|f| f.nat.forwarding = on);
            return Ok(if on {
                Verdict::Honoured("forwarding (FORCE_NAT stanzas forward to their host)".into())
            } else {
                Verdict::Same
            });
        }
        "ENABLE_IPT_LOCAL_NAT" | "ENABLE_FIREWD_LOCAL_NAT" => stanzas(config).for_each(|f| f.nat.local_nat = on),
        "ENABLE_IPT_SNAT" | "ENABLE_FIREWD_SNAT" => stanzas(config).for_each(|f| f.nat.snat = on),
        "SNAT_TRANSLATE_IP" => {
            let ip = entry.value.parse().map_err(|_| format!("`{}` is not an IP address", entry.value))?;
            stanzas(config).for_each(|f| f.nat.snat_translate_ip = Some(ip));
            return Ok(Verdict::Not(NAT.into()));
        }
        "ENABLE_NAT_DNS" => {
            return Ok(Verdict::Unused("not used: knockd forwards to addresses, never to names".into()));
        }
        _ => return Ok(other(entry, &|_| None)),
    }
    Ok(if on { Verdict::Not(NAT.into()) } else { Verdict::Same })
}

/// Every other key: what fwknopd does with it that knockd does anyway, or why knockd does not.
fn other<'a>(entry: &Entry, get: &dyn Fn(&str) -> Option<&'a Entry>) -> Verdict {
    let (key, on) = (entry.key.as_str(), yes(&entry.value));
    let enabled = |switch: &str| get(switch).is_some_and(|e| yes(&e.value));
    let not = |why: &str| Verdict::Not(format!("not honoured: {why}"));
    match key {
        "ENABLE_DIGEST_PERSISTENCE"
        | "EXIT_AT_INTF_DOWN"
        | "ENABLE_PCAP_PROMISC"
        | "ENABLE_PCAP_ANY_DIRECTION"
        | "ENABLE_DESTINATION_RULE"
        | "ENABLE_SPA_OVER_HTTP"
        | "ALLOW_ANY_USER_AGENT"
        | "ENABLE_X_FORWARDED_FOR"
        | "ENABLE_TCP_SERVER"
        | "ENABLE_NFQ_CAPTURE"
        | "ENABLE_UDP_SERVER" => switch(key, on),
        "TCPSERV_PORT" if !enabled("ENABLE_TCP_SERVER") => {
            Verdict::Unused("not used, as in fwknopd: ENABLE_TCP_SERVER is N".into())
        }
        "TCPSERV_PORT" => not(UDP_ONLY),
        nfq if nfq.starts_with("NFQ_") && !enabled("ENABLE_NFQ_CAPTURE") => {
            Verdict::Unused("not used, as in fwknopd: ENABLE_NFQ_CAPTURE is N".into())
        }
        "PCAP_FILE" => not("knockd listens to live traffic only"),
        "PCAP_DISPATCH_COUNT" | "PCAP_LOOP_SLEEP" | "MAX_SNIFF_BYTES" | "UDPSERV_SELECT_TIMEOUT" => not(CAPTURE),
        nfq if nfq.starts_with("NFQ_") => not(CAPTURE),
        "RULES_CHECK_THRESHOLD" => {
            not("knockd's grants expire in the kernel (set element timeouts): no rule is left to check")
        }
        "CMD_EXEC_TIMEOUT" | "SUDO_EXE" => not("knockd runs no command a packet sends"),
        "GPG_HOME_DIR" | "GPG_EXE" => not("knockd takes no GPG packets"),
        "LOCALE" => not("knockd's log lines are in English, and it reads nothing by locale"),
        "SYSLOG_IDENTITY" | "SYSLOG_FACILITY" => {
            not("knockd logs to syslog as `knockd`, facility daemon; under systemd it logs to the journal, where the \
             unit names it (SyslogIdentifier=, SyslogFacility=)")
        }
        "FWKNOP_RUN_DIR" | "DIGEST_FILE" | "DIGEST_DB_FILE" => {
            not("knockd keeps its replay cache in <state dir>/fwknop.replay (--state-dir, default /var/lib/knockd)")
        }
        "FWKNOP_PID_FILE" => not("knockd writes a pid file where -p says (by default with -d: /run/knockd.pid)"),
        "FWKNOP_CONF_DIR" | "ACCESS_FILE" | "ACCESS_FOLDER" => {
            not("knockd reads the access.conf named with -c (for a folder, write `%include_folder DIR` in it)")
        }
        "FAULT_INJECTION_TAG" | "AFL_PKT_FILE" => not("fwknopd's test hooks"),
        "FIREWALL_EXE" | "ENABLE_RULE_PREPEND" => not(FIREWALL),
        fw if ["IPT_", "FIREWD_", "IPFW_", "PF_"]
            .iter()
            .any(|p| fw.starts_with(p) || fw.contains(&format!("_{p}"))) =>
        {
            not(FIREWALL)
        }
        _ => Verdict::Not("unknown key: ignored, as fwknopd ignores it".into()),
    }
}

/// A Y/N key: the same as knockd when set to what knockd does, else why knockd does not.
fn switch(key: &str, on: bool) -> Verdict {
    // What knockd does, and why it does not do the other.
    let (knockd, why) = match key {
        "ENABLE_DIGEST_PERSISTENCE" => (
            true,
            "knockd keeps its replay cache on disk all the same, so that a restart \
             cannot let a packet in twice",
        ),
        "EXIT_AT_INTF_DOWN" => (
            false,
            "knockd keeps running when an interface goes down, and hears it again when \
             it is back",
        ),
        "ENABLE_PCAP_PROMISC" => (false, "knockd never listens promiscuously: it takes packets sent to this host"),
        "ENABLE_PCAP_ANY_DIRECTION" => (false, "knockd takes only packets this host receives"),
        "ENABLE_DESTINATION_RULE" => (
            false,
            "knockd's grants open the port on every address of this host (its sets \
             hold the client's address, protocol and port); a stanza's DESTINATION still limits where packets may be \
             sent",
        ),
        "ENABLE_NFQ_CAPTURE" => (false, "knockd captures with a socket of its own, not NFQUEUE"),
        // Both of fwknopd's ways to read packets end where knockd's capture does.
        "ENABLE_UDP_SERVER" => return Verdict::Same,
        _ => (false, UDP_ONLY),
    };
    if on == knockd {
        Verdict::Same
    } else {
        Verdict::Not(format!("{} is not honoured: {why}", if on { "Y" } else { "N" }))
    }
}
