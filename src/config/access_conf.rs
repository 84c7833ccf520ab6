//! fwknopd's access.conf, loaded unchanged into the same model as YAML: one door per stanza,
//! named `stanza1`, `stanza2`... in file order (includes where they stand).
//!
//! ```text
//! SOURCE              198.18.0.0/16
//! OPEN_PORTS          tcp/22
//! KEY_BASE64          aiAWG9B/dq+7bUR12Zrw4d4UBHVrZmeMTrEfP31C2kw=
//! HMAC_KEY_BASE64     eD+riu6fYSbODfJFHEbjnD8BBrMMpSsHVw9lvYtAugoCiGf7WRmsRio3SdXVgi/TvpTG6xN8EO/c+ldSc+8zxg==
//! FW_ACCESS_TIMEOUT   30
//! ```
//!
//! As in fwknopd: a line is a directive and its value (up to a `;`), a stanza starts with
//! `SOURCE`, `#` and `;` start comments, `%include` and `%include_folder` (its `*.conf` files)
//! go three levels deep. Unlike fwknopd, a directive knockd does not implement is an error
//! naming it, not a silent difference: GPG, NAT, command execution, modes other than CBC.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    CMD_TIMEOUT_RANGE, Commands, Config, ConfigError, DEFAULT_CMD_TIMEOUT, DEFAULT_SEQ_TIMEOUT, Door,
    FWKNOP_ACCESS_TIMEOUT, FWKNOP_MAX_TIMEOUT, FWKNOP_PORT, FWKNOP_WINDOW, Fwknop, HmacDigest, KeyMaterial, Location,
    OPEN_TIMEOUT_RANGE, OpenAction, PortProto, Proof, Proto, TcpFlags, check_range, yaml::check_command,
};

/// How deep `%include` may go, as in fwknopd.
const MAX_DEPTH: usize = 3;
/// Largest file read.
const MAX_FILE: u64 = 1 << 20;
/// What knockd reads; for the error that names an unknown directive.
const DIRECTIVES: &str = "SOURCE, DESTINATION, OPEN_PORTS, RESTRICT_PORTS, KEY, KEY_BASE64, HMAC_KEY, HMAC_KEY_BASE64, \
     HMAC_DIGEST_TYPE, ENCRYPTION_MODE, FW_ACCESS_TIMEOUT, MAX_FW_TIMEOUT, REQUIRE_SOURCE_ADDRESS, REQUIRE_USERNAME, \
     ACCESS_EXPIRE, ACCESS_EXPIRE_EPOCH, CMD_CYCLE_OPEN, CMD_CYCLE_CLOSE, CMD_CYCLE_TIMER, %include, %include_folder";

/// One stanza while it is read.
#[derive(Default)]
struct Stanza {
    at: (String, usize),
    source: Vec<ipnet::IpNet>,
    destination: Vec<ipnet::IpNet>,
    open_ports: Vec<PortProto>,
    restrict_ports: Vec<PortProto>,
    key: Option<KeyMaterial>,
    hmac_key: Option<KeyMaterial>,
    hmac_digest: Option<HmacDigest>,
    access_timeout: Option<Duration>,
    max_timeout: Option<Duration>,
    require_source_address: bool,
    require_username: Option<String>,
    expires: Option<u64>,
    cycle_open: Option<String>,
    cycle_close: Option<String>,
    cycle_timer: Option<Duration>,
}

/// The whole file set as read so far.
struct Reader {
    stanzas: Vec<Stanza>,
    /// Every file read, the first one first.
    files: Vec<PathBuf>,
}

/// Parses `text` (the contents of `file`) into a validated [`Config`].
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let mut reader = Reader { stanzas: Vec::new(), files: vec![PathBuf::from(file)] };
    reader.text(file, text, 1)?;
    let mut doors = Vec::new();
    for (i, stanza) in reader.stanzas.into_iter().enumerate() {
        let (at_file, at_line) = stanza.at.clone();
        let error = |message: String| invalid(&at_file, at_line, message);
        doors.push(stanza.into_door(i + 1).map_err(error)?);
    }
    if doors.is_empty() {
        return Err(ConfigError::Invalid {
            file: file.to_owned(),
            location: None,
            message: "no stanza is defined: add one, starting with a `SOURCE` line".into(),
        });
    }
    Ok(Config { included: reader.files.split_off(1), ..Config::with_doors(doors) })
}

