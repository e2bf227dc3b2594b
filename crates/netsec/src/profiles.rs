//! The seeds' two deployments as built-in topologies, with the seeds' variables as options.
//!
//! `alb` (seed 000): internet → MCP ALB → MCP tasks → internal API ALB → API tasks → PostgreSQL.
//! The seed stops at the API ALB; the API tasks and database groups complete the chain the same
//! way. Unlike the seed's script, every group's egress is exactly its table: the default
//! allow-all egress is revoked wherever the table is narrower. That tight egress would leave
//! Fargate tasks unable to pull images, ship logs or read secrets (they do it through the task's
//! own interface), so the plan adds what they need: interface endpoints for ECR, CloudWatch Logs
//! and Secrets Manager with their own group, and the S3 gateway endpoint for image layers
//! (reached through its prefix list); or, without endpoints, HTTPS out through a NAT. Every rule
//! the seed does not have says why Membrain adds it ([`Rule::beyond_seed`]).
//!
//! `gateway` (seed 001): API Gateway → VPC Link → NLB → MCP server tasks on 8080 in private
//! subnets, with interface endpoints for Secrets Manager and CloudWatch Logs. The seed admits the
//! tasks' port from the whole VPC CIDR, which lets anything in the VPC bypass the authorizer (an
//! NLB without a group hides the VPC link behind its own addresses, so the seed's VPC-link rule
//! matches nothing); the plan gives the NLB a group of its own, admits the tasks only from it, and
//! keeps the seed's VPC rule only when asked ([`ProfileOptions::seed_vpc_ingress`]), where
//! `network verify` lints it. The seed keeps time
//! series in Timestream, which is closed to new customers since 2025-06-20, so the plan's default
//! store is PostgreSQL (RDS) in a database tier only the MCP tasks reach; Timestream, with its two
//! endpoints, is an explicit choice ([`GatewayTsStore`]).

use serde::{Deserialize, Serialize};

use crate::model::*;
use crate::{NetsecError, Topology};

/// The seeds' variables and the ports that can be changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileOptions {
    pub create_vpc: bool,
    pub vpc_cidr: Cidr,
    /// VPC endpoints for the AWS services the tasks use; `false` reaches them elsewhere (for
    /// `alb`, HTTPS out through a NAT).
    pub enable_vpc_endpoints: bool,
    /// The MCP tasks' port: 8100 behind the ALB (`alb`), 8080 behind the NLB (`gateway`).
    pub mcp_port: u16,
    pub api_port: u16,
    pub database_port: u16,
    /// Where the `gateway` MCP tasks keep time series (the `alb` API keeps them in its own
    /// PostgreSQL).
    pub gateway_ts_store: GatewayTsStore,
    /// The Timestream cell the account is mapped to (`aws timestream-write describe-endpoints`
    /// names it: `ingest-cell2.timestream…` is cell 2): its endpoints can be created only for
    /// that cell.
    pub timestream_cell: u8,
    /// `gateway`: also admit the MCP tasks' port from the whole VPC CIDR, as seed 001 does. Off by
    /// default: with it, anything in the VPC reaches the tasks without passing the authorizer.
    #[serde(default)]
    pub seed_vpc_ingress: bool,
}

/// The `gateway` profile's time-series store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayTsStore {
    /// RDS PostgreSQL in the private subnets, reached only by the MCP tasks: any account can
    /// deploy it.
    #[default]
    Postgres,
    /// Timestream for LiveAnalytics through its ingest and query endpoints, for accounts that
    /// have it (AWS closed it to new customers on 2025-06-20).
    Timestream,
}

impl GatewayTsStore {
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Timestream => "timestream",
        }
    }
}

