//! `knockd --convert`: any loaded config written back as knockd.yaml. Each proof writes its own
//! key ([`crate::config::ProofSettings::to_yaml`]); this module writes the rest of the door.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use super::model;

use super::{
    Config, DEFAULT_CMD_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_SEQ_TIMEOUT, DEFAULT_STATE_DIR, DEFAULT_USER, PortProto,
    Proto,
};

#[derive(Serialize)]
struct Out<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    interfaces: &'a [String],
    nftables: Table<'a>,
    log: Log<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pidfile: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_dir: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    control_socket: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<Metrics<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commands: Option<CommandsOut>,
    /// Serialized as a mapping in file order.
    doors: Doors<'a>,
}

#[derive(Serialize)]
struct CommandsOut {
    privileges: &'static str,
}

#[derive(Serialize)]
struct Metrics<'a> {
    textfile: &'a PathBuf,
}

#[derive(Serialize)]
struct Table<'a> {
    table: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    set_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fw4: Option<Fw4Out<'a>>,
}

/// `nftables.fw4`.
#[derive(Serialize)]
struct Fw4Out<'a> {
    zone: &'a str,
}

#[derive(Serialize)]
struct Log<'a> {
    level: String,
    syslog: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a PathBuf>,
    /// `classic` keeps a converted knockd.conf's log lines as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
}

#[derive(Serialize)]
struct Limits {
    max_attempts: usize,
}

struct Doors<'a>(Vec<(&'a str, Door<'a>)>);

impl Serialize for Doors<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, door) in &self.0 {
            map.serialize_entry(name, door)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Door<'a> {
    /// Each proof under its key, in the kinds' order (a knock sequence first).
    #[serde(flatten)]
    proofs: serde_yaml_ng::Mapping,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    from: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_from: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_flags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    open: Option<Open<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command_6: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_command: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_command_6: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd_timeout: Option<String>,
}

#[derive(Serialize)]
struct Open<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ports: Option<Vec<Port>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    set: Option<Set<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    forward: Vec<ForwardOut>,
    timeout: String,
}

/// One `open.forward` entry.
#[derive(Serialize)]
struct ForwardOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<Port>,
    to: String,
}

#[derive(Serialize)]
struct Set<'a> {
    family: &'a str,
    table: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv6: Option<&'a str>,
}

/// TCP ports as plain numbers, UDP as `"9000/udp"`, as a person would write them.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Port {
    /// A TCP port: its number.
    Tcp(u16),
    /// Any other: `9000/udp`.
    Other(String),
}

/// How a port is written back.
pub fn port(p: &PortProto) -> Port {
    match p.proto {
        Proto::Tcp => Port::Tcp(p.port),
        Proto::Udp => Port::Other(p.to_string()),
    }
}

/// How a duration is written back: `30s`, `1m`, `2h30m`.
pub fn duration(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// The config as knockd.yaml text; loading it gives back an equal config.
pub fn to_yaml(config: &Config) -> String {
    let out = Out {
        interfaces: &config.interfaces,
        nftables: Table {
            table: &config.table,
            set_size: (config.set_size != crate::config::DEFAULT_SET_SIZE).then_some(config.set_size),
            fw4: config.fw4.as_ref().map(|f| Fw4Out { zone: &f.zone }),
        },
        log: Log {
            level: config.log.level.to_string().to_ascii_lowercase(),
            syslog: config.log.syslog,
            file: config.log.file.as_ref(),
            format: (config.log.format == super::LogFormat::Classic).then_some("classic"),
        },
        pidfile: config.pidfile.as_ref(),
        state_dir: (config.state_dir != std::path::Path::new(DEFAULT_STATE_DIR)).then_some(&config.state_dir),
        user: (config.user != DEFAULT_USER).then_some(config.user.as_str()),
        limits: (config.max_attempts != DEFAULT_MAX_ATTEMPTS).then_some(Limits { max_attempts: config.max_attempts }),
        control_socket: config.control_socket.as_ref(),
        metrics: config.metrics_textfile.as_ref().map(|textfile| Metrics { textfile }),
        commands: (config.command_privileges == model::CommandPrivileges::Full)
            .then_some(CommandsOut { privileges: "full" }),
        doors: Doors(config.doors.iter().filter(|d| !left_out(d)).map(|d| (d.name.as_str(), door(d))).collect()),
    };
    let mut text = String::new();
    if config.has_inline_secrets() {
        text.push_str("# This file holds keys: keep it mode 600 (knockd refuses it if other users can read it).\n");
    }
    for d in config.doors.iter().filter(|d| left_out(d)) {
        let why = d.left_out().unwrap_or_default();
        let ports: Vec<String> = d.open.iter().flat_map(|o| &o.ports).map(PortProto::to_string).collect();
        let guard = match ports.as_slice() {
            [] => String::new(),
            list => format!(" (it kept {} closed; no door here does)", list.join(", ")),
        };
        text.push_str(&format!("# {} is left out{guard}: {why}\n", d.name));
    }
    text + &serde_yaml_ng::to_string(&out).expect("plain data always serializes")
}

/// A door its loader left out (an access.conf stanza knockd refuses): YAML has no way to write
/// it, so it is a comment.
fn left_out(d: &model::Door) -> bool {
    d.left_out().is_some()
}

/// One door, with what its defaults already say left out.
fn door(d: &model::Door) -> Door<'_> {
    let proofs = d.proofs.iter().map(|p| (serde_yaml_ng::Value::from(p.key()), p.to_yaml())).collect();
    Door {
        proofs,
        from: d.from.iter().map(|n| n.to_string()).collect(),
        not_from: d.not_from.iter().map(|n| n.to_string()).collect(),
        seq_timeout: (d.seq_timeout != DEFAULT_SEQ_TIMEOUT).then(|| duration(d.seq_timeout)),
        tcp_flags: (!d.tcp_flags.is_any()).then(|| d.tcp_flags.to_string()),
        target: d.target,
        open: d.open.as_ref().map(open),
        command: d.commands.start.as_deref(),
        command_6: d.commands.start_v6.as_deref(),
        stop_command: d.commands.stop.as_deref(),
        stop_command_6: d.commands.stop_v6.as_deref(),
        cmd_timeout: (d.commands.cmd_timeout != DEFAULT_CMD_TIMEOUT).then(|| duration(d.commands.cmd_timeout)),
    }
}

fn open(o: &super::OpenAction) -> Open<'_> {
    Open {
        // A per-port door's ports are its clients' (the proof writes them); a door that only forwards has none.
        ports: (o.attach.is_none() && !o.per_port && !o.ports.is_empty()).then(|| o.ports.iter().map(port).collect()),
        forward: o
            .forward
            .iter()
            .map(|f| ForwardOut {
                port: f.port.as_ref().map(port),
                to: if f.proto == crate::config::Proto::Udp { format!("{}/udp", f.to) } else { f.to.to_string() },
            })
            .collect(),
        set: o.attach.as_ref().map(|a| Set {
            family: a.family.name(),
            table: &a.table,
            ipv4: a.ipv4.as_deref(),
            ipv6: a.ipv6.as_deref(),
        }),
        timeout: duration(o.timeout),
    }
}
