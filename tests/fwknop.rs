//! fwknop's packets, as Debian's fwknop client 2.6.10 built them (tests/fixtures/fwknop/make.sh):
//! every HMAC and digest type decodes to what the client was asked for, and the door kind
//! grants exactly what a stanza allows.

use std::net::IpAddr;
use std::time::Duration;

use knockd::config::PortProto;
use knockd::doors::fwknop::{self, FwknopError, HmacDigest, message, wire};
use knockd::doors::{Clock, Grant};

mod util;

use util::TempDir;
use util::fwknop::*;

fn base64(text: &str) -> Vec<u8> {
    knockd::doors::key_file::decode_base64(text).unwrap()
}

#[test]
fn every_packet_the_client_built_decodes_to_what_it_was_asked() {
    let cases = cases();
    assert_eq!(cases.len(), 15);
    for c in &cases {
        let text = wire::screen(c.packet.as_bytes()).unwrap();
        let (ciphertext, tag) = wire::split(text, c.hmac).unwrap();
        assert!(wire::check_hmac(ciphertext, tag, c.hmac, &base64(HMAC_KEY)), "{}: HMAC", c.name);
        let plain = wire::decrypt(ciphertext, &base64(KEY)).unwrap();
        let m = message::parse(&plain).unwrap();
        let want = (c.user, c.timestamp, c.allow, &c.ports, c.timeout, c.digest);
        assert_eq!((m.user.as_str(), m.timestamp, m.allow, &m.ports, m.client_timeout, m.digest), want, "{}", c.name);
        assert_eq!(m.version, "3.0.0");
    }
}

#[test]
fn a_flipped_byte_or_a_wrong_key_never_reaches_decryption() {
    let c = &cases()[2];
    let text = wire::screen(c.packet.as_bytes()).unwrap();
    let (ciphertext, tag) = wire::split(text, c.hmac).unwrap();
    assert!(!wire::check_hmac(ciphertext, tag, c.hmac, b"another key"));
    for at in [0, ciphertext.len() / 2, text.len() - 1] {
        let mut bytes = text.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        let (ciphertext, tag) = wire::split(&flipped, c.hmac).unwrap();
        assert!(!wire::check_hmac(ciphertext, tag, c.hmac, &base64(HMAC_KEY)), "byte {at}");
    }
}

/// The client's own packets, rebuilt by knockd's encoder, decode alike (the encoder is what
/// the fuzz seeds and the benchmark use).
#[test]
fn the_encoder_builds_what_the_client_builds() {
    let c = &cases()[0];
    let m = message::Message {
        user: c.user.into(),
        timestamp: c.timestamp,
        version: "3.0.0".into(),
        allow: c.allow,
        ports: c.ports.clone(),
        client_timeout: None,
        nat: None,
        digest: c.digest,
    };
    let packet =
        wire::seal(message::format(&m, 1234567890123456).as_bytes(), &base64(KEY), &base64(HMAC_KEY), c.hmac, [1; 8]);
    let (ciphertext, tag) = wire::split(&packet, c.hmac).unwrap();
    assert!(wire::check_hmac(ciphertext, tag, c.hmac, &base64(HMAC_KEY)));
    assert_eq!(message::parse(&wire::decrypt(ciphertext, &base64(KEY)).unwrap()).unwrap(), m);
}

/// An access.conf with one stanza per HMAC type, each with the lines `extra`; `SOURCE ...` in
/// `extra` replaces the stanzas' source (198.18.0.0/16).
fn access_conf(extra: &str) -> String {
    let (source, extra) = match extra.strip_prefix("SOURCE ") {
        Some(rest) => rest.split_once('\n').unwrap(),
        None => ("198.18.0.0/16", extra),
    };
    let mut text = String::new();
    for h in HmacDigest::ALL {
        text.push_str(&format!(
            "SOURCE {source}\n{extra}KEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC_KEY}\nHMAC_DIGEST_TYPE {}\n\n",
            h.name()
        ));
    }
    text
}

#[test]
fn each_stanza_takes_its_own_hmac_type_and_grants_what_the_client_asked() {
    let state = TempDir::new("grants");
    let mut kind = kind(&access_conf(""), &state);
    for c in cases() {
        let out = send(kind.as_mut(), "198.18.0.7", c.packet, c.timestamp);
        let stanza = HmacDigest::ALL.iter().position(|h| *h == c.hmac).unwrap();
        let [grant] = out.grants.as_slice() else { panic!("{}: {:?}", c.name, out.notes) };
        let addr = c.allow.unwrap_or("198.18.0.7".parse().unwrap());
        let by = format!("key stanza{}, user {}", stanza + 1, c.user);
        let timeout = c.timeout.map(|_| Duration::from_secs(300));
        let want = Grant {
            by: Some(by),
            ports: c.ports.clone(),
            timeout,
            sent_at: Some(c.timestamp),
            ..Grant::new(stanza, addr, "198.18.0.7".parse().unwrap(), "198.18.0.1".parse().unwrap())
        };
        assert_eq!(grant, &want, "{}: the client's timeout (600 s) is capped by MAX_FW_TIMEOUT (300 s)", c.name);
    }
}

