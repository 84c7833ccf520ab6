//! fwknop's stock client (Debian's fwknop-client 2.6.10) against knockd, end to end: packets the
//! real client builds (`-T -B`, nothing sent) or sends itself, from chosen sources, opening the
//! ports they ask for in per-port nftables sets, and only those.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

pub(crate) const WITHIN: Duration = Duration::from_secs(3);
/// Two key pairs from `fwknop --key-gen`, for these tests only.
pub(crate) const KEY: &str = "aK2BZ8AjOPhp0jccEbZvTtK53QHY91/Kq/fk3RW/iII=";
pub(crate) const HMAC_KEY: &str =
    "oexBgiCECuijnxbs1WGVYgziybEaV5p2Do4WguSColBAw6SpYSDGynkf/U26G7EjVGLrAUA8af2jNd7h89Iegw==";
const KEY_B: &str = "U16Jk9kmSPGiHJXCrnmew4ll0GbnQjjkJ0PNj426gqE=";
const HMAC_KEY_B: &str = "I6MKyk+qULuH1syBojJOe17NdfIFMQGuZOVnwoupY4jsaSMYBH2eOmgm8/eHBIqGUCeHGnHa7TFVBpMMKEmBGg==";

/// Runs the fwknop client in the client namespace with the keys and `args`; its output.
pub(crate) fn fwknop(lab: &Lab, keys: (&str, &str), args: &[&str]) -> std::process::Output {
    let mut all = vec!["netns", "exec", &lab.client.0, "fwknop", "--no-rc-file", "--no-save-args", "--use-hmac"];
    all.extend(["--key-base64-rijndael", keys.0, "--key-base64-hmac", keys.1]);
    all.extend_from_slice(args);
    let out = Command::new("ip").args(&all).output().expect("fwknop (apt-get install fwknop-client)");
    assert!(out.status.success(), "fwknop {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A packet the real client builds without sending it (`-T -B FILE`) for `args`.
pub(crate) fn packet(lab: &Lab, keys: (&str, &str), args: &[&str]) -> Vec<u8> {
    let file = ConfigFile::new("spa.packet", "");
    let path = file.path.to_str().unwrap();
    fwknop(lab, keys, &[&["-T", "-B", path, "-D", SERVER_V4][..], args].concat());
    let bytes = std::fs::read(&file.path).unwrap();
    assert!(bytes.len() > 100, "the client wrote no packet");
    bytes.trim_ascii_end().to_vec()
}

/// Sends `packet` from `src` to the server's fwknop port (IPv4 or IPv6, as `src` is).
pub(crate) fn send(lab: &Lab, src: &str, packet: &[u8]) {
    let server = if src.parse::<IpAddr>().unwrap().is_ipv4() { SERVER_V4 } else { SERVER_V6 };
    send_datagram(lab, src, server, 62201, packet);
}

pub(crate) fn stanza(source: &str, keys: (&str, &str), extra: &str) -> String {
    format!("SOURCE {source}\nKEY_BASE64 {}\nHMAC_KEY_BASE64 {}\n{extra}\n", keys.0, keys.1)
}

/// Starts knockd on an access.conf (mode 600, as it holds keys) with a state directory of its own.
pub(crate) fn start(lab: &Lab, access: &ConfigFile) -> Daemon {
    let state = access.state_dir();
    Daemon::start(&lab.server, access, &["--state-dir", state.to_str().unwrap()])
}

#[test]
fn the_stock_client_opens_the_port_it_asks_for_until_the_timeout() {
    let lab = Lab::new();
    let _ssh = lab.sshd();
    let _web = Echo::start(&lab.server, "[::]:443".parse().unwrap());
    let keys = (KEY, HMAC_KEY);
    let access = ConfigFile::private(
        "access.conf",
        &stanza("198.18.0.0/16", keys, "OPEN_PORTS tcp/22, tcp/443\nFW_ACCESS_TIMEOUT 2"),
    );
    ensure_knockd_user();
    let daemon = start(&lab, &access);
    assert!(
        daemon.log_text().contains("is fwknopd's access.conf (or one of its files), whose keys only root may read"),
        "{}",
        daemon.log_text()
    );
    assert!(is_dropped(&lab.client, CLIENT_V4, at(SERVER_V4, 22), DROP_WAIT), "closed before the packet");

    // As a user runs it: the client sends the packet itself.
    fwknop(&lab, keys, &["-A", "tcp/22", "-a", CLIENT_V4, "-D", SERVER_V4, "-U", "alice"]);
    assert!(connects_within(&lab.client, CLIENT_V4, at(SERVER_V4, 22), WITHIN), "{}", daemon.log_text());
    // The connect can beat the log line out of the pipe (the grant is committed first).
    daemon.expect_log(&vouched("key stanza1, user alice"), WITHIN);
    assert!(is_dropped(&lab.client, CLIENT_V4, at(SERVER_V4, 443), DROP_WAIT), "only the port asked for opens");
    let elements = lab.server.set_elements("knockd", "stanza1_v4");
    assert!(elements.contains("198.18.0.2 . tcp . 22"), "{elements}");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(is_dropped(&lab.client, CLIENT_V4, at(SERVER_V4, 22), DROP_WAIT), "closed again after FW_ACCESS_TIMEOUT");
    drop(daemon);

    // `knockd --convert` writes the same doors as knockd.yaml, which works the same.
    let out = Command::new(knockd_path()).arg("--convert").arg(&access.path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = ConfigFile::private("knockd.yaml", &String::from_utf8(out.stdout).unwrap());
    let daemon = Daemon::start(&lab.server, &yaml, &[]);
    fwknop(&lab, keys, &["-A", "tcp/443", "-a", CLIENT_V4, "-D", SERVER_V4]);
    assert!(connects_within(&lab.client, CLIENT_V4, at(SERVER_V4, 443), WITHIN), "{}", daemon.log_text());
}

#[test]
fn every_hmac_and_digest_type_the_client_offers_is_accepted() {
    const HMACS: [&str; 7] = ["md5", "sha1", "sha256", "sha384", "sha512", "sha3_256", "sha3_512"];
    let lab = Lab::new();
    let keys = (KEY, HMAC_KEY);
    let text: String =
        HMACS.iter().map(|h| stanza("ANY", keys, &format!("HMAC_DIGEST_TYPE {h}\nFW_ACCESS_TIMEOUT 5"))).collect();
    let access = ConfigFile::private("access.conf", &text);
    let daemon = start(&lab, &access);
    // No OPEN_PORTS: the start says these doors guard no port, and what to do.
    assert!(daemon.log_text().contains("door stanza7 guards no port: it lists none a client may ask for"));
    for (n, hmac) in HMACS.iter().enumerate() {
        let user = format!("hmac-{hmac}");
        send(&lab, CLIENT_V4, &packet(&lab, keys, &["-A", "tcp/22", "-s", "-U", &user, "--hmac-digest-type", hmac]));
        let by = vouched(&format!("key stanza{}, user {user}", n + 1));
        assert!(daemon.wait_log(&by, WITHIN), "{hmac}: {}", daemon.log_text());
    }
    for digest in HMACS {
        let user = format!("digest-{digest}");
        send(&lab, CLIENT_V4, &packet(&lab, keys, &["-A", "tcp/22", "-s", "-U", &user, "-m", digest]));
        let by = vouched(&format!("key stanza3, user {user}"));
        assert!(daemon.wait_log(&by, WITHIN), "{digest}: {}", daemon.log_text());
    }
}

#[test]
fn replays_changed_packets_wrong_keys_and_stale_timestamps_open_nothing() {
    let lab = Lab::new();
    let _ssh = lab.sshd();
    let keys = (KEY, HMAC_KEY);
    let access = ConfigFile::private("access.conf", &stanza("ANY", keys, "OPEN_PORTS tcp/22\nFW_ACCESS_TIMEOUT 1"));
    let daemon = start(&lab, &access);
    let ssh = at(SERVER_V4, 22);

    let captured = packet(&lab, keys, &["-A", "tcp/22", "-a", OTHER_V4]);
    send(&lab, CLIENT_V4, &captured);
    assert!(connects_within(&lab.client, OTHER_V4, ssh, WITHIN), "{}", daemon.log_text());
    std::thread::sleep(Duration::from_millis(1500)); // the grant expires
    send(&lab, CLIENT_V4, &captured);
    assert!(daemon.wait_log("fwknop packet rejected: replayed", WITHIN), "{}", daemon.log_text());
    assert!(is_dropped(&lab.client, OTHER_V4, ssh, DROP_WAIT), "the replayed packet opened the door");

    drop(daemon);
    let daemon = start(&lab, &access);
    send(&lab, CLIENT_V4, &captured);
    assert!(daemon.wait_log("fwknop packet rejected: replayed", WITHIN), "after a restart: {}", daemon.log_text());

    let mut flipped = packet(&lab, keys, &["-A", "tcp/22", "-a", OTHER_V4]);
    flipped[40] = if flipped[40] == b'A' { b'B' } else { b'A' };
    send(&lab, CLIENT_V4, &flipped);
    assert!(daemon.wait_log("no stanza's HMAC key verifies it", WITHIN), "{}", daemon.log_text());
    send(&lab, CLIENT_V4, &packet(&lab, (KEY, HMAC_KEY_B), &["-A", "tcp/22", "-a", OTHER_V4]));
    send(&lab, CLIENT_V4, &packet(&lab, (KEY_B, HMAC_KEY), &["-A", "tcp/22", "-a", OTHER_V4]));
    assert!(daemon.wait_log("the HMAC verifies but decryption failed", WITHIN), "{}", daemon.log_text());
    send(&lab, CLIENT_V4, &packet(&lab, keys, &["-A", "tcp/22", "-a", OTHER_V4, "--time-offset-minus", "5m"]));
    assert!(daemon.wait_log("away from this host's clock", WITHIN), "{}", daemon.log_text());
    assert!(is_dropped(&lab.client, OTHER_V4, ssh, DROP_WAIT), "{}", daemon.log_text());
}

#[test]
fn what_a_stanza_allows_sources_addresses_ports_and_the_clients_timeout() {
    let lab = Lab::new();
    let _ssh = lab.sshd();
    // Stanza 1 (keys A) takes -s; stanza 2 (keys B) requires an address and lets clients ask
    // for up to 60 s. Both only from 198.18.0.0/24 and 2001:db8::/64.
    let (a, b) = ((KEY, HMAC_KEY), (KEY_B, HMAC_KEY_B));
    let source = "198.18.0.0/24, 2001:db8::/64";
    let text = stanza(source, a, "OPEN_PORTS tcp/22\nFW_ACCESS_TIMEOUT 1")
        + &stanza(source, b, "OPEN_PORTS tcp/22\nREQUIRE_SOURCE_ADDRESS Y\nFW_ACCESS_TIMEOUT 1\nMAX_FW_TIMEOUT 60");
    let access = ConfigFile::private("access.conf", &text);
    let daemon = start(&lab, &access);
    let ssh = at(SERVER_V4, 22);

    // -s: the packet's own source is opened; stanza 2 refuses it.
    send(&lab, OTHER_V4, &packet(&lab, a, &["-A", "tcp/22", "-s"]));
    assert!(connects_within(&lab.client, OTHER_V4, ssh, WITHIN), "{}", daemon.log_text());
    send(&lab, CLIENT_V4, &packet(&lab, b, &["-A", "tcp/22", "-s"]));
    assert!(daemon.wait_log("REQUIRE_SOURCE_ADDRESS", WITHIN), "{}", daemon.log_text());
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh, DROP_WAIT));

    // An address outside SOURCE, a port outside OPEN_PORTS: refused.
    lab.add_client_addr("198.18.1.9/16");
    send(&lab, CLIENT_V4, &packet(&lab, b, &["-A", "tcp/22", "-a", "198.18.1.9"]));
    assert!(daemon.wait_log("198.18.1.9, which is outside the stanza's SOURCE", WITHIN), "{}", daemon.log_text());
    assert!(is_dropped(&lab.client, "198.18.1.9", ssh, DROP_WAIT));
    send(&lab, CLIENT_V4, &packet(&lab, b, &["-A", "tcp/23", "-a", CLIENT_V4]));
    assert!(daemon.wait_log("tcp/23, which OPEN_PORTS does not list", WITHIN), "{}", daemon.log_text());
    let elements = lab.server.set_elements("knockd", "stanza2_v4");
    assert!(!elements.contains("tcp . 23"), "{elements}");

    // The client's timeout (-f 4) outlasts FW_ACCESS_TIMEOUT (1 s), and ends.
    send(&lab, CLIENT_V4, &packet(&lab, b, &["-A", "tcp/22", "-a", CLIENT_V4, "-f", "4"]));
    assert!(connects_within(&lab.client, CLIENT_V4, ssh, WITHIN), "{}", daemon.log_text());
    std::thread::sleep(Duration::from_millis(2000));
    assert!(connects_within(&lab.client, CLIENT_V4, ssh, DROP_WAIT), "still open 2 s later: the client asked for 4");
    std::thread::sleep(Duration::from_millis(3000));
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh, DROP_WAIT), "closed after the client's timeout");

    // Over IPv6, -s opens the IPv6 source.
    send(&lab, CLIENT_V6, &packet(&lab, a, &["-A", "tcp/22", "-s"]));
    assert!(connects_within(&lab.client, CLIENT_V6, at(SERVER_V6, 22), WITHIN), "{}", daemon.log_text());
    let elements = lab.server.set_elements("knockd", "stanza1_v6");
    assert!(elements.contains("2001:db8::2 . tcp . 22"), "{elements}");
}

#[test]
fn command_cycles_run_with_fwknops_variables() {
    let lab = Lab::new();
    let out = ConfigFile::new("cycle.out", "");
    let log = out.path.to_str().unwrap();
    let cycle = format!(
        "CMD_CYCLE_OPEN /bin/echo open $IP $PKT_SRC $DST $PORT $PROTO >> {log}\n\
         CMD_CYCLE_CLOSE /bin/echo close $IP >> {log}\nCMD_CYCLE_TIMER 1"
    );
    let access = ConfigFile::private("access.conf", &stanza("ANY", (KEY, HMAC_KEY), &cycle));
    let daemon = start(&lab, &access);
    send(&lab, OTHER_V4, &packet(&lab, (KEY, HMAC_KEY), &["-A", "udp/53", "-a", CLIENT_V4]));
    let want = format!("open {CLIENT_V4} {OTHER_V4} {SERVER_V4} 53 17\nclose {CLIENT_V4}\n");
    eventually(Duration::from_secs(5), || std::fs::read_to_string(&out.path).unwrap_or_default() == want);
    assert_eq!(std::fs::read_to_string(&out.path).unwrap(), want, "{}", daemon.log_text());
}
