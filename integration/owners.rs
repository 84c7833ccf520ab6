//! Who may take a grant away from an attached set, and who may not: an admin's `nft delete
//! element` is an eviction that sticks, while the owner's reload that empties the set gets the
//! live grants back (review 18).

use std::time::Duration;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(5);

/// Coexist's door on firewalld's ipset, with grants of an hour.
fn attached() -> String {
    crate::coexist::ATTACHED.replace("timeout: 30s", "timeout: 1h")
}

/// Whether `src` gets in to the port the door opens.
fn opened_for(lab: &Lab, src: &str) -> bool {
    gets_in(lab, src, at(SERVER_V4, 2222))
}

#[test]
fn an_admins_eviction_from_an_attached_set_sticks_and_the_owners_reload_is_refilled() {
    let lab = Lab::new();
    let _echo = Echo::start(&lab.server, "0.0.0.0:2222".parse().unwrap());
    lab.server.nft(&["-f", &ruleset("firewalld.nft")]);
    let (config, daemon) = lab.knockd(&attached());
    let grant = || ask(&lab.server, &config, &["grant", CLIENT_V4, "--door", "ssh"]);
    grant();
    assert!(eventually(WITHIN, || opened_for(&lab, CLIENT_V4)), "{}", daemon.log_text());

    // The admin evicts the client by hand: knockd forgets the grant instead of putting it back.
    lab.server.nft(&["delete", "element", "inet", "firewalld", "knockd_ssh4", "{", CLIENT_V4, "}"]);
    let forgotten = log_lines::removed_from_outside("ssh", ip(CLIENT_V4), "inet firewalld knockd_ssh4");
    assert!(daemon.wait_log(&forgotten, WITHIN), "{}", daemon.log_text());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!opened_for(&lab, CLIENT_V4), "the eviction was undone: {}", daemon.log_text());

    // The owner reloads its table and the reload empties the set: the grant goes back.
    grant();
    assert!(eventually(WITHIN, || opened_for(&lab, CLIENT_V4)), "{}", daemon.log_text());
    let reload = config.path.with_file_name("reload.nft");
    let text = format!(
        "flush table inet firewalld\nflush set inet firewalld knockd_ssh4\ninclude \"{}\"\n",
        ruleset("firewalld.nft")
    );
    std::fs::write(&reload, text).unwrap();
    lab.server.nft(&["-f", reload.to_str().unwrap()]);
    assert!(daemon.wait_log(&log_lines::put_back(ANY, ANY, 1), WITHIN), "{}", daemon.log_text());
    assert!(eventually(Duration::from_secs(1), || opened_for(&lab, CLIENT_V4)), "{}", daemon.log_text());
    assert!(!opened_for(&lab, OTHER_V4), "a stranger stays out");
}
