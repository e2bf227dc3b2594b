//! The network part of the template: the VPC with its subnets, routes and flow log (or the
//! parameters naming an existing one), the security groups with every rule, and the VPC
//! endpoints: interface endpoints in the private subnets, gateway endpoints in their route
//! tables. CloudFormation cannot look up an AWS-managed prefix list, so a rule naming one
//! ([`Peer::ServicePrefixList`]) takes its id from a parameter that says how to find it.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::template::{
    Template, get_att, name_tags, reference, skip_checks, sub, sub_literal, tags,
};
use crate::Topology;
use crate::aws_json::GROUP_TAG;
use crate::model::{EndpointKind, GroupId, Peer, Protocol, Rule, SecurityGroup};
use crate::render::{SubnetLayout, keeps_default_egress, pascal_case};

/// How the rest of the template names the VPC and its subnets: resources of this stack, or
/// parameters of an existing VPC.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Network {
    pub create: bool,
}

impl Network {
    pub fn vpc_id(self) -> Value {
        reference(if self.create { "Vpc" } else { "VpcId" })
    }

    pub fn private_subnets(self) -> Value {
        if self.create {
            json!([reference("PrivateSubnet0"), reference("PrivateSubnet1")])
        } else {
            reference("PrivateSubnetIds")
        }
    }

    /// The route tables a gateway endpoint adds its route to: the private subnets'.
    pub fn private_route_tables(self) -> Value {
        if self.create {
            json!([reference("PrivateRouteTable")])
        } else {
            reference("PrivateRouteTableIds")
        }
    }

    pub fn public_subnets(self) -> Value {
        if self.create {
            json!([reference("PublicSubnet0"), reference("PublicSubnet1")])
        } else {
            reference("PublicSubnetIds")
        }
    }
}

/// The logical id of a group's `AWS::EC2::SecurityGroup`.
pub(crate) fn group_resource(id: &GroupId) -> String {
    format!("{}SecurityGroup", pascal_case(&id.0))
}

/// The `sg-…` id of a planned group.
pub(crate) fn group_id(id: &GroupId) -> Value {
    get_att(&group_resource(id), "GroupId")
}

/// Which subnets the rest of the template places something in, so that an existing VPC is asked
/// only for the subnet parameters the template uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SubnetNeeds {
    pub public: bool,
    pub private: bool,
    /// A gateway endpoint needs the private subnets' route tables.
    pub private_routes: bool,
}

pub(crate) fn add_vpc(template: &mut Template, topology: &Topology, needs: SubnetNeeds) -> Network {
    let network = Network {
        create: topology.vpc.create,
    };
    if network.create {
        created_vpc(template, topology);
    } else {
        existing_vpc(template, needs);
    }
    network
}

fn existing_vpc(template: &mut Template, needs: SubnetNeeds) {
    template.parameter(
        "VpcId",
        json!({ "Type": "AWS::EC2::VPC::Id", "Description": "The VPC that gets the security groups" }),
    );
    if needs.private {
        template.parameter(
        "PrivateSubnetIds",
        json!({
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "Two or more private subnets (with a NAT route) for tasks, databases and endpoints"
        }),
    );
    }
    if needs.private_routes {
        template.parameter(
            "PrivateRouteTableIds",
            json!({
                "Type": "CommaDelimitedList",
                "Description": "The route tables of the private subnets (rtb-...), comma-separated: each gateway endpoint adds its route to them"
            }),
        );
    }
    if needs.public {
        template.parameter(
            "PublicSubnetIds",
            json!({
                "Type": "List<AWS::EC2::Subnet::Id>",
                "Description": "Two or more public subnets for the internet-facing load balancer"
            }),
        );
    }
}

