//! The real `knockd` binary, started inside a test namespace with its log captured.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use knockd::log_lines::LISTENING;

use super::lab::{Lab, Netns};
use super::lines::{fits, shown};
use super::temp_dir::{TempDir, set_mode};

/// The knockd binary under test: cargo tells integration tests; the benchmark, built as a
/// binary beside it, finds it in its own directory.
pub fn knockd_path() -> String {
    option_env!("CARGO_BIN_EXE_knockd")
        .map(String::from)
        .unwrap_or_else(|| std::env::current_exe().expect("own path").with_file_name("knockd").display().to_string())
}

/// The client under test, found as [`knockd_path`] finds the daemon.
pub fn knock_path() -> String {
    option_env!("CARGO_BIN_EXE_knock")
        .map(String::from)
        .unwrap_or_else(|| std::env::current_exe().expect("own path").with_file_name("knock").display().to_string())
}

/// `knock ARGS` run in the client namespace, as a user runs it.
pub fn knock_client(client: &Netns, args: &[&str]) -> Output {
    Command::new("ip").args(["netns", "exec", &client.0, &knock_path()]).args(args).output().unwrap()
}

/// Writes an Ed25519 key pair `name` and `name.pub` beside `file` with the client, as a user
/// makes one (`knock --spa-keygen`); the secret key's path.
pub fn spa_keygen(file: &ConfigFile, name: &str) -> PathBuf {
    let secret = file.path.with_file_name(name);
    let out = Command::new(knock_path()).arg("--spa-keygen").arg(&secret).output().unwrap();
    assert!(out.status.success(), "knock --spa-keygen: {}", String::from_utf8_lossy(&out.stderr));
    secret
}

/// A config file in a temporary directory of its own, removed on drop.
pub struct ConfigFile {
    dir: TempDir,
    pub path: PathBuf,
}

impl ConfigFile {
    pub fn new(name: &str, text: &str) -> ConfigFile {
        let dir = TempDir::new("it");
        let path = dir.join(name);
        let file = ConfigFile { dir, path };
        file.rewrite(text);
        file
    }

    /// A file only its owner can read (a secret, an access.conf with keys).
    pub fn private(name: &str, text: &str) -> ConfigFile {
        let file = ConfigFile::new(name, text);
        set_mode(&file.path, 0o600);
        file
    }

    /// Replaces the file's text. A YAML config that names no `state_dir` gets one of its own
    /// beside it: tests run in parallel, and the host's /var/lib/knockd is not theirs.
    pub fn rewrite(&self, text: &str) {
        let yaml = self.path.extension().is_some_and(|e| e == "yaml") && text.contains("doors:");
        let text = if yaml && !text.contains("state_dir:") {
            // Appended, so that line numbers in error messages stay those of the test's text.
            format!("{}\nstate_dir: {}\n", text.trim_end_matches('\n'), self.state_dir().display())
        } else {
            text.to_owned()
        };
        std::fs::write(&self.path, text).unwrap();
    }

    /// The file's text as it is now (a YAML config's with its `state_dir`).
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }

    /// Writes `name` beside the config (folders made as needed); its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        self.dir.write(name, text)
    }

    /// The same, mode 600, as a file with keys is.
    pub fn write_private(&self, name: &str, text: &str) -> PathBuf {
        self.dir.write_private(name, text)
    }

    /// The control socket of a daemon started with this config: tests run in parallel, and
    /// /run/knockd is not theirs.
    pub fn control(&self) -> PathBuf {
        self.dir.join("control")
    }

    /// Where a daemon started with this config keeps its state.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }
}

/// A running daemon. Dropping it kills it.
pub struct Daemon {
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `knockd -D -c <config> <extra...>` in `ns` and waits until it is listening.
    pub fn start(ns: &Netns, config: &ConfigFile, extra: &[&str]) -> Daemon {
        let daemon = Daemon::spawn(ns, config, extra);
        if !daemon.wait_log(LISTENING, Duration::from_secs(20)) {
            panic!("knockd did not start:\n{}", daemon.log_text());
        }
        daemon
    }

    /// Starts it without waiting; for tests of start-up failures.
    pub fn spawn(ns: &Netns, config: &ConfigFile, extra: &[&str]) -> Daemon {
        let control = config.control();
        let mut args = vec!["-D", "-c", config.path.to_str().unwrap(), "--control", control.to_str().unwrap()];
        args.extend_from_slice(extra);
        Daemon::spawn_program(ns, &knockd_path(), &args)
    }

