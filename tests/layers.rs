//! The module contracts that keep the program layered, checked on the source: which folder may
//! import which (no cycles: config below doors below engine below daemon), and that the program
//! outside `doors/` names no door kind, so a new kind is one folder and one line in the list.

use std::path::{Path, PathBuf};

use knockd::config::Kinds as _;
use knockd::doors::{KINDS, Kinds};

fn src(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(path)
}

/// Every `.rs` file under `dir` (or `dir` itself), with its code: comments left out, so a
/// doc comment may say what a module is not.
fn code(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    if dir.is_file() {
        let text = std::fs::read_to_string(dir).unwrap();
        let lines: Vec<&str> = text.lines().map(|l| l.split_once("//").map_or(l, |(code, _)| code)).collect();
        out.push((dir.to_owned(), lines.join("\n")));
        return out;
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() || path.extension().is_some_and(|e| e == "rs") {
            out.extend(code(&path));
        }
    }
    out
}

/// The places under `dir` whose code reaches into one of `modules` (`crate::daemon`, a
/// `use crate::{daemon, ...}` list, or `super::super::daemon` from two levels down).
fn imports(dir: &str, modules: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in code(&src(dir)) {
        for (n, line) in text.lines().enumerate() {
            for module in modules {
                let direct = [format!("crate::{module}"), format!("super::super::{module}")];
                let listed = line.contains("crate::{") && line.split(['{', ',', '}', ' ']).any(|w| w == *module);
                if direct.iter().any(|d| line.contains(d.as_str())) || listed {
                    found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn config_imports_neither_daemon_nor_doors() {
    let found = imports("config", &["daemon", "doors", "engine", "grant", "store"]);
    assert!(found.is_empty(), "config reaches up:\n{}", found.join("\n"));
    // The check sees what config does import: the packet's ports.
    assert!(!imports("config", &["packet"]).is_empty());
}

#[test]
fn packet_and_capture_import_nothing_from_config() {
    let mut found = imports("packet", &["config", "doors", "engine", "daemon"]);
    found.extend(imports("capture", &["config", "doors", "engine", "daemon"]));
    assert!(found.is_empty(), "packet or capture reaches up:\n{}", found.join("\n"));
}

#[test]
fn engine_and_doors_import_nothing_from_daemon() {
    let mut found = imports("engine", &["daemon"]);
    found.extend(imports("doors", &["daemon", "engine", "control", "cli"]));
    assert!(found.is_empty(), "engine or doors reach into the daemon:\n{}", found.join("\n"));
}

/// Whose files are trusted is a parameter, not a global the daemon sets: the module that reads
/// private files imports nothing from the crate, and the stores only it.
#[test]
fn private_files_and_stores_are_leaves() {
    let all = ["config", "daemon", "doors", "engine", "grant", "control", "cli", "capture", "packet", "store"];
    let found = imports("config/private_file.rs", &all);
    assert!(found.is_empty(), "config/private_file.rs imports:\n{}", found.join("\n"));
    let found = imports("store", &["daemon", "doors", "engine", "grant", "control", "cli"]);
    assert!(found.is_empty(), "store reaches up:\n{}", found.join("\n"));
}

/// Each kind's name (`spa`), its knockd.yaml keys (`one_time_sequences`) and its folder
/// (`doors::spa`): nowhere in the code outside `doors/` that the kinds plug into.
#[test]
fn the_program_around_the_kinds_names_none() {
    let mut words: Vec<String> = Vec::new();
    for kind in KINDS {
        words.push(format!("\"{}\"", kind.name()));
        words.push(format!("doors::{}", kind.name()));
        words.push(format!("Proof::{}", capitalized(kind.name())));
    }
    words.extend(Kinds.keys().iter().map(|k| format!("\"{k}\"")));
    let mut found = Vec::new();
    for dir in ["engine", "cli", "control", "grant", "config", "daemon", "store"] {
        for (path, text) in code(&src(dir)) {
            for (n, line) in text.lines().enumerate() {
                if let Some(word) = words.iter().find(|w| line.contains(w.as_str())) {
                    found.push(format!("{}:{}: {word}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "the program names a door kind:\n{}", found.join("\n"));
    // The check sees the names where they belong: in the kinds' folders.
    let doors = code(&src("doors"));
    for kind in KINDS {
        let name = format!("\"{}\"", kind.name());
        assert!(doors.iter().any(|(_, text)| text.contains(&name)), "{name} is in no kind's folder");
    }
    assert!(words.len() >= 3 * KINDS.len() + KINDS.len(), "every kind has a name and a key: {words:?}");
}

fn capitalized(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// A kind is a folder of its own under `src/doors/`, named after it, and one line in the
/// kinds list of `src/doors/mod.rs` (besides its `mod` line).
#[test]
fn every_kind_is_one_folder_and_one_line_in_the_list() {
    let list = std::fs::read_to_string(src("doors/mod.rs")).unwrap();
    let start = list.find("kinds! {").expect("the kinds list");
    let entries: Vec<&str> = list[start..].lines().skip(1).take_while(|l| l.trim() != "}").collect();
    assert_eq!(entries.len(), KINDS.len(), "one line per kind: {entries:?}");
    for (kind, line) in KINDS.iter().zip(&entries) {
        let folder = src(&format!("doors/{}/mod.rs", kind.name()));
        assert!(folder.exists(), "kind {} has no folder {}", kind.name(), folder.display());
        assert!(line.trim().starts_with(&format!("{}::", kind.name())), "{line}");
        let declared = list.lines().filter(|l| l.trim() == format!("pub mod {};", kind.name())).count();
        assert_eq!(declared, 1, "kind {} is declared once", kind.name());
    }
}

/// The log macro calls under `dir` whose line is written in place: a format string with text
/// of its own, where the line should come from `log_lines` (`info!("{}", log_lines::...)`).
fn lines_written_in_place(dir: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in code(&src(dir)) {
        let flat = text.replace('\n', " ");
        for mac in ["trace!(", "debug!(", "info!(", "warn!(", "error!(", "log!("] {
            for (at, _) in flat.match_indices(mac) {
                let call = &flat[at..];
                // The format string: the first string literal (after `key = value;` pairs).
                let Some(start) = call.find('"') else { continue };
                let Some(len) = call[start + 1..].find('"') else { continue };
                let format = &call[start + 1..start + 1 + len];
                let bare = format.starts_with('{') && format.ends_with('}') && format.matches('{').count() == 1;
                if !bare {
                    found.push(format!("{}: {mac}\"{format}\"", path.display()));
                }
            }
        }
    }
    found
}

#[test]
fn the_engine_and_the_command_runner_format_no_log_line() {
    for dir in ["engine", "grant/legacy_command/scheduler.rs", "grant/granter.rs", "grant/granter"] {
        let found = lines_written_in_place(dir);
        assert!(found.is_empty(), "lines written in place, not in log_lines:\n{}", found.join("\n"));
    }
    // The check sees what log_lines does: lines written in place.
    assert!(!lines_written_in_place("log_lines").is_empty());
}
