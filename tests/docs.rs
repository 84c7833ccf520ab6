//! Man pages and shell completions are generated from the clap definitions and committed under
//! doc/. This test fails when they are stale; `KNOCKD_WRITE_DOCS=1 cargo test --test docs`
//! regenerates them. It also checks the systemd unit with systemd-analyze.

mod util;

use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory;
use clap_complete::Shell;
use knockd::cli::{KnockCli, KnockdCli};
use util::{TempDir, repo};

fn man(command: clap::Command, section: &str) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command).section(section).render(&mut out).unwrap();
    out
}

/// knockd(8): clap's title, synopsis, description and options, a COMMANDS section built from
/// the subcommands (clap would point at a page per subcommand, which is not shipped), and the
/// hand-written SIGNALS to SEE ALSO from doc/man/knockd.8.sections.
fn knockd_page() -> Vec<u8> {
    let command = KnockdCli::command();
    let page = clap_mangen::Man::new(command.clone()).section("8");
    let mut out = Vec::new();
    page.render_title(&mut out).unwrap();
    page.render_name_section(&mut out).unwrap();
    page.render_synopsis_section(&mut out).unwrap();
    page.render_description_section(&mut out).unwrap();
    out.extend_from_slice(commands_section(&command).as_bytes());
    page.render_options_section(&mut out).unwrap();
    out.extend(std::fs::read(repo("doc/man/knockd.8.sections")).unwrap());
    page.render_version_section(&mut out).unwrap();
    out
}

/// Text safe inside a roff paragraph.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-").replace('\'', "\\(aq");
    text.lines()
        .map(|l| if l.starts_with('.') { format!("\\&{l}") } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
}

fn commands_section(command: &clap::Command) -> String {
    let mut out = String::from(".SH COMMANDS\nWithout a command, knockd runs the daemon.\n");
    let mut command = command.clone();
    command.build();
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut usage = format!("\\fBknockd {}\\fR", sub.get_name());
        let mut options = String::new();
        for arg in sub.get_arguments().filter(|a| !a.is_global_set() && a.get_id() != "help") {
            let value =
                arg.get_value_names().map_or_else(|| arg.get_id().as_str().to_uppercase(), |v| v[0].to_string());
            let spelled = match arg.get_long() {
                Some(long) if arg.get_action().takes_values() => {
                    format!("\\fB\\-\\-{}\\fR \\fI{value}\\fR", roff(long))
                }
                Some(long) => format!("\\fB\\-\\-{}\\fR", roff(long)),
                None => format!("\\fI{value}\\fR"),
            };
            usage += &if arg.is_required_set() || arg.get_long().is_none() {
                format!(" {spelled}")
            } else {
                format!(" [{spelled}]")
            };
            let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
            options += &format!(".TP\n{spelled}\n{}\n", roff(&help));
        }
        let about = sub.get_long_about().or(sub.get_about()).map(|a| a.to_string()).unwrap_or_default();
        out += &format!(".TP\n{usage}\n{}\n", roff(&about));
        if !options.is_empty() {
            out += &format!(".RS\n{options}.RE\n");
        }
    }
    out
}

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files =
        vec![(repo("doc/man/knockd.8"), knockd_page()), (repo("doc/man/knock.1"), man(KnockCli::command(), "1"))];
    for (shell, dir, suffix) in [(Shell::Bash, "bash", ""), (Shell::Zsh, "zsh", ""), (Shell::Fish, "fish", ".fish")] {
        for (name, mut command) in [("knockd", KnockdCli::command()), ("knock", KnockCli::command())] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, name, &mut out);
            let file = if shell == Shell::Zsh { format!("_{name}") } else { format!("{name}{suffix}") };
            files.push((repo(&format!("doc/completions/{dir}/{file}")), out));
        }
    }
    files
}

#[test]
fn man_pages_and_completions_are_current() {
    let write = std::env::var_os("KNOCKD_WRITE_DOCS").is_some();
    for (path, content) in generated() {
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &content).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(committed == content, "{} is stale: run KNOCKD_WRITE_DOCS=1 cargo test --test docs", path.display());
    }
}

