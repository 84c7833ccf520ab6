//! `knockd`: the command-line edge. Parses flags, sets up logging, and runs the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use log::{LevelFilter, error, info};

use knockd::capture::PacketSocket;
use knockd::daemon::{self, ConfigSource, Signals};
use knockd::engine::Engine;
use knockd::nft::NetlinkFirewall;

/// Port-knocking daemon: opens ports in nftables for clients that knock the right sequence.
#[derive(Parser, Debug)]
#[command(name = "knockd", version)]
struct Cli {
    /// Config file (YAML).
    #[arg(
        short = 'c',
        long = "configfile",
        value_name = "FILE",
        default_value = "/etc/knockd.yaml"
    )]
    config: PathBuf,
    /// Listen only on this interface (repeatable; overrides the config's `interfaces`).
    #[arg(short = 'i', long = "interface", value_name = "NAME")]
    interfaces: Vec<String>,
    /// More log output (repeatable: -v debug, -vv trace).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Debug mode: stay in the foreground and log at debug level to stderr.
    #[arg(short = 'D', long = "debug")]
    debug: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The logger may not be up yet (config errors): print as well as log.
            eprintln!("knockd: {e:#}");
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let source = ConfigSource {
        path: cli.config.clone(),
        interfaces: cli.interfaces.clone(),
    };
    let config = source.load()?;
    init_logging(config.log_level, cli.verbose, cli.debug);

    let filter = daemon::capture_filter(&config)?;
    let firewall = NetlinkFirewall::open().context("knockd needs root or CAP_NET_ADMIN")?;
    let doors = config.doors.len();
    let interfaces = if config.interfaces.is_empty() {
        "all interfaces".to_owned()
    } else {
        config.interfaces.join(", ")
    };
    let table = config.table.clone();
    let mut engine = Engine::start(config, firewall)?;
    let mut capture = PacketSocket::open(&filter)
        .context("cannot open the capture socket (knockd needs CAP_NET_RAW)")?;
    let mut signals = Signals::install().context("cannot install signal handlers")?;
    info!("listening on {interfaces} for {doors} door(s); nftables table inet {table} installed");
    daemon::run(&mut engine, &mut capture, &mut signals, &source).context("capture failed")?;
    Ok(())
}

fn init_logging(configured: LevelFilter, verbose: u8, debug: bool) {
    let raised = match verbose {
        0 if debug => LevelFilter::Debug,
        0 => configured,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    // Our own lines at the chosen level; the netlink crates' chatter only when it matters.
    env_logger::Builder::new()
        .filter_level(LevelFilter::Warn)
        .filter_module("knockd", configured.max(raised))
        .format_target(false)
        .init();
}
