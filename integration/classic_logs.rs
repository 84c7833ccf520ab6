//! Classic knockd.conf files as they are: the classic knockd 0.8 and knockd run the same file,
//! get the same knocks, and write the same log lines; section names that are not nftables
//! identifiers name working doors; and without a syslog socket the lines still go somewhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(5);

/// The classic knockd 0.8: Debian's `/usr/sbin/knockd` when that is the classic daemon, else
/// Debian's package unpacked (not installed) under the cargo target directory.
fn classic_knockd() -> PathBuf {
    let installed = Path::new("/usr/sbin/knockd");
    let version =
        |path: &Path| Command::new(path).arg("-V").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if version(installed).is_ok_and(|v| v.starts_with("knockd 0.8")) {
        return installed.to_owned();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("classic-knockd");
    let binary = dir.join("root/usr/sbin/knockd");
    if !binary.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let download = || Command::new("apt-get").args(["download", "-qq", "knockd"]).current_dir(&dir).status();
        if !download().is_ok_and(|s| s.success()) {
            cmd("apt-get", &["update", "-qq"]);
            assert!(
                download().is_ok_and(|s| s.success()),
                "apt-get download knockd failed: the classic knockd is needed"
            );
        }
        let deb = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"));
        let deb = deb.expect("the downloaded knockd package");
        cmd("dpkg-deb", &["-x", deb.to_str().unwrap(), dir.join("root").to_str().unwrap()]);
    }
    assert!(version(&binary).is_ok_and(|v| v.starts_with("knockd 0.8")), "{} is not knockd 0.8", binary.display());
    binary
}

/// Lines about knocks and commands, which the classic format writes in the classic words. As
/// the real classic knockd writes them: the comparison below holds ours to its output.
const CLASSIC_WORDS: [&str; 8] = [
    ": Stage ",
    ": OPEN SESAME",
    ": running command: ",
    ": command timeout",
    ": sequence timeout (stage ",
    ": command returned non-zero status code (",
    "starting up, listening on ",
    "shutting down",
];

/// Runs `program` on a knockd.conf in a lab, knocks as the scenario says, and returns the log
/// file's lines.
fn run_scenario(program: &str, ours: bool) -> Vec<String> {
    let lab = Lab::new();
    let log = ConfigFile::new("knockd.log", "");
    let conf = format!(
        "[options]\n\tLogFile = {}\n[openSSH]\n\tsequence = 7000,8000,9000\n\tseq_timeout = 2\n\ttcpflags = syn\n\
         \tstart_command = /bin/true %IP% open\n\tcmd_timeout = 1\n\tstop_command = /bin/true %IP% close\n\
         [failing]\n\tsequence = 7500\n\tcommand = exit 4\n",
        log.path.display()
    );
    let config = ConfigFile::new("knockd.conf", &conf);
    let control = config.control();
    let mut args = vec!["-c", config.path.to_str().unwrap(), "-i", &lab.server_if];
    if ours {
        // Not the machine's syslog, nor its control socket.
        args.extend(["-n", "--control", control.to_str().unwrap()]);
    }
    let daemon = Daemon::spawn_program(&lab.server, program, &args);
    let text = || std::fs::read_to_string(&log.path).unwrap_or_default();
    // What both daemons write, in the classic knockd's words (as it writes them).
    let logged = |needle: &str, count: usize| eventually(WITHIN, || text().matches(needle).count() >= count);
    assert!(logged("starting up, listening on", 1), "{program}: {}\n{}", text(), daemon.log_text());
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000, 9000]);
    assert!(logged("running command: /bin/true 198.18.0.2 close", 1), "{program}: {}", text());
    knock_tcp(&lab, OTHER_V4, SERVER_V4, &[7000, 8000]);
    assert!(logged("198.18.0.3: openSSH: Stage 2", 1), "{program}: {}", text());
    // Past seq_timeout (2 s), and past knockd's next tick (1 s), which notes the timeout when
    // it happens; the classic daemon notes it at the next packet.
    std::thread::sleep(Duration::from_millis(3500));
    knock(&lab.client, OTHER_V4, SERVER_V4, 7500, Proto::Tcp);
    assert!(logged("non-zero status code (4)", 1), "{program}: {}\n{}", text(), daemon.log_text());
    daemon.signal(libc::SIGTERM);
    assert!(logged("shutting down", 1), "{program}: {}", text());
    drop(daemon);
    // Each run has a lab, and an interface name, of its own.
    text().lines().map(|l| l.replace(&lab.server_if, "IFACE")).collect()
}

/// `[YYYY-MM-DD HH:MM] ` and the rest.
fn split_stamp(line: &str) -> (&str, &str) {
    let shape = line.len() > 19 && line.as_bytes()[0] == b'[' && line.get(17..19) == Some("] ");
    assert!(shape, "not a classic log line: {line:?}");
    (&line[..18], &line[19..])
}

