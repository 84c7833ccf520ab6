//! `knock`: send a port-knock sequence. The command-line edge of `knockd::client`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use knockd::client::{self, ClientError, Family, Origin};
use knockd::config::Proto;

/// Port-knock client: sends one TCP SYN or one UDP datagram to each port, in order.
#[derive(Parser, Debug)]
#[command(name = "knock", version)]
struct Cli {
    /// Host to knock on (a name is resolved once, before the first hit).
    host: String,
    /// Ports to hit, in order: 7000, 7000:udp, or a service name like ssh.
    #[arg(required = true, value_name = "PORT[:PROTO]")]
    ports: Vec<String>,
    /// Make every hit UDP unless it names its protocol.
    #[arg(short = 'u', long = "udp")]
    udp: bool,
    /// Milliseconds to wait between hits.
    #[arg(short = 'd', long = "delay", value_name = "MS", default_value_t = 0, allow_negative_numbers = true, value_parser = delay)]
    delay: u64,
    /// Use IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
    /// Print each hit.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Send from this local address.
    #[arg(long = "source", value_name = "ADDR")]
    source: Option<std::net::IpAddr>,
    /// Send through this interface.
    #[arg(long = "interface", value_name = "NAME")]
    interface: Option<String>,
    /// After knocking, wait until this TCP port accepts a connection; exit 1 if it does not.
    #[arg(long = "wait-open", value_name = "PORT[:tcp]")]
    wait_open: Option<String>,
    /// How long --wait-open tries.
    #[arg(long = "wait-timeout", value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    wait_timeout: u64,
}

fn delay(text: &str) -> Result<u64, String> {
    match text.parse::<i64>() {
        Ok(ms) if ms < 0 => Err("the delay cannot be negative".into()),
        Ok(ms) if ms > 60_000 => Err("the delay is at most 60000 ms".into()),
        Ok(ms) => Ok(ms as u64),
        Err(_) => Err(format!("`{text}` is not a number of milliseconds")),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("knock: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), ClientError> {
    // Everything the user typed is checked before anything is sent.
    let hits = cli.ports.iter().map(|p| client::parse_hit(p, cli.udp)).collect::<Result<Vec<_>, _>>()?;
    let wait = match &cli.wait_open {
        Some(text) => {
            let port = client::parse_hit(text, false)?;
            if port.proto != Proto::Tcp {
                return Err(ClientError::Usage(format!("--wait-open {text}: only a TCP port can be waited for")));
            }
            Some(port.port)
        }
        None => None,
    };
    let family = match (cli.ipv4, cli.ipv6, cli.source) {
        (true, _, _) => Family::V4,
        (_, true, _) => Family::V6,
        (_, _, Some(source)) if source.is_ipv6() => Family::V6,
        (_, _, Some(_)) => Family::V4,
        _ => Family::Any,
    };
    if let Some(source) = cli.source {
        if (family == Family::V4) != source.is_ipv4() {
            return Err(ClientError::Usage(format!("--source {source} is not of the address family asked for")));
        }
    }
    let target = client::resolve(&cli.host, family)?;
    let origin = Origin { source: cli.source, interface: cli.interface };
    for (i, hit) in hits.iter().enumerate() {
        if i > 0 && cli.delay > 0 {
            std::thread::sleep(Duration::from_millis(cli.delay));
        }
        if cli.verbose {
            println!("hitting {} {}", hit.proto, SocketAddr::new(target, hit.port));
        }
        client::send_hit(target, *hit, &origin)?;
    }
    if let Some(port) = wait {
        let to = SocketAddr::new(target, port);
        let within = Duration::from_secs(cli.wait_timeout);
        if !client::wait_open(to, &origin, within) {
            return Err(ClientError::NotOpen { target: to, within });
        }
        if cli.verbose {
            println!("{to} is open");
        }
    }
    Ok(())
}
