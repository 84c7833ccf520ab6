//! Test hosts: two network namespaces joined by a veth pair, removed again when dropped
//! (also when a test panics). Names carry the PID and a counter, so runs and tests in parallel
//! never collide, and nothing in the machine's own namespace is touched.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SERVER_V4: &str = "198.18.0.1";
pub const CLIENT_V4: &str = "198.18.0.2";
/// A second address on the client, to show that only the knocking address gets in.
pub const OTHER_V4: &str = "198.18.0.3";
pub const SERVER_V6: &str = "2001:db8::1";
pub const CLIENT_V6: &str = "2001:db8::2";
pub const OTHER_V6: &str = "2001:db8::3";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A ruleset of tests/fixtures/rulesets (a firewalld, fw4 or drop-policy host), for `nft -f`.
pub fn ruleset(name: &str) -> String {
    format!("{}/tests/fixtures/rulesets/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// One of nft-templates/, the rulesets an admin starts from.
pub fn template(name: &str) -> String {
    format!("{}/nft-templates/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Fails loudly, never skips: these tests only mean something as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "integration tests need root (run integration/test, or .ci/run)");
}

/// Runs a command and returns its stdout; panics with its stderr if it fails.
pub fn cmd(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace by name.
#[derive(Clone)]
pub struct Netns(pub String);

impl Netns {
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.0];
        all.extend_from_slice(args);
        cmd("ip", &all)
    }

    /// Runs `nft` inside the namespace (tests inspect with it; the daemon never runs it).
    pub fn nft(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.0, "nft"];
        all.extend_from_slice(args);
        cmd("ip", &all)
    }

    /// The elements of one of the daemon's sets, as nft prints them (empty when there are none).
    pub fn set_elements(&self, table: &str, set: &str) -> String {
        let listing = self.nft(&["list", "set", "inet", table, set]);
        listing.lines().filter(|l| l.contains("elements") || l.starts_with("\t\t\t")).collect::<Vec<_>>().join("\n")
    }

    /// Runs `f` on a thread that has entered this namespace; sockets made there stay in it.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                // SAFETY: `ns` is an open namespace file; setns only affects this thread.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
                f()
            })
            .join()
            .expect("namespace thread panicked")
        })
    }
}

/// Two namespaces, `server` and `client`, joined by a veth pair.
pub struct Lab {
    pub server: Netns,
    pub client: Netns,
    pub server_if: String,
    pub client_if: String,
    /// Services that run in the server for as long as the lab does (the stand-in sshd).
    services: Vec<Echo>,
}

impl Lab {
    pub fn new() -> Lab {
        require_root();
        let id = format!("{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let lab = Lab {
            server: Netns(format!("knockd-s{id}")),
            client: Netns(format!("knockd-c{id}")),
            server_if: format!("ks{id}"),
            client_if: format!("kc{id}"),
            services: Vec::new(),
        };
        assert!(lab.server_if.len() <= 15, "interface name too long: {}", lab.server_if);
        // Drop removes whatever exists, so a failure half-way still cleans up.
        cmd("ip", &["netns", "add", &lab.server.0]);
        cmd("ip", &["netns", "add", &lab.client.0]);
        lab.server.ip(&["link", "set", "lo", "up"]);
        lab.client.ip(&["link", "set", "lo", "up"]);
        lab.link();
        lab
    }

    /// Creates the veth pair with its addresses (again, after it was deleted: the interfaces
    /// come back with new indexes).
    pub fn link(&self) {
        let (server, client) = (&self.server, &self.client);
        let args =
            ["link", "add", &self.server_if, "netns", &server.0, "type", "veth", "peer", "name", &self.client_if];
        cmd("ip", &[&args[..], &["netns", &client.0]].concat());
        for (ns, dev, addrs) in [
            (server, &self.server_if, [format!("{SERVER_V4}/16"), format!("{SERVER_V6}/64")]),
            (client, &self.client_if, [format!("{CLIENT_V4}/16"), format!("{CLIENT_V6}/64")]),
        ] {
            for addr in addrs {
                ns.ip(&["addr", "add", &addr, "dev", dev, "nodad"]);
            }
            ns.ip(&["link", "set", dev, "up"]);
        }
        self.add_client_addr(&format!("{OTHER_V4}/16"));
        self.add_client_addr(&format!("{OTHER_V6}/64"));
    }

