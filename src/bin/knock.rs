//! `knock`: send a port-knock sequence. The command-line edge of `knockd::client`.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use knockd::cli::KnockCli as Cli;

use knockd::client::{self, ClientError, Family, Origin};
use knockd::config::{PortProto, Proto, check_identifier};
use knockd::daemon::clock::unix_now;
use knockd::doors::sequence::rotating;
use knockd::doors::sequence::{ROTATING_MAX_LENGTH, Rotating};
use knockd::doors::spa;

fn main() -> ExitCode {
    knockd::cli::pipe::end_quietly_when_the_reader_leaves();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("knock: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), ClientError> {
    if let Some(path) = &cli.spa_keygen {
        let public =
            client::keygen::generate(path).map_err(|e| usage(format!("--spa-keygen {}: {e}", path.display())))?;
        println!(
            "wrote {} (the secret key: keep it, use it with --key) and {} (for the door's public_keys)",
            path.display(),
            public.display()
        );
        return Ok(());
    }
    let host = cli.host.clone().expect("clap requires a host");
    if let Some(door) = &cli.door {
        check_identifier(door, 32).map_err(|e| usage(format!("--door: {e}")))?;
    }
    // Everything the user typed is checked before anything is sent.
    let hits = hits(&cli)?;
    let spa_key =
        cli.key.as_deref().filter(|_| cli.spa).map(spa::read_key).transpose().map_err(|e| usage(e.to_string()))?;
    let wait = cli.wait_open.as_deref().map(wait_port).transpose()?;
    let target = client::resolve(&host, family(&cli)?)?;
    let origin = Origin { source: cli.source, interface: cli.interface.clone() };
    if let Some(key) = &spa_key {
        return spa_until_open(&cli, target, key, &origin, wait);
    }
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

fn usage(message: String) -> ClientError {
    ClientError::Usage(message)
}

/// The ports to hit: those on the command line, or the door's current rotating sequence.
fn hits(cli: &Cli) -> Result<Vec<PortProto>, ClientError> {
    let Some(file) = &cli.secret_file else {
        // `7000,8000,9000` is three hits, as in a knockd.conf Sequence line.
        let each = cli.ports.iter().flat_map(|p| p.split(',')).filter(|p| !p.trim().is_empty());
        return each.map(|p| client::parse_hit(p.trim(), cli.udp)).collect();
    };
    if !(2..=ROTATING_MAX_LENGTH).contains(&cli.length) {
        return Err(usage(format!("--length {}: use 2 to {ROTATING_MAX_LENGTH}", cli.length)));
    }
    let rotating = Rotating {
        secret_files: vec![file.clone()],
        step: cli.step,
        length: cli.length,
        ports: client::parse_port_range(&cli.port_range)?,
        proto: if cli.udp { Proto::Udp } else { Proto::Tcp },
    };
    let secret = rotating::read_secret(file).map_err(|e| usage(e.to_string()))?;
    let door = cli.door.as_deref().expect("clap requires --door");
    Ok(rotating::sequence(&secret, door, rotating::counter(unix_now(), cli.step), &rotating))
}

/// `--wait-open PORT`: only a TCP port can be connected to.
fn wait_port(text: &str) -> Result<u16, ClientError> {
    let port = client::parse_hit(text, false)?;
    if port.proto != Proto::Tcp {
        return Err(usage(format!("--wait-open {text}: only a TCP port can be waited for")));
    }
    Ok(port.port)
}

/// The address family asked for with `-4`/`-6`, or implied by `--source`.
fn family(cli: &Cli) -> Result<Family, ClientError> {
    let family = match (cli.ipv4, cli.ipv6, cli.source) {
        (true, _, _) => Family::V4,
        (_, true, _) => Family::V6,
        (_, _, Some(source)) if source.is_ipv6() => Family::V6,
        (_, _, Some(_)) => Family::V4,
        _ => Family::Any,
    };
    if let Some(source) = cli.source {
        if (family == Family::V4) != source.is_ipv4() {
            return Err(usage(format!("--source {source} is not of the address family asked for")));
        }
    }
    Ok(family)
}

/// Sends the SPA packet; with `--wait-open`, sends a fresh one (new nonce, new timestamp) every
/// second until the port opens: a packet lost on the way, or in a flood, costs a second.
fn spa_until_open(
    cli: &Cli,
    target: IpAddr,
    key: &spa::Key,
    origin: &Origin,
    wait: Option<u16>,
) -> Result<(), ClientError> {
    let Some(port) = wait else { return send_spa(cli, target, key, origin) };
    let to = SocketAddr::new(target, port);
    let within = Duration::from_secs(cli.wait_timeout);
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        send_spa(cli, target, key, origin)?;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if client::wait_open(to, origin, left.min(RESEND_EVERY)) {
            if cli.verbose {
                println!("{to} is open");
            }
            return Ok(());
        }
    }
    Err(ClientError::NotOpen { target: to, within })
}

/// How long `--wait-open` waits for an SPA packet to work before sending a fresh one.
const RESEND_EVERY: Duration = Duration::from_secs(1);

fn send_spa(cli: &Cli, target: IpAddr, key: &spa::Key, origin: &Origin) -> Result<(), ClientError> {
    let request = spa::Request {
        timestamp: unix_now().as_secs(),
        nonce: spa::nonce(),
        door: cli.door.clone().expect("clap requires --door"),
        address: cli.spa_address,
    };
    if cli.verbose {
        println!("sending SPA for door {} to udp {}", request.door, SocketAddr::new(target, cli.spa_port));
    }
    client::send_datagram(target, cli.spa_port, &spa::encode(&request, key), origin)
}
