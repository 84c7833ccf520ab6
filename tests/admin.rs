//! What the control socket's verbs do to the engine, with the in-memory firewall: an admin's
//! grant, its refusals, status, revoke, and the ledger that knows who opened what and when it
//! ends.

mod util;

use std::net::IpAddr;
use std::time::Duration;

use knockd::config::{self, TableFamily};
use knockd::grant::{KEY_IPV4, MemoryFirewall, SetInfo};
use util::{MemoryEngine, start_with};

const CONFIG: &str = "
doors:
  ssh:
    sequence: [7000]
    open: {ports: [\"22/tcp\"], timeout: 30s}
  web:
    sequence: [7100]
    open: {ports: [\"443/tcp\"], timeout: 2m}
  cmd:
    sequence: [7200]
    command: \"true %IP%\"
";

fn engine() -> MemoryEngine {
    util::engine(CONFIG)
}

/// An engine whose door ssh adds to the admin's set `knock4` in table `filter`, which exists.
fn attached() -> MemoryEngine {
    let config = "doors:\n  ssh:\n    sequence: [7000]\n    open: {set: {table: filter, ipv4: knock4}, timeout: 1h}\n";
    let config = util::parsed(config);
    let mut fw = MemoryFirewall::default();
    fw.foreign_sets.push((TableFamily::Inet, "filter".into(), "knock4".into(), SetInfo::timeout_set(KEY_IPV4)));
    start_with(config, fw)
}

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn an_admin_grant_is_an_element_with_its_timeout_and_names_the_admin() {
    let mut e = engine();
    let said = e.admin_grant(addr("198.18.0.7"), "ssh", Some(Duration::from_secs(600)), Vec::new(), 1000).unwrap();
    assert_eq!(said, "door ssh opened for 198.18.0.7");
    let element = &e.firewall().elements[0];
    assert_eq!((element.set.as_str(), element.timeout), ("ssh_v4", Duration::from_secs(600)));

    let (doors, grants) = e.status().unwrap();
    assert_eq!(doors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["ssh", "web", "cmd"]);
    assert_eq!(doors[1].opens, ["443/tcp"]);
    assert_eq!(doors[1].timeout_seconds, Some(120));
    assert_eq!(grants.len(), 1);
    assert_eq!((grants[0].door.as_str(), grants[0].address), ("ssh", addr("198.18.0.7")));
    assert_eq!((grants[0].opens.as_str(), grants[0].by.as_deref()), ("22/tcp", Some("admin uid 1000")));

    // Without --for, the door's own timeout.
    e.admin_grant(addr("2001:db8::7"), "web", None, Vec::new(), 0).unwrap();
    let element = e.firewall().elements.iter().find(|el| el.set == "web_v6").unwrap();
    assert_eq!(element.timeout, Duration::from_secs(120));
}

#[test]
fn an_admin_grant_says_why_it_is_refused() {
    let mut e = engine();
    let refuse = |e: &mut MemoryEngine, door: &str, timeout: Option<u64>, ports: &[&str]| {
        let ports = ports.iter().map(|p| config::PortProto::parse(p).unwrap()).collect();
        e.admin_grant(addr("198.18.0.7"), door, timeout.map(Duration::from_secs), ports, 0).unwrap_err()
    };
    assert_eq!(refuse(&mut e, "nope", None, &[]), "no door is named nope");
    assert!(refuse(&mut e, "ssh", Some(30 * 86400), &[]).starts_with("--for 30days is out of range"));
    assert_eq!(refuse(&mut e, "ssh", None, &["443/tcp"]), "door ssh opens its own ports: leave --port out");
    assert!(e.firewall().elements.is_empty(), "nothing was granted");
    assert_eq!(e.stats().opens, 0);
}

#[test]
fn revoke_removes_the_element_now_from_one_door_or_all() {
    let mut e = engine();
    for door in ["ssh", "web"] {
        e.admin_grant(addr("198.18.0.7"), door, None, Vec::new(), 0).unwrap();
    }
    e.admin_grant(addr("198.18.0.8"), "ssh", None, Vec::new(), 0).unwrap();

    let said = e.revoke(addr("198.18.0.7"), Some("web"), 0).unwrap();
    assert_eq!(said, "revoked: web: 198.18.0.7: 443/tcp");
    assert_eq!(e.firewall().elements.len(), 2);
    let said = e.revoke(addr("198.18.0.7"), None, 0).unwrap();
    assert_eq!(said, "revoked: ssh: 198.18.0.7: 22/tcp");
    let left: Vec<_> = e.firewall().elements.iter().map(|el| el.addr).collect();
    assert_eq!(left, [addr("198.18.0.8")], "the other address keeps its grant");

    assert_eq!(e.revoke(addr("198.18.0.7"), None, 0).unwrap_err(), "198.18.0.7 has no grant");
    assert_eq!(e.revoke(addr("198.18.0.7"), Some("nope"), 0).unwrap_err(), "no door is named nope");
}

#[test]
fn the_ledger_ends_a_grant_at_its_timeout() {
    let mut e = engine();
    e.tick(Duration::from_secs(100));
    e.admin_grant(addr("198.18.0.7"), "ssh", None, Vec::new(), 0).unwrap();
    assert_eq!(e.next_due(), Some(Duration::from_secs(130)), "the loop wakes when the grant ends");
    e.tick(Duration::from_secs(129));
    assert_eq!(e.status().unwrap().1[0].by.as_deref(), Some("admin uid 0"), "still live, still attributed");
    let comment = e.firewall().elements[0].comment.as_deref();
    assert_eq!(comment, Some("admin uid 0"), "the element carries who opened it, for a restart");
    e.tick(Duration::from_secs(130));
    // The kernel removes the element by itself (the memory firewall keeps it); the daemon has
    // logged the end and no longer attributes it.
    assert_eq!(e.status().unwrap().1[0].by, None);
    assert_eq!(e.next_due(), None);
}

#[test]
fn grants_already_in_the_kernel_at_start_end_on_time_too() {
    // A restart: the sets kept an element the previous daemon made.
    let mut firewall = MemoryFirewall::default();
    firewall.elements.push(knockd::grant::Element {
        family: TableFamily::Inet,
        table: "knockd".into(),
        set: "ssh_v4".into(),
        addr: addr("198.18.0.9"),
        port: None,
        timeout: Duration::from_secs(45),
        comment: Some("key alice".into()),
    });
    let mut e = start_with(util::parsed(CONFIG), firewall);
    assert_eq!(e.next_due(), Some(Duration::from_secs(45)), "the loop wakes when it ends");
    let grants = e.status().unwrap().1;
    let who = (grants[0].address, grants[0].by.as_deref());
    assert_eq!(who, (addr("198.18.0.9"), Some("key alice")), "who opened it is read from the element's comment");
    e.tick(Duration::from_secs(45));
    assert_eq!(e.next_due(), None, "ended, and logged as ended");
}

/// Review 18: a revoke is final, even when the kernel had lost the element already (the set's
/// owner reloading, or the set missing for a while): the refill after the owner's reload must
/// not put it back.
#[test]
fn a_revoked_grant_stays_revoked_when_the_kernel_had_lost_it_already() {
    use knockd::grant::memory::Failure;
    let mut e = attached();
    let who = addr("198.18.0.7");
    for missing in [false, true] {
        e.admin_grant(who, "ssh", None, Vec::new(), 0).unwrap();
        // The owner's reload took the element; before knockd puts it back, the admin revokes.
        e.firewall_mut().elements.clear();
        if missing {
            e.firewall_mut().fail_with = Some(Failure::NotFound); // the set is not there at all
        }
        let said = e.revoke(who, None, 0);
        e.firewall_mut().fail_with = None;
        assert!(said.as_deref().is_ok_and(|s| s.starts_with("revoked: ssh: 198.18.0.7")), "{said:?}");
        e.verify(true);
        assert!(e.firewall().elements.is_empty(), "missing set: {missing}: the revoked grant came back");
        assert!(e.status().unwrap().1.is_empty());
    }
}

/// Review 18: `knockd status` still answers while an attached set is missing (its owner
/// restarting), which is when an admin asks.
#[test]
fn status_answers_while_an_attached_set_is_missing() {
    use knockd::grant::memory::Failure;
    let mut e = attached();
    e.firewall_mut().fail_with = Some(Failure::NotFound);
    let (doors, grants) = e.status().expect("status answers");
    assert_eq!((doors.len(), grants.len()), (1, 0));
}

/// Review 18: an admin's `nft delete element` (or `nft flush set`) on an attached set is an
/// eviction: the refill does not undo it. An owner's reload that empties the set does get the
/// grants back.
#[test]
fn an_admins_eviction_from_an_attached_set_sticks_and_an_owners_reload_does_not() {
    let mut e = attached();
    let who = addr("198.18.0.7");
    e.admin_grant(who, "ssh", None, Vec::new(), 0).unwrap();
    e.firewall_mut().elements.clear(); // `nft delete element inet filter knock4 { 198.18.0.7 }`
    e.verify(true);
    assert!(e.firewall().elements.is_empty(), "the admin's eviction was undone");
    assert!(e.status().unwrap().1.is_empty());

    e.admin_grant(who, "ssh", None, Vec::new(), 0).unwrap();
    e.firewall_mut().elements.clear(); // the owner's reload: rules re-made, the set emptied
    e.note_owner_reload();
    e.verify(true);
    assert_eq!(e.firewall().elements.len(), 1, "put back after the owner's reload");
}
