//! `knockd check`: the programs a door's commands call, and which of them do not exist here.
//! Debian's stock knockd.conf calls `/usr/local/sbin/knock_add`, which its package does not
//! ship: the first knock would fail, and only the log would say so.
//!
//! A command is shell text: this reads the first word of each simple command in it (after
//! `;`, `&&`, `||`, `|`, `&`, parentheses and variable assignments) and leaves out shell
//! builtins and words the shell or knockd fills in (`$X`, `%IP%`, globs). It reads no file:
//! the caller says which programs exist.

use crate::config::Config;

/// Words a shell runs itself: never a missing program.
const BUILTINS: [&str; 42] = [
    "!", ".", ":", "[", "[[", "{", "}", "alias", "break", "case", "cd", "command", "continue", "do", "done", "echo",
    "elif", "else", "esac", "eval", "exec", "exit", "export", "false", "fi", "for", "function", "if", "in", "kill",
    "local", "printf", "read", "return", "set", "shift", "test", "then", "trap", "true", "unset", "wait",
];

/// The programs `command` runs, as written (a path, or a name looked up in `PATH`).
pub fn programs(command: &str) -> Vec<String> {
    let separated: String =
        command.chars().map(|c| if matches!(c, ';' | '|' | '&' | '\n' | '(' | ')' | '`') { '\n' } else { c }).collect();
    separated
        .lines()
        .filter_map(|simple| {
            let first = simple.split_whitespace().find(|word| !is_assignment(word))?;
            let word = first.trim_matches(|c| c == '"' || c == '\'');
            let filled_in = word.contains(['$', '%', '*', '?', '=']) || word.is_empty();
            (!filled_in && !BUILTINS.contains(&word)).then(|| word.to_owned())
        })
        .collect()
}

/// `NAME=value` before a command.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// One warning per command whose program does not exist, as `exists` says.
pub fn missing_programs(config: &Config, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    for door in &config.doors {
        let c = &door.commands;
        let commands = [&c.start, &c.start_v6, &c.stop, &c.stop_v6].into_iter().flatten();
        let mut seen = Vec::new();
        for program in commands.flat_map(|command| programs(command)) {
            if seen.contains(&program) || exists(&program) {
                continue;
            }
            let hint = if program.ends_with("/knock_add") {
                " (knock_add comes with the classic knockd's sources, not with its packages: install it, or \
                 use an `open:` block)"
            } else {
                ": install it, or change the command"
            };
            out.push(format!("door {}: its command runs {program}, which does not exist here{hint}", door.name));
            seen.push(program);
        }
    }
    out
}

/// Whether `program` is an executable file: at its path, or in one of `path`'s directories.
pub fn exists(program: &str, path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable =
        |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        return executable(std::path::Path::new(program));
    }
    std::env::split_paths(path).any(|dir| executable(&dir.join(program)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_word_of_each_simple_command() {
        assert_eq!(programs("/sbin/iptables -A INPUT -s %IP% -j ACCEPT"), ["/sbin/iptables"]);
        assert_eq!(programs("ufw allow from %IP% && logger opened; echo done >> /tmp/x"), ["ufw", "logger"]);
        assert_eq!(programs("PATH=/opt/bin LANG=C nft add element inet t s { %IP% }"), ["nft"]);
        assert_eq!(programs("(sleep 2; touch f) & '/usr/bin/id' -u | tee x"), ["sleep", "touch", "/usr/bin/id", "tee"]);
        assert_eq!(programs("$HOME/bin/open %IP%; if true; then :; fi"), Vec::<String>::new());
        assert_eq!(programs("runuser -u nobody -- id"), ["runuser"]);
    }

    #[test]
    fn debians_stock_config_calls_a_program_it_does_not_ship() {
        let text = include_str!("../../tests/fixtures/debian-knockd.conf");
        use crate::config::Kinds;
        let classic = crate::doors::Kinds.format(crate::config::Format::KnockdConf).expect("a reader of knockd.conf");
        let config = classic.read("knockd.conf", text, &Default::default()).unwrap();
        let warnings = missing_programs(&config, |p| p == "/sbin/iptables");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("door openHTTPS: its command runs /usr/local/sbin/knock_add, which does not exist")
        );
        assert!(warnings[0].contains("classic knockd's sources"), "{}", warnings[0]);
    }
}
