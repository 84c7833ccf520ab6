//! knockd-bench: measures knockd, and the classic knockd 0.8 when it is installed
//! (`apt-get install knockd`), on two network namespaces joined by a veth pair, and prints one
//! table with both and their ratio. It prints figures; it asserts nothing about timings.
//!
//! Run as root: `cargo build --release --features bench && target/release/knockd-bench
//! [--trials N] [--fwknop-only | --fwknop-verdicts | --spa-only]` (it runs the knockd built
//! beside it, so build both). The fwknop figure needs fwknop-client, and fwknop-server for its
//! side; so does the side-by-side run of fwknop's config shapes (`--fwknop-verdicts`).
//! Traffic is raw IPv4 packets with spoofed sources in 198.18.0.0/15, sent from the client
//! namespace to the server namespace only; every sending loop is bounded in count and time.

// The benchmark shares the test lab's modules; not every helper of theirs is used here.
#![allow(dead_code)]

mod bench_fwknop;
mod bench_fwknop_verdicts;
mod bench_spa;
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use support::frames::{self, Sender};
use support::*;

const CLASSIC: &str = "/usr/sbin/knockd";
const SEQUENCE: [u16; 3] = [7000, 8000, 9000];
/// Knock rates tried, in packets per second, until one loses knocks.
const RATES: [u64; 9] = [5_000, 10_000, 25_000, 50_000, 100_000, 200_000, 300_000, 450_000, 600_000];

/// One daemon's figures; `None` where the measurement could not be made.
#[derive(Default)]
struct Figures {
    latency_median: Option<Duration>,
    latency_trials: usize,
    wait_open_median: Option<Duration>,
    max_rate: Option<u64>,
    first_loss: Option<(u64, u64, u64)>,
    /// Whether the highest rate tried was limited by the sender, not the daemon.
    sender_bound: bool,
    concurrent: Option<(u64, u64)>,
    noise_cpu: Option<Duration>,
    noise_pps: u64,
    flood_rss_kib: Option<u64>,
    flood_legit: Option<bool>,
    idle_rss_kib: Option<u64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Ours,
    Classic,
}

/// A running daemon of either kind, with a way to count how many knocks it opened.
struct Subject {
    which: Which,
    daemon: Daemon,
    _config: ConfigFile,
}

impl Subject {
    /// `latency` picks a real opening action (nftables for ours, an iptables command for the
    /// classic daemon); otherwise the classic daemon runs `/bin/true`, its cheapest action.
    fn start(which: Which, lab: &Lab, latency: bool) -> Subject {
        match which {
            Which::Ours => {
                let config = ConfigFile::new(
                    "knockd.yaml",
                    "log: {level: info, syslog: false}\ndoors:\n  ssh:\n    sequence: [7000, 8000, 9000]\n    seq_timeout: 30s\n    tcp_flags: syn\n    open: {ports: [22], timeout: 20s}\n",
                );
                let path = config.path.to_str().unwrap().to_owned();
                let control = config.control().to_str().unwrap().to_owned();
                let daemon = Daemon::spawn_program(
                    &lab.server,
                    &knockd_path(),
                    &["-c", &path, "-n", "-s", "--control", &control],
                );
                daemon.expect_log(log_lines::LISTENING, Duration::from_secs(20));
                Subject { which, daemon, _config: config }
            }
            Which::Classic => {
                let command = if latency {
                    lab.server.run(|| cmd("iptables", &["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"]));
                    "/usr/sbin/iptables -I INPUT -s %IP% -p tcp --dport 22 -j ACCEPT"
                } else {
                    "/bin/true"
                };
                let text = format!(
                    "[bench]\n sequence = 7000,8000,9000\n seq_timeout = 30\n tcpflags = syn\n command = {command}\n"
                );
                let config = ConfigFile::new("knockd.conf", &text);
                let path = config.path.to_str().unwrap().to_owned();
                let daemon = Daemon::spawn_program(&lab.server, CLASSIC, &["-c", &path, "-i", &lab.server_if, "-v"]);
                // The classic knockd's own words.
                assert!(daemon.wait_log("listening on", Duration::from_secs(20)), "{}", daemon.log_text());
                Subject { which, daemon, _config: config }
            }
        }
    }

