//! [`EmulationPlan`]: where every tier of a topology lives on this machine (its namespace and
//! address) and what is probed, decided without touching the system, so a topology that cannot
//! be emulated is refused before anything is created.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use membrain_netsec::{Placement, Protocol, TierName, Topology};
use serde::{Deserialize, Serialize};

use crate::EmulateError;

/// The internet tier's side of the link to the VPC: the model's internet address
/// (`Topology::address_of`, 198.51.100.10, TEST-NET-2) and its gateway, in 198.51.100.0/24.
pub const INTERNET_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const INTERNET_GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const INTERNET_PREFIX: u8 = 24;
/// AWS services outside the VPC (gateway endpoint tiers, e.g. `s3`) each sit alone on a `/30`
/// of this documentation block: the model's address is host 2 of the `k`-th one
/// (`203.0.113.(4k + 2)`), the VPC router's side host 1.
pub const AWS_SERVICES_BLOCK: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 0);
pub const AWS_SERVICE_PREFIX: u8 = 30;

/// The port probed on the internet tier from every other tier, planned or not.
pub const INTERNET_PROBE_PORT: u16 = 443;

/// Namespaces are `mb-<run id>-<tier>`; the VPC's own is `mb-<run id>-_vpc`, which no tier can
/// take (a tier name starts with a letter).
pub const NAMESPACE_PREFIX: &str = "mb-";
const VPC_SUFFIX: &str = "_vpc";

/// One tier on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierPlan {
    pub name: TierName,
    pub namespace: String,
    pub placement: Placement,
    /// The model's address for the tier, so CIDR rules match here exactly as in `eval`.
    pub address: Ipv4Addr,
    /// The TCP ports some flow of the plan targets on this tier: something listens on each.
    pub ports: Vec<u16>,
    /// The ports of the expected flows into this tier: where its real service listens.
    pub expected_ports: Vec<u16>,
}

/// A tier and port probed: the target of an expected or forbidden flow, or the internet's
/// [`INTERNET_PROBE_PORT`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    pub tier: TierName,
    pub port: u16,
}

/// The whole emulated network: a bridge in the VPC namespace (the VPC router at the CIDR's first
/// host), one namespace per tier, and nothing that reaches this machine's own network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmulationPlan {
    pub run_id: String,
    pub vpc_namespace: String,
    pub vpc_cidr: String,
    pub prefix_len: u8,
    pub router: Ipv4Addr,
    pub tiers: Vec<TierPlan>,
    pub targets: Vec<Target>,
}

