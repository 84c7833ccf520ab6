//! SPA under attack, end to end: a packet that costs more verifications than the budget holds,
//! a flood from 60,000 prefixes, a state directory the daemon cannot write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use knockd::doors::spa;

use crate::support::spa_packets::{forged_frames_v6, fresh_packet, fresh_request, knock_spa, spa_config, version_1};
use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);

#[test]
fn a_version_1_packet_checked_against_65_keys_neither_stalls_spa_nor_spins_a_core() {
    let lab = Lab::with_sshd();
    let (_config, keys, daemon) = lab.spa_knockd(65, "", "");

    // A forged version 1 packet: 65 verifications, one more than the budget ever holds.
    let mallory = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let cpu_before = cpu_time(daemon.pid());
    let idle_from = Instant::now();
    send_datagram(&lab, OTHER_V4, SERVER_V4, 62201, &version_1(&fresh_request("ssh"), &mallory));
    let bad = log_lines::rejected(Some("ssh"), ip(OTHER_V4), "SPA packet rejected: bad signature");
    daemon.expect_log(&bad, WITHIN);
    std::thread::sleep(Duration::from_secs(2));
    let cpu = cpu_time(daemon.pid()) - cpu_before;
    let idle = idle_from.elapsed();
    eprintln!("daemon CPU in the {idle:?} after the 65-key packet: {cpu:?}");
    assert!(cpu < idle / 4, "the daemon spins: {cpu:?} of CPU in {idle:?}");

    // SPA still works: a real packet right after, and a real version 1 packet by the last key.
    let out = knock_spa(&lab, &keys[0], CLIENT_V4, SERVER_V4, "3");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), daemon.log_text());
    let spa::Key::Ed25519(last) = spa::read_key(&keys[64]).unwrap() else { panic!("an Ed25519 key") };
    send_datagram(&lab, OTHER_V4, SERVER_V4, 62201, &version_1(&fresh_request("ssh"), &last));
    assert!(connects_within(&lab.client, OTHER_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    daemon.expect_log(&log_lines::open("ssh", OTHER_V4, "22/tcp", secs(30), "", &vouched("key key64")), WITHIN);
}

#[test]
fn a_flood_from_60000_prefixes_does_not_keep_real_clients_out() {
    let lab = Lab::with_sshd();
    let (_config, keys, daemon) = lab.spa_knockd(8, "log: {level: warn}\n", "");
    let frames = forged_frames_v6(&keys, 60_000);
    let sender = frames::Sender::new(&lab, 0x86dd);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (sent, results) = std::thread::scope(|s| {
        let flood = s.spawn(|| {
            // Bounded: at most 40 s, then it stops by itself. Paced at 25,000 packets a second,
            // which the daemon (a debug build) reads without the kernel dropping any: what is
            // tested is the queue's fairness, not how fast a socket drains.
            let (mut sent, mut at) = (0usize, 0usize);
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(40) {
                let batch = &frames[at..(at + 64).min(frames.len())];
                at = (at + 64) % frames.len();
                sent += sender.send_many(batch);
                let due = started + Duration::from_micros(sent as u64 * 40);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            sent
        });
        // Let the flood fill the queue (60,000 prefixes, more than its 4,096 places) first.
        std::thread::sleep(Duration::from_secs(2));
        let clients = [(CLIENT_V6, SERVER_V6), (OTHER_V6, SERVER_V6), (CLIENT_V4, SERVER_V4)];
        let results: Vec<(String, bool, Duration)> = clients
            .iter()
            .map(|(source, server)| {
                let t = Instant::now();
                let out = knock_spa(&lab, &keys[1], source, server, "8");
                (source.to_string(), out.status.success(), t.elapsed())
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        (flood.join().unwrap(), results)
    });
    let secs = started.elapsed().as_secs_f64();
    let counters = daemon.counters();
    eprintln!("flood: {sent} packets from 60,000 /48s in {secs:.1} s; clients: {results:?}; {counters}");
    assert!(sent > 100_000, "the flood was too small to prove anything: {sent}");
    let dropped = crate::support::process::counter(&counters, "spa_dropped_in_flood").unwrap_or(0);
    assert!(dropped > 10_000, "the queue was never full: {counters}");
    for (source, ok, took) in &results {
        assert!(ok, "the client at {source} did not get in within 8 s ({took:?}):\n{}", daemon.log_text());
    }
}

/// Gives the state directory to nobody, mode 0700, as an earlier run as `nobody` leaves it: the
/// daemon, root without CAP_DAC_OVERRIDE, can no longer write there. `None` gives it back.
fn state_dir_owner(dir: &std::path::Path, nobody: bool) {
    use std::os::unix::fs::PermissionsExt;
    let id = if nobody { 65534 } else { 0 };
    std::os::unix::fs::chown(dir, Some(id), Some(id)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn a_packet_whose_replay_entry_cannot_be_written_is_refused_before_and_after_a_restart() {
    let lab = Lab::with_sshd();
    // Root, which keeps only its network capabilities after the start.
    let (config, keys) = spa_config(1, "user: root\n", "");
    let state = config.state_dir();
    let captured = fresh_packet(&keys[0]);
    let refused = "198.18.0.3: SPA packet refused: it could not be made replay-proof";
    let fix = "make the state directory";

    for round in ["first start", "after a restart"] {
        // Taken away after the start, so the check of it at start (if any) does not stop this.
        let daemon = Daemon::start(&lab.server, &config, &[]);
        state_dir_owner(&state, true);
        send_datagram(&lab, OTHER_V4, SERVER_V4, 62201, &captured);
        assert!(daemon.wait_log(refused, WITHIN), "{round}: {}", daemon.log_text());
        let line = daemon.line_with(refused, Duration::ZERO);
        assert!(line.contains(fix) && line.contains(&state.display().to_string()), "{round}: {line}");
        eprintln!("{line}");
        assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "{round}: opened");
        assert!(daemon.stop().success());
        state_dir_owner(&state, false);
    }

    // The directory fixed: the packet, never accepted, is accepted now, and only once.
    let daemon = Daemon::start(&lab.server, &config, &[]);
    send_datagram(&lab, OTHER_V4, SERVER_V4, 62201, &captured);
    assert!(connects_within(&lab.client, OTHER_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    assert!(daemon.stop().success());
    lab.server.nft(&["flush", "set", "inet", "knockd", "ssh_v4"]);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    send_datagram(&lab, OTHER_V4, SERVER_V4, 62201, &captured);
    daemon.expect_log(&log_lines::rejected(Some("ssh"), ip(OTHER_V4), "SPA packet rejected: replayed"), WITHIN);
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "the replay opened");
}