    /// Deletes the veth pair (both ends go together).
    pub fn unlink(&self) {
        self.server.ip(&["link", "del", &self.server_if]);
    }

    /// The server end's MAC address, for frames sent straight to it.
    pub fn server_mac(&self) -> [u8; 6] {
        let text = self.server.ip(&["-o", "link", "show", &self.server_if]);
        let mac = text.split("link/ether ").nth(1).and_then(|r| r.split_whitespace().next()).expect("a MAC address");
        let bytes: Vec<u8> = mac.split(':').map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
        bytes.try_into().unwrap()
    }

    /// Adds another source address to the client side (`198.18.1.7/16`, `2001:db8::7/64`).
    pub fn add_client_addr(&self, cidr: &str) {
        self.client.ip(&["addr", "add", cidr, "dev", &self.client_if, "nodad"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.services.clear();
        // Deleting a namespace deletes its end of the veth pair, and with it the other end.
        for ns in [&self.server, &self.client] {
            ns.forget_run_files();
            let _ = Command::new("ip").args(["netns", "del", &ns.0]).status();
        }
    }
}

impl Netns {
    /// Removes the files daemons of this namespace keep in the host's /run/knockd (table locks,
    /// default control sockets: their names end in the namespace's number), which a daemon
    /// that was killed, or had left root, could not remove itself.
    fn forget_run_files(&self) {
        use std::os::unix::fs::MetadataExt;
        let Ok(namespace) = std::fs::metadata(format!("/run/netns/{}", self.0)).map(|m| m.ino()) else { return };
        let tag = format!(".net{namespace}");
        for entry in std::fs::read_dir("/run/knockd").into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(&tag) || name.ends_with(&format!("{tag}.lock")) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A TCP echo service on the server, standing in for sshd.
pub struct Echo {
    stop: Arc<Mutex<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Echo {
    /// An echo service on `addr` in `ns`.
    pub fn start(ns: &Netns, addr: SocketAddr) -> Echo {
        let listener = ns.run(|| TcpListener::bind(addr)).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(Mutex::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !*flag.lock().unwrap() {
                match listener.accept() {
                    Ok((stream, _)) => {
                        std::thread::spawn(move || echo(stream));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Echo { stop, thread: Some(thread) }
    }
}

impl Lab {
    /// A stand-in sshd: the echo service on port 22 of the server, over IPv4 and IPv6.
    pub fn sshd(&self) -> Echo {
        Echo::start(&self.server, "[::]:22".parse().unwrap())
    }

    /// A lab whose server runs the stand-in sshd for as long as the lab lives: what a door that
    /// opens port 22 is tested against.
    pub fn with_sshd() -> Lab {
        let mut lab = Lab::new();
        let sshd = lab.sshd();
        lab.services.push(sshd);
        lab
    }
}

fn echo(mut stream: TcpStream) {
    use std::io::{Read, Write};
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 256];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || stream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        *self.stop.lock().unwrap() = true;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A numeric field of /proc/<pid>/status (`VmRSS:` in KiB, say); 0 if it cannot be read.
pub fn proc_status(pid: i32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

/// CPU time (user + system) a process has used so far, from /proc/PID/stat.
pub fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Makes sure the system user `knockd` exists, as the Debian package's postinst does: the
/// daemon leaves root for it when no door needs root. Created once, never removed (other
/// tests may be running as it).
pub fn ensure_knockd_user() -> (u32, u32) {
    let id = |flag: &str| Command::new("id").args([flag, "knockd"]).output().ok().filter(|o| o.status.success());
    if id("-u").is_none() {
        let status = Command::new("useradd")
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
            .arg("knockd")
            .status()
            .expect("useradd");
        // 9: created meanwhile by a test running in parallel.
        assert!(status.success() || status.code() == Some(9), "useradd knockd: {status}");
    }
    let number = |flag: &str| String::from_utf8_lossy(&id(flag).expect("id").stdout).trim().parse().unwrap();
    (number("-u"), number("-g"))
}
