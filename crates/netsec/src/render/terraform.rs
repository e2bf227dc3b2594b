//! The topology as Terraform (one `main.tf`, AWS provider 6).
//!
//! Groups are `aws_security_group` resources without inline rules, and every rule is its own
//! `aws_vpc_security_group_ingress_rule` / `aws_vpc_security_group_egress_rule` with its
//! description: Terraform removes AWS's default allow-all egress from every group it creates, so
//! the planned egress is the whole egress, and mixing inline and standalone rules (which fight on
//! every apply) never happens. When the plan creates the VPC, its subnets, routes, flow log and a
//! locked-down default group come too. checkov findings accepted on purpose carry a
//! `#checkov:skip=ID:reason` comment inside the resource; DEPLOY.md lists them.

use std::fmt::Write as _;

use super::{SubnetLayout, is_default_egress, snake_case};
use crate::Topology;
use crate::aws_json::GROUP_TAG;
use crate::model::{EndpointKind, GroupId, Peer, Rule, SecurityGroup, VpcEndpoint};

/// One line of a block: an attribute, a nested block, or a comment.
#[derive(Debug, Clone)]
enum Item {
    /// A name and an expression, already in HCL syntax (see [`string`]).
    Attribute(String, String),
    Block(String, Vec<Item>),
    Comment(String),
}

fn attribute(name: &str, expression: impl Into<String>) -> Item {
    Item::Attribute(name.to_owned(), expression.into())
}

fn comment(text: &str) -> Item {
    Item::Comment(text.to_owned())
}

/// A quoted HCL string whose content is literal (see [`literal`]). The one way topology text
/// reaches the rendered Terraform.
fn string(text: &str) -> String {
    format!("\"{}\"", literal(text))
}

/// The inside of a quoted HCL string that reads back as exactly `text`: quotes and backslashes
/// escaped, line breaks and every other control character written as escapes (a quoted string
/// cannot span lines, so nothing can end it and start a new attribute or block), and `${`/`%{`
/// doubled so Terraform does not read them as an interpolation or a directive. Heredocs are never
/// written.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `{ key = value }` on several lines, keys quoted when they are not plain identifiers.
fn map(entries: &[(&str, String)], indent: usize) -> String {
    let key = |k: &str| {
        let bare = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if bare { k.to_owned() } else { string(k) }
    };
    let keys: Vec<String> = entries.iter().map(|(k, _)| key(k)).collect();
    let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    let pad = " ".repeat(indent + 2);
    let mut out = "{\n".to_owned();
    for (k, (_, value)) in keys.iter().zip(entries) {
        // Padded by hand: `{:<width$}` panics on widths past u16::MAX.
        let align = " ".repeat(width - k.chars().count());
        let _ = writeln!(out, "{pad}{k}{align} = {value}");
    }
    out.push_str(&" ".repeat(indent));
    out.push('}');
    out
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Writes `items` at `indent`, aligning the `=` of consecutive one-line attributes the way
/// `terraform fmt` does.
fn write_items(out: &mut String, items: &[Item], indent: usize) {
    let pad = " ".repeat(indent);
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Item::Attribute(..) => {
                let run: Vec<(&String, &String)> = items[i..]
                    .iter()
                    .map_while(|item| match item {
                        Item::Attribute(name, value) => Some((name, value)),
                        _ => None,
                    })
                    .collect();
                let width = run
                    .iter()
                    .filter(|(_, v)| !v.contains('\n'))
                    .map(|(n, _)| n.len())
                    .max()
                    .unwrap_or(0);
                for (name, value) in &run {
                    if value.contains('\n') {
                        let _ = writeln!(out, "{pad}{name} = {value}");
                    } else {
                        let _ = writeln!(out, "{pad}{name:<width$} = {value}");
                    }
                }
                i += run.len();
            }
            Item::Block(header, body) => {
                let _ = writeln!(out, "{pad}{header} {{");
                write_items(out, body, indent + 2);
                let _ = writeln!(out, "{pad}}}");
                i += 1;
            }
            Item::Comment(text) => {
                let _ = writeln!(out, "{pad}{text}");
                i += 1;
            }
        }
    }
}

/// A top-level block followed by a blank line.
fn top(out: &mut String, header: &str, body: Vec<Item>) {
    write_items(out, &[Item::Block(header.to_owned(), body)], 0);
    out.push('\n');
}

