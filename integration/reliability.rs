//! Faults, floods and hostile input, against the real daemon and kernel.

use std::net::{Ipv4Addr, Ipv6Addr};

use knockd::packet::ipv4::Ipv4Mut;
use knockd::packet::ipv6::Ipv6Mut;
use std::time::{Duration, Instant};

use crate::support::frames::Sender;
use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);

fn door(timeout: &str) -> String {
    format!("doors:\n  ssh:\n    sequence: [7000, 8000, 9000]\n    open: {{ports: [22], timeout: {timeout}}}\n")
}

fn set_has(lab: &Lab, addr: &str) -> bool {
    lab.server.set_elements("knockd", "ssh_v4").contains(addr)
}

#[test]
fn kill_9_after_a_grant_the_kernel_still_closes_and_a_restart_reuses_everything() {
    let lab = Lab::with_sshd();
    let (config, mut daemon) = lab.knockd(&door("3s"));
    let chain = lab.server.nft(&["list", "chain", "inet", "knockd", "input"]);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    daemon.expect_log(&opened("ssh", CLIENT_V4, "22/tcp", secs(3)), WITHIN);
    daemon.signal(libc::SIGKILL);
    assert!(daemon.wait_exit(WITHIN).is_some());
    let killed_at = Instant::now();

    assert!(connect(&lab.client, CLIENT_V4, ssh_v4(), Duration::from_secs(2)).is_ok(), "the grant outlives the daemon");
    assert!(
        eventually(Duration::from_secs(8), || !set_has(&lab, "198.18.0.2")),
        "the kernel expires it without the daemon"
    );
    assert!(killed_at.elapsed() < Duration::from_secs(4));
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "and the port is closed again");

    // A grant made before a crash survives the restart; nothing is duplicated.
    let daemon = Daemon::start(&lab.server, &config, &[]);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    daemon.expect_log(&opened("ssh", CLIENT_V4, "22/tcp", secs(3)), WITHIN);
    let mut daemon = daemon;
    daemon.signal(libc::SIGKILL);
    assert!(daemon.wait_exit(WITHIN).is_some());
    let daemon = Daemon::start(&lab.server, &ConfigFile::new("knockd.yaml", &door("60s")), &[]);
    assert!(set_has(&lab, "198.18.0.2"), "the unexpired grant is still there");
    assert!(connect(&lab.client, CLIENT_V4, ssh_v4(), Duration::from_secs(2)).is_ok());
    assert_eq!(lab.server.nft(&["list", "chain", "inet", "knockd", "input"]), chain);
    assert_eq!(lab.server.nft(&["list", "tables"]).trim(), "table inet knockd");
    drop(daemon);
}

#[test]
fn a_flushed_ruleset_is_put_back_and_the_next_knock_works() {
    let lab = Lab::with_sshd();
    let (_config, daemon) = lab.knockd(&door("30s"));
    lab.server.nft(&["flush", "ruleset"]);
    daemon.expect_log(&log_lines::putting_back("table inet knockd was removed"), Duration::from_secs(5));
    daemon.expect_log(&log_lines::restored("nftables table inet knockd"), WITHIN);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "the door is closed again");
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());

    // Deleted right before a knock, faster than the periodic check: the grant puts it back.
    lab.server.nft(&["delete", "table", "inet", "knockd"]);
    knock_tcp(&lab, OTHER_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, OTHER_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
}

#[test]
fn capture_follows_its_interface_going_away_and_coming_back() {
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.yaml", &door("30s"));
    let daemon = Daemon::start(&lab.server, &config, &["-i", &lab.server_if]);
    lab.unlink();
    lab.link(); // same names, new interface indexes
    let _echo = lab.sshd();
    assert!(daemon.wait_log(log_lines::INTERFACES_BACK, Duration::from_secs(5)), "{}", daemon.log_text());
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
}

