//! Who may take a grant away from an attached set, and who may not: an admin's `nft delete
//! element` is an eviction that sticks, while the owner's reload that empties the set gets the
//! live grants back (review 18).

use std::net::SocketAddr;
use std::time::Duration;

use crate::daemon::{ConfigFile, Daemon, knockd_path};
use crate::lab::*;

const WITHIN: Duration = Duration::from_secs(5);

const ATTACHED: &str = "doors:
  ssh:
    sequence: [7000, 8000, 9000]
    open:
      set: {family: inet, table: firewalld, ipv4: knockd_ssh4}
      timeout: 1h
";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/rulesets/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn gets_in(lab: &Lab, src: &str) -> bool {
    let to = SocketAddr::new(SERVER_V4.parse().unwrap(), 2222);
    connect(&lab.client, src, to, Duration::from_millis(700)).is_ok()
}

#[test]
fn an_admins_eviction_from_an_attached_set_sticks_and_the_owners_reload_is_refilled() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "0.0.0.0:2222".parse().unwrap());
    lab.server.nft(&["-f", &fixture("firewalld.nft")]);
    let config = ConfigFile::new("knockd.yaml", ATTACHED);
    let daemon = Daemon::start(&lab.server, &config, &[]);
    let control = config.control();
    let c = control.to_str().unwrap();
    let grant = || lab.server.run(|| cmd(&knockd_path(), &["grant", CLIENT_V4, "--door", "ssh", "--control", c]));
    grant();
    assert!(eventually(WITHIN, || gets_in(&lab, CLIENT_V4)), "{}", daemon.log_text());

    // The admin evicts the client by hand: knockd forgets the grant instead of putting it back.
    lab.server.nft(&["delete", "element", "inet", "firewalld", "knockd_ssh4", "{", CLIENT_V4, "}"]);
    let forgotten = "ssh: 198.18.0.2: removed from set inet firewalld knockd_ssh4 from outside: forgotten";
    assert!(daemon.wait_log(forgotten, WITHIN), "{}", daemon.log_text());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!gets_in(&lab, CLIENT_V4), "the eviction was undone: {}", daemon.log_text());

    // The owner reloads its table and the reload empties the set: the grant goes back.
    grant();
    assert!(eventually(WITHIN, || gets_in(&lab, CLIENT_V4)), "{}", daemon.log_text());
    let reload = config.path.with_file_name("reload.nft");
    let text = format!(
        "flush table inet firewalld\nflush set inet firewalld knockd_ssh4\ninclude \"{}\"\n",
        fixture("firewalld.nft")
    );
    std::fs::write(&reload, text).unwrap();
    lab.server.nft(&["-f", reload.to_str().unwrap()]);
    assert!(daemon.wait_log("put 1 live grant(s) back", WITHIN), "{}", daemon.log_text());
    assert!(eventually(Duration::from_secs(1), || gets_in(&lab, CLIENT_V4)), "{}", daemon.log_text());
    assert!(!gets_in(&lab, OTHER_V4), "a stranger stays out");
}
