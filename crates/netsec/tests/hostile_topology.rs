//! Hostile topology files, one table per renderer: text that would run a command from the AWS CLI
//! script, at `terraform plan`, or turn into a CloudFormation intrinsic function is refused at
//! load, in each file format, with its place and what is allowed; text that is allowed but special
//! to some target renders inert; and every value, refused or not, also renders inert when it
//! skips validation (the renderers quote and escape on their own).

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use membrain_netsec::model::{GroupId, Peer, TierName};
use membrain_netsec::render::{Format, StackOptions, render};
use membrain_netsec::{Topology, profiles::Profile};
use support::{check_aws_cli, check_cloudformation, check_terraform, fixture, load, serialized};

/// A text field of the fixture, by its place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    GroupId,
    GroupName,
    Title,
    GroupDescription,
    RuleDescription,
    PrefixList,
    Service,
    TierName,
    TierDescription,
    Why,
}

impl Field {
    /// The fields whose text reaches a rendered file.
    const RENDERED: [Field; 8] = [
        Self::Name,
        Self::GroupId,
        Self::GroupName,
        Self::Title,
        Self::GroupDescription,
        Self::RuleDescription,
        Self::PrefixList,
        Self::Service,
    ];

    fn place(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::GroupId => "groups[1].id",
            Self::GroupName => "groups[1].name",
            Self::Title => "groups[1].title",
            Self::GroupDescription => "groups[1].description",
            Self::RuleDescription => "groups[1].ingress[0].description",
            Self::PrefixList => "groups[1].ingress[0].peer.prefix_list",
            Self::Service => "endpoints[1].service",
            Self::TierName => "tiers[1].name",
            Self::TierDescription => "tiers[1].description",
            Self::Why => "expected[0].why",
        }
    }

    /// Sets the field to `value`; an id is renamed everywhere it is referenced.
    fn set(self, topology: &mut Topology, value: &str) {
        let text = value.to_owned();
        match self {
            Self::Name => topology.name = text,
            Self::GroupId => {
                let old = topology.groups[1].id.clone();
                let new = GroupId(text);
                let rename = |id: &mut GroupId| {
                    if *id == old {
                        *id = new.clone();
                    }
                };
                for group in &mut topology.groups {
                    rename(&mut group.id);
                    for rule in group.ingress.iter_mut().chain(&mut group.egress) {
                        if let Peer::Group(id) = &mut rule.peer {
                            rename(id);
                        }
                    }
                }
                for tier in &mut topology.tiers {
                    tier.groups.iter_mut().for_each(rename);
                }
                for endpoint in &mut topology.endpoints {
                    endpoint.groups.iter_mut().for_each(rename);
                }
            }
            Self::GroupName => topology.groups[1].name = text,
            Self::Title => topology.groups[1].title = text,
            Self::GroupDescription => topology.groups[1].description = text,
            Self::RuleDescription => topology.groups[1].ingress[0].description = text,
            Self::PrefixList => topology.groups[1].ingress[0].peer = Peer::PrefixList(text),
            Self::Service => topology.endpoints[1].service = text,
            Self::TierName => {
                let old = topology.tiers[1].name.clone();
                let new = TierName(text);
                topology.tiers[1].name = new.clone();
                for flow in topology.expected.iter_mut().chain(&mut topology.forbidden) {
                    for end in [&mut flow.from, &mut flow.to] {
                        if *end == old {
                            *end = new.clone();
                        }
                    }
                }
            }
            Self::TierDescription => topology.tiers[1].description = text,
            Self::Why => topology.expected[0].why = text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Every format refuses it, naming the field's place and what is allowed.
    Refused,
    /// Every format loads it as it was, and the renderer keeps it inert.
    Inert,
}

/// Text that means something to a shell, to Terraform, to CloudFormation or YAML, or to a
/// terminal or a reader; none of it may reach a rendered file.
fn hostile() -> Vec<String> {
    let mut values: Vec<String> = [
        "$(touch /tmp/pwned)",
        "$(touch pwned)",
        "`touch pwned`",
        "x; rm -rf /",
        "x && touch pwned",
        "x | touch pwned > pwned",
        "x\ntouch pwned",
        "x\r\ntouch pwned",
        "it's",
        "' ; touch pwned ; '",
        "\" ; touch pwned ; \"",
        "back\\slash",
        "\\\" ; touch pwned",
        "${file(\"/etc/passwd\")}",
        "$${x} and %%{x}",
        "%{ for x in [1] }x%{ endfor }",
        "\"\n}\nresource \"null_resource\" \"x\" {\n  y = \"",
        "<<EOF\n${x}\nEOF",
        "!Sub ${AWS::AccountId}",
        "!Ref AWS::StackName",
        "{\"Fn::GetAtt\": [\"X\", \"Y\"]}",
        "{{resolve:secretsmanager:x}}",
        "&anchor x",
        "*alias",
        "membr\u{430}in",           // Cyrillic a
        "\u{ff4d}\u{ff45}\u{ff4d}", // full-width letters
        "zero\u{200b}width",
        "rtl\u{202e}txt",
        "nbsp\u{a0}x",
        "\u{1b}[31mred",
        "nul\u{0}x",
        "tab\tx",
        "del\u{7f}x",
        "x*",
    ]
    .map(str::to_owned)
    .to_vec();
    values.push("x".repeat(256));
    // Long, but each argument the script passes still fits Linux's 128 KiB per argument.
    values.push("y".repeat(30_000));
    values
}

/// Every hostile value in every field, the boundaries, and allowed text that is special to some
/// target.
fn rows() -> Vec<(Field, String, Expect)> {
    use Expect::*;
    use Field::*;
    let mut rows = Vec::new();
    for value in hostile() {
        for field in Field::RENDERED {
            rows.push((field, value.clone(), Refused));
        }
        // Shown, never rendered: printable ASCII is fine there, nothing else.
        let printable =
            value.len() <= 255 && value.chars().all(|c| c == ' ' || c.is_ascii_graphic());
        for field in [TierDescription, Why] {
            rows.push((
                field,
                value.clone(),
                if printable { Inert } else { Refused },
            ));
        }
        rows.push((TierName, value.clone(), Refused));
    }
    let text = |s: &str| s.to_owned();
    rows.extend([
        // Boundaries.
        (Name, text("production-eu-west1"), Inert),
        (Name, text("production-eu-west-1"), Refused),
        (Name, text("a-"), Refused),
        (Name, text("1abc"), Refused),
        (Name, text("Abc"), Refused),
        (Name, text(""), Refused),
        (GroupId, text("a_b-c9"), Inert),
        (GroupId, text("9lives"), Refused),
        (GroupId, "g".repeat(65), Refused),
        (GroupName, "n".repeat(255), Inert),
        (GroupName, text("sg-123"), Refused),
        (GroupName, text(" padded"), Refused),
        (GroupName, text(""), Refused),
        (GroupDescription, text(" "), Refused),
        (RuleDescription, "d".repeat(255), Inert),
        (Service, text("timestream.ingest-cell1"), Inert),
        (Service, text("ecr.dkr"), Inert),
        (Service, text("a..b"), Refused),
        (Service, text("logs."), Refused),
        (Service, text("-logs"), Refused),
        (Service, "s".repeat(65), Refused),
        (PrefixList, text("pl-0123456789abcdef0"), Inert),
        (PrefixList, text("pl-123"), Refused),
        (PrefixList, text("pl-0123ABCD"), Refused),
        // Allowed, and special somewhere: shell words and comments, CLI shorthand, JSON
        // placeholders, YAML indicators, CloudFormation's function names as mere words.
        (
            RuleDescription,
            text("Allow (HTTPS) #1, from: 10.0.0.0/8 @@PATH@@ @@@HOME@@@ a=b + c_d.e/f"),
            Inert,
        ),
        (
            GroupDescription,
            text("Fn::Sub Fn::GetAtt Ref: AWS::AccountId (words, not functions) #x, a=b"),
            Inert,
        ),
        (Title, text("Web (prod) #1 @edge + a=b: x/y"), Inert),
        (GroupName, text("web (prod) #1 @edge+/:a.b"), Inert),
        (GroupName, text("- item: #x"), Inert),
        // A group name goes into the CLI's shorthand and filters; a description never does.
        (GroupName, text("x,Key=membrain:group,Value=y"), Refused),
        (GroupName, text("Name=x"), Refused),
        (RuleDescription, text("Key=Name,Value=x"), Inert),
        (RuleDescription, text("key: value, - item, #comment"), Inert),
        (
            TierDescription,
            text("it's \"$(touch pwned)\" `x` ${x} %{y}"),
            Inert,
        ),
        (Why, text("; rm -rf / #"), Inert),
    ]);
    rows
}

/// Loads each row's topology from JSON, YAML and TOML and checks the verdict; then renders
/// through `renderer`, which proves the text inert: each allowed row's topology as loaded, and,
/// per refused value, the fixture with that value in every field that refused it (defence in
/// depth: the renderers quote and escape whatever validation let through). Rows run on every
/// core: the script's check starts a few dozen processes per topology.
fn check(renderer: &(dyn Fn(&Topology) + Sync), rows: &[(Field, String, Expect)]) {
    let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
    let refused: Vec<Topology> = std::thread::scope(|scope| {
        let workers: Vec<_> = rows
            .chunks(rows.len().div_ceil(threads))
            .map(|chunk| scope.spawn(move || check_rows(renderer, chunk)))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    std::thread::scope(|scope| {
        for chunk in refused.chunks(refused.len().div_ceil(threads)) {
            scope.spawn(move || chunk.iter().for_each(renderer));
        }
    });
}

/// Checks the rows' verdicts and renders the allowed ones; returns, per refused value, the
/// fixture with the value in every field that refused it.
fn check_rows(
    renderer: &(dyn Fn(&Topology) + Sync),
    rows: &[(Field, String, Expect)],
) -> Vec<Topology> {
    let mut refused: Vec<(String, Topology)> = Vec::new();
    for (field, value, expect) in rows {
        let mut topology = fixture();
        field.set(&mut topology, value);
        let shown: String = format!("{value:?}").chars().take(80).collect();
        for (format, text) in serialized(&topology) {
            match (load(format, &text), expect) {
                (Err(message), Expect::Refused) => {
                    let place = format!("{}: ", field.place());
                    assert!(
                        message.contains(&place) && message.contains("allowed"),
                        "{format} {shown}: {message:.300} should name {place:?} and what is allowed"
                    );
                    assert!(
                        !message.chars().any(|c| c.is_control() && c != '\n'),
                        "{format} {shown}: raw control characters in {message:?}"
                    );
                    assert!(message.len() < 2_000, "{format} {shown}: {message:.300}");
                }
                (Ok(loaded), Expect::Inert) => assert_eq!(loaded, topology, "{format} {shown}"),
                (got, _) => panic!(
                    "{format} {field:?} = {shown}: wanted {expect:?}, got {:.300}",
                    match got {
                        Ok(_) => "a topology".to_owned(),
                        Err(e) => e,
                    }
                ),
            }
        }
        match expect {
            Expect::Inert => {
                if !Field::RENDERED.contains(field) {
                    for format in Format::ALL {
                        let stack = StackOptions::for_topology(&topology);
                        let text = render(&topology, format, &stack);
                        assert!(
                            !text.contains(value.as_str()),
                            "{field:?} reaches {format:?}"
                        );
                    }
                }
                renderer(&topology);
            }
            Expect::Refused => match refused.iter_mut().find(|(v, _)| v == value) {
                Some((_, all)) => field.set(all, value),
                None => refused.push((value.clone(), topology)),
            },
        }
    }
    refused.into_iter().map(|(_, topology)| topology).collect()
}

#[test]
fn the_aws_cli_script_never_runs_topology_text() {
    check(
        &|topology| {
            check_aws_cli(topology);
        },
        &rows(),
    );
}

#[test]
fn cloudformation_never_reads_topology_text_as_a_function() {
    check(
        &|topology| {
            check_cloudformation(topology, &StackOptions::default());
            check_cloudformation(topology, &StackOptions::for_topology(topology));
        },
        &rows(),
    );
}

#[test]
fn terraform_never_interpolates_topology_text() {
    check(
        &|topology| {
            check_terraform(topology);
        },
        &rows(),
    );
}

#[test]
fn the_built_in_profiles_pass_every_check() {
    for profile in [Profile::Alb, Profile::Gateway] {
        let options = membrain_netsec::profiles::ProfileOptions::for_profile(profile);
        support::check_all_renders(&profile.topology(&options), true);
    }
}

#[test]
fn yaml_anchors_neither_smuggle_text_nor_explode() {
    // Text anchored where it is allowed (a tier's description, only ever shown) is refused where
    // an alias repeats it into a rendered field (endpoints come after tiers in the file).
    let mut topology = fixture();
    topology.tiers[1].description = "ANCHOR".into();
    topology.endpoints[1].service = "ALIAS".into();
    let yaml = support::serialized(&topology)[1]
        .1
        .replace("ANCHOR", "&evil \"$(touch pwned)\"")
        .replace("ALIAS", "*evil");
    let message = load("yaml", &yaml).unwrap_err();
    assert!(
        message.contains("endpoints[1].service: ") && message.contains("allowed"),
        "{message}"
    );
    assert!(!message.contains("tiers[1]"), "{message}");

    // A billion laughs: aliases of aliases nine deep, under a key serde ignores and in a field.
    let mut bomb = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_owned();
    for i in 1..10 {
        let previous = format!("*l{}", i - 1);
        bomb.push_str(&format!("l{i}: &l{i} [{}]\n", vec![previous; 9].join(", ")));
    }
    bomb.push_str(&support::serialized(&fixture())[1].1);
    let started = std::time::Instant::now();
    assert!(load("yaml", &bomb).is_ok(), "unknown keys are ignored");
    let in_field = bomb.replacen("name: gateway", "name: *l9", 1);
    let message = load("yaml", &in_field).unwrap_err();
    assert!(message.contains("name"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn syntax_errors_do_not_echo_control_characters() {
    for (format, text) in [
        (
            "toml",
            "name = \"x\"\n# \u{1b}]0;owned\u{7}\u{1b}[2J\nvpc = [\n",
        ),
        ("yaml", "name: x\nvpc: [\u{1b}[2J\n"),
        ("json", "{\"name\": \"x\u{1b}[2J\", "),
    ] {
        let message = load(format, text).unwrap_err();
        assert!(
            !message.chars().any(|c| c.is_control() && c != '\n'),
            "{format}: {message:?}"
        );
    }
    let long = format!("name = \"{}", "x".repeat(1_000_000));
    let message = load("toml", &long).unwrap_err();
    assert!(message.len() < 2_100, "{}", message.len());
}