impl ProfileOptions {
    pub fn for_profile(profile: Profile) -> Self {
        Self {
            create_vpc: matches!(profile, Profile::Gateway),
            vpc_cidr: Cidr::parse("vpc_cidr", "10.0.0.0/16")
                .unwrap_or_else(|_| Cidr::everything_v4()),
            enable_vpc_endpoints: true,
            mcp_port: match profile {
                Profile::Alb => 8100,
                Profile::Gateway => 8080,
            },
            api_port: 8000,
            database_port: 5432,
            gateway_ts_store: GatewayTsStore::default(),
            timestream_cell: 1,
            seed_vpc_ingress: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Alb,
    Gateway,
}

impl Profile {
    pub fn parse(value: &str) -> Result<Self, NetsecError> {
        match value {
            "alb" => Ok(Self::Alb),
            "gateway" => Ok(Self::Gateway),
            other => Err(NetsecError::invalid(
                "profile",
                format!("{other:?} is not a profile: use alb or gateway"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Alb => "alb",
            Self::Gateway => "gateway",
        }
    }

    /// The profile as the seed describes it, with its default options.
    pub fn default_topology(self) -> Topology {
        self.topology(&ProfileOptions::for_profile(self))
    }

    pub fn topology(self, options: &ProfileOptions) -> Topology {
        match self {
            Self::Alb => alb(options),
            Self::Gateway => gateway(options),
        }
    }
}

fn id(name: &str) -> GroupId {
    GroupId(name.to_owned())
}

fn group_peer(name: &str) -> Peer {
    Peer::Group(id(name))
}

fn everywhere() -> Peer {
    Peer::Cidr(Cidr::everything_v4())
}

fn tier(name: &str, description: &str, placement: Placement, groups: &[&str]) -> Tier {
    Tier {
        name: TierName(name.to_owned()),
        description: description.to_owned(),
        placement,
        groups: groups.iter().map(|g| id(g)).collect(),
    }
}

fn flow(from: &str, to: &str, port: u16, why: &str) -> Flow {
    Flow {
        from: TierName(from.into()),
        to: TierName(to.into()),
        protocol: Protocol::Tcp,
        port,
        why: why.into(),
    }
}

/// Why the plan has rules the seed's tables do not.
const COMPLETES_THE_CHAIN: &str =
    "the seed stops at the API ALB; the API tasks and their database complete the chain";
const TASK_EGRESS: &str = "Fargate tasks pull images from ECR (layers from S3), ship logs and read \
                           secrets through their own interface, which the seed's egress would block";

/// The interface endpoints the `alb` tasks need, each with private DNS: image pulls (`ecr.api`,
/// `ecr.dkr`), `awslogs` (`logs`) and secrets (`secretsmanager`). Image layers come from S3,
/// through its gateway endpoint.
pub const ALB_ENDPOINT_SERVICES: [&str; 4] = ["ecr.api", "ecr.dkr", "logs", "secretsmanager"];

/// The tiers that run tasks in the `alb` profile and need AWS services.
const ALB_TASK_TIERS: [&str; 2] = ["mcp-ecs", "api-ecs"];

/// Seed 000: the MCP ALB, the MCP tasks and the API ALB, completed with the API tasks and the
/// database, and the task egress Fargate needs.
pub fn alb(options: &ProfileOptions) -> Topology {
    let (mcp, api, db) = (options.mcp_port, options.api_port, options.database_port);
    let mut groups = vec![
        SecurityGroup {
            id: id("mcp-alb"),
            name: "membrain-mcp-alb-sg".into(),
            title: "MCP ALB Security Group".into(),
            description: "Security group for Mem-Brain MCP Application Load Balancer".into(),
            ingress: vec![
                Rule::tcp(80, everywhere(), "Allow HTTP from internet"),
                Rule::tcp(443, everywhere(), "Allow HTTPS from internet"),
            ],
            egress: vec![Rule::all_traffic(
                everywhere(),
                "Allow all outbound traffic",
            )],
        },
        SecurityGroup {
            id: id("mcp-ecs"),
            name: "membrain-mcp-ecs-sg".into(),
            title: "MCP ECS Security Group".into(),
            description: "Security group for Mem-Brain MCP ECS tasks".into(),
            ingress: vec![Rule::tcp(
                mcp,
                group_peer("mcp-alb"),
                "Allow traffic from MCP ALB",
            )],
            egress: vec![
                Rule::tcp(80, group_peer("api-alb"), "Allow HTTP to API ALB"),
                Rule::tcp(443, group_peer("api-alb"), "Allow HTTPS to API ALB"),
            ],
        },
        SecurityGroup {
            id: id("api-alb"),
            name: "membrain-api-alb-sg".into(),
            title: "API ALB Security Group".into(),
            description: "Security group for Mem-Brain API internal Application Load Balancer"
                .into(),
            ingress: vec![
                Rule::tcp(80, group_peer("mcp-ecs"), "Allow HTTP from MCP ECS"),
                Rule::tcp(443, group_peer("mcp-ecs"), "Allow HTTPS from MCP ECS"),
            ],
            egress: vec![
                Rule::tcp(api, group_peer("api-ecs"), "Allow traffic to API tasks")
                    .beyond_seed(COMPLETES_THE_CHAIN),
            ],
        },
        SecurityGroup {
            id: id("api-ecs"),
            name: "membrain-api-ecs-sg".into(),
            title: "API ECS Security Group".into(),
            description: "Security group for Mem-Brain API ECS tasks".into(),
            ingress: vec![
                Rule::tcp(api, group_peer("api-alb"), "Allow traffic from API ALB")
                    .beyond_seed(COMPLETES_THE_CHAIN),
            ],
            egress: vec![
                Rule::tcp(
                    db,
                    group_peer("database"),
                    "Allow PostgreSQL to the database",
                )
                .beyond_seed(COMPLETES_THE_CHAIN),
            ],
        },
        SecurityGroup {
            id: id("database"),
            name: "membrain-database-sg".into(),
            title: "Database Security Group".into(),
            description: "Security group for the Mem-Brain PostgreSQL database (RDS)".into(),
            ingress: vec![
                Rule::tcp(db, group_peer("api-ecs"), "Allow PostgreSQL from API tasks")
                    .beyond_seed(COMPLETES_THE_CHAIN),
            ],
            egress: vec![],
        },
    ];
    let mut tiers = vec![
        tier(
            "internet",
            "Any address on the internet",
            Placement::Internet,
            &[],
        ),
        tier(
            "mcp-alb",
            "The public MCP Application Load Balancer",
            Placement::Vpc,
            &["mcp-alb"],
        ),
        tier(
            "mcp-ecs",
            "The MCP server tasks",
            Placement::Vpc,
            &["mcp-ecs"],
        ),
        tier(
            "api-alb",
            "The internal API Application Load Balancer",
            Placement::Vpc,
            &["api-alb"],
        ),
        tier(
            "api-ecs",
            "The Memory REST API tasks",
            Placement::Vpc,
            &["api-ecs"],
        ),
        tier(
            "database",
            "The PostgreSQL database (RDS)",
            Placement::Vpc,
            &["database"],
        ),
    ];
    let mut expected = vec![
        flow(
            "internet",
            "mcp-alb",
            80,
            "clients reach the MCP ALB over HTTP",
        ),
        flow(
            "internet",
            "mcp-alb",
            443,
            "clients reach the MCP ALB over HTTPS",
        ),
        flow(
            "mcp-alb",
            "mcp-ecs",
            mcp,
            "the MCP ALB forwards to the MCP tasks",
        ),
        flow(
            "mcp-ecs",
            "api-alb",
            80,
            "the MCP tasks call the API ALB over HTTP",
        ),
        flow(
            "mcp-ecs",
            "api-alb",
            443,
            "the MCP tasks call the API ALB over HTTPS",
        ),
        flow(
            "api-alb",
            "api-ecs",
            api,
            "the API ALB forwards to the API tasks",
        ),
        flow("api-ecs", "database", db, "the API tasks use PostgreSQL"),
    ];
    let mut forbidden = vec![
        flow(
            "internet",
            "mcp-ecs",
            mcp,
            "MCP tasks are reached only through their ALB",
        ),
        flow("internet", "api-alb", 80, "the API ALB is internal"),
        flow("internet", "api-alb", 443, "the API ALB is internal"),
        flow("internet", "api-ecs", api, "API tasks are private"),
        flow("internet", "database", db, "the database is private"),
        flow(
            "mcp-ecs",
            "database",
            db,
            "the MCP bridge never touches the database",
        ),
        flow(
            "mcp-ecs",
            "api-ecs",
            api,
            "the MCP tasks go through the API ALB",
        ),
        flow("mcp-alb", "api-alb", 443, "only MCP tasks call the API"),
        flow(
            "mcp-alb",
            "api-ecs",
            api,
            "only the API ALB reaches the API tasks",
        ),
        flow(
            "mcp-alb",
            "database",
            db,
            "only the API tasks reach the database",
        ),
        flow(
            "api-alb",
            "database",
            db,
            "only the API tasks reach the database",
        ),
    ];
    let mut endpoints = Vec::new();
    if options.enable_vpc_endpoints {
        task_endpoints(
            &mut groups,
            &mut tiers,
            &mut endpoints,
            &mut expected,
            &mut forbidden,
        );
    } else {
        task_nat_egress(&mut groups, &mut expected);
    }
    Topology {
        name: "alb".into(),
        vpc: Vpc {
            cidr: options.vpc_cidr,
            create: options.create_vpc,
        },
        groups,
        tiers,
        endpoints,
        public_entry: vec![PublicEntry {
            group: id("mcp-alb"),
            ports: vec![80, 443],
        }],
        expected,
        forbidden,
    }
}

/// The `alb` tasks reach AWS services through endpoints: interface endpoints (ECR, Logs, Secrets
/// Manager) behind a group that admits only the tasks, and the S3 gateway endpoint, which the
/// tasks' egress names by its prefix list.
fn task_endpoints(
    groups: &mut Vec<SecurityGroup>,
    tiers: &mut Vec<Tier>,
    endpoints: &mut Vec<VpcEndpoint>,
    expected: &mut Vec<Flow>,
    forbidden: &mut Vec<Flow>,
) {
    groups.push(SecurityGroup {
        id: id("vpc-endpoints"),
        name: "membrain-vpc-endpoints-sg".into(),
        title: "VPC Endpoints Security Group".into(),
        description: "Security group for the interface VPC endpoints the Mem-Brain tasks use"
            .into(),
        ingress: ALB_TASK_TIERS
            .iter()
            .map(|task| {
                Rule::tcp(
                    443,
                    group_peer(task),
                    &format!("Allow HTTPS from {task} tasks"),
                )
                .beyond_seed(TASK_EGRESS)
            })
            .collect(),
        egress: vec![],
    });
    for group in groups.iter_mut() {
        if !ALB_TASK_TIERS.contains(&group.id.0.as_str()) {
            continue;
        }
        group.egress.push(
            Rule::tcp(
                443,
                group_peer("vpc-endpoints"),
                "Allow HTTPS to the VPC endpoints (ECR, Logs, Secrets Manager)",
            )
            .beyond_seed(TASK_EGRESS),
        );
        group.egress.push(
            Rule::tcp(
                443,
                Peer::ServicePrefixList("s3".into()),
                "Allow HTTPS to S3 for image layers",
            )
            .beyond_seed(TASK_EGRESS),
        );
    }
    tiers.push(tier(
        "vpc-endpoints",
        "The interface VPC endpoints (ECR, Logs, Secrets Manager)",
        Placement::Vpc,
        &["vpc-endpoints"],
    ));
    tiers.push(tier(
        "s3",
        "Amazon S3 through its gateway endpoint (image layers)",
        Placement::AwsService,
        &[],
    ));
    for task in ALB_TASK_TIERS {
        expected.push(flow(
            task,
            "vpc-endpoints",
            443,
            "the tasks pull images, ship logs and read secrets privately",
        ));
        expected.push(flow(
            task,
            "s3",
            443,
            "the tasks fetch image layers from S3",
        ));
    }
    for task in ALB_TASK_TIERS {
        forbidden.push(flow(
            task,
            "internet",
            443,
            "the tasks reach AWS services through the endpoints, never the internet",
        ));
    }
    for other in ["internet", "mcp-alb", "api-alb", "database"] {
        forbidden.push(flow(
            other,
            "vpc-endpoints",
            443,
            "only the tasks use the endpoints",
        ));
    }
    endpoints.extend(ALB_ENDPOINT_SERVICES.iter().map(|service| VpcEndpoint {
        service: (*service).into(),
        kind: EndpointKind::Interface,
        private_dns: true,
        groups: vec![id("vpc-endpoints")],
    }));
    endpoints.push(VpcEndpoint {
        service: "s3".into(),
        kind: EndpointKind::Gateway,
        private_dns: false,
        groups: Vec::new(),
    });
}

/// Without endpoints, the `alb` tasks reach AWS services over HTTPS through the private
/// subnets' NAT: egress to everywhere on 443, which `verify` warns about as broad egress.
fn task_nat_egress(groups: &mut [SecurityGroup], expected: &mut Vec<Flow>) {
    for group in groups.iter_mut() {
        if ALB_TASK_TIERS.contains(&group.id.0.as_str()) {
            group.egress.push(
                Rule::tcp(
                    443,
                    everywhere(),
                    "Allow HTTPS to AWS services through the NAT",
                )
                .beyond_seed(TASK_EGRESS),
            );
        }
    }
    for task in ALB_TASK_TIERS {
        expected.push(flow(
            task,
            "internet",
            443,
            "the tasks reach ECR, Logs and Secrets Manager through the NAT",
        ));
    }
}

/// The interface endpoints of seed 001 every gateway plan has, each with private DNS.
pub const GATEWAY_ENDPOINT_SERVICES: [&str; 2] = ["secretsmanager", "logs"];

/// The Timestream endpoints of `cell`, which a gateway plan has when the time series live there.
pub fn timestream_endpoint_services(cell: u8) -> [String; 2] {
    [
        format!("timestream.ingest-cell{cell}"),
        format!("timestream.query-cell{cell}"),
    ]
}

/// Why the `gateway` plan's NLB has a group the seed does not.
const NLB_GROUP: &str = "an NLB without a group hides the VPC Link behind its own addresses; \
                         with one, the tasks can admit the NLB alone";

/// Why the `gateway` plan has a database the seed does not.
const TIMESTREAM_CLOSED: &str = "Timestream for LiveAnalytics is closed to new customers \
                                 (2025-06-20); the MCP tasks keep time series in PostgreSQL";

/// Seed 001: the MCP server behind API Gateway's VPC Link, with optional interface endpoints and
/// the time-series store the options choose.
pub fn gateway(options: &ProfileOptions) -> Topology {
    let (mcp, db) = (options.mcp_port, options.database_port);
    let vpc = Peer::Cidr(options.vpc_cidr);
    let mut mcp_ingress = vec![
        Rule::tcp(
            mcp,
            group_peer("nlb"),
            "Allow MCP traffic from the NLB only",
        )
        .beyond_seed(
            "the seed's VPC rule let anything in the VPC bypass the authorizer; the NLB's own \
             group is the only way in",
        ),
    ];
    if options.seed_vpc_ingress {
        mcp_ingress.push(Rule::tcp(
            mcp,
            vpc.clone(),
            "Allow MCP server traffic from within VPC",
        ));
    }
    let mut groups = vec![
        SecurityGroup {
            id: id("mcp-server"),
            name: "membrain-mcp-server-sg".into(),
            title: "MCP Server Security Group".into(),
            description: "Controls inbound and outbound traffic for the MCP server ECS tasks in private subnets".into(),
            ingress: mcp_ingress,
            egress: vec![Rule::all_traffic(everywhere(), "Allow outbound connections to AWS services")],
        },
        SecurityGroup {
            id: id("vpc-link"),
            name: "membrain-vpc-link-sg".into(),
            title: "VPC Link Security Group".into(),
            description: "Controls traffic from API Gateway VPC Link to the MCP server".into(),
            ingress: vec![],
            egress: vec![Rule::all_traffic(vpc.clone(), "Allow traffic to MCP server in VPC")],
        },
        SecurityGroup {
            id: id("nlb"),
            name: "membrain-nlb-sg".into(),
            title: "NLB Security Group".into(),
            description: "Controls traffic through the internal NLB between the API Gateway VPC Link and the MCP server".into(),
            ingress: vec![
                Rule::tcp(mcp, group_peer("vpc-link"), "Allow MCP traffic from the VPC Link")
                    .beyond_seed(NLB_GROUP),
            ],
            egress: vec![
                Rule::tcp(mcp, group_peer("mcp-server"), "Forward MCP traffic and health checks to the MCP server tasks")
                    .beyond_seed(NLB_GROUP),
            ],
        },
    ];
    let mut tiers = vec![
        tier(
            "internet",
            "Any address on the internet",
            Placement::Internet,
            &[],
        ),
        tier(
            "vpc-link",
            "API Gateway's VPC Link interfaces",
            Placement::Vpc,
            &["vpc-link"],
        ),
        tier(
            "nlb",
            "The internal Network Load Balancer the VPC Link targets",
            Placement::Vpc,
            &["nlb"],
        ),
        tier(
            "mcp-server",
            "The MCP server tasks in private subnets",
            Placement::Vpc,
            &["mcp-server"],
        ),
    ];
    let mut expected = vec![
        flow(
            "vpc-link",
            "nlb",
            mcp,
            "API Gateway reaches the NLB through the VPC Link",
        ),
        flow(
            "nlb",
            "mcp-server",
            mcp,
            "the NLB forwards to the MCP server tasks (and checks their health)",
        ),
    ];
    let mut forbidden = vec![
        flow(
            "internet",
            "mcp-server",
            mcp,
            "the MCP server is private; clients come through API Gateway",
        ),
        flow(
            "internet",
            "nlb",
            mcp,
            "the NLB is internal; clients come through API Gateway",
        ),
        flow(
            "nlb",
            "mcp-server",
            22,
            "the NLB reaches the MCP server on its port only",
        ),
        flow(
            "nlb",
            "mcp-server",
            8000,
            "the NLB reaches the MCP server on its port only",
        ),
    ];
    if options.seed_vpc_ingress {
        expected.push(flow(
            "vpc",
            "mcp-server",
            mcp,
            "the seed admits MCP traffic from the whole VPC (--seed-vpc-ingress)",
        ));
    } else {
        forbidden.extend([
            flow(
                "vpc",
                "mcp-server",
                mcp,
                "only the NLB reaches the tasks: nothing else in the VPC bypasses the authorizer",
            ),
            flow(
                "vpc-link",
                "mcp-server",
                mcp,
                "the VPC Link reaches the tasks only through the NLB",
            ),
        ]);
    }
    let mut endpoints = Vec::new();
    if options.enable_vpc_endpoints {
        groups.push(SecurityGroup {
            id: id("vpc-endpoints"),
            name: "membrain-vpc-endpoints-sg".into(),
            title: "VPC Endpoints Security Group".into(),
            description:
                "Controls access to VPC endpoints for private communication with AWS services"
                    .into(),
            ingress: vec![Rule::tcp(
                443,
                vpc,
                "Allow HTTPS from VPC for AWS service access",
            )],
            egress: vec![],
        });
        tiers.push(tier(
            "vpc-endpoints",
            "The interface VPC endpoints",
            Placement::Vpc,
            &["vpc-endpoints"],
        ));
        expected.push(flow(
            "mcp-server",
            "vpc-endpoints",
            443,
            "the MCP server reaches AWS services privately",
        ));
        forbidden.push(flow(
            "internet",
            "vpc-endpoints",
            443,
            "endpoints are reachable only inside the VPC",
        ));
        let mut services: Vec<String> = GATEWAY_ENDPOINT_SERVICES.map(String::from).to_vec();
        if options.gateway_ts_store == GatewayTsStore::Timestream {
            services.extend(timestream_endpoint_services(options.timestream_cell));
        }
        endpoints = services
            .into_iter()
            .map(|service| VpcEndpoint {
                service,
                kind: EndpointKind::Interface,
                private_dns: true,
                groups: vec![id("vpc-endpoints")],
            })
            .collect();
    }
    if options.gateway_ts_store == GatewayTsStore::Postgres {
        gateway_database(db, &mut groups, &mut tiers, &mut expected, &mut forbidden);
    }
    tiers.push(tier(
        "vpc",
        "Any address in the VPC CIDR",
        Placement::Vpc,
        &[],
    ));
    Topology {
        name: "gateway".into(),
        vpc: Vpc {
            cidr: options.vpc_cidr,
            create: options.create_vpc,
        },
        groups,
        tiers,
        endpoints,
        public_entry: Vec::new(),
        expected,
        forbidden,
    }
}

/// The `gateway` MCP tasks' PostgreSQL: only they reach it (the seed's task egress is open, so
/// the database's ingress is what keeps everything else out).
fn gateway_database(
    port: u16,
    groups: &mut Vec<SecurityGroup>,
    tiers: &mut Vec<Tier>,
    expected: &mut Vec<Flow>,
    forbidden: &mut Vec<Flow>,
) {
    groups.push(SecurityGroup {
        id: id("database"),
        name: "membrain-database-sg".into(),
        title: "Database Security Group".into(),
        description: "Security group for the Mem-Brain time-series PostgreSQL database (RDS)"
            .into(),
        ingress: vec![
            Rule::tcp(
                port,
                group_peer("mcp-server"),
                "Allow PostgreSQL from MCP server tasks",
            )
            .beyond_seed(TIMESTREAM_CLOSED),
        ],
        egress: vec![],
    });
    tiers.push(tier(
        "database",
        "The time-series PostgreSQL database (RDS)",
        Placement::Vpc,
        &["database"],
    ));
    expected.push(flow(
        "mcp-server",
        "database",
        port,
        "the MCP server keeps time series in PostgreSQL",
    ));
    for other in ["internet", "vpc-link", "nlb", "vpc"] {
        forbidden.push(flow(
            other,
            "database",
            port,
            "only the MCP server tasks reach the database",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_profiles_validate_with_default_and_changed_options() {
        for profile in [Profile::Alb, Profile::Gateway] {
            let mut options = ProfileOptions::for_profile(profile);
            profile.topology(&options).validate().unwrap();
            options.enable_vpc_endpoints = false;
            options.mcp_port = 9000;
            options.vpc_cidr = Cidr::parse("vpc_cidr", "172.16.0.0/20").unwrap();
            let topology = profile.topology(&options);
            topology.validate().unwrap();
            assert!(topology.known_ports().contains(&9000));
        }
    }

    #[test]
    fn tier_names_are_the_agreed_ones() {
        let names = |p: Profile| -> Vec<String> {
            p.default_topology()
                .tiers
                .iter()
                .map(|t| t.name.0.clone())
                .collect()
        };
        assert_eq!(
            names(Profile::Alb),
            [
                "internet",
                "mcp-alb",
                "mcp-ecs",
                "api-alb",
                "api-ecs",
                "database",
                "vpc-endpoints",
                "s3"
            ]
        );
        assert_eq!(
            names(Profile::Gateway),
            [
                "internet",
                "vpc-link",
                "nlb",
                "mcp-server",
                "vpc-endpoints",
                "database",
                "vpc"
            ]
        );
    }

    #[test]
    fn alb_tasks_reach_aws_services_through_endpoints_or_a_nat() {
        use crate::eval::Evaluator;
        let mut options = ProfileOptions::for_profile(Profile::Alb);
        let with = alb(&options);
        let services: Vec<(&str, EndpointKind)> = with
            .endpoints
            .iter()
            .map(|e| (e.service.as_str(), e.kind))
            .collect();
        assert_eq!(
            services,
            [
                ("ecr.api", EndpointKind::Interface),
                ("ecr.dkr", EndpointKind::Interface),
                ("logs", EndpointKind::Interface),
                ("secretsmanager", EndpointKind::Interface),
                ("s3", EndpointKind::Gateway),
            ]
        );
        let evaluator = Evaluator::new(&with);
        let allowed = |from: &str, to: &str| {
            evaluator
                .evaluate_names(from, to, Protocol::Tcp, 443)
                .unwrap()
                .is_allowed()
        };
        for task in ALB_TASK_TIERS {
            assert!(
                allowed(task, "vpc-endpoints") && allowed(task, "s3"),
                "{task}"
            );
            assert!(!allowed(task, "internet"), "{task}");
        }
        for other in ["internet", "mcp-alb", "api-alb", "database"] {
            assert!(!allowed(other, "vpc-endpoints"), "{other}");
        }
        // S3 is on the internet: what keeps the database and the API ALB from it is their
        // narrow egress (the internet and the MCP ALB, which keeps the seed's all-out, reach it).
        assert!(!allowed("database", "s3") && !allowed("api-alb", "s3"));
        // Every rule past the seed's tables says why; the seed's own rules say nothing.
        let marked = |group: &str| -> Vec<bool> {
            let group = with.group(&id(group)).unwrap();
            group
                .ingress
                .iter()
                .chain(&group.egress)
                .map(|r| r.beyond_seed.is_some())
                .collect()
        };
        assert_eq!(marked("mcp-alb"), [false, false, false]);
        assert_eq!(marked("mcp-ecs"), [false, false, false, true, true]);
        assert!(marked("api-ecs").iter().all(|m| *m));
        assert!(marked("vpc-endpoints").iter().all(|m| *m));

        options.enable_vpc_endpoints = false;
        let nat = alb(&options);
        nat.validate().unwrap();
        assert!(nat.endpoints.is_empty());
        assert!(nat.tier("s3").is_err() && nat.group(&id("vpc-endpoints")).is_none());
        let evaluator = Evaluator::new(&nat);
        for task in ALB_TASK_TIERS {
            let verdict = evaluator
                .evaluate_names(task, "internet", Protocol::Tcp, 443)
                .unwrap();
            assert!(verdict.is_allowed(), "{task}");
        }
    }

    #[test]
    fn endpoints_follow_the_variable() {
        let mut options = ProfileOptions::for_profile(Profile::Gateway);
        let with = gateway(&options);
        let services = |t: &Topology| -> Vec<String> {
            t.endpoints.iter().map(|e| e.service.clone()).collect()
        };
        assert_eq!(services(&with), ["secretsmanager", "logs"]);
        assert!(with.endpoints.iter().all(|e| e.private_dns));
        options.gateway_ts_store = GatewayTsStore::Timestream;
        assert_eq!(
            services(&gateway(&options)),
            [
                "secretsmanager",
                "logs",
                "timestream.ingest-cell1",
                "timestream.query-cell1"
            ]
        );
        options.timestream_cell = 2;
        assert_eq!(
            services(&gateway(&options))[2..],
            ["timestream.ingest-cell2", "timestream.query-cell2"]
        );
        options.enable_vpc_endpoints = false;
        let without = gateway(&options);
        assert!(without.endpoints.is_empty());
        assert!(without.group(&id("vpc-endpoints")).is_none());
    }

    #[test]
    fn gateway_time_series_live_in_postgres_unless_timestream_is_chosen() {
        use crate::eval::Evaluator;
        let mut options = ProfileOptions::for_profile(Profile::Gateway);
        options.database_port = 6432;
        let postgres = gateway(&options);
        postgres.validate().unwrap();
        let evaluator = Evaluator::new(&postgres);
        let allowed = |from: &str| {
            evaluator
                .evaluate_names(from, "database", Protocol::Tcp, 6432)
                .unwrap()
                .is_allowed()
        };
        assert!(allowed("mcp-server"));
        for other in ["internet", "vpc-link", "vpc", "vpc-endpoints"] {
            assert!(!allowed(other), "{other}");
        }
        let database = postgres.group(&id("database")).unwrap();
        assert!(database.ingress.iter().all(|r| r.beyond_seed.is_some()));

        options.gateway_ts_store = GatewayTsStore::Timestream;
        let timestream = gateway(&options);
        timestream.validate().unwrap();
        assert!(timestream.tier("database").is_err());
        assert!(timestream.group(&id("database")).is_none());
    }
}