fn invalid(file: &str, line: usize, message: String) -> ConfigError {
    ConfigError::Invalid { file: file.to_owned(), location: Some(Location { line, column: 1 }), message }
}

impl Reader {
    fn text(&mut self, file: &str, text: &str, depth: usize) -> Result<(), ConfigError> {
        // The stanza this file's directives go to: included files start stanzas of their own,
        // and the including file's go on after the include.
        let mut current: Option<usize> = None;
        for (index, raw) in text.lines().enumerate() {
            let n = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let (var, value) = split(line).ok_or_else(|| {
                invalid(file, n, format!("`{line}`: write a directive and its value, like `SOURCE ANY`"))
            })?;
            let here = |message: String| invalid(file, n, format!("{var}: {message}"));
            match var.to_ascii_uppercase().as_str() {
                "%INCLUDE" => self.include(file, Path::new(value), depth).map_err(|e| annotate(e, file, n))?,
                "%INCLUDE_FOLDER" => self.folder(file, Path::new(value), depth).map_err(|e| annotate(e, file, n))?,
                "SOURCE" => {
                    let source = prefixes(value).map_err(here)?;
                    self.stanzas.push(Stanza { at: (file.to_owned(), n), source, ..Stanza::default() });
                    current = Some(self.stanzas.len() - 1);
                }
                upper => {
                    let Some(i) = current else {
                        return Err(here("comes before any `SOURCE` line: a stanza starts with `SOURCE`".into()));
                    };
                    self.stanzas[i].directive(upper, value).map_err(here)?;
                }
            }
        }
        Ok(())
    }

    fn include(&mut self, from: &str, path: &Path, depth: usize) -> Result<(), ConfigError> {
        if depth >= MAX_DEPTH {
            return Err(invalid(from, 0, format!("{}: includes go at most {MAX_DEPTH} levels deep", path.display())));
        }
        let path = resolve(from, path);
        let name = path.display().to_string();
        let bytes = super::read_private(&path, MAX_FILE).map_err(|e| match e {
            super::PrivateFileError::Io(source) => ConfigError::Read { file: name.clone(), source },
            super::PrivateFileError::TooLarge => ConfigError::TooLarge { file: name.clone() },
            super::PrivateFileError::Unsafe(message) => ConfigError::Unsafe { file: name.clone(), message },
        })?;
        let text = String::from_utf8(bytes).map_err(|_| invalid(&name, 0, "the file is not UTF-8 text".into()))?;
        self.files.push(path);
        self.text(&name, &text, depth + 1)
    }

    /// Every `*.conf` file of a folder, in name order (fwknopd reads them in directory order).
    fn folder(&mut self, from: &str, dir: &Path, depth: usize) -> Result<(), ConfigError> {
        let dir = resolve(from, dir);
        let entries =
            std::fs::read_dir(&dir).map_err(|source| ConfigError::Read { file: dir.display().to_string(), source })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        files.sort();
        for file in files {
            self.include(from, &file, depth)?;
        }
        Ok(())
    }
}

/// A relative include is relative to the including file's directory.
fn resolve(from: &str, path: &Path) -> PathBuf {
    match Path::new(from).parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_owned(),
    }
}

/// An include that failed says where it was included from.
fn annotate(e: ConfigError, file: &str, line: usize) -> ConfigError {
    match e {
        ConfigError::Invalid { file: f, location: None, message } if f == file => invalid(file, line, message),
        other => other,
    }
}

/// `VAR value` (fwknopd: the value runs to a `;` or the end of the line; a `:` after the
/// directive is allowed).
fn split(line: &str) -> Option<(&str, &str)> {
    let (var, rest) = line.split_once(char::is_whitespace)?;
    let value = rest.split(';').next()?.trim();
    (!value.is_empty()).then_some((var.trim_end_matches(':'), value))
}

/// `ANY`, or addresses and prefixes separated by commas.
fn prefixes(value: &str) -> Result<Vec<ipnet::IpNet>, String> {
    if value.eq_ignore_ascii_case("ANY") {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|item| {
            let item = item.trim();
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| format!("`{item}` is not an address or a prefix: write ANY, 198.18.0.0/16 or 198.18.0.2"))
        })
        .collect()
}

