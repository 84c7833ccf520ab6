//! knockd-bench's side-by-side run: the same packets, built once by the stock fwknop client
//! (2.6.10, `-T -B`), sent to fwknopd 2.6.10 and to knockd, each started on the same
//! access.conf (and fwknopd.conf), in the shapes of fwknop's own test configs (written here).
//! It prints each case's verdict on both and where they differ; a difference knockd makes on
//! purpose (doc/fwknop.md) is named as such. It prints; it asserts nothing.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::bench_fwknop::{HMAC_KEY, KEY, Server, Setup, start_with};
use crate::support::*;

/// A second key pair, for stanzas whose keys are not the client's.
const KEY_B: &str = "U16Jk9kmSPGiHJXCrnmew4ll0GbnQjjkJ0PNj426gqE=";
const HMAC_KEY_B: &str = "I6MKyk+qULuH1syBojJOe17NdfIFMQGuZOVnwoupY4jsaSMYBH2eOmgm8/eHBIqGUCeHGnHa7TFVBpMMKEmBGg==";
/// An address outside the clients' SOURCE /24, for the allow-IP case.
const OUTSIDE: &str = "198.18.1.9";

/// One case: the config, the client's options, and what shows the verdict.
struct Case {
    name: &'static str,
    /// access.conf; `{K}`, `{H}` are the client's keys, `{KB}`, `{HB}` the other pair.
    access: &'static str,
    fwknopd: &'static str,
    files: &'static [(&'static str, &'static str)],
    /// The client's options besides the keys, `-D` and `-T -B`; `-a` defaults to the client.
    client: &'static [&'static str],
    /// Whether the client adds `--use-hmac`.
    hmac: bool,
    /// The port whose opening is the verdict, and for whom (default: the client).
    port: u16,
    open_for: &'static str,
    /// Where knockd differs on purpose, and why.
    on_purpose: Option<&'static str>,
}

const STANZA: &str = "SOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\n";

const fn case(name: &'static str, access: &'static str, client: &'static [&'static str]) -> Case {
    Case { name, access, fwknopd: "", files: &[], client, hmac: true, port: 22, open_for: CLIENT_V4, on_purpose: None }
}

/// The client asking for tcp/22.
const A22: &[&str] = &["-A", "tcp/22"];

