//! Whether traffic can go from one tier to another, by AWS's rules: the source's groups must
//! allow it out (egress) and the target's groups must let it in (ingress). Return traffic is
//! never checked (groups are stateful). A tier without groups restricts nothing on its side.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::model::*;
use crate::{NetsecError, Topology};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
        }
    }
}

/// The rule that let a flow through on one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleRef {
    pub group: GroupId,
    pub direction: Direction,
    pub index: usize,
    pub description: String,
}

/// A rule that would let a blocked flow through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissingRule {
    pub group: GroupId,
    pub direction: Direction,
    pub rule: Rule,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// `None` on a side means that side has no groups and restricts nothing.
    Allowed {
        egress: Option<RuleRef>,
        ingress: Option<RuleRef>,
    },
    Denied {
        missing: Vec<MissingRule>,
    },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

/// Evaluates flows against a topology's tiers and groups, with groups, tiers and tier addresses
/// indexed once (verify evaluates thousands of flows against the same topology).
pub struct Evaluator<'a> {
    topology: &'a Topology,
    groups: HashMap<&'a GroupId, &'a SecurityGroup>,
    tiers: HashMap<&'a str, &'a Tier>,
    addresses: HashMap<&'a TierName, IpAddr>,
}

impl<'a> Evaluator<'a> {
    pub fn new(topology: &'a Topology) -> Self {
        Self {
            topology,
            groups: topology.group_index(),
            tiers: topology
                .tiers
                .iter()
                .map(|t| (t.name.0.as_str(), t))
                .collect(),
            addresses: topology
                .tiers
                .iter()
                .map(|t| (&t.name, topology.address_of(t)))
                .collect(),
        }
    }

