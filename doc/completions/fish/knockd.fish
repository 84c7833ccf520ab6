# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_knockd_global_optspecs
    string join \n c/configfile= state-dir= d/daemon i/interface= v/verbose l/loglevel= L/logfile= n/no-syslog s/stdout D/debug p/pidfile= 4/only-ip-v4 lookup keep-capabilities control= fwknopd-conf= convert= h/help V/version
end

function __fish_knockd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_knockd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_knockd_using_subcommand
    set -l cmd (__fish_knockd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c knockd -n "__fish_knockd_needs_command" -s c -l configfile -l config -d 'Config file: knockd.yaml, a classic knockd.conf or fwknopd\'s access.conf, detected from its content. Default: /etc/knockd.yaml if it exists, else /etc/knockd.conf (for the daemon, check, status and the systemd unit alike)' -r -F
complete -c knockd -n "__fish_knockd_needs_command" -l state-dir -d 'Where state that must survive a restart is kept (replay caches, used rotating sequences); overrides the config\'s `state_dir` (access.conf has no way to say it). Default /var/lib/knockd' -r -F
complete -c knockd -n "__fish_knockd_needs_command" -s i -l interface -d 'Listen only on this interface (repeatable; overrides the config; `check` checks that way)' -r
complete -c knockd -n "__fish_knockd_needs_command" -s l -l loglevel -d 'Log level: 0 errors, 1 knocks and grants (default), 2 debug, 3 trace, 4 trace with library internals. `-l` without a level is the classic knockd\'s `-l`: --lookup' -r
complete -c knockd -n "__fish_knockd_needs_command" -s L -l logfile -d 'Also log to this file' -r -F
complete -c knockd -n "__fish_knockd_needs_command" -s p -l pidfile -d 'Pid file (default with -d: /run/knockd.pid)' -r -F
complete -c knockd -n "__fish_knockd_needs_command" -l control -d 'The control socket: where the daemon listens, and where `status`, `revoke`, `grant` and `reload` ask it (default: the config\'s `control_socket`, else /run/knockd/control)' -r -F
complete -c knockd -n "__fish_knockd_needs_command" -l fwknopd-conf -d 'fwknopd.conf to read with an access.conf (default: the fwknopd.conf beside it, if there is one): its interface, port, packet age and verbosity carry over; every key knockd does not honour is named in a warning' -r -F
complete -c knockd -n "__fish_knockd_needs_command" -l convert -d 'Print the config FILE (a classic knockd.conf, fwknopd\'s access.conf, or YAML) as knockd.yaml and exit. Keys written in an access.conf stay in the YAML: redirected to a file, that file is made mode 600' -r -F
complete -c knockd -n "__fish_knockd_needs_command" -s d -l daemon -d 'Run in the background once started (writes a pid file)'
complete -c knockd -n "__fish_knockd_needs_command" -s v -l verbose -d 'More log output (repeatable)'
complete -c knockd -n "__fish_knockd_needs_command" -s n -l no-syslog -d 'Do not log to syslog'
complete -c knockd -n "__fish_knockd_needs_command" -s s -l stdout -d 'Also log to stdout'
complete -c knockd -n "__fish_knockd_needs_command" -s D -l debug -d 'Debug mode: stay in the foreground, log at debug level to stderr only'
complete -c knockd -n "__fish_knockd_needs_command" -s 4 -l only-ip-v4 -d 'Ignore IPv6 knocks'
complete -c knockd -n "__fish_knockd_needs_command" -l lookup -d 'Show host names (reverse DNS, looked up in the background) next to addresses in logs'
complete -c knockd -n "__fish_knockd_needs_command" -l keep-capabilities -d 'Keep every capability (by default only CAP_NET_ADMIN and CAP_NET_RAW are kept after start-up; commands of classic doors get the same)'
complete -c knockd -n "__fish_knockd_needs_command" -s h -l help -d 'Print help'
complete -c knockd -n "__fish_knockd_needs_command" -s V -l version -d 'Print version'
complete -c knockd -n "__fish_knockd_needs_command" -f -a "check" -d 'Validate the config as a start would (every key and sequence file is read), print the nftables objects it would create, and warn about likely mistakes; changes nothing. Exit status: 0 valid, 1 invalid (or an attached set a start would refuse, or an access.conf stanza a start would leave out), 3 valid but it would drop new SSH connections to the port this session came in on (or a door\'s sequence holds that port), 4 valid but another table\'s chain drops what a door opens'
complete -c knockd -n "__fish_knockd_needs_command" -f -a "status" -d 'Ask the running daemon for its doors, grants (who opened each, time left), attempts in progress and counters; with no daemon running, read the grants from the kernel'
complete -c knockd -n "__fish_knockd_needs_command" -f -a "revoke" -d 'Remove an address\'s grants now (and run the stop commands of classic doors now)'
complete -c knockd -n "__fish_knockd_needs_command" -f -a "grant" -d 'Open a door for an address, as if it had knocked (the log names your uid)'
complete -c knockd -n "__fish_knockd_needs_command" -f -a "reload" -d 'Read the config file again and switch to it; print the result (SIGHUP does the same, silently)'
complete -c knockd -n "__fish_knockd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c knockd -n "__fish_knockd_using_subcommand check" -s c -l configfile -l config -d 'Config file: knockd.yaml, a classic knockd.conf or fwknopd\'s access.conf, detected from its content. Default: /etc/knockd.yaml if it exists, else /etc/knockd.conf (for the daemon, check, status and the systemd unit alike)' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand check" -l state-dir -d 'Where state that must survive a restart is kept (replay caches, used rotating sequences); overrides the config\'s `state_dir` (access.conf has no way to say it). Default /var/lib/knockd' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand check" -s i -l interface -d 'Listen only on this interface (repeatable; overrides the config; `check` checks that way)' -r
complete -c knockd -n "__fish_knockd_using_subcommand check" -l control -d 'The control socket: where the daemon listens, and where `status`, `revoke`, `grant` and `reload` ask it (default: the config\'s `control_socket`, else /run/knockd/control)' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand check" -l fwknopd-conf -d 'fwknopd.conf to read with an access.conf (default: the fwknopd.conf beside it, if there is one): its interface, port, packet age and verbosity carry over; every key knockd does not honour is named in a warning' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand check" -l lockout-ok -d 'Exit 0 even when a door guards this SSH session\'s port (or knocks on it): you have checked from a second terminal that a knock lets you in'
complete -c knockd -n "__fish_knockd_using_subcommand check" -s h -l help -d 'Print help'
complete -c knockd -n "__fish_knockd_using_subcommand status" -s c -l configfile -l config -d 'Config file: knockd.yaml, a classic knockd.conf or fwknopd\'s access.conf, detected from its content. Default: /etc/knockd.yaml if it exists, else /etc/knockd.conf (for the daemon, check, status and the systemd unit alike)' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand status" -l state-dir -d 'Where state that must survive a restart is kept (replay caches, used rotating sequences); overrides the config\'s `state_dir` (access.conf has no way to say it). Default /var/lib/knockd' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand status" -s i -l interface -d 'Listen only on this interface (repeatable; overrides the config; `check` checks that way)' -r
complete -c knockd -n "__fish_knockd_using_subcommand status" -l control -d 'The control socket: where the daemon listens, and where `status`, `revoke`, `grant` and `reload` ask it (default: the config\'s `control_socket`, else /run/knockd/control)' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand status" -l fwknopd-conf -d 'fwknopd.conf to read with an access.conf (default: the fwknopd.conf beside it, if there is one): its interface, port, packet age and verbosity carry over; every key knockd does not honour is named in a warning' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand status" -l json -d 'Print the status as one JSON document (schema: /usr/share/doc/knockd/status.md)'
complete -c knockd -n "__fish_knockd_using_subcommand status" -l prometheus -d 'Print the counters in Prometheus\' text format'
complete -c knockd -n "__fish_knockd_using_subcommand status" -s h -l help -d 'Print help'
complete -c knockd -n "__fish_knockd_using_subcommand revoke" -l door -d 'Only this door\'s grants (default: every door\'s)' -r
complete -c knockd -n "__fish_knockd_using_subcommand revoke" -s c -l configfile -l config -d 'Config file: knockd.yaml, a classic knockd.conf or fwknopd\'s access.conf, detected from its content. Default: /etc/knockd.yaml if it exists, else /etc/knockd.conf (for the daemon, check, status and the systemd unit alike)' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand revoke" -l state-dir -d 'Where state that must survive a restart is kept (replay caches, used rotating sequences); overrides the config\'s `state_dir` (access.conf has no way to say it). Default /var/lib/knockd' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand revoke" -s i -l interface -d 'Listen only on this interface (repeatable; overrides the config; `check` checks that way)' -r
complete -c knockd -n "__fish_knockd_using_subcommand revoke" -l control -d 'The control socket: where the daemon listens, and where `status`, `revoke`, `grant` and `reload` ask it (default: the config\'s `control_socket`, else /run/knockd/control)' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand revoke" -l fwknopd-conf -d 'fwknopd.conf to read with an access.conf (default: the fwknopd.conf beside it, if there is one): its interface, port, packet age and verbosity carry over; every key knockd does not honour is named in a warning' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand revoke" -s h -l help -d 'Print help'
complete -c knockd -n "__fish_knockd_using_subcommand grant" -l door -d 'The door' -r
complete -c knockd -n "__fish_knockd_using_subcommand grant" -l for -d 'For how long (default: the door\'s timeout)' -r
complete -c knockd -n "__fish_knockd_using_subcommand grant" -l port -d 'For a door whose clients name ports (fwknop): a port to open (repeatable; default: every port the door allows)' -r
complete -c knockd -n "__fish_knockd_using_subcommand grant" -s c -l configfile -l config -d 'Config file: knockd.yaml, a classic knockd.conf or fwknopd\'s access.conf, detected from its content. Default: /etc/knockd.yaml if it exists, else /etc/knockd.conf (for the daemon, check, status and the systemd unit alike)' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand grant" -l state-dir -d 'Where state that must survive a restart is kept (replay caches, used rotating sequences); overrides the config\'s `state_dir` (access.conf has no way to say it). Default /var/lib/knockd' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand grant" -s i -l interface -d 'Listen only on this interface (repeatable; overrides the config; `check` checks that way)' -r
complete -c knockd -n "__fish_knockd_using_subcommand grant" -l control -d 'The control socket: where the daemon listens, and where `status`, `revoke`, `grant` and `reload` ask it (default: the config\'s `control_socket`, else /run/knockd/control)' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand grant" -l fwknopd-conf -d 'fwknopd.conf to read with an access.conf (default: the fwknopd.conf beside it, if there is one): its interface, port, packet age and verbosity carry over; every key knockd does not honour is named in a warning' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand grant" -s h -l help -d 'Print help'
complete -c knockd -n "__fish_knockd_using_subcommand reload" -s c -l configfile -l config -d 'Config file: knockd.yaml, a classic knockd.conf or fwknopd\'s access.conf, detected from its content. Default: /etc/knockd.yaml if it exists, else /etc/knockd.conf (for the daemon, check, status and the systemd unit alike)' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand reload" -l state-dir -d 'Where state that must survive a restart is kept (replay caches, used rotating sequences); overrides the config\'s `state_dir` (access.conf has no way to say it). Default /var/lib/knockd' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand reload" -s i -l interface -d 'Listen only on this interface (repeatable; overrides the config; `check` checks that way)' -r
complete -c knockd -n "__fish_knockd_using_subcommand reload" -l control -d 'The control socket: where the daemon listens, and where `status`, `revoke`, `grant` and `reload` ask it (default: the config\'s `control_socket`, else /run/knockd/control)' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand reload" -l fwknopd-conf -d 'fwknopd.conf to read with an access.conf (default: the fwknopd.conf beside it, if there is one): its interface, port, packet age and verbosity carry over; every key knockd does not honour is named in a warning' -r -F
complete -c knockd -n "__fish_knockd_using_subcommand reload" -s h -l help -d 'Print help'
complete -c knockd -n "__fish_knockd_using_subcommand help; and not __fish_seen_subcommand_from check status revoke grant reload help" -f -a "check" -d 'Validate the config as a start would (every key and sequence file is read), print the nftables objects it would create, and warn about likely mistakes; changes nothing. Exit status: 0 valid, 1 invalid (or an attached set a start would refuse, or an access.conf stanza a start would leave out), 3 valid but it would drop new SSH connections to the port this session came in on (or a door\'s sequence holds that port), 4 valid but another table\'s chain drops what a door opens'
complete -c knockd -n "__fish_knockd_using_subcommand help; and not __fish_seen_subcommand_from check status revoke grant reload help" -f -a "status" -d 'Ask the running daemon for its doors, grants (who opened each, time left), attempts in progress and counters; with no daemon running, read the grants from the kernel'
complete -c knockd -n "__fish_knockd_using_subcommand help; and not __fish_seen_subcommand_from check status revoke grant reload help" -f -a "revoke" -d 'Remove an address\'s grants now (and run the stop commands of classic doors now)'
complete -c knockd -n "__fish_knockd_using_subcommand help; and not __fish_seen_subcommand_from check status revoke grant reload help" -f -a "grant" -d 'Open a door for an address, as if it had knocked (the log names your uid)'
complete -c knockd -n "__fish_knockd_using_subcommand help; and not __fish_seen_subcommand_from check status revoke grant reload help" -f -a "reload" -d 'Read the config file again and switch to it; print the result (SIGHUP does the same, silently)'
complete -c knockd -n "__fish_knockd_using_subcommand help; and not __fish_seen_subcommand_from check status revoke grant reload help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
