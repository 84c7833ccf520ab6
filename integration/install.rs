//! The installed daemon as systemd and an admin start it: the unit's `ExecStart` with
//! `KNOCKD_OPTS` from /etc/default/knockd, and the config-file rule (`-c`, else
//! /etc/knockd.yaml if it exists, else /etc/knockd.conf) for the daemon, `check` and `status`,
//! run against a private /etc (an overlay in a mount namespace of the test's own).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(5);

const DOOR: &str = "doors:\n  ssh:\n    sequence: [7000, 8000]\n    open: {ports: [22], timeout: 30s}\n";

/// `scripts/install --prefix ROOT/usr/local` with the binaries under test; the prefix.
fn install(root: &Path) -> PathBuf {
    let prefix = root.join("usr/local");
    let binaries = Path::new(&knockd_path()).parent().unwrap().to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install");
    let out = Command::new(script).arg("--prefix").arg(&prefix).arg("--binaries").arg(binaries).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    prefix
}

/// `KEY=value` and `KEY="value"` lines of an EnvironmentFile, as systemd reads the simple ones.
fn environment(text: &str) -> Vec<(String, String)> {
    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    lines.filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned())).collect()
}

/// The unit's command line for this environment: an unbraced `$VAR` becomes the variable's
/// words, as systemd.service(5) says.
fn command_line(exec_start: &str, env: &[(String, String)]) -> Vec<String> {
    let mut words = Vec::new();
    for word in exec_start.split_whitespace() {
        match word.strip_prefix('$').and_then(|name| env.iter().find(|(k, _)| k == name)) {
            Some((_, value)) => words.extend(value.split_whitespace().map(str::to_owned)),
            None if word.starts_with('$') => {}
            None => words.push(word.to_owned()),
        }
    }
    words
}

#[test]
fn the_unit_runs_the_installed_daemon_with_knockd_opts_from_etc_default_knockd() {
    let lab = Lab::with_sshd();
    let config = ConfigFile::new("knockd.yaml", DOOR);
    let prefix = install(&config.path.with_file_name("root"));
    let unit = std::fs::read_to_string(prefix.join("lib/systemd/system/knockd.service")).unwrap();
    let setting = |key: &str| unit.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("{key}"));
    assert_eq!(setting("EnvironmentFile="), "-/etc/default/knockd");
    // The classic Debian file, with options set: an interface, the config, and the classic
    // `-l` (lookup) and `-d` (which systemd does not want).
    let control = config.control();
    let default = format!(
        "# control if we start knockd at init or not\nSTART_KNOCKD=0\n\n# command line options\n\
         KNOCKD_OPTS=\"-i {} -c {} --control {} -l -d\"\n",
        lab.server_if,
        config.path.display(),
        control.display()
    );
    let words = command_line(setting("ExecStart="), &environment(&default));
    assert_eq!(words[0], prefix.join("sbin/knockd").display().to_string());
    let notify_path = config.path.with_file_name("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    std::fs::set_permissions(&notify_path, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut args = vec!["netns", "exec", &lab.server.0];
    args.extend(words.iter().map(String::as_str));
    let child = Command::new("ip")
        .args(&args)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("JOURNAL_STREAM", "8:12345")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut daemon = crate::ops::KillOnDrop(child);
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).expect("READY within 10 s");
    assert_eq!(&buf[..n], b"READY=1\n");
    assert!(daemon.try_wait().unwrap().is_none(), "-d did not fork away from systemd");
    knock_tcp(&lab, CLIENT_V4, SERVER_V4, &[7000, 8000]);
    let ssh = ssh_v4();
    assert!(connects_within(&lab.client, CLIENT_V4, ssh, WITHIN), "the door opened");
    assert!(is_dropped(&lab.client, OTHER_V4, ssh, Duration::from_millis(700)), "strangers stay out");
    // SAFETY: signalling our own child (ip netns exec replaced itself with knockd).
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    assert!(daemon.wait().unwrap().success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut daemon.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("-d is ignored under systemd"), "{stderr}");
    let listening = log_lines::listening(&lab.server_if, 1, &config.path, None);
    assert!(stderr.contains(&listening), "{stderr}");
}

/// `unshare`'s arguments that run knockd with /etc overlaid by `upper`'s files (a character
/// device 0/0 there hides a file of the real /etc), in a mount namespace of its own.
fn private_etc(upper: &Path) -> Vec<String> {
    let work = upper.with_file_name("work");
    std::fs::create_dir_all(&work).unwrap();
    let mount = format!(
        "mount -t overlay overlay -o lowerdir=/etc,upperdir={},workdir={} /etc && exec \"$@\"",
        upper.display(),
        work.display()
    );
    ["-m", "--propagation", "private", "sh", "-c", &mount, "sh", &knockd_path()].map(String::from).to_vec()
}

/// `knockd ARGS` in the lab's server namespace, with the private /etc.
fn with_etc(lab: &Lab, upper: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", &lab.server.0, "unshare"]).args(private_etc(upper)).args(args);
    command
}

fn stdout_of(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn without_c_every_command_reads_etc_knockd_yaml_else_etc_knockd_conf() {
    let lab = Lab::new();
    let dir = ConfigFile::new("unused", "");
    let upper = dir.path.with_file_name("etc");
    std::fs::create_dir_all(&upper).unwrap();
    let state = dir.path.with_file_name("state");
    std::fs::write(upper.join("knockd.conf"), "[classic]\nsequence = 7100\ncommand = true\n").unwrap();
    cmd("mknod", &[upper.join("knockd.yaml").to_str().unwrap(), "c", "0", "0"]);
    let check = stdout_of(&with_etc(&lab, &upper, &["check"]).env_remove("SSH_CONNECTION").output().unwrap());
    assert!(check.starts_with("/etc/knockd.conf: valid, 1 door(s)"), "{check}");

    std::fs::remove_file(upper.join("knockd.yaml")).unwrap();
    std::fs::write(upper.join("knockd.yaml"), format!("{DOOR}state_dir: {}\n", state.display())).unwrap();
    let check = stdout_of(&with_etc(&lab, &upper, &["check"]).env_remove("SSH_CONNECTION").output().unwrap());
    assert!(check.starts_with("/etc/knockd.yaml: valid, 1 door(s)"), "both there: the YAML\n{check}");
    assert!(check.contains("warning: /etc/knockd.conf is there too and is not read"), "{check}");
    let control = dir.control();
    let control = control.to_str().unwrap();
    let status = stdout_of(&with_etc(&lab, &upper, &["status", "--control", control]).output().unwrap());
    assert!(status.contains("grants read from the kernel for the doors of /etc/knockd.yaml"), "{status}");

    let mut args = private_etc(&upper);
    args.extend(["-D", "--control", control].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Daemon::spawn_program(&lab.server, "unshare", &args);
    // main.rs's words for no -i.
    let listening = log_lines::listening("all interfaces", 1, "/etc/knockd.yaml".as_ref(), None);
    daemon.expect_log(&listening, Duration::from_secs(20));
    let status = stdout_of(&with_etc(&lab, &upper, &["status", "--control", control]).output().unwrap());
    assert!(status.contains(&format!("knockd (pid {}) runs /etc/knockd.yaml", daemon.pid())), "{status}");
}