    /// Starts any program in `ns` with its output captured (the benchmark runs the classic
    /// knockd this way, and ours without `-D`).
    pub fn spawn_program(ns: &Netns, program: &str, program_args: &[&str]) -> Daemon {
        let mut args = vec!["netns", "exec", &ns.0, program];
        args.extend_from_slice(program_args);
        let mut child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn knockd");
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        Daemon { child: Some(child), log }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Whether a log line that fits `pattern` (a line of `log_lines`, or a part of one: see
    /// [`super::lines`]) appears within `timeout`.
    pub fn wait_log(&self, pattern: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.logged(pattern) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The same as an assertion: a failure shows what was awaited and the whole log.
    pub fn expect_log(&self, pattern: &str, timeout: Duration) {
        assert!(self.wait_log(pattern, timeout), "no `{}` in the log:\n{}", shown(pattern), self.log_text());
    }

    /// Whether a line that fits `pattern` has been logged so far.
    pub fn logged(&self, pattern: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| fits(l, pattern))
    }

    /// How many lines that fit `pattern` have been logged so far.
    pub fn count(&self, pattern: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| fits(l, pattern)).count()
    }

    /// The first line that fits `pattern`, once one is logged within `timeout`.
    pub fn line_with(&self, pattern: &str, timeout: Duration) -> String {
        self.expect_log(pattern, timeout);
        self.log.lock().unwrap().iter().find(|l| fits(l, pattern)).cloned().unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// Asks for the counters with SIGUSR1 and returns the `counters:` line it logs (empty if
    /// none comes within 10 s).
    pub fn counters(&self) -> String {
        let before = self.log_text().matches("counters:").count();
        self.signal(libc::SIGUSR1);
        super::user::eventually(Duration::from_secs(10), || self.log_text().matches("counters:").count() > before);
        let log = self.log_text();
        log.lines().rev().find(|l| l.contains("counters:")).unwrap_or("").to_owned()
    }

    /// Waits up to `timeout` for the daemon to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let status = self
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("knockd ignored SIGTERM:\n{}", self.log_text()));
        self.child = None;
        status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Lab {
    /// knockd started in the server on `yaml`, a knockd.yaml of its own: the file and the
    /// daemon.
    pub fn knockd(&self, yaml: &str) -> (ConfigFile, Daemon) {
        self.knockd_on("knockd.yaml", yaml)
    }

    /// The same on a classic knockd.conf.
    pub fn knockd_conf(&self, conf: &str) -> (ConfigFile, Daemon) {
        self.knockd_on("knockd.conf", conf)
    }

    /// knockd started on a knockd.yaml whose commands write to a file of their own (empty at
    /// first): `{out}` in `yaml` stands for the file's path, so the door's text stays in the
    /// test as the admin writes it. The file (what the commands did), the config and the daemon.
    pub fn knockd_writing(&self, yaml: &str) -> (ConfigFile, ConfigFile, Daemon) {
        self.writing("knockd.yaml", yaml)
    }

    /// The same on a classic knockd.conf.
    pub fn knockd_conf_writing(&self, conf: &str) -> (ConfigFile, ConfigFile, Daemon) {
        self.writing("knockd.conf", conf)
    }

    fn writing(&self, name: &str, text: &str) -> (ConfigFile, ConfigFile, Daemon) {
        assert!(text.contains("{out}"), "no command of this config writes to {{out}}:\n{text}");
        let out = ConfigFile::new("out", "");
        let (config, daemon) = self.knockd_on(name, &text.replace("{out}", out.path.to_str().unwrap()));
        (out, config, daemon)
    }

    fn knockd_on(&self, name: &str, text: &str) -> (ConfigFile, Daemon) {
        let config = ConfigFile::new(name, text);
        let daemon = Daemon::start(&self.server, &config, &[]);
        (config, daemon)
    }
}

/// `knockd ARGS --control <config's socket>` run in `ns`: an admin asking the daemon that runs
/// on `config`.
pub fn admin(ns: &Netns, config: &ConfigFile, args: &[&str]) -> Output {
    let control = config.control();
    Command::new("ip")
        .args(["netns", "exec", &ns.0, &knockd_path()])
        .args(args)
        .args(["--control", control.to_str().unwrap()])
        .output()
        .unwrap()
}

/// The same for a request that must succeed: its stdout (else a panic with its output).
pub fn ask(ns: &Netns, config: &ConfigFile, args: &[&str]) -> String {
    let out = admin(ns, config, args);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(out.status.success(), "knockd {}: {}{}", args.join(" "), text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// `knockd check -c <config>` run in `ns`, as an admin checks a config on the host it is for.
pub fn knockd_check(ns: &Netns, config: &Path) -> Output {
    ns.run(|| Command::new(knockd_path()).arg("check").arg("-c").arg(config).output().unwrap())
}

/// What a command printed: its stdout, then its stderr.
pub fn printed(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// One counter's value in a `counters:` line (`opens=3`).
pub fn counter(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace().find_map(|f| f.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}
