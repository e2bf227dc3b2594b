//! A tier's security groups as one nftables table, rendered from the model (pure, unit-tested).
//!
//! AWS semantics, as `membrain_netsec::eval` decides them: stateful (`ct state
//! established,related accept`, so only the side that opens a connection is checked); ingress
//! rules in the `input` hook and egress rules in `output`, both with policy drop; a group
//! reference is a set of the addresses of every tier carrying that group; the rules of all the
//! tier's groups add up; a tier without groups restricts nothing (policy accept); a service's
//! prefix list (`s3`) is the address of that service's tier, and a prefix list given by id
//! names addresses outside the emulation, so it matches no tier. Loopback is never filtered
//! (security groups apply to interfaces).
//!
//! The ruleset replaces the table atomically (`nft -f` runs one transaction), which is how rule
//! changes are swapped in without touching the namespaces or the processes in them.

use std::collections::BTreeSet;
use std::fmt::Write;

use membrain_netsec::model::shell_name;
use membrain_netsec::{GroupId, Peer, Placement, Protocol, Rule, Tier, Topology};

use crate::plan::EmulationPlan;

/// The table every tier's rules live in.
pub const TABLE: &str = "membrain";

/// The nftables script that makes `tier`'s table say exactly what its groups say.
pub fn ruleset(topology: &Topology, plan: &EmulationPlan, tier: &Tier) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# membrain-netemu: tier {} (groups: {})",
        tier.name,
        if tier.groups.is_empty() {
            "none".to_owned()
        } else {
            tier.groups
                .iter()
                .map(|g| g.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    // Declaring the table first makes the delete succeed when it does not exist yet.
    let _ = writeln!(out, "table inet {TABLE} {{}}");
    let _ = writeln!(out, "delete table inet {TABLE}");
    let _ = writeln!(out, "table inet {TABLE} {{");
    let restricted = !tier.groups.is_empty();
    let groups: Vec<_> = tier
        .groups
        .iter()
        .filter_map(|id| topology.group(id))
        .collect();
    let referenced: BTreeSet<&GroupId> = groups
        .iter()
        .flat_map(|g| g.ingress.iter().chain(&g.egress))
        .filter_map(|r| match &r.peer {
            Peer::Group(id) => Some(id),
            _ => None,
        })
        .collect();
    for id in referenced {
        let members: Vec<String> = topology
            .tiers
            .iter()
            .filter(|t| t.groups.contains(id))
            .filter_map(|t| plan.tier(&t.name.0))
            .map(|t| t.address.to_string())
            .collect();
        let _ = writeln!(out, "\tset {} {{", set_name(id));
        let _ = writeln!(out, "\t\ttype ipv4_addr");
        if !members.is_empty() {
            let _ = writeln!(out, "\t\telements = {{ {} }}", members.join(", "));
        }
        let _ = writeln!(out, "\t}}");
    }
    for (chain, hook, interface, direction) in [
        ("ingress", "input", "iifname", "saddr"),
        ("egress", "output", "oifname", "daddr"),
    ] {
        let policy = if restricted { "drop" } else { "accept" };
        let _ = writeln!(out, "\tchain {chain} {{");
        let _ = writeln!(
            out,
            "\t\ttype filter hook {hook} priority filter; policy {policy};"
        );
        if restricted {
            let _ = writeln!(out, "\t\tct state established,related accept");
            let _ = writeln!(out, "\t\t{interface} \"lo\" accept");
        }
        for group in &groups {
            let rules = if chain == "ingress" {
                &group.ingress
            } else {
                &group.egress
            };
            for (index, rule) in rules.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "\t\t# {} {chain}[{index}]: {}",
                    group.id,
                    comment(&rule.description)
                );
                match rule_line(rule, direction, plan) {
                    Some(line) => {
                        let _ = writeln!(out, "\t\t{line}");
                    }
                    None => {
                        let _ =
                            writeln!(out, "\t\t# (no tier of the emulation is in {})", rule.peer);
                    }
                }
            }
        }
        let _ = writeln!(out, "\t}}");
    }
    let _ = writeln!(out, "}}");
    out
}

/// `sg_<ID>`: letters, digits and `_` only; ids stay distinct this way (the topology checks
/// their shell-variable forms are unique).
fn set_name(id: &GroupId) -> String {
    format!("sg_{}", shell_name(&id.0).to_ascii_lowercase())
}

