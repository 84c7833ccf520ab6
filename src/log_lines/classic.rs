//! The classic knockd 0.8's words for the same events, which `log.format: classic` (and every
//! knockd.conf) writes for the log parsers and fail2ban filters made for them. Tests compare
//! these with the lines the real classic daemon writes.

/// `198.18.0.2: openSSH: Stage 1`.
pub fn stage(src: &str, door: &str, stage: &str) -> String {
    format!("{src}: {door}: Stage {stage}")
}

/// `198.18.0.2: openSSH: OPEN SESAME`.
pub fn open_sesame(src: &str, door: &str) -> String {
    format!("{src}: {door}: OPEN SESAME")
}

/// `198.18.0.2: openSSH: sequence timeout (stage 2)`.
pub fn seq_timeout(src: &str, door: &str, stage: &str) -> String {
    format!("{src}: {door}: sequence timeout (stage {stage})")
}

/// `198.18.0.2: openSSH: command timeout`, before its stop command's line.
pub fn command_timeout(src: &str, door: &str) -> String {
    format!("{src}: {door}: command timeout")
}

/// `openSSH: running command: /sbin/iptables ...`.
pub fn running_command(door: &str, command: &str) -> String {
    format!("{door}: running command: {command}")
}

/// `openSSH: command returned non-zero status code (4)`.
pub fn non_zero_status(door: &str, code: &str) -> String {
    format!("{door}: command returned non-zero status code ({code})")
}

/// `starting up, listening on eth0`.
pub fn starting_up(interfaces: &str) -> String {
    format!("starting up, listening on {interfaces}")
}
