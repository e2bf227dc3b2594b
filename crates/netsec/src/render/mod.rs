//! Renderers: the same topology as an AWS CLI script, a CloudFormation template and Terraform.
//!
//! Every renderer is a pure function from a [`Topology`] to text, so the artifacts under
//! `deploy/` can be regenerated and drift-tested without an AWS account. All three keep the
//! seeds' promises that their own scripts broke: every group and rule carries a description, and
//! AWS's default allow-all egress is removed wherever the planned egress is narrower.
//!
//! * [`aws_cli::aws_cli`]: a re-runnable `bash` script for the `aws` CLI (groups, rules, tags,
//!   the default egress, endpoints, and the VPC with its subnets when the plan creates it).
//! * [`cloudformation::cloudformation`]: a JSON template; with [`StackOptions::application`] set,
//!   a whole stack (load balancers or API Gateway, ECS, RDS, logs) around the network.
//! * [`terraform::terraform`]: one `main.tf` with the network.
//! * [`diagram::diagram`]: the tiers and expected flows as a Mermaid or Graphviz dot diagram
//!   (`membrain network plan --format`), for reading rather than deploying.
//!
//! ```
//! use membrain_netsec::profiles::Profile;
//! use membrain_netsec::render::{render, Format, StackOptions};
//!
//! let topology = Profile::Alb.default_topology();
//! let script = render(&topology, Format::AwsCli, &StackOptions::for_topology(&topology));
//! assert!(script.starts_with("#!/usr/bin/env bash"));
//! ```

pub mod aws_cli;
pub mod cloudformation;
pub mod diagram;
pub mod terraform;

use std::str::FromStr;

use ipnet::Ipv4Net;

use crate::model::{GroupId, Peer, Protocol, Rule};
use crate::profiles::GatewayTsStore;
use crate::{NetsecError, Topology};

/// The three artifact kinds `membrain network render --format` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    AwsCli,
    CloudFormation,
    Terraform,
}

impl Format {
    pub const ALL: [Format; 3] = [Self::AwsCli, Self::CloudFormation, Self::Terraform];

    pub fn parse(value: &str) -> Result<Self, NetsecError> {
        match value {
            "aws-cli" => Ok(Self::AwsCli),
            "cloudformation" => Ok(Self::CloudFormation),
            "terraform" => Ok(Self::Terraform),
            other => Err(NetsecError::invalid(
                "format",
                format!("{other:?} is not a format: use aws-cli, cloudformation or terraform"),
            )),
        }
    }

    /// The `--format` value.
    pub fn name(self) -> &'static str {
        match self {
            Self::AwsCli => "aws-cli",
            Self::CloudFormation => "cloudformation",
            Self::Terraform => "terraform",
        }
    }

    /// The file name the artifact has under `deploy/<profile>/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::AwsCli => "security-groups.sh",
            Self::CloudFormation => "cloudformation.json",
            Self::Terraform => "main.tf",
        }
    }
}

/// What runs on the network besides the groups, for the CloudFormation stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Application {
    /// Only the network: VPC and subnets (when created), groups, rules and endpoints.
    NetworkOnly,
    /// Seed 000: public MCP ALB, MCP service, internal API ALB, API service, RDS PostgreSQL.
    Alb,
    /// Seed 001: API Gateway HTTP API with a Lambda authorizer, VPC Link, internal NLB, MCP
    /// service.
    Gateway,
}

/// Choices for the rendered stack that the network plan does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackOptions {
    pub application: Application,
    /// The port the MCP tasks listen on (8100 behind the ALB, 8080 behind the NLB).
    pub mcp_port: u16,
    pub api_port: u16,
    pub database_port: u16,
    /// Where the gateway stack's MCP tasks keep time series: RDS PostgreSQL the stack creates,
    /// or Timestream.
    pub gateway_ts_store: GatewayTsStore,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            application: Application::NetworkOnly,
            mcp_port: 8100,
            api_port: 8000,
            database_port: 5432,
            gateway_ts_store: GatewayTsStore::default(),
        }
    }
}