impl EmulationPlan {
    /// Plans `topology` for run `run_id`, or says every reason it cannot be emulated.
    pub fn new(topology: &Topology, run_id: &str) -> Result<Self, EmulateError> {
        let mut reasons = Vec::new();
        if let Err(errors) = topology.validate() {
            reasons.extend(errors.iter().map(ToString::to_string));
        }
        if !valid_run_id(run_id) {
            reasons.push(format!(
                "run id {run_id:?} is not 8 lower-case hexadecimal digits"
            ));
        }
        let cidr = topology.vpc.cidr;
        let prefix_len = cidr.prefix_len();
        let IpAddr::V4(network) = cidr.host(0) else {
            reasons.push(format!("vpc.cidr: {cidr} is not IPv4"));
            return Err(EmulateError::Refused(reasons));
        };
        let size: u64 = 1u64 << (32 - u32::from(prefix_len.min(32)));
        let internet_net = [INTERNET_ADDRESS, INTERNET_GATEWAY];
        if let Some(inside) = internet_net
            .iter()
            .find(|a| cidr.contains(&IpAddr::V4(**a)))
        {
            reasons.push(format!(
                "overlapping CIDRs: the VPC's {cidr} contains {inside}, the emulated internet's \
                 address (198.51.100.0/24); choose a VPC block outside it"
            ));
        }
        let services_net = IpAddr::V4(AWS_SERVICES_BLOCK);
        if topology
            .tiers
            .iter()
            .any(|t| t.placement == Placement::AwsService)
            && cidr.contains(&services_net)
        {
            reasons.push(format!(
                "overlapping CIDRs: the VPC's {cidr} contains {AWS_SERVICES_BLOCK}, where the \
                 emulated AWS services live (203.0.113.0/24); choose a VPC block outside it"
            ));
        }
        let internet_tiers: Vec<&str> = topology
            .tiers
            .iter()
            .filter(|t| t.placement == Placement::Internet)
            .map(|t| t.name.0.as_str())
            .collect();
        if internet_tiers.len() > 1 {
            reasons.push(format!(
                "tiers {} are all placed on the internet, where the model gives every tier the \
                 same address ({INTERNET_ADDRESS}); only one internet tier can be emulated",
                internet_tiers.join(", ")
            ));
        }
        let mut tiers = Vec::new();
        for (index, tier) in topology.tiers.iter().enumerate() {
            let address = match tier.placement {
                Placement::Internet => INTERNET_ADDRESS,
                Placement::AwsService => match topology.address_of(tier) {
                    IpAddr::V4(address) => address,
                    IpAddr::V6(_) => continue,
                },
                Placement::Vpc => {
                    // The model's address: the CIDR's host 10 + the tier's index. It must be a
                    // usable host (not the broadcast address) for the tier to exist.
                    let host = 10 + index as u64;
                    if host + 1 >= size {
                        reasons.push(format!(
                            "tier {} has no address: the model puts it at host {host} of {cidr}, \
                             which has {} usable hosts; use a larger VPC block",
                            tier.name,
                            size.saturating_sub(2)
                        ));
                        continue;
                    }
                    match topology.address_of(tier) {
                        IpAddr::V4(address) => address,
                        IpAddr::V6(_) => continue,
                    }
                }
            };
            tiers.push(TierPlan {
                name: tier.name.clone(),
                namespace: format!("{NAMESPACE_PREFIX}{run_id}-{}", tier.name),
                placement: tier.placement,
                address,
                ports: Vec::new(),
                expected_ports: Vec::new(),
            });
        }
        if size < 4 {
            reasons.push(format!("vpc.cidr: {cidr} leaves no room for a router"));
        }
        let mut targets: BTreeMap<(String, u16), ()> = BTreeMap::new();
        for flow in topology.expected.iter().chain(&topology.forbidden) {
            if flow.protocol != Protocol::Tcp {
                reasons.push(format!(
                    "flow {} -> {}:{} is {}: only TCP flows are probed",
                    flow.from,
                    flow.to,
                    flow.port,
                    flow.protocol.aws_name()
                ));
                continue;
            }
            targets.insert((flow.to.0.clone(), flow.port), ());
        }
        // The internet's HTTPS port, from every tier: where a task whose egress was left open
        // could reach and send data. A new group allows all egress until it is revoked (seed
        // 000's script never revokes it), and this is the flow that shows it.
        if let [internet] = internet_tiers.as_slice() {
            targets.insert(((*internet).to_owned(), INTERNET_PROBE_PORT), ());
        }
        if !reasons.is_empty() {
            return Err(EmulateError::Refused(reasons));
        }
        let targets: Vec<Target> = targets
            .into_keys()
            .map(|(tier, port)| Target {
                tier: TierName(tier),
                port,
            })
            .collect();
        for tier in &mut tiers {
            let mut expected: Vec<u16> = topology
                .expected
                .iter()
                .filter(|f| f.to == tier.name)
                .map(|f| f.port)
                .collect();
            expected.sort_unstable();
            expected.dedup();
            tier.expected_ports = expected;
            tier.ports = targets
                .iter()
                .filter(|t| t.tier == tier.name)
                .map(|t| t.port)
                .collect();
        }
        Ok(Self {
            run_id: run_id.to_owned(),
            vpc_namespace: format!("{NAMESPACE_PREFIX}{run_id}-{VPC_SUFFIX}"),
            vpc_cidr: cidr.to_string(),
            prefix_len,
            router: Ipv4Addr::from(u32::from(network).wrapping_add(1)),
            tiers,
            targets,
        })
    }

    pub fn tier(&self, name: &str) -> Option<&TierPlan> {
        self.tiers.iter().find(|t| t.name.0 == name)
    }

    /// Every namespace of the run, the VPC's last (removing it removes the bridge and the links).
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tiers.iter().map(|t| t.namespace.clone()).collect();
        names.push(self.vpc_namespace.clone());
        names
    }
}

