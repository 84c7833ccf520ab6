//! The fwknop figure of knockd-bench: fwknopd 2.6.10 (Debian's fwknop-server, its iptables
//! backend, its shipped defaults) and knockd on the same access.conf, each sent packets the
//! stock fwknop client built; SPA sent -> first accepted TCP connect, median of the trials.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use knockd::client::{self, Origin};

use crate::support::*;

/// fwknopd as Debian installs it.
pub const FWKNOPD: &str = "/usr/sbin/fwknopd";
pub const KEY: &str = "aK2BZ8AjOPhp0jccEbZvTtK53QHY91/Kq/fk3RW/iII=";
pub const HMAC_KEY: &str = "oexBgiCECuijnxbs1WGVYgziybEaV5p2Do4WguSColBAw6SpYSDGynkf/U26G7EjVGLrAUA8af2jNd7h89Iegw==";

/// Which server answers the packets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Fwknopd,
    Knockd,
}

/// A packet from the stock client (`-T -B`: built, not sent) opening tcp/22 for `src`.
fn client_packet(lab: &Lab, src: &str) -> Vec<u8> {
    let file = ConfigFile::new("spa.packet", "");
    let args = ["-A", "tcp/22", "-a", src, "-D", SERVER_V4, "-T", "-B", file.path.to_str().unwrap()];
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.client.0, "fwknop", "--no-rc-file", "--no-save-args", "--use-hmac"])
        .args(["--key-base64-rijndael", KEY, "--key-base64-hmac", HMAC_KEY])
        .args(args)
        .output()
        .expect("fwknop (apt-get install fwknop-client)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&file.path).unwrap().trim_ascii_end().to_vec()
}

/// What a server is started with: the access.conf text (in a file named `name`), the
/// fwknopd.conf text (knockd reads it beside the access.conf; fwknopd is given it, with its
/// interface and run directory added), other files beside them, and the ports to close
/// first for fwknopd (whose model is the host's own firewall dropping them).
pub struct Setup<'a> {
    pub name: &'a str,
    pub access: &'a str,
    pub fwknopd: &'a str,
    pub files: &'a [(&'a str, &'a str)],
    pub guard: &'a [u16],
}

fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Starts `server` in the lab on `setup`; keep the files while it runs. `None` (with its
/// output) when it did not start.
pub fn start_with(server: Server, lab: &Lab, setup: &Setup) -> Result<(Daemon, ConfigFile), String> {
    let access = ConfigFile::private(setup.name, "");
    let dir = access.path.parent().unwrap().to_owned();
    // `{DIR}`: the files' directory (fwknopd opens a relative include from where it runs).
    let here = |text: &str| text.replace("{DIR}", dir.to_str().unwrap());
    access.rewrite(&here(setup.access));
    for (name, text) in setup.files {
        write_private(&dir.join(name), &here(text));
    }
    let state = access.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    match server {
        Server::Knockd => {
            if !setup.fwknopd.is_empty() {
                write_private(&dir.join("fwknopd.conf"), setup.fwknopd);
            }
            let control = path(&access.control());
            let args =
                ["-c", &path(&access.path), "--state-dir", &path(&state), "-n", "-s", "-v", "--control", &control];
            let daemon = Daemon::spawn_program(&lab.server, &knockd_path(), &args);
            if !daemon.wait_log(log_lines::LISTENING, Duration::from_secs(20)) {
                return Err(daemon.log_text());
            }
            Ok((daemon, access))
        }
        Server::Fwknopd => {
            for port in setup.guard {
                let port = port.to_string();
                lab.server.run(|| cmd("iptables", &["-A", "INPUT", "-p", "tcp", "--dport", &port, "-j", "DROP"]));
            }
            let conf = dir.join("fwknopd.conf");
            let own = format!("PCAP_INTF {};\nFWKNOP_RUN_DIR {};\n", lab.server_if, path(&state));
            write_private(&conf, &format!("{}\n{own}", setup.fwknopd));
            let (digest, pid) = (state.join("digest.cache"), state.join("fwknopd.pid"));
            let args =
                ["-f", "-v", "-c", &path(&conf), "-a", &path(&access.path), "-d", &path(&digest), "-p", &path(&pid)];
            let mut daemon = Daemon::spawn_program(&lab.server, FWKNOPD, &args);
            // fwknopd says nothing when ready; its chain appearing is the sign.
            let ready = eventually(Duration::from_secs(10), || {
                daemon.wait_exit(Duration::ZERO).is_some()
                    || lab.server.run(|| cmd("iptables", &["-S"])).contains("FWKNOP_INPUT")
            });
            if !ready || daemon.wait_exit(Duration::ZERO).is_some() {
                return Err(daemon.log_text());
            }
            std::thread::sleep(Duration::from_millis(500));
            Ok((daemon, access))
        }
    }
}

/// Starts `server` in the lab with one stanza for tcp/22; keep the file while it runs.
fn start(server: Server, lab: &Lab) -> (Daemon, ConfigFile) {
    let access =
        format!("SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC_KEY}\nOPEN_PORTS tcp/22\nFW_ACCESS_TIMEOUT 60\n");
    let setup = Setup { name: "access.conf", access: &access, fwknopd: "", files: &[], guard: &[22] };
    start_with(server, lab, &setup).unwrap_or_else(|log| panic!("the server did not start:\n{log}"))
}

/// SPA sent -> first accepted connect, for `trials` sources; the median, and how many got in.
pub fn latency(server: Server, trials: usize) -> (Option<Duration>, usize) {
    let lab = Lab::with_sshd();
    let (_daemon, _file) = start(server, &lab);
    let target: IpAddr = SERVER_V4.parse().unwrap();
    let mut samples = Vec::new();
    for i in 0..trials {
        let src = format!("198.18.40.{}", i + 1);
        lab.add_client_addr(&format!("{src}/16"));
        let packet = client_packet(&lab, &src);
        let src_ip: IpAddr = src.parse().unwrap();
        let took = lab.client.run(|| {
            let origin = Origin { source: Some(src_ip), interface: None };
            client::send_datagram(target, 62201, &packet, &origin).unwrap();
            let started = Instant::now();
            // One SYN every 50 us until one is answered; bounded by 2 s.
            while started.elapsed() < Duration::from_secs(2) {
                if crate::try_connect(src_ip, SocketAddr::new(target, 22), Duration::from_micros(50)) {
                    return Some(started.elapsed());
                }
            }
            None
        });
        samples.extend(took);
    }
    samples.sort();
    let got_in = samples.len();
    ((got_in == trials).then(|| samples[got_in / 2]), got_in)
}
