//! Configuration: every file format is turned into one validated [`Config`] before anything runs.

pub mod convert;
pub mod knockd_conf;
mod model;
pub mod yaml;

use std::fmt;
use std::path::Path;

pub use model::*;

/// Largest config file we read; anything bigger is a mistake (or an attack), not a config.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Where in a file an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// A config that cannot be used, with enough context to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the config: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: the config is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge { file: String },
    #[error("{file}: refusing to use it: {message}")]
    Unsafe { file: String, message: String },
    #[error("{file}{}: {message}", DisplayLocation(location))]
    Invalid { file: String, location: Option<Location>, message: String },
}

struct DisplayLocation<'a>(&'a Option<Location>);

impl fmt::Display for DisplayLocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => write!(f, ":{}:{}", l.line, l.column),
            None => Ok(()),
        }
    }
}

/// The two config languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    KnockdConf,
}

/// `.yaml`/`.yml` files, and any file whose text is a YAML mapping, are YAML; everything else
/// is a classic knockd.conf (whose `[options]` header reads as a YAML list, not a mapping).
pub fn detect(path: &Path, text: &str) -> Format {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if matches!(extension.as_deref(), Some("yaml" | "yml")) {
        return Format::Yaml;
    }
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
        Ok(serde_yaml_ng::Value::Mapping(_)) => Format::Yaml,
        _ => Format::KnockdConf,
    }
}

/// Reads and validates the config at `path`, in whichever format it is written.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    check_private(path).map_err(|message| ConfigError::Unsafe { file: file.clone(), message })?;
    let text = read_bounded(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::FileTooLarge => ConfigError::TooLarge { file: file.clone() },
        _ => ConfigError::Read { file: file.clone(), source },
    })?;
    match detect(path, &text) {
        Format::Yaml => yaml::parse(&file, &text),
        Format::KnockdConf => knockd_conf::parse(&file, &text),
    }
}

/// A file that decides what the firewall opens (a config, a one-time sequence file) must not be
/// writable by anyone but its owner, and its owner must be root or the daemon's own user.
/// Returns what is wrong and how to fix it. A missing file is left to the reader to report.
pub fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else { return Ok(()) };
    let mode = meta.mode();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if mode & 0o002 != 0 {
        return Err(format!(
            "it is writable by every user (mode {:o}): run `chmod o-w {}`",
            mode & 0o7777,
            path.display()
        ));
    }
    if mode & 0o020 != 0 && meta.gid() != 0 {
        return Err(format!(
            "it is writable by group {} (mode {:o}): run `chmod g-w {}`",
            meta.gid(),
            mode & 0o7777,
            path.display()
        ));
    }
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!("it is owned by uid {}, not root: run `chown root {}`", meta.uid(), path.display()));
    }
    Ok(())
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::ErrorKind::FileTooLarge.into());
    }
    Ok(text)
}