#[test]
fn replays_are_refused_even_after_a_restart() {
    let state = TempDir::new("replay");
    let c = &cases()[2];
    let mut first = kind(&access_conf(""), &state);
    assert_eq!(send(first.as_mut(), "198.18.0.7", c.packet, c.timestamp).grants.len(), 1);
    assert!(rejection(&send(first.as_mut(), "198.18.0.8", c.packet, c.timestamp + 1)).contains("replayed"));
    drop(first);
    let mut again = kind(&access_conf(""), &state);
    assert!(rejection(&send(again.as_mut(), "198.18.0.8", c.packet, c.timestamp + 2)).contains("replayed"));
    assert!(state.join(fwknop::REPLAY_FILE).exists());
}

#[test]
fn what_a_stanza_refuses() {
    let state = TempDir::new("refuses");
    let c = cases();
    let (sha256, source, timeout) = (&c[2], &c[13], &c[14]);
    let refused = |first: &str, case: &Case, src: &str, unix: u64| {
        let mut kind = kind(&access_conf(first), &state);
        rejection(&send(kind.as_mut(), src, case.packet, unix))
    };
    // The stanza's first lines, the packet, where it comes from, when it arrives: and why not.
    let refusals: [(&str, &Case, &str, u64, &str); 10] = [
        // A packet from the future, and a stale one.
        ("", sha256, "198.18.0.7", sha256.timestamp - 121, "timestamp 121s away"),
        ("", sha256, "198.18.0.7", sha256.timestamp + 121, "timestamp -121s away"),
        ("REQUIRE_SOURCE_ADDRESS Y\n", source, "198.18.0.7", source.timestamp, "REQUIRE_SOURCE_ADDRESS"),
        ("REQUIRE_USERNAME alice\n", source, "198.18.0.7", source.timestamp, "user `bob`"),
        ("OPEN_PORTS tcp/22\n", timeout, "198.18.0.7", timeout.timestamp, "udp/53, which OPEN_PORTS does not list"),
        ("RESTRICT_PORTS udp/53\n", timeout, "198.18.0.7", timeout.timestamp, "RESTRICT_PORTS forbids"),
        (
            "SOURCE 198.18.0.7\n",
            sha256,
            "198.18.0.7",
            sha256.timestamp,
            "198.18.0.2, which is outside the stanza's SOURCE",
        ),
        ("", sha256, "198.19.0.7", sha256.timestamp, "no stanza takes packets from 198.19.0.7"),
        ("DESTINATION 198.18.0.99\n", sha256, "198.18.0.7", sha256.timestamp, "no stanza takes packets"),
        ("ACCESS_EXPIRE_EPOCH 1000\n", sha256, "198.18.0.7", sha256.timestamp, "no stanza takes packets"),
    ];
    for (first, case, src, unix, why) in refusals {
        let r = refused(first, case, src, unix);
        assert!(r.contains(why), "{first:?} from {src} at {unix}: `{why}` missing: {r}");
    }
    let mut wrong = kind(&access_conf("").replace(HMAC_KEY, "c2VjcmV0LWJ1dC1ub3QtdGhlLW9uZQ"), &state);
    let r = rejection(&send(wrong.as_mut(), "198.18.0.7", sha256.packet, sha256.timestamp));
    assert!(r.contains("no stanza's HMAC key verifies it"), "{r}");
    let mut wrong = kind(&access_conf("").replace(KEY, "c2VjcmV0LWJ1dC1ub3QtdGhlLW9uZQ"), &state);
    let r = rejection(&send(wrong.as_mut(), "198.18.0.7", sha256.packet, sha256.timestamp));
    assert!(r.contains("decryption failed"), "{r}");
    assert_eq!(FwknopError::Replayed.to_string(), "replayed");
}

