//! `knockd`: the command-line edge. Parses flags, sets up logging, and runs the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use log::{LevelFilter, error, info};

use knockd::background;
use knockd::capture::Capture;
use knockd::config::{self, Config, convert};
use knockd::daemon::{self, ConfigSource, Signals};
use knockd::engine::Engine;
use knockd::legacy_command::ShellSpawner;
use knockd::logging::{self, Targets};
use knockd::nft::NetlinkFirewall;
use knockd::pidfile::PidFile;

/// Where `-d` writes its pid when neither `-p` nor the config names a file.
const DEFAULT_PIDFILE: &str = "/run/knockd.pid";

/// Port-knocking daemon: opens ports in nftables (or runs commands) for clients that knock
/// the right sequence. Reads knockd.yaml or a classic knockd.conf.
#[derive(Parser, Debug)]
#[command(name = "knockd", version)]
struct Cli {
    /// Config file: YAML (knockd.yaml) or classic knockd.conf, detected from its content.
    #[arg(short = 'c', long = "configfile", value_name = "FILE", default_value = "/etc/knockd.conf")]
    config: PathBuf,
    /// Run in the background once started (writes a pid file).
    #[arg(short = 'd', long = "daemon")]
    daemon: bool,
    /// Listen only on this interface (repeatable; overrides the config).
    #[arg(short = 'i', long = "interface", value_name = "NAME")]
    interfaces: Vec<String>,
    /// More log output (repeatable).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log level: 0 errors, 1 knocks and grants (default), 2 debug, 3 trace, 4 trace with library internals.
    #[arg(short = 'l', long = "loglevel", value_name = "0..4", value_parser = clap::value_parser!(u8).range(0..=4))]
    loglevel: Option<u8>,
    /// Also log to this file.
    #[arg(short = 'L', long = "logfile", short_alias = 'g', value_name = "FILE")]
    logfile: Option<PathBuf>,
    /// Do not log to syslog.
    #[arg(short = 'n', long = "no-syslog")]
    no_syslog: bool,
    /// Also log to stdout.
    #[arg(short = 's', long = "stdout")]
    stdout: bool,
    /// Debug mode: stay in the foreground, log at debug level to stderr only.
    #[arg(short = 'D', long = "debug")]
    debug: bool,
    /// Pid file (default with -d: /run/knockd.pid).
    #[arg(short = 'p', long = "pidfile", value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// Ignore IPv6 knocks.
    #[arg(short = '4', long = "only-ip-v4")]
    only_ipv4: bool,
    /// Show host names (reverse DNS, looked up in the background) next to addresses in logs.
    #[arg(long = "lookup")]
    lookup: bool,
    /// Print the config FILE (knockd.conf or YAML) as knockd.yaml and exit.
    #[arg(long = "convert", value_name = "FILE", exclusive = true)]
    convert: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Start-up errors happen before the background fork: the terminal sees them.
            eprintln!("knockd: {e:#}");
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(file) = &cli.convert {
        print!("{}", convert::to_yaml(&config::load(file)?));
        return Ok(());
    }
    let source = ConfigSource { path: cli.config.clone(), interfaces: cli.interfaces.clone() };
    let config = source.load()?;
    logging::init(log_targets(&cli, &config))?;

    let pidfile_path =
        cli.pidfile.clone().or_else(|| config.pidfile.clone()).or_else(|| cli.daemon.then(|| DEFAULT_PIDFILE.into()));
    let mut pidfile = pidfile_path.as_deref().map(PidFile::create).transpose()?;

    // Capture first, with a filter that passes nothing: a missing interface or capability
    // fails the start before the firewall is touched.
    let mut capture = Capture::open(&config.interfaces, &[], !cli.only_ipv4)?;
    let firewall = NetlinkFirewall::open().context("knockd needs root or CAP_NET_ADMIN")?;
    let summary = summary(&config);
    let mut engine = Engine::start(config, firewall, ShellSpawner::default())?;
    if cli.lookup {
        engine = engine.with_lookup();
    }
    capture.refilter(None, &engine.matcher().knock_ports())?;
    let mut signals = Signals::install().context("cannot install signal handlers")?;

    if cli.daemon && !cli.debug {
        background::detach(pidfile.as_mut()).context("cannot go into the background")?;
        logging::reopen()?;
    }
    info!("{summary}");
    let mut reopen_log = || {
        if let Err(e) = logging::reopen() {
            error!("{e}");
        }
    };
    daemon::run(&mut engine, &mut capture, &mut signals, &source, &mut reopen_log).context("capture failed")?;
    engine.into_spawner().finish();
    drop(pidfile);
    Ok(())
}

fn summary(config: &Config) -> String {
    let interfaces =
        if config.interfaces.is_empty() { "all interfaces".to_owned() } else { config.interfaces.join(", ") };
    let nft = config.doors.iter().filter(|d| d.open.is_some()).count();
    let table = if nft > 0 { format!("; nftables table inet {} installed", config.table) } else { String::new() };
    format!("listening on {interfaces} for {} door(s){table}", config.doors.len())
}

fn log_targets(cli: &Cli, config: &Config) -> Targets {
    const LEVELS: [LevelFilter; 5] =
        [LevelFilter::Error, LevelFilter::Warn, LevelFilter::Info, LevelFilter::Debug, LevelFilter::Trace];
    let base = match cli.loglevel {
        Some(0) => LevelFilter::Error,
        Some(1) => LevelFilter::Info,
        Some(2) => LevelFilter::Debug,
        Some(_) => LevelFilter::Trace,
        None => config.log.level,
    };
    let index = LEVELS.iter().position(|l| *l == base).unwrap_or(2) + usize::from(cli.verbose);
    let mut level = LEVELS[index.min(LEVELS.len() - 1)];
    if cli.debug {
        level = level.max(LevelFilter::Debug);
    }
    Targets {
        level,
        libraries: cli.loglevel == Some(4),
        syslog: config.log.syslog && !cli.no_syslog && !cli.debug,
        file: cli.logfile.clone().or_else(|| config.log.file.clone()),
        stdout: cli.stdout,
        stderr: cli.debug,
    }
}
