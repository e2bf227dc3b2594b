//! What `apply` did (or, in a dry run, would do): one [`Change`] per call that changes AWS.

use std::collections::BTreeMap;
use std::fmt;

use membrain_netsec::eval::Direction;
use membrain_netsec::{Cidr, GroupId, Rule};
use serde::Serialize;

/// The id shown for something a dry run would create: it has no id yet.
pub const PENDING_ID: &str = "(new)";

/// One change to AWS, in the order it was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// A VPC for a plan with `vpc.create`, tagged as Membrain's, with DNS hostnames on.
    CreateVpc { vpc_id: String, cidr: Cidr },
    /// A private subnet in a VPC Membrain created, for the interface endpoints and tasks.
    CreateSubnet {
        subnet_id: String,
        cidr: String,
        availability_zone: String,
    },
    /// A planned security group that did not exist.
    CreateGroup {
        group: GroupId,
        group_id: String,
        name: String,
    },
    /// Membrain's tags (`membrain:group`, `membrain:managed`, `Name`) put back on an owned group.
    TagGroup {
        group: GroupId,
        group_id: String,
        tags: Vec<(String, String)>,
    },
    /// A planned rule that was missing.
    AddRule {
        group: GroupId,
        group_id: String,
        direction: Direction,
        rule: Rule,
    },
    /// A rule on an owned group that the plan does not have (the default egress included).
    RemoveRule {
        group: GroupId,
        group_id: String,
        direction: Direction,
        rule: Rule,
    },
    /// A planned rule that exists with another description.
    UpdateRuleDescription {
        group: GroupId,
        group_id: String,
        direction: Direction,
        rule: Rule,
        old_description: String,
    },
    /// An interface VPC endpoint that did not exist.
    CreateEndpoint {
        service_name: String,
        endpoint_id: String,
        groups: Vec<String>,
    },
    /// A gateway VPC endpoint that did not exist, routed from these route tables.
    CreateGatewayEndpoint {
        service_name: String,
        endpoint_id: String,
        route_tables: Vec<String>,
    },
    /// Planned groups attached to an existing Membrain endpoint that lacked them.
    AddEndpointGroups {
        service_name: String,
        endpoint_id: String,
        groups: Vec<String>,
    },
}

impl fmt::Display for Change {
    /// Imperative, so the same words serve a report and a dry run.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateVpc { vpc_id, cidr } => write!(f, "create VPC {vpc_id} ({cidr})"),
            Self::CreateSubnet {
                subnet_id,
                cidr,
                availability_zone,
            } => write!(
                f,
                "create private subnet {subnet_id} ({cidr}, {availability_zone})"
            ),
            Self::CreateGroup {
                group,
                group_id,
                name,
            } => write!(f, "create group {group} ({group_id}, {name})"),
            Self::TagGroup {
                group,
                group_id,
                tags,
            } => {
                let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "tag group {group} ({group_id}): {}", tags.join(", "))
            }
            Self::AddRule {
                group,
                group_id,
                direction,
                rule,
            } => write!(
                f,
                "add {} to {group} ({group_id}): {}",
                direction.name(),
                rule_text(*direction, rule)
            ),
            Self::RemoveRule {
                group,
                group_id,
                direction,
                rule,
            } => write!(
                f,
                "remove {} from {group} ({group_id}): {}",
                direction.name(),
                rule_text(*direction, rule)
            ),
            Self::UpdateRuleDescription {
                group,
                group_id,
                direction,
                rule,
                old_description,
            } => write!(
                f,
                "describe {} of {group} ({group_id}) {}, was {old_description:?}",
                direction.name(),
                rule_text(*direction, rule)
            ),
            Self::CreateEndpoint {
                service_name,
                endpoint_id,
                groups,
            } => write!(
                f,
                "create interface endpoint {endpoint_id} for {service_name} (groups {})",
                groups.join(", ")
            ),
            Self::CreateGatewayEndpoint {
                service_name,
                endpoint_id,
                route_tables,
            } => write!(
                f,
                "create gateway endpoint {endpoint_id} for {service_name} (route tables {})",
                route_tables.join(", ")
            ),
            Self::AddEndpointGroups {
                service_name,
                endpoint_id,
                groups,
            } => write!(
                f,
                "attach {} to endpoint {endpoint_id} ({service_name})",
                groups.join(", ")
            ),
        }
    }
}

/// `tcp 443 from 0.0.0.0/0 ("Allow HTTPS")`, `-1 all to sg:api-alb (…)`.
fn rule_text(direction: Direction, rule: &Rule) -> String {
    let preposition = match direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    format!(
        "{} {} {preposition} {} ({:?})",
        rule.protocol.aws_name(),
        rule.port_label(),
        rule.peer,
        rule.description
    )
}

/// Everything `apply` changed, and the ids the plan's groups have in EC2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyReport {
    /// The plan's name (`alb`, `gateway`).
    pub topology: String,
    /// The VPC the plan lives in ([`PENDING_ID`] when a dry run would create it).
    pub vpc_id: String,
    /// True when nothing was changed and `changes` says what would be.
    pub dry_run: bool,
    /// Each planned group's id in EC2, by logical id.
    pub groups: BTreeMap<GroupId, String>,
    /// Every change, in order. Empty when AWS already matched the plan.
    pub changes: Vec<Change>,
}

impl ApplyReport {
    /// Whether AWS already matched the plan.
    pub fn is_unchanged(&self) -> bool {
        self.changes.is_empty()
    }
}