/// A VPC with two public and two private subnets in two zones, an internet gateway for the
/// public ones, one NAT gateway for the private ones (image pulls and AWS APIs without
/// endpoints), and a flow log of all traffic.
fn created_vpc(template: &mut Template, topology: &Topology) {
    let network = topology.name.as_str();
    let layout = SubnetLayout::for_topology(topology);
    template.parameter(
        "AvailabilityZoneIds",
        json!({
            "Type": "CommaDelimitedList",
            "Description": crate::render::ZONE_IDS_HELP,
        }),
    );
    template.resource(
        "Vpc",
        "AWS::EC2::VPC",
        json!({
            "CidrBlock": topology.vpc.cidr.to_string(),
            // Private DNS names of interface endpoints need both.
            "EnableDnsSupport": true,
            "EnableDnsHostnames": true,
            "Tags": name_tags(network, "vpc"),
        }),
    );
    for (kind, cidrs) in [("Public", &layout.public), ("Private", &layout.private)] {
        for (i, cidr) in cidrs.iter().enumerate() {
            template.resource(
                &format!("{kind}Subnet{i}"),
                "AWS::EC2::Subnet",
                json!({
                    "VpcId": reference("Vpc"),
                    "CidrBlock": cidr,
                    "AvailabilityZoneId": { "Fn::Select": [i, reference("AvailabilityZoneIds")] },
                    "MapPublicIpOnLaunch": false,
                    "Tags": name_tags(network, &format!("{}-{i}", kind.to_lowercase())),
                }),
            );
        }
    }
    routes(template, network);
    flow_log(template, network);
    template.output("VpcId", "The VPC", reference("Vpc"));
    template.output(
        "PrivateSubnetIds",
        "The private subnets, comma-separated",
        json!({ "Fn::Join": [",", [reference("PrivateSubnet0"), reference("PrivateSubnet1")]] }),
    );
}

fn routes(template: &mut Template, network: &str) {
    template.resource(
        "InternetGateway",
        "AWS::EC2::InternetGateway",
        json!({ "Tags": name_tags(network, "igw") }),
    );
    template.resource(
        "InternetGatewayAttachment",
        "AWS::EC2::VPCGatewayAttachment",
        json!({ "VpcId": reference("Vpc"), "InternetGatewayId": reference("InternetGateway") }),
    );
    template.resource(
        "NatAddress",
        "AWS::EC2::EIP",
        json!({ "Domain": "vpc", "Tags": name_tags(network, "nat") }),
    )["DependsOn"] = json!("InternetGatewayAttachment");
    template.resource(
        "NatGateway",
        "AWS::EC2::NatGateway",
        json!({
            "AllocationId": get_att("NatAddress", "AllocationId"),
            "SubnetId": reference("PublicSubnet0"),
            "Tags": name_tags(network, "nat"),
        }),
    );
    for (kind, target) in [
        (
            "Public",
            json!({ "GatewayId": reference("InternetGateway") }),
        ),
        (
            "Private",
            json!({ "NatGatewayId": reference("NatGateway") }),
        ),
    ] {
        let table = format!("{kind}RouteTable");
        template.resource(
            &table,
            "AWS::EC2::RouteTable",
            json!({ "VpcId": reference("Vpc"), "Tags": name_tags(network, &kind.to_lowercase()) }),
        );
        let mut route =
            json!({ "RouteTableId": reference(&table), "DestinationCidrBlock": "0.0.0.0/0" });
        if let (Some(route), Some(target)) = (route.as_object_mut(), target.as_object()) {
            route.extend(target.clone());
        }
        template.resource(&format!("{kind}DefaultRoute"), "AWS::EC2::Route", route)["DependsOn"] =
            json!("InternetGatewayAttachment");
        for i in 0..2 {
            template.resource(
                &format!("{kind}Subnet{i}RouteTableAssociation"),
                "AWS::EC2::SubnetRouteTableAssociation",
                json!({ "RouteTableId": reference(&table), "SubnetId": reference(&format!("{kind}Subnet{i}")) }),
            );
        }
    }
}

