//! Every conversion between SDK types, EC2's JSON shape ([`membrain_netsec::aws_json`]) and the
//! model, in one place. The `aws_json` structs are the pivot: live groups read through the SDK
//! become the same values `aws ec2 describe-security-groups` output parses into, so the model's
//! one mapping from EC2 to rules serves both.

use std::collections::HashMap;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, SecurityGroup, Tag,
    TagSpecification, UserIdGroupPair,
};
use membrain_netsec::aws_json::{
    self, AwsGroupPair, AwsIpPermission, AwsIpRange, AwsIpv6Range, AwsPrefixList, AwsSecurityGroup,
    AwsTag,
};
use membrain_netsec::{GroupId, NetsecError, Peer, Protocol, Rule};

// ---- SDK -> EC2 JSON ----

/// A described group in EC2's JSON shape.
pub fn group_from_sdk(group: &SecurityGroup) -> AwsSecurityGroup {
    AwsSecurityGroup {
        group_id: text(group.group_id()),
        group_name: text(group.group_name()),
        description: text(group.description()),
        vpc_id: group.vpc_id().map(str::to_owned),
        ip_permissions: group
            .ip_permissions()
            .iter()
            .map(permission_from_sdk)
            .collect(),
        ip_permissions_egress: group
            .ip_permissions_egress()
            .iter()
            .map(permission_from_sdk)
            .collect(),
        tags: group.tags().iter().map(tag_from_sdk).collect(),
    }
}

/// A tag in EC2's JSON shape.
pub fn tag_from_sdk(tag: &Tag) -> AwsTag {
    AwsTag {
        key: text(tag.key()),
        value: text(tag.value()),
    }
}

fn permission_from_sdk(permission: &IpPermission) -> AwsIpPermission {
    AwsIpPermission {
        ip_protocol: text(permission.ip_protocol()),
        from_port: permission.from_port().map(i64::from),
        to_port: permission.to_port().map(i64::from),
        ip_ranges: permission
            .ip_ranges()
            .iter()
            .map(|r| AwsIpRange {
                cidr_ip: text(r.cidr_ip()),
                description: r.description().map(str::to_owned),
            })
            .collect(),
        ipv6_ranges: permission
            .ipv6_ranges()
            .iter()
            .map(|r| AwsIpv6Range {
                cidr_ipv6: text(r.cidr_ipv6()),
                description: r.description().map(str::to_owned),
            })
            .collect(),
        user_id_group_pairs: permission
            .user_id_group_pairs()
            .iter()
            .map(|p| AwsGroupPair {
                group_id: text(p.group_id()),
                description: p.description().map(str::to_owned),
            })
            .collect(),
        prefix_list_ids: permission
            .prefix_list_ids()
            .iter()
            .map(|p| AwsPrefixList {
                prefix_list_id: text(p.prefix_list_id()),
                description: p.description().map(str::to_owned),
            })
            .collect(),
    }
}

fn text(value: Option<&str>) -> String {
    value.unwrap_or_default().to_owned()
}

// ---- EC2 JSON -> SDK ----

/// A permission for `Authorize…`/`Revoke…`/`UpdateSecurityGroupRuleDescriptions…`.
pub fn permission_to_sdk(permission: &AwsIpPermission) -> IpPermission {
    let port = |value: Option<i64>| value.and_then(|p| i32::try_from(p).ok());
    IpPermission::builder()
        .ip_protocol(&permission.ip_protocol)
        .set_from_port(port(permission.from_port))
        .set_to_port(port(permission.to_port))
        .set_ip_ranges(non_empty(permission.ip_ranges.iter().map(|r| {
            IpRange::builder()
                .cidr_ip(&r.cidr_ip)
                .set_description(r.description.clone())
                .build()
        })))
        .set_ipv6_ranges(non_empty(permission.ipv6_ranges.iter().map(|r| {
            Ipv6Range::builder()
                .cidr_ipv6(&r.cidr_ipv6)
                .set_description(r.description.clone())
                .build()
        })))
        .set_user_id_group_pairs(non_empty(permission.user_id_group_pairs.iter().map(|p| {
            UserIdGroupPair::builder()
                .group_id(&p.group_id)
                .set_description(p.description.clone())
                .build()
        })))
        .set_prefix_list_ids(non_empty(permission.prefix_list_ids.iter().map(|p| {
            PrefixListId::builder()
                .prefix_list_id(&p.prefix_list_id)
                .set_description(p.description.clone())
                .build()
        })))
        .build()
}

