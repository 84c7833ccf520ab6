//! `knockd.yaml`: the declarative configuration format.
//!
//! Values are checked while they are deserialized, so every error comes back from
//! serde_yaml_ng with the key path (`doors.ssh.sequence[1]`) and the line it is on.

mod door;
mod forward;
mod hints;
mod open;
pub mod values;

use std::path::PathBuf;

use serde::Deserialize;
use serde::de;

use values::*;
pub use values::{MAX_COMMAND_LEN, check_command};

use super::{
    Config, DEFAULT_MAX_ATTEMPTS, DEFAULT_SET_SIZE, DEFAULT_STATE_DIR, DEFAULT_USER, Kinds, LogOptions, SET_SIZE_RANGE,
};
use super::{ConfigError, Location};

/// Parses `text` (the contents of `file`) into a validated [`Config`], the doors' proofs read
/// by `kinds`.
pub fn parse<K: Kinds>(file: &str, text: &str, kinds: &K) -> Result<Config, ConfigError> {
    let raw: RawConfig<K> = serde_yaml_ng::from_str(text).map_err(|e| {
        let location = e.location().map(|l| Location { line: l.line(), column: l.column() });
        let (line, column) = location.map_or((0, 0), |l| (l.line, l.column));
        let door_keys = door::door_keys(kinds);
        let message = hints::explain(&strip_location(&e.to_string()), text, (line, column), &door_keys);
        ConfigError::Invalid { file: file.to_owned(), location, message }
    })?;
    let doors = raw.doors.0;
    let invalid = |message: String| ConfigError::Invalid { file: file.to_owned(), location: None, message };
    if let name @ ("fw4" | "firewalld") = raw.nftables.table.0.as_str() {
        return Err(ConfigError::Invalid {
            file: file.to_owned(),
            location: None,
            message: format!(
                "nftables.table: `{name}` is another firewall's table, which knockd would replace and remove: \
                 keep knockd's own name (`knockd`){}",
                if name == "fw4" { ", and put its rules inside fw4 with `nftables: {fw4: {zone: wan}}`" } else { "" }
            ),
        });
    }
    if doors.is_empty() {
        return Err(invalid("doors: no doors are defined: add at least one under `doors:`".into()));
    }
    if let Some((a, b)) = super::clashing_nft_names(&doors) {
        return Err(invalid(format!("doors `{a}` and `{b}` would share nftables sets: rename one")));
    }
    Ok(Config {
        interfaces: raw.interfaces.into_iter().map(|i| i.0).collect(),
        table: raw.nftables.table.0,
        set_size: raw.nftables.set_size.0,
        fw4: raw.nftables.fw4.map(forward::RawFw4::into_fw4),
        log: LogOptions {
            level: raw.log.level.0,
            syslog: raw.log.syslog,
            file: raw.log.file,
            format: raw.log.format.0,
        },
        pidfile: raw.pidfile,
        state_dir: raw.state_dir.unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
        user: raw.user.map_or_else(|| DEFAULT_USER.into(), |u| u.0),
        included: Vec::new(),
        control_socket: raw.control_socket,
        metrics_textfile: raw.metrics.textfile,
        command_privileges: raw.commands.privileges.0,
        max_attempts: raw.limits.max_attempts,
        doors,
        notices: Vec::new(),
    })
}

/// serde_yaml_ng appends " at line L column C"; we print the location in front instead.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound = "K: Kinds")]
struct RawConfig<K> {
    #[serde(default)]
    interfaces: Vec<IfName>,
    #[serde(default)]
    nftables: RawNftables,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    pidfile: Option<PathBuf>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    user: Option<UserName>,
    #[serde(default)]
    control_socket: Option<PathBuf>,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    commands: RawCommands,
    doors: door::Doors<K>,
}

/// `commands:`, what classic commands may do.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCommands {
    #[serde(default)]
    privileges: Privileges,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default)]
    textfile: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNftables {
    #[serde(default = "default_table")]
    table: TableName,
    #[serde(default)]
    set_size: SetSize,
    #[serde(default)]
    fw4: Option<forward::RawFw4>,
}

fn default_table() -> TableName {
    TableName("knockd".into())
}

impl Default for RawNftables {
    fn default() -> Self {
        Self { table: default_table(), set_size: SetSize::default(), fw4: None }
    }
}

/// `nftables.set_size`: a number within [`SET_SIZE_RANGE`].
struct SetSize(u32);

impl Default for SetSize {
    fn default() -> Self {
        SetSize(DEFAULT_SET_SIZE)
    }
}

impl<'de> Deserialize<'de> for SetSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        let (lo, hi) = SET_SIZE_RANGE;
        match u32::try_from(n) {
            Ok(n) if (lo..=hi).contains(&n) => Ok(SetSize(n)),
            _ => Err(de::Error::custom(format!("set_size {n} is out of range: use {lo} to {hi}"))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    level: Level,
    #[serde(default = "yes")]
    syslog: bool,
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    format: FormatName,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog { level: Level::default(), syslog: true, file: None, format: FormatName::default() }
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default = "default_max_attempts")]
    max_attempts: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self { max_attempts: DEFAULT_MAX_ATTEMPTS }
    }
}

fn default_max_attempts() -> usize {
    DEFAULT_MAX_ATTEMPTS
}
