//! An fwknopd admin's setup moved over unchanged, end to end: access.conf in fwknopd's own
//! shapes with fwknopd.conf beside it, the stock client's packets (fwknop-client 2.6.10).

use crate::fwknop::{HMAC_KEY, KEY, WITHIN, fwknop, stanza, start};
use crate::support::*;

/// fwknopd.conf's interface and port are honoured; a dotted SOURCE mask and a two-digit year
/// load; a request for tcp/80 that the first stanza refuses falls through to the second; a
/// keyless stanza in an include folder is left out with its port still closed; the start says
/// each of these once.
#[test]
fn an_fwknopd_admins_setup_moves_over_unchanged() {
    let lab = Lab::new();
    let _echo: Vec<Echo> = [22, 80, 2222].iter().map(|p| Echo::start(&lab.server, at("::", *p))).collect();
    let keys = (KEY, HMAC_KEY);
    let text =
        stanza("198.18.0.0/255.255.0.0", keys, "OPEN_PORTS tcp/22;\nACCESS_EXPIRE 12/31/99;\nDIGEST_TYPE SHA256;")
            + &stanza("ANY", keys, "OPEN_PORTS tcp/80")
            + "%include_folder access.d\n";
    let access = ConfigFile::private("access.conf", &text);
    access.write_private("access.d/old.conf", "SOURCE ANY\nKEY fwknoptest\nOPEN_PORTS tcp/2222\n");
    let fwknopd = format!("PCAP_INTF {};\nPCAP_FILTER udp port 62203;\nLOCALE C;\n", lab.server_if);
    access.write_private("fwknopd.conf", &fwknopd);
    let daemon = start(&lab, &access);
    let log = daemon.log_text();
    for said in [
        "stanza3 is left out: no HMAC_KEY_BASE64",
        "fwknopd.conf: honoured PCAP_INTF (listening on",
        "PCAP_FILTER (fwknop's packets on UDP port 62203)",
        "fwknopd.conf:3: LOCALE: not honoured",
        "access.conf:6: DIGEST_TYPE: ignored",
    ] {
        assert!(log.contains(said), "`{said}` missing:\n{log}");
    }
    assert_eq!(daemon.count(&log_lines::staying_root(ANY)), 1, "{log}");
    for port in [22, 80, 2222] {
        assert!(is_dropped(&lab.client, CLIENT_V4, at(SERVER_V4, port), DROP_WAIT), "{port} closed before");
    }

    // On fwknopd.conf's port only: the default port is not listened to.
    fwknop(&lab, keys, &["-A", "tcp/22", "-a", OTHER_V4, "-D", SERVER_V4]);
    fwknop(&lab, keys, &["-A", "tcp/80", "-a", CLIENT_V4, "-D", SERVER_V4, "-p", "62203"]);
    assert!(connects_within(&lab.client, CLIENT_V4, at(SERVER_V4, 80), WITHIN), "{}", daemon.log_text());
    let by = vouched(&format!("key stanza2, user {ANY}"));
    assert!(daemon.wait_log(&by, WITHIN), "stanza2 took it: {}", daemon.log_text());
    fwknop(&lab, keys, &["-A", "tcp/22", "-a", CLIENT_V4, "-D", SERVER_V4, "-p", "62203"]);
    assert!(connects_within(&lab.client, CLIENT_V4, at(SERVER_V4, 22), WITHIN), "{}", daemon.log_text());
    assert!(is_dropped(&lab.client, OTHER_V4, at(SERVER_V4, 22), DROP_WAIT), "port 62201 is not listened to");
    assert!(is_dropped(&lab.client, CLIENT_V4, at(SERVER_V4, 2222), DROP_WAIT), "the left-out stanza's port");
}
