//! `knockd`: the command-line edge. Parses flags, sets up logging, and runs the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use log::{LevelFilter, error, info, warn};

use knockd::capture::Capture;
use knockd::capture::local::LocalAddresses;
use knockd::cli::host_firewall::{self, Finding};
use knockd::cli::programs;
use knockd::cli::report as inspect;
use knockd::cli::{KnockdCli as Cli, KnockdCommand};
use knockd::config::{self, CommandPrivileges, Config, convert};
use knockd::control::{self, Request};
use knockd::daemon::lock::TableLock;
use knockd::daemon::logging::{self, Targets};
use knockd::daemon::pidfile::{PidFile, PidFileError};
use knockd::daemon::state_dir::Owner;
use knockd::daemon::{self, ConfigSource, Daemon, Signals, background};
use knockd::doors::Kinds;
use knockd::engine::Engine;
use knockd::grant::legacy_command::ShellSpawner;
use knockd::grant::nft::{Monitor, NetlinkFirewall, Ruleset};
use knockd::store::FileStore;

/// Where `-d` writes its pid when neither `-p` nor the config names a file.
const DEFAULT_PIDFILE: &str = "/run/knockd.pid";

/// `knockd check` found a valid config that would drop new SSH connections to this session's port.
const EXIT_LOCKOUT: u8 = 3;
/// `knockd check` found a chain of another table that drops what a door opens.
const EXIT_BLOCKED: u8 = 4;

