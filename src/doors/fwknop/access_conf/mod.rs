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
//! go three levels deep, `%include_keys` reads a stanza's keys from a file of their own. A
//! relative include is looked for beside the including file, then (fwknopd's meaning) in the
//! directory knockd was started in; the log says which. Unlike fwknopd, a directive knockd
//! does not know is an error naming it, not a silent difference; what it knows but will not do
//! (GPG, NAT, modes other than CBC, no HMAC) leaves that stanza out, with a warning
//! ([`stanza`]).

mod stanza;
pub(crate) mod values;

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, Location, Notice, PrivateFileError, Trust, read_private};

use super::settings::{Fwknop, FwknopDoor};
use stanza::Stanza;
use values::split;

/// How deep `%include` may go, as in fwknopd.
const MAX_DEPTH: usize = 3;
/// Largest file read.
const MAX_FILE: u64 = 1 << 20;

/// The whole file set as read so far.
struct Reader<'a> {
    stanzas: Vec<Stanza>,
    /// Every file read, the first one first.
    files: Vec<PathBuf>,
    notices: Vec<Notice>,
    /// Where knockd was started: fwknopd opens relative includes from there.
    start_dir: Option<&'a Path>,
    /// Whose included files are trusted like root's.
    trust: &'a Trust,
}

/// Parses `text` (the contents of `file`) into a validated [`Config`]; relative includes are
/// looked for beside the including file only.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    parse_with(file, text, None, &Trust::default())
}

/// Parses `text` (the contents of `file`) into a validated [`Config`]; relative includes are
/// looked for beside the including file, then in `start_dir`; included files owned by users
/// `trust` trusts are read like root's.
pub fn parse_with(file: &str, text: &str, start_dir: Option<&Path>, trust: &Trust) -> Result<Config, ConfigError> {
    let files = vec![PathBuf::from(file)];
    let mut reader = Reader { stanzas: Vec::new(), files, notices: Vec::new(), start_dir, trust };
    reader.text(file, text, 1)?;
    let mut doors = Vec::new();
    let mut left_out = Vec::new();
    for (i, stanza) in reader.stanzas.into_iter().enumerate() {
        let (at_file, at_line) = stanza.at.clone();
        let door = stanza.into_door(i + 1).map_err(|message| invalid(&at_file, at_line, message))?;
        if let Some(why) = door.fwknop().and_then(|f| f.refused.as_deref()) {
            let guarded: Vec<String> = door.open.iter().flat_map(|o| &o.ports).map(|p| p.to_string()).collect();
            let ports = match guarded.as_slice() {
                [] => String::new(),
                list => format!(" Its ports ({}) stay closed to every client.", list.join(", ")),
            };
            let message = format!(
                "{at_file}:{at_line}: {} is left out: {why}. knockd serves the other stanzas.{ports}",
                door.name
            );
            left_out.push(message.clone());
            reader.notices.push(Notice { level: log::Level::Warn, message });
        }
        doors.push(door);
    }
    if doors.is_empty() {
        return Err(ConfigError::Invalid {
            file: file.to_owned(),
            location: None,
            message: "no stanza is defined: add one, starting with a `SOURCE` line".into(),
        });
    }
    if left_out.len() == doors.len() {
        return Err(ConfigError::Invalid {
            file: file.to_owned(),
            location: None,
            message: format!("no stanza knockd can serve:\n  {}", left_out.join("\n  ")),
        });
    }
    Ok(Config { included: reader.files.split_off(1), notices: reader.notices, ..Config::with_doors(doors) })
}

fn invalid(file: &str, line: usize, message: String) -> ConfigError {
    ConfigError::Invalid { file: file.to_owned(), location: Some(Location { line, column: 1 }), message }
}

/// The lines of `text` that say something, numbered from 1: blank lines and comments (`#`,
/// `;`) left out.
fn directive_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let said = |line: &str| !line.is_empty() && !line.starts_with('#') && !line.starts_with(';');
    text.lines().map(str::trim).enumerate().filter(move |(_, line)| said(line)).map(|(index, line)| (index + 1, line))
}

/// An included file could not be read: said where it was included.
fn unreadable(from: &str, line: usize, path: &Path, e: PrivateFileError) -> ConfigError {
    match e {
        PrivateFileError::Io(source) => invalid(from, line, format!("cannot read {}: {source}", path.display())),
        PrivateFileError::TooLarge => ConfigError::TooLarge { file: path.display().to_string() },
        PrivateFileError::Unsafe(message) => ConfigError::Unsafe { file: path.display().to_string(), message },
    }
}

