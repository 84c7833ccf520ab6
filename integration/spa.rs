//! Single-packet authorization and rotating sequences, end to end, with replays.

use std::time::Duration;

use knockd::doors::spa;
use knockd::packet::ipv4::Ipv4Mut;

use crate::support::spa_packets::{forged_frames, fresh_packet, fresh_request, knock_spa, spa_config, spa_door};
use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);

#[test]
fn spa_opens_the_door_and_a_replayed_packet_does_not() {
    let lab = Lab::with_sshd();
    let keys = ConfigFile::new("placeholder", "");
    let secret = spa_keygen(&keys, "alice");
    let yaml = format!(
        "doors:\n  ssh:\n    spa: {{port: 62201, public_keys: [{}.pub]}}\n    open: {{ports: [22], timeout: 2s}}\n",
        secret.display()
    );
    let (_config, daemon) = lab.knockd(&yaml);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT));

    // The client, as a user runs it.
    let out = knock_spa(&lab, &secret, CLIENT_V4, SERVER_V4, "5");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), daemon.log_text());
    daemon.expect_log(&log_lines::open("ssh", CLIENT_V4, "22/tcp", secs(2), "", &vouched("key alice")), WITHIN);

    // A packet an eavesdropper captured: it works once, then never again.
    let key = spa::read_key(&secret).unwrap();
    let request = fresh_request("ssh");
    let captured = spa::encode(&request, &key);
    send_datagram(&lab, OTHER_V4, SERVER_V4, 62201, &captured);
    assert!(connects_within(&lab.client, OTHER_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    std::thread::sleep(Duration::from_millis(2500)); // the grant expires
    send_datagram(&lab, OTHER_V4, SERVER_V4, 62201, &captured);
    daemon.expect_log(&log_lines::rejected(Some("ssh"), ip(OTHER_V4), "SPA packet rejected: replayed"), WITHIN);
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "the replayed packet opened the door");

    // A tampered packet (another door name, same signature) is refused too.
    let mut tampered = spa::encode(&spa::Request { nonce: spa::nonce(), ..request }, &key);
    tampered[27] ^= 0x20; // "ssh" -> "Ssh"
    send_datagram(&lab, OTHER_V4, SERVER_V4, 62201, &tampered);
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT));
}

#[test]
fn a_rotating_sequence_opens_and_replaying_it_does_not() {
    let lab = Lab::with_sshd();
    let secret = ConfigFile::private("secret", "a shared secret of some length\n");
    let yaml = format!(
        "doors:\n  ssh:\n    rotating: {{secret_file: {}, step: 30s, length: 4}}\n    open: {{ports: [22], timeout: 30s}}\n",
        secret.path.display()
    );
    let (_config, daemon) = lab.knockd(&yaml);

    let path = secret.path.to_str().unwrap();
    let out = knock_client(
        &lab.client,
        &["-v", "--secret-file", path, "--door", "ssh", "--source", CLIENT_V4, "--wait-open", "22", SERVER_V4],
    );
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), daemon.log_text());
    // The sequence an eavesdropper saw, replayed from another address.
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let seen: Vec<u16> =
        stdout.lines().filter_map(|l| l.strip_prefix("hitting tcp 198.18.0.1:")).map(|p| p.parse().unwrap()).collect();
    assert_eq!(seen.len(), 4, "{stdout}");
    knock_tcp(&lab, OTHER_V4, SERVER_V4, &seen);
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "a replayed rotating sequence opened the door");
}

#[test]
fn a_packet_accepted_before_a_restart_is_refused_after_it() {
    let lab = Lab::with_sshd();
    let (config, keys, daemon) = lab.spa_knockd(1, "", "");
    let captured = fresh_packet(&keys[0]);
    send_datagram(&lab, OTHER_V4, SERVER_V4, 62201, &captured);
    daemon.expect_log(&opened("ssh", OTHER_V4, "22/tcp", secs(30)), WITHIN);
    assert!(daemon.stop().success());
    let cache = std::fs::read_to_string(config.state_dir().join("ssh.replay")).expect("the replay cache is on disk");
    assert!(cache.starts_with("knockd-replay-cache 1\n") && cache.lines().count() == 2, "{cache}");

    // Restarted, within the packet's window: the same bytes are refused.
    lab.server.nft(&["flush", "set", "inet", "knockd", "ssh_v4"]);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    send_datagram(&lab, OTHER_V4, SERVER_V4, 62201, &captured);
    daemon.expect_log(&log_lines::rejected(Some("ssh"), ip(OTHER_V4), "SPA packet rejected: replayed"), WITHIN);
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "the replay after the restart opened the door");
}

