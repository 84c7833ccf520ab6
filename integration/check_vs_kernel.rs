//! `knockd check` against rulesets loaded with the real nft, each compared with what the
//! kernel does to a real connection: check must never say "nothing drops it" when the kernel
//! drops it, nor "drops it" when the kernel lets it in (review 18).

use crate::support::*;

const STANDALONE: &str = "doors:\n  ssh:\n    sequence: [7000, 8000, 9000]\n    open: {ports: [2222], timeout: 30s}\n";

/// The rulesets, with whether the kernel lets a SYN from the client to 2222 in.
const CASES: [(&str, &str, bool); 8] = [
    (
        "a drop in a prerouting chain",
        "chain pre {\n type filter hook prerouting priority raw; policy accept;\n tcp dport 2222 drop\n }",
        false,
    ),
    (
        "a reverse-path filter and a broadcast drop in prerouting",
        "chain pre {\n type filter hook prerouting priority filter; policy accept;\n fib saddr . iif oif missing drop\n fib daddr type broadcast drop\n }",
        true,
    ),
    (
        "a goto from a policy-drop base chain into a chain that decides nothing",
        "chain wan {\n tcp dport 22 accept\n }\n chain input {\n type filter hook input priority 0; policy drop;\n goto wan\n }",
        false,
    ),
    (
        "a return from a chain reached by goto",
        "chain wan {\n tcp dport 22 accept\n return\n }\n chain input {\n type filter hook input priority 0; policy drop;\n goto wan\n }",
        false,
    ),
    (
        "an inverted anonymous set that names the client",
        "chain input {\n type filter hook input priority 0; policy drop;\n ip saddr != { 198.18.0.2, 203.0.113.0/24 } accept\n }",
        false,
    ),
    (
        "a verdict map on the packet mark",
        "chain input {\n type filter hook input priority 0;\n tcp dport 2222 meta mark vmap { 0x0 : drop, 0x1 : accept }\n }",
        false,
    ),
    (
        "a meter that drops only above a rate",
        "chain input {\n type filter hook input priority 0;\n tcp dport 2222 ct state new meter m { ip saddr limit rate over 5/minute } drop\n }",
        true,
    ),
    (
        "an accept of the port under a drop policy",
        "chain input {\n type filter hook input priority 0; policy drop;\n tcp dport 2222 accept\n }",
        true,
    ),
];

#[test]
fn check_agrees_with_the_kernel() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "0.0.0.0:2222".parse().unwrap());
    let config = ConfigFile::new("knockd.yaml", STANDALONE);
    let to = at(SERVER_V4, 2222);
    for (what, chains, opens) in CASES {
        lab.server.nft(&["flush", "ruleset"]);
        let file = config.write("ruleset.nft", &format!("table inet t {{\n {chains}\n}}\n"));
        lab.server.nft(&["-f", file.to_str().unwrap()]);
        let kernel = gets_in(&lab, CLIENT_V4, to);
        assert_eq!(kernel, opens, "{what}: the kernel");
        let text = String::from_utf8_lossy(&knockd_check(&lab.server, &config.path).stdout).into_owned();
        let line = text.lines().find(|l| l.contains("2222/tcp over IPv4")).unwrap_or_default().to_owned();
        if opens {
            assert!(!line.contains("a grant would not open it"), "{what}: a false alarm: {line}");
        } else {
            assert!(!line.contains("nothing in the host's firewall drops it"), "{what}: a false ok: {line}");
        }
    }
}
