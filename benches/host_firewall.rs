//! What asking the host's firewall costs on a big ruleset: knockd works the answers out at
//! start, at `check`, on reload and after every change another firewall makes, on the event
//! loop. A drop-policy table of 10,000 rules (a port each, some per source network, some
//! jumping to per-service chains) is read from its nft text, then asked about a port none of
//! them accepts (every rule is looked at) and about one the last rule accepts. `cargo bench
//! --bench host_firewall` prints the figures; nothing here asserts a time.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use knockd::config::Proto;
use knockd::grant::host::text::{Indexes, parse};
use knockd::grant::host::{Domain, Hook, Interface, Probe, answer};

const RULES: u16 = 10_000;

/// The ruleset: one input chain with a drop policy and `RULES` rules, every tenth a jump to a
/// chain of its own, every seventh for a source network only.
fn ruleset_text() -> String {
    let mut input = String::new();
    let mut chains = String::new();
    for i in 0..RULES {
        let port = 20_000 + i;
        if i % 10 == 0 {
            input.push_str(&format!("\t\ttcp dport {port} jump svc_{i}\n"));
            chains.push_str(&format!(
                "\tchain svc_{i} {{\n\t\tip saddr 10.{}.0.0/16 accept\n\t\treturn\n\t}}\n",
                i % 250
            ));
        } else if i % 7 == 0 {
            input.push_str(&format!("\t\tip saddr 192.0.2.0/24 tcp dport {port} accept\n"));
        } else {
            input.push_str(&format!("\t\ttcp dport {port} accept\n"));
        }
    }
    format!(
        "table inet big {{\n\tchain input {{\n\t\ttype filter hook input priority filter; policy drop;\n\
         \t\tct state {{ established, related }} accept\n{input}\t}}\n{chains}}}\n"
    )
}

fn probe(dport: u16) -> Probe {
    Probe {
        proto: Proto::Tcp,
        dport,
        saddr: Domain::all(4),
        daddr: Domain::of_nets(4, &["198.18.0.1/32".parse().unwrap()]),
        iif: Interface::ether("eth0", 2),
        oif: None,
        ct_status: 0,
    }
}

fn benches(c: &mut Criterion) {
    let text = ruleset_text();
    let indexes = Indexes::from([("eth0".to_owned(), 2)]);
    c.bench_function("host firewall: read 10,000 rules from nft text", |b| {
        b.iter(|| parse(black_box(&text), &indexes).unwrap())
    });
    let ruleset = parse(&text, &indexes).unwrap();
    let member = |_: &_, _: &str| false;
    let (closed, last) = (probe(2222), probe(20_000 + RULES - 1));
    c.bench_function("host firewall: a port none of 10,000 rules accepts", |b| {
        b.iter(|| answer(black_box(&ruleset), Hook::Input, &closed, None, &member))
    });
    c.bench_function("host firewall: the port the last of 10,000 rules accepts", |b| {
        b.iter(|| answer(black_box(&ruleset), Hook::Input, &last, None, &member))
    });
}

criterion_group! {
    name = host_firewall;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(host_firewall);