#[test]
fn require_address_refuses_packets_that_name_no_address() {
    let lab = Lab::with_sshd();
    let (_config, keys, daemon) = lab.spa_knockd(1, "", ", require_address: true");
    let out = knock_spa(&lab, &keys[0], CLIENT_V4, SERVER_V4, "2");
    assert_eq!(out.status.code(), Some(1), "a packet for whoever sends it opened the door");
    daemon.expect_log("names no address, and the door requires one", WITHIN);
    let key = keys[0].to_str().unwrap();
    let args = ["--spa", "--key", key, "--door", "ssh", "--source", CLIENT_V4, "--spa-address", CLIENT_V4];
    let out = knock_client(&lab.client, &[&args[..], &["--wait-open", "22", SERVER_V4]].concat());
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), daemon.log_text());
}

/// Forged packets a second in the flood test: 25 times the SPA budget of 2,000 checks a second.
const FLOOD_RATE: f64 = 50_000.0;

#[test]
fn a_flood_of_forged_spa_packets_does_not_keep_a_real_client_out() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let lab = Lab::with_sshd();
    let (config, keys) = spa_config(8, "", "");
    let door = spa_door(&keys, "") + "  web: {sequence: [7000, 8000], open: {ports: [80], timeout: 30s}}\n";
    config.rewrite(&format!("log: {{level: warn}}\n{door}"));
    let daemon = Daemon::start(&lab.server, &config, &[]);
    let _web = Echo::start(&lab.server, "[::]:80".parse().unwrap());

    let frames = forged_frames(&keys);
    let sender = frames::Sender::new(&lab, 0x0800);
    let stop = AtomicBool::new(false);
    let cpu_before = cpu_time(daemon.pid());
    let flood_started = std::time::Instant::now();
    let (sent, client) = std::thread::scope(|s| {
        let flood = s.spawn(|| {
            // Bounded: at most 15 s, then it stops by itself. Paced at FLOOD_RATE: 25 times the
            // budget of signature checks, so what is tested is the budget, not how much CPU
            // this machine's other tests leave the daemon to drain its socket (knockd-bench
            // floods at full rate).
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) && flood_started.elapsed() < Duration::from_secs(15) {
                for batch in frames.chunks(64) {
                    sent += sender.send_many(batch);
                    let due = Duration::from_secs_f64(sent as f64 / FLOOD_RATE);
                    if let Some(ahead) = due.checked_sub(flood_started.elapsed()) {
                        std::thread::sleep(ahead);
                    }
                }
            }
            sent
        });
        std::thread::sleep(Duration::from_millis(500));
        let started = std::time::Instant::now();
        let out = knock_spa(&lab, &keys[0], CLIENT_V4, SERVER_V4, "5");
        let took = started.elapsed();
        // A sequence door is unaffected by the flood on the SPA port.
        knock_tcp(&lab, OTHER_V4, SERVER_V4, &[7000, 8000]);
        let web = connects_within(&lab.client, OTHER_V4, at(SERVER_V4, 80), WITHIN);
        stop.store(true, Ordering::Relaxed);
        (flood.join().unwrap(), (out, took, web))
    });
    let (out, took, web) = client;
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let cpu = (cpu_time(daemon.pid()) - cpu_before).as_secs_f64();
    eprintln!(
        "flood: {sent} forged packets in {flood_secs:.1} s ({:.0}/s); the client got in after {took:?}; daemon CPU {cpu:.2} s ({:.0}% of one core)",
        sent as f64 / flood_secs,
        100.0 * cpu / flood_secs
    );
    assert!(out.status.success(), "the client did not get in within 5 s:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(web, "the sequence door stopped working during the flood");
    assert!(sent > 20_000, "the flood was too small to prove anything: {sent}");
}

#[test]
fn an_spa_datagram_is_read_to_its_udp_length() {
    // Bytes after the datagram inside the IP packet (padding, a sloppy stack): the payload ends
    // where the UDP length says.
    let lab = Lab::with_sshd();
    let (_config, keys, daemon) = lab.spa_knockd(1, "", "");
    let (src, dst): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (CLIENT_V4.parse().unwrap(), SERVER_V4.parse().unwrap());
    let mut frame = Knock::udp(src, dst, 62201, &fresh_packet(&keys[0])).emit();
    frame.extend_from_slice(&[0xee; 6]);
    let total = frame.len() as u16;
    Ipv4Mut::new(&mut frame).set_total_len(total);
    frames::Sender::new(&lab, 0x0800).send(&frame);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
}