fn flow_log(template: &mut Template, network: &str) {
    log_group(template, "FlowLogGroup", "vpc-flow-logs");
    template.resource(
        "FlowLogRole",
        "AWS::IAM::Role",
        json!({
            "AssumeRolePolicyDocument": assume_role("vpc-flow-logs.amazonaws.com"),
            "Policies": [{
                "PolicyName": "write-flow-logs",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        "Resource": get_att("FlowLogGroup", "Arn"),
                    }],
                },
            }],
        }),
    );
    template.resource(
        "FlowLog",
        "AWS::EC2::FlowLog",
        json!({
            "ResourceId": reference("Vpc"),
            "ResourceType": "VPC",
            "TrafficType": "ALL",
            "LogDestinationType": "cloud-watch-logs",
            "LogGroupName": reference("FlowLogGroup"),
            "DeliverLogsPermissionArn": get_att("FlowLogRole", "Arn"),
            "Tags": name_tags(network, "flow-log"),
        }),
    );
}

/// A log group kept for a year (long enough for an incident review or an audit).
///
/// Named `/membrain/<stack name>/<suffix>`: from the stack's name, not the plan's, so two stacks
/// of one plan (or a retry after a failed create) never collide on a name.
pub(crate) fn log_group<'t>(template: &'t mut Template, name: &str, suffix: &str) -> &'t mut Value {
    let group = template.resource(
        name,
        "AWS::Logs::LogGroup",
        json!({ "LogGroupName": stack_log_group_name(suffix), "RetentionInDays": 365 }),
    );
    skip_checks(group, &[LOG_GROUP_KMS]);
    group
}

/// `/membrain/<stack name>/<suffix>`, as an `Fn::Sub`.
pub(crate) fn stack_log_group_name(suffix: &str) -> Value {
    sub(&format!(
        "/membrain/${{AWS::StackName}}/{}",
        sub_literal(suffix)
    ))
}

/// Log groups keep CloudWatch's own encryption; see DEPLOY.md.
pub(crate) const LOG_GROUP_KMS: (&str, &str) = (
    "CKV_AWS_158",
    "CloudWatch Logs encrypts every log group at rest with AWS-owned keys; a customer-managed KMS key adds a key policy to maintain and is left to accounts whose compliance requires it",
);

/// The trust policy that lets `service` assume a role.
pub(crate) fn assume_role(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": service },
            "Action": "sts:AssumeRole",
        }],
    })
}

/// Every group with its rules. Ingress naming another group goes into standalone
/// `AWS::EC2::SecurityGroupIngress` resources, because inline references would make the groups
/// depend on each other in a cycle (MCP tasks ↔ API ALB). Egress stays inline wherever that
/// forms no cycle, because declaring inline egress is what replaces AWS's default allow-all rule
/// (CloudFormation's semantics); a group whose plan has no inline egress gets AWS's documented
/// "nothing" rule (all traffic to 127.0.0.1/32) to the same end. Only an egress cycle, which
/// neither profile has, leaves some egress standalone next to inline rules.
pub(crate) fn add_security_groups(template: &mut Template, topology: &Topology, network: Network) {
    add_prefix_list_parameters(template, topology);
    let inline_egress = inline_egress_references(topology);
    for group in &topology.groups {
        let name = group_resource(&group.id);
        // CloudFormation rewrites a group's whole inline list on update, deleting standalone
        // rules of the same direction; so a group's ingress is either all inline or all
        // standalone (any group reference makes it standalone, which never forms a cycle).
        let ingress_references = group
            .ingress
            .iter()
            .any(|r| matches!(r.peer, Peer::Group(_)));
        let (ingress_inline, ingress_separate): (Vec<_>, Vec<_>) = group
            .ingress
            .iter()
            .enumerate()
            .partition(|_| !ingress_references);
        let (egress_inline, egress_separate): (Vec<_>, Vec<_>) = group
            .egress
            .iter()
            .enumerate()
            .partition(|(i, rule)| match &rule.peer {
                Peer::Group(_) => inline_egress.contains(&(group.id.clone(), *i)),
                _ => true,
            });
        let mut properties = json!({
            "GroupName": group.name,
            "GroupDescription": group.description,
            "VpcId": network.vpc_id(),
            "SecurityGroupIngress": ingress_inline.iter().map(|(_, r)| rule_json(r, Side::Ingress)).collect::<Vec<_>>(),
            "SecurityGroupEgress": egress_property(group, &egress_inline),
            "Tags": tags(&[(GROUP_TAG, json!(group.id.0)), ("Name", json!(group.name))]),
        });
        if ingress_inline.is_empty()
            && let Some(object) = properties.as_object_mut()
        {
            object.remove("SecurityGroupIngress");
        }
        let resource = template.resource(&name, "AWS::EC2::SecurityGroup", properties);
        let accepted = accepted_group_findings(topology, group);
        if !accepted.is_empty() {
            skip_checks(resource, &accepted);
        }
        for (i, rule) in ingress_separate {
            separate_rule(template, group, i, rule, Side::Ingress);
        }
        for (i, rule) in egress_separate {
            separate_rule(template, group, i, rule, Side::Egress);
        }
        template.output(
            &format!("{}Id", pascal_case(&group.id.0) + "SecurityGroup"),
            &group.title,
            group_id(&group.id),
        );
    }
}

