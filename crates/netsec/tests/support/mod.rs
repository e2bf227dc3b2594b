//! What the hostile-topology tests and the fuzz target prove of every rendered artifact, and the
//! fixture they start from.
//!
//! * The AWS CLI script: `bash -n` accepts it, and run under `bash` with a fake `aws` first on
//!   `PATH` (a tiny shell script that records its argv) every value from the topology arrives as
//!   exactly the argument, or the part of the JSON or shorthand argument, it was meant to be, and
//!   the run leaves no file behind but its own.
//! * CloudFormation: the template parses as JSON and, read as YAML (which is what YAML tools do
//!   with a JSON template), gives the same document; every value from the topology is a plain
//!   string where it belongs; every `Fn::Sub` names only parameters, resources and pseudo
//!   parameters of the template; every logical id is alphanumeric.
//! * Terraform: the file parses with hcl-rs; every value from the topology is a literal string
//!   (no interpolation, no directive) equal to the value; the only templates are the two the
//!   renderer writes on purpose; there are exactly the blocks the topology calls for.

#![allow(dead_code, clippy::unwrap_used)] // Each test binary uses part of this; panics are the report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use hcl::expr::TemplateExpr;
use hcl::template::{Element, Template};
use hcl::{Body, Expression};
use membrain_netsec::awscli::{IdOf, ip_permission};
use membrain_netsec::model::*;
use membrain_netsec::profiles::Profile;
use membrain_netsec::render::{Format, StackOptions, render};
use membrain_netsec::{Cidr, Topology};
use serde_json::Value;

/// The gateway profile (a created VPC, endpoints, group and CIDR peers) with a rule of every other
/// kind added: a prefix list, IPv6, a UDP range, ICMP.
pub fn fixture() -> Topology {
    let mut topology = Profile::Gateway.default_topology();
    topology.endpoints.truncate(2);
    let group = &mut topology.groups[1];
    group.ingress.push(Rule {
        protocol: Protocol::Tcp,
        ports: Some(PortRange::new("t", 443, 443).unwrap()),
        peer: Peer::PrefixList("pl-0123abcd".into()),
        description: "From the prefix list".into(),
        beyond_seed: None,
    });
    group.ingress.push(Rule {
        protocol: Protocol::Udp,
        ports: Some(PortRange::new("t", 1000, 2000).unwrap()),
        peer: Peer::Cidr(Cidr::parse("t", "2001:db8::/32").unwrap()),
        description: "UDP over IPv6".into(),
        beyond_seed: None,
    });
    group.ingress.push(Rule {
        protocol: Protocol::Icmp,
        ports: None,
        peer: Peer::Cidr(Cidr::parse("t", "10.0.0.0/8").unwrap()),
        description: "Ping".into(),
        beyond_seed: None,
    });
    topology.validate().unwrap();
    topology
}

/// The topology as each file format writes it.
pub fn serialized(topology: &Topology) -> [(&'static str, String); 3] {
    [
        ("json", serde_json::to_string_pretty(topology).unwrap()),
        ("yaml", yaml_serde::to_string(topology).unwrap()),
        ("toml", toml::to_string(topology).unwrap()),
    ]
}

pub fn load(format: &str, text: &str) -> Result<Topology, String> {
    let origin = format!("topology.{format}");
    match format {
        "json" => Topology::from_json(text, &origin),
        "yaml" => Topology::from_yaml(text, &origin),
        _ => Topology::from_toml(text, &origin),
    }
    .map_err(|e| e.to_string())
}

/// A folder of its own under the system's temporary folder, removed when dropped.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "membrain-netsec-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every render, each checked: the script run with the fake `aws` when `run_script`.
pub fn check_all_renders(topology: &Topology, run_script: bool) {
    check_terraform(topology);
    check_cloudformation(topology, &StackOptions::default());
    check_cloudformation(topology, &StackOptions::for_topology(topology));
    if run_script {
        check_aws_cli(topology);
    } else {
        check_aws_cli_syntax(topology);
    }
}

// --- the AWS CLI script ---------------------------------------------------------------------

/// Records every call (one file per call, named by the time so they sort in order, each argument
/// NUL-terminated) without starting another process, and answers as `--output text` would.
const FAKE_AWS: &str = r#"#!/usr/bin/env bash
printf '%s\0' "$@" > "${FAKE_AWS_LOG}/${EPOCHREALTIME/./}.$$"
case "$2" in
  describe-availability-zones) printf 'zone-a\tzone-b\n' ;;
  describe-prefix-lists) printf 'pl-0123abcd\n' ;;
  describe-route-tables) printf 'rtb-fake\n' ;;
  describe-*) printf 'None\n' ;;
  create-security-group) printf 'sg-%s\n' "${EPOCHREALTIME/./}" ;;
  create-vpc) printf 'vpc-fake\n' ;;
  create-subnet) printf 'subnet-%s\n' "${EPOCHREALTIME/./}" ;;
  create-vpc-endpoint) printf 'vpce-%s\n' "${EPOCHREALTIME/./}" ;;
