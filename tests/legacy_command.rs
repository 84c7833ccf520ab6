//! Legacy commands: substitution and scheduling (pure), and the shell runner (real processes,
//! no root needed).

use std::net::IpAddr;
use std::time::Duration;

use knockd::config::{Commands, Door, PortProto, Proof, TcpFlags};
use knockd::doors::sequence::FixedSequence;
use knockd::grant::legacy_command::{self, Job, MemorySpawner, Phase, START_QUEUE, Scheduler};

fn door(commands: Commands) -> Door {
    Door {
        name: "ssh".into(),
        proofs: vec![Proof::new(FixedSequence(vec![PortProto::tcp(1)]))],
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

/// The commands handed over so far, as text.
fn ran(spawner: &MemorySpawner) -> Vec<&str> {
    spawner.jobs.iter().map(|j| j.command.as_str()).collect()
}

#[test]
fn start_now_stop_after_cmd_timeout() {
    let d = door(commands("open %IP%", "close %IP%", 10));
    let (mut sched, mut spawner) = (Scheduler::default(), MemorySpawner::default());
    sched.open(&d, ip("198.18.0.2"), s(100), &mut spawner);
    assert_eq!(
        spawner.jobs,
        [Job {
            id: 2,
            door: "ssh".into(),
            src: ip("198.18.0.2"),
            phase: Phase::Start,
            command: "open 198.18.0.2".into()
        }]
    );
    assert_eq!(sched.next_due(), Some(s(110)), "the start ended at once: its stop is due cmd_timeout later");
    sched.run(s(109), &mut spawner);
    assert_eq!(spawner.jobs.len(), 1, "not due yet");
    sched.run(s(110), &mut spawner);
    assert_eq!(spawner.jobs[1].command, "close 198.18.0.2");
    assert_eq!(spawner.jobs[1].phase, Phase::Stop);
    assert_eq!(sched.pending(), 0);
}

#[test]
fn the_stop_runs_cmd_timeout_after_the_start_has_finished() {
    // The classic knockd's rule: a start command that takes 20 s moves its stop by 20 s.
    let d = door(commands("sleep 20", "close %IP%", 3));
    let (mut sched, mut spawner) = (Scheduler::default(), MemorySpawner { hold: true, ..Default::default() });
    sched.open(&d, ip("198.18.0.2"), s(0), &mut spawner);
    assert_eq!(sched.next_due(), None, "no stop is due while its start runs");
    assert_eq!(sched.pending(), 1, "but it is pending");
    sched.run(s(10), &mut spawner);
    assert_eq!(ran(&spawner), ["sleep 20"]);
    spawner.finish();
    sched.run(s(20), &mut spawner);
    assert_eq!(sched.next_due(), Some(s(23)));
    sched.run(s(22), &mut spawner);
    assert_eq!(spawner.jobs.len(), 1);
    sched.run(s(23), &mut spawner);
    assert_eq!(ran(&spawner), ["sleep 20", "close 198.18.0.2"]);
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
    sched.run(s(100), &mut spawner);
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
    sched.run(s(5), &mut spawner);
    assert_eq!(spawner.jobs.len(), 1, "an empty stop_command_6 means no stop for IPv6");
    assert_eq!(spawner.jobs[0].command, "v6 2001:db8::2");
}

#[test]
fn a_full_runner_delays_stops_and_never_loses_them() {
    let d = door(commands("start", "stop %IP%", 1));
    let (mut sched, mut spawner) = (Scheduler::default(), MemorySpawner::default());
    sched.open(&d, ip("198.18.0.2"), s(0), &mut spawner);
    spawner.full = true;
    sched.run(s(2), &mut spawner);
    assert_eq!(sched.pending(), 1, "kept for later");
    spawner.full = false;
    sched.run(s(3), &mut spawner);
    assert_eq!(sched.pending(), 0);
    assert_eq!(spawner.jobs.last().unwrap().command, "stop 198.18.0.2");
}

#[test]
fn spoofed_completions_never_delay_a_real_stop() {
    // 2,000 spoofed completions of a door whose start commands hang, after one real one: the
    // start queue is bounded (the rest are refused and counted), and the real stop runs on
    // time, because stops have slots of their own.
    let d = door(commands("start %IP%", "stop %IP%", 1));
    let mut spawner = MemorySpawner { hold: true, slots: Some(16), ..Default::default() };
    let mut sched = Scheduler::default();
    sched.open(&d, ip("198.18.0.2"), s(0), &mut spawner);
    spawner.finish();
    sched.run(s(0), &mut spawner);
    assert_eq!(sched.next_due(), Some(s(1)));
    for n in 0..2000u32 {
        let spoofed = std::net::Ipv4Addr::from(0xc612_2000 + n);
        sched.open(&d, IpAddr::V4(spoofed), Duration::from_millis(100), &mut spawner);
    }
    assert_eq!(spawner.live.len(), 16, "16 spoofed starts run, hung");
    assert_eq!(sched.refused(), 2000 - 16 - START_QUEUE as u64, "the queue holds {START_QUEUE}: the rest are refused");
    sched.run(s(1), &mut spawner);
    let stop = spawner.jobs.iter().position(|j| j.command == "stop 198.18.0.2");
    assert!(stop.is_some(), "the real stop ran at its time, 16 hung starts notwithstanding");
    assert_eq!(sched.pending(), 16 + START_QUEUE, "every start that may still run keeps its stop");
}

#[test]
fn the_same_command_for_the_same_source_runs_once_while_it_waits_or_runs() {
    let d = door(commands("open %IP%", "close %IP%", 5));
    let mut spawner = MemorySpawner { hold: true, ..Default::default() };
    let mut sched = Scheduler::default();
    for _ in 0..3 {
        sched.open(&d, ip("198.18.0.2"), s(0), &mut spawner);
    }
    sched.open(&d, ip("198.18.0.3"), s(0), &mut spawner);
    assert_eq!(ran(&spawner), ["open 198.18.0.2", "open 198.18.0.3"]);
    assert_eq!(sched.merged(), 2);
    assert_eq!(sched.pending(), 2, "one stop per command run");
    spawner.finish();
    sched.run(s(1), &mut spawner);
    // Once it has ended, a new completion is a new grant: its own start and stop.
    sched.open(&d, ip("198.18.0.2"), s(2), &mut spawner);
    assert_eq!(ran(&spawner).iter().filter(|c| **c == "open 198.18.0.2").count(), 2);
}

#[test]
fn revoke_runs_the_stop_now_or_as_soon_as_the_start_has_ended() {
    let d = door(commands("open %IP%", "close %IP%", 3600));
    let mut spawner = MemorySpawner { hold: true, ..Default::default() };
    let mut sched = Scheduler::default();
    sched.open(&d, ip("198.18.0.2"), s(0), &mut spawner);
    assert_eq!(sched.run_now("ssh", ip("198.18.0.2"), s(1), &mut spawner), 1);
    assert_eq!(ran(&spawner), ["open 198.18.0.2"], "the start still runs");
    spawner.finish();
    sched.run(s(2), &mut spawner);
    assert_eq!(ran(&spawner), ["open 198.18.0.2", "close 198.18.0.2"], "then the stop, at once");
    assert_eq!(sched.pending(), 0);
}

#[test]
fn shutdown_lets_starts_finish_then_runs_every_pending_stop() {
    let d = door(commands("start %IP%", "stop %IP%", 3600));
    let mut spawner = MemorySpawner { hold: true, slots: Some(2), ..Default::default() };
    let mut sched = Scheduler::default();
    for last in 1..=3 {
        sched.open(&d, ip(&format!("198.18.0.{last}")), s(0), &mut spawner);
    }
    assert_eq!(spawner.live.len(), 2, "the third waits for a slot");
    sched.drain(&mut spawner);
    assert_eq!(sched.pending(), 0);
    let stops: Vec<&str> = spawner.jobs.iter().filter(|j| j.phase == Phase::Stop).map(|j| j.command.as_str()).collect();
    assert_eq!(stops, ["stop 198.18.0.1", "stop 198.18.0.2"], "the waiting start never ran, so it has no stop");
}

#[test]
fn the_shell_runner_reports_each_end_wakes_the_caller_and_keeps_slots_per_phase() {
    use knockd::grant::legacy_command::{RUNNING, ShellSpawner, Spawner};
    let job = |id, phase, command: &str| Job {
        id,
        door: "ssh".into(),
        src: ip("198.18.0.2"),
        phase,
        command: command.into(),
    };
    let mut spawner = ShellSpawner::default();
    assert!(spawner.wake_fd().is_none(), "no thread before the first job");
    for id in 0..RUNNING as u64 {
        spawner.spawn(job(id, Phase::Start, "sleep 1")).unwrap();
    }
    assert!(spawner.spawn(job(99, Phase::Start, "true")).is_err(), "every start slot is taken");
    spawner.spawn(job(100, Phase::Stop, "echo stopped >&2; exit 3")).expect("a stop has a slot of its own");
    let fd = spawner.wake_fd().expect("the thread runs");
    let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
    let woke = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
    assert_eq!(woke, 1, "the end of a command wakes the caller");
    let mut ended = Vec::new();
    for _ in 0..500 {
        spawner.ended(&mut ended);
        if !ended.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(ended[0].job.id, 100, "the stop ended first");
    assert_eq!(ended[0].outcome.status, "exited with status 3");
    assert_eq!(ended[0].outcome.stderr.trim(), "stopped");
    spawner.finish();
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
