//! [`Topology`]: a whole network plan, validated, with lookups; read from TOML, YAML or JSON.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// Checks everything serde cannot: every text field holds only what its [`TextKind`] allows
    /// (so nothing that reaches a rendered script or template can be read as code), references
    /// resolve, names are unique (also once turned into shell variables, Terraform names and
    /// CloudFormation logical ids), no rule repeats, ports are real. Every problem is reported
    /// with its place as a path into the file (`groups[2].ingress[0].description`).
    pub fn validate(&self) -> Result<(), Vec<NetsecError>> {
        let mut errors = Vec::new();
        let mut text = |place: String, kind: TextKind, value: &str| {
            if let Err(error) = kind.check(&place, value) {
                errors.push(error);
            }
        };
        text("name".into(), TextKind::NetworkName, &self.name);
        for (g, group) in self.groups.iter().enumerate() {
            text(
                format!("groups[{g}].name"),
                TextKind::GroupName,
                &group.name,
            );
            text(
                format!("groups[{g}].title"),
                TextKind::Description,
                &group.title,
            );
            let place = format!("groups[{g}].description");
            text(place, TextKind::Description, &group.description);
            for (direction, rules) in [("ingress", &group.ingress), ("egress", &group.egress)] {
                for (r, rule) in rules.iter().enumerate() {
                    let place = format!("groups[{g}].{direction}[{r}]");
                    text(
                        format!("{place}.description"),
                        TextKind::Description,
                        &rule.description,
                    );
                    match &rule.peer {
                        Peer::PrefixList(id) => text(
                            format!("{place}.peer.prefix_list"),
                            TextKind::PrefixListId,
                            id,
                        ),
                        Peer::ServicePrefixList(service) => text(
                            format!("{place}.peer.service_prefix_list"),
                            TextKind::EndpointService,
                            service,
                        ),
                        Peer::Cidr(_) | Peer::Group(_) => {}
                    }
                }
            }
        }
        for (t, tier) in self.tiers.iter().enumerate() {
            text(
                format!("tiers[{t}].description"),
                TextKind::Note,
                &tier.description,
            );
        }
        for (e, endpoint) in self.endpoints.iter().enumerate() {
            let place = format!("endpoints[{e}].service");
            text(place, TextKind::EndpointService, &endpoint.service);
        }
        for (list, flows) in [("expected", &self.expected), ("forbidden", &self.forbidden)] {
            for (f, flow) in flows.iter().enumerate() {
                text(format!("{list}[{f}].why"), TextKind::Note, &flow.why);
            }
        }

        if self.vpc.cidr.is_ipv6() || !(16..=28).contains(&self.vpc.cidr.prefix_len()) {
            errors.push(NetsecError::invalid(
                "vpc.cidr",
                format!(
                    "{} cannot be a VPC's block: AWS wants IPv4 from /16 to /28",
                    self.vpc.cidr
                ),
            ));
        }
        self.check_groups(&mut errors);
        self.check_tiers_and_flows(&mut errors);
        self.check_endpoints(&mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn check_groups(&self, errors: &mut Vec<NetsecError>) {
        let mut ids = Unique::default();
        let mut names = Unique::default();
        for (g, group) in self.groups.iter().enumerate() {
            let place = format!("groups[{g}].id");
            match GroupId::parse(&place, &group.id.0) {
                Ok(_) => ids.insert(errors, &place, &group.id.0, rendered_forms(&group.id.0)),
                Err(error) => errors.push(error),
            }
            let place = format!("groups[{g}].name");
            // EC2 refuses a second group of the same name in a VPC; the script finds groups by it.
            names.insert(errors, &place, &group.name, vec![group.name.clone()]);
        }
        let group_ids: HashSet<&GroupId> = self.groups.iter().map(|g| &g.id).collect();
        let known = |id: &GroupId| group_ids.contains(id);
        for (g, group) in self.groups.iter().enumerate() {
            for (direction, rules) in [("ingress", &group.ingress), ("egress", &group.egress)] {
                for (i, rule) in rules.iter().enumerate() {
                    let place = format!("groups[{g}].{direction}[{i}]");
                    if let Peer::Group(other) = &rule.peer
                        && !known(other)
                    {
                        errors.push(NetsecError::invalid(
                            format!("{place}.peer.group"),
                            format!("references unknown group {}", shown(&other.0)),
                        ));
                    }
                    if let Peer::ServicePrefixList(service) = &rule.peer
                        && self.gateway_endpoint(service).is_none()
                    {
                        errors.push(NetsecError::invalid(
                            format!("{place}.peer.service_prefix_list"),
                            format!(
                                "{} has no gateway endpoint in this plan: add one to \
                                 `endpoints` (kind gateway), whose prefix list the rule names",
                                shown(service)
                            ),
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
                            format!("{place}.ports"),
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
        for (p, entry) in self.public_entry.iter().enumerate() {
            if !known(&entry.group) {
                errors.push(NetsecError::invalid(
                    format!("public_entry[{p}].group"),
                    format!("references unknown group {}", shown(&entry.group.0)),
                ));
            }
            if entry.ports.contains(&0) {
                errors.push(NetsecError::invalid(
                    format!("public_entry[{p}].ports"),
                    "port 0 is outside 1-65535",
                ));
            }
        }
    }

    fn check_tiers_and_flows(&self, errors: &mut Vec<NetsecError>) {
        let group_ids: HashSet<&GroupId> = self.groups.iter().map(|g| &g.id).collect();
        let tier_names: HashSet<&TierName> = self.tiers.iter().map(|t| &t.name).collect();
        let mut names = Unique::default();
        for (t, tier) in self.tiers.iter().enumerate() {
            let place = format!("tiers[{t}].name");
            match TierName::parse(&place, &tier.name.0) {
                Ok(_) => names.insert(errors, &place, &tier.name.0, vec![tier.name.0.clone()]),
                Err(error) => errors.push(error),
            }
            for (i, group) in tier.groups.iter().enumerate() {
                if !group_ids.contains(group) {
                    errors.push(NetsecError::invalid(
                        format!("tiers[{t}].groups[{i}]"),
                        format!("references unknown group {}", shown(&group.0)),
                    ));
                }
            }
            if tier.placement == Placement::AwsService {
                if self.gateway_endpoint(&tier.name.0).is_none() {
                    errors.push(NetsecError::invalid(
                        format!("tiers[{t}].placement"),
                        format!(
                            "an aws_service tier is named after a service the plan has a gateway \
                             endpoint for; {} has none",
                            shown(&tier.name.0)
                        ),
                    ));
                }
                if !tier.groups.is_empty() {
                    errors.push(NetsecError::invalid(
                        format!("tiers[{t}].groups"),
                        "an AWS service outside the VPC carries no security groups",
                    ));
                }
            }
        }
        for (list, flows) in [("expected", &self.expected), ("forbidden", &self.forbidden)] {
            for (i, flow) in flows.iter().enumerate() {
                for (end, tier) in [("from", &flow.from), ("to", &flow.to)] {
                    if !tier_names.contains(tier) {
                        errors.push(NetsecError::invalid(
                            format!("{list}[{i}].{end}"),
                            format!(
                                "unknown tier {}; the tiers are {}",
                                shown(&tier.0),
                                self.tier_list()
                            ),
                        ));
                    }
                }
                if flow.port == 0 {
                    errors.push(NetsecError::invalid(
                        format!("{list}[{i}].port"),
                        "port 0 is outside 1-65535",
                    ));
                }
            }
        }
    }

    fn check_endpoints(&self, errors: &mut Vec<NetsecError>) {
        let group_ids: HashSet<&GroupId> = self.groups.iter().map(|g| &g.id).collect();
        let mut services = Unique::default();
        for (e, endpoint) in self.endpoints.iter().enumerate() {
            let place = format!("endpoints[{e}].service");
            let service = &endpoint.service;
            services.insert(errors, &place, service, rendered_forms(service));
            match endpoint.kind {
                EndpointKind::Interface if endpoint.groups.is_empty() => {
                    errors.push(NetsecError::invalid(
                        format!("endpoints[{e}].groups"),
                        "name at least one group for the endpoint's interfaces",
                    ));
                }
                EndpointKind::Interface => {}
                EndpointKind::Gateway => {
                    if !SERVICES_WITH_GATEWAY_ENDPOINTS.contains(&service.as_str()) {
                        errors.push(NetsecError::invalid(
                            format!("endpoints[{e}].kind"),
                            format!(
                                "AWS has gateway endpoints only for {}; make {} an interface \
                                 endpoint",
                                SERVICES_WITH_GATEWAY_ENDPOINTS.join(" and "),
                                shown(service)
                            ),
                        ));
                    }
                    if !endpoint.groups.is_empty() || endpoint.private_dns {
                        errors.push(NetsecError::invalid(
                            format!("endpoints[{e}]"),
                            "a gateway endpoint has no interfaces, so no groups and no private \
                             DNS: allow its traffic with egress rules to its prefix list \
                             (service_prefix_list)",
                        ));
                    }
                }
            }
            for (i, group) in endpoint.groups.iter().enumerate() {
                if !group_ids.contains(group) {
                    errors.push(NetsecError::invalid(
                        format!("endpoints[{e}].groups[{i}]"),
                        format!("references unknown group {}", shown(&group.0)),
                    ));
                }
            }
        }
    }

    /// The services whose AWS-managed prefix lists the rules name ([`Peer::ServicePrefixList`]),
    /// sorted, once each.
    pub fn service_prefix_lists(&self) -> Vec<&str> {
        let services: std::collections::BTreeSet<&str> = self
            .groups
            .iter()
            .flat_map(|g| g.ingress.iter().chain(&g.egress))
            .filter_map(|r| match &r.peer {
                Peer::ServicePrefixList(service) => Some(service.as_str()),
                _ => None,
            })
            .collect();
        services.into_iter().collect()
    }

    /// This plan as EC2 takes it: every service prefix list replaced by its `pl-…` id from
    /// `ids` (service → id, as looked up in the region). The error names each service `ids`
    /// lacks.
    pub fn with_prefix_list_ids(
        &self,
        ids: &BTreeMap<String, String>,
    ) -> Result<Self, NetsecError> {
        let missing: Vec<&str> = self
            .service_prefix_lists()
            .into_iter()
            .filter(|service| !ids.contains_key(*service))
            .collect();
        if !missing.is_empty() {
            return Err(NetsecError::invalid(
                "prefix lists",
                format!(
                    "no prefix list id for {}: look it up with aws ec2 describe-prefix-lists \
                     --filters Name=prefix-list-name,Values=com.amazonaws.<region>.<service>",
                    missing.join(", ")
                ),
            ));
        }
        let mut resolved = self.clone();
        for rule in resolved.rules_mut() {
            if let Peer::ServicePrefixList(service) = &rule.peer
                && let Some(id) = ids.get(service)
            {
                rule.peer = Peer::PrefixList(id.clone());
            }
        }
        Ok(resolved)
    }

    /// Live rules read back in the plan's terms: a prefix list id that `ids` (service → id)
    /// knows becomes that service's [`Peer::ServicePrefixList`].
    pub fn name_prefix_lists(&mut self, ids: &BTreeMap<String, String>) {
        for rule in self.rules_mut() {
            if let Peer::PrefixList(id) = &rule.peer
                && let Some((service, _)) = ids.iter().find(|(_, known)| *known == id)
            {
                rule.peer = Peer::ServicePrefixList(service.clone());
            }
        }
    }

    fn rules_mut(&mut self) -> impl Iterator<Item = &mut Rule> {
        self.groups
            .iter_mut()
            .flat_map(|g| g.ingress.iter_mut().chain(g.egress.iter_mut()))
    }

    /// The plan's gateway endpoint for `service`, if it has one.
    pub fn gateway_endpoint(&self, service: &str) -> Option<&VpcEndpoint> {
        self.endpoints
            .iter()
            .find(|e| e.kind == EndpointKind::Gateway && e.service == service)
    }

    /// The plan's interface endpoints, in plan order.
    pub fn interface_endpoints(&self) -> impl Iterator<Item = &VpcEndpoint> {
        self.endpoints
            .iter()
            .filter(|e| e.kind == EndpointKind::Interface)
    }

    /// The plan's gateway endpoints, in plan order.
    pub fn gateway_endpoints(&self) -> impl Iterator<Item = &VpcEndpoint> {
        self.endpoints
            .iter()
            .filter(|e| e.kind == EndpointKind::Gateway)
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
    /// distinct host of the VPC CIDR for each tier inside it, and for the `k`-th AWS service
    /// the middle of its own documentation `/30`, `203.0.113.(4k + 2)` (outside every VPC
    /// block, so only its prefix list or a rule for everything reaches it).
    pub fn address_of(&self, tier: &Tier) -> IpAddr {
        match tier.placement {
            Placement::Internet => IpAddr::from([198, 51, 100, 10]),
            Placement::AwsService => {
                let k = self
                    .tiers
                    .iter()
                    .filter(|t| t.placement == Placement::AwsService)
                    .position(|t| t.name == tier.name)
                    .unwrap_or(0);
                IpAddr::from([203, 0, 113, (4 * k + 2).min(254) as u8])
            }
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
        let topology: Self = toml::from_str(text).map_err(|e| syntax_error(origin, &e))?;
        topology.checked(origin)
    }

    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, NetsecError> {
        let topology: Self = yaml_serde::from_str(text)
            .map_err(|e| syntax_error(origin, &yaml_located(text, &e)))?;
        topology.checked(origin)
    }

    pub fn from_json(text: &str, origin: &str) -> Result<Self, NetsecError> {
        let topology: Self = serde_json::from_str(text).map_err(|e| {
            let located = format!("line {}, column {}: {e}", e.line(), e.column());
            syntax_error(origin, &located)
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

/// A parser's error for `origin`. Parsers quote the offending line, which in a hostile file can
/// hold terminal control sequences or be megabytes long: control characters other than the
/// parser's own line breaks are escaped, and the message is cut at a few thousand characters.
fn syntax_error(origin: &str, error: &dyn std::fmt::Display) -> NetsecError {
    const MAX: usize = 2_000;
    let mut message = String::new();
    for (n, c) in error.to_string().chars().enumerate() {
        if n == MAX {
            message.push_str(" [...]");
            break;
        }
        if c.is_control() && c != '\n' {
            message.extend(c.escape_default());
        } else {
            message.push(c);
        }
    }
    NetsecError::Parse(format!("{origin}: {message}"))
}

/// A YAML error with its place: the parser's own `at line L column C` when it says one; else
/// the line and column of the byte its reader stopped at (e.g. a control character, which it
/// reports `at position N`); else the error is about the document as a whole (a missing
/// top-level field, a document that is not a mapping), and says so.
fn yaml_located(text: &str, error: &yaml_serde::Error) -> String {
    let message = error.to_string();
    if message.contains(" line ") {
        return message;
    }
    let index = error.location().map(|l| l.index()).or_else(|| {
        message
            .rsplit_once("at position ")
            .and_then(|(_, n)| n.trim().parse::<usize>().ok())
    });
    match index {
        Some(index) => {
            let before = &text.as_bytes()[..index.min(text.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => format!("the top level: {message}"),
    }
}

/// Names that must stay distinct, also in the forms the renderers derive from them.
#[derive(Debug, Default)]
struct Unique {
    /// Each form seen, with the place and value that produced it.
    seen: HashMap<String, (String, String)>,
}

impl Unique {
    fn insert(
        &mut self,
        errors: &mut Vec<NetsecError>,
        place: &str,
        value: &str,
        forms: Vec<String>,
    ) {
        for form in forms {
            match self.seen.get(&form) {
                Some((earlier, same)) if same == value => {
                    errors.push(NetsecError::invalid(
                        place,
                        format!("{} appears twice (also {earlier})", shown(value)),
                    ));
                    return;
                }
                Some((earlier, other)) => {
                    errors.push(NetsecError::invalid(
                        place,
                        format!(
                            "{} would be rendered under the same name as {} ({earlier})",
                            shown(value),
                            shown(other)
                        ),
                    ));
                    return;
                }
                None => {
                    self.seen.insert(form, (place.to_owned(), value.to_owned()));
                }
            }
        }
    }
}

/// What a group id or endpoint service becomes in each renderer, tagged by renderer: a shell
/// variable, a Terraform name, a CloudFormation logical id.
fn rendered_forms(value: &str) -> Vec<String> {
    vec![
        format!("shell:{}", shell_name(value)),
        format!("terraform:{}", crate::render::snake_case(value)),
        format!("cloudformation:{}", crate::render::pascal_case(value)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::{GatewayTsStore, Profile, ProfileOptions};

    /// The gateway with Timestream: the shape with the most endpoints.
    fn gateway() -> Topology {
        let mut options = ProfileOptions::for_profile(Profile::Gateway);
        options.gateway_ts_store = GatewayTsStore::Timestream;
        Profile::Gateway.topology(&options)
    }

    /// One case per line: an edit of the gateway profile, and the place its error must name
    /// (with a word of the message), or `None` when the edit is fine.
    fn check(edit: impl Fn(&mut Topology), expected: Option<(&str, &str)>) {
        let mut topology = gateway();
        edit(&mut topology);
        match (topology.validate(), expected) {
            (Ok(()), None) => {}
            (Err(errors), Some((place, word))) => {
                let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
                assert!(
                    shown
                        .iter()
                        .any(|e| e.starts_with(&format!("{place}: ")) && e.contains(word)),
                    "{place} / {word}: {shown:#?}"
                );
            }
            (got, want) => panic!("got {got:?}, wanted {want:?}"),
        }
    }

    #[test]
    fn places_are_paths_into_the_file() {
        check(|_| {}, None);
        check(
            |t| t.name = "a b".into(),
            Some(("name", "characters that are not allowed (' ')")),
        );
        check(
            |t| t.groups[1].title = "x; y".into(),
            Some(("groups[1].title", "allowed: letters")),
        );
        check(
            |t| {
                t.groups[3]
                    .egress
                    .push(Rule::tcp(1, Peer::Group(GroupId("ghost".into())), "x"))
            },
            Some(("groups[3].egress[0].peer.group", "\"ghost\"")),
        );
        check(
            |t| t.groups[0].ingress[0].peer = Peer::PrefixList("pl-1".into()),
            Some(("groups[0].ingress[0].peer.prefix_list", "pl-")),
        );
        check(
            |t| t.tiers[1].groups.push(GroupId("ghost".into())),
            Some(("tiers[1].groups[1]", "unknown group")),
        );
        check(
            |t| t.expected[0].from = TierName("moon".into()),
            Some(("expected[0].from", "unknown tier \"moon\"")),
        );
        check(
            |t| {
                t.public_entry.push(PublicEntry {
                    group: GroupId("ghost".into()),
                    ports: vec![0],
                })
            },
            Some(("public_entry[0].group", "unknown group")),
        );
        check(
            |t| {
                t.public_entry.push(PublicEntry {
                    group: GroupId("vpc-link".into()),
                    ports: vec![0],
                })
            },
            Some(("public_entry[0].ports", "port 0")),
        );
        check(
            |t| t.endpoints[0].groups.clear(),
            Some(("endpoints[0].groups", "at least one group")),
        );
        check(
            |t| t.vpc.cidr = Cidr::parse("t", "10.0.0.0/8").unwrap(),
            Some(("vpc.cidr", "/16 to /28")),
        );
        check(
            |t| t.vpc.cidr = Cidr::parse("t", "fd00::/56").unwrap(),
            Some(("vpc.cidr", "IPv4")),
        );
    }

    #[test]
    fn names_stay_distinct_as_rendered() {
        check(
            |t| t.groups[1].name = t.groups[0].name.clone(),
            Some(("groups[1].name", "appears twice (also groups[0].name)")),
        );
        check(
            |t| t.groups[1].id = GroupId("mcp_server".into()),
            Some(("groups[1].id", "same name as \"mcp-server\" (groups[0].id)")),
        );
        check(|t| t.endpoints[1].service = "secrets-manager".into(), None);
        check(
            |t| {
                t.endpoints[0].service = "timestream-ingest-cell1".into();
            },
            Some((
                "endpoints[2].service",
                "same name as \"timestream-ingest-cell1\"",
            )),
        );
        check(
            |t| t.tiers[2].name = t.tiers[1].name.clone(),
            Some(("tiers[2].name", "appears twice")),
        );
        check(
            |t| t.groups[0].id = GroupId("9lives".into()),
            Some(("groups[0].id", "a lower-case letter, then")),
        );
    }

    #[test]
    fn text_kinds_follow_aws_and_the_renderers() {
        for (kind, value, ok) in [
            (TextKind::NetworkName, "a", true),
            (TextKind::NetworkName, "production-eu-west1", true),
            (TextKind::NetworkName, "production-eu-west-1", false),
            (TextKind::GroupName, "sg-x", false),
            (TextKind::GroupName, "SG-x", false),
            (TextKind::GroupName, "my sg-x (a/b) #1 @c+d.e_f:g", true),
            (TextKind::GroupName, "a,b", false),
            (TextKind::Description, "a,b=c", true),
            (TextKind::Description, "100$", false),
            (TextKind::Description, "\t", false),
            (TextKind::Note, "", true),
            (TextKind::Note, "it's \"fine\" {here}", true),
            (TextKind::Note, "caf\u{e9}", false),
            (TextKind::EndpointService, "ecr.dkr", true),
            (TextKind::EndpointService, "execute-api", true),
            (TextKind::EndpointService, "ecr..dkr", false),
            (TextKind::EndpointService, "ECR", false),
            (TextKind::PrefixListId, "pl-0123abcd", true),
            (TextKind::PrefixListId, "pl-0123456789abcdef0", true),
            (TextKind::PrefixListId, "pl-0123456789", false),
        ] {
            assert_eq!(kind.check("f", value).is_ok(), ok, "{kind:?} {value:?}");
        }
        let long = TextKind::Description
            .check("f", &"x".repeat(10_000))
            .unwrap_err();
        assert!(long.to_string().len() < 400, "{long}");
        assert!(long.to_string().contains("(10000 characters)"), "{long}");
    }
}
