//! The network model: validated newtypes and the values a topology is made of.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::NetsecError;

/// A validated IPv4 or IPv6 network, e.g. `10.0.0.0/16` or `::/0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Cidr(IpNet);

impl Cidr {
    /// Parses `value`; the error names `field` and the value.
    pub fn parse(field: &str, value: &str) -> Result<Self, NetsecError> {
        IpNet::from_str(value.trim())
            .map(|net| Self(net.trunc()))
            .map_err(|_| {
                NetsecError::invalid(
                    field,
                    format!("{value:?} is not a CIDR block (e.g. 10.0.0.0/16 or 0.0.0.0/0)"),
                )
            })
    }

    pub fn contains(&self, address: &IpAddr) -> bool {
        self.0.contains(address)
    }

    pub fn contains_net(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0)
    }

    /// `0.0.0.0/0` or `::/0`: every address.
    pub fn is_everything(&self) -> bool {
        self.0.prefix_len() == 0
    }

    pub fn is_ipv6(&self) -> bool {
        matches!(self.0, IpNet::V6(_))
    }

    /// The `n`-th address of the block (0 is the network address).
    pub fn host(&self, n: u32) -> IpAddr {
        match self.0 {
            IpNet::V4(net) => IpAddr::V4(std::net::Ipv4Addr::from(
                u32::from(net.network()).wrapping_add(n),
            )),
            IpNet::V6(net) => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(net.network()).wrapping_add(u128::from(n)),
            )),
        }
    }

    pub fn everything_v4() -> Self {
        Self(IpNet::from_str("0.0.0.0/0").unwrap_or_default())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Cidr> for String {
    fn from(value: Cidr) -> Self {
        value.to_string()
    }
}

impl TryFrom<String> for Cidr {
    type Error = NetsecError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse("cidr", &value)
    }
}

/// A TCP/UDP port range, both ends within 1–65535, `from <= to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRange {
    pub from: u16,
    pub to: u16,
}

impl PortRange {
    pub fn new(field: &str, from: i64, to: i64) -> Result<Self, NetsecError> {
        let check = |value: i64| {
            u16::try_from(value)
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| {
                    NetsecError::invalid(field, format!("port {value} is outside 1-65535"))
                })
        };
        let (from, to) = (check(from)?, check(to)?);
        if from > to {
            return Err(NetsecError::invalid(
                field,
                format!("port range {from}-{to} runs backwards"),
            ));
        }
        Ok(Self { from, to })
    }

    pub fn single(port: u16) -> Self {
        Self {
            from: port,
            to: port,
        }
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.from..=self.to).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

/// An IP protocol as security groups know it; `All` is AWS's `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    #[serde(rename = "-1", alias = "all")]
    All,
}

impl Protocol {
    pub fn parse(field: &str, value: &str) -> Result<Self, NetsecError> {
        match value.trim().to_lowercase().as_str() {
            "tcp" | "6" => Ok(Self::Tcp),
            "udp" | "17" => Ok(Self::Udp),
            "icmp" | "1" => Ok(Self::Icmp),
            "-1" | "all" => Ok(Self::All),
            other => Err(NetsecError::invalid(
                field,
                format!("{other:?} is not a protocol (tcp, udp, icmp or -1 for all)"),
            )),
        }
    }

    /// The `IpProtocol` value of the EC2 API.
    pub fn aws_name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
            Self::All => "-1",
        }
    }

    /// Whether rules of this protocol carry ports.
    pub fn has_ports(self) -> bool {
        matches!(self, Self::Tcp | Self::Udp)
    }
}

/// The logical name of a security group in a topology (`mcp-alb`), stable across accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupId(pub String);

/// The name of a tier: a place traffic comes from or goes to (`internet`, `mcp-ecs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TierName(pub String);

fn check_name(field: &str, value: &str, what: &str) -> Result<String, NetsecError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(NetsecError::invalid(
            field,
            format!("{value:?} is not a valid {what} name (lower-case letters, digits, '-', '_')"),
        ))
    }
}

impl GroupId {
    pub fn parse(field: &str, value: &str) -> Result<Self, NetsecError> {
        check_name(field, value, "group").map(Self)
    }

    /// The shell variable a rendered script keeps this group's id in (`MCP_ALB_SG_ID`).
    pub fn shell_variable(&self) -> String {
        format!("{}_SG_ID", self.0.to_uppercase().replace('-', "_"))
    }
}

