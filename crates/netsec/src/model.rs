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
                    format!(
                        "{} is not a CIDR block (e.g. 10.0.0.0/16 or 0.0.0.0/0)",
                        shown(value)
                    ),
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

    /// The number of leading bits that name the network (`16` for `10.0.0.0/16`).
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
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
                format!(
                    "{} is not a protocol (tcp, udp, icmp or -1 for all)",
                    shown(other)
                ),
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

/// Group ids and tier names: they become shell variables (`MCP_ALB_SG_ID`), Terraform resource
/// names and CloudFormation logical ids, none of which may start with a digit or hold anything
/// but letters, digits and `_`; `-` and `_` map onto those.
fn check_name(field: &str, value: &str, what: &str) -> Result<String, NetsecError> {
    let ok = value.len() <= ID_MAX
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(NetsecError::invalid(
            field,
            format!(
                "{} is not a valid {what} name; allowed: a lower-case letter, then lower-case \
                 letters, digits, '-' or '_'; at most {ID_MAX} characters",
                shown(value)
            ),
        ))
    }
}

const ID_MAX: usize = 64;

impl GroupId {
    pub fn parse(field: &str, value: &str) -> Result<Self, NetsecError> {
        check_name(field, value, "group").map(Self)
    }

    /// The shell variable a rendered script keeps this group's id in (`MCP_ALB_SG_ID`). Built
    /// only from letters, digits and `_` whatever the id holds, so it is always a variable name.
    pub fn shell_variable(&self) -> String {
        format!("{}_SG_ID", shell_name(&self.0))
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
    /// The addresses of an AWS service that the plan reaches through a gateway endpoint
    /// (`s3`): the region's AWS-managed prefix list `com.amazonaws.<region>.<service>`, whose
    /// `pl-…` id differs by region and is looked up by each renderer and by `apply`.
    ServicePrefixList(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cidr(cidr) => cidr.fmt(f),
            Self::Group(group) => write!(f, "sg:{group}"),
            Self::PrefixList(id) => f.write_str(id),
            Self::ServicePrefixList(service) => {
                write!(f, "com.amazonaws.<region>.{service} (prefix list)")
            }
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
    /// Why Membrain adds this rule to the seed's tables; `None` for a rule the seed has (and
    /// for every rule of a topology file or of live groups). Only shown, never rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beyond_seed: Option<String>,
}

impl Rule {
    pub fn tcp(port: u16, peer: Peer, description: &str) -> Self {
        Self {
            protocol: Protocol::Tcp,
            ports: Some(PortRange::single(port)),
            peer,
            description: description.to_owned(),
            beyond_seed: None,
        }
    }

    pub fn all_traffic(peer: Peer, description: &str) -> Self {
        Self {
            protocol: Protocol::All,
            ports: None,
            peer,
            description: description.to_owned(),
            beyond_seed: None,
        }
    }

    /// This rule, marked as one Membrain adds to the seed's tables, for `why`.
    pub fn beyond_seed(mut self, why: &str) -> Self {
        self.beyond_seed = Some(why.to_owned());
        self
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
    /// The addresses of an AWS service outside the VPC (the tier is named after the service,
    /// `s3`), reached through the plan's gateway endpoint for it and named in rules by its
    /// [`Peer::ServicePrefixList`].
    AwsService,
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

/// A VPC endpoint for an AWS service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcEndpoint {
    /// The service's short name; the full name is `com.amazonaws.<region>.<service>`.
    pub service: String,
    #[serde(default)]
    pub kind: EndpointKind,
    /// Private DNS names for an interface endpoint (a gateway endpoint has none).
    pub private_dns: bool,
    /// The groups of an interface endpoint's network interfaces (a gateway endpoint has none:
    /// its traffic is allowed by egress rules to the service's prefix list).
    pub groups: Vec<GroupId>,
}

/// How an endpoint is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// Network interfaces in the private subnets, with security groups and private DNS.
    #[default]
    Interface,
    /// A route to the service's prefix list in the VPC's route tables (S3 and DynamoDB only).
    Gateway,
}

/// The services AWS offers gateway endpoints for.
pub const SERVICES_WITH_GATEWAY_ENDPOINTS: [&str; 2] = ["s3", "dynamodb"];

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

/// `text` as a shell variable name: upper-case ASCII letters, digits and `_` only, never starting
/// with a digit (`timestream.ingest-cell1` → `TIMESTREAM_INGEST_CELL1`).
pub fn shell_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_uppercase() || c == '_') {
        name.insert(0, '_');
    }
    name
}

/// `value` for an error message: quoted, control characters escaped, and cut after 48 characters
/// so that a hostile or huge value cannot flood or drive the terminal.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 48;
    let mut cut: String = value.chars().take(MAX).collect();
    let more = value.chars().count() > MAX;
    if more {
        cut.push_str("...");
    }
    let quoted = format!("{cut:?}");
    if more {
        format!("{quoted} ({} characters)", value.chars().count())
    } else {
        quoted
    }
}