/// `None` for no items, so the request leaves the list out rather than sending it empty.
fn non_empty<T>(items: impl Iterator<Item = T>) -> Option<Vec<T>> {
    let items: Vec<T> = items.collect();
    (!items.is_empty()).then_some(items)
}

/// Tags for a resource created with `TagSpecifications`, so it is never untagged, not even for
/// a moment.
pub fn tag_specification(resource: ResourceType, tags: &[(String, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(tags.iter().map(|(k, v)| sdk_tag(k, v)).collect()))
        .build()
}

/// One SDK tag.
pub fn sdk_tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// A `Name=…, Values=[…]` filter.
pub fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

// ---- model <-> EC2 JSON ----

/// A planned rule as one EC2 permission with one peer. `group_ids` gives each logical group's
/// `sg-…` id; a group it does not know is taken to be an `sg-…` id already (a live rule that
/// names a group outside the plan).
pub fn rule_to_permission(rule: &Rule, group_ids: &HashMap<GroupId, String>) -> AwsIpPermission {
    let (from_port, to_port) = match (rule.protocol, rule.ports) {
        (Protocol::All, _) => (None, None),
        (_, Some(range)) => (Some(i64::from(range.from)), Some(i64::from(range.to))),
        // ICMP without a type and code: every type, every code.
        (_, None) => (Some(-1), Some(-1)),
    };
    let description = Some(rule.description.clone());
    let mut permission = AwsIpPermission {
        ip_protocol: rule.protocol.aws_name().to_owned(),
        from_port,
        to_port,
        ..AwsIpPermission::default()
    };
    match &rule.peer {
        Peer::Cidr(cidr) if cidr.is_ipv6() => permission.ipv6_ranges.push(AwsIpv6Range {
            cidr_ipv6: cidr.to_string(),
            description,
        }),
        Peer::Cidr(cidr) => permission.ip_ranges.push(AwsIpRange {
            cidr_ip: cidr.to_string(),
            description,
        }),
        Peer::Group(group) => permission.user_id_group_pairs.push(AwsGroupPair {
            group_id: group_ids
                .get(group)
                .cloned()
                .unwrap_or_else(|| group.0.clone()),
            description,
        }),
        Peer::PrefixList(id) => permission.prefix_list_ids.push(AwsPrefixList {
            prefix_list_id: id.clone(),
            description,
        }),
        // `apply` resolves these to ids first (`Topology::with_prefix_list_ids`); were one left,
        // EC2 would refuse the name as a malformed prefix list id, saying which.
        Peer::ServicePrefixList(service) => permission.prefix_list_ids.push(AwsPrefixList {
            prefix_list_id: format!("com.amazonaws.<region>.{service}"),
            description,
        }),
    }
    permission
}

/// A live rule: the model's view of it, and the exact permission EC2 holds, which is what a
/// revoke must send back (EC2 matches ports as stored, and moto also matches descriptions).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRule {
    /// The rule as the model reads it (peers of owned groups by logical id).
    pub rule: Rule,
    /// The rule exactly as EC2 described it, with this one peer.
    pub permission: AwsIpPermission,
}

/// Splits EC2's permissions (one protocol and port range, many peers) into one rule per peer.
/// `logical` maps the `sg-…` ids of owned groups to their logical ids.
pub fn live_rules(
    permissions: &[AwsIpPermission],
    logical: &HashMap<&str, GroupId>,
    place: &str,
) -> Result<Vec<LiveRule>, NetsecError> {
    let mut out = Vec::new();
    for permission in permissions {
        for single in single_peer_permissions(permission) {
            let rules = aws_json::rules(std::slice::from_ref(&single), logical, place)?;
            out.extend(rules.into_iter().map(|rule| LiveRule {
                rule,
                permission: single.clone(),
            }));
        }
    }
    Ok(out)
}