/// The groups the ALB application attaches, by logical id.
const ALB_GROUPS: [&str; 5] = ["mcp-alb", "mcp-ecs", "api-alb", "api-ecs", "database"];
/// The groups the gateway application attaches, by logical id.
const GATEWAY_GROUPS: [&str; 2] = ["mcp-server", "vpc-link"];

impl StackOptions {
    /// The application whose groups the topology has, with the ports its rules admit, so that
    /// the stack and the network can never disagree about a port.
    pub fn for_topology(topology: &Topology) -> Self {
        let has_all = |ids: &[&str]| ids.iter().all(|id| has_group(topology, id));
        let defaults = Self::default();
        let port_into =
            |id: &str, fallback: u16| first_tcp_ingress_port(topology, id).unwrap_or(fallback);
        if has_all(&ALB_GROUPS) {
            Self {
                application: Application::Alb,
                mcp_port: port_into("mcp-ecs", defaults.mcp_port),
                api_port: port_into("api-ecs", defaults.api_port),
                database_port: port_into("database", defaults.database_port),
                ..defaults
            }
        } else if has_all(&GATEWAY_GROUPS) {
            // The plan's database tier is the time-series store; without one the tasks use
            // Timestream (the seed's choice).
            let gateway_ts_store = if has_group(topology, "database") {
                GatewayTsStore::Postgres
            } else {
                GatewayTsStore::Timestream
            };
            Self {
                application: Application::Gateway,
                mcp_port: port_into("mcp-server", 8080),
                database_port: port_into("database", defaults.database_port),
                gateway_ts_store,
                ..defaults
            }
        } else {
            defaults
        }
    }
}

fn has_group(topology: &Topology, id: &str) -> bool {
    topology.group(&GroupId(id.to_owned())).is_some()
}

fn first_tcp_ingress_port(topology: &Topology, id: &str) -> Option<u16> {
    topology
        .group(&GroupId(id.to_owned()))?
        .ingress
        .iter()
        .find(|rule| rule.protocol == Protocol::Tcp)
        .and_then(|rule| rule.ports)
        .map(|range| range.from)
}

/// Renders `topology` in `format`; the one call the CLI makes.
/// What the subnets of a created VPC need, said once for every renderer: zone ids, not names
/// (a name maps to a different zone in every account), and zones where API Gateway's VPC links
/// work.
pub(crate) const ZONE_IDS_HELP: &str = "Two availability zone ids (not names: us-east-1a is a different zone in every account) for the subnets, e.g. use1-az1,use1-az2. Avoid zones where API Gateway VPC links are not offered (in us-east-1: use1-az3; the API Gateway developer guide lists them per region). Yours: aws ec2 describe-availability-zones --query 'AvailabilityZones[].[ZoneName,ZoneId]'";

pub fn render(topology: &Topology, format: Format, stack: &StackOptions) -> String {
    match format {
        Format::AwsCli => aws_cli::aws_cli(topology),
        Format::CloudFormation => cloudformation::cloudformation(topology, stack),
        Format::Terraform => terraform::terraform(topology),
    }
}

/// The subnets a created VPC gets: the CIDR cut in four equal blocks, two public (for
/// internet-facing load balancers and the NAT gateway) and two private (tasks, databases,
/// endpoints), each pair in two availability zones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetLayout {
    pub public: [String; 2],
    pub private: [String; 2],
}

impl SubnetLayout {
    pub fn for_topology(topology: &Topology) -> Self {
        let vpc = Ipv4Net::from_str(&topology.vpc.cidr.to_string()).unwrap_or_default();
        // A VPC's primary block is IPv4 and /16 to /28; quarters of a /28 would be too small for
        // AWS, so such a VPC keeps its own block for each subnet and fails loudly at creation.
        let quarters: Vec<String> = vpc
            .subnets(vpc.prefix_len().saturating_add(2).min(28))
            .map(|blocks| blocks.take(4).map(|b| b.to_string()).collect())
            .unwrap_or_default();
        let pick = |i: usize| quarters.get(i).cloned().unwrap_or_else(|| vpc.to_string());
        Self {
            public: [pick(0), pick(1)],
            private: [pick(2), pick(3)],
        }
    }
}