/// Run ids are 8 lower-case hexadecimal digits, so a namespace name says which run made it.
pub fn valid_run_id(run_id: &str) -> bool {
    run_id.len() == 8
        && run_id
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// The run id in a namespace name made by this crate, if it is one.
pub fn run_id_of(namespace: &str) -> Option<&str> {
    let rest = namespace.strip_prefix(NAMESPACE_PREFIX)?;
    let (run_id, tier) = rest.split_once('-')?;
    (valid_run_id(run_id) && !tier.is_empty()).then_some(run_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use membrain_netsec::Cidr;
    use membrain_netsec::profiles::{Profile, ProfileOptions};

    fn profile(profile: Profile, cidr: &str) -> Topology {
        let mut options = ProfileOptions::for_profile(profile);
        options.vpc_cidr = Cidr::parse("cidr", cidr).unwrap();
        profile.topology(&options)
    }

    /// One case per line: (profile, VPC CIDR, Ok(tier count) or a piece of the refusal).
    #[test]
    fn plans_and_refusals() {
        let cases: &[(Profile, &str, Result<usize, &str>)] = &[
            (Profile::Alb, "10.0.0.0/16", Ok(8)),
            (Profile::Gateway, "10.0.0.0/16", Ok(7)),
            (Profile::Gateway, "10.9.8.0/27", Ok(7)),
            (
                Profile::Gateway,
                "10.9.8.0/28",
                Err("tier vpc has no address"),
            ),
            (
                Profile::Alb,
                "10.9.8.0/28",
                Err("tier database has no address"),
            ),
            (Profile::Alb, "198.51.0.0/16", Err("overlapping CIDRs")),
            (
                Profile::Alb,
                "203.0.112.0/23",
                Err("the emulated AWS services live"),
            ),
            (
                Profile::Gateway,
                "198.51.100.0/24",
                Err("overlapping CIDRs"),
            ),
        ];
        for (p, cidr, expected) in cases {
            let result = EmulationPlan::new(&profile(*p, cidr), "0123abcd");
            match (result, expected) {
                (Ok(plan), Ok(count)) => assert_eq!(plan.tiers.len(), *count, "{cidr}"),
                (Err(error), Err(piece)) => {
                    assert!(error.to_string().contains(piece), "{cidr}: {error}")
                }
                (other, _) => panic!("{p:?} {cidr}: {other:?}"),
            }
        }
    }

    #[test]
    fn addresses_are_the_models_and_ports_are_the_flows_targets() {
        let topology = profile(Profile::Alb, "10.0.0.0/16");
        let plan = EmulationPlan::new(&topology, "0123abcd").unwrap();
        for tier in &topology.tiers {
            let planned = plan.tier(&tier.name.0).unwrap();
            assert_eq!(IpAddr::V4(planned.address), topology.address_of(tier));
        }
        assert_eq!(plan.tier("mcp-alb").unwrap().ports, [80, 443]);
        assert_eq!(plan.tier("database").unwrap().ports, [5432]);
        assert_eq!(plan.tier("internet").unwrap().ports, [INTERNET_PROBE_PORT]);
        // S3 outside the VPC, alone on the first /30 of the services' block.
        let s3 = plan.tier("s3").unwrap();
        assert_eq!(s3.address, Ipv4Addr::new(203, 0, 113, 2));
        assert_eq!(s3.ports, [443]);
        assert_eq!(plan.router, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(plan.vpc_namespace, "mb-0123abcd-_vpc");
        assert_eq!(
            plan.tier("mcp-ecs").unwrap().namespace,
            "mb-0123abcd-mcp-ecs"
        );
    }

    #[test]
    fn namespace_names_carry_the_run_id() {
        assert_eq!(run_id_of("mb-0123abcd-mcp-alb"), Some("0123abcd"));
        assert_eq!(run_id_of("mb-0123abcd-_vpc"), Some("0123abcd"));
        assert_eq!(run_id_of("mb-0123abcdx-vpc"), None);
        assert_eq!(run_id_of("mb-0123ABCD-vpc"), None);
        assert_eq!(run_id_of("other"), None);
        let refused = EmulationPlan::new(&profile(Profile::Alb, "10.0.0.0/16"), "../etc");
        assert!(refused.is_err());
    }
}
