//! The real `knockd` binary, started inside a test namespace with its log captured.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::lab::Netns;

/// The knockd binary under test: cargo tells integration tests; the benchmark, built as a
/// binary beside it, finds it in its own directory.
pub fn knockd_path() -> String {
    option_env!("CARGO_BIN_EXE_knockd")
        .map(String::from)
        .unwrap_or_else(|| std::env::current_exe().expect("own path").with_file_name("knockd").display().to_string())
}

/// A config file in a temporary directory of its own, removed on drop.
pub struct ConfigFile {
    dir: PathBuf,
    pub path: PathBuf,
}

impl ConfigFile {
    pub fn new(name: &str, text: &str) -> ConfigFile {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("knockd-it-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let file = ConfigFile { dir, path };
        file.rewrite(text);
        file
    }

    /// A file only its owner can read (a secret, an access.conf with keys).
    pub fn private(name: &str, text: &str) -> ConfigFile {
        use std::os::unix::fs::PermissionsExt;
        let file = ConfigFile::new(name, text);
        std::fs::set_permissions(&file.path, std::fs::Permissions::from_mode(0o600)).unwrap();
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

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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
        if !daemon.wait_log("listening on", Duration::from_secs(20)) {
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

    /// Whether a log line containing `needle` appears within `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
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
        crate::lab::eventually(Duration::from_secs(10), || self.log_text().matches("counters:").count() > before);
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

/// One counter's value in a `counters:` line (`opens=3`).
pub fn counter(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace().find_map(|f| f.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}
