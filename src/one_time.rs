//! One-time sequences: a file of knock sequences, one per line, each used once.
//!
//! The first line that holds a valid sequence (not blank, not a `#` comment) is the door's
//! sequence. After a successful knock, that line is commented out by prefixing `#`, and the
//! file is replaced atomically (written beside it, synced, renamed), so a crash leaves either
//! the old file or the new one, never half of each. Lines that do not parse are skipped, as in
//! the classic knockd.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::PortProto;

/// A one-time sequence file that cannot be read or rewritten.
#[derive(Debug, thiserror::Error)]
#[error("one-time sequence file {}: {source}", path.display())]
pub struct OneTimeError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> OneTimeError + '_ {
    move |source| OneTimeError { path: path.to_owned(), source }
}

/// The sequence on a line, if the line holds an unused, valid one.
fn parse_line(line: &str) -> Option<Vec<PortProto>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    PortProto::parse_sequence(line).ok()
}

/// The first unused sequence in `path`; `None` when every one has been used. Like a config,
/// the file must not be writable by other users: it holds secrets that open the firewall.
pub fn current(path: &Path) -> Result<Option<Vec<PortProto>>, OneTimeError> {
    crate::config::check_private(path).map_err(|message| OneTimeError {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, format!("refusing to use it: {message}")),
    })?;
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    Ok(text.lines().find_map(parse_line))
}

/// Marks the first unused line holding `sequence` as used. Returns whether a line was marked
/// (false if someone removed it from the file meanwhile).
pub fn mark_used(path: &Path, sequence: &[PortProto]) -> Result<bool, OneTimeError> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    let mut marked = false;
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.split_inclusive('\n') {
        if !marked && parse_line(line).as_deref() == Some(sequence) {
            out.push('#');
            marked = true;
        }
        out.push_str(line);
    }
    if marked {
        replace(path, &out).map_err(io_error(path))?;
    }
    Ok(marked)
}

/// Writes `text` to a temporary file beside `path` with the same permissions, then renames it
/// over `path`.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or(std::io::ErrorKind::InvalidInput)?;
    let tmp = dir.join(format!(".{}.knockd-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.set_permissions(fs::metadata(path)?.permissions())?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