#[test]
fn capture_starts_before_its_interface_exists_and_targets_added_later_work() {
    let lab = Lab::new();
    lab.unlink();
    let door = "doors:\n  ssh:\n    sequence: [7000, 8000, 9000]\n    target: 198.18.7.7\n    open: {ports: [22], timeout: 30s}\n";
    let config = ConfigFile::new("knockd.yaml", door);
    let daemon = Daemon::start(&lab.server, &config, &["-i", &lab.server_if]);
    assert!(daemon.log_text().contains(&log_lines::interface_missing(&lab.server_if)), "{}", daemon.log_text());
    lab.link();
    let _echo = lab.sshd();
    assert!(daemon.wait_log(log_lines::INTERFACES_BACK, Duration::from_secs(5)));
    // The target address is added only now.
    lab.server.ip(&["addr", "add", "198.18.7.7/16", "dev", &lab.server_if, "nodad"]);
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "knocks to another address do not count");
    knock_tcp(&lab, CLIENT_V4, "198.18.7.7", &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
}

#[test]
fn a_reload_storm_keeps_the_daemon_up_and_the_last_good_config_in_force() {
    let lab = Lab::with_sshd();
    let (config, daemon) = lab.knockd(&door("60s"));
    knock_tcp(&lab, OTHER_V4, SERVER_V4, &[7000, 8000, 9000]);
    daemon.expect_log(&opened("ssh", OTHER_V4, "22/tcp", secs(60)), WITHIN);

    let good = |n: u16| {
        format!("doors:\n  ssh:\n    sequence: [{}, 6001]\n    open: {{ports: [22], timeout: 60s}}\n", 5000 + n)
    };
    let started = Instant::now();
    for n in 0..100u16 {
        if n % 2 == 0 {
            config.rewrite(&good(n));
        } else {
            config.rewrite("doors: {ssh: {sequence: [0]}}\n");
        }
        daemon.signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(8));
    }
    let last_good = good(98);
    config.rewrite(&last_good);
    daemon.signal(libc::SIGHUP);
    assert!(started.elapsed() < Duration::from_secs(3), "the storm itself is bounded");
    std::thread::sleep(Duration::from_millis(500));

    assert!(daemon.logged(&log_lines::reload_failed(ANY)), "{}", daemon.log_text());
    assert!(set_has(&lab, "198.18.0.3"), "no grant was lost");
    assert!(connect(&lab.client, OTHER_V4, ssh_v4(), Duration::from_secs(2)).is_ok());
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[5098, 6001]);
    assert!(
        connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN),
        "the last good config is in force:\n{}",
        daemon.log_text()
    );
}

#[test]
fn a_spoofed_flood_stays_under_the_cap_and_a_legitimate_knock_gets_through() {
    let lab = Lab::with_sshd();
    let (_config, daemon) = lab.knockd("log: {level: warn}\nlimits: {max_attempts: 5000}\ndoors:\n  ssh:\n    sequence: [7000, 8000, 9000]\n    seq_timeout: 30s\n    open: {ports: [22], timeout: 60s}\n");
    let sender = Sender::new(&lab, 0x0800);
    let server: Ipv4Addr = SERVER_V4.parse().unwrap();
    let legit: Ipv4Addr = CLIENT_V4.parse().unwrap();
    // 50,000 spoofed first knocks, ten times the cap, with the legitimate knock in the middle.
    const FLOOD: u32 = 50_000;
    let mut packets: Vec<Vec<u8>> =
        (0..FLOOD).map(|n| Knock::tcp_syn(frames::spoofed(n), server, 7000).emit()).collect();
    let legit_knocks = [7000, 8000, 9000].map(|port| Knock::tcp_syn(legit, server, port).emit());
    packets.splice(FLOOD as usize / 2..FLOOD as usize / 2, legit_knocks);
    for batch in packets.chunks(64) {
        sender.send_many(batch);
    }
    assert!(
        connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN),
        "the legitimate knock was lost:\n{}",
        daemon.log_text()
    );
    let counters = daemon.counters();
    let value = |key: &str| counter(&counters, key).unwrap_or_else(|| panic!("no {key}: {counters}"));
    assert!(value("attempts") <= 5000, "{counters}");
    assert!(value("evictions") > 0, "the flood did overflow the table: {counters}");
    assert!(value("opens") >= 1, "{counters}");
    eprintln!("{counters}");
    let rss = proc_status(daemon.pid(), "VmRSS:");
    assert!(rss < 64 * 1024, "resident memory {rss} KiB");
}