impl Reader<'_> {
    fn note(&mut self, level: log::Level, message: String) {
        self.notices.push(Notice { level, message });
    }

    fn text(&mut self, file: &str, text: &str, depth: usize) -> Result<(), ConfigError> {
        // The stanza this file's directives go to: included files start stanzas of their own,
        // and the including file's go on after the include.
        let mut current: Option<usize> = None;
        for (n, line) in directive_lines(text) {
            let (var, value) = split(line).ok_or_else(|| {
                invalid(file, n, format!("`{line}`: write a directive and its value, like `SOURCE ANY`"))
            })?;
            let here = |message: String| invalid(file, n, format!("{var}: {message}"));
            match (var.to_ascii_uppercase().as_str(), current) {
                ("%INCLUDE", _) => self.include(file, n, value, depth)?,
                ("%INCLUDE_FOLDER", _) => self.folder(file, n, value, depth)?,
                ("SOURCE", _) => {
                    let source = values::prefixes(value).map_err(here)?;
                    self.stanzas.push(Stanza::new(file, n, source));
                    current = Some(self.stanzas.len() - 1);
                }
                (_, None) => return Err(here("comes before any `SOURCE` line: a stanza starts with `SOURCE`".into())),
                ("%INCLUDE_KEYS", Some(i)) => self.include_keys(file, n, value, i)?,
                (upper, Some(i)) => {
                    if let Some((level, said)) = self.stanzas[i].directive(upper, value).map_err(here)? {
                        self.note(level, format!("{file}:{n}: {var}: {said}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Where a relative include is: beside the including file (knockd's meaning), else in
    /// the directory knockd was started in (fwknopd's); the log says which.
    fn resolve(&mut self, from: &str, line: usize, directive: &str, value: &str) -> Result<PathBuf, ConfigError> {
        let path = Path::new(value);
        if path.is_absolute() {
            return Ok(path.to_owned());
        }
        let beside = Path::new(from).parent().map_or_else(|| path.to_owned(), |dir| dir.join(path));
        let started = self.start_dir.map(|dir| dir.join(path));
        let (found, how) = if beside.exists() {
            (beside.clone(), "beside the including file")
        } else if let Some(there) = started.as_ref().filter(|p| p.exists()) {
            (there.clone(), "in the directory knockd was started in, as fwknopd reads it")
        } else {
            let tried = match &started {
                Some(there) => format!("{} (beside {from}) nor {}", beside.display(), there.display()),
                None => format!("{} (beside {from})", beside.display()),
            };
            return Err(invalid(from, line, format!("{directive} {value}: there is no {tried}")));
        };
        self.note(log::Level::Info, format!("{from}:{line}: {directive} {value}: reading {}, {how}", found.display()));
        Ok(found)
    }

    fn include(&mut self, from: &str, line: usize, value: &str, depth: usize) -> Result<(), ConfigError> {
        if depth >= MAX_DEPTH {
            let message =
                format!("%include {value}: includes go at most {MAX_DEPTH} levels deep (is it including itself?)");
            return Err(invalid(from, line, message));
        }
        let path = self.resolve(from, line, "%include", value)?;
        self.include_file(from, line, &path, depth)
    }

    fn include_file(&mut self, from: &str, line: usize, path: &Path, depth: usize) -> Result<(), ConfigError> {
        let (name, text) = self.read(from, line, path)?;
        self.text(&name, &text, depth + 1)
    }

    /// The name and text of a file included at `from`:`line`, read again on reload.
    fn read(&mut self, from: &str, line: usize, path: &Path) -> Result<(String, String), ConfigError> {
        let bytes = read_private(path, MAX_FILE, self.trust).map_err(|e| unreadable(from, line, path, e))?;
        let name = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|_| invalid(&name, 1, "the file is not UTF-8 text".into()))?;
        self.files.push(path.to_owned());
        Ok((name, text))
    }

    /// Every `*.conf` file of a folder, in name order (fwknopd reads them in directory order).
    fn folder(&mut self, from: &str, line: usize, value: &str, depth: usize) -> Result<(), ConfigError> {
        if depth >= MAX_DEPTH {
            let message = format!("%include_folder {value}: includes go at most {MAX_DEPTH} levels deep");
            return Err(invalid(from, line, message));
        }
        let dir = self.resolve(from, line, "%include_folder", value)?;
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| invalid(from, line, format!("%include_folder {value}: cannot read {}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        files.sort();
        for file in files {
            self.include_file(from, line, &file, depth)?;
        }
        Ok(())
    }

    /// `%include_keys FILE`: the stanza's keys from a file of their own. As in fwknopd, only
    /// key lines count; a file that cannot be read leaves the stanza without keys (left out).
    fn include_keys(&mut self, from: &str, line: usize, value: &str, stanza: usize) -> Result<(), ConfigError> {
        let path = self.resolve(from, line, "%include_keys", value)?;
        let (name, text) = self.read(from, line, &path)?;
        for (n, line) in directive_lines(&text) {
            let (var, value) = split(line).ok_or_else(|| {
                invalid(&name, n, format!("`{line}`: write a key directive and its value, like `KEY_BASE64 ...`"))
            })?;
            let upper = var.to_ascii_uppercase();
            if ["KEY", "KEY_BASE64", "HMAC_KEY", "HMAC_KEY_BASE64"].contains(&upper.as_str())
                || upper.starts_with("GPG_")
            {
                let here = |message: String| invalid(&name, n, format!("{var}: {message}"));
                self.stanzas[stanza].keys_and_refusals(&upper, value).map_err(here)?;
            } else {
                let message = format!("{name}:{n}: {var}: ignored: a file named by %include_keys sets keys only");
                self.note(log::Level::Info, message);
            }
        }
        Ok(())
    }
}

/// After fwknopd.conf: a stanza with `FORCE_NAT` forwards only where forwarding is on
/// (`ENABLE_IPT_FORWARDING Y`), as with fwknopd; without it, the stanza is left out.
pub fn require_forwarding(config: &mut Config) {
    for door in &mut config.doors {
        let forwards = door.open.as_ref().is_some_and(|o| !o.forward.is_empty());
        let Some(f) = door.proof::<Fwknop>() else { continue };
        if forwards && (!f.nat.forwarding || f.refused.is_some()) {
            // A stanza left out forwards nothing; its OPEN_PORTS stay guarded.
            if let Some(open) = door.open.as_mut() {
                open.forward.clear();
            }
        }
        let Some(f) = door.proof_mut::<Fwknop>() else { continue };
        if forwards && !f.nat.forwarding && f.refused.is_none() {
            f.refused = Some(
                "FORCE_NAT needs ENABLE_IPT_FORWARDING Y in fwknopd.conf, as fwknopd does: without it this host \
                 forwards nothing for the stanza"
                    .into(),
            );
        }
    }
}
