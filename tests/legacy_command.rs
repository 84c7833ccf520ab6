//! Legacy commands: substitution and scheduling (pure), and the shell runner (real processes,
//! no root needed).

use std::net::IpAddr;
use std::time::Duration;

use knockd::config::{Commands, Door, PortProto, Proof, TcpFlags};
use knockd::grant::legacy_command::{self, Job, MemorySpawner, Phase, Scheduler};

fn door(commands: Commands) -> Door {
    Door {
        name: "ssh".into(),
        proofs: vec![Proof::Sequence(vec![PortProto::tcp(1)])],
        seq_timeout: Duration::from_secs(5),
        tcp_flags: TcpFlags::default(),
        target: None,
        from: Vec::new(),
        not_from: Vec::new(),
        open: None,
        commands,
    }
}

fn commands(start: &str, stop: &str, secs: u64) -> Commands {
    Commands {
        start: Some(start.into()),
        stop: Some(stop.into()),
        cmd_timeout: Duration::from_secs(secs),
        ..Commands::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn every_placeholder_is_replaced() {
    assert_eq!(legacy_command::expand("a %IP% b %IP%%IP%", ip("198.18.0.2")), "a 198.18.0.2 b 198.18.0.2198.18.0.2");
    assert_eq!(legacy_command::expand("ip6tables -s %IP%", ip("2001:db8::2")), "ip6tables -s 2001:db8::2");
    assert_eq!(legacy_command::expand("no placeholder", ip("198.18.0.2")), "no placeholder");
    assert_eq!(legacy_command::expand("%ip% %IP", ip("198.18.0.2")), "%ip% %IP", "only the exact token");
}

#[test]
fn start_now_stop_after_cmd_timeout() {
    let d = door(commands("open %IP%", "close %IP%", 10));
    let (mut sched, mut spawner) = (Scheduler::default(), MemorySpawner::default());
    sched.open(&d, ip("198.18.0.2"), s(100), &mut spawner);
    assert_eq!(
        spawner.jobs,
        [Job { door: "ssh".into(), src: ip("198.18.0.2"), phase: Phase::Start, command: "open 198.18.0.2".into() }]
    );
    assert_eq!(sched.next_due(), Some(s(110)));
    sched.run_due(s(109), &mut spawner);
    assert_eq!(spawner.jobs.len(), 1, "not due yet");
    sched.run_due(s(110), &mut spawner);
    assert_eq!(spawner.jobs[1].command, "close 198.18.0.2");
    assert_eq!(spawner.jobs[1].phase, Phase::Stop);
    assert_eq!(sched.pending(), 0);
}

#[test]
fn stops_run_in_due_order_across_doors() {
    let slow = door(commands("a", "stop slow %IP%", 30));
    let mut fast = door(commands("b", "stop fast %IP%", 5));
    fast.name = "fast".into();
    let (mut sched, mut spawner) = (Scheduler::default(), MemorySpawner::default());
    sched.open(&slow, ip("198.18.0.2"), s(0), &mut spawner);
    sched.open(&fast, ip("198.18.0.3"), s(1), &mut spawner);
    sched.open(&fast, ip("198.18.0.4"), s(1), &mut spawner);
    sched.run_due(s(100), &mut spawner);
    let stops: Vec<&str> = spawner.jobs.iter().filter(|j| j.phase == Phase::Stop).map(|j| j.command.as_str()).collect();
    assert_eq!(stops, ["stop fast 198.18.0.3", "stop fast 198.18.0.4", "stop slow 198.18.0.2"]);
}

#[test]
fn ipv6_uses_the_6_commands_and_falls_back() {
    let mut c = commands("v4 %IP%", "v4stop %IP%", 1);
    let (mut sched, mut spawner) = (Scheduler::default(), MemorySpawner::default());
    sched.open(&door(c.clone()), ip("2001:db8::2"), s(0), &mut spawner);
    assert_eq!(spawner.jobs[0].command, "v4 2001:db8::2", "no _6 command: the IPv4 one");
    c.start_v6 = Some("v6 %IP%".into());
    c.stop_v6 = Some(String::new());
    let (mut sched, mut spawner) = (Scheduler::default(), MemorySpawner::default());
    sched.open(&door(c), ip("2001:db8::2"), s(0), &mut spawner);
    sched.run_due(s(5), &mut spawner);
    assert_eq!(spawner.jobs.len(), 1, "an empty stop_command_6 means no stop for IPv6");
    assert_eq!(spawner.jobs[0].command, "v6 2001:db8::2");
}

#[test]
fn a_full_queue_delays_stops_and_never_loses_them() {
    let d = door(commands("start", "stop %IP%", 1));
    let (mut sched, mut spawner) = (Scheduler::default(), MemorySpawner::default());
    sched.open(&d, ip("198.18.0.2"), s(0), &mut spawner);
    spawner.full = true;
    sched.run_due(s(2), &mut spawner);
    assert_eq!(sched.pending(), 1, "kept for later");
    spawner.full = false;
    sched.run_due(s(3), &mut spawner);
    assert_eq!(sched.pending(), 0);
    assert_eq!(spawner.jobs.last().unwrap().command, "stop 198.18.0.2");
    // A start that cannot be queued is not run, and so schedules no stop.
    spawner.full = true;
    sched.open(&d, ip("198.18.0.3"), s(4), &mut spawner);
    assert_eq!(sched.pending(), 0);
}

#[test]
fn shutdown_runs_every_pending_stop_at_once() {
    let d = door(commands("start", "stop %IP%", 3600));
    let (mut sched, mut spawner) = (Scheduler::default(), MemorySpawner::default());
    for last in 1..=3 {
        sched.open(&d, ip(&format!("198.18.0.{last}")), s(0), &mut spawner);
    }
    spawner.full = true; // shutdown waits for room instead of dropping
    sched.drain(&mut spawner);
    assert_eq!(sched.pending(), 0);
    assert_eq!(spawner.jobs.iter().filter(|j| j.phase == Phase::Stop).count(), 3);
}

#[test]
fn the_shell_runner_reports_status_and_stderr() {
    let ok = legacy_command::run("true", Duration::from_secs(5)).unwrap();
    assert!(ok.success);
    let failed = legacy_command::run("echo oops >&2; exit 3", Duration::from_secs(5)).unwrap();
    assert!(!failed.success);
    assert_eq!(failed.status, "exited with status 3");
    assert_eq!(failed.stderr.trim(), "oops");
    let killed = legacy_command::run("kill -9 $$", Duration::from_secs(5)).unwrap();
    assert_eq!(killed.status, "was killed by signal 9");
}

#[test]
fn a_hanging_command_is_killed_with_its_process_group() {
    let dir = std::env::temp_dir().join(format!("knockd-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("child-survived");
    // A background child in the same group would write the marker after 2 s if not killed.
    let command = format!("(sleep 2; touch {}) & sleep 30", marker.display());
    let started = std::time::Instant::now();
    let outcome = legacy_command::run(&command, Duration::from_millis(300)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(outcome.status.starts_with("timed out after 300ms"), "{}", outcome.status);
    std::thread::sleep(Duration::from_millis(2500));
    let survived = marker.exists();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!survived, "the whole process group is killed");
}