#[test]
fn malformed_packets_never_take_the_daemon_down() {
    let lab = Lab::with_sshd();
    let (_config, mut daemon) = lab.knockd(&door("30s"));
    let server: Ipv4Addr = SERVER_V4.parse().unwrap();
    let v4 = Sender::new(&lab, 0x0800);
    let good = Knock::tcp_syn(CLIENT_V4.parse::<Ipv4Addr>().unwrap(), server, 7000).emit();
    let mut packets: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect(); // every truncation
    let changed = |change: &dyn Fn(&mut Ipv4Mut)| {
        let mut p = good.clone();
        change(&mut Ipv4Mut::new(&mut p));
        p
    };
    packets.extend([
        changed(&|ip| ip.set_header_len(8)),
        changed(&|ip| ip.set_header_len(60)), // the packet is 40 bytes
        changed(&|ip| ip.set_total_len(9000)),
        changed(&|ip| ip.set_flags_and_offset(0x0001)), // a later fragment
        changed(&|ip| ip.set_flags_and_offset(0x2000)), // the first of several
        changed(&|ip| ip.set_version(7)),
    ]);
    for p in &packets {
        v4.send(p);
    }
    // IPv6 with a hop-by-hop header in front of TCP, and truncated IPv6.
    let v6 = Sender::new(&lab, 0x86dd);
    let (client, server): (Ipv6Addr, Ipv6Addr) = (CLIENT_V6.parse().unwrap(), SERVER_V6.parse().unwrap());
    let syn = Knock::tcp_syn(client, server, 7000).emit();
    let mut ext = vec![0u8; 48];
    ext[..40].copy_from_slice(&syn[..40]);
    ext[40] = 6; // the hop-by-hop header (8 bytes, no options): next, TCP
    ext.extend_from_slice(&syn[40..]);
    let mut ip = Ipv6Mut::new(&mut ext);
    ip.set_next_header(0); // hop-by-hop
    ip.set_payload_len(28);
    v6.send(&ext);
    v6.send(&ext[..30]);
    // An 802.1Q-tagged frame carrying a knock.
    let vlan = Sender::new(&lab, 0x8100);
    let mut tagged = vec![0x00, 0x07, 0x08, 0x00];
    tagged.extend_from_slice(&good);
    vlan.send(&tagged);

    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(daemon.wait_exit(Duration::ZERO), None, "the daemon died:\n{}", daemon.log_text());
    knock_tcp(&lab, OTHER_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, OTHER_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    daemon.signal(libc::SIGUSR1);
    assert!(daemon.wait_log("counters:", WITHIN));
    assert!(daemon.stop().success());
}

/// The capability sets of a running process, from /proc.
fn capabilities(pid: i32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    (field("CapEff:"), field("CapPrm:"), field("CapBnd:"))
}

#[test]
fn after_start_only_net_admin_and_net_raw_are_left_and_everything_still_works() {
    const NET_ADMIN_AND_RAW: u64 = (1 << 12) | (1 << 13);
    let lab = Lab::with_sshd();
    let (out, config, daemon) = lab.knockd_writing(
        "doors:\n  ssh:\n    sequence: [7000, 8000, 9000]\n    open: {ports: [22], timeout: 30s}\n    \
         command: \"grep CapEff /proc/self/status >> {out}\"\n",
    );
    assert_eq!(capabilities(daemon.pid()), (NET_ADMIN_AND_RAW, NET_ADMIN_AND_RAW, NET_ADMIN_AND_RAW));
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    assert!(eventually(WITHIN, || std::fs::read_to_string(&out.path).is_ok_and(|t| t.contains("CapEff"))));
    let command_caps = std::fs::read_to_string(&out.path).unwrap();
    assert!(command_caps.trim().ends_with("0000000000003000"), "the command got more: {command_caps}");
    // The table can still be restored without the dropped capabilities.
    lab.server.nft(&["flush", "ruleset"]);
    daemon.expect_log(&log_lines::restored("nftables table inet knockd"), Duration::from_secs(5));

    drop(daemon);
    let kept = Daemon::start(&lab.server, &config, &["--keep-capabilities"]);
    assert_ne!(capabilities(kept.pid()).0, NET_ADMIN_AND_RAW);
}

/// The real and effective uid of a process, from /proc.
fn uids(pid: i32) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let ids: Vec<u32> = line.split_whitespace().skip(1).map(|n| n.parse().unwrap()).collect();
    (ids[0], ids[1])
}