esac
"#;

/// The id the fake `aws` gives every prefix list.
const FAKE_PREFIX_LIST: &str = "pl-0123abcd";

pub fn check_aws_cli_syntax(topology: &Topology) -> String {
    let script = render(topology, Format::AwsCli, &StackOptions::default());
    let scratch = Scratch::new("bash-n");
    let path = scratch.0.join("security-groups.sh");
    std::fs::write(&path, &script).unwrap();
    let output = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        output.status.success(),
        "bash -n refuses the script: {:.3000}\n{script:.3000}",
        String::from_utf8_lossy(&output.stderr)
    );
    script
}

/// One recorded `aws` call.
#[derive(Debug, Clone)]
pub struct Call(pub Vec<String>);

impl Call {
    fn operation(&self) -> &str {
        self.0.get(1).map(String::as_str).unwrap_or_default()
    }

    /// The argument after `flag`.
    fn after(&self, flag: &str) -> Option<&str> {
        let at = self.0.iter().position(|a| a == flag)?;
        self.0.get(at + 1).map(String::as_str)
    }

    /// Every argument after `flag` up to the next `--…` flag.
    fn values(&self, flag: &str) -> Vec<&str> {
        let Some(at) = self.0.iter().position(|a| a == flag) else {
            return Vec::new();
        };
        self.0[at + 1..]
            .iter()
            .take_while(|a| !a.starts_with("--"))
            .map(String::as_str)
            .collect()
    }
}

/// Runs the script with the fake `aws` and checks that every value from the topology reached
/// `aws` verbatim and that nothing else happened. Returns the calls.
pub fn check_aws_cli(topology: &Topology) -> Vec<Call> {
    let script = check_aws_cli_syntax(topology);
    let scratch = Scratch::new("aws-cli");
    let dir = &scratch.0;
    let bin = dir.join("bin");
    let log = dir.join("calls");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&log).unwrap();
    let aws = bin.join("aws");
    std::fs::write(&aws, FAKE_AWS).unwrap();
    make_executable(&aws);
    let path = dir.join("security-groups.sh");
    std::fs::write(&path, &script).unwrap();

    let mut command = Command::new("bash");
    command
        .arg(&path)
        .current_dir(dir)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", dir)
        .env("AWS_REGION", "us-east-1")
        .env("FAKE_AWS_LOG", &log);
    if !topology.vpc.create {
        command.env("VPC_ID", "vpc-given");
        command.env("PRIVATE_SUBNET_IDS", "subnet-a,subnet-b");
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the script failed: {}\n{:.3000}\n--- script\n{script:.3000}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    // Nothing but the script's own files: a command that ran would have left its mark here.
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["bin", "calls", "security-groups.sh"],
        "{script:.3000}"
    );

    let mut files: Vec<PathBuf> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let calls: Vec<Call> = files
        .iter()
        .map(|file| {
            let bytes = std::fs::read(file).unwrap();
            let text = String::from_utf8(bytes).unwrap();
            let mut args: Vec<String> = text.split('\0').map(str::to_owned).collect();
            args.pop(); // after the last NUL
            Call(args)
        })
        .collect();
    assert_calls(topology, &calls, &stdout);
    calls
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut permissions = std::fs::metadata(path).unwrap().permissions();
    permissions.set_mode(0o755);
    std::fs::set_permissions(path, permissions).unwrap();
}

