//! Live security groups in EC2's own JSON shape (`aws ec2 describe-security-groups`), and their
//! conversion into the model. The SDK reader fills the same structs, so the mapping lives here
//! once.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::*;
use crate::{NetsecError, Topology};

/// The tag Membrain puts on every group it creates, holding the group's logical id.
pub const GROUP_TAG: &str = "membrain:group";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSecurityGroups {
    #[serde(default)]
    pub security_groups: Vec<AwsSecurityGroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsSecurityGroup {
    pub group_id: String,
    pub group_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub ip_permissions: Vec<AwsIpPermission>,
    #[serde(default)]
    pub ip_permissions_egress: Vec<AwsIpPermission>,
    #[serde(default)]
    pub tags: Vec<AwsTag>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsTag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsIpPermission {
    pub ip_protocol: String,
    #[serde(default)]
    pub from_port: Option<i64>,
    #[serde(default)]
    pub to_port: Option<i64>,
    #[serde(default)]
    pub ip_ranges: Vec<AwsIpRange>,
    #[serde(default)]
    pub ipv6_ranges: Vec<AwsIpv6Range>,
    #[serde(default)]
    pub user_id_group_pairs: Vec<AwsGroupPair>,
    #[serde(default)]
    pub prefix_list_ids: Vec<AwsPrefixList>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsIpRange {
    pub cidr_ip: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsIpv6Range {
    pub cidr_ipv6: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsGroupPair {
    pub group_id: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsPrefixList {
    pub prefix_list_id: String,
    #[serde(default)]
    pub description: Option<String>,
}

impl AwsSecurityGroup {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

/// Parses `describe-security-groups` output.
pub fn parse_describe(text: &str) -> Result<DescribeSecurityGroups, NetsecError> {
    serde_json::from_str(text).map_err(|e| {
        NetsecError::Parse(format!(
            "line {}, column {}: not describe-security-groups JSON: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// The plan's tiers and endpoints with the live groups in place of the planned ones. A live group
/// is the planned group with the `membrain:group` tag of its id, or else the same `GroupName`;
/// references to groups outside the plan keep their `sg-…` id (they match no tier).
pub fn live_topology(plan: &Topology, live: &[AwsSecurityGroup]) -> Result<Topology, NetsecError> {
    let logical = |group: &AwsSecurityGroup| -> Option<GroupId> {
        if let Some(id) = group.tag(GROUP_TAG) {
            return plan
                .groups
                .iter()
                .find(|g| g.id.0 == id)
                .map(|g| g.id.clone());
        }
        plan.groups
            .iter()
            .find(|g| g.name == group.group_name)
            .map(|g| g.id.clone())
    };
    let ids: HashMap<&str, GroupId> = live
        .iter()
        .filter_map(|g| logical(g).map(|id| (g.group_id.as_str(), id)))
        .collect();
    let mut groups = Vec::new();
    for group in live {
        let Some(id) = ids.get(group.group_id.as_str()) else {
            continue;
        };
        let place =
            |direction: &str| format!("{} ({}) {direction}", group.group_id, group.group_name);
        let planned = plan.group(id);
        groups.push(SecurityGroup {
            id: id.clone(),
            name: group.group_name.clone(),
            title: planned
                .map(|p| p.title.clone())
                .unwrap_or_else(|| group.group_name.clone()),
            description: group.description.clone(),
            ingress: rules(&group.ip_permissions, &ids, &place("ingress"))?,
            egress: rules(&group.ip_permissions_egress, &ids, &place("egress"))?,
        });
    }
    Ok(Topology {
        groups,
        ..plan.clone()
    })
}

/// Flattens EC2 permissions (one protocol/port range, many peers) into one rule per peer.
pub fn rules(
    permissions: &[AwsIpPermission],
    ids: &HashMap<&str, GroupId>,
    place: &str,
) -> Result<Vec<Rule>, NetsecError> {
    let mut out = Vec::new();
    for permission in permissions {
        let protocol = Protocol::parse(place, &permission.ip_protocol)?;
        let ports = match (
            protocol.has_ports(),
            permission.from_port,
            permission.to_port,
        ) {
            (true, Some(from), Some(to)) if from >= 1 => Some(PortRange::new(place, from, to)?),
            // tcp/udp with -1 or no ports means every port.
            (true, _, _) => Some(PortRange { from: 1, to: 65535 }),
            (false, _, _) => None,
        };
        let text = |d: &Option<String>| d.clone().unwrap_or_default();
        for range in &permission.ip_ranges {
            out.push(Rule {
                protocol,
                ports,
                peer: Peer::Cidr(Cidr::parse(place, &range.cidr_ip)?),
                description: text(&range.description),
                beyond_seed: None,
            });
        }
        for range in &permission.ipv6_ranges {
            out.push(Rule {
                protocol,
                ports,
                peer: Peer::Cidr(Cidr::parse(place, &range.cidr_ipv6)?),
                description: text(&range.description),
                beyond_seed: None,
            });
        }
        for pair in &permission.user_id_group_pairs {
            let peer = Peer::Group(
                ids.get(pair.group_id.as_str())
                    .cloned()
                    .unwrap_or_else(|| GroupId(pair.group_id.clone())),
            );
            out.push(Rule {
                protocol,
                ports,
                peer,
                description: text(&pair.description),
                beyond_seed: None,
            });
        }
        for list in &permission.prefix_list_ids {
            out.push(Rule {
                protocol,
                ports,
                peer: Peer::PrefixList(list.prefix_list_id.clone()),
                description: text(&list.description),
                beyond_seed: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::Profile;
    use crate::verify::verify;

    #[test]
    fn describe_output_becomes_live_groups() {
        let plan = Profile::Alb.default_topology();
        let json = r#"{"SecurityGroups": [
          {"GroupId": "sg-1", "GroupName": "membrain-mcp-alb-sg", "Description": "d",
           "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "https"}]}],
           "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]},
          {"GroupId": "sg-2", "GroupName": "renamed", "Description": "d", "Tags": [{"Key": "membrain:group", "Value": "mcp-ecs"}],
           "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 8100, "ToPort": 8100, "UserIdGroupPairs": [{"GroupId": "sg-1"}, {"GroupId": "sg-other"}]}]},
          {"GroupId": "sg-9", "GroupName": "default", "Description": "default VPC security group"}
        ]}"#;
        let described = parse_describe(json).unwrap();
        let live = live_topology(&plan, &described.security_groups).unwrap();
        assert_eq!(live.groups.len(), 2);
        let mcp_ecs = live.group(&GroupId("mcp-ecs".into())).unwrap();
        assert_eq!(
            mcp_ecs.ingress[0].peer,
            Peer::Group(GroupId("mcp-alb".into()))
        );
        assert_eq!(
            mcp_ecs.ingress[1].peer,
            Peer::Group(GroupId("sg-other".into()))
        );
        let report = verify(&plan, &live);
        assert!(report.violations() > 0, "the API side is missing");
        let flows: Vec<_> = report
            .flows
            .iter()
            .filter(|f| f.ok && f.allowed)
            .map(|f| f.flow.to.0.clone())
            .collect();
        assert!(flows.contains(&"mcp-ecs".to_owned()), "{flows:?}");
    }

    #[test]
    fn bad_json_is_located() {
        let err = parse_describe("{\"SecurityGroups\": [}").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
