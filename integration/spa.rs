//! Single-packet authorization and rotating sequences, end to end, with replays.

use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Output};
use std::time::Duration;

use knockd::client::{self, Origin};
use knockd::doors::spa;

use crate::daemon::{ConfigFile, Daemon};
use crate::lab::*;

const KNOCK: &str = env!("CARGO_BIN_EXE_knock");
const WITHIN: Duration = Duration::from_secs(3);
const DROP_WAIT: Duration = Duration::from_millis(700);

fn ssh_v4() -> SocketAddr {
    SocketAddr::new(SERVER_V4.parse().unwrap(), 22)
}

fn knock_cmd(lab: &Lab, args: &[&str]) -> Output {
    let mut all = vec!["netns", "exec", &lab.client.0, KNOCK];
    all.extend_from_slice(args);
    Command::new("ip").args(&all).output().unwrap()
}

#[test]
fn spa_opens_the_door_and_a_replayed_packet_does_not() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "[::]:22".parse().unwrap());
    let keys = ConfigFile::new("placeholder", "");
    let secret = keys.path.with_file_name("alice");
    let out = Command::new(KNOCK).args(["--spa-keygen", secret.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = format!(
        "doors:\n  ssh:\n    spa: {{port: 62201, public_keys: [{}.pub]}}\n    open: {{ports: [22], timeout: 2s}}\n",
        secret.display()
    );
    let config = ConfigFile::new("knockd.yaml", &yaml);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT));

    // The client, as a user runs it.
    let out = knock_cmd(
        &lab,
        &[
            "--spa",
            "--key",
            secret.to_str().unwrap(),
            "--door",
            "ssh",
            "--source",
            CLIENT_V4,
            "--wait-open",
            "22",
            SERVER_V4,
        ],
    );
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), daemon.log_text());
    assert!(daemon.log_text().contains("ssh: 198.18.0.2: OPEN (single-packet authorization from 198.18.0.2)"));

    // A packet an eavesdropper captured: it works once, then never again.
    let key = spa::read_key(&secret).unwrap();
    let request = spa::Request {
        timestamp: knockd::daemon::clock::unix_now().as_secs(),
        nonce: spa::nonce(),
        door: "ssh".into(),
        address: None,
    };
    let captured = spa::encode(&request, &key);
    let (other, server): (IpAddr, IpAddr) = (OTHER_V4.parse().unwrap(), SERVER_V4.parse().unwrap());
    let origin = Origin { source: Some(other), interface: None };
    lab.client.run(|| client::send_datagram(server, 62201, &captured, &origin)).unwrap();
    assert!(connects_within(&lab.client, OTHER_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    std::thread::sleep(Duration::from_millis(2500)); // the grant expires
    lab.client.run(|| client::send_datagram(server, 62201, &captured, &origin)).unwrap();
    assert!(daemon.wait_log("SPA packet rejected: replayed", WITHIN), "{}", daemon.log_text());
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "the replayed packet opened the door");

    // A tampered packet (another door name, same signature) is refused too.
    let mut tampered = spa::encode(&spa::Request { nonce: spa::nonce(), ..request }, &key);
    tampered[27] ^= 0x20; // "ssh" -> "Ssh"
    lab.client.run(|| client::send_datagram(server, 62201, &tampered, &origin)).unwrap();
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT));
}

#[test]
fn a_rotating_sequence_opens_and_replaying_it_does_not() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "[::]:22".parse().unwrap());
    let secret = ConfigFile::new("secret", "a shared secret of some length\n");
    let yaml = format!(
        "doors:\n  ssh:\n    rotating: {{secret_file: {}, step: 30s, length: 4}}\n    open: {{ports: [22], timeout: 30s}}\n",
        secret.path.display()
    );
    let config = ConfigFile::new("knockd.yaml", &yaml);
    let daemon = Daemon::start(&lab.server, &config, &[]);

    let path = secret.path.to_str().unwrap();
    let out = knock_cmd(
        &lab,
        &["-v", "--secret-file", path, "--door", "ssh", "--source", CLIENT_V4, "--wait-open", "22", SERVER_V4],
    );
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), daemon.log_text());
    // The sequence an eavesdropper saw, replayed from another address.
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let seen: Vec<u16> =
        stdout.lines().filter_map(|l| l.strip_prefix("hitting tcp 198.18.0.1:")).map(|p| p.parse().unwrap()).collect();
    assert_eq!(seen.len(), 4, "{stdout}");
    for port in &seen {
        knock(&lab.client, OTHER_V4, SERVER_V4, *port, false);
    }
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "a replayed rotating sequence opened the door");
}
