//! `knock`: send a port-knock sequence. The command-line edge of `knockd::client`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use knockd::cli::KnockCli as Cli;

use knockd::client::{self, ClientError, Family, Origin};
use knockd::config::Proto;

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