fn egress_property(group: &SecurityGroup, inline: &[(usize, &Rule)]) -> Value {
    let mut rules: Vec<Value> = inline
        .iter()
        .map(|(_, r)| rule_json(r, Side::Egress))
        .collect();
    let keeps_default = keeps_default_egress(&group.egress, false);
    if rules.is_empty() && !keeps_default {
        rules.push(json!({
            "IpProtocol": "-1",
            "CidrIp": "127.0.0.1/32",
            "Description": "No outbound traffic: replaces the default allow-all egress rule",
        }));
    }
    Value::Array(rules)
}

/// checkov findings the seeds' tables make on purpose, with the reason.
fn accepted_group_findings(
    topology: &Topology,
    group: &SecurityGroup,
) -> Vec<(&'static str, &'static str)> {
    let mut accepted = Vec::new();
    let public = topology
        .public_entry
        .iter()
        .any(|entry| entry.group == group.id);
    let open_on = |port: u16| {
        group.ingress.iter().any(|rule| {
            matches!(&rule.peer, Peer::Cidr(c) if c.is_everything())
                && rule.covers(Protocol::Tcp, port)
        })
    };
    if public && open_on(80) {
        accepted.push((
            "CKV_AWS_260",
            "The public entry: port 80 is open to the internet only so the listener can redirect HTTP to HTTPS",
        ));
    }
    accepted
}

/// The parameter that holds the `pl-…` id of `service`'s AWS-managed prefix list.
fn prefix_list_parameter(service: &str) -> String {
    format!("{}PrefixListId", pascal_case(service))
}