    /// Knocks opened so far.
    fn opens(&self) -> u64 {
        match self.which {
            Which::Classic => self.daemon.log_text().matches("OPEN SESAME").count() as u64,
            Which::Ours => counter(&self.daemon.counters(), "opens").unwrap_or(0),
        }
    }

    fn rss_kib(&self) -> u64 {
        proc_status(self.daemon.pid(), "VmRSS:")
    }

    fn cpu(&self) -> Duration {
        cpu_time(self.daemon.pid())
    }
}

/// Sends `packets` at `rate` per second (batches of 64, paced); returns the rate achieved.
fn send_paced(sender: &Sender, packets: &[Vec<u8>], rate: u64) -> u64 {
    let start = Instant::now();
    let mut sent = 0usize;
    for batch in packets.chunks(64) {
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        while start.elapsed() < due {
            std::hint::spin_loop();
        }
        let mut done = 0;
        // A full transmit queue: retry the rest of the batch, a bounded number of times.
        for _ in 0..1000 {
            done += sender.send_many(&batch[done..]);
            if done == batch.len() {
                break;
            }
        }
        sent += batch.len();
    }
    (sent as f64 / start.elapsed().as_secs_f64()) as u64
}

/// Complete sequences from `count` spoofed sources starting at `first`, each source's knocks
/// back to back (interleaving is measured on its own, so this measures rate alone).
fn sequences(first: u32, count: u32) -> Vec<Vec<u8>> {
    let server: Ipv4Addr = SERVER_V4.parse().unwrap();
    (first..first + count)
        .flat_map(|n| SEQUENCE.map(|port| Knock::tcp_syn(frames::spoofed(n), server, port).emit()))
        .collect()
}

/// Last knock -> TCP connect accepted, for `trials` sources; the median.
fn latency(lab: &Lab, trials: usize) -> Option<Duration> {
    let mut samples = Vec::new();
    for i in 0..trials {
        let src = format!("198.18.{}.{}", 30, i + 1);
        lab.add_client_addr(&format!("{src}/16"));
        let src_ip: IpAddr = src.parse().unwrap();
        let server: IpAddr = SERVER_V4.parse().unwrap();
        for port in &SEQUENCE[..2] {
            knock(&lab.client, &src, SERVER_V4, *port, Proto::Tcp);
        }
        std::thread::sleep(Duration::from_millis(20));
        let took = lab.client.run(|| {
            send_knock(src_ip, SocketAddr::new(server, SEQUENCE[2]), Proto::Tcp).unwrap();
            let started = Instant::now();
            // One SYN every 50 us until one is answered; bounded by 2 s.
            while started.elapsed() < Duration::from_secs(2) {
                if try_connect(src_ip, SocketAddr::new(server, 22), Duration::from_micros(50)) {
                    return Some(started.elapsed());
                }
            }
            None
        });
        samples.extend(took);
    }
    samples.sort();
    (samples.len() == trials).then(|| samples[samples.len() / 2])
}

/// Last knock -> the `knock` client's `--wait-open 22` loop returns, for `trials` sources; the
/// median. It shows what a user waits, retries included.
fn wait_open_latency(lab: &Lab, trials: usize) -> Option<Duration> {
    let server: IpAddr = SERVER_V4.parse().unwrap();
    let mut samples = Vec::new();
    for i in 0..trials {
        let src = format!("198.18.31.{}", i + 1);
        lab.add_client_addr(&format!("{src}/16"));
        let src_ip: IpAddr = src.parse().unwrap();
        let origin = knockd::client::Origin { source: Some(src_ip), interface: None };
        let took = lab.client.run(|| {
            for port in SEQUENCE {
                send_knock(src_ip, SocketAddr::new(server, port), Proto::Tcp).ok()?;
            }
            let started = Instant::now();
            let open = knockd::client::wait_open(SocketAddr::new(server, 22), &origin, Duration::from_secs(5));
            open.then(|| started.elapsed())
        });
        samples.extend(took);
    }
    samples.sort();
    (samples.len() == trials).then(|| samples[samples.len() / 2])
}