#[test]
fn a_knockd_conf_logs_the_lines_the_classic_knockd_writes() {
    let classic = run_scenario(classic_knockd().to_str().unwrap(), false);
    let ours = run_scenario(&knockd_path(), true);
    let words = |lines: &[String]| -> Vec<String> {
        let lines = lines.iter().filter(|l| !l.is_empty()).map(|l| split_stamp(l).1.to_owned());
        lines.filter(|l| CLASSIC_WORDS.iter().any(|w| l.contains(w))).collect()
    };
    let (classic_words, our_words) = (words(&classic), words(&ours));
    assert!(classic_words.len() >= 14, "the scenario ran: {classic:#?}");
    assert_eq!(our_words, classic_words, "classic:\n{}\n\nknockd:\n{}", classic.join("\n"), ours.join("\n"));
    // Every line of knockd's file has the classic stamp, even those the classic daemon had no
    // words for; and none is empty (the classic daemon wrote some).
    for line in &ours {
        split_stamp(line);
    }
}

/// A door named as classic knockd.conf files name them opens in nftables: its sets get a
/// derived name, the same after a restart, so the grant is found again and listed under the
/// door's own name.
#[test]
fn a_door_with_a_classic_name_opens_and_keeps_its_sets_across_a_restart() {
    let lab = Lab::with_sshd();
    let (config, daemon) =
        lab.knockd("doors:\n  \"Open rtorrent\":\n    sequence: [7000, 8000]\n    open: {ports: [22], timeout: 1m}\n");
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "guarded before");
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000]);
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    daemon.expect_log(&opened("Open rtorrent", CLIENT_V4, "22/tcp", secs(60)), WITHIN);
    let set = format!("{}_v4", knockd::config::nft_name("Open rtorrent"));
    assert!(set.starts_with("Open_rtorrent_"), "{set}");
    assert!(lab.server.set_elements("knockd", &set).contains("198.18.0.2"), "{}", lab.server.nft(&["list", "ruleset"]));
    assert!(daemon.stop().success());
    let _again = Daemon::start(&lab.server, &config, &[]);
    let status = ask(&lab.server, &config, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {status}"));
    let grant = &json["grants"][0];
    assert_eq!(
        (grant["door"].as_str(), grant["address"].as_str()),
        (Some("Open rtorrent"), Some("198.18.0.2")),
        "{json}"
    );
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "the grant survived the restart");
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "strangers stay out");
}

/// The door of the syslog tests.
const DOOR: &str = "doors:\n  ssh:\n    sequence: [7000, 8000]\n    open: {ports: [22], timeout: 30s}\n";

/// knockd on `config`, without -D, in a private mount namespace of its own where the shell
/// commands `setup` ran first (ending in `;`, or in `&&` when knockd must not start after
/// a failure).
fn in_mount_namespace(lab: &Lab, config: &ConfigFile, setup: &str) -> Daemon {
    let script = format!("{setup} exec \"$@\"");
    let (knockd, control) = (knockd_path(), config.control());
    let (path, control) = (config.path.to_str().unwrap(), control.to_str().unwrap());
    let args = ["-m", "--propagation", "private", "sh", "-c", &script, "sh", &knockd, "-c", path, "--control", control];
    Daemon::spawn_program(&lab.server, "unshare", &args)
}

/// With no syslog socket, a daemon started without -D still says what happens: on stderr
/// (the journal when it runs), after one line that says so.
#[test]
fn without_a_syslog_socket_the_log_goes_to_stderr_said_once() {
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.yaml", DOOR);
    // /dev/log and the journal's socket, if the host has them, are not sockets.
    let hide = "for s in /dev/log /run/systemd/journal/socket; do [ -e $s ] && mount --bind /dev/null $s; done;";
    let daemon = in_mount_namespace(&lab, &config, hide);
    daemon.expect_log(log_lines::LISTENING, Duration::from_secs(20));
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000]);
    daemon.expect_log(&opened("ssh", CLIENT_V4, "22/tcp", secs(30)), WITHIN);
    let text = daemon.log_text();
    let notices: Vec<&str> = text.lines().filter(|l| l.contains("syslog is not available")).collect();
    assert_eq!(notices.len(), 1, "said once: {text}");
    assert!(notices[0].ends_with("logging to stderr instead"), "{text}");
}

