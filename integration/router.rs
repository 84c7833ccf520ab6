//! Routers: a knock opens a forward to a LAN host, on a plain router and inside a fw4-shaped
//! ruleset. Three namespaces: the WAN client (the lab's client), the router (the lab's
//! server, forwarding) and a LAN host behind it.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::*;

const WITHIN: Duration = Duration::from_secs(5);
const ROUTER_LAN_V4: &str = "198.19.1.1";
const LAN_V4: &str = "198.19.1.10";
const ROUTER_LAN_V6: &str = "2001:db8:8::1";
const LAN_V6: &str = "2001:db8:8::10";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The lab, with the server as a router and a LAN host behind it, removed again on drop.
pub struct Router {
    pub lab: Lab,
    pub lan: Netns,
    /// The router's LAN-side interface.
    pub lan_if: String,
}

impl Router {
    pub fn new() -> Router {
        let lab = Lab::new();
        let id = format!("{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let router = Router { lab, lan: Netns(format!("knockd-l{id}")), lan_if: format!("kr{id}") };
        let host_if = format!("kl{id}");
        cmd("ip", &["netns", "add", &router.lan.0]);
        router.lan.ip(&["link", "set", "lo", "up"]);
        let server = &router.lab.server.0;
        cmd(
            "ip",
            &[
                "link",
                "add",
                &router.lan_if,
                "netns",
                server,
                "type",
                "veth",
                "peer",
                "name",
                &host_if,
                "netns",
                &router.lan.0,
            ],
        );
        let (r, l) = (&router.lab.server, &router.lan);
        r.ip(&["addr", "add", &format!("{ROUTER_LAN_V4}/24"), "dev", &router.lan_if, "nodad"]);
        r.ip(&["addr", "add", &format!("{ROUTER_LAN_V6}/64"), "dev", &router.lan_if, "nodad"]);
        l.ip(&["addr", "add", &format!("{LAN_V4}/24"), "dev", &host_if, "nodad"]);
        l.ip(&["addr", "add", &format!("{LAN_V6}/64"), "dev", &host_if, "nodad"]);
        r.ip(&["link", "set", &router.lan_if, "up"]);
        l.ip(&["link", "set", &host_if, "up"]);
        l.ip(&["route", "add", "default", "via", ROUTER_LAN_V4]);
        l.ip(&["-6", "route", "add", "default", "via", ROUTER_LAN_V6]);
        // The WAN client reaches the LAN through the router (for pinholes; DNAT needs no route).
        router.lab.client.ip(&["route", "add", "198.19.1.0/24", "via", SERVER_V4]);
        router.lab.client.ip(&["-6", "route", "add", "2001:db8:8::/64", "via", SERVER_V6]);
        for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            cmd("ip", &["netns", "exec", server, "sysctl", "-q", "-w", key]);
        }
        router
    }

    /// Renames the router's interfaces as an OpenWrt router names them (wan `eth1`, lan
    /// `br-lan`), for the fw4-shaped ruleset.
    pub fn openwrt_names(&mut self) {
        let r = &self.lab.server;
        for (from, to) in [(self.lab.server_if.clone(), "eth1"), (self.lan_if.clone(), "br-lan")] {
            r.ip(&["link", "set", &from, "down"]);
            r.ip(&["link", "set", &from, "name", to]);
            r.ip(&["link", "set", to, "up"]);
        }
        r.ip(&["route", "replace", "198.18.0.0/16", "dev", "eth1"]);
        self.lan_if = "br-lan".into();
        // Addresses stay; IPv6 ones need a moment to be usable again after the link came up.
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.lan.0]).status();
    }
}

/// An echo round trip on an open connection: whether it still carries data.
fn still_works(stream: &mut std::net::TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 4];
    stream.write_all(b"ping").is_ok() && stream.read_exact(&mut buf).is_ok() && &buf == b"ping"
}

/// Knocks door nas's sequence.
fn knock_nas(lab: &Lab, src: &str, dst: &str) {
    knock_tcp(lab, src, dst, &[7801, 7802, 7803]);
}