/// The cases, in the shapes of fwknop's test configs.
const CASES: &[Case] = &[
    case("one stanza, the client asks for tcp/22", STANZA, A22),
    case(
        "SOURCE with a dotted netmask",
        "SOURCE 198.18.0.0/255.255.0.0\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\n",
        A22,
    ),
    case("`SOURCE: ...;` lines", "SOURCE: ANY;\nKEY_BASE64: {K};\nHMAC_KEY_BASE64: {H};\nOPEN_PORTS: tcp/22;\n", A22),
    case(
        "ACCESS_EXPIRE 3/10/01 (two-digit year, past)",
        "SOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\nACCESS_EXPIRE 3/10/01\n",
        A22,
    ),
    case(
        "ACCESS_EXPIRE 12/31/99 (two-digit year, ahead)",
        "SOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\nACCESS_EXPIRE 12/31/99\n",
        A22,
    ),
    case(
        "DIGEST_TYPE in the stanza",
        "SOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\nDIGEST_TYPE SHA1\n",
        A22,
    ),
    Case {
        port: 80,
        ..case(
            "same keys, tcp/22 stanza then tcp/80 stanza; asks tcp/80",
            "SOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\n\nSOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/80\n",
            &["-A", "tcp/80"],
        )
    },
    case(
        "first stanza's HMAC key matches, its encryption key does not",
        "SOURCE ANY\nKEY_BASE64 {KB}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\n\nSOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\n",
        A22,
    ),
    case(
        "first stanza has other keys",
        "SOURCE ANY\nKEY_BASE64 {KB}\nHMAC_KEY_BASE64 {HB}\nOPEN_PORTS tcp/22\n\nSOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\n",
        A22,
    ),
    Case {
        hmac: false,
        on_purpose: Some("knockd requires an HMAC, checked before anything is decrypted"),
        ..case(
            "stanza without HMAC_KEY, client without --use-hmac",
            "SOURCE ANY\nKEY_BASE64 {K}\nOPEN_PORTS tcp/22\n",
            A22,
        )
    },
    Case {
        on_purpose: Some("knockd takes CBC only"),
        ..case(
            "ENCRYPTION_MODE ECB, client -M ecb",
            "SOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\nENCRYPTION_MODE ECB\n",
            &["-A", "tcp/22", "-M", "ecb"],
        )
    },
    case("a CBC stanza, client -M ecb", STANZA, &["-A", "tcp/22", "-M", "ecb"]),
    Case {
        open_for: OUTSIDE,
        on_purpose: Some("knockd opens only for an address within SOURCE"),
        ..case(
            "-a names an address outside SOURCE",
            "SOURCE 198.18.0.0/24\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\n",
            &["-A", "tcp/22", "-a", OUTSIDE],
        )
    },
    case(
        "REQUIRE_SOURCE_ADDRESS Y, client -s",
        "SOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\nREQUIRE_SOURCE_ADDRESS Y\n",
        &["-A", "tcp/22", "-s"],
    ),
    case("-s (open for the packet's source)", STANZA, &["-A", "tcp/22", "-s"]),
    case("asks tcp/22 and tcp/23, OPEN_PORTS tcp/22", STANZA, &["-A", "tcp/22,tcp/23"]),
    case(
        "REQUIRE_USERNAME alice, client -U bob",
        "SOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\nREQUIRE_USERNAME alice\n",
        &["-A", "tcp/22", "-U", "bob"],
    ),
    case("client timeout -f 5", STANZA, &["-A", "tcp/22", "-f", "5"]),
    case(
        "SOURCE does not hold the client",
        "SOURCE 198.19.0.0/16\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\n",
        A22,
    ),
    case("a packet 5 minutes old", STANZA, &["-A", "tcp/22", "--time-offset-minus", "5m"]),
    Case {
        fwknopd: "MAX_SPA_PACKET_AGE 600;\n",
        ..case(
            "fwknopd.conf MAX_SPA_PACKET_AGE 600, 5 minutes old",
            STANZA,
            &["-A", "tcp/22", "--time-offset-minus", "5m"],
        )
    },
    Case {
        fwknopd: "ENABLE_SPA_PACKET_AGING N;\n",
        ..case("fwknopd.conf aging off, 30 minutes old", STANZA, &["-A", "tcp/22", "--time-offset-minus", "30m"])
    },
    Case {
        fwknopd: "ENABLE_SPA_PACKET_AGING N;\n",
        on_purpose: Some("knockd always checks the age (1 h at most): its replay cache forgets older packets"),
        ..case("fwknopd.conf aging off, 2 hours old", STANZA, &["-A", "tcp/22", "--time-offset-minus", "2h"])
    },
    Case {
        fwknopd: "PCAP_FILTER udp port 62203;\n",
        ..case("fwknopd.conf PCAP_FILTER udp port 62203, client -p 62203", STANZA, &["-A", "tcp/22", "-p", "62203"])
    },
    case(
        "ENABLE_CMD_EXEC Y, an access request",
        "SOURCE ANY\nKEY_BASE64 {K}\nHMAC_KEY_BASE64 {H}\nOPEN_PORTS tcp/22\nENABLE_CMD_EXEC Y\n",
        A22,
    ),
    case("a NAT request (-N), forwarding off", STANZA, &["-A", "tcp/22", "-N", "198.18.5.5:22"]),
    Case {
        files: &[("access.d/a.conf", "SOURCE ANY\nKEY fwknoptest\nOPEN_PORTS tcp/22\n"), ("access.d/b.conf", STANZA)],
        ..case(
            "%include_folder: a stanza without an HMAC key, then the client's",
            "%include_folder {DIR}/access.d\n",
            A22,
        )
    },
];

/// What a server made of a case's packet.
#[derive(Clone, PartialEq, Eq)]
enum Verdict {
    Opened,
    Refused(String),
    /// The port answered before any packet: the server does not guard it.
    Unguarded,
    NotStarted(String),
}

impl Verdict {
    fn show(&self) -> String {
        match self {
            Verdict::Opened => "opens".into(),
            Verdict::Refused(why) if why.is_empty() => "stays closed".into(),
            Verdict::Refused(why) => format!("stays closed: {why}"),
            Verdict::Unguarded => "open before any packet".into(),
            Verdict::NotStarted(why) => format!("does not start: {why}"),
        }
    }

    fn opened(&self) -> Option<bool> {
        match self {
            Verdict::Opened => Some(true),
            Verdict::Refused(_) => Some(false),
            _ => None,
        }
    }
}

fn keys(text: &str) -> String {
    text.replace("{KB}", KEY_B).replace("{HB}", HMAC_KEY_B).replace("{K}", KEY).replace("{H}", HMAC_KEY)
}

