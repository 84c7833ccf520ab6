//! Configuration: every file format is turned into one validated [`Config`] before anything runs.
//!
//! Contract: [`load`] reads a file (refusing one that other users could change), detects its
//! format ([`yaml`] or the classic [`knockd_conf`]) and returns a [`Config`] in which every
//! value has been checked; nothing downstream parses text. An error names the file, the line
//! and the key, and says how to fix it. [`convert`] writes any config back as knockd.yaml.

pub mod convert;
pub mod knockd_conf;
mod model;
mod ports;
pub mod private_file;
pub mod yaml;

use std::fmt;
use std::path::Path;

pub use model::*;
pub use ports::*;
pub use private_file::{PrivateFileError, check_private, read_private};

/// Largest config file we read; anything bigger is a mistake (or an attack), not a config.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Where in a file an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number.
    pub column: usize,
}

/// A config that cannot be used, with enough context to fix it.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{file}: cannot read the config: {source}")]
    Read {
        /// The config file's path, as given.
        file: String,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The file is too large to be a config.
    #[error("{file}: the config is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge { file: String },
    /// Other users could change the file, so it could open the firewall for them.
    #[error("{file}: refusing to use it: {message}")]
    Unsafe { file: String, message: String },
    /// The file says something that cannot be used; the message says how to fix it.
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
    /// knockd.yaml.
    Yaml,
    /// The classic knockd.conf.
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
    let bytes = read_private(path, MAX_CONFIG_BYTES).map_err(|e| match e {
        PrivateFileError::Io(source) => ConfigError::Read { file: file.clone(), source },
        PrivateFileError::TooLarge => ConfigError::TooLarge { file: file.clone() },
        PrivateFileError::Unsafe(message) => ConfigError::Unsafe { file: file.clone(), message },
    })?;
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Invalid {
        file: file.clone(),
        location: None,
        message: "the file is not UTF-8 text".into(),
    })?;
    match detect(path, &text) {
        Format::Yaml => yaml::parse(&file, &text),
        Format::KnockdConf => knockd_conf::parse(&file, &text),
    }
}