fn single_peer_permissions(permission: &AwsIpPermission) -> Vec<AwsIpPermission> {
    let bare = AwsIpPermission {
        ip_protocol: permission.ip_protocol.clone(),
        from_port: permission.from_port,
        to_port: permission.to_port,
        ..AwsIpPermission::default()
    };
    let with = |edit: &dyn Fn(&mut AwsIpPermission)| {
        let mut single = bare.clone();
        edit(&mut single);
        single
    };
    let mut out = Vec::new();
    for range in &permission.ip_ranges {
        out.push(with(&|p| p.ip_ranges.push(range.clone())));
    }
    for range in &permission.ipv6_ranges {
        out.push(with(&|p| p.ipv6_ranges.push(range.clone())));
    }
    for pair in &permission.user_id_group_pairs {
        out.push(with(&|p| p.user_id_group_pairs.push(pair.clone())));
    }
    for list in &permission.prefix_list_ids {
        out.push(with(&|p| p.prefix_list_ids.push(list.clone())));
    }
    out
}

#[cfg(test)]
mod tests {
    use membrain_netsec::Cidr;

    use super::*;

    fn ids() -> HashMap<GroupId, String> {
        HashMap::from([(GroupId("mcp-alb".into()), "sg-1".to_owned())])
    }

    #[test]
    fn planned_rules_become_single_peer_permissions_and_back() {
        let cases = [
            Rule::tcp(8100, Peer::Group(GroupId("mcp-alb".into())), "from ALB"),
            Rule::tcp(443, Peer::Cidr(Cidr::everything_v4()), "https"),
            Rule::all_traffic(Peer::Cidr(Cidr::parse("t", "::/0").expect("a cidr")), "v6"),
            Rule {
                protocol: Protocol::Icmp,
                ports: None,
                peer: Peer::PrefixList("pl-123".into()),
                description: "ping".into(),
                beyond_seed: None,
            },
        ];
        let logical = HashMap::from([("sg-1", GroupId("mcp-alb".into()))]);
        for rule in cases {
            let permission = rule_to_permission(&rule, &ids());
            let back = live_rules(std::slice::from_ref(&permission), &logical, "test")
                .expect("converts back");
            assert_eq!(back.len(), 1, "{permission:?}");
            assert_eq!(back[0].rule, rule);
            assert_eq!(back[0].permission, permission);
        }
    }

    #[test]
    fn a_group_reference_uses_the_sg_id_and_keeps_unknown_ids() {
        let rule = Rule::tcp(80, Peer::Group(GroupId("mcp-alb".into())), "d");
        let permission = rule_to_permission(&rule, &ids());
        assert_eq!(permission.user_id_group_pairs[0].group_id, "sg-1");
        let foreign = Rule::tcp(80, Peer::Group(GroupId("sg-9".into())), "d");
        let permission = rule_to_permission(&foreign, &ids());
        assert_eq!(permission.user_id_group_pairs[0].group_id, "sg-9");
    }

    #[test]
    fn a_many_peer_permission_splits_one_rule_per_peer() {
        let permission = AwsIpPermission {
            ip_protocol: "tcp".into(),
            from_port: Some(0),
            to_port: Some(65535),
            ip_ranges: vec![AwsIpRange {
                cidr_ip: "10.0.0.0/8".into(),
                description: None,
            }],
            user_id_group_pairs: vec![
                AwsGroupPair {
                    group_id: "sg-1".into(),
                    description: Some("a".into()),
                },
                AwsGroupPair {
                    group_id: "sg-2".into(),
                    description: None,
                },
            ],
            ..AwsIpPermission::default()
        };
        let logical = HashMap::from([("sg-1", GroupId("mcp-alb".into()))]);
        let rules = live_rules(&[permission], &logical, "test").expect("converts");
        assert_eq!(rules.len(), 3);
        // The permission to revoke keeps EC2's own port numbers, not the model's 1-65535.
        assert!(rules.iter().all(|r| r.permission.from_port == Some(0)));
        assert_eq!(rules[1].rule.peer, Peer::Group(GroupId("mcp-alb".into())));
        assert_eq!(rules[2].rule.peer, Peer::Group(GroupId("sg-2".into())));
    }

    #[test]
    fn sdk_permissions_keep_every_peer_and_description() {
        let permission = rule_to_permission(
            &Rule::tcp(5432, Peer::Group(GroupId("mcp-alb".into())), "pg"),
            &ids(),
        );
        let sdk = permission_to_sdk(&permission);
        assert_eq!(sdk.from_port(), Some(5432));
        assert_eq!(sdk.user_id_group_pairs()[0].description(), Some("pg"));
        assert!(sdk.ip_ranges().is_empty());
        assert_eq!(permission_from_sdk(&sdk), permission);
    }
}
