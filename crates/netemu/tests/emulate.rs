//! The emulated network against the model: the faithful profiles, every rule deleted in turn,
//! a tampered rule, refusals and the clean-up of a crashed run. Needs root, `ip`, `nft`,
//! `python3` (CI runs as root; `./scripts/test` installs nftables). Every `Emulation` is its own
//! Drop guard: a failing assertion still removes its namespaces.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use membrain_netemu::{
    DEFAULT_STATE_DIR, EmulateError, EmulateOptions, Emulation, ProbeReport, clean_stale, system,
};
use membrain_netsec::diagnose::diagnose;
use membrain_netsec::eval::Direction;
use membrain_netsec::profiles::{Profile, ProfileOptions};
use membrain_netsec::{Cidr, GroupId, Peer, Protocol, Rule, Topology};

const TIMEOUT: Duration = Duration::from_millis(500);

fn topology(profile: Profile) -> Topology {
    profile.default_topology()
}

/// Every start cleans stale runs; the test that plants a stale run holds this while it checks
/// that its own clean removed it, so no other test's start removes it first.
static CLEANING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn start(topology: &Topology) -> Emulation {
    let _cleaning = CLEANING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    system::preflight().expect("these tests run as root with ip, nft and python3 installed");
    Emulation::start(topology, &EmulateOptions::default()).expect("the emulation starts")
}

fn probe(emulation: &Emulation) -> ProbeReport {
    let observed = emulation.probe(TIMEOUT).expect("the probe runs");
    ProbeReport::new(emulation.run_id(), emulation.topology(), &observed)
}