/// One parameter per service prefix list the rules name, with the command that finds its id.
fn add_prefix_list_parameters(template: &mut Template, topology: &Topology) {
    for service in topology.service_prefix_lists() {
        template.parameter(
            &prefix_list_parameter(service),
            json!({
                "Type": "String",
                "AllowedPattern": "^pl-([0-9a-f]{8}|[0-9a-f]{17})$",
                "ConstraintDescription": "a prefix list id: pl- and 8 or 17 hexadecimal digits",
                "Description": format!(
                    "The id of this region's AWS-managed prefix list com.amazonaws.<region>.{service}: aws ec2 describe-prefix-lists --filters Name=prefix-list-name,Values=com.amazonaws.<region>.{service} --query 'PrefixLists[0].PrefixListId' --output text"
                ),
            }),
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Ingress,
    Egress,
}

/// A rule in CloudFormation's shape (inline or standalone share the property names).
fn rule_json(rule: &Rule, side: Side) -> Value {
    let mut out =
        json!({ "IpProtocol": rule.protocol.aws_name(), "Description": rule.description });
    match (rule.ports, rule.protocol) {
        (Some(range), _) => {
            out["FromPort"] = json!(range.from);
            out["ToPort"] = json!(range.to);
        }
        (None, Protocol::Icmp) => {
            out["FromPort"] = json!(-1);
            out["ToPort"] = json!(-1);
        }
        (None, _) => {}
    }
    match (&rule.peer, side) {
        (Peer::Cidr(cidr), _) if cidr.is_ipv6() => out["CidrIpv6"] = json!(cidr.to_string()),
        (Peer::Cidr(cidr), _) => out["CidrIp"] = json!(cidr.to_string()),
        (Peer::Group(group), Side::Ingress) => out["SourceSecurityGroupId"] = group_id(group),
        (Peer::Group(group), Side::Egress) => out["DestinationSecurityGroupId"] = group_id(group),
        (Peer::PrefixList(id), Side::Ingress) => out["SourcePrefixListId"] = json!(id),
        (Peer::PrefixList(id), Side::Egress) => out["DestinationPrefixListId"] = json!(id),
        (Peer::ServicePrefixList(service), Side::Ingress) => {
            out["SourcePrefixListId"] = reference(&prefix_list_parameter(service));
        }
        (Peer::ServicePrefixList(service), Side::Egress) => {
            out["DestinationPrefixListId"] = reference(&prefix_list_parameter(service));
        }
    }
    out
}

fn separate_rule(
    template: &mut Template,
    group: &SecurityGroup,
    index: usize,
    rule: &Rule,
    side: Side,
) {
    let (suffix, kind) = match side {
        Side::Ingress => ("Ingress", "AWS::EC2::SecurityGroupIngress"),
        Side::Egress => ("Egress", "AWS::EC2::SecurityGroupEgress"),
    };
    let mut properties = rule_json(rule, side);
    properties["GroupId"] = group_id(&group.id);
    template.resource(
        &format!("{}{suffix}{index}", pascal_case(&group.id.0)),
        kind,
        properties,
    );
}

/// The egress rules naming a group that can stay inline: taken in plan order, each is kept
/// inline unless it would close a cycle of inline references (which CloudFormation rejects).
fn inline_egress_references(topology: &Topology) -> HashSet<(GroupId, usize)> {
    let mut edges: HashMap<GroupId, Vec<GroupId>> = HashMap::new();
    let mut inline = HashSet::new();
    for group in &topology.groups {
        for (i, rule) in group.egress.iter().enumerate() {
            let Peer::Group(target) = &rule.peer else {
                continue;
            };
            if target != &group.id && !reaches(&edges, target, &group.id) {
                edges
                    .entry(group.id.clone())
                    .or_default()
                    .push(target.clone());
                inline.insert((group.id.clone(), i));
            }
        }
    }
    inline
}

/// Whether `to` is reachable from `from` along `edges`.
fn reaches(edges: &HashMap<GroupId, Vec<GroupId>>, from: &GroupId, to: &GroupId) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![from];
    while let Some(current) = stack.pop() {
        if current == to {
            return true;
        }
        if seen.insert(current) {
            stack.extend(edges.get(current).into_iter().flatten());
        }
    }
    false
}

/// The endpoints: interface endpoints in the private subnets, with their groups and private
/// DNS; gateway endpoints as a route in the private subnets' route tables.
pub(crate) fn add_endpoints(template: &mut Template, topology: &Topology, network: Network) {
    for endpoint in &topology.endpoints {
        let name = format!("{}Endpoint", pascal_case(&endpoint.service));
        let service_name = sub(&format!(
            "com.amazonaws.${{AWS::Region}}.{}",
            sub_literal(&endpoint.service)
        ));
        let properties = match endpoint.kind {
            EndpointKind::Interface => json!({
                "VpcEndpointType": "Interface",
                "ServiceName": service_name,
                "VpcId": network.vpc_id(),
                "SubnetIds": network.private_subnets(),
                "SecurityGroupIds": endpoint.groups.iter().map(group_id).collect::<Vec<_>>(),
                "PrivateDnsEnabled": endpoint.private_dns,
            }),
            EndpointKind::Gateway => json!({
                "VpcEndpointType": "Gateway",
                "ServiceName": service_name,
                "VpcId": network.vpc_id(),
                "RouteTableIds": network.private_route_tables(),
            }),
        };
        template.resource(&name, "AWS::EC2::VPCEndpoint", properties);
        template.output(
            &format!("{name}Id"),
            &format!("The {} endpoint", endpoint.service),
            reference(&name),
        );
    }
}
