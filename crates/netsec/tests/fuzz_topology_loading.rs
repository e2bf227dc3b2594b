//! `fuzz_topology_loading`: property-based fuzzing of topology loading on stable Rust.
//!
//! Inputs are structured random topologies (random text in every field, mostly drawn from what
//! each field accepts and sometimes anything at all or a hostile snippet; random numbers, ports,
//! protocols, CIDRs and references) written as JSON, YAML and TOML; and TOML/YAML/JSON-ish text:
//! real topology files with random edits, and arbitrary text. Loading never panics. It gives
//! either an error that names its place (a path into the topology, or a line of the file), or a
//! topology whose every render passes the checks of `hostile_topology.rs`: the AWS CLI script
//! passes `bash -n` and, run with a fake `aws`, hands every value over verbatim and runs nothing
//! else; CloudFormation parses (as JSON and as YAML, alike) with every value a plain string and
//! every `Fn::Sub` naming only the template's own names; Terraform parses with hcl-rs with every
//! value a literal string and only the renderer's own templates.
//!
//! `PROPTEST_CASES=n` changes the number of cases (64 per property by default).

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Value, json};
use support::{check_all_renders, load};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig::with_cases(cases)
}

const HOSTILE: [&str; 16] = [
    "$(touch pwned)",
    "`touch pwned`",
    "; rm -rf /",
    "x\ntouch pwned",
    "${file(\"/etc/passwd\")}",
    "%{ for x in [1] }x%{ endfor }",
    "\"",
    "\\",
    "'",
    "!Sub ${AWS::Region}",
    "{\"Fn::Sub\": \"x\"}",
    "*alias",
    "&anchor",
    "membr\u{430}in",
    "\u{1b}[2J",
    "\u{202e}",
];

/// Anything: arbitrary Unicode, printable ASCII up to past every length cap, or a hostile snippet.
fn anything() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        "[ -~]{0,300}",
        select(HOSTILE.to_vec()).prop_map(str::to_owned),
        (select(HOSTILE.to_vec()), "[a-z ]{0,8}").prop_map(|(h, s)| format!("{s}{h}{s}")),
    ]
}

/// What a field accepts; in a noisy topology, sometimes anything.
fn field(accepted: &'static str, noisy: bool) -> BoxedStrategy<String> {
    if noisy {
        prop_oneof![6 => accepted.prop_map(|s| s), 1 => anything()].boxed()
    } else {
        accepted.prop_map(|s| s).boxed()
    }
}

fn cidr(noisy: bool) -> BoxedStrategy<String> {
    let (v4, v6) = if noisy { (34, 130) } else { (32, 128) };
    let valid = prop_oneof![
        (any::<[u8; 4]>(), 0u8..=v4)
            .prop_map(|(a, p)| format!("{}.{}.{}.{}/{p}", a[0], a[1], a[2], a[3])),
        (any::<u128>(), 0u8..=v6).prop_map(|(a, p)| format!("{}/{p}", std::net::Ipv6Addr::from(a))),
    ];
    if noisy {
        prop_oneof![4 => valid, 1 => anything()].boxed()
    } else {
        valid.boxed()
    }
}

fn port(noisy: bool) -> BoxedStrategy<Value> {
    if noisy {
        prop_oneof![6 => (1u32..=65535).prop_map(Value::from), 1 => (0u32..=70_000).prop_map(Value::from)]
            .boxed()
    } else {
        (1u32..=65535).prop_map(Value::from).boxed()
    }
}

/// One of `names`; in a noisy topology, sometimes a name that is not there.
fn reference(names: Vec<String>, noisy: bool) -> BoxedStrategy<String> {
    if noisy {
        prop_oneof![6 => select(names), 1 => field("[a-z][a-z0-9-]{0,6}", true)].boxed()
    } else {
        select(names).boxed()
    }
}

fn rule(ids: Vec<String>, noisy: bool) -> impl Strategy<Value = Value> {
    let peer = prop_oneof![
        3 => cidr(noisy).prop_map(|c| json!({ "cidr": c })),
        3 => reference(ids, noisy).prop_map(|g| json!({ "group": g })),
        1 => field("pl-[0-9a-f]{8}", noisy).prop_map(|p| json!({ "prefix_list": p })),
    ];
    let protocols = if noisy {
        vec!["tcp", "udp", "icmp", "-1", "all", "6", "bogus"]
    } else {
        vec!["tcp", "udp", "icmp", "-1", "tcp", "tcp"]
    };
    (
        select(protocols),
        any::<bool>(),
        port(noisy),
        port(noisy),
        peer,
        field("[A-Za-z0-9][A-Za-z0-9 ._:/()#,@+=-]{0,60}", noisy),
    )
        .prop_map(move |(protocol, flip, from, to, peer, description)| {
            let mut rule =
                json!({ "protocol": protocol, "peer": peer, "description": description });
            // A clean rule has ports exactly when its protocol does, in order.
            let wants_ports = matches!(protocol, "tcp" | "udp");
            if (wants_ports && !(noisy && flip)) || (!wants_ports && noisy && flip) {
                let (mut a, mut b) = (from, to);
                if !noisy && a.as_u64() > b.as_u64() {
                    std::mem::swap(&mut a, &mut b);
                }
                rule["ports"] = json!({ "from": a, "to": b });
            }
            rule
        })
}

