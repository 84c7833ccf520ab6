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

use super::settings::{FixedSequence, OneTimeFile};
use crate::config::yaml::check_command;
use crate::config::{
    CMD_TIMEOUT_RANGE, Commands, Config, DEFAULT_SEQ_TIMEOUT, Door, LogFormat, PortProto, Proof, SEQ_TIMEOUT_RANGE,
    TcpFlags, check_door_name, check_range,
};
use crate::config::{ConfigError, Location};

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

impl Section {
    fn new(line: usize, name: &str) -> Self {
        Section {
            line,
            name: name.to_owned(),
            sequence: None,
            one_time: None,
            seq_timeout: DEFAULT_SEQ_TIMEOUT,
            tcp_flags: TcpFlags::default(),
            target: None,
            commands: Commands::default(),
        }
    }

    /// One `Key = value` line of the door's section.
    fn directive(&mut self, upper: &str, value: &str) -> Result<(), String> {
        match upper {
            "SEQUENCE" => self.sequence = Some(sequence(value)?),
            "ONE_TIME_SEQUENCES" => self.one_time = Some(PathBuf::from(value)),
            "SEQ_TIMEOUT" | "TIMEOUT" => {
                let secs = seconds(value)?;
                if secs == 0 {
                    return Err("a sequence timeout of 0 seconds can never be met: use 1 or more".into());
                }
                self.seq_timeout = check_range(Duration::from_secs(secs), SEQ_TIMEOUT_RANGE)?;
            }
            "CMD_TIMEOUT" => {
                self.commands.cmd_timeout = check_range(Duration::from_secs(seconds(value)?), CMD_TIMEOUT_RANGE)?;
            }
            "START_COMMAND" | "COMMAND" => self.commands.start = Some(command(value)?),
            "START_COMMAND_6" | "COMMAND_6" => self.commands.start_v6 = Some(command(value)?),
            "STOP_COMMAND" => self.commands.stop = Some(command(value)?),
            "STOP_COMMAND_6" => self.commands.stop_v6 = Some(command(value)?),
            "TCPFLAGS" => self.tcp_flags = TcpFlags::parse_list(value)?,
            "TARGET" => self.target = Some(value.parse().map_err(|_| format!("`{value}` is not an IP address"))?),
            _ => return Err(format!("unknown directive: knockd.conf doors know {DIRECTIVES}")),
        }
        Ok(())
    }

    /// The finished door; `Err` says what the section lacks (or has twice).
    fn into_door(self) -> Result<Door, String> {
        let sequence = match (self.sequence, self.one_time) {
            (Some(s), None) => Proof::new(FixedSequence(s)),
            (None, Some(path)) => Proof::new(OneTimeFile(path)),
            (Some(_), Some(_)) => {
                return Err(format!("[{}]: has both Sequence and One_Time_Sequences: keep one", self.name));
            }
            (None, None) => {
                return Err(format!("[{}]: has an empty knock sequence: add `Sequence = 7000,8000,9000`", self.name));
            }
        };
        Ok(Door {
            name: self.name,
            proofs: vec![sequence],
            seq_timeout: self.seq_timeout,
            tcp_flags: self.tcp_flags,
            target: self.target,
            from: Vec::new(),
            not_from: Vec::new(),
            open: None,
            commands: self.commands,
        })
    }
}

/// The section the lines being read belong to.
enum Current {
    None,
    Options,
    Door(Box<Section>),
}

/// The file as read so far.
struct Parser<'a> {
    file: &'a str,
    config: Config,
    current: Current,
    sections: Vec<Section>,
    /// `UseSyslog` was given.
    use_syslog: bool,
}

/// Parses `text` (the contents of `file`) into a validated [`Config`].
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let config = Config::with_doors(Vec::new());
    let mut parser = Parser { file, config, current: Current::None, sections: Vec::new(), use_syslog: false };
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if !line.is_empty() && !line.starts_with('#') {
            parser.line(index + 1, line)?;
        }
    }
    parser.finish()
}