/// What bash drops from a script (it cannot pass NUL in an argument).
fn as_argument(text: &str) -> String {
    text.replace('\0', "")
}

fn assert_calls(topology: &Topology, calls: &[Call], stdout: &str) {
    let name = as_argument(&topology.name);
    let of = |operation: &str| -> Vec<&Call> {
        calls
            .iter()
            .filter(|c| c.operation() == operation)
            .collect()
    };
    let printed: BTreeMap<&str, &str> = stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();

    if topology.vpc.create {
        let vpcs = of("create-vpc");
        assert_eq!(vpcs.len(), 1, "{calls:#?}");
        assert_eq!(
            vpcs[0].after("--tag-specifications"),
            Some(
                format!(
                    "ResourceType=vpc,Tags=[{{Key=Name,Value=membrain-{name}-vpc}},{{Key=membrain:network,Value={name}}}]"
                )
                .as_str()
            )
        );
        let filter = format!("Name=tag:membrain:network,Values={name}");
        assert!(
            of("describe-vpcs")[0]
                .values("--filters")
                .contains(&filter.as_str())
        );
        let subnets = of("create-subnet");
        assert_eq!(subnets.len(), 2);
        for (i, subnet) in subnets.iter().enumerate() {
            assert_eq!(
                subnet.after("--tag-specifications"),
                Some(
                    format!(
                        "ResourceType=subnet,Tags=[{{Key=Name,Value=membrain-{name}-private-{i}}},{{Key=membrain:network,Value={name}}}]"
                    )
                    .as_str()
                )
            );
        }
    }

    // Each group created with its name and description, tagged with its id and name.
    let created = of("create-security-group");
    assert_eq!(created.len(), topology.groups.len(), "{calls:#?}");
    let mut sg = BTreeMap::new();
    for (group, call) in topology.groups.iter().zip(&created) {
        assert_eq!(
            call.after("--group-name"),
            Some(as_argument(&group.name).as_str())
        );
        assert_eq!(
            call.after("--description"),
            Some(as_argument(&group.description).as_str())
        );
        let id = printed
            .get(group.id.shell_variable().as_str())
            .unwrap_or_else(|| panic!("{} is not printed: {stdout}", group.id.shell_variable()));
        assert!(id.starts_with("sg-"), "{stdout}");
        sg.insert(group.id.clone(), (*id).to_owned());
    }
    let tags = of("create-tags");
    for group in &topology.groups {
        let wanted = [
            format!("Key=membrain:group,Value={}", as_argument(&group.id.0)),
            format!("Key=Name,Value={}", as_argument(&group.name)),
        ];
        assert!(
            tags.iter().any(|call| call.values("--tags") == wanted),
            "{wanted:?} in {tags:#?}"
        );
    }

    // Each rule: its permission JSON exactly as planned, with the peer's real group id.
    for group in &topology.groups {
        for (operation, rules) in [
            ("authorize-security-group-ingress", &group.ingress),
            ("authorize-security-group-egress", &group.egress),
        ] {
            let made: Vec<Value> = of(operation)
                .iter()
                .filter(|c| c.after("--group-id") == Some(sg[&group.id].as_str()))
                .map(|c| serde_json::from_str(c.after("--ip-permissions").unwrap()).unwrap())
                .collect();
            let wanted: Vec<Value> = rules
                .iter()
                .map(|rule| {
                    Value::Array(vec![ip_permission(rule, &|id| match id {
                        IdOf::Group(group) => sg[group].clone(),
                        IdOf::ServicePrefixList(_) => FAKE_PREFIX_LIST.to_owned(),
                    })])
                })
                .collect();
            assert_eq!(made, wanted, "{} {operation}", group.id);
        }
    }

    let endpoints = of("create-vpc-endpoint");
    assert_eq!(endpoints.len(), topology.endpoints.len());
    // The script makes the interface endpoints first, then the gateway endpoints.
    let planned = topology
        .interface_endpoints()
        .chain(topology.gateway_endpoints());
    for (endpoint, call) in planned.zip(&endpoints) {
        let service = as_argument(&endpoint.service);
        if endpoint.kind == EndpointKind::Gateway {
            assert_eq!(
                call.after("--service-name"),
                Some(format!("com.amazonaws.us-east-1.{service}").as_str())
            );
            assert_eq!(call.after("--vpc-endpoint-type"), Some("Gateway"));
            assert_eq!(call.values("--route-table-ids"), ["rtb-fake"]);
            continue;
        }
        assert_eq!(
            call.after("--service-name"),
            Some(format!("com.amazonaws.us-east-1.{service}").as_str())
        );
        assert_eq!(
            call.after("--tag-specifications"),
            Some(
                format!(
                    "ResourceType=vpc-endpoint,Tags=[{{Key=Name,Value=membrain-{name}-{service}}},{{Key=membrain:network,Value={name}}}]"
                )
                .as_str()
            )
        );
        let groups: Vec<&str> = endpoint.groups.iter().map(|g| sg[g].as_str()).collect();
        assert_eq!(call.values("--security-group-ids"), groups);
        let dns = if endpoint.private_dns {
            "--private-dns-enabled"
        } else {
            "--no-private-dns-enabled"
        };
        assert!(call.0.iter().any(|a| a == dns));
    }
    let known = [
        "describe-vpcs",
        "create-vpc",
        "modify-vpc-attribute",
        "describe-availability-zones",
        "describe-subnets",
        "create-subnet",
        "describe-security-groups",
        "create-security-group",
        "create-tags",
        "authorize-security-group-ingress",
        "authorize-security-group-egress",
        "update-security-group-rule-descriptions-egress",
        "revoke-security-group-egress",
        "describe-vpc-endpoints",
        "create-vpc-endpoint",
        "describe-prefix-lists",
        "describe-route-tables",
    ];
    for call in calls {
        assert_eq!(call.0[0], "ec2", "{call:?}");
        assert!(
            known.contains(&call.operation()),
            "an unexpected call: {call:?}"
        );
    }
}