impl TierName {
    pub fn parse(field: &str, value: &str) -> Result<Self, NetsecError> {
        check_name(field, value, "tier").map(Self)
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for TierName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a rule admits traffic from (ingress) or lets it go to (egress).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    Cidr(Cidr),
    /// Every network interface that carries this group.
    Group(GroupId),
    /// A managed prefix list (`pl-…`), e.g. an AWS service's addresses.
    PrefixList(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cidr(cidr) => cidr.fmt(f),
            Self::Group(group) => write!(f, "sg:{group}"),
            Self::PrefixList(id) => f.write_str(id),
        }
    }
}

/// One security-group rule. Security groups only allow; there are no deny rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule {
    pub protocol: Protocol,
    /// `None` for protocols without ports and for `-1` (every port).
    pub ports: Option<PortRange>,
    pub peer: Peer,
    pub description: String,
}

impl Rule {
    pub fn tcp(port: u16, peer: Peer, description: &str) -> Self {
        Self {
            protocol: Protocol::Tcp,
            ports: Some(PortRange::single(port)),
            peer,
            description: description.to_owned(),
        }
    }

    pub fn all_traffic(peer: Peer, description: &str) -> Self {
        Self {
            protocol: Protocol::All,
            ports: None,
            peer,
            description: description.to_owned(),
        }
    }

    /// Whether this rule's protocol and ports cover `protocol`/`port`.
    pub fn covers(&self, protocol: Protocol, port: u16) -> bool {
        match self.protocol {
            Protocol::All => true,
            p if p == protocol => self.ports.is_none_or(|range| range.contains(port)),
            _ => false,
        }
    }

    /// Same protocol, ports and peer: the description does not make a different rule.
    pub fn same_permission(&self, other: &Rule) -> bool {
        self.protocol == other.protocol && self.ports == other.ports && self.peer == other.peer
    }

    /// The seeds' "Type" column: HTTP, HTTPS, PostgreSQL, Custom TCP, All traffic…
    pub fn type_name(&self) -> String {
        match (self.protocol, self.ports) {
            (Protocol::All, _) => "All traffic".into(),
            (Protocol::Tcp, Some(r)) if r.from == r.to => match r.from {
                80 => "HTTP".into(),
                443 => "HTTPS".into(),
                5432 => "PostgreSQL".into(),
                22 => "SSH".into(),
                _ => "Custom TCP".into(),
            },
            (Protocol::Tcp, _) => "Custom TCP".into(),
            (Protocol::Udp, _) => "Custom UDP".into(),
            (Protocol::Icmp, _) => "All ICMP".into(),
        }
    }

    pub fn protocol_label(&self) -> &'static str {
        match self.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Icmp => "ICMP",
            Protocol::All => "All",
        }
    }

    pub fn port_label(&self) -> String {
        match self.ports {
            Some(range) => range.to_string(),
            None => "All".into(),
        }
    }
}

/// A security group as planned: its logical id, its AWS name, and every rule it should have.
/// `egress` is the whole truth: a group whose plan has no all-traffic egress rule must have
/// AWS's default egress revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: GroupId,
    /// The `GroupName` in EC2, e.g. `membrain-mcp-alb-sg`.
    pub name: String,
    /// A label for tables ("MCP ALB Security Group").
    pub title: String,
    pub description: String,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

/// Where a tier's interfaces sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Any public internet address.
    Internet,
    /// An address inside the VPC CIDR.
    Vpc,
}

/// A place in the network: the interfaces of a load balancer or a service, or an address range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    pub name: TierName,
    pub description: String,
    pub placement: Placement,
    /// The groups every interface of this tier carries (none for `internet` and `vpc`).
    pub groups: Vec<GroupId>,
}

/// A flow the plan promises (expected) or rules out (forbidden).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flow {
    pub from: TierName,
    pub to: TierName,
    pub protocol: Protocol,
    pub port: u16,
    pub why: String,
}

/// An interface VPC endpoint for an AWS service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcEndpoint {
    /// The service's short name; the full name is `com.amazonaws.<region>.<service>`.
    pub service: String,
    pub private_dns: bool,
    pub groups: Vec<GroupId>,
}

/// The VPC and the choices the seeds expose as variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    pub cidr: Cidr,
    /// Create the VPC (and subnets) instead of using an existing one (`VPC_ID`).
    pub create: bool,
}

/// A group allowed to take traffic from the whole internet on some ports (the public entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicEntry {
    pub group: GroupId,
    pub ports: Vec<u16>,
}