fn assert_agrees(report: &ProbeReport, context: &str) {
    let wrong: Vec<String> = report
        .disagreeing()
        .map(|f| {
            format!(
                "{} -> {}:{} observed {} but the model says {}",
                f.from,
                f.to,
                f.port,
                if f.observed_open { "open" } else { "closed" },
                if f.model_allowed { "allowed" } else { "denied" }
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{context}: {}", wrong.join("; "));
}

fn open_flows(report: &ProbeReport) -> BTreeSet<(String, String, u16)> {
    report
        .flows
        .iter()
        .filter(|f| f.observed_open)
        .map(|f| (f.from.0.clone(), f.to.0.clone(), f.port))
        .collect()
}

#[test]
fn the_faithful_profiles_open_every_expected_flow_and_close_every_forbidden_one() {
    for profile in [Profile::Alb, Profile::Gateway] {
        let plan = topology(profile);
        let started = Instant::now();
        let emulation = start(&plan);
        let up = started.elapsed();
        let report = probe(&emulation);
        println!(
            "{}: emulate {:?}, probe of {} flows {:?}, total {:?}",
            profile.name(),
            up,
            report.flows.len(),
            started.elapsed() - up,
            started.elapsed()
        );
        assert_agrees(&report, profile.name());
        for (flows, open) in [(&plan.expected, true), (&plan.forbidden, false)] {
            for flow in flows {
                let probed = report
                    .flows
                    .iter()
                    .find(|f| f.from == flow.from && f.to == flow.to && f.port == flow.port);
                // Flows from a tier the emulation cannot send from (none in the profiles) would
                // be missing; every planned flow must be probed.
                let probed = probed.unwrap_or_else(|| panic!("{flow:?} was not probed"));
                assert_eq!(probed.observed_open, open, "{flow:?}");
            }
        }
        emulation.teardown().expect("teardown");
    }
}

/// Every rule of the plan, one at a time: deleting it closes exactly the flows the model
/// predicts, and `diagnose` names the deleted rule for each of them.
#[test]
fn deleting_any_rule_breaks_exactly_the_flows_the_model_predicts() {
    for profile in [Profile::Alb, Profile::Gateway] {
        let plan = topology(profile);
        let mut emulation = start(&plan);
        let baseline = probe(&emulation);
        assert_agrees(&baseline, "baseline");
        let started = Instant::now();
        let mut cases = 0;
        for (g, group) in plan.groups.iter().enumerate() {
            for direction in [Direction::Ingress, Direction::Egress] {
                let rules = match direction {
                    Direction::Ingress => &group.ingress,
                    Direction::Egress => &group.egress,
                };
                for (r, rule) in rules.iter().enumerate() {
                    cases += 1;
                    let context = format!(
                        "{} without {} {}[{r}]",
                        profile.name(),
                        group.id,
                        direction.name()
                    );
                    let mut changed = plan.clone();
                    match direction {
                        Direction::Ingress => changed.groups[g].ingress.remove(r),
                        Direction::Egress => changed.groups[g].egress.remove(r),
                    };
                    emulation.load_rules(&changed).expect("rules swap");
                    let report = probe(&emulation);
                    assert_agrees(&report, &context);
                    let before = open_flows(&baseline);
                    let after = open_flows(&report);
                    assert!(
                        after.is_subset(&before),
                        "{context}: deleting a rule opened a flow"
                    );
                    for (from, to, port) in before.difference(&after) {
                        let diagnosis =
                            diagnose(&plan, &changed, from, to, Protocol::Tcp, *port).unwrap();
                        assert!(!diagnosis.allowed, "{context}: {from}->{to}:{port}");
                        let named = diagnosis.fixes().any(|fix| {
                            fix.group == group.id
                                && fix.direction == direction
                                && rule.covers(fix.rule.protocol, *port)
                        });
                        assert!(
                            named,
                            "{context}: diagnose {from}->{to}:{port} does not name the rule: {:?}",
                            diagnosis.blockers
                        );
                    }
                }
            }
        }
        println!(
            "{}: {cases} rule deletions swapped and probed in {:?}",
            profile.name(),
            started.elapsed()
        );
        emulation.load_rules(&plan).expect("restore");
        assert_eq!(open_flows(&probe(&emulation)), open_flows(&baseline));
    }
}

/// Nothing leaves the emulation: the VPC router has no default route and no link but the
/// bridge and the tiers' veths, and no tier reaches an address outside it.
#[test]
fn nothing_leaves_the_emulated_network() {
    let plan = topology(Profile::Gateway);
    let emulation = start(&plan);
    let vpc = emulation.plan().vpc_namespace.clone();
    let routes = system::ip(&["-n", &vpc, "route", "show", "default"]).unwrap();
    assert!(
        routes.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&routes.stdout)
    );
    let links = system::ip(&["-n", &vpc, "-o", "link", "show"]).unwrap();
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        let name = line.split(':').nth(1).unwrap().trim();
        let name = name.split('@').next().unwrap();
        assert!(
            name == "lo" || name == "br0" || name.starts_with('t'),
            "unexpected link {name} in the VPC namespace"
        );
    }
    for tier in &emulation.plan().tiers {
        // 192.0.2.1 (TEST-NET-1) stands for anywhere else; the router has no route there.
        let outside = system::in_namespace(
            &tier.namespace,
            &[
                "timeout",
                "1",
                "bash",
                "-c",
                "exec 3<>/dev/tcp/192.0.2.1/80",
            ],
        );
        assert!(outside.is_err(), "{} reached 192.0.2.1", tier.name);
    }
}

#[test]
fn a_tampered_rule_is_observed_open() {
    let plan = topology(Profile::Alb);
    let mut emulation = start(&plan);
    let mut tampered = plan.clone();
    let mcp_ecs = tampered
        .groups
        .iter_mut()
        .find(|g| g.id == GroupId("mcp-ecs".into()))
        .unwrap();
    mcp_ecs.ingress.push(Rule::tcp(
        8100,
        Peer::Cidr(Cidr::everything_v4()),
        "Tampered: MCP tasks open to the internet",
    ));
    emulation.load_rules(&tampered).unwrap();
    let report = probe(&emulation);
    assert_agrees(&report, "tampered");
    let flow = report
        .flows
        .iter()
        .find(|f| f.from.0 == "internet" && f.to.0 == "mcp-ecs" && f.port == 8100)
        .unwrap();
    assert!(flow.observed_open, "the tampered rule should open {flow:?}");
    assert_eq!(flow.planned.as_deref(), Some("forbidden"));
}

/// Seed 000's script creates the MCP tasks' group and never revokes the all-traffic egress AWS
/// gives every new group: the tasks can then reach the internet, which the plan forbids (they
/// reach AWS services through the endpoints). The probe sees that flow open, and `verify` of the
/// same groups reports it.
#[test]
fn the_seed_scripts_leftover_default_egress_is_observed_open_and_reported() {
    let plan = topology(Profile::Alb);
    let mut emulation = start(&plan);
    let to_the_internet = |report: &ProbeReport| {
        report
            .flows
            .iter()
            .find(|f| {
                f.from.0 == "mcp-ecs"
                    && f.to.0 == "internet"
                    && f.port == membrain_netemu::INTERNET_PROBE_PORT
            })
            .cloned()
            .expect("every tier probes the internet")
    };
    let planned = probe(&emulation);
    assert_agrees(&planned, "the plan");
    assert!(
        !to_the_internet(&planned).observed_open,
        "the plan's MCP tasks do not reach the internet"
    );

    let mut leftover = plan.clone();
    leftover
        .groups
        .iter_mut()
        .find(|g| g.id == GroupId("mcp-ecs".into()))
        .unwrap()
        .egress
        .push(Rule::all_traffic(
            Peer::Cidr(Cidr::everything_v4()),
            "AWS's default egress, never revoked",
        ));
    emulation.load_rules(&leftover).unwrap();
    let observed = probe(&emulation);
    assert_agrees(&observed, "the leftover egress");
    let flow = to_the_internet(&observed);
    assert!(flow.observed_open, "the leftover egress opens {flow:?}");
    assert_eq!(flow.planned.as_deref(), Some("forbidden"));

    let report = membrain_netsec::verify::verify(&plan, &leftover);
    assert!(
        report.flows.iter().any(|f| !f.ok
            && f.flow.from.0 == "mcp-ecs"
            && f.flow.to.0 == "internet"
            && f.flow.port == 443),
        "verify reports the forbidden flow open"
    );
    let finding = report
        .findings
        .iter()
        .find(|f| f.code == "broad-egress")
        .unwrap_or_else(|| panic!("verify reports the leftover egress: {:?}", report.findings));
    assert!(finding.place.starts_with("mcp-ecs"), "{finding:?}");
}

#[test]
fn a_topology_that_cannot_be_emulated_is_refused_before_anything_exists() {
    let options = EmulateOptions {
        run_id: Some("0badc1d0".into()),
        ..EmulateOptions::default()
    };
    for (cidr, reason) in [
        ("198.51.0.0/16", "overlapping CIDRs"),
        ("203.0.0.0/16", "the emulated AWS services live"),
        ("10.1.2.0/28", "tier database has no address"),
    ] {
        let mut profile_options = ProfileOptions::for_profile(Profile::Alb);
        profile_options.vpc_cidr = Cidr::parse("cidr", cidr).unwrap();
        let error = Emulation::start(&Profile::Alb.topology(&profile_options), &options)
            .expect_err("refused");
        if system::is_root() {
            assert!(matches!(error, EmulateError::Refused(_)), "{error}");
            assert!(error.to_string().contains(reason), "{cidr}: {error}");
        } else {
            assert!(error.to_string().contains("root"), "{error}");
        }
    }
    let namespaces = system::namespaces().unwrap_or_default();
    assert!(
        !namespaces.iter().any(|n| n.starts_with("mb-0badc1d0-")),
        "{namespaces:?}"
    );
}

#[test]
fn a_crashed_runs_leftovers_are_removed_by_the_next_clean() {
    system::preflight().expect("root, ip and nft");
    let _cleaning = CLEANING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // The shared state directory: a private one would make every other test's run look stale.
    let dir = PathBuf::from(DEFAULT_STATE_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    // A process that has exited stands for the crashed run's owner.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let run_id = "dead0001";
    let namespace = format!("mb-{run_id}-mcp-alb");
    system::ip(&["netns", "add", &namespace]).unwrap();
    std::fs::write(
        dir.join(format!("{run_id}.json")),
        format!("{{\"run_id\":\"{run_id}\",\"pid\":{dead_pid}}}"),
    )
    .unwrap();
    let removed = clean_stale(&dir).unwrap();
    assert!(removed.iter().any(|r| r == run_id), "{removed:?}");
    assert!(!system::namespaces().unwrap().contains(&namespace));
    assert!(!dir.join(format!("{run_id}.json")).exists());
}