#[test]
fn with_no_command_it_runs_as_its_own_user_and_everything_still_works() {
    use std::os::unix::fs::MetadataExt;
    const NET_ADMIN_AND_RAW: u64 = (1 << 12) | (1 << 13);
    let lab = Lab::new();
    let (uid, gid) = ensure_knockd_user();
    let _echo = lab.sshd();
    let keys = ConfigFile::new("alice", "");
    let secret = spa_keygen(&keys, "alice-key");
    let public = keys.path.with_file_name("alice-key.pub");
    let yaml = format!(
        "doors:\n  ssh: {{sequence: [7000, 8000], open: {{ports: [22], timeout: 30s}}}}\n  spa: {{spa: {{port: 62201, public_keys: [{}]}}, open: {{ports: [22], timeout: 30s}}}}\n",
        public.display()
    );
    let config = ConfigFile::new("knockd.yaml", &yaml);
    let pidfile = config.path.with_file_name("knockd.pid");
    let daemon = Daemon::start(&lab.server, &config, &["-p", pidfile.to_str().unwrap()]);
    assert!(daemon.logged(&log_lines::running_as("knockd")), "{}", daemon.log_text());
    assert_eq!(uids(daemon.pid()), (uid, uid));
    assert_eq!(std::fs::metadata(config.state_dir()).unwrap().gid(), gid, "the state directory is its");
    assert_eq!(capabilities(daemon.pid()).0, NET_ADMIN_AND_RAW);

    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    let key = secret.to_str().unwrap();
    let knock = knock_client(
        &lab.client,
        &["--spa", "--door", "spa", "--key", key, "--source", OTHER_V4, "--wait-open", "22", SERVER_V4],
    );
    assert!(knock.status.success(), "{}\n{}", String::from_utf8_lossy(&knock.stderr), daemon.log_text());
    let replay = config.state_dir().join("spa.replay");
    assert_eq!(std::fs::metadata(&replay).expect("the replay cache was written").uid(), uid);

    lab.server.nft(&["flush", "ruleset"]);
    daemon.expect_log(&log_lines::restored("nftables table inet knockd"), Duration::from_secs(5));
    config.rewrite(&yaml.replace("timeout: 30s}}\n  spa", "timeout: 45s}}\n  spa"));
    daemon.signal(libc::SIGHUP);
    daemon.expect_log(&log_lines::reloaded(2), WITHIN);
    assert!(daemon.stop().success());
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap_or_default(), "", "the pid file is left empty");

    // Restarted (as root, then knockd again): the cache knockd wrote is read.
    let daemon = Daemon::start(&lab.server, &config, &[]);
    assert!(daemon.logged(&log_lines::running_as("knockd")), "{}", daemon.log_text());
    drop(daemon);
    // And by a daemon that now stays root (a door with a command): its own user's files are
    // trusted, and the directory is given back to root.
    config.rewrite(&yaml.replace("timeout: 30s}}\n  spa", "timeout: 30s}, command: \"true\"}\n  spa"));
    let daemon = Daemon::start(&lab.server, &config, &[]);
    let staying = log_lines::staying_root("door ssh runs commands");
    assert!(daemon.logged(&staying), "{}", daemon.log_text());
    assert_eq!(std::fs::metadata(config.state_dir()).unwrap().uid(), 0, "{}", daemon.log_text());
}
