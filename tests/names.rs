//! `--lookup` names: first sight answers at once with the address, later with the name.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use knockd::daemon::names::Names;

#[test]
fn names_arrive_in_the_background() {
    let mut names = Names::default();
    let localhost: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(names.describe(localhost), "127.0.0.1", "never waits for DNS");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut described = names.describe(localhost);
    while !described.contains('(') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        described = names.describe(localhost);
    }
    assert!(described.starts_with("127.0.0.1 (") && described.contains("localhost"), "{described}");
    // An address without a name stays bare.
    let unnamed: IpAddr = "198.18.255.254".parse().unwrap();
    assert_eq!(names.describe(unnamed), "198.18.255.254");
}