// --- CloudFormation -------------------------------------------------------------------------

const PSEUDO: [&str; 5] = [
    "AWS::Region",
    "AWS::Partition",
    "AWS::AccountId",
    "AWS::URLSuffix",
    "AWS::StackName",
];

pub fn check_cloudformation(topology: &Topology, stack: &StackOptions) -> Value {
    let text = render(topology, Format::CloudFormation, stack);
    let template: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text:.3000}"));
    // YAML limits an implicit key to 1024 characters; validated ids and services are far
    // shorter, but unvalidated ones can make longer logical ids.
    if longest_key(&template) <= 1024 {
        let as_yaml: Value =
            yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text:.3000}"));
        assert_eq!(
            template, as_yaml,
            "YAML tools read the template differently"
        );
    }

    let resources = template["Resources"].as_object().unwrap();
    let mut names: BTreeSet<&str> = resources.keys().map(String::as_str).collect();
    if let Some(parameters) = template.get("Parameters").and_then(Value::as_object) {
        names.extend(parameters.keys().map(String::as_str));
    }
    for name in &names {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "logical id {name:?}"
        );
    }
    let mut subs = Vec::new();
    collect_subs(&template, &mut subs);
    for (text, local) in subs {
        for variable in sub_variables(&text) {
            let base = variable.split('.').next().unwrap_or_default();
            assert!(
                PSEUDO.contains(&variable.as_str())
                    || names.contains(base)
                    || local.iter().any(|name| name == base),
                "Fn::Sub {text:?} names {variable:?}"
            );
        }
    }

    let string = |value: &Value, what: &str| -> String {
        match value {
            Value::String(s) => s.clone(),
            other => panic!("{what} is not a plain string: {other}"),
        }
    };
    let plain_tag = |tags: &Value, key: &str| -> String {
        let tag = tags
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["Key"] == key)
            .unwrap_or_else(|| panic!("no {key} tag in {tags}"));
        string(&tag["Value"], key)
    };
    let mut descriptions = Vec::new();
    for group in &topology.groups {
        let pascal = pascal(&group.id.0);
        let resource = &resources[&format!("{pascal}SecurityGroup")];
        let properties = &resource["Properties"];
        assert_eq!(string(&properties["GroupName"], "GroupName"), group.name);
        assert_eq!(
            string(&properties["GroupDescription"], "GroupDescription"),
            group.description
        );
        assert_eq!(plain_tag(&properties["Tags"], "membrain:group"), group.id.0);
        assert_eq!(plain_tag(&properties["Tags"], "Name"), group.name);
        let output = &template["Outputs"][format!("{pascal}SecurityGroupId")];
        assert_eq!(
            string(&output["Description"], "Output Description"),
            group.title
        );
        for key in ["SecurityGroupIngress", "SecurityGroupEgress"] {
            for rule in properties[key].as_array().into_iter().flatten() {
                descriptions.push(string(&rule["Description"], "a rule's Description"));
            }
        }
    }
    for (_, resource) in resources {
        if matches!(
            resource["Type"].as_str(),
            Some("AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress")
        ) {
            descriptions.push(string(
                &resource["Properties"]["Description"],
                "Description",
            ));
        }
    }
    let placeholder = "No outbound traffic: replaces the default allow-all egress rule";
    descriptions.retain(|d| d != placeholder);
    descriptions.sort();
    let mut planned: Vec<String> = topology
        .groups
        .iter()
        .flat_map(|g| g.ingress.iter().chain(&g.egress))
        .map(|r| r.description.clone())
        .collect();
    planned.sort();
    assert_eq!(descriptions, planned);
    let count = |kind: &str| resources.values().filter(|r| r["Type"] == kind).count();
    assert_eq!(count("AWS::EC2::SecurityGroup"), topology.groups.len());
    assert_eq!(count("AWS::EC2::VPCEndpoint"), topology.endpoints.len());

    for endpoint in &topology.endpoints {
        let resource = &resources[&format!("{}Endpoint", pascal(&endpoint.service))];
        let sub = string(
            &resource["Properties"]["ServiceName"]["Fn::Sub"],
            "ServiceName",
        );
        let literal = sub.strip_prefix("com.amazonaws.${AWS::Region}.").unwrap();
        // Fn::Sub writes `${!` back as `${`.
        assert_eq!(literal.replace("${!", "${"), endpoint.service);
    }
    if topology.vpc.create {
        let tags = &resources["Vpc"]["Properties"]["Tags"];
        assert_eq!(plain_tag(tags, "membrain:network"), topology.name);
        assert_eq!(
            plain_tag(tags, "Name"),
            format!("membrain-{}-vpc", topology.name)
        );
    }
    assert!(string(&template["Description"], "Description").contains(&topology.name));
    template
}