#[test]
fn man_pages_cover_every_flag() {
    let page = String::from_utf8(std::fs::read(repo("doc/man/knockd.8")).unwrap()).unwrap();
    for flag in [
        "configfile",
        "daemon",
        "interface",
        "loglevel",
        "logfile",
        "no\\-syslog",
        "pidfile",
        "only\\-ip\\-v4",
        "lookup",
        "convert",
    ] {
        assert!(page.contains(flag), "knockd.8 lacks {flag}");
    }
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "OPTIONS",
        "SIGNALS",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(page.contains(&format!(".SH {section}\n")), "knockd.8 lacks the section {section}");
    }
    for verb in ["check", "status", "revoke", "grant", "reload"] {
        assert!(page.contains(&format!("\\fBknockd {verb}\\fR")), "knockd.8 does not describe `knockd {verb}`");
    }
    let config_page = std::fs::read_to_string(repo("doc/man/knockd.yaml.5")).unwrap();
    for key in [
        "interfaces",
        "nftables.table",
        "log.level",
        "log.syslog",
        "log.file",
        "log.format",
        "pidfile",
        "state_dir",
        "user",
        "control_socket",
        "metrics.textfile",
        "commands.privileges",
        "limits.max_attempts",
        "doors",
        "sequence",
        "one_time_sequences",
        "seq_timeout",
        "tcp_flags",
        "target",
        "from",
        "not_from",
        "open.ports",
        "open.set",
        "open.forward",
        "open.timeout",
        "nftables.set_size",
        "nftables.fw4",
        "command_6",
        "stop_command_6",
        "cmd_timeout",
        "rotating.secret_files",
        "rotating.step",
        "rotating.length",
        "rotating.ports",
        "rotating.protocol",
        "spa.port",
        "spa.window",
        "spa.hmac_key_file",
        "spa.public_keys",
        "spa.require_address",
        "fwknop.port",
        "fwknop.name",
        "fwknop.key_base64",
        "fwknop.hmac_key_file",
        "fwknop.hmac_digest",
        "fwknop.require_source_address",
        "fwknop.require_username",
        "fwknop.open_ports",
        "fwknop.restrict_ports",
        "fwknop.max_timeout",
        "fwknop.window",
        "fwknop.destination",
        "fwknop.expires",
    ] {
        // A key is documented where a `.B`/`.BR` line (a term of a .TP list) names it.
        let documented = config_page
            .lines()
            .filter(|l| l.starts_with(".B ") || l.starts_with(".BR "))
            .any(|l| l.split(|c: char| c.is_whitespace() || c == '"' || c == ',').any(|word| word == key));
        assert!(documented, "knockd.yaml.5 does not document {key}");
    }
}

/// Pages named as `name(N)` in the shipped pages: each must be shipped, or be nft(8).
#[test]
fn man_pages_refer_only_to_pages_that_exist() {
    let shipped = ["knockd(8)", "knock(1)", "knockd.yaml(5)", "nft(8)"];
    for file in ["doc/man/knockd.8", "doc/man/knock.1", "doc/man/knockd.yaml.5"] {
        let page =
            std::fs::read_to_string(repo(file)).unwrap().replace("\\-", "-").replace("\\fR", "").replace("\\fB", "");
        let page = page.replace(".BR ", "").replace(" (", "(");
        for (at, _) in page.match_indices('(').filter(|(at, _)| {
            let rest = &page[at + 1..];
            rest.len() > 1 && rest.as_bytes()[0].is_ascii_digit() && rest.as_bytes()[1] == b')'
        }) {
            let start = page[..at]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-' || c == '_'))
                .map_or(0, |i| i + 1);
            let reference = &page[start..at + 3];
            assert!(shipped.contains(&reference), "{file} refers to {reference}, which is not shipped");
        }
    }
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(repo("packaging/knockd.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_CHOWN",
        "StateDirectory=knockd",
        "RuntimeDirectory=knockd",
        "LogsDirectory=knockd",
        "ReadWritePaths=-/var/log/knockd.log",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW",
        "RestrictAddressFamilies=AF_NETLINK AF_PACKET AF_UNIX AF_INET AF_INET6",
        // The classic Debian unit's options file, and no -c: the config-file rule decides.
        "EnvironmentFile=-/etc/default/knockd",
        "ExecStart=/usr/sbin/knockd $KNOCKD_OPTS",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks `{line}`");
    }
    // systemd-analyze checks that ExecStart exists: point it at the binary under test.
    let dir = TempDir::new("unit");
    let copy = dir.write("knockd.service", unit.replace("/usr/sbin/knockd", env!("CARGO_BIN_EXE_knockd")));
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze (scripts/install-deps installs systemd)");
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