/// The kinds of free text a topology holds, each with the characters and length it accepts.
///
/// Every kind that reaches a rendered file (the AWS CLI script, CloudFormation, Terraform) is
/// deliberately narrower than what AWS accepts: AWS allows ``a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*`` in
/// group and rule descriptions, but `$`, `{` and `}` start templates in Terraform (`${…}`,
/// `%{…}`) and in CloudFormation's `Fn::Sub`, `;`, `&`, `!` and `*` mean something to a shell,
/// and `[`, `]`, `,` and `=` structure the AWS CLI's shorthand (`Key=Name,Value=…`,
/// `Name=group-name,Values=…`), where `*` is also a wildcard. The renderers quote and escape
/// every value anyway (defence in depth); these sets keep what reaches them plain on top of that.
/// All of them are ASCII: no look-alike letters, no control or formatting characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// The topology's `name`: tags, resource names (`membrain-<name>-vpc`, log groups, the ECS
    /// cluster, the Lambda authorizer), so a DNS-style label.
    NetworkName,
    /// A group's `name`, its `GroupName` in EC2 (used in CLI filters and tags).
    GroupName,
    /// A group's `description` and `title`, a rule's `description`.
    Description,
    /// Text that is only ever shown, never rendered: a tier's `description`, a flow's `why`.
    Note,
    /// An interface endpoint's `service`, the end of `com.amazonaws.<region>.<service>`.
    EndpointService,
    /// A managed prefix list id (`pl-` and 8 or 17 hexadecimal digits).
    PrefixListId,
}

/// The longest network name: Terraform's `name_prefix` of the flow-log role,
/// `membrain-<name>-flow-log-`, may be at most 38 characters (IAM's 64 less the 26 Terraform
/// appends); `membrain-<name>-authorizer` (Lambda, 64) and the rest allow more.
pub const NETWORK_NAME_MAX: usize = 38 - "membrain-".len() - "-flow-log-".len();

impl TextKind {
    /// The most characters a value may have.
    pub fn max_len(self) -> usize {
        match self {
            Self::NetworkName => NETWORK_NAME_MAX,
            // EC2: group names, group descriptions and rule descriptions up to 255.
            Self::GroupName | Self::Description | Self::Note => 255,
            Self::EndpointService => 64,
            Self::PrefixListId => 20,
        }
    }

    /// Whether `c` may appear anywhere in a value of this kind.
    pub fn allows(self, c: char) -> bool {
        match self {
            Self::NetworkName => c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            Self::GroupName => c.is_ascii_alphanumeric() || " ._-:/()#@+".contains(c),
            Self::Description => c.is_ascii_alphanumeric() || " ._-:/()#,@+=".contains(c),
            Self::Note => c == ' ' || c.is_ascii_graphic(),
            Self::EndpointService => {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
            }
            Self::PrefixListId => c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
        }
    }

    /// What a value of this kind may hold, for error messages.
    pub fn rule(self) -> String {
        let max = self.max_len();
        match self {
            Self::NetworkName => format!(
                "a lower-case letter, then lower-case letters, digits or '-', not ending in '-'; \
                 at most {max} characters"
            ),
            Self::GroupName => format!(
                "letters, digits, spaces and . _ - : / ( ) # @ +, not starting with \"sg-\" nor \
                 with a space; 1 to {max} characters"
            ),
            Self::Description => format!(
                "letters, digits, spaces and . _ - : / ( ) # , @ + =, not blank; at most {max} \
                 characters"
            ),
            Self::Note => {
                format!("printable ASCII characters and spaces; at most {max} characters")
            }
            Self::EndpointService => format!(
                "an AWS service name such as secretsmanager, logs or timestream.ingest-cell1: \
                 lower-case words of letters and digits joined by '.' or '-', starting with a \
                 letter; at most {max} characters"
            ),
            Self::PrefixListId => {
                "a prefix list id: pl- and 8 or 17 lower-case hexadecimal digits".to_owned()
            }
        }
    }

    /// Checks `value`; the error names `place`, the offending characters and what is allowed.
    pub fn check(self, place: &str, value: &str) -> Result<(), NetsecError> {
        let refuse = |problem: String| {
            Err(NetsecError::invalid(
                place,
                format!("{problem}; allowed: {}", self.rule()),
            ))
        };
        let mut bad: Vec<char> = value.chars().filter(|c| !self.allows(*c)).collect();
        bad.dedup();
        if !bad.is_empty() {
            let mut listed: Vec<String> = Vec::new();
            for c in bad {
                let item = format!("{c:?}");
                if !listed.contains(&item) && listed.len() < 8 {
                    listed.push(item);
                }
            }
            return refuse(format!(
                "{} holds characters that are not allowed ({})",
                shown(value),
                listed.join(" ")
            ));
        }
        let length = value.chars().count();
        if length > self.max_len() {
            return refuse(format!("{} is too long", shown(value)));
        }
        let shape_ok = match self {
            Self::NetworkName => {
                value.starts_with(|c: char| c.is_ascii_lowercase()) && !value.ends_with('-')
            }
            Self::GroupName => {
                !value.is_empty()
                    && !value.starts_with(' ')
                    && !value.ends_with(' ')
                    && !value.to_ascii_lowercase().starts_with("sg-")
            }
            Self::Description => !value.trim().is_empty(),
            Self::Note => true,
            Self::EndpointService => {
                value.starts_with(|c: char| c.is_ascii_lowercase())
                    && value.split(['.', '-']).all(|word| !word.is_empty())
            }
            Self::PrefixListId => value.strip_prefix("pl-").is_some_and(|hex| {
                (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
            }),
        };
        if shape_ok {
            Ok(())
        } else {
            refuse(format!("{} is not allowed", shown(value)))
        }
    }
}