fn longest_key(value: &Value) -> usize {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| k.chars().count().max(longest_key(v)))
            .max()
            .unwrap_or(0),
        Value::Array(items) => items.iter().map(longest_key).max().unwrap_or(0),
        _ => 0,
    }
}

/// Every `Fn::Sub` text, with the variables its list form defines for it.
fn collect_subs(value: &Value, out: &mut Vec<(String, Vec<String>)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "Fn::Sub" {
                    match inner {
                        Value::String(s) => out.push((s.clone(), Vec::new())),
                        Value::Array(parts) => {
                            let local = parts[1]
                                .as_object()
                                .map(|m| m.keys().cloned().collect())
                                .unwrap_or_default();
                            out.push((parts[0].as_str().unwrap().to_owned(), local));
                            collect_subs(&parts[1], out);
                        }
                        other => panic!("Fn::Sub of {other}"),
                    }
                } else {
                    collect_subs(inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_subs(item, out)),
        _ => {}
    }
}

/// The variables an `Fn::Sub` string names: `${X}`, but not the literal `${!X}`.
fn sub_variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        rest = &rest[start + 2..];
        if rest.starts_with('!') {
            continue;
        }
        let end = rest.find('}').unwrap_or(rest.len());
        out.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    out
}

/// CloudFormation's logical-id form of a group id or service (as the renderer derives it).
pub fn pascal(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| part[..1].to_ascii_uppercase() + &part[1..])
        .collect()
}

