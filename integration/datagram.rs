//! The example door kind, end to end: one UDP datagram with the door's payload opens it for
//! its sender, for the door's timeout; a wrong payload and a stranger get nothing.

use std::time::Duration;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(3);

/// One datagram from `src` to the server's port 40000.
fn send(lab: &Lab, src: &str, payload: &[u8]) {
    send_datagram(lab, src, SERVER_V4, 40000, payload);
}

#[test]
fn a_datagram_with_the_payload_opens_the_door_for_its_sender_until_the_timeout() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "[::]:22".parse().unwrap());
    let payload = ConfigFile::private("ssh.payload", "open sesame");
    let yaml = format!(
        "doors:\n  ssh:\n    datagram: {{port: 40000, payload_file: {}}}\n    from: [{CLIENT_V4}/32]\n    \
         open: {{ports: [22], timeout: 2s}}\n",
        payload.path.display()
    );
    let (_config, daemon) = lab.knockd(&yaml);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "closed before");

    send(&lab, CLIENT_V4, b"open sesamE");
    daemon.expect_log(&log_lines::rejected(None, ip(CLIENT_V4), "datagram rejected"), WITHIN);
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "a wrong payload opened the door");
    send(&lab, OTHER_V4, b"open sesame");
    daemon.expect_log(&log_lines::rejected(None, ip(OTHER_V4), "datagram rejected"), WITHIN);
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "a stranger got in with the payload");

    send(&lab, CLIENT_V4, b"open sesame");
    assert!(connects_within(&lab.client, CLIENT_V4, ssh_v4(), WITHIN), "{}", daemon.log_text());
    daemon.expect_log(&opened("ssh", CLIENT_V4, "22/tcp", secs(2)), WITHIN);
    assert!(is_dropped(&lab.client, OTHER_V4, ssh_v4(), DROP_WAIT), "the grant let a stranger in");
    let counters = daemon.counters();
    assert_eq!((counter(&counters, "datagram_accepted"), counter(&counters, "datagram_rejected")), (Some(1), Some(2)));

    std::thread::sleep(Duration::from_millis(2500)); // the grant's timeout
    assert!(is_dropped(&lab.client, CLIENT_V4, ssh_v4(), DROP_WAIT), "still open after the timeout");
}
