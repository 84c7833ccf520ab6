//! Configuration: every file format is turned into one validated [`Config`] before anything runs.
//!
//! Contract: [`load`] reads a file (refusing one that other users could change), detects its
//! format ([`yaml`], or a language a door kind brings: the classic knockd.conf, fwknopd's
//! access.conf) and returns a [`Config`] in which every value has been checked; nothing
//! downstream parses text. An error names the file, the line and the key, and says how to fix
//! it. [`convert`] writes any config back as knockd.yaml.
//!
//! Config knows the door kinds only through [`ProofSettings`] and [`Kinds`], which the caller
//! hands in (`doors::Kinds`): it imports nothing from `doors` or `daemon`.

mod action;
pub mod convert;
mod door_name;
mod model;
mod ports;
pub mod private_file;
pub mod proof;
pub mod yaml;

use std::fmt;
use std::path::Path;

pub use action::*;
pub use door_name::*;
pub use model::*;
pub use ports::*;
pub use private_file::{PrivateFileError, Trust, check_private, read_private, read_private_with_metadata};
pub use proof::*;

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

/// The config languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// knockd.yaml.
    Yaml,
    /// The classic knockd.conf.
    KnockdConf,
    /// fwknopd's access.conf.
    AccessConf,
}

/// `.yaml`/`.yml` files are YAML; a file named `access.conf`, or whose first directive is
/// `SOURCE` or `%include`, is fwknopd's access.conf; any other file whose text is a YAML
/// mapping is YAML; everything else is a classic knockd.conf (whose `[options]` header reads as
/// a YAML list, not a mapping).
pub fn detect(path: &Path, text: &str) -> Format {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if matches!(extension.as_deref(), Some("yaml" | "yml")) {
        return Format::Yaml;
    }
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with(['#', ';']));
    // fwknopd allows a `:` after the directive (`SOURCE: ANY;`).
    let first_word = first
        .and_then(|l| l.split_whitespace().next())
        .map_or(String::new(), |w| w.trim_end_matches(':').to_ascii_uppercase());
    if path.file_name().is_some_and(|n| n == "access.conf")
        || ["SOURCE", "%INCLUDE", "%INCLUDE_FOLDER"].contains(&first_word.as_str())
    {
        return Format::AccessConf;
    }
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
        Ok(serde_yaml_ng::Value::Mapping(_)) => Format::Yaml,
        _ => Format::KnockdConf,
    }
}

/// What a load needs besides the file: where relative includes may also be, and fwknopd.conf.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The directory knockd was started in: fwknopd opens relative `%include`s from there.
    pub start_dir: Option<std::path::PathBuf>,
    /// fwknopd.conf for an access.conf (`--fwknopd-conf`); else the one beside it, if any.
    pub fwknopd_conf: Option<std::path::PathBuf>,
    /// Whose files are trusted like root's besides the running user's (the daemon's own user,
    /// once it knows it); none by default.
    pub trust: Trust,
}

/// Reads and validates the config at `path`, in whichever format it is written, its doors'
/// proofs read by `kinds`.
pub fn load<K: Kinds>(path: &Path, kinds: &K) -> Result<Config, ConfigError> {
    load_with(path, &LoadOptions::default(), kinds)
}

/// Reads and validates the config at `path`, in whichever format it is written, with `options`.
pub fn load_with<K: Kinds>(path: &Path, options: &LoadOptions, kinds: &K) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let (text, meta) = read_text(path, &file, MAX_CONFIG_BYTES, &options.trust)?;
    let format = detect(path, &text);
    let reader = match format {
        Format::Yaml => None,
        other => Some(kinds.format(other).ok_or_else(|| ConfigError::Invalid {
            file: file.clone(),
            location: None,
            message: format!("no door kind of this knockd reads {other:?} files: write the config as knockd.yaml"),
        })?),
    };
    let mut config = match reader {
        None => yaml::parse(&file, &text, kinds),
        Some(reader) => reader.read(&file, &text, options),
    }?;
    if config.has_inline_secrets() {
        check_unreadable_by_others(path, &meta)?;
        for included in &config.included {
            let meta = std::fs::metadata(included)
                .map_err(|source| ConfigError::Read { file: included.display().to_string(), source })?;
            check_unreadable_by_others(included, &meta)?;
        }
    }
    if let (false, Some(named)) = (format == Format::AccessConf, &options.fwknopd_conf) {
        return Err(ConfigError::Invalid {
            file: named.display().to_string(),
            location: None,
            message: format!("fwknopd.conf goes with fwknopd's access.conf, and {file} is not one"),
        });
    }
    if let Some(reader) = reader {
        reader.finish(path, options, &mut config)?;
    }
    Ok(config)
}

/// The text of a config file, `file` at `path`, of at most `max` bytes, which only users
/// `trust` trusts could have changed; and its metadata, for the checks keys need. Errors name
/// the file.
pub fn read_text(path: &Path, file: &str, max: u64, trust: &Trust) -> Result<(String, std::fs::Metadata), ConfigError> {
    let (bytes, meta) = read_private_with_metadata(path, max, trust).map_err(|e| match e {
        PrivateFileError::Io(source) => ConfigError::Read { file: file.to_owned(), source },
        PrivateFileError::TooLarge => ConfigError::TooLarge { file: file.to_owned() },
        PrivateFileError::Unsafe(message) => ConfigError::Unsafe { file: file.to_owned(), message },
    })?;
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Invalid {
        file: file.to_owned(),
        location: None,
        message: "the file is not UTF-8 text".into(),
    })?;
    Ok((text, meta))
}

/// A config that holds keys must be as private as a key file (fwknopd's access.conf is 0600).
fn check_unreadable_by_others(path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    match private_file::readable_by_others(meta, path, "the keys") {
        None => Ok(()),
        Some(message) => Err(ConfigError::Unsafe { file: path.display().to_string(), message }),
    }
}