#[test]
fn the_engine_opens_only_the_ports_asked_for_in_per_port_sets() {
    let state = TempDir::new("engine");
    let text = format!("SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC_KEY}\nOPEN_PORTS tcp/22, udp/53\n");
    let mut config = knockd::doors::fwknop::access_conf::parse("access.conf", &text).unwrap();
    config.state_dir = state.path().to_owned();
    let mut e = util::start(config);
    let rules: Vec<String> = e.firewall().installed[0].rules.iter().map(|r| r.to_string()).collect();
    assert!(rules.iter().any(|r| r == "ip saddr . meta l4proto . th dport @stanza1_v4 accept"), "{rules:?}");
    assert!(rules.iter().any(|r| r == "udp dport 53 drop"), "{rules:?}");
    let c = &cases()[14];
    e.packet(
        &util::udp("198.18.0.7", 62201, c.packet.as_bytes()),
        Clock::new(Duration::ZERO, Duration::from_secs(c.timestamp)),
    );
    assert_eq!(e.flush(), 1);
    let elements: Vec<(IpAddr, Option<PortProto>, Duration)> =
        e.firewall().elements.iter().map(|el| (el.addr, el.port, el.timeout)).collect();
    let addr: IpAddr = "198.18.0.2".parse().unwrap();
    let five_minutes = Duration::from_secs(300);
    assert_eq!(
        elements,
        [(addr, Some(PortProto::tcp(22)), five_minutes), (addr, Some(PortProto::udp(53)), five_minutes)]
    );
}

/// fwknop's dual-key shape: two stanzas with the same keys, tcp/22 then tcp/80. A request for
/// tcp/80 is refused by the first and taken by the second, as fwknopd takes it.
#[test]
fn a_refusal_falls_through_to_the_next_stanza_that_may_take_the_packet() {
    let state = TempDir::new("fall-through");
    let text = stanza("ANY", "OPEN_PORTS tcp/22\nFW_ACCESS_TIMEOUT 2")
        + &stanza("ANY", "OPEN_PORTS tcp/80\nFW_ACCESS_TIMEOUT 3");
    let mut doors = kind(&text, &state);
    let (sent, web) = more("web");
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", web, sent)), (1, vec![PortProto::tcp(80)]));
    let ssh = ssh();
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp)), (0, vec![PortProto::tcp(22)]));

    // A stanza whose HMAC key matches but whose encryption key does not hides nothing either.
    let state = TempDir::new("fall-through-keys");
    let text = stanza("ANY", "").replace(KEY, OTHER_KEY) + &stanza("ANY", "OPEN_PORTS tcp/22");
    let mut doors = kind(&text, &state);
    assert_eq!(granted(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp)).0, 1);

    // Every stanza refuses: each one's reason, in order.
    let state = TempDir::new("fall-through-none");
    let text = stanza("ANY", "OPEN_PORTS tcp/443") + &stanza("ANY", "OPEN_PORTS tcp/22\nREQUIRE_USERNAME bob");
    let mut doors = kind(&text, &state);
    let r = rejection(&send(doors.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp));
    assert!(
        r.contains(
            "stanza1: asks for tcp/22, which OPEN_PORTS does not list; stanza2: user `alice` is not the required `bob`"
        ),
        "{r}"
    );
}

/// The stock client's packets in modes knockd does not take (`-M ecb`, `-M cfb`), with the right
/// keys: the log says decryption failed and names both likely causes.
#[test]
fn a_packet_in_another_mode_says_decryption_failed_and_why() {
    let state = TempDir::new("modes");
    let mut kind = kind(&stanza("ANY", "OPEN_PORTS tcp/22"), &state);
    for mode in ["ecb", "cfb"] {
        let (sent, packet) = more(mode);
        let r = rejection(&send(kind.as_mut(), "198.18.0.7", packet, sent));
        assert!(
            r.contains("decryption failed: the stanza's KEY (or KEY_BASE64) differs from the client's"),
            "{mode}: {r}"
        );
        assert!(r.contains("another mode than CBC (`-M ecb`"), "{mode}: {r}");
    }
}

/// The stock client's command (`-C`) packets are refused by name, also by a stanza with
/// ENABLE_CMD_EXEC (which knockd serves for access requests); its NAT (`-N`) packets, by a
/// stanza that forwards nothing.
#[test]
fn command_and_nat_packets_are_refused_by_name() {
    let state = TempDir::new("cmd-nat");
    let mut kind = kind(&stanza("ANY", "ENABLE_CMD_EXEC Y"), &state);
    let (sent, command) = more("command");
    let r = rejection(&send(kind.as_mut(), "198.18.0.7", command, sent));
    assert!(r.contains("a command message (CMD_EXEC): knockd runs no commands a packet sends"), "{r}");
    let (sent, nat) = more("nat");
    let r = rejection(&send(kind.as_mut(), "198.18.0.7", nat, sent));
    assert!(r.contains("asks to be forwarded to 198.18.5.5:22 (fwknop -N), and the stanza forwards nothing"), "{r}");
    let ssh = ssh();
    assert_eq!(granted(&send(kind.as_mut(), "198.18.0.7", ssh.packet, ssh.timestamp)).0, 0, "access is served");
}