impl Parser<'_> {
    fn error(&self, line: usize, message: String) -> ConfigError {
        ConfigError::Invalid { file: self.file.to_owned(), location: Some(Location { line, column: 1 }), message }
    }

    fn line(&mut self, n: usize, line: &str) -> Result<(), ConfigError> {
        if let Some(header) = line.strip_prefix('[') {
            let name = header
                .strip_suffix(']')
                .ok_or_else(|| self.error(n, format!("`{line}`: a section header ends with `]`")))?;
            return self.header(n, name.trim());
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (uncommented(line), None),
        };
        let upper = key.to_ascii_uppercase();
        // `Seq_Timeout = 5  # seconds`: the classic daemon reads the number and stops. Commands
        // keep their `#`: the shell knows what it means there.
        let value = if upper.contains("COMMAND") { value } else { value.map(uncommented) };
        if upper == "USESYSLOG" && value.is_none() {
            self.use_syslog = true;
            return Ok(());
        }
        let value = value.ok_or_else(|| self.error(n, format!("`{key}` needs a value: write `{key} = value`")))?;
        match &mut self.current {
            Current::None => {
                Err(self.error(n, format!("`{key}` must be inside a section: [options] or a door like [openSSH]")))
            }
            Current::Options => self.option(n, key, &upper, value),
            Current::Door(door) => {
                let name = door.name.clone();
                door.directive(&upper, value).map_err(|e| self.error(n, format!("[{name}] {key}: {e}")))
            }
        }
    }

    /// A section header. Any name the classic knockd took is a door's name (`[Open rtorrent]`);
    /// `[options]` in another case is read as `[options]`, and a name used twice names two
    /// doors, the later one with ` (2)` added: both with a warning.
    fn header(&mut self, n: usize, name: &str) -> Result<(), ConfigError> {
        if let Current::Door(done) = std::mem::replace(&mut self.current, Current::None) {
            self.sections.push(*done);
        }
        if name.eq_ignore_ascii_case("options") {
            if name != "options" {
                self.warn(
                    n,
                    format!(
                        "[{name}] is read as [options]; the classic knockd takes only `[options]` (it \
                     reads [{name}] as a door, and refuses the file): write `[options]`"
                    ),
                );
            }
            self.current = Current::Options;
            return Ok(());
        }
        check_door_name(name).map_err(|e| self.error(n, format!("[{name}]: {e}")))?;
        let mut unique = name.to_owned();
        for copy in 2.. {
            if !self.sections.iter().any(|d| d.name == unique) {
                break;
            }
            unique = format!("{name} ({copy})");
        }
        if unique != name {
            self.warn(
                n,
                format!(
                    "a second door is named [{name}]: it is called `{unique}` in logs and status (the \
                 classic knockd gave both the same name): rename one of the sections"
                ),
            );
        }
        self.current = Current::Door(Box::new(Section::new(n, &unique)));
        Ok(())
    }

    fn warn(&mut self, line: usize, message: String) {
        let message = format!("{}:{line}: {message}", self.file);
        self.config.notices.push(crate::config::Notice { level: log::Level::Warn, message });
    }

    fn option(&mut self, n: usize, key: &str, upper: &str, value: &str) -> Result<(), ConfigError> {
        match upper {
            "LOGFILE" => self.config.log.file = Some(PathBuf::from(value)),
            "PIDFILE" => self.config.pidfile = Some(PathBuf::from(value)),
            "INTERFACE" => self.config.interfaces.push(value.to_owned()),
            _ => return Err(self.error(n, format!("unknown option `{key}` in [options]: knockd.conf knows {OPTIONS}"))),
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Config, ConfigError> {
        // As the classic daemon: syslog when UseSyslog says so; a file only when only LogFile
        // is given; and syslog when neither is, rather than no log at all.
        self.config.log.syslog = self.use_syslog || self.config.log.file.is_none();
        // The lines the classic daemon wrote: log parsers and fail2ban filters read them.
        self.config.log.format = LogFormat::Classic;
        if let Current::Door(done) = std::mem::replace(&mut self.current, Current::None) {
            self.sections.push(*done);
        }
        for section in std::mem::take(&mut self.sections) {
            let line = section.line;
            let door = section.into_door().map_err(|message| self.error(line, message))?;
            self.config.doors.push(door);
        }
        if let Some((a, b)) = crate::config::clashing_nft_names(&self.config.doors) {
            let message = format!("doors [{a}] and [{b}] would share nftables sets: rename one");
            return Err(ConfigError::Invalid { file: self.file.to_owned(), location: None, message });
        }
        if self.config.doors.is_empty() {
            return Err(ConfigError::Invalid {
                file: self.file.to_owned(),
                location: None,
                message: "no doors are defined: add a section like [openSSH] with a Sequence".into(),
            });
        }
        Ok(self.config)
    }
}

/// `value` without a trailing `# comment` (a `#` at the start or after a blank).
fn uncommented(value: &str) -> &str {
    let cut = value.char_indices().find(|&(i, c)| c == '#' && (i == 0 || value[..i].ends_with([' ', '\t'])));
    cut.map_or(value, |(i, _)| &value[..i]).trim()
}

fn seconds(value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .ok()
        .filter(|s| *s <= 7 * 86400)
        .ok_or_else(|| format!("`{value}` is not a number of seconds (0 to 604800)"))
}

/// A `Sequence`: ports with `:tcp`/`:udp`. `7000/udp` is refused: the classic knockd read it
/// as TCP port 7000, and which of the two was meant only the admin knows.
fn sequence(value: &str) -> Result<Vec<PortProto>, String> {
    if let Some((port, proto)) = value.split(',').find_map(|p| p.trim().split_once('/')) {
        let (port, proto) = (port.trim(), proto.trim());
        return Err(format!(
            "`{port}/{proto}`: knockd.conf writes the protocol after a colon: `{port}:{proto}` (the classic knockd \
             read `{port}/{proto}` as TCP port {port}: write `{port}` to keep that)"
        ));
    }
    crate::config::parse_sequence(value)
}

fn command(value: &str) -> Result<String, String> {
    check_command(value).map(|()| value.to_owned())
}