/// Whether `rule` is exactly what AWS puts on every new group: all traffic out to everywhere.
pub(crate) fn is_default_egress(rule: &Rule) -> bool {
    rule.protocol == Protocol::All && matches!(&rule.peer, Peer::Cidr(c) if c.is_everything())
}

/// Whether the planned egress keeps AWS's default rule for one address family, so that the
/// default must stay (IPv4: `0.0.0.0/0`, IPv6: `::/0`).
pub(crate) fn keeps_default_egress(egress: &[Rule], ipv6: bool) -> bool {
    egress
        .iter()
        .any(|r| is_default_egress(r) && matches!(&r.peer, Peer::Cidr(c) if c.is_ipv6() == ipv6))
}

/// `mcp-alb` → `McpAlb`: CloudFormation logical ids are alphanumeric. Anything but ASCII letters
/// and digits separates words, so the id is alphanumeric whatever the text holds.
pub(crate) fn pascal_case(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `mcp-alb` → `mcp_alb`: Terraform names. Anything but ASCII letters, digits and `_` becomes
/// `_`, and a leading digit gets a `_` before it, so the result is always a bare HCL identifier
/// whatever the text holds.
pub(crate) fn snake_case(id: &str) -> String {
    let mut name: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

/// `text` for a `#` comment line of the shell script or of Terraform: a comment ends at a line
/// break, so every control character is written as an escape (`\n`) and the text stays comment.
pub(crate) fn comment_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cidr;
    use crate::profiles::{Profile, ProfileOptions};

    fn topology(profile: Profile) -> Topology {
        profile.default_topology()
    }

    #[test]
    fn formats_round_trip_through_their_names() {
        for format in Format::ALL {
            assert_eq!(Format::parse(format.name()).unwrap(), format);
        }
        assert!(
            Format::parse("pulumi")
                .unwrap_err()
                .to_string()
                .contains("aws-cli")
        );
    }

    #[test]
    fn stack_options_follow_the_topology() {
        let alb = StackOptions::for_topology(&topology(Profile::Alb));
        assert_eq!(alb.application, Application::Alb);
        assert_eq!(
            (alb.mcp_port, alb.api_port, alb.database_port),
            (8100, 8000, 5432)
        );
        let mut options = ProfileOptions::for_profile(Profile::Gateway);
        options.mcp_port = 9090;
        let gateway = StackOptions::for_topology(&Profile::Gateway.topology(&options));
        assert_eq!(gateway.application, Application::Gateway);
        assert_eq!(gateway.mcp_port, 9090);
        let mut bare = topology(Profile::Alb);
        bare.groups.retain(|g| g.id.0 != "database");
        assert_eq!(
            StackOptions::for_topology(&bare).application,
            Application::NetworkOnly
        );
    }

    #[test]
    fn subnets_are_quarters_of_the_vpc() {
        let mut plan = topology(Profile::Gateway);
        let layout = SubnetLayout::for_topology(&plan);
        assert_eq!(layout.public, ["10.0.0.0/18", "10.0.64.0/18"]);
        assert_eq!(layout.private, ["10.0.128.0/18", "10.0.192.0/18"]);
        plan.vpc.cidr = Cidr::parse("vpc", "172.16.0.0/20").unwrap();
        let layout = SubnetLayout::for_topology(&plan);
        assert_eq!(layout.private[1], "172.16.12.0/22");
    }

    #[test]
    fn names() {
        assert_eq!(pascal_case("mcp-alb"), "McpAlb");
        assert_eq!(
            pascal_case("timestream.ingest-cell1"),
            "TimestreamIngestCell1"
        );
        assert_eq!(
            snake_case("timestream.ingest-cell1"),
            "timestream_ingest_cell1"
        );
        // Whatever an unvalidated id holds, the names stay identifiers.
        assert_eq!(pascal_case("a\"b} ${x}"), "ABX");
        assert_eq!(snake_case("1a\"b\n"), "_1a_b_");
        assert_eq!(comment_text("x\nrm -rf /\r"), "x\\nrm -rf /\\r");
    }
}