/// With no syslog socket but a journal, lines go to the journal's own socket (here a socket of
/// the test's, mounted where journald's is, in a mount namespace of the daemon's own).
#[test]
fn without_a_syslog_socket_the_log_goes_to_the_journal_when_it_runs() {
    use std::os::unix::net::UnixDatagram;
    let lab = Lab::new();
    let config = ConfigFile::new("knockd.yaml", DOOR);
    let journal_path = config.path.with_file_name("journal.sock");
    let journal = UnixDatagram::bind(&journal_path).unwrap();
    std::fs::set_permissions(&journal_path, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    journal.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let setup = format!(
        "[ -e /dev/log ] && mount --bind /dev/null /dev/log; mount -t tmpfs tmpfs /run && \
         mkdir -p /run/systemd/journal && touch /run/systemd/journal/socket && \
         mount --bind {} /run/systemd/journal/socket &&",
        journal_path.display()
    );
    let daemon = in_mount_namespace(&lab, &config, &setup);
    let mut entries = Vec::new();
    let read = |entries: &mut Vec<String>| {
        let mut buf = [0u8; 4096];
        while let Ok(n) = journal.recv(&mut buf) {
            entries.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    };
    assert!(
        eventually(Duration::from_secs(20), || {
            read(&mut entries);
            entries.iter().any(|e| e.contains(&format!("MESSAGE={}", log_lines::LISTENING)))
        }),
        "{entries:?}\n{}",
        daemon.log_text()
    );
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000]);
    let open = opened("ssh", CLIENT_V4, "22/tcp", secs(30));
    let entry = format!("PRIORITY=6\nSYSLOG_IDENTIFIER=knockd\nSYSLOG_FACILITY=3\nMESSAGE={open}\n");
    assert!(
        eventually(WITHIN, || {
            read(&mut entries);
            entries.contains(&entry)
        }),
        "{entries:?}"
    );
    let text = daemon.log_text();
    let notices: Vec<&str> = text.lines().filter(|l| l.contains("syslog is not available")).collect();
    assert_eq!(notices.len(), 1, "said once: {text}");
    assert!(notices[0].ends_with("logging to the journal instead"), "{text}");
    assert!(!daemon.logged(log_lines::OPENED), "the journal, not stderr: {text}");
}

/// With a syslog daemon, lines reach `/dev/log` as syslog(3) writes them (`<30>Dec  6
/// 08:05:09 knockd[pid]: ...`, facility daemon), and nothing says syslog is missing. The
/// daemon's `/dev` is a directory of the test's, with a socket of the test's as `log`, in a
/// mount namespace of the daemon's own.
#[test]
fn with_a_syslog_socket_lines_go_there_as_syslog_3_writes_them() {
    use std::os::unix::net::UnixDatagram;
    let lab = Lab::new();
    let config = ConfigFile::new(
        "knockd.yaml",
        "doors:\n  ssh:\n    sequence: [7000, 8000]\n    open: {ports: [22], timeout: 30s}\n",
    );
    let socket_path = config.path.with_file_name("syslog.sock");
    let syslog = UnixDatagram::bind(&socket_path).unwrap();
    std::fs::set_permissions(&socket_path, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    syslog.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let dev = config.path.with_file_name("dev");
    let setup = format!(
        "d={dev}; mkdir -p $d && for n in null zero random urandom; do touch $d/$n && mount --bind /dev/$n $d/$n; done \
         && touch $d/log && mount --bind {socket} $d/log && mount --rbind $d /dev && exec \"$@\"",
        dev = dev.display(),
        socket = socket_path.display()
    );
    let control = config.control();
    let args = [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &setup,
        "sh",
        &knockd_path(),
        "-c",
        config.path.to_str().unwrap(),
        "--control",
        control.to_str().unwrap(),
    ];
    let daemon = Daemon::spawn_program(&lab.server, "unshare", &args);
    let mut lines = Vec::new();
    let read = |lines: &mut Vec<String>| {
        let mut buf = [0u8; 4096];
        while let Ok(n) = syslog.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    };
    let said = |lines: &mut Vec<String>, what: &str| {
        eventually(Duration::from_secs(20), || {
            read(lines);
            lines.iter().any(|l| l.contains(what))
        })
    };
    assert!(said(&mut lines, log_lines::LISTENING), "{lines:?}\n{}", daemon.log_text());
    knock(&lab.client, CLIENT_V4, SERVER_V4, 7000, Proto::Tcp);
    knock(&lab.client, CLIENT_V4, SERVER_V4, 8000, Proto::Tcp);
    let open = opened("ssh", CLIENT_V4, "22/tcp", secs(30));
    assert!(said(&mut lines, &format!("]: {open}")), "{lines:?}");
    let open = lines.iter().find(|l| l.ends_with(&open)).unwrap();
    // `<30>` is facility daemon (3), severity info (6); then `Mmm dd hh:mm:ss knockd[pid]: `.
    let (stamp, rest) = open.strip_prefix("<30>").expect(open).split_at("Dec  6 08:05:09".len());
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    assert!(months.iter().any(|m| stamp.starts_with(m)), "{open}");
    assert_eq!(stamp.as_bytes()[9], b':', "{open}");
    assert!(rest.starts_with(" knockd[") && rest.contains("]: ssh: "), "{open}");
    assert!(!daemon.log_text().contains("syslog is not available"), "{}", daemon.log_text());
}