fn group(id: String, ids: Vec<String>, noisy: bool) -> impl Strategy<Value = Value> {
    (
        field(
            "[A-Za-z0-9._:/()#@+-][A-Za-z0-9 ._:/()#@+-]{0,30}[A-Za-z0-9]",
            noisy,
        ),
        field("[A-Za-z0-9][A-Za-z0-9 ._:/()#,@+=-]{0,40}", noisy),
        field("[A-Za-z0-9][A-Za-z0-9 ._:/()#,@+=-]{0,80}", noisy),
        proptest::collection::vec(rule(ids.clone(), noisy), 0..4),
        proptest::collection::vec(rule(ids, noisy), 0..3),
    )
        .prop_map(move |(name, title, description, ingress, egress)| {
            json!({
                "id": id, "name": name, "title": title, "description": description,
                "ingress": ingress, "egress": egress,
            })
        })
}

/// A whole topology, clean (every field drawn from what it accepts) or noisy (sometimes
/// anything, hostile snippets, bad numbers and references): ids first, then what refers to them.
fn topology() -> impl Strategy<Value = Value> {
    prop_oneof![2 => topology_of(false), 1 => topology_of(true)]
}

fn topology_of(noisy: bool) -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(field("[a-z][a-z0-9_-]{0,10}", noisy), 1..5),
        proptest::collection::vec(field("[a-z][a-z0-9-]{0,8}", noisy), 1..5),
    )
        .prop_flat_map(move |(ids, tiers)| {
            let groups: Vec<_> = ids
                .iter()
                .map(|id| group(id.clone(), ids.clone(), noisy))
                .collect();
            let tier = |name: String| {
                (
                    field("[ -~]{0,40}", noisy),
                    any::<bool>(),
                    proptest::collection::vec(reference(ids.clone(), noisy), 0..3),
                )
                    .prop_map(move |(description, internet, groups)| {
                        json!({
                            "name": name, "description": description,
                            "placement": if internet { "internet" } else { "vpc" },
                            "groups": groups,
                        })
                    })
            };
            let tiers_strategy: Vec<_> = tiers.iter().cloned().map(tier).collect();
            let endpoint = (
                field("[a-z][a-z0-9]{0,8}([.-][a-z0-9]{1,6}){0,2}", noisy),
                any::<bool>(),
                proptest::collection::vec(reference(ids.clone(), noisy), 1..3),
            )
                .prop_map(|(service, private_dns, groups)| {
                    json!({ "service": service, "private_dns": private_dns, "groups": groups })
                });
            let flow = || {
                (
                    reference(tiers.clone(), noisy),
                    reference(tiers.clone(), noisy),
                    select(vec!["tcp", "udp"]),
                    port(noisy),
                    field("[ -~]{0,40}", noisy),
                )
                    .prop_map(|(from, to, protocol, port, why)| {
                        json!({ "from": from, "to": to, "protocol": protocol, "port": port, "why": why })
                    })
            };
            let public_entry = (
                reference(ids.clone(), noisy),
                proptest::collection::vec(port(noisy), 0..3),
            )
                .prop_map(|(group, ports)| json!({ "group": group, "ports": ports }));
            let vpc = if noisy {
                prop_oneof![4 => "10\\.[0-9]{1,2}\\.0\\.0/(16|20|24|28)".boxed(), 1 => cidr(true)]
                    .boxed()
            } else {
                "10\\.[0-9]{1,2}\\.0\\.0/(16|20|24|28)".boxed()
            };
            (
                field("[a-z][a-z0-9-]{0,17}[a-z0-9]", noisy),
                vpc,
                any::<bool>(),
                groups,
                tiers_strategy,
                proptest::collection::vec(endpoint, 0..3),
                proptest::collection::vec(public_entry, 0..2),
                proptest::collection::vec(flow(), 0..4),
                proptest::collection::vec(flow(), 0..4),
            )
        })
        .prop_map(
            |(name, cidr, create, groups, tiers, endpoints, public_entry, expected, forbidden)| {
                json!({
                    "name": name,
                    "vpc": { "cidr": cidr, "create": create },
                    "groups": groups,
                    "tiers": tiers,
                    "endpoints": endpoints,
                    "public_entry": public_entry,
                    "expected": expected,
                    "forbidden": forbidden,
                })
            },
        )
}

/// Whether an error names where the problem is: after the file's name, a path into the topology
/// (`groups[2].ingress[0].description: …`), or the line the parser stopped at.
fn names_a_place(message: &str, origin: &str) -> bool {
    let Some(rest) = message.strip_prefix(&format!("{origin}: ")) else {
        return false;
    };
    if rest.contains("line ") || rest.starts_with("the top level: ") {
        return true;
    }
    let Some((path, _)) = rest.split_once(": ") else {
        return false;
    };
    !path.is_empty()
        && path.split('.').all(|step| {
            let name = step.split('[').next().unwrap_or_default();
            let indexes = &step[name.len()..];
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && indexes.split_terminator(']').all(|i| {
                    i.strip_prefix('[')
                        .is_some_and(|n| n.parse::<usize>().is_ok())
                })
        })
}