/// Terraform's name of a group id or service (as the renderer derives it).
pub fn snake(id: &str) -> String {
    let mut name: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

// --- Terraform ------------------------------------------------------------------------------

pub fn check_terraform(topology: &Topology) -> Body {
    let text = render(topology, Format::Terraform, &StackOptions::default());
    let body: Body = hcl::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text:.3000}"));

    // Exactly the blocks the topology calls for: nothing injected, nothing lost.
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for block in body.blocks() {
        let mut key = block.identifier().to_owned();
        if block.identifier() == "resource" {
            key = block.labels()[0].as_str().to_owned();
        }
        *kinds.entry(key).or_default() += 1;
    }
    let count = |kind: &str| kinds.get(kind).copied().unwrap_or(0);
    assert_eq!(
        count("aws_security_group"),
        topology.groups.len(),
        "{text:.3000}"
    );
    let rules = |egress: bool| -> usize {
        topology
            .groups
            .iter()
            .map(|g| {
                if egress {
                    g.egress.len()
                } else {
                    g.ingress.len()
                }
            })
            .sum()
    };
    assert_eq!(count("aws_vpc_security_group_ingress_rule"), rules(false));
    assert_eq!(count("aws_vpc_security_group_egress_rule"), rules(true));
    assert_eq!(count("aws_vpc_endpoint"), topology.endpoints.len());
    assert_eq!(count("terraform"), 1);
    assert_eq!(count("locals"), 1);

    let resource = |kind: &str, name: &str| -> &Body {
        body.blocks()
            .find(|b| {
                b.identifier() == "resource"
                    && b.labels()[0].as_str() == kind
                    && b.labels()[1].as_str() == name
            })
            .map(|b| b.body())
            .unwrap_or_else(|| panic!("no {kind}.{name:.200} in\n{text:.3000}"))
    };
    for group in &topology.groups {
        let name = snake(&group.id.0);
        let block = resource("aws_security_group", &name);
        assert_eq!(literal(block, "name"), group.name);
        assert_eq!(literal(block, "description"), group.description);
        let tags = object(block, "tags");
        assert_eq!(tags.get("membrain:group"), Some(&group.id.0));
        assert_eq!(tags.get("Name"), Some(&group.name));
        for (kind, rules) in [("ingress", &group.ingress), ("egress", &group.egress)] {
            for (i, rule) in rules.iter().enumerate() {
                let block = resource(
                    &format!("aws_vpc_security_group_{kind}_rule"),
                    &format!("{name}_{kind}_{i}"),
                );
                assert_eq!(literal(block, "description"), rule.description);
                if let Peer::PrefixList(id) = &rule.peer {
                    assert_eq!(&literal(block, "prefix_list_id"), id);
                }
            }
        }
    }
    let mut service_lines = text
        .lines()
        .filter(|line| line.trim_start().starts_with("service_name "));
    for endpoint in &topology.endpoints {
        let block = resource("aws_vpc_endpoint", &snake(&endpoint.service));
        let Some(Expression::TemplateExpr(template)) = attribute(block, "service_name") else {
            panic!("service_name is not a template");
        };
        let TemplateExpr::QuotedString(raw) = &**template else {
            panic!("service_name is a heredoc");
        };
        // One interpolation (the region) and no directive...
        let elements = Template::from_expr(template).unwrap();
        let interpolations = elements
            .elements()
            .iter()
            .filter(|e| !matches!(e, Element::Literal(_)))
            .count();
        assert_eq!(interpolations, 1, "service_name is {raw:?}");
        assert!(matches!(elements.elements()[1], Element::Interpolation(_)));
        // ...and after it the service, literally: the tail of the source line read back as a
        // quoted string. (hcl-rs keeps template strings half-decoded, and its template parser
        // reads `%%%{` unlike Terraform, whose `terraform console` gives `%%{` as the HCL spec
        // says; its quoted-string decoding agrees with Terraform.)
        let prefix = "= \"com.amazonaws.${data.aws_region.current.region}";
        let line = service_lines
            .next()
            .expect("a service_name line per endpoint");
        let tail = line
            .split_once(prefix)
            .and_then(|(_, tail)| tail.strip_suffix('"'))
            .unwrap_or_else(|| panic!("service_name is {line:?}"));
        let parsed: Body = hcl::parse(&format!("x = \"{tail}\"\n")).unwrap();
        assert_eq!(literal(&parsed, "x"), format!(".{}", endpoint.service));
        let tags = object(block, "tags");
        assert_eq!(
            tags.get("Name"),
            Some(&format!("membrain-{}-{}", topology.name, endpoint.service))
        );
        assert_eq!(tags.get("membrain:network"), Some(&topology.name));
    }
    if topology.vpc.create {
        let tags = object(resource("aws_vpc", "main"), "tags");
        assert_eq!(tags.get("membrain:network"), Some(&topology.name));
    }
    // The only templates are the ones the renderer writes on purpose.
    let mut templates = Vec::new();
    for attribute in body_attributes(&body) {
        collect_templates(attribute, &mut templates);
    }
    for template in templates {
        let TemplateExpr::QuotedString(raw) = template else {
            panic!("a heredoc: {template:?}");
        };
        assert!(
            raw == "${aws_cloudwatch_log_group.flow_log.arn}:*"
                || raw.starts_with("com.amazonaws.${data.aws_region.current.region}."),
            "an unexpected template {raw:.300?} in\n{text:.3000}"
        );
    }
    body
}

