//! The toolbox every file under tests/ shares (as mio's `tests/util`): a directory of its own
//! that goes away at the end, the files written into it, the binaries under test run, and
//! packets built with `knockd::packet::build` for an engine to take. Each test file declares
//! `mod util;` and uses its part; `util::fwknop` holds what the fwknop tests share.

#![allow(dead_code, unused_imports, reason = "each test file uses its own part")]

pub mod fwknop;
mod temp_dir;

pub use temp_dir::{TempDir, mode, set_mode};

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use knockd::config::{self, Commands, Config, Door, PortProto, Proof, TcpFlags};
use knockd::doors::Kinds;
use knockd::doors::sequence::FixedSequence;
use knockd::engine::Engine;
use knockd::grant::MemoryFirewall;
use knockd::grant::legacy_command::MemorySpawner;
use knockd::packet::Knock;

/// The daemon's binary, as cargo built it for these tests.
pub const KNOCKD: &str = env!("CARGO_BIN_EXE_knockd");

/// The client's binary.
pub const KNOCK: &str = env!("CARGO_BIN_EXE_knock");

/// A path in the source tree.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs `knockd ARGS` and waits for it.
pub fn knockd(args: &[&str]) -> Output {
    Command::new(KNOCKD).args(args).output().unwrap()
}

/// Runs `knock ARGS` and waits for it.
pub fn knock(args: &[&str]) -> Output {
    Command::new(KNOCK).args(args).output().unwrap()
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The proof of a fixed knock sequence, as a door read from a config file holds it.
pub fn fixed(sequence: &[PortProto]) -> Proof {
    Proof::new(FixedSequence(sequence.to_vec()))
}

/// A door named `name` that `sequence` opens, with the defaults a config file gives: a 5 s
/// sequence timeout, no flag filter, target or source lists, no grant and no commands. Tests
/// set what they are about with `Door { field, ..door(name, sequence) }`.
pub fn door(name: &str, sequence: &[PortProto]) -> Door {
    Door {
        name: name.into(),
        proofs: vec![fixed(sequence)],
        seq_timeout: std::time::Duration::from_secs(5),
        tcp_flags: TcpFlags::default(),
        target: None,
        from: Vec::new(),
        not_from: Vec::new(),
        open: None,
        commands: Commands::default(),
    }
}

/// The engine the tests drive: the whole packet path, with the in-memory firewall and command
/// runner in place of nftables and the shell.
pub type MemoryEngine = Engine<MemoryFirewall, MemorySpawner>;

/// An engine started on `config` with `firewall` (an empty one, or one set up to fail).
pub fn start_with(config: Config, firewall: MemoryFirewall) -> MemoryEngine {
    Engine::start(config, firewall, MemorySpawner::default()).unwrap()
}

/// An engine started on `config`.
pub fn start(config: Config) -> MemoryEngine {
    start_with(config, MemoryFirewall::default())
}

/// The config of the knockd.yaml text `yaml` (read as `test.yaml`), which must be valid.
pub fn parsed(yaml: &str) -> Config {
    config::yaml::parse("test.yaml", yaml, &Kinds).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// An engine started on the knockd.yaml text `yaml`.
pub fn engine(yaml: &str) -> MemoryEngine {
    start(parsed(yaml))
}

/// The host the packets below are sent to: 198.18.0.1, or 2001:db8::1 for an IPv6 source.
pub fn host_for(src: IpAddr) -> IpAddr {
    if src.is_ipv4() { "198.18.0.1".parse().unwrap() } else { "2001:db8::1".parse().unwrap() }
}

/// A knock on `port` from `src` to this host: a TCP SYN, or an empty UDP datagram.
pub fn knock_on(src: &str, port: PortProto) -> Vec<u8> {
    let src: IpAddr = src.parse().unwrap();
    Knock::on(src, host_for(src), port).emit()
}

/// A TCP SYN from `src` to this host's `port`.
pub fn tcp_syn(src: &str, port: u16) -> Vec<u8> {
    knock_on(src, PortProto::tcp(port))
}

/// A UDP datagram from `src` to this host's `port`, carrying `payload`.
pub fn udp(src: &str, port: u16, payload: &[u8]) -> Vec<u8> {
    let src: IpAddr = src.parse().unwrap();
    Knock::udp(src, host_for(src), port, payload).emit()
}
