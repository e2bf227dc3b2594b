//! Verify benchmark: a generated topology of 1,000 groups × 20 rules, each group on its own tier,
//! with an expected chain and forbidden shortcuts; prints how long `verify` takes (target ≤ 1 s).
//!
//! Run: `cargo bench -p membrain-netsec --bench verify` (`BENCH_GROUPS`, `BENCH_RULES` change the size).

use std::time::Instant;

use membrain_netsec::model::{Placement, PublicEntry, Vpc};
use membrain_netsec::verify::verify;
use membrain_netsec::{
    Cidr, Flow, GroupId, Peer, PortRange, Protocol, Rule, SecurityGroup, Tier, TierName, Topology,
};

fn generated(groups: usize, rules: usize) -> Topology {
    let vpc = Cidr::parse("vpc", "10.0.0.0/8").expect("a CIDR");
    let id = |i: usize| GroupId(format!("g{i}"));
    let port = |i: usize| 1000 + (i % 50) as u16;
    let mut all = Vec::with_capacity(groups);
    for i in 0..groups {
        let mut ingress = Vec::with_capacity(rules);
        // The chain: tier i-1 reaches tier i on its port.
        if i > 0 {
            ingress.push(Rule::tcp(port(i), Peer::Group(id(i - 1)), "chain"));
        }
        let mut n = 0;
        while ingress.len() < rules {
            // Filler rules on other ports: group references further away and narrow CIDRs.
            let peer = if n % 2 == 0 {
                Peer::Group(id((i + 7 + n) % groups))
            } else {
                Peer::Cidr(
                    Cidr::parse("rule", &format!("192.168.{}.0/24", n % 250)).expect("a CIDR"),
                )
            };
            ingress.push(Rule {
                protocol: Protocol::Tcp,
                ports: Some(PortRange {
                    from: 20_000 + n as u16,
                    to: 20_000 + n as u16,
                }),
                peer,
                description: format!("filler {n}"),
                beyond_seed: None,
            });
            n += 1;
        }
        let egress = vec![Rule::all_traffic(Peer::Cidr(vpc), "all within the VPC")];
        all.push(SecurityGroup {
            id: id(i),
            name: format!("g{i}-sg"),
            title: format!("Group {i}"),
            description: "generated".into(),
            ingress,
            egress,
        });
    }
    let tiers = (0..groups)
        .map(|i| Tier {
            name: TierName(format!("t{i}")),
            description: String::new(),
            placement: Placement::Vpc,
            groups: vec![id(i)],
        })
        .collect();
    let flow = |from: usize, to: usize, p: u16| Flow {
        from: TierName(format!("t{from}")),
        to: TierName(format!("t{to}")),
        protocol: Protocol::Tcp,
        port: p,
        why: String::new(),
    };
    let expected = (1..groups).map(|i| flow(i - 1, i, port(i))).collect();
    let forbidden = (2..groups).map(|i| flow(i - 2, i, port(i))).collect();
    Topology {
        name: "generated".into(),
        vpc: Vpc {
            cidr: vpc,
            create: false,
        },
        groups: all,
        tiers,
        endpoints: Vec::new(),
        public_entry: Vec::<PublicEntry>::new(),
        expected,
        forbidden,
    }
}

fn main() {
    let groups: usize = std::env::var("BENCH_GROUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rules: usize = std::env::var("BENCH_RULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let topology = generated(groups, rules);
    topology
        .validate()
        .expect("the generated topology is valid");
    let mut timings = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let started = Instant::now();
        let report = verify(&topology, &topology);
        timings.push(started.elapsed().as_secs_f64());
        last = Some(report);
    }
    let report = last.expect("at least one run");
    timings.sort_by(f64::total_cmp);
    println!(
        "verify: {groups} groups x {rules} rules, {} tiers, {} flows checked",
        topology.tiers.len(),
        report.flows.len()
    );
    println!(
        "  {} violation(s), {} warning(s)",
        report.violations(),
        report.warnings()
    );
    println!(
        "  best {:.3} s, median {:.3} s, worst {:.3} s (target <= 1 s)",
        timings[0],
        timings[timings.len() / 2],
        timings[timings.len() - 1]
    );
}