const NAS: &str = "doors:
  nas:
    sequence: [7801, 7802, 7803]
    open:
      forward:
        - {port: 2522/tcp, to: \"198.19.1.10:22\"}
        - {to: \"[2001:db8:8::10]:22\"}
      timeout: 3s
";

/// Door nas on the router, with the LAN host's ssh: a knock from `src` (to `server`) lets `src`
/// reach `lan` (the address it connects to) through the router, and `other` (the address next
/// to it) not, until the grant ends, while the connection made during it goes on; the OPEN line
/// says what it forwards (`opens`). The config and the daemon, still running.
fn forwards_for_the_grantee_only(
    router: &Router,
    [src, other, server]: [&str; 3],
    lan: SocketAddr,
    opens: &str,
) -> (ConfigFile, Daemon) {
    let lab = &router.lab;
    let _ssh = Echo::start(&router.lan, "[::]:22".parse().unwrap());
    let (config, daemon) = lab.knockd(NAS);
    assert!(!gets_in(lab, src, lan), "nothing is forwarded before the knock");

    knock_nas(lab, src, server);
    daemon.expect_log(&opened("nas", src, opens, secs(3)), WITHIN);
    let mut stream = connect(&lab.client, src, lan, WITHIN).expect("the grantee reaches the LAN host");
    assert!(still_works(&mut stream));
    assert!(!gets_in(lab, other, lan), "a stranger (the address next to the grantee's) is not forwarded");
    assert!(eventually(Duration::from_secs(6), || !gets_in(lab, src, lan)), "closed again");
    assert!(still_works(&mut stream), "an established connection keeps working");
    (config, daemon)
}

#[test]
fn a_knock_opens_a_dnat_to_the_lan_host_for_the_grantee_only_until_it_expires() {
    let router = Router::new();
    let nat = at(SERVER_V4, 2522);
    forwards_for_the_grantee_only(&router, [CLIENT_V4, OTHER_V4, SERVER_V4], nat, "2522/tcp to 198.19.1.10:22");
}

#[test]
fn a_knock_opens_a_pinhole_through_the_router_for_the_grantee_only() {
    let router = Router::new();
    let nas = at(LAN_V6, 22);
    let to = "to [2001:db8:8::10]:22/tcp";
    let (config, _daemon) = forwards_for_the_grantee_only(&router, [CLIENT_V6, OTHER_V6, SERVER_V6], nas, to);
    let status = ask(&router.lab.server, &config, &["status"]);
    assert!(status.contains("forward to [2001:db8:8::10]:22/tcp"), "{status}");
}

const FW4: &str = "nftables: {fw4: {zone: wan}}
doors:
  ssh:
    sequence: [7001, 7002]
    open: {ports: [2222], timeout: 30s}
  nas:
    sequence: [7801, 7802, 7803]
    open:
      forward: [{port: 2522/tcp, to: \"198.19.1.10:22\"}]
      timeout: 30s
";

#[test]
fn inside_fw4_doors_open_and_survive_its_reload_and_restart() {
    let mut router = Router::new();
    router.openwrt_names();
    let lab = &router.lab;
    let _local = Echo::start(&lab.server, "0.0.0.0:2222".parse().unwrap());
    let _ssh = Echo::start(&router.lan, "0.0.0.0:22".parse().unwrap());
    lab.server.nft(&["-f", &ruleset("fw4.nft")]);
    let (config, daemon) = lab.knockd(FW4);
    daemon.expect_log(&log_lines::installed("knockd's rules in table inet fw4 (zone wan)"), WITHIN);
    assert!(!lab.server.nft(&["list", "tables"]).contains("knockd"), "no table of knockd's own");
    let (local, nat) = (at(SERVER_V4, 2222), at(SERVER_V4, 2522));
    assert!(!gets_in(lab, CLIENT_V4, local) && !gets_in(lab, CLIENT_V4, nat), "fw4 rejects both before");

    knock_tcp(lab, CLIENT_V4, SERVER_V4, &[7001, 7002]);
    knock_nas(lab, CLIENT_V4, SERVER_V4);
    assert!(connects_within(&lab.client, CLIENT_V4, local, WITHIN), "{}", daemon.log_text());
    assert!(connects_within(&lab.client, CLIENT_V4, nat, WITHIN), "{}", daemon.log_text());
    assert!(!gets_in(lab, OTHER_V4, local) && !gets_in(lab, OTHER_V4, nat), "a stranger stays out");

    // `fw4 reload`: the table flushed and rendered again in one transaction.
    let reload = config.path.with_file_name("fw4-reload.nft");
    let text = std::fs::read_to_string(ruleset("fw4.nft")).unwrap();
    std::fs::write(&reload, format!("table inet fw4\nflush table inet fw4\n{text}")).unwrap();
    lab.server.nft(&["-f", reload.to_str().unwrap()]);
    assert!(eventually(Duration::from_secs(1), || gets_in(lab, CLIENT_V4, local)), "{}", daemon.log_text());
    assert!(eventually(Duration::from_secs(1), || gets_in(lab, CLIENT_V4, nat)), "{}", daemon.log_text());
    assert!(!gets_in(lab, OTHER_V4, local), "{}", daemon.log_text());

    // `fw4 restart`: the table deleted and loaded again; the grants come back with their time.
    lab.server.nft(&["delete", "table", "inet", "fw4"]);
    lab.server.nft(&["-f", &ruleset("fw4.nft")]);
    assert!(eventually(Duration::from_secs(1), || gets_in(lab, CLIENT_V4, local)), "{}", daemon.log_text());
    assert!(eventually(Duration::from_secs(1), || gets_in(lab, CLIENT_V4, nat)), "{}", daemon.log_text());
    assert!(!gets_in(lab, OTHER_V4, local) && !gets_in(lab, OTHER_V4, nat), "a stranger stays out after a restart");
    let set = lab.server.nft(&["list", "set", "inet", "fw4", "knockd_ssh_v4"]);
    let left: u64 = set.split(" expires ").nth(1).and_then(|t| t.split('s').next()?.parse().ok()).unwrap_or(99);
    assert!(left < 30, "the time it had left: {set}");
}

#[test]
fn inside_fw4_a_missing_zone_is_a_clear_error_at_start() {
    let router = Router::new();
    router.lab.server.nft(&["-f", &ruleset("fw4.nft")]);
    let config = ConfigFile::new("knockd.yaml", &FW4.replace("zone: wan", "zone: guest"));
    let mut daemon = Daemon::spawn(&router.lab.server, &config, &[]);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(1));
    assert!(daemon.log_text().contains("does it have a zone `guest`"), "{}", daemon.log_text());
}

const KEY: &str = "aK2BZ8AjOPhp0jccEbZvTtK53QHY91/Kq/fk3RW/iII=";
const HMAC: &str = "oexBgiCECuijnxbs1WGVYgziybEaV5p2Do4WguSColBAw6SpYSDGynkf/U26G7EjVGLrAUA8af2jNd7h89Iegw==";

/// The stock client (`fwknop`) sends a packet for `args` from the WAN client to the router.
fn fwknop(lab: &Lab, args: &[&str]) {
    let mut all = vec!["netns", "exec", &lab.client.0, "fwknop", "--no-rc-file", "--no-save-args", "--use-hmac"];
    all.extend(["--key-base64-rijndael", KEY, "--key-base64-hmac", HMAC, "-D", SERVER_V4]);
    all.extend_from_slice(args);
    cmd("ip", &all);
}

#[test]
fn fwknops_nat_requests_open_the_forwards_a_door_allows_and_nothing_else() {
    let router = Router::new();
    let lab = &router.lab;
    let _ssh = Echo::start(&router.lan, "0.0.0.0:22".parse().unwrap());
    let _web = Echo::start(&router.lan, "0.0.0.0:80".parse().unwrap());
    // An access.conf as fwknopd's admin has it: FORCE_NAT, with forwarding on in fwknopd.conf.
    let access = ConfigFile::private(
        "access.conf",
        &format!(
            "SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC}\nOPEN_PORTS tcp/2522\nFORCE_NAT {LAN_V4} 22\nFW_ACCESS_TIMEOUT 30\n"
        ),
    );
    let conf = access.write_private("fwknopd.conf", "ENABLE_IPT_FORWARDING Y\n");
    let state = access.state_dir();
    let daemon = Daemon::start(&lab.server, &access, &["--state-dir", state.to_str().unwrap()]);
    let nat = at(SERVER_V4, 2522);
    assert!(!gets_in(lab, CLIENT_V4, nat));

    // A NAT request for a host the stanza does not forward to: refused, by name.
    fwknop(lab, &["-A", "tcp/2522", "-N", &format!("{LAN_V4}:80"), "-a", CLIENT_V4]);
    assert!(daemon.wait_log("which the door does not forward", WITHIN), "{}", daemon.log_text());
    assert!(!gets_in(lab, CLIENT_V4, nat));
    // The one it does: forwarded, for that client only.
    fwknop(lab, &["-A", "tcp/2522", "-N", &format!("{LAN_V4}:22"), "-a", CLIENT_V4]);
    assert!(connects_within(&lab.client, CLIENT_V4, nat, WITHIN), "{}", daemon.log_text());
    let mut stream = connect(&lab.client, CLIENT_V4, nat, WITHIN).unwrap();
    assert!(still_works(&mut stream));
    assert!(!gets_in(lab, OTHER_V4, nat), "a stranger is not forwarded");
    let set = lab.server.nft(&["list", "set", "inet", "knockd", "stanza1_v4"]);
    assert!(set.contains("198.18.0.2 . tcp . 2522") && !set.contains("198.18.0.3"), "{set}");

    // Without forwarding in fwknopd.conf, the stanza is left out, as fwknopd would not forward.
    std::fs::write(&conf, "ENABLE_IPT_FORWARDING N\n").unwrap();
    let out = knockd_check(&lab.server, &access.path);
    let (code, text) = (out.status.code(), printed(&out));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FORCE_NAT needs ENABLE_IPT_FORWARDING Y"), "{text}");
}

#[test]
fn check_says_when_fw4_drops_a_forward_and_that_fw4_mode_fixes_it() {
    let mut router = Router::new();
    router.openwrt_names();
    let lab = &router.lab;
    lab.server.nft(&["-f", &ruleset("fw4.nft")]);
    let check = |config: &ConfigFile| {
        let out = knockd_check(&lab.server, &config.path);
        (out.status.code(), printed(&out))
    };
    let plain = ConfigFile::new("knockd.yaml", &NAS.replace("\n        - {to: \"[2001:db8:8::10]:22\"}", ""));
    let (code, text) = check(&plain);
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("door nas: forward 2522/tcp to 198.19.1.10:22 over IPv4 on eth1: table inet fw4 chain handle_reject rejects it"), "{text}");
    assert!(text.contains("`nftables: {fw4: {zone: wan}}`"), "{text}");
    let inside = ConfigFile::new("knockd.yaml", FW4);
    let (code, text) = check(&inside);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "door nas: forward 2522/tcp to 198.19.1.10:22 over IPv4: nothing in the host's firewall drops it"
        ),
        "{text}"
    );
}