/// One non-blocking connect, waiting `wait` for the answer.
pub(crate) fn try_connect(src: IpAddr, dst: SocketAddr, wait: Duration) -> bool {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.bind(&SockAddr::from(SocketAddr::new(src, 0))).unwrap();
    socket.set_nonblocking(true).unwrap();
    let _ = socket.connect(&SockAddr::from(dst));
    let mut fd = libc::pollfd { fd: socket.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
    // SAFETY: one valid pollfd.
    let ready = unsafe {
        libc::ppoll(&mut fd, 1, &libc::timespec { tv_sec: 0, tv_nsec: wait.as_nanos() as i64 }, std::ptr::null())
    };
    ready == 1 && socket.take_error().ok().flatten().is_none() && socket.peer_addr().is_ok()
}

fn measure(which: Which, trials: usize) -> Figures {
    let mut f = Figures { latency_trials: trials, ..Figures::default() };
    // Latency on its own lab: the classic daemon needs its iptables rules there.
    {
        let lab = Lab::new();
        let subject = Subject::start(which, &lab, true);
        std::thread::sleep(Duration::from_millis(500));
        f.idle_rss_kib = Some(subject.rss_kib());
        let _echo = lab.sshd();
        f.latency_median = latency(&lab, trials);
        f.wait_open_median = wait_open_latency(&lab, trials);
    }
    let lab = Lab::new();
    let sender = Sender::new(&lab, 0x0800);
    let subject = Subject::start(which, &lab, false);

    // Concurrency: 10,000 sources, every first knock, then every second, then every third,
    // at 5,000 packets/s, a rate both daemons keep up with.
    let server: Ipv4Addr = SERVER_V4.parse().unwrap();
    let mut packets = Vec::new();
    for port in SEQUENCE {
        packets.extend((0..10_000).map(|n| Knock::tcp_syn(frames::spoofed(n), server, port).emit()));
    }
    let before = subject.opens();
    send_paced(&sender, &packets, 5_000);
    std::thread::sleep(Duration::from_secs(3));
    f.concurrent = Some((subject.opens() - before, 10_000));

    // Noise to a port that is no knock: what it costs the daemon.
    let noise: Vec<Vec<u8>> = (0..400_000).map(|n| Knock::tcp_syn(frames::spoofed(n), server, 80).emit()).collect();
    let cpu = subject.cpu();
    f.noise_pps = send_paced(&sender, &noise, 200_000);
    f.noise_cpu = Some(subject.cpu() - cpu);

    // Throughput: complete sequences from distinct sources at rising rates, until one loses.
    let mut next = 10_000u32;
    for rate in RATES {
        let sources = ((rate / 2 / 3) as u32).clamp(768, 40_000);
        let packets = sequences(next, sources);
        next = (next + sources) % frames::SPOOFED;
        let before = subject.opens();
        let achieved = send_paced(&sender, &packets, rate);
        std::thread::sleep(Duration::from_secs(3));
        let opened = subject.opens() - before;
        if opened < u64::from(sources) {
            f.first_loss = Some((rate.min(achieved), opened, u64::from(sources)));
            break;
        }
        f.max_rate = Some(f.max_rate.unwrap_or(0).max(rate.min(achieved)));
        if achieved < rate * 9 / 10 {
            // The sender cannot go faster: higher rates would measure the sender.
            f.sender_bound = true;
            break;
        }
    }

    // A million spoofed first knocks, then a legitimate knock.
    let first_knocks: Vec<Vec<u8>> =
        (0..1_000_000).map(|n| Knock::tcp_syn(frames::spoofed(n), server, 7000).emit()).collect();
    send_paced(&sender, &first_knocks, 200_000);
    std::thread::sleep(Duration::from_secs(2));
    f.flood_rss_kib = Some(subject.rss_kib());
    let _echo = Echo::start(&lab.server, "[::]:2222".parse().unwrap());
    let before = subject.opens();
    for port in SEQUENCE {
        knock(&lab.client, OTHER_V4, SERVER_V4, port, Proto::Tcp);
    }
    std::thread::sleep(Duration::from_secs(2));
    f.flood_legit = Some(subject.opens() > before);
    f
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, classic: Option<String>, ours: String, ratio: Option<String>) {
    println!(
        "| {name} | {} | {ours} | {} |",
        classic.unwrap_or_else(|| "not installed".into()),
        ratio.unwrap_or_else(|| "-".into())
    );
}

/// fwknopd and knockd on one access.conf, packets from the stock client: median of 21.
fn fwknop_table() {
    const TRIALS: usize = 21;
    use bench_fwknop::Server;
    let fwknopd = std::path::Path::new(bench_fwknop::FWKNOPD).exists();
    // Without these flags the client writes ~/.fwknoprc and ~/.fwknop.run.
    let has_client =
        std::process::Command::new("fwknop").args(["--no-rc-file", "--no-save-args", "--version"]).output().is_ok();
    if !has_client {
        return eprintln!(
            "knockd-bench: no fwknop client (apt-get install fwknop-client): the fwknop figure is left out"
        );
    }
    eprintln!("knockd-bench: measuring fwknop's client against knockd and fwknopd...");
    let (ours, ours_in) = bench_fwknop::latency(Server::Knockd, TRIALS);
    let theirs = fwknopd.then(|| bench_fwknop::latency(Server::Fwknopd, TRIALS));
    let show = |(median, got_in): (Option<Duration>, usize)| {
        median.map_or_else(|| format!("{got_in} of {TRIALS} got in within 2 s"), ms)
    };
    let ratio = theirs.and_then(|(t, _)| Some(format!("{:.0}x faster", t?.as_secs_f64() / ours?.as_secs_f64())));
    println!();
    println!("| fwknop client 2.6.10 | fwknopd 2.6.10 (iptables) | knockd (nftables) | ratio |");
    println!("|---|---|---|---|");
    row(
        &format!("SPA sent -> TCP connect accepted, median of {TRIALS}"),
        theirs.map(show),
        show((ours, ours_in)),
        ratio,
    );
    if !fwknopd {
        return eprintln!("knockd-bench: {} is not installed (apt-get install fwknop-server)", bench_fwknop::FWKNOPD);
    }
    fwknop_verdicts();
}

/// The same packets to fwknopd and to knockd, on the same configs: where their verdicts differ.
fn fwknop_verdicts() {
    if !std::path::Path::new(bench_fwknop::FWKNOPD).exists() {
        return eprintln!("knockd-bench: {} is not installed (apt-get install fwknop-server)", bench_fwknop::FWKNOPD);
    }
    let (cases, same, on_purpose) = bench_fwknop_verdicts::run();
    println!();
    println!(
        "{same} of {cases} cases: the same verdict; {on_purpose} differ on purpose (doc/fwknop.md); {} differ otherwise.",
        cases - same - on_purpose
    );
}

fn main() {
    let trials = std::env::args().skip_while(|a| a != "--trials").nth(1).and_then(|n| n.parse().ok()).unwrap_or(15);
    require_root();
    if std::env::args().any(|a| a == "--fwknop-only") {
        return fwknop_table();
    }
    if std::env::args().any(|a| a == "--fwknop-verdicts") {
        return fwknop_verdicts();
    }
    if std::env::args().any(|a| a == "--spa-only") {
        return spa_table();
    }
    let classic_installed = std::path::Path::new(CLASSIC).exists();
    eprintln!("knockd-bench: measuring knockd ({trials} latency trials)...");
    let ours = measure(Which::Ours, trials);
    let classic = classic_installed.then(|| {
        eprintln!("knockd-bench: measuring the classic knockd 0.8...");
        measure(Which::Classic, trials)
    });
    let c = classic.as_ref();

    println!("| figure | classic knockd 0.8 | knockd | ratio |");
    println!("|---|---|---|---|");
    let lat = |f: &Figures| f.latency_median.map(ms).unwrap_or_else(|| "no connect within 2 s".into());
    let ratio = c.and_then(|c| {
        Some(format!("{:.0}x faster", c.latency_median?.as_secs_f64() / ours.latency_median?.as_secs_f64()))
    });
    row(&format!("last knock -> TCP connect accepted, median of {trials}"), c.map(lat), lat(&ours), ratio);
    let waited = |f: &Figures| f.wait_open_median.map(ms).unwrap_or_else(|| "did not open within 5 s".into());
    row(
        &format!("`knock --wait-open 22`: last knock -> it returns, median of {trials}"),
        c.map(waited),
        waited(&ours),
        None,
    );
    let rate = |f: &Figures| match (f.max_rate, f.first_loss) {
        (Some(r), Some((at, got, of))) => format!("{r}/s (at {at}/s: {got} of {of} opened)"),
        (Some(r), None) if f.sender_bound => format!("{r}/s, the sender's line rate, with no loss"),
        (Some(r), None) => format!("{r}/s or more (the highest rate tried)"),
        (None, Some((at, got, of))) => format!("below {at}/s ({got} of {of} opened)"),
        (None, None) => "-".into(),
    };
    let ratio =
        c.and_then(|c| Some(format!("{:.0}x", ours.max_rate? as f64 / c.max_rate.unwrap_or(RATES[0] / 2) as f64)));
    row("knock packets/s with no loss (distinct spoofed sources)", c.map(rate), rate(&ours), ratio);
    let conc = |f: &Figures| f.concurrent.map(|(got, of)| format!("{got} of {of}")).unwrap_or_default();
    row("interleaved concurrent knockers that get in", c.map(conc), conc(&ours), None);
    let noise = |f: &Figures| {
        let cpu = f.noise_cpu.map(|d| if d.is_zero() { "< 10 ms (one clock tick)".to_owned() } else { ms(d) });
        format!("{} CPU for 400,000 packets at {}/s", cpu.unwrap_or_default(), f.noise_pps)
    };
    row("noise to non-knock ports, daemon CPU", c.map(noise), noise(&ours), None);
    let flood = |f: &Figures| {
        format!(
            "{:.1} MiB; a legitimate knock {}",
            f.flood_rss_kib.unwrap_or(0) as f64 / 1024.0,
            if f.flood_legit == Some(true) { "opens" } else { "does not open" }
        )
    };
    row("RSS after 1,000,000 spoofed first knocks", c.map(flood), flood(&ours), None);
    let idle = |f: &Figures| format!("{:.1} MiB", f.idle_rss_kib.unwrap_or(0) as f64 / 1024.0);
    row("idle RSS", c.map(idle), idle(&ours), None);
    if !classic_installed {
        eprintln!("knockd-bench: {CLASSIC} is not installed (apt-get install knockd) so only knockd was measured");
    }

    fwknop_table();
    spa_table();
}

fn spa_table() {
    eprintln!("knockd-bench: measuring a flood of forged SPA packets...");
    let flood = bench_spa::measure(6);
    println!();
    println!("| SPA flood: forged, well-formed Ed25519 packets at full rate, door with 8 keys | knockd |");
    println!("|---|---|");
    println!("| forged packets sent per second | {} |", flood.sent_pps);
    let got_in = flood.got_in_after.map_or_else(|| "not within 10 s".to_owned(), ms);
    println!("| a legitimate `knock --spa --wait-open` gets in after | {got_in} |");
    println!("| daemon CPU during the flood | {:.0}% of one core |", flood.cpu_share * 100.0);
    println!("| signature checks per second (the budget) | {} |", flood.verified_per_sec);
}