/// The case's packet, built once by the stock client, not sent (`-T -B`).
fn build(case: &Case) -> Result<Vec<u8>, String> {
    let file = ConfigFile::new("spa.packet", "");
    let mut args = vec!["--no-rc-file", "--no-save-args", "--key-base64-rijndael", KEY, "-D", SERVER_V4];
    if case.hmac {
        args.extend(["--use-hmac", "--key-base64-hmac", HMAC_KEY]);
    }
    if !case.client.contains(&"-a") && !case.client.contains(&"-s") {
        args.extend(["-a", CLIENT_V4]);
    }
    args.extend(case.client);
    args.extend(["-T", "-B", file.path.to_str().unwrap()]);
    let out = Command::new("fwknop").args(&args).output().map_err(|e| format!("fwknop: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(std::fs::read(&file.path).map_err(|e| e.to_string())?.trim_ascii_end().to_vec())
}

/// The last log line that says why, shortened.
fn reason(server: Server, log: &str) -> String {
    let (words, not): (&[&str], &[&str]) = match server {
        Server::Knockd => (&["rejected", "left out"], &[]),
        Server::Fwknopd => (
            &["(stanza #", "No access data", "Error", "error", "Refusing", "could not"],
            &["source match", "SPA Decode"],
        ),
    };
    let says = |l: &&str| words.iter().any(|w| l.contains(w)) && !not.iter().any(|w| l.contains(w));
    let line = log.lines().rev().find(says).unwrap_or("");
    let line = line.split("] ").last().unwrap_or(line).trim();
    line.chars().take(110).collect()
}

/// Starts `server` on the case's files in a lab of its own and sends it `packet`.
fn verdict(server: Server, case: &Case, packet: &[u8]) -> Verdict {
    let lab = Lab::new();
    lab.add_client_addr(&format!("{OUTSIDE}/16"));
    let _echo = Echo::start(&lab.server, SocketAddr::new("::".parse().unwrap(), case.port));
    let access = keys(case.access);
    let files: Vec<(&str, String)> = case.files.iter().map(|(n, t)| (*n, keys(t))).collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let setup =
        Setup { name: "test_access.conf", access: &access, fwknopd: case.fwknopd, files: &files, guard: &[case.port] };
    let (daemon, _files) = match start_with(server, &lab, &setup) {
        Ok(started) => started,
        Err(log) => return Verdict::NotStarted(reason(server, &log)),
    };
    let target = SocketAddr::new(SERVER_V4.parse().unwrap(), case.port);
    if !is_dropped(&lab.client, case.open_for, target, Duration::from_millis(300)) {
        return Verdict::Unguarded;
    }
    let port = case.client.iter().skip_while(|a| **a != "-p").nth(1).map_or(62201, |p| p.parse().unwrap());
    let origin = knockd::client::Origin { source: Some(CLIENT_V4.parse().unwrap()), interface: None };
    let sent = lab.client.run(|| knockd::client::send_datagram(SERVER_V4.parse().unwrap(), port, packet, &origin));
    if let Err(e) = sent {
        return Verdict::NotStarted(format!("the packet was not sent: {e}"));
    }
    if connects_within(&lab.client, case.open_for, target, Duration::from_millis(1500)) {
        Verdict::Opened
    } else {
        Verdict::Refused(reason(server, &daemon.log_text()))
    }
}

/// Runs every case on both servers and prints the table; returns (cases, same, on purpose).
pub fn run() -> (usize, usize, usize) {
    let cases = CASES;
    println!();
    println!("| case (the stock client's packet, built once) | fwknopd 2.6.10 | knockd | |");
    println!("|---|---|---|---|");
    let (mut same, mut on_purpose) = (0, 0);
    for case in cases {
        eprintln!("knockd-bench: fwknopd and knockd: {}...", case.name);
        let packet = match build(case) {
            Ok(packet) => packet,
            Err(e) => {
                println!("| {} | - | - | the client built no packet: {e} |", case.name);
                continue;
            }
        };
        let theirs = verdict(Server::Fwknopd, case, &packet);
        let ours = verdict(Server::Knockd, case, &packet);
        let agree = theirs.opened().is_some() && theirs.opened() == ours.opened();
        let mark = match (agree, case.on_purpose) {
            (true, _) => {
                same += 1;
                "same".to_owned()
            }
            (false, Some(why)) => {
                on_purpose += 1;
                format!("**differs, on purpose**: {why}")
            }
            (false, None) => "**DIFFERS**".to_owned(),
        };
        println!("| {} | {} | {} | {mark} |", case.name, theirs.show(), ours.show());
    }
    (cases.len(), same, on_purpose)
}