/// The nft statement for one rule, `None` when its peer cannot match any emulated tier.
fn rule_line(rule: &Rule, direction: &str, plan: &EmulationPlan) -> Option<String> {
    let address = match &rule.peer {
        Peer::Cidr(cidr) if cidr.is_ipv6() => format!("ip6 {direction} {cidr}"),
        Peer::Cidr(cidr) => format!("ip {direction} {cidr}"),
        Peer::Group(id) => format!("ip {direction} @{}", set_name(id)),
        Peer::PrefixList(_) => return None,
        Peer::ServicePrefixList(service) => {
            let tier = plan
                .tiers
                .iter()
                .find(|t| t.placement == Placement::AwsService && t.name.0 == *service)?;
            format!("ip {direction} {}", tier.address)
        }
    };
    let protocol = match (rule.protocol, rule.ports) {
        (Protocol::All, _) => String::new(),
        (Protocol::Tcp | Protocol::Udp, Some(range)) => {
            let name = if rule.protocol == Protocol::Tcp {
                "tcp"
            } else {
                "udp"
            };
            if range.from == range.to {
                format!(" {name} dport {}", range.from)
            } else {
                format!(" {name} dport {}-{}", range.from, range.to)
            }
        }
        (Protocol::Tcp, None) => " meta l4proto tcp".into(),
        (Protocol::Udp, None) => " meta l4proto udp".into(),
        (Protocol::Icmp, _) => " meta l4proto icmp".into(),
    };
    Some(format!("{address}{protocol} accept"))
}

/// A description as a comment: printable ASCII only, so it can never end the line.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(120)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use membrain_netsec::profiles::Profile;

    fn rendered(profile: Profile, tier: &str) -> String {
        let topology = profile.default_topology();
        let plan = EmulationPlan::new(&topology, "0123abcd").unwrap();
        ruleset(&topology, &plan, topology.tier(tier).unwrap())
    }

    /// (profile, tier, lines the ruleset must hold).
    #[test]
    fn rulesets_say_what_the_groups_say() {
        let cases: &[(Profile, &str, &[&str])] = &[
            (
                Profile::Alb,
                "mcp-alb",
                &[
                    "type filter hook input priority filter; policy drop;",
                    "ct state established,related accept",
                    "ip saddr 0.0.0.0/0 tcp dport 80 accept",
                    "ip saddr 0.0.0.0/0 tcp dport 443 accept",
                    "ip daddr 0.0.0.0/0 accept",
                ],
            ),
            (
                Profile::Alb,
                "api-alb",
                &[
                    "set sg_mcp_ecs {",
                    "elements = { 10.0.0.12 }",
                    "ip saddr @sg_mcp_ecs tcp dport 443 accept",
                    "ip daddr @sg_api_ecs tcp dport 8000 accept",
                ],
            ),
            (
                Profile::Gateway,
                "mcp-server",
                &[
                    // Only the NLB's group: the seed's VPC CIDR rule is not in the plan.
                    "ip saddr @sg_nlb tcp dport 8080 accept",
                ],
            ),
            (
                Profile::Alb,
                "internet",
                &["type filter hook input priority filter; policy accept;"],
            ),
            (
                Profile::Alb,
                "api-ecs",
                &[
                    // S3's prefix list is the emulated S3 tier's address.
                    "ip daddr 203.0.113.2 tcp dport 443 accept",
                    "ip daddr @sg_vpc_endpoints tcp dport 443 accept",
                ],
            ),
        ];
        for (profile, tier, lines) in cases {
            let text = rendered(*profile, tier);
            for line in *lines {
                assert!(
                    text.lines().any(|l| l.trim() == *line),
                    "{tier}: missing {line:?} in\n{text}"
                );
            }
        }
    }

    #[test]
    fn a_group_without_egress_rules_drops_all_it_starts() {
        let text = rendered(Profile::Alb, "database");
        let egress = text.split("chain egress").nth(1).unwrap();
        assert!(egress.contains("policy drop;"));
        assert!(!egress.contains("daddr"), "{egress}");
        assert!(!rendered(Profile::Alb, "internet").contains("policy drop"));
    }
}
