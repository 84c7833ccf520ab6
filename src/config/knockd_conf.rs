//! The classic knockd.conf format, loaded unchanged into the same model as YAML.
//!
//! ```text
//! [options]
//!     UseSyslog
//!     LogFile = /var/log/knockd.log
//! [openSSH]
//!     sequence    = 7000,8000:udp,9000
//!     seq_timeout = 5
//!     command     = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
//!     tcpflags    = syn
//! ```
//!
//! Keys are case-insensitive; `#` starts a comment line. Every directive of knockd 0.8 is
//! known; anything else is an error (the classic daemon said "syntax error").

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::model::{
    CMD_TIMEOUT_RANGE, Commands, Config, DEFAULT_MAX_ATTEMPTS, DEFAULT_SEQ_TIMEOUT, Door, LogOptions, PortProto,
    SEQ_TIMEOUT_RANGE, Sequence, TcpFlags, check_identifier, check_range,
};
use super::yaml::check_command;
use super::{ConfigError, Location};

const OPTIONS: &str = "UseSyslog, LogFile, PidFile, Interface";
const DIRECTIVES: &str = "Sequence, One_Time_Sequences, Seq_Timeout, Start_Command (Command), Start_Command_6 \
     (Command_6), Stop_Command, Stop_Command_6, Cmd_Timeout, TCPFlags, Target";

/// A door while its section is being read.
struct Section {
    line: usize,
    name: String,
    sequence: Option<Vec<PortProto>>,
    one_time: Option<PathBuf>,
    seq_timeout: Duration,
    tcp_flags: TcpFlags,
    target: Option<IpAddr>,
    commands: Commands,
}

enum Current {
    None,
    Options,
    Door(Box<Section>),
}

/// Parses `text` (the contents of `file`) into a validated [`Config`].
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let error = |line: usize, message: String| ConfigError::Invalid {
        file: file.to_owned(),
        location: Some(Location { line, column: 1 }),
        message,
    };
    let mut config = Config {
        interfaces: Vec::new(),
        table: "knockd".into(),
        log: LogOptions::default(),
        pidfile: None,
        max_attempts: DEFAULT_MAX_ATTEMPTS,
        doors: Vec::new(),
    };
    let mut current = Current::None;
    let mut doors: Vec<Section> = Vec::new();

    for (index, raw) in text.lines().enumerate() {
        let n = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let name = header
                .strip_suffix(']')
                .ok_or_else(|| error(n, format!("`{line}`: a section header ends with `]`")))?
                .trim();
            if let Current::Door(done) = std::mem::replace(&mut current, Current::None) {
                doors.push(*done);
            }
            if name.eq_ignore_ascii_case("options") {
                current = Current::Options;
                continue;
            }
            check_identifier(name, 32).map_err(|e| error(n, format!("[{name}]: {e}")))?;
            if doors.iter().any(|d| d.name == name) {
                return Err(error(
                    n,
                    format!("[{name}]: the door is defined twice: give each door its own section name"),
                ));
            }
            current = Current::Door(Box::new(Section {
                line: n,
                name: name.to_owned(),
                sequence: None,
                one_time: None,
                seq_timeout: DEFAULT_SEQ_TIMEOUT,
                tcp_flags: TcpFlags::default(),
                target: None,
                commands: Commands::default(),
            }));
            continue;
        }

        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (line, None),
        };
        let upper = key.to_ascii_uppercase();
        if upper == "USESYSLOG" && value.is_none() {
            config.log.syslog = true;
            continue;
        }
        let value = value.ok_or_else(|| error(n, format!("`{key}` needs a value: write `{key} = value`")))?;
        match &mut current {
            Current::None => {
                return Err(error(n, format!("`{key}` must be inside a section: [options] or a door like [openSSH]")));
            }
            Current::Options => match upper.as_str() {
                "LOGFILE" => config.log.file = Some(PathBuf::from(value)),
                "PIDFILE" => config.pidfile = Some(PathBuf::from(value)),
                "INTERFACE" => config.interfaces.push(value.to_owned()),
                _ => return Err(error(n, format!("unknown option `{key}` in [options]: knockd.conf knows {OPTIONS}"))),
            },
            Current::Door(door) => {
                let at = |message: String| error(n, format!("[{}] {key}: {message}", door.name));
                match upper.as_str() {
                    "SEQUENCE" => door.sequence = Some(PortProto::parse_sequence(value).map_err(at)?),
                    "ONE_TIME_SEQUENCES" => door.one_time = Some(PathBuf::from(value)),
                    "SEQ_TIMEOUT" | "TIMEOUT" => {
                        let secs = seconds(value).map_err(at)?;
                        if secs == 0 {
                            return Err(at("a sequence timeout of 0 seconds can never be met: use 1 or more".into()));
                        }
                        door.seq_timeout = check_range(Duration::from_secs(secs), SEQ_TIMEOUT_RANGE).map_err(at)?;
                    }
                    "CMD_TIMEOUT" => {
                        let secs = Duration::from_secs(seconds(value).map_err(at)?);
                        door.commands.cmd_timeout = check_range(secs, CMD_TIMEOUT_RANGE).map_err(at)?;
                    }
                    "START_COMMAND" | "COMMAND" => door.commands.start = Some(command(value).map_err(at)?),
                    "START_COMMAND_6" | "COMMAND_6" => door.commands.start_v6 = Some(command(value).map_err(at)?),
                    "STOP_COMMAND" => door.commands.stop = Some(command(value).map_err(at)?),
                    "STOP_COMMAND_6" => door.commands.stop_v6 = Some(command(value).map_err(at)?),
                    "TCPFLAGS" => door.tcp_flags = TcpFlags::parse_list(value).map_err(at)?,
                    "TARGET" => {
                        door.target = Some(value.parse().map_err(|_| at(format!("`{value}` is not an IP address")))?);
                    }
                    _ => return Err(at(format!("unknown directive: knockd.conf doors know {DIRECTIVES}"))),
                }
            }
        }
    }
    if let Current::Door(done) = current {
        doors.push(*done);
    }

    for d in doors {
        let sequence = match (d.sequence, d.one_time) {
            (Some(s), None) => Sequence::Fixed(s),
            (None, Some(path)) => Sequence::OneTime(path),
            (Some(_), Some(_)) => {
                return Err(error(d.line, format!("[{}]: has both Sequence and One_Time_Sequences: keep one", d.name)));
            }
            (None, None) => {
                return Err(error(
                    d.line,
                    format!("[{}]: has an empty knock sequence: add `Sequence = 7000,8000,9000`", d.name),
                ));
            }
        };
        config.doors.push(Door {
            name: d.name,
            sequence,
            seq_timeout: d.seq_timeout,
            tcp_flags: d.tcp_flags,
            target: d.target,
            from: Vec::new(),
            not_from: Vec::new(),
            spa: None,
            open: None,
            commands: d.commands,
        });
    }
    if config.doors.is_empty() {
        return Err(ConfigError::Invalid {
            file: file.to_owned(),
            location: None,
            message: "no doors are defined: add a section like [openSSH] with a Sequence".into(),
        });
    }
    Ok(config)
}

fn seconds(value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .ok()
        .filter(|s| *s <= 7 * 86400)
        .ok_or_else(|| format!("`{value}` is not a number of seconds (0 to 604800)"))
}

fn command(value: &str) -> Result<String, String> {
    check_command(value).map(|()| value.to_owned())
}
