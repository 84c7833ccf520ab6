//! The SPA flood figure of knockd-bench: well-formed forged packets at full rate against a door
//! with 8 Ed25519 keys, and how long a legitimate client then takes to get in.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use knockd::client::{self, Origin};
use knockd::doors::spa;

use crate::support::spa_packets::{forged_frames, fresh_request, spa_config};
use crate::support::*;

/// What the flood measured.
pub struct SpaFlood {
    /// Forged packets sent per second.
    pub sent_pps: u64,
    /// From the client's first packet to an accepted connection; `None` if not within 10 s.
    pub got_in_after: Option<Duration>,
    /// The daemon's CPU time over the flood, as a share of one core.
    pub cpu_share: f64,
    /// Signature checks the daemon made per second.
    pub verified_per_sec: u64,
}

/// Runs the flood for about `secs` seconds (bounded) and measures.
pub fn measure(secs: u64) -> SpaFlood {
    let lab = Lab::with_sshd();
    let (config, keys) = spa_config(8, "log: {level: info, syslog: false}\n", "");
    let path = config.path.to_str().unwrap().to_owned();
    let control = config.control().to_str().unwrap().to_owned();
    let daemon = Daemon::spawn_program(&lab.server, &knockd_path(), &["-c", &path, "-n", "-s", "--control", &control]);
    daemon.expect_log(log_lines::LISTENING, Duration::from_secs(20));

    let forged = forged_frames(&keys);
    let sender = frames::Sender::new(&lab, 0x0800);
    let stop = AtomicBool::new(false);
    let (cpu_before, started) = (cpu_time(daemon.pid()), Instant::now());
    let before = crate::support::process::counter(&daemon.counters(), "spa_verified").unwrap_or(0);
    let (sent, got_in_after) = std::thread::scope(|s| {
        let flood = s.spawn(|| {
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(secs + 10) {
                for batch in forged.chunks(64) {
                    sent += sender.send_many(batch);
                }
            }
            sent
        });
        std::thread::sleep(Duration::from_secs(secs / 2));
        let got_in = legitimate_client(&lab, &keys[0]);
        std::thread::sleep(Duration::from_secs(secs / 2));
        stop.store(true, Ordering::Relaxed);
        (flood.join().unwrap(), got_in)
    });
    let elapsed = started.elapsed().as_secs_f64();
    let used = (cpu_time(daemon.pid()) - cpu_before).as_secs_f64();
    let verified = crate::support::process::counter(&daemon.counters(), "spa_verified").unwrap_or(0) - before;
    SpaFlood {
        sent_pps: (sent as f64 / elapsed) as u64,
        got_in_after,
        cpu_share: used / elapsed,
        verified_per_sec: (verified as f64 / elapsed) as u64,
    }
}

/// As `knock --spa --wait-open 22` does: a fresh packet each second until the port answers.
fn legitimate_client(lab: &Lab, key: &std::path::Path) -> Option<Duration> {
    let key = spa::read_key(key).unwrap();
    let (src, server): (IpAddr, IpAddr) = (CLIENT_V4.parse().unwrap(), SERVER_V4.parse().unwrap());
    let origin = Origin { source: Some(src), interface: None };
    let started = Instant::now();
    lab.client.run(|| {
        while started.elapsed() < Duration::from_secs(10) {
            client::send_datagram(server, 62201, &spa::encode(&fresh_request("ssh"), &key), &origin).ok()?;
            if client::wait_open(SocketAddr::new(server, 22), &origin, Duration::from_secs(1)) {
                return Some(started.elapsed());
            }
        }
        None
    })
}
