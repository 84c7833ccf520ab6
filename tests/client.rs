//! The `knock` client's argument handling: everything is checked before anything is sent.

mod util;

use knockd::client::{self, ClientError, Family};
use knockd::config::PortProto;
use util::{knock, text};

fn usage(text: &str, udp: bool) -> String {
    match client::parse_hit(text, udp) {
        Err(ClientError::Usage(m)) => m,
        other => panic!("`{text}`: expected a usage error, got {other:?}"),
    }
}

#[test]
fn hits_numbers_protocols_and_services() {
    assert_eq!(client::parse_hit("7000", false).unwrap(), PortProto::tcp(7000));
    assert_eq!(client::parse_hit("7000", true).unwrap(), PortProto::udp(7000), "-u makes hits UDP");
    assert_eq!(client::parse_hit("7000:tcp", true).unwrap(), PortProto::tcp(7000), "an explicit protocol wins");
    assert_eq!(client::parse_hit("7000:UDP", false).unwrap(), PortProto::udp(7000));
    assert_eq!(client::parse_hit("7000/udp", false).unwrap(), PortProto::udp(7000));
    assert_eq!(client::parse_hit("65535", false).unwrap(), PortProto::tcp(65535));
    assert_eq!(client::parse_hit("ssh", false).unwrap(), PortProto::tcp(22), "service names, as the classic client");
    assert_eq!(client::parse_hit("domain:udp", false).unwrap(), PortProto::udp(53));
}

#[test]
fn bad_hits_are_usage_errors() {
    assert!(usage("0", false).contains("out of range"));
    assert!(usage("65536", false).contains("out of range"));
    assert!(usage("99999999999999999999999", false).contains("out of range"));
    assert!(usage("-1", false).contains("1-65535"));
    assert!(usage("7000:sctp", false).contains("unknown protocol `sctp`"));
    assert!(usage(":udp", false).contains("no port"));
    assert!(usage("nosuchservice", false).contains("unknown service"));
    assert_eq!(ClientError::Usage(String::new()).exit_code(), 2);
}

#[test]
fn resolution_respects_the_family() {
    assert_eq!(client::resolve("198.18.0.1", Family::Any).unwrap(), "198.18.0.1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(client::resolve("2001:db8::1", Family::V6).unwrap(), "2001:db8::1".parse::<std::net::IpAddr>().unwrap());
    let e = client::resolve("2001:db8::1", Family::V4).unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("no IPv4 address"), "{e}");
}

#[test]
fn bad_input_exits_2_before_anything_is_sent() {
    let cases: [(&[&str], &str); 7] = [
        (&["198.18.0.1", "7000", "0"], "port 0 is out of range"),
        (&["198.18.0.1", "70000"], "out of range"),
        (&["198.18.0.1", "7000:icmp"], "unknown protocol `icmp`"),
        (&["-d", "-5", "198.18.0.1", "7000"], "the delay cannot be negative"),
        (&["-4", "-6", "198.18.0.1", "7000"], "cannot be used with"),
        (&["198.18.0.1"], "required"),
        (&["--wait-open", "53:udp", "198.18.0.1", "7000"], "only a TCP port"),
    ];
    for (args, message) in cases {
        let out = knock(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: `{message}` missing from {stderr}");
        assert!(out.stdout.is_empty(), "nothing was hit");
    }
    let version = knock(&["-V"]);
    assert_eq!(text(&version.stdout).trim(), format!("knock {}", env!("CARGO_PKG_VERSION")));
}
