//! Configuration: every file format is turned into one validated [`Config`] before anything runs.

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
    #[error("{file}{}: {message}", DisplayLocation(location))]
    Invalid {
        file: String,
        location: Option<Location>,
        message: String,
    },
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

/// Reads and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = read_bounded(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::FileTooLarge => ConfigError::TooLarge { file: file.clone() },
        _ => ConfigError::Read {
            file: file.clone(),
            source,
        },
    })?;
    yaml::parse(&file, &text)
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
