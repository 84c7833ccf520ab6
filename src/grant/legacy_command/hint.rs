//! Why a classic command may fail where it worked under the classic knockd: knockd runs it as
//! root, but without most of root's capabilities. The hint says so, and what restores them.

/// What commands cannot do because the daemon, or its unit, limited them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restrictions {
    /// Capabilities a root shell normally has that commands lack (`CAP_SETUID`, ...).
    pub missing: Vec<String>,
    /// `no_new_privs` is set (systemd's `NoNewPrivileges=yes`): no command can regain them.
    pub no_new_privs: bool,
}

/// Words that commands (and the tools they call) print when the kernel said EPERM or EACCES.
const DENIED: [&str; 7] = [
    "permission denied",
    "operation not permitted",
    "cannot set groups",
    "eperm",
    "eacces",
    "must be root",
    "are you root",
];

/// Whether a failed command's stderr reads like a refusal for lack of privileges.
pub fn looks_denied(stderr: &str) -> bool {
    let text = stderr.to_ascii_lowercase();
    DENIED.iter().any(|word| text.contains(word))
}

/// The hint for a command that failed while `restrictions` applied: what it lacks and the
/// config key (or flag, or unit setting) that gives it back.
pub fn privilege_hint(restrictions: &Restrictions) -> String {
    let mut hint = if restrictions.missing.is_empty() {
        "commands run as root with a reduced set of capabilities".to_owned()
    } else {
        format!("commands run as root but without {}", restrictions.missing.join(", "))
    };
    hint.push_str(
        ": if this command needs them (switching users, binding ports below 1024, writing files root \
         does not own), set `commands: {privileges: full}` in knockd.yaml or start knockd with \
         --keep-capabilities",
    );
    if restrictions.no_new_privs {
        hint.push_str(
            "; NoNewPrivileges is set (the systemd unit): relax it and ProtectSystem with the drop-in \
             knockd.service.d/commands.conf (README, \"Commands\")",
        );
    }
    hint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_recognized() {
        assert!(looks_denied("runuser: cannot set groups: Operation not permitted"));
        assert!(looks_denied("nc: Permission denied"));
        assert!(looks_denied("ERROR: You need to be root to run this script (are you root?)"));
        assert!(!looks_denied("iptables: Bad rule (does a matching rule exist in that chain?)."));
        assert!(!looks_denied(""));
    }

    #[test]
    fn the_hint_names_what_is_missing_and_the_key() {
        let r = Restrictions { missing: vec!["CAP_SETUID".into(), "CAP_SETGID".into()], no_new_privs: false };
        let hint = privilege_hint(&r);
        assert!(hint.contains("without CAP_SETUID, CAP_SETGID"), "{hint}");
        assert!(hint.contains("`commands: {privileges: full}`") && hint.contains("--keep-capabilities"), "{hint}");
        assert!(!hint.contains("NoNewPrivileges"));
        let hint = privilege_hint(&Restrictions { no_new_privs: true, ..r });
        assert!(hint.contains("NoNewPrivileges is set") && hint.contains("commands.conf"), "{hint}");
    }
}