    /// A tier by name, or an error that lists the tiers.
    pub fn tier(&self, name: &str) -> Result<&'a Tier, NetsecError> {
        match self.tiers.get(name) {
            Some(tier) => Ok(tier),
            None => self.topology.tier(name),
        }
    }

    /// Evaluates a flow named by tier names.
    pub fn evaluate_names(
        &self,
        from: &str,
        to: &str,
        protocol: Protocol,
        port: u16,
    ) -> Result<Verdict, NetsecError> {
        let (from, to) = (self.tier(from)?, self.tier(to)?);
        Ok(self.evaluate(from, to, protocol, port))
    }

    pub fn evaluate(&self, from: &Tier, to: &Tier, protocol: Protocol, port: u16) -> Verdict {
        let egress = self.side(from, to, Direction::Egress, protocol, port);
        let ingress = self.side(to, from, Direction::Ingress, protocol, port);
        match (egress, ingress) {
            (Ok(egress), Ok(ingress)) => Verdict::Allowed { egress, ingress },
            (egress, ingress) => {
                let mut missing = Vec::new();
                if let Err(rule) = egress {
                    missing.push(rule);
                }
                if let Err(rule) = ingress {
                    missing.push(rule);
                }
                Verdict::Denied { missing }
            }
        }
    }

    /// Checks one side: `own` is the tier whose groups decide, `other` the far end.
    fn side(
        &self,
        own: &Tier,
        other: &Tier,
        direction: Direction,
        protocol: Protocol,
        port: u16,
    ) -> Result<Option<RuleRef>, MissingRule> {
        if own.groups.is_empty() {
            return Ok(None);
        }
        for group_id in &own.groups {
            let Some(group) = self.groups.get(group_id) else {
                continue;
            };
            let rules = match direction {
                Direction::Ingress => &group.ingress,
                Direction::Egress => &group.egress,
            };
            if let Some(index) = rules
                .iter()
                .position(|r| r.covers(protocol, port) && self.peer_matches(&r.peer, other))
            {
                return Ok(Some(RuleRef {
                    group: group_id.clone(),
                    direction,
                    index,
                    description: rules[index].description.clone(),
                }));
            }
        }
        let preposition = match direction {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        };
        Err(MissingRule {
            group: own.groups[0].clone(),
            direction,
            rule: Rule {
                protocol,
                ports: protocol.has_ports().then(|| PortRange::single(port)),
                peer: self.peer_for(other),
                description: format!(
                    "Allow {} {port} {preposition} {}",
                    protocol.aws_name(),
                    other.name
                ),
                beyond_seed: None,
            },
        })
    }

    fn peer_matches(&self, peer: &Peer, tier: &Tier) -> bool {
        match peer {
            Peer::Cidr(cidr) => {
                let address = self
                    .addresses
                    .get(&tier.name)
                    .copied()
                    .unwrap_or_else(|| self.topology.address_of(tier));
                cidr.contains(&address)
            }
            Peer::Group(group) => tier.groups.contains(group),
            // A prefix list given by id names addresses outside this model; no tier is in it.
            Peer::PrefixList(_) => false,
            Peer::ServicePrefixList(service) => {
                tier.placement == Placement::AwsService && tier.name.0 == *service
            }
        }
    }

    /// The tightest peer that names a tier: its group, else the VPC CIDR, else everywhere.
    fn peer_for(&self, tier: &Tier) -> Peer {
        match (tier.groups.first(), tier.placement) {
            (Some(group), _) => Peer::Group(group.clone()),
            (None, Placement::Vpc) => Peer::Cidr(self.topology.vpc.cidr),
            (None, Placement::Internet) => Peer::Cidr(Cidr::everything_v4()),
            (None, Placement::AwsService) => Peer::ServicePrefixList(tier.name.0.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::{Profile, ProfileOptions};

    fn alb() -> Topology {
        Profile::Alb.default_topology()
    }

    /// One case per line: (from, to, port, allowed?).
    fn check(topology: &Topology, cases: &[(&str, &str, u16, bool)]) {
        let evaluator = Evaluator::new(topology);
        for (from, to, port, allowed) in cases {
            let verdict = evaluator
                .evaluate_names(from, to, Protocol::Tcp, *port)
                .unwrap();
            assert_eq!(
                verdict.is_allowed(),
                *allowed,
                "{from} -> {to}:{port}: {verdict:?}"
            );
        }
    }

    #[test]
    fn the_alb_chain_is_open_and_nothing_else() {
        check(
            &alb(),
            &[
                ("internet", "mcp-alb", 443, true),
                ("internet", "mcp-alb", 22, false),
                ("mcp-alb", "mcp-ecs", 8100, true),
                ("mcp-ecs", "api-alb", 443, true),
                ("api-alb", "api-ecs", 8000, true),
                ("api-ecs", "database", 5432, true),
                ("internet", "mcp-ecs", 8100, false),
                ("mcp-ecs", "database", 5432, false),
                ("mcp-alb", "api-alb", 443, false),
            ],
        );
    }

    #[test]
    fn a_denied_flow_names_the_missing_rules() {
        let mut topology = alb();
        // Break the chain as seed 000's troubleshooting imagines: no ingress on the API ALB.
        topology
            .groups
            .iter_mut()
            .find(|g| g.id.0 == "api-alb")
            .unwrap()
            .ingress
            .clear();
        let verdict = Evaluator::new(&topology)
            .evaluate_names("mcp-ecs", "api-alb", Protocol::Tcp, 443)
            .unwrap();
        let Verdict::Denied { missing } = verdict else {
            panic!("should be denied")
        };
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].group.0, "api-alb");
        assert_eq!(missing[0].direction, Direction::Ingress);
        assert_eq!(missing[0].rule.peer, Peer::Group(GroupId("mcp-ecs".into())));
        assert_eq!(missing[0].rule.ports, Some(PortRange::single(443)));
    }

    #[test]
    fn both_sides_are_needed_and_all_traffic_covers_every_port() {
        let mut topology = alb();
        let mcp_ecs = topology
            .groups
            .iter_mut()
            .find(|g| g.id.0 == "mcp-ecs")
            .unwrap();
        mcp_ecs.egress.clear();
        let verdict = Evaluator::new(&topology)
            .evaluate_names("mcp-ecs", "api-alb", Protocol::Tcp, 80)
            .unwrap();
        assert!(
            matches!(verdict, Verdict::Denied { ref missing } if missing[0].direction == Direction::Egress)
        );
        // The ALB's all-traffic egress covers any port; the target's ingress still decides.
        check(
            &topology,
            &[
                ("mcp-alb", "mcp-ecs", 8100, true),
                ("mcp-alb", "mcp-ecs", 8101, false),
            ],
        );
    }

    #[test]
    fn cidr_rules_match_tier_addresses() {
        let mut options = ProfileOptions::for_profile(Profile::Gateway);
        options.seed_vpc_ingress = true;
        let topology = Profile::Gateway.topology(&options);
        check(
            &topology,
            &[
                // The seed's VPC CIDR rule admits every tier inside the VPC, the VPC link too.
                ("vpc-link", "mcp-server", 8080, true),
                ("vpc", "mcp-server", 8080, true),
                ("nlb", "mcp-server", 8080, true),
                ("internet", "mcp-server", 8080, false),
                ("vpc-link", "mcp-server", 22, false),
                ("mcp-server", "vpc-endpoints", 443, true),
                ("internet", "vpc-endpoints", 443, false),
            ],
        );
    }

    #[test]
    fn only_the_nlb_reaches_the_gateway_tasks_by_default() {
        let topology = Profile::Gateway.default_topology();
        check(
            &topology,
            &[
                ("vpc-link", "nlb", 8080, true),
                ("nlb", "mcp-server", 8080, true),
                ("vpc-link", "mcp-server", 8080, false),
                ("vpc", "mcp-server", 8080, false),
                ("internet", "nlb", 8080, false),
                ("nlb", "mcp-server", 22, false),
            ],
        );
    }
}
