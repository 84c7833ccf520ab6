//! `knockd --convert`: any loaded config written back as knockd.yaml.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use super::{model, proof};

use super::{
    Config, DEFAULT_CMD_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_SEQ_TIMEOUT, DEFAULT_STATE_DIR, DEFAULT_USER, PortProto,
    Proof, Proto,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence: Option<Vec<Port>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    one_time_sequences: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotating: Option<RotatingOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spa: Option<SpaOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fwknop: Option<FwknopOut<'a>>,
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
struct RotatingOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_file: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_files: Option<&'a [PathBuf]>,
    step: String,
    length: usize,
    ports: String,
    protocol: &'static str,
}

#[derive(Serialize)]
struct SpaOut<'a> {
    port: u16,
    window: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac_key_file: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    public_keys: &'a [PathBuf],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    require_address: bool,
}

#[derive(Serialize)]
struct FwknopOut<'a> {
    port: u16,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_base64: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac_key_base64: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac_key_file: Option<&'a PathBuf>,
    hmac_digest: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    require_source_address: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    require_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    open_ports: Vec<Port>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    restrict_ports: Vec<Port>,
    max_timeout: String,
    window: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    destination: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

/// A key's three spellings, as (text, base64, file).
fn key_out(key: &proof::KeyMaterial) -> (Option<&str>, Option<&str>, Option<&PathBuf>) {
    match key {
        proof::KeyMaterial::Text(t) => (Some(t), None, None),
        proof::KeyMaterial::Base64(b) => (None, Some(b), None),
        proof::KeyMaterial::File(f) => (None, None, Some(f)),
    }
}

fn fwknop_out(f: &proof::Fwknop) -> FwknopOut<'_> {
    let (key, key_base64, key_file) = key_out(&f.key);
    let (hmac_key, hmac_key_base64, hmac_key_file) = key_out(&f.hmac_key);
    FwknopOut {
        port: f.port,
        name: &f.name,
        key,
        key_base64,
        key_file,
        hmac_key,
        hmac_key_base64,
        hmac_key_file,
        hmac_digest: f.hmac_digest.name(),
        require_source_address: f.require_source_address,
        require_username: f.require_username.as_deref(),
        open_ports: f.open_ports.iter().map(port).collect(),
        restrict_ports: f.restrict_ports.iter().map(port).collect(),
        max_timeout: duration(f.max_timeout),
        window: duration(f.window),
        destination: f.destination.iter().map(|n| n.to_string()).collect(),
        expires: f.expires.map(|e| e.to_string()),
    }
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
enum Port {
    Tcp(u16),
    Other(String),
}

fn port(p: &PortProto) -> Port {
    match p.proto {
        Proto::Tcp => Port::Tcp(p.port),
        Proto::Udp => Port::Other(p.to_string()),
    }
}

fn duration(d: std::time::Duration) -> String {
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
        let why = d.fwknop().and_then(|f| f.refused.as_deref()).unwrap_or_default();
        let ports: Vec<String> = d.open.iter().flat_map(|o| &o.ports).map(PortProto::to_string).collect();
        let guard = match ports.as_slice() {
            [] => String::new(),
            list => format!(" (it kept {} closed; no door here does)", list.join(", ")),
        };
        text.push_str(&format!("# {} is left out{guard}: {why}\n", d.name));
    }
    text + &serde_yaml_ng::to_string(&out).expect("plain data always serializes")
}

/// An access.conf stanza knockd refuses: YAML has no way to write it, so it is a comment.
fn left_out(d: &model::Door) -> bool {
    d.fwknop().is_some_and(|f| f.refused.is_some())
}

/// One door, with what its defaults already say left out.
fn door(d: &model::Door) -> Door<'_> {
    let (sequence, one_time_sequences, rotating) = match d.sequence() {
        Some(Proof::Sequence(s)) => (Some(s.iter().map(port).collect()), None, None),
        Some(Proof::OneTime(path)) => (None, Some(path), None),
        Some(Proof::Rotating(r)) => (None, None, Some(rotating_out(r))),
        _ => (None, None, None),
    };
    Door {
        sequence,
        one_time_sequences,
        rotating,
        spa: d.spa().map(|s| SpaOut {
            port: s.port,
            window: duration(s.window),
            hmac_key_file: s.hmac_key_file.as_ref(),
            public_keys: &s.public_keys,
            require_address: s.require_address,
        }),
        fwknop: d.fwknop().map(fwknop_out),
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

fn rotating_out(r: &proof::Rotating) -> RotatingOut<'_> {
    RotatingOut {
        secret_file: match r.secret_files.as_slice() {
            [one] => Some(one),
            _ => None,
        },
        secret_files: (r.secret_files.len() != 1).then_some(r.secret_files.as_slice()),
        step: duration(r.step),
        length: r.length,
        ports: format!("{}-{}", r.ports.0, r.ports.1),
        protocol: r.proto.name(),
    }
}

fn open(o: &model::OpenAction) -> Open<'_> {
    Open {
        // A per-port door's ports are its `fwknop.open_ports`; a door that only forwards has none.
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
