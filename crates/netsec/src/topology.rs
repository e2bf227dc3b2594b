//! [`Topology`]: a whole network plan, validated, with lookups; read from TOML, YAML or JSON.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::NetsecError;
use crate::model::*;

/// A network plan: the VPC, its groups and rules, the tiers that carry them, the endpoints, and
/// the flows it promises or rules out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    pub name: String,
    pub vpc: Vpc,
    pub groups: Vec<SecurityGroup>,
    pub tiers: Vec<Tier>,
    #[serde(default)]
    pub endpoints: Vec<VpcEndpoint>,
    #[serde(default)]
    pub public_entry: Vec<PublicEntry>,
    #[serde(default)]
    pub expected: Vec<Flow>,
    #[serde(default)]
    pub forbidden: Vec<Flow>,
}

impl Topology {
    /// Checks everything serde cannot: references resolve, names are unique, no rule repeats,
    /// ports are real. Every problem is reported with its place.
    pub fn validate(&self) -> Result<(), Vec<NetsecError>> {
        let mut errors = Vec::new();
        let mut group_ids = HashSet::new();
        for group in &self.groups {
            if GroupId::parse("groups[].id", &group.id.0).is_err() {
                errors.push(NetsecError::invalid(
                    format!("groups[{}]", group.id),
                    "the id must be lower-case letters, digits, '-' or '_'",
                ));
            }
            if !group_ids.insert(&group.id) {
                errors.push(NetsecError::invalid(
                    format!("groups[{}]", group.id),
                    "appears twice",
                ));
            }
            if group.name.trim().is_empty() || group.name.len() > 255 {
                errors.push(NetsecError::invalid(
                    format!("groups[{}].name", group.id),
                    "must be 1 to 255 characters",
                ));
            }
        }
        for group in &self.groups {
            for (direction, rules) in [("ingress", &group.ingress), ("egress", &group.egress)] {
                for (i, rule) in rules.iter().enumerate() {
                    let place = format!("groups[{}].{direction}[{i}]", group.id);
                    if let Peer::Group(other) = &rule.peer
                        && !group_ids.contains(other)
                    {
                        errors.push(NetsecError::invalid(
                            &place,
                            format!("references unknown group {:?}", other.0),
                        ));
                    }
                    if rule.protocol.has_ports() && rule.ports.is_none() {
                        errors.push(NetsecError::invalid(
                            &place,
                            "a tcp/udp rule needs a port range",
                        ));
                    }
                    if let Some(range) = rule.ports
                        && (range.from == 0 || range.from > range.to)
                    {
                        errors.push(NetsecError::invalid(
                            &place,
                            format!("port range {range} is not within 1-65535"),
                        ));
                    }
                    if let Some(j) = rules[..i]
                        .iter()
                        .position(|earlier| earlier.same_permission(rule))
                    {
                        errors.push(NetsecError::invalid(
                            &place,
                            format!("duplicates {direction}[{j}]"),
                        ));
                    }
                }
            }
        }
        let mut tier_names = HashSet::new();
        for tier in &self.tiers {
            if !tier_names.insert(&tier.name) {
                errors.push(NetsecError::invalid(
                    format!("tiers[{}]", tier.name),
                    "appears twice",
                ));
            }
            for group in &tier.groups {
                if !group_ids.contains(group) {
                    errors.push(NetsecError::invalid(
                        format!("tiers[{}].groups", tier.name),
                        format!("references unknown group {:?}", group.0),
                    ));
                }
            }
        }
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            for group in &endpoint.groups {
                if !group_ids.contains(group) {
                    errors.push(NetsecError::invalid(
                        format!("endpoints[{i}]"),
                        format!("references unknown group {:?}", group.0),
                    ));
                }
            }
        }
        for (list, flows) in [("expected", &self.expected), ("forbidden", &self.forbidden)] {
            for (i, flow) in flows.iter().enumerate() {
                for tier in [&flow.from, &flow.to] {
                    if !tier_names.contains(tier) {
                        errors.push(NetsecError::invalid(
                            format!("{list}[{i}]"),
                            format!(
                                "unknown tier {:?}; the tiers are {}",
                                tier.0,
                                self.tier_list()
                            ),
                        ));
                    }
                }
                if flow.port == 0 {
                    errors.push(NetsecError::invalid(
                        format!("{list}[{i}]"),
                        "port 0 is outside 1-65535",
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub fn group(&self, id: &GroupId) -> Option<&SecurityGroup> {
        self.groups.iter().find(|g| g.id == *id)
    }

    pub fn tier(&self, name: &str) -> Result<&Tier, NetsecError> {
        self.tiers.iter().find(|t| t.name.0 == name).ok_or_else(|| {
            NetsecError::invalid(
                "tier",
                format!("unknown tier {name:?}; the tiers are {}", self.tier_list()),
            )
        })
    }

    pub fn tier_list(&self) -> String {
        self.tiers
            .iter()
            .map(|t| t.name.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A representative address for a tier: a documentation address for the internet, a
    /// distinct host of the VPC CIDR for each tier inside it.
    pub fn address_of(&self, tier: &Tier) -> IpAddr {
        match tier.placement {
            Placement::Internet => IpAddr::from([198, 51, 100, 10]),
            Placement::Vpc => {
                let index = self
                    .tiers
                    .iter()
                    .position(|t| t.name == tier.name)
                    .unwrap_or(0);
                self.vpc.cidr.host(10 + index as u32)
            }
        }
    }

    /// Every port the plan mentions in its flows, sorted.
    pub fn known_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .expected
            .iter()
            .chain(&self.forbidden)
            .map(|f| f.port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Groups by id, for fast evaluation.
    pub fn group_index(&self) -> HashMap<&GroupId, &SecurityGroup> {
        self.groups.iter().map(|g| (&g.id, g)).collect()
    }

    /// Reads a topology from a `.toml`, `.yaml`/`.yml` or `.json` file and validates it.
    pub fn load(path: &Path) -> Result<Self, NetsecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NetsecError::Parse(format!("cannot read {}: {e}", path.display())))?;
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_lowercase();
        let shown = path.display().to_string();
        match extension.as_str() {
            "toml" => Self::from_toml(&text, &shown),
            "yaml" | "yml" => Self::from_yaml(&text, &shown),
            "json" => Self::from_json(&text, &shown),
            _ => Err(NetsecError::Parse(format!(
                "{shown}: use a .toml, .yaml or .json topology file"
            ))),
        }
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<Self, NetsecError> {
        let topology: Self =
            toml::from_str(text).map_err(|e| NetsecError::Parse(format!("{origin}: {e}")))?;
        topology.checked(origin)
    }

    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, NetsecError> {
        let topology: Self =
            yaml_serde::from_str(text).map_err(|e| NetsecError::Parse(format!("{origin}: {e}")))?;
        topology.checked(origin)
    }

    pub fn from_json(text: &str, origin: &str) -> Result<Self, NetsecError> {
        let topology: Self = serde_json::from_str(text).map_err(|e| {
            NetsecError::Parse(format!(
                "{origin}: line {}, column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        topology.checked(origin)
    }

    fn checked(self, origin: &str) -> Result<Self, NetsecError> {
        self.validate().map_err(|errors| {
            NetsecError::Parse(format!(
                "{origin}: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
        Ok(self)
    }
}