/// `tcp/22, udp/1194`.
fn ports(value: &str) -> Result<Vec<PortProto>, String> {
    value
        .split(',')
        .map(|item| {
            let (proto, port) =
                item.trim().split_once('/').ok_or_else(|| format!("`{item}`: write proto/port, like tcp/22"))?;
            let proto = match proto.trim().to_ascii_lowercase().as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                other => return Err(format!("`{item}`: unknown protocol `{other}`: use tcp or udp")),
            };
            let port: u64 = port.trim().parse().map_err(|_| format!("`{item}` is not a port"))?;
            PortProto::checked(port, proto)
        })
        .collect()
}

fn seconds(value: &str) -> Result<Duration, String> {
    value.parse::<u64>().map(Duration::from_secs).map_err(|_| format!("`{value}` is not a number of seconds"))
}

fn key(value: &str, base64: bool) -> Result<KeyMaterial, String> {
    if value.eq_ignore_ascii_case("__CHANGEME__") {
        return Err("the value is still `__CHANGEME__`: set the key (`fwknop --key-gen` makes a pair)".into());
    }
    if !base64 {
        return Ok(KeyMaterial::Text(value.to_owned()));
    }
    crate::doors::key_file::decode_base64(value).ok_or_else(|| format!("`{value}` is not base64"))?;
    Ok(KeyMaterial::Base64(value.to_owned()))
}