fn tags(network: &str, name: &str) -> Item {
    attribute(
        "tags",
        map(
            &[
                ("Name", string(name)),
                ("membrain:network", string(network)),
            ],
            2,
        ),
    )
}

pub fn terraform(topology: &Topology) -> String {
    let mut out = header(topology);
    inputs(&mut out, topology);
    if topology.vpc.create {
        created_vpc(&mut out, topology);
    }
    for group in &topology.groups {
        security_group(&mut out, topology, group);
    }
    for endpoint in &topology.endpoints {
        vpc_endpoint(&mut out, topology, endpoint);
    }
    outputs(&mut out, topology);
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn header(topology: &Topology) -> String {
    let mut out = format!(
        "# Membrain network {:?}: security groups, rules and VPC endpoints.\n\
         # Rendered by `membrain network render --format terraform`; change the topology and render\n\
         # again rather than editing this file.\n\n",
        topology.name
    );
    top(
        &mut out,
        "terraform",
        vec![
            attribute("required_version", string(">= 1.5")),
            Item::Block(
                "required_providers".into(),
                vec![attribute(
                    "aws",
                    map(
                        &[
                            ("source", string("hashicorp/aws")),
                            // The major pinned: a provider 7 may change resources under the plan.
                            ("version", string("~> 6.0")),
                        ],
                        4,
                    ),
                )],
            ),
        ],
    );
    out
}

/// Variables for an existing VPC, the region, and the locals the rest refers to.
fn inputs(out: &mut String, topology: &Topology) {
    let needs_subnets = topology.interface_endpoints().next().is_some();
    let needs_route_tables = topology.gateway_endpoints().next().is_some();
    let (vpc_id, subnets, route_tables) = if topology.vpc.create {
        (
            "aws_vpc.main.id",
            "[aws_subnet.private_0.id, aws_subnet.private_1.id]",
            "[aws_route_table.private.id]",
        )
    } else {
        top(
            out,
            "variable \"vpc_id\"",
            vec![
                attribute(
                    "description",
                    string("The VPC that gets the security groups"),
                ),
                attribute("type", "string"),
            ],
        );
        if needs_subnets {
            top(
                out,
                "variable \"private_subnet_ids\"",
                vec![
                    attribute(
                        "description",
                        string("Private subnets for the interface VPC endpoints"),
                    ),
                    attribute("type", "list(string)"),
                ],
            );
        }
        if needs_route_tables {
            top(
                out,
                "variable \"private_route_table_ids\"",
                vec![
                    attribute(
                        "description",
                        string(
                            "The private subnets' route tables: each gateway endpoint adds its route to them",
                        ),
                    ),
                    attribute("type", "list(string)"),
                ],
            );
        }
        (
            "var.vpc_id",
            "var.private_subnet_ids",
            "var.private_route_table_ids",
        )
    };
    if !topology.endpoints.is_empty() {
        top(out, "data \"aws_region\" \"current\"", vec![]);
    }
    let mut locals = vec![attribute("vpc_id", vpc_id)];
    if needs_subnets || topology.vpc.create {
        locals.push(attribute("private_subnet_ids", subnets));
    }
    if needs_route_tables {
        locals.push(attribute("private_route_table_ids", route_tables));
    }
    top(out, "locals", locals);
}

/// The same VPC as the CloudFormation stack: four subnets in two zones, an internet gateway,
/// one NAT gateway, a flow log of all traffic, and the default group stripped of its rules.
fn created_vpc(out: &mut String, topology: &Topology) {
    let network = topology.name.as_str();
    let layout = SubnetLayout::for_topology(topology);
    // Named zones rather than a data source: the subnets must not move when AWS adds a zone.
    top(
        out,
        "variable \"availability_zone_ids\"",
        vec![
            attribute("description", string(super::ZONE_IDS_HELP)),
            attribute("type", "list(string)"),
            Item::Block(
                "validation".into(),
                vec![
                    attribute("condition", "length(var.availability_zone_ids) >= 2"),
                    attribute(
                        "error_message",
                        string("Name at least two availability zone ids."),
                    ),
                ],
            ),
        ],
    );
    top(
        out,
        "resource \"aws_vpc\" \"main\"",
        vec![
            attribute("cidr_block", string(&topology.vpc.cidr.to_string())),
            comment("# Private DNS names of interface endpoints need both."),
            attribute("enable_dns_support", "true"),
            attribute("enable_dns_hostnames", "true"),
            tags(network, &format!("membrain-{network}-vpc")),
        ],
    );
    top(
        out,
        "resource \"aws_default_security_group\" \"default\"",
        vec![
            comment("# No rules: nothing may use the VPC's default group by accident."),
            attribute("vpc_id", "aws_vpc.main.id"),
            tags(network, &format!("membrain-{network}-default-unused")),
        ],
    );
    for (kind, cidrs) in [("public", &layout.public), ("private", &layout.private)] {
        for (i, cidr) in cidrs.iter().enumerate() {
            top(
                out,
                &format!("resource \"aws_subnet\" \"{kind}_{i}\""),
                vec![
                    attribute("vpc_id", "aws_vpc.main.id"),
                    attribute("cidr_block", string(cidr)),
                    attribute(
                        "availability_zone_id",
                        format!("var.availability_zone_ids[{i}]"),
                    ),
                    attribute("map_public_ip_on_launch", "false"),
                    tags(network, &format!("membrain-{network}-{kind}-{i}")),
                ],
            );
        }
    }
    routes(out, network);
    flow_log(out, network);
}

fn routes(out: &mut String, network: &str) {
    top(
        out,
        "resource \"aws_internet_gateway\" \"main\"",
        vec![
            attribute("vpc_id", "aws_vpc.main.id"),
            tags(network, &format!("membrain-{network}-igw")),
        ],
    );
    top(
        out,
        "resource \"aws_eip\" \"nat\"",
        vec![
            attribute("domain", string("vpc")),
            attribute("depends_on", "[aws_internet_gateway.main]"),
            tags(network, &format!("membrain-{network}-nat")),
        ],
    );
    top(
        out,
        "resource \"aws_nat_gateway\" \"main\"",
        vec![
            attribute("allocation_id", "aws_eip.nat.id"),
            attribute("subnet_id", "aws_subnet.public_0.id"),
            tags(network, &format!("membrain-{network}-nat")),
        ],
    );
    for (kind, target) in [
        ("public", ("gateway_id", "aws_internet_gateway.main.id")),
        ("private", ("nat_gateway_id", "aws_nat_gateway.main.id")),
    ] {
        top(
            out,
            &format!("resource \"aws_route_table\" \"{kind}\""),
            vec![
                attribute("vpc_id", "aws_vpc.main.id"),
                tags(network, &format!("membrain-{network}-{kind}")),
            ],
        );
        top(
            out,
            &format!("resource \"aws_route\" \"{kind}_default\""),
            vec![
                attribute("route_table_id", format!("aws_route_table.{kind}.id")),
                attribute("destination_cidr_block", string("0.0.0.0/0")),
                attribute(target.0, target.1),
            ],
        );
        for i in 0..2 {
            top(
                out,
                &format!("resource \"aws_route_table_association\" \"{kind}_{i}\""),
                vec![
                    attribute("subnet_id", format!("aws_subnet.{kind}_{i}.id")),
                    attribute("route_table_id", format!("aws_route_table.{kind}.id")),
                ],
            );
        }
    }
}

fn flow_log(out: &mut String, network: &str) {
    top(
        out,
        "resource \"aws_cloudwatch_log_group\" \"flow_log\"",
        vec![
            comment(&format!(
                "#checkov:skip={}:{}",
                LOG_GROUP_KMS.0, LOG_GROUP_KMS.1
            )),
            attribute(
                "name",
                string(&format!("/membrain/{network}/vpc-flow-logs")),
            ),
            attribute("retention_in_days", "365"),
        ],
    );
    top(
        out,
        "resource \"aws_iam_role\" \"flow_log\"",
        vec![
            attribute(
                "name_prefix",
                string(&format!("membrain-{network}-flow-log-")),
            ),
            attribute(
                "assume_role_policy",
                "jsonencode({\n    Version = \"2012-10-17\"\n    Statement = [{\n      Effect    = \"Allow\"\n      Principal = { Service = \"vpc-flow-logs.amazonaws.com\" }\n      Action    = \"sts:AssumeRole\"\n    }]\n  })",
            ),
        ],
    );
    top(
        out,
        "resource \"aws_iam_role_policy\" \"flow_log\"",
        vec![
            attribute("name", string("write-flow-logs")),
            attribute("role", "aws_iam_role.flow_log.id"),
            attribute(
                "policy",
                "jsonencode({\n    Version = \"2012-10-17\"\n    Statement = [{\n      Effect   = \"Allow\"\n      Action   = [\"logs:CreateLogStream\", \"logs:PutLogEvents\", \"logs:DescribeLogStreams\"]\n      Resource = \"${aws_cloudwatch_log_group.flow_log.arn}:*\"\n    }]\n  })",
            ),
        ],
    );
    top(
        out,
        "resource \"aws_flow_log\" \"main\"",
        vec![
            attribute("vpc_id", "aws_vpc.main.id"),
            attribute("traffic_type", string("ALL")),
            attribute("log_destination_type", string("cloud-watch-logs")),
            attribute("log_destination", "aws_cloudwatch_log_group.flow_log.arn"),
            attribute("iam_role_arn", "aws_iam_role.flow_log.arn"),
        ],
    );
}

const LOG_GROUP_KMS: (&str, &str) = (
    "CKV_AWS_158",
    "CloudWatch Logs encrypts at rest with AWS-owned keys; a customer-managed KMS key is left to accounts whose compliance requires it",
);

/// The Terraform address of a group: `aws_security_group.mcp_alb`.
fn group_address(id: &GroupId) -> String {
    format!("aws_security_group.{}", snake_case(&id.0))
}

fn security_group(out: &mut String, topology: &Topology, group: &SecurityGroup) {
    let name = snake_case(&group.id.0);
    let mut body: Vec<Item> = accepted_group_findings(topology, group)
        .into_iter()
        .map(|(id, reason)| comment(&format!("#checkov:skip={id}:{reason}")))
        .collect();
    body.extend([
        attribute("name", string(&group.name)),
        attribute("description", string(&group.description)),
        attribute("vpc_id", "local.vpc_id"),
        attribute(
            "tags",
            map(
                &[
                    (GROUP_TAG, string(&group.id.0)),
                    ("Name", string(&group.name)),
                ],
                2,
            ),
        ),
    ]);
    top(
        out,
        &format!("resource \"aws_security_group\" \"{name}\""),
        body,
    );
    for (kind, rules) in [("ingress", &group.ingress), ("egress", &group.egress)] {
        for (i, rule) in rules.iter().enumerate() {
            top(
                out,
                &format!("resource \"aws_vpc_security_group_{kind}_rule\" \"{name}_{kind}_{i}\""),
                rule_items(group, rule, kind == "egress"),
            );
        }
    }
}

/// checkov findings the seeds' tables make on purpose, each with its reason.
fn accepted_group_findings(
    topology: &Topology,
    group: &SecurityGroup,
) -> Vec<(&'static str, &'static str)> {
    let attached_here = topology
        .endpoints
        .iter()
        .any(|e| e.groups.contains(&group.id));
    let mut accepted = Vec::new();
    if !attached_here {
        accepted.push((
            "CKV2_AWS_5",
            "This file holds the network only; the group is attached by the ECS services and load balancers (deploy/<profile>/cloudformation.json or your own Terraform), and membrain network verify reports a group no tier carries",
        ));
    }
    accepted
}

fn rule_items(group: &SecurityGroup, rule: &Rule, egress: bool) -> Vec<Item> {
    let mut items = Vec::new();
    if !egress {
        items.extend(
            accepted_ingress_findings(rule)
                .into_iter()
                .map(|(id, reason)| comment(&format!("#checkov:skip={id}:{reason}"))),
        );
    }
    if egress && is_default_egress(rule) {
        items.push(comment(
            "#checkov:skip=CKV_AWS_382:The seed's table keeps all outbound traffic for this group (a load balancer opening connections to its targets, or tasks reaching AWS APIs through NAT); membrain network verify reports any wider flow",
        ));
    }
    items.push(attribute(
        "security_group_id",
        format!("{}.id", group_address(&group.id)),
    ));
    items.push(attribute("description", string(&rule.description)));
    items.push(attribute("ip_protocol", string(rule.protocol.aws_name())));
    if let Some(range) = rule.ports {
        items.push(attribute("from_port", range.from.to_string()));
        items.push(attribute("to_port", range.to.to_string()));
    } else if rule.protocol == crate::Protocol::Icmp {
        items.push(attribute("from_port", "-1"));
        items.push(attribute("to_port", "-1"));
    }
    items.push(match &rule.peer {
        Peer::Cidr(cidr) if cidr.is_ipv6() => attribute("cidr_ipv6", string(&cidr.to_string())),
        Peer::Cidr(cidr) => attribute("cidr_ipv4", string(&cidr.to_string())),
        Peer::Group(other) => attribute(
            "referenced_security_group_id",
            format!("{}.id", group_address(other)),
        ),
        Peer::PrefixList(id) => attribute("prefix_list_id", string(id)),
        // The plan's gateway endpoint for the service knows its prefix list (validation makes
        // sure there is one).
        Peer::ServicePrefixList(service) => attribute(
            "prefix_list_id",
            format!("aws_vpc_endpoint.{}.prefix_list_id", snake_case(service)),
        ),
    });
    items
}

/// checkov's open-port checks for standalone ingress rules (22, 3389, 80) read a rule without a
/// CIDR as open to the world, not seeing `referenced_security_group_id`; and the public entry
/// opens port 80 on purpose.
fn accepted_ingress_findings(rule: &Rule) -> Vec<(&'static str, &'static str)> {
    const OPEN_PORT_CHECKS: [(&str, u16); 3] = [
        ("CKV_AWS_24", 22),
        ("CKV_AWS_25", 3389),
        ("CKV_AWS_260", 80),
    ];
    let covered = OPEN_PORT_CHECKS
        .into_iter()
        .filter(|(_, port)| rule.covers(crate::Protocol::Tcp, *port));
    match &rule.peer {
        Peer::Group(_) => covered
            .map(|(id, _)| {
                (
                    id,
                    "checkov false positive: it reads a standalone rule without a CIDR as open to 0.0.0.0/0, but the source is a security group (referenced_security_group_id)",
                )
            })
            .collect(),
        Peer::Cidr(cidr) if cidr.is_everything() => covered
            .filter(|(id, _)| *id == "CKV_AWS_260")
            .map(|(id, _)| {
                (
                    id,
                    "The public entry: port 80 is open to the internet only so the listener can redirect HTTP to HTTPS",
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn vpc_endpoint(out: &mut String, topology: &Topology, endpoint: &VpcEndpoint) {
    let name = snake_case(&endpoint.service);
    let mut items = vec![
        attribute("vpc_id", "local.vpc_id"),
        attribute(
            "service_name",
            format!(
                "\"com.amazonaws.${{data.aws_region.current.region}}.{}\"",
                literal(&endpoint.service)
            ),
        ),
    ];
    match endpoint.kind {
        EndpointKind::Interface => items.extend([
            attribute("vpc_endpoint_type", string("Interface")),
            attribute("subnet_ids", "local.private_subnet_ids"),
            attribute(
                "security_group_ids",
                list(
                    &endpoint
                        .groups
                        .iter()
                        .map(|g| format!("{}.id", group_address(g)))
                        .collect::<Vec<_>>(),
                ),
            ),
            attribute("private_dns_enabled", endpoint.private_dns.to_string()),
        ]),
        EndpointKind::Gateway => items.extend([
            attribute("vpc_endpoint_type", string("Gateway")),
            attribute("route_table_ids", "local.private_route_table_ids"),
        ]),
    }
    items.push(tags(
        &topology.name,
        &format!("membrain-{}-{}", topology.name, endpoint.service),
    ));
    top(
        out,
        &format!("resource \"aws_vpc_endpoint\" \"{name}\""),
        items,
    );
}

fn outputs(out: &mut String, topology: &Topology) {
    top(
        out,
        "output \"vpc_id\"",
        vec![attribute("value", "local.vpc_id")],
    );
    if topology.vpc.create {
        top(
            out,
            "output \"private_subnet_ids\"",
            vec![attribute("value", "local.private_subnet_ids")],
        );
    }
    top(
        out,
        "output \"security_group_ids\"",
        vec![
            attribute(
                "description",
                string("The id of every group, by logical id"),
            ),
            attribute(
                "value",
                map(
                    &topology
                        .groups
                        .iter()
                        .map(|g| (g.id.0.as_str(), format!("{}.id", group_address(&g.id))))
                        .collect::<Vec<_>>(),
                    2,
                ),
            ),
        ],
    );
    if !topology.endpoints.is_empty() {
        top(
            out,
            "output \"vpc_endpoint_ids\"",
            vec![attribute(
                "value",
                map(
                    &topology
                        .endpoints
                        .iter()
                        .map(|e| {
                            (
                                e.service.as_str(),
                                format!("aws_vpc_endpoint.{}.id", snake_case(&e.service)),
                            )
                        })
                        .collect::<Vec<_>>(),
                    2,
                ),
            )],
        );
    }
}

#[cfg(test)]
mod tests {
    use hcl::{Body, Expression};

    use super::*;
    use crate::profiles::{GatewayTsStore, Profile, ProfileOptions};

    fn parse(profile: Profile, change: impl FnOnce(&mut ProfileOptions)) -> (Topology, Body) {
        let mut options = ProfileOptions::for_profile(profile);
        change(&mut options);
        let topology = profile.topology(&options);
        let text = terraform(&topology);
        let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        (topology, body)
    }

    /// The resources of one type: name and body.
    fn resources<'a>(body: &'a Body, kind: &str) -> Vec<(String, &'a Body)> {
        body.blocks()
            .filter(|b| b.identifier() == "resource" && b.labels()[0].as_str() == kind)
            .map(|b| (b.labels()[1].as_str().to_owned(), b.body()))
            .collect()
    }

    fn value<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
        body.attributes().find(|a| a.key() == key).map(|a| a.expr())
    }

    fn text(body: &Body, key: &str) -> String {
        match value(body, key) {
            Some(Expression::String(s)) => s.clone(),
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn the_provider_is_pinned_to_one_major_version() {
        let (topology, _) = parse(Profile::Alb, |_| {});
        let text = terraform(&topology);
        assert!(text.contains(r#"version = "~> 6.0""#), "{text}");
    }

    #[test]
    fn both_profiles_parse_with_every_rule_described() {
        for profile in [Profile::Alb, Profile::Gateway] {
            let (topology, body) = parse(profile, |_| {});
            let groups = resources(&body, "aws_security_group");
            assert_eq!(groups.len(), topology.groups.len());
            for (_, group) in &groups {
                assert!(!text(group, "description").is_empty());
                assert!(value(group, "ingress").is_none() && value(group, "egress").is_none());
            }
            let ingress = resources(&body, "aws_vpc_security_group_ingress_rule");
            let egress = resources(&body, "aws_vpc_security_group_egress_rule");
            let planned_in: usize = topology.groups.iter().map(|g| g.ingress.len()).sum();
            let planned_out: usize = topology.groups.iter().map(|g| g.egress.len()).sum();
            assert_eq!((ingress.len(), egress.len()), (planned_in, planned_out));
            for group in &topology.groups {
                for rule in group.ingress.iter().chain(&group.egress) {
                    assert!(
                        ingress
                            .iter()
                            .chain(&egress)
                            .any(|(_, r)| text(r, "description") == rule.description),
                        "{}: {}",
                        group.id,
                        rule.description
                    );
                }
            }
        }
    }

    #[test]
    fn rules_name_their_peers() {
        let (_, body) = parse(Profile::Alb, |_| {});
        let ingress = resources(&body, "aws_vpc_security_group_ingress_rule");
        let (_, from_alb) = ingress
            .iter()
            .find(|(n, _)| n == "mcp_ecs_ingress_0")
            .unwrap();
        assert_eq!(
            value(from_alb, "referenced_security_group_id")
                .unwrap()
                .to_string(),
            "aws_security_group.mcp_alb.id"
        );
        assert_eq!(value(from_alb, "from_port").unwrap().to_string(), "8100");
        let egress = resources(&body, "aws_vpc_security_group_egress_rule");
        let (_, all_out) = egress
            .iter()
            .find(|(n, _)| n == "mcp_alb_egress_0")
            .unwrap();
        assert_eq!(text(all_out, "ip_protocol"), "-1");
        assert!(value(all_out, "from_port").is_none());
        assert_eq!(text(all_out, "cidr_ipv4"), "0.0.0.0/0");
        let variable = body
            .blocks()
            .find(|b| b.identifier() == "variable")
            .unwrap();
        assert_eq!(variable.labels()[0].as_str(), "vpc_id");
    }

    #[test]
    fn alb_tasks_reach_s3_through_the_gateway_endpoints_prefix_list() {
        let (_, body) = parse(Profile::Alb, |_| {});
        let endpoints = resources(&body, "aws_vpc_endpoint");
        assert_eq!(endpoints.len(), 5);
        let (_, s3) = endpoints.iter().find(|(n, _)| n == "s3").unwrap();
        assert_eq!(text(s3, "vpc_endpoint_type"), "Gateway");
        assert_eq!(
            value(s3, "route_table_ids").unwrap().to_string(),
            "local.private_route_table_ids"
        );
        assert!(value(s3, "security_group_ids").is_none());
        let to_s3: Vec<String> = resources(&body, "aws_vpc_security_group_egress_rule")
            .iter()
            .filter_map(|(_, r)| value(r, "prefix_list_id").map(ToString::to_string))
            .collect();
        assert_eq!(
            to_s3, ["aws_vpc_endpoint.s3.prefix_list_id"; 2],
            "one rule per task group"
        );
        let variables: Vec<&str> = body
            .blocks()
            .filter(|b| b.identifier() == "variable")
            .map(|b| b.labels()[0].as_str())
            .collect();
        assert!(
            variables.contains(&"private_route_table_ids"),
            "{variables:?}"
        );
        let (_, created) = parse(Profile::Alb, |o| o.create_vpc = true);
        let locals = created
            .blocks()
            .find(|b| b.identifier() == "locals")
            .unwrap();
        let tables = value(locals.body(), "private_route_table_ids")
            .unwrap()
            .to_string();
        assert_eq!(
            tables.split_whitespace().collect::<String>(),
            "[aws_route_table.private.id]"
        );
    }

    #[test]
    fn the_gateway_creates_its_vpc_and_endpoints() {
        let (_, body) = parse(Profile::Gateway, |o| {
            o.gateway_ts_store = GatewayTsStore::Timestream;
        });
        assert_eq!(resources(&body, "aws_subnet").len(), 4);
        assert_eq!(resources(&body, "aws_flow_log").len(), 1);
        assert_eq!(resources(&body, "aws_default_security_group").len(), 1);
        let endpoints = resources(&body, "aws_vpc_endpoint");
        assert_eq!(endpoints.len(), 4);
        let (_, query) = endpoints
            .iter()
            .find(|(n, _)| n == "timestream_query_cell1")
            .unwrap();
        assert_eq!(
            value(query, "private_dns_enabled").unwrap().to_string(),
            "true"
        );
        assert!(
            value(query, "service_name")
                .unwrap()
                .to_string()
                .contains("timestream.query-cell1")
        );
        let (_, without) = parse(Profile::Gateway, |o| {
            o.create_vpc = false;
            o.enable_vpc_endpoints = false;
        });
        assert!(resources(&without, "aws_vpc_endpoint").is_empty());
        assert!(resources(&without, "aws_vpc").is_empty());
    }

    #[test]
    fn strings_are_literal() {
        assert_eq!(
            string("a \"b\" ${c} %{d} \\"),
            "\"a \\\"b\\\" $${c} %%{d} \\\\\""
        );
        assert_eq!(string("a\nb\r\t\u{1b}"), "\"a\\nb\\r\\t\\u001B\"");
        for hostile in [
            "cost ${x}",
            "$${x} $$${x} %%{ for a in b }",
            "${file(\"/etc/passwd\")}",
            "%{ for x in [1] }${x}%{ endfor }",
            "\"\n} resource \"x\" \"y\" {\n  z = \"",
            "<<EOF\n${x}\nEOF",
            "back\\slash\\\"",
            "\u{1b}[31m\u{0}\u{7f}",
        ] {
            let parsed: Body = hcl::parse(&format!("x = {}\n", string(hostile))).unwrap();
            assert_eq!(parsed.attributes().count(), 1);
            assert_eq!(text(&parsed, "x"), hostile);
        }
    }
}
