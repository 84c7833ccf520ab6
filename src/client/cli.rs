//! The `knock` client's command line (clap), in the library so that its man page and shell
//! completions are generated from the very same definitions (`crate::cli` re-exports it). It
//! lives with the client: the client sends knocks, rotating sequences and SPA datagrams by name.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

/// Port-knock client: sends one TCP SYN or one UDP datagram to each port, in order; or the
/// current rotating sequence of a door; or one single-packet authorization datagram.
#[derive(Parser, Debug)]
#[command(name = "knock", version)]
pub struct KnockCli {
    /// Host to knock on (a name is resolved once, before the first hit).
    #[arg(required_unless_present = "spa_keygen")]
    pub host: Option<String>,
    /// Ports to hit, in order: 7000, 7000:udp, or a service name like ssh; several may be
    /// given in one argument, separated by commas (7000,8000,9000).
    #[arg(value_name = "PORT[:PROTO]", required_unless_present_any = ["secret_file", "spa", "spa_keygen"])]
    pub ports: Vec<String>,
    /// Knock the door's current rotating sequence, derived from this secret file.
    #[arg(long = "secret-file", value_name = "FILE", requires = "door", conflicts_with_all = ["ports", "spa"])]
    pub secret_file: Option<PathBuf>,
    /// The door to knock on (rotating sequences and SPA are per door).
    #[arg(long = "door", value_name = "NAME")]
    pub door: Option<String>,
    /// Rotating sequence: its step, as in the door's config.
    #[arg(long = "step", value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub step: std::time::Duration,
    /// Rotating sequence: its length (2 to 8), as in the door's config.
    #[arg(long = "length", value_name = "N", default_value_t = 4)]
    pub length: usize,
    /// Rotating sequence: its port range, as in the door's config.
    #[arg(long = "port-range", value_name = "LOW-HIGH", default_value = "20000-40000")]
    pub port_range: String,
    /// Send one single-packet authorization datagram instead of knocks (needs --key, --door).
    #[arg(long = "spa", requires_all = ["key", "door"], conflicts_with = "ports")]
    pub spa: bool,
    /// SPA key: an Ed25519 secret key file (from --spa-keygen) or an HMAC shared secret file.
    #[arg(long = "key", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// SPA: the door's SPA port.
    #[arg(long = "spa-port", value_name = "PORT", default_value_t = 62201)]
    pub spa_port: u16,
    /// SPA: ask the door to open for this address instead of the packet's source (behind NAT).
    #[arg(long = "spa-address", value_name = "ADDR")]
    pub spa_address: Option<IpAddr>,
    /// Write a new Ed25519 key pair: FILE (secret, for --key) and FILE.pub (for the server).
    #[arg(long = "spa-keygen", value_name = "FILE", exclusive = true)]
    pub spa_keygen: Option<PathBuf>,
    /// Make every hit UDP unless it names its protocol.
    #[arg(short = 'u', long = "udp")]
    pub udp: bool,
    /// Milliseconds to wait between hits.
    #[arg(short = 'd', long = "delay", value_name = "MS", default_value_t = 0, allow_negative_numbers = true, value_parser = delay)]
    pub delay: u64,
    /// Use IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Print each hit.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Send from this local address.
    #[arg(long = "source", value_name = "ADDR")]
    pub source: Option<IpAddr>,
    /// Send through this interface.
    #[arg(long = "interface", value_name = "NAME")]
    pub interface: Option<String>,
    /// After knocking, wait until this TCP port accepts a connection; exit 1 if it does not.
    #[arg(long = "wait-open", value_name = "PORT[:tcp]")]
    pub wait_open: Option<String>,
    /// How long --wait-open tries.
    #[arg(long = "wait-timeout", value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub wait_timeout: u64,
}

fn delay(text: &str) -> Result<u64, String> {
    match text.parse::<i64>() {
        Ok(ms) if ms < 0 => Err("the delay cannot be negative".into()),
        Ok(ms) if ms > 60_000 => Err("the delay is at most 60000 ms".into()),
        Ok(ms) => Ok(ms as u64),
        Err(_) => Err(format!("`{text}` is not a number of milliseconds")),
    }
}