fn main() -> ExitCode {
    daemon::inherited::close_on_exec();
    let cli = Cli::parse();
    if cli.command.is_some() || cli.convert.is_some() {
        knockd::cli::pipe::end_quietly_when_the_reader_leaves();
    }
    let result = match cli.command.clone() {
        Some(KnockdCommand::Check { lockout_ok }) => check(&cli, lockout_ok),
        Some(KnockdCommand::Status { json, prometheus }) => status(&cli, json, prometheus).map(|()| ExitCode::SUCCESS),
        Some(KnockdCommand::Revoke { address, door }) => ask(&cli, Request::Revoke { address, door }),
        Some(KnockdCommand::Grant { address, door, duration, ports }) => {
            ask(&cli, Request::Grant { address, door, seconds: duration.map(|d| d.as_secs().max(1)), ports })
        }
        Some(KnockdCommand::Reload) => ask(&cli, Request::Reload),
        None => run(cli).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Start-up errors happen before the background fork: the terminal sees them.
            let message = describe(&e);
            if !logging::writes_stderr() {
                eprintln!("knockd: {message}");
            }
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    if let Some(file) = &cli.convert {
        return convert_to_stdout(file, &cli);
    }
    // Every relative path, given here or in the file, is anchored where knockd was started:
    // `-d` changes to /, and reloads, log reopens and one-time rewrites must still find them.
    let workdir = std::env::current_dir().ok();
    if let Some(dir) = &workdir {
        cli.anchor_paths(dir);
    }
    let mut source = config_source(&cli, workdir);
    let config = source.load()?;
    logging::init(log_targets(&cli, &config))?;
    if cli.daemon && under_systemd() {
        // systemd keeps the daemon in the background and waits for its READY from this pid:
        // a `-d` in KNOCKD_OPTS (/etc/default/knockd) would fork away from it.
        info!("{}", knockd::log_lines::DETACH_IGNORED);
        cli.daemon = false;
    }
    // Whose files are trusted like root's (the run user's): for reloads, the keys, the state.
    source.trust = daemon::privileges::trust(&config);
    let owner = owner_after_start(&cli, &config)?;
    let mut pidfile = pidfile(&cli, &config)?;
    if config.keeps_state() {
        daemon::state_dir::prepare(&config.state_dir, &owner)?;
    }
    // One daemon per table: a second one would fight the first over its chain.
    let lock = Ruleset::for_config(&config).table_if_any().map(|t| TableLock::take(&t)).transpose()?;
    let summary = summary(&config, &cli.config);
    if !cli.daemon {
        warn_lockout(&config);
    }
    let mut daemon = start(&cli, config, source, lock)?;
    if cli.daemon && !cli.debug {
        background::detach(pidfile.as_mut()).context("cannot go into the background")?;
        if let Some(lock) = &mut daemon.lock {
            lock.write_pid().context("cannot write the pid into the table's lock")?;
        }
        logging::reopen()?;
    }
    // Every socket is open and no other thread exists yet: from here on, netlink and capture only.
    give_up_privileges(&owner, daemon.engine.config(), daemon.control.as_mut())?;
    let (interfaces, summary) = summary;
    info!(event = knockd::log_lines::event::START, interfaces; "{summary}");
    // Type=notify: systemd starts dependent units only now. Outside systemd this does nothing.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    daemon::run(&mut daemon).context("capture failed")?;
    daemon.engine.into_spawner().finish();
    drop(pidfile);
    Ok(())
}

/// Where the config comes from, as the command line says (`workdir`: where knockd started).
fn config_source(cli: &Cli, workdir: Option<std::path::PathBuf>) -> ConfigSource {
    ConfigSource {
        path: cli.config.clone(),
        interfaces: cli.interfaces.clone(),
        state_dir: cli.state_dir.clone(),
        fwknopd_conf: cli.fwknopd_conf.clone(),
        workdir,
        trust: config::Trust::default(),
    }
}

/// The pid file, if one is asked for (`-p`, the config, or `-d`'s default).
fn pidfile(cli: &Cli, config: &Config) -> anyhow::Result<Option<PidFile>> {
    let path =
        cli.pidfile.clone().or_else(|| config.pidfile.clone()).or_else(|| cli.daemon.then(|| DEFAULT_PIDFILE.into()));
    match path.as_deref().map(PidFile::create).transpose() {
        Ok(pidfile) => Ok(pidfile),
        // systemd knows the pid without a file, and its sandbox may not let one be written:
        // a pid file is a convenience there, not worth failing the start for. A second daemon
        // is still refused, by the table's lock.
        Err(e @ PidFileError::Io { .. }) if under_systemd() => {
            warn!("{}", knockd::log_lines::no_pid_file(&e));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens every socket, installs the ruleset and starts capture: the daemon, ready to run.
fn start(
    cli: &Cli,
    config: Config,
    source: ConfigSource,
    lock: Option<TableLock>,
) -> anyhow::Result<Daemon<NetlinkFirewall, ShellSpawner>> {
    // Capture first, with filters that pass nothing: a missing capability fails the start
    // before the firewall is touched.
    let mut capture = Capture::open(&config.interfaces, !cli.only_ipv4)?;
    let firewall = NetlinkFirewall::open().context("knockd needs root or CAP_NET_ADMIN")?;
    let monitor = match Monitor::open(&Ruleset::for_config(&config).table) {
        Ok(monitor) => Some(monitor),
        Err(e) => {
            warn!("{}", knockd::log_lines::cannot_watch_nftables(&e));
            None
        }
    };
    let local = LocalAddresses::open().context("cannot read this host's addresses")?;
    // Before the ruleset: a second daemon on the same socket fails here, having changed nothing.
    let control = control::Listener::bind(&cli.control_path(Some(&config)))?;
    let store = Box::new(FileStore::new(source.trust.clone()));
    let mut engine = Engine::start_with_store(config, firewall, ShellSpawner::default(), store)?;
    if cli.lookup() {
        let mut names = daemon::names::Names::default();
        engine = engine.with_names(Box::new(move |addr| names.describe(addr)));
    }
    // The kinds learn the time of day (a rotating door's ports) before the filter is set.
    engine.tick(daemon::clock::now(std::time::Duration::ZERO));
    capture.set_ports(&engine.capture_ports())?;
    daemon::warn_missing(&capture);
    let signals = Signals::install().context("cannot install signal handlers")?;
    let on_reload = Box::new(|| {
        if let Err(e) = logging::reopen() {
            error!("{e}");
        }
    });
    let started = std::time::Instant::now();
    Ok(Daemon {
        engine,
        capture,
        signals,
        source,
        monitor,
        local: Some(local),
        lock,
        on_reload,
        control: Some(control),
        started,
        metrics_written: None,
    })
}

/// Who the daemon will be after start (`--keep-capabilities`: root with every capability): it
/// must read again on SIGHUP the config file, what it includes and the doors' files.
fn owner_after_start(cli: &Cli, config: &Config) -> anyhow::Result<Owner> {
    if cli.keep_capabilities {
        return Ok(Owner::RootWithEverything);
    }
    let mut files: Vec<&std::path::Path> = vec![&cli.config];
    files.extend(config.included.iter().map(|p| p.as_path()));
    files.extend(config.door_files());
    Ok(daemon::privileges::owner_after_start(config, &files, access_conf(&cli.config))?)
}

/// Keeps only CAP_NET_ADMIN and CAP_NET_RAW (commands get root's, with `commands: {privileges:
/// full}`), and leaves root when nothing needs it.
fn give_up_privileges(owner: &Owner, config: &Config, control: Option<&mut control::Listener>) -> anyhow::Result<()> {
    let commands = config.command_privileges;
    match owner {
        Owner::RootWithEverything => return Ok(()),
        Owner::User(user) => {
            // Once not root, the daemon cannot remove its control socket from /run/knockd.
            if let Some(Err(e)) = control.map(control::Listener::remove_after_exit) {
                warn!("{}", knockd::log_lines::socket_stays(&e));
            }
            daemon::privileges::become_user(user)?;
            daemon::privileges::drop_capabilities(commands)?;
            info!("{}", knockd::log_lines::running_as(&user.name));
        }
        Owner::Root => daemon::privileges::drop_capabilities(commands)?,
    }
    if commands == CommandPrivileges::Full && config.doors.iter().any(|d| !d.commands.is_empty()) {
        info!("{}", knockd::log_lines::COMMANDS_FULL_PRIVILEGES);
    }
    Ok(())
}

/// Whether the config at `path` is fwknopd's access.conf (which cannot say `user:`).
fn access_conf(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| config::detect(path, &text) == config::Format::AccessConf)
}

/// A foreground start from an SSH session on a port a door guards: the same warning as
/// `knockd check`, before the door closes.
fn warn_lockout(config: &Config) {
    if let Some(warning) = inspect::lockout_warning(config, std::env::var("SSH_CONNECTION").ok().as_deref()) {
        eprintln!("knockd: {warning}");
    }
}

/// Whether systemd started us (it sets NOTIFY_SOCKET for Type=notify units).
fn under_systemd() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// The error and its causes, each said once (library errors already include their cause).
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// `knockd check`: validate, show what would be created, check the host's firewall, warn
/// about lock-outs. Reads only. Takes the options a start takes, so it checks what will run.
fn check(cli: &Cli, lockout_ok: bool) -> anyhow::Result<ExitCode> {
    let source = config_source(cli, std::env::current_dir().ok());
    let config = source.load()?;
    // What a start reads before touching the firewall: every sequence, secret and key file.
    knockd::doors::build(&config, &mut FileStore::new(daemon::privileges::trust(&config)))?;
    println!("{}: valid, {} door(s)\n", cli.config.display(), config.doors.len());
    print!("{}", inspect::check_report(&config));
    let exists = |name: &str| nix::net::if_::if_nametoindex(name).is_ok();
    for notice in &config.notices {
        let label = if notice.level <= log::Level::Warn { "warning" } else { "note" };
        println!("{label}: {}", notice.message);
    }
    let unread = knockd::cli::unread_beside(&cli.config);
    for warning in unread.into_iter().chain(inspect::warnings(&config, exists)) {
        println!("warning: {warning}");
    }
    // Commands run with the daemon's PATH: a start from this shell, or systemd's (which has sbin).
    let path =
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    for warning in programs::missing_programs(&config, |program| programs::exists(program, &path)) {
        println!("warning: {warning}");
    }
    println!();
    let finding = check_host_firewall(&config);
    let left_out = config.doors.iter().filter(|d| d.left_out().is_some()).count();
    if left_out > 0 {
        eprintln!("\n{left_out} stanza(s) would be left out (see the warnings): a start serves the others.");
        return Ok(ExitCode::FAILURE);
    }
    match inspect::lockout_warning(&config, std::env::var("SSH_CONNECTION").ok().as_deref()) {
        _ if finding == Finding::Refused => Ok(ExitCode::FAILURE),
        _ if finding == Finding::Blocked => Ok(ExitCode::from(EXIT_BLOCKED)),
        Some(warning) if lockout_ok => {
            eprintln!("\n{warning}\n(--lockout-ok: exit status 0)");
            Ok(ExitCode::SUCCESS)
        }
        Some(warning) => {
            eprintln!("\n{warning}\n{}", inspect::LOCKOUT_EXIT);
            Ok(ExitCode::from(EXIT_LOCKOUT))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

/// The host's firewall part of `knockd check` (it needs CAP_NET_ADMIN to read nftables).
fn check_host_firewall(config: &Config) -> Finding {
    let view = knockd::capture::local::host_view(&config.interfaces, local_addresses());
    let report = NetlinkFirewall::open().and_then(|mut fw| host_firewall::report(config, &mut fw, &view));
    match report {
        Ok(report) => {
            print!("{}", report.text);
            report.finding
        }
        Err(e) => {
            println!("(the host's firewall was not checked: {e}; run as root)");
            Finding::Notes
        }
    }
}

/// This host's addresses now.
fn local_addresses() -> Vec<std::net::IpAddr> {
    LocalAddresses::open().map(|l| l.addresses().iter().copied().collect()).unwrap_or_default()
}

/// `knockd --convert FILE`: the YAML on stdout. A config with keys in it (an access.conf)
/// makes a YAML with keys in it: redirected to a file, that file is made mode 600 first, so
/// that no other user can read the keys, and knockd loads it.
fn convert_to_stdout(file: &std::path::Path, cli: &Cli) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::fd::AsFd;
    let config = config::load_with(file, &cli.load_options(), &Kinds)?;
    for notice in config.notices.iter().filter(|n| n.level <= log::Level::Warn) {
        eprintln!("knockd: warning: {}", notice.message);
    }
    let stdout = std::io::stdout();
    if config.has_inline_secrets() {
        let regular = nix::sys::stat::fstat(stdout.as_fd()).is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFREG);
        let private = nix::sys::stat::Mode::from_bits_truncate(0o600);
        if regular && nix::sys::stat::fchmod(stdout.as_fd(), private).is_ok() {
            eprintln!("knockd: the YAML holds the keys of {}: its file is now mode 600", file.display());
        } else {
            eprintln!(
                "knockd: the YAML holds the keys of {}: keep the file it goes to mode 600 (knockd refuses it if \
                 other users can read it), or move each key to a file of its own (key_file:, hmac_key_file:)",
                file.display()
            );
        }
    }
    stdout.lock().write_all(convert::to_yaml(&config).as_bytes())?;
    Ok(())
}

/// `knockd status`: the running daemon's view, or the kernel's when none runs.
fn status(cli: &Cli, json: bool, prometheus: bool) -> anyhow::Result<()> {
    let config = config::load_with(&cli.config, &cli.load_options(), &Kinds).ok();
    let status = knockd::cli::status::gather(&cli.control_path(config.as_ref()), &cli.config)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else if prometheus {
        print!("{}", control::prometheus::render(&status, &knockd::engine::counter_descriptions()));
    } else {
        print!("{}", knockd::cli::status::format(&status));
    }
    Ok(())
}

/// `knockd revoke`, `grant`, `reload`: asks the running daemon, prints its answer.
fn ask(cli: &Cli, request: Request) -> anyhow::Result<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("run as root: the control socket is root's");
    }
    let config = config::load_with(&cli.config, &cli.load_options(), &Kinds).ok();
    let response = control::ask(&cli.control_path(config.as_ref()), &request)?;
    if response.ok {
        println!("{}", response.message);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("knockd: {}", response.message);
        Ok(ExitCode::FAILURE)
    }
}

/// The interfaces listened on, and the start's log line.
fn summary(config: &Config, path: &std::path::Path) -> (String, String) {
    let interfaces =
        if config.interfaces.is_empty() { "all interfaces".to_owned() } else { config.interfaces.join(", ") };
    // Attach doors add to the admin's sets: knockd's own objects exist only for `ports` and
    // `forward` doors.
    let ruleset = Ruleset::for_config(config);
    let installed = (!ruleset.is_empty()).then(|| ruleset.describe());
    let line = knockd::log_lines::listening(&interfaces, config.doors.len(), path, installed.as_deref());
    (interfaces, line)
}

fn log_targets(cli: &Cli, config: &Config) -> Targets {
    const LEVELS: [LevelFilter; 5] =
        [LevelFilter::Error, LevelFilter::Warn, LevelFilter::Info, LevelFilter::Debug, LevelFilter::Trace];
    let base = match cli.log_level() {
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
    // Under systemd, stderr goes to the journal: log there with priorities, not twice via syslog.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some() && !cli.debug;
    Targets {
        level,
        libraries: cli.log_level() == Some(4),
        syslog: config.log.syslog && !cli.no_syslog && !cli.debug && !journal,
        // -D: stderr only, as its help says.
        file: if cli.debug { None } else { cli.logfile.clone().or_else(|| config.log.file.clone()) },
        stdout: cli.stdout && !cli.debug,
        stderr: cli.debug,
        journal,
        format: config.log.format,
    }
}