/// Loads `text` as `format`; an error must name its place, a topology must render cleanly.
fn check_loading(format: &str, text: &str, run_script: bool) -> Result<(), String> {
    let origin = format!("topology.{format}");
    match load(format, text) {
        Ok(topology) => {
            check_all_renders(&topology, run_script);
            Ok(())
        }
        Err(message) => {
            assert!(
                names_a_place(&message, &origin),
                "the error names no place: {message:?}"
            );
            Err(message)
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(Index, usize),
    Insert(Index, String),
    DuplicateLine(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let snippet = prop_oneof![
        select(vec![
            "[",
            "]",
            "{",
            "}",
            "\"",
            "'",
            ":",
            ",",
            "=",
            "- ",
            "\n",
            "  ",
            "#",
            "&a ",
            "*a",
            "!!str ",
            "[[groups]]\n",
            "null",
            "-1",
            "70000",
            "0.0.0.0/0",
        ])
        .prop_map(str::to_owned),
        anything(),
    ];
    prop_oneof![
        (any::<Index>(), 1usize..30).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<Index>(), snippet).prop_map(|(at, s)| Edit::Insert(at, s)),
        any::<Index>().prop_map(Edit::DuplicateLine),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        match edit {
            Edit::Delete(at, n) if !chars.is_empty() => {
                let start = at.index(chars.len());
                let end = (start + n).min(chars.len());
                chars.drain(start..end);
            }
            Edit::Insert(at, snippet) => {
                let position = at.index(chars.len() + 1);
                chars.splice(position..position, snippet.chars());
            }
            Edit::DuplicateLine(at) => {
                let text: String = chars.iter().collect();
                let lines: Vec<&str> = text.split_inclusive('\n').collect();
                let i = at
                    .index(lines.len().max(1))
                    .min(lines.len().saturating_sub(1));
                let mut out = String::new();
                for (n, line) in lines.iter().enumerate() {
                    out.push_str(line);
                    if n == i {
                        out.push_str(line);
                    }
                }
                chars = out.chars().collect();
            }
            Edit::Delete(..) => {}
        }
    }
    chars.into_iter().collect()
}

fn profile(gateway: bool) -> membrain_netsec::Topology {
    use membrain_netsec::profiles::Profile;
    let profile = if gateway {
        Profile::Gateway
    } else {
        Profile::Alb
    };
    profile.default_topology()
}

proptest! {
    #![proptest_config(config())]

    /// Random topologies, written as JSON; whatever serde reads from it is also written as YAML
    /// and TOML, and every format must agree: the same topology, or the same errors. Whatever
    /// loads renders inert (the script is run with the fake `aws`).
    #[test]
    fn fuzz_topology_loading(value in topology()) {
        let json = serde_json::to_string_pretty(&value).unwrap();
        let from_json = check_loading("json", &json, true);
        if let Ok(parsed) = serde_json::from_value::<membrain_netsec::Topology>(value) {
            for (format, text) in support::serialized(&parsed) {
                let other = load(format, &text);
                match (&from_json, other) {
                    (Ok(()), Ok(topology)) => prop_assert_eq!(topology, parsed.clone()),
                    (Err(a), Err(b)) => prop_assert_eq!(
                        a.replacen("topology.json", "", 1),
                        b.replacen(&format!("topology.{format}"), "", 1)
                    ),
                    (a, b) => prop_assert!(false, "json {a:?} but {format} {b:?}"),
                }
            }
        }
    }

    /// Real topology files with random edits, in each format.
    #[test]
    fn fuzz_topology_loading_edited_files(
        gateway in any::<bool>(),
        format in select(vec!["json", "yaml", "toml"]),
        edits in proptest::collection::vec(edit(), 1..5),
    ) {
        let text = support::serialized(&profile(gateway))
            .into_iter()
            .find(|(f, _)| *f == format)
            .unwrap()
            .1;
        let _ = check_loading(format, &apply(&text, &edits), false);
    }

    /// Arbitrary text and token soup never panics any loader.
    #[test]
    fn fuzz_topology_loading_arbitrary_text(
        text in prop_oneof![
            ".{0,200}",
            "[\\[\\]{}\":,\n a-z0-9=#&*!'.-]{0,200}",
        ],
    ) {
        for format in ["json", "yaml", "toml"] {
            let _ = check_loading(format, &text, false);
        }
    }
}

#[test]
fn place_names_are_recognised() {
    assert!(names_a_place(
        "t.json: groups[2].ingress[0].description: x",
        "t.json"
    ));
    assert!(names_a_place("t.json: name: x", "t.json"));
    assert!(names_a_place(
        "t.toml: TOML parse error at line 1, column 2",
        "t.toml"
    ));
    assert!(names_a_place(
        "t.yaml: the top level: missing field `vpc`",
        "t.yaml"
    ));
    assert!(!names_a_place("t.json: something went wrong", "t.json"));
    assert!(!names_a_place("groups[0].id: x", "t.json"));
}