fn attribute<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// A literal string attribute: a template (interpolation or directive) fails.
fn literal(body: &Body, key: &str) -> String {
    match attribute(body, key) {
        Some(Expression::String(s)) => s.clone(),
        other => panic!("{key} is not a literal string: {other:?}"),
    }
}

/// An object attribute whose values are literal strings, by key.
fn object(body: &Body, key: &str) -> BTreeMap<String, String> {
    let Some(Expression::Object(object)) = attribute(body, key) else {
        panic!("{key} is not an object");
    };
    object
        .iter()
        .map(|(k, v)| {
            let key = match k {
                hcl::ObjectKey::Identifier(id) => id.as_str().to_owned(),
                hcl::ObjectKey::Expression(Expression::String(s)) => s.clone(),
                other => panic!("key {other:?}"),
            };
            let Expression::String(value) = v else {
                panic!("{key} = {v:?} is not a literal string");
            };
            (key, value.clone())
        })
        .collect()
}

fn body_attributes(body: &Body) -> Vec<&Expression> {
    let mut out: Vec<&Expression> = body.attributes().map(|a| a.expr()).collect();
    for block in body.blocks() {
        out.extend(body_attributes(block.body()));
    }
    out
}

fn collect_templates<'a>(expression: &'a Expression, out: &mut Vec<&'a TemplateExpr>) {
    match expression {
        Expression::TemplateExpr(template) => {
            assert!(
                matches!(**template, TemplateExpr::QuotedString(_)),
                "a heredoc: {template:?}"
            );
            out.push(template);
        }
        Expression::Array(items) => items.iter().for_each(|e| collect_templates(e, out)),
        Expression::Object(object) => {
            for (key, value) in object.iter() {
                if let hcl::ObjectKey::Expression(key) = key {
                    collect_templates(key, out);
                }
                collect_templates(value, out);
            }
        }
        Expression::FuncCall(call) => call.args.iter().for_each(|e| collect_templates(e, out)),
        Expression::Parenthesis(inner) => collect_templates(inner, out),
        _ => {}
    }
}