/// `MM/DD/YYYY`, midnight UTC.
fn date(value: &str) -> Result<u64, String> {
    let bad = || format!("`{value}` is not a date: write MM/DD/YYYY");
    let parts: Vec<&str> = value.split('/').collect();
    let [month, day, year] = parts.as_slice() else { return Err(bad()) };
    let text = format!("{year:0>4}-{month:0>2}-{day:0>2} 00:00:00");
    humantime::parse_rfc3339_weak(&text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .ok_or_else(bad)
}

/// fwknopd's command variables (`$IP`), as knockd's placeholders (`%IP%`).
fn command(value: &str) -> Result<String, String> {
    const VARS: [&str; 8] = ["CLIENT_TIMEOUT", "PKT_SRC", "TIMEOUT", "PROTO", "PORT", "SRC", "DST", "IP"];
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match VARS.iter().find(|v| after.starts_with(*v)) {
            Some(var) => {
                out.push_str(&format!("%{var}%"));
                rest = &after[var.len()..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    check_command(&out)?;
    Ok(out)
}

impl Stanza {
    /// One directive of the stanza; `upper` is its name in upper case.
    fn directive(&mut self, upper: &str, value: &str) -> Result<(), String> {
        match upper {
            "DESTINATION" => self.destination = prefixes(value)?,
            "OPEN_PORTS" => self.open_ports = ports(value)?,
            "RESTRICT_PORTS" => self.restrict_ports = ports(value)?,
            "KEY" => self.key = Some(key(value, false)?),
            "KEY_BASE64" => self.key = Some(key(value, true)?),
            "HMAC_KEY" => self.hmac_key = Some(key(value, false)?),
            "HMAC_KEY_BASE64" => self.hmac_key = Some(key(value, true)?),
            "HMAC_DIGEST_TYPE" => {
                self.hmac_digest =
                    Some(HmacDigest::parse(value).ok_or_else(|| {
                        format!("`{value}`: use md5, sha1, sha256, sha384, sha512, sha3_256 or sha3_512")
                    })?)
            }
            "ENCRYPTION_MODE" if value.eq_ignore_ascii_case("CBC") => {}
            "ENCRYPTION_MODE" => {
                return Err(format!(
                    "knockd does only CBC (fwknop's default), not `{value}`: remove the line, or set CBC"
                ));
            }
            "FW_ACCESS_TIMEOUT" => self.access_timeout = Some(check_range(seconds(value)?, OPEN_TIMEOUT_RANGE)?),
            "MAX_FW_TIMEOUT" => self.max_timeout = Some(check_range(seconds(value)?, OPEN_TIMEOUT_RANGE)?),
            "REQUIRE_SOURCE_ADDRESS" | "REQUIRE_SOURCE" => self.require_source_address = value.starts_with(['Y', 'y']),
            "REQUIRE_USERNAME" => self.require_username = Some(value.to_owned()),
            "ACCESS_EXPIRE" => self.expires = Some(date(value)?),
            "ACCESS_EXPIRE_EPOCH" => {
                self.expires = Some(value.parse().map_err(|_| format!("`{value}` is not a Unix time in seconds"))?)
            }
            "CMD_CYCLE_OPEN" => self.cycle_open = Some(command(value)?),
            "CMD_CYCLE_CLOSE" => self.cycle_close = Some(command(value)?),
            "CMD_CYCLE_TIMER" => self.cycle_timer = Some(check_range(seconds(value)?, CMD_TIMEOUT_RANGE)?),
            gpg if gpg.starts_with("GPG_") => {
                return Err("knockd does not take fwknop's GPG packets: give the stanza KEY_BASE64 and \
                            HMAC_KEY_BASE64 (`fwknop --key-gen`), and clients --use-hmac"
                    .into());
            }
            "ENABLE_CMD_EXEC"
            | "ENABLE_CMD_SUDO_EXEC"
            | "CMD_EXEC_USER"
            | "CMD_EXEC_GROUP"
            | "CMD_SUDO_EXEC_USER"
            | "CMD_SUDO_EXEC_GROUP" => {
                return Err("knockd does not run commands a packet sends (CMD_EXEC): remove the line; \
                            CMD_CYCLE_OPEN runs a command of yours on access"
                    .into());
            }
            "FORCE_NAT" | "FORCE_SNAT" | "FORCE_MASQUERADE" | "DISABLE_DNAT" | "FORWARD_ALL" => {
                return Err("knockd does not forward or translate (NAT): remove the line".into());
            }
            _ => return Err(format!("unknown directive: knockd reads {DIRECTIVES}")),
        }
        Ok(())
    }

    /// The door this stanza describes, as door `stanza<number>`.
    fn into_door(self, number: usize) -> Result<Door, String> {
        let name = format!("stanza{number}");
        let key = self.key.ok_or("the stanza has no KEY or KEY_BASE64")?;
        let hmac_key = self.hmac_key.ok_or(
            "the stanza has no HMAC_KEY_BASE64: knockd checks an HMAC before anything else (`fwknop --key-gen` \
             makes the key; clients send it with --use-hmac)",
        )?;
        if key == hmac_key {
            return Err("the encryption key and the HMAC key must not be the same".into());
        }
        let access_timeout = self.access_timeout.unwrap_or(FWKNOP_ACCESS_TIMEOUT);
        let fwknop = Fwknop {
            port: FWKNOP_PORT,
            name: name.clone(),
            key,
            hmac_key,
            hmac_digest: self.hmac_digest.unwrap_or(HmacDigest::Sha256),
            require_source_address: self.require_source_address,
            require_username: self.require_username,
            open_ports: self.open_ports.clone(),
            restrict_ports: self.restrict_ports,
            max_timeout: self.max_timeout.unwrap_or(FWKNOP_MAX_TIMEOUT),
            window: FWKNOP_WINDOW,
            destination: self.destination,
            expires: self.expires,
        };
        let cycle = self.cycle_open.is_some();
        if cycle && self.cycle_close.is_none() {
            return Err("CMD_CYCLE_OPEN needs CMD_CYCLE_CLOSE (`NONE` for no closing command)".into());
        }
        let stop = self.cycle_close.filter(|c| !c.eq_ignore_ascii_case("NONE"));
        Ok(Door {
            name,
            proofs: vec![Proof::Fwknop(Box::new(fwknop))],
            seq_timeout: DEFAULT_SEQ_TIMEOUT,
            tcp_flags: TcpFlags::default(),
            target: None,
            from: self.source,
            not_from: Vec::new(),
            // fwknopd runs CMD_CYCLE_OPEN instead of adding a firewall rule.
            open: (!cycle).then_some(OpenAction {
                ports: self.open_ports,
                per_port: true,
                timeout: access_timeout,
                attach: None,
                forward: Vec::new(),
            }),
            commands: Commands {
                start: self.cycle_open,
                start_v6: None,
                stop,
                stop_v6: None,
                // fwknopd closes a command cycle after CMD_CYCLE_TIMER, else after the access timeout.
                cmd_timeout: self.cycle_timer.unwrap_or(if cycle { access_timeout } else { DEFAULT_CMD_TIMEOUT }),
            },
        })
    }
}
