//! `apply` and `read_live` end to end against a moto server. Every assertion here also holds
//! against EC2 itself: groups are read with `DescribeSecurityGroups` (which keeps descriptions
//! on group references, unlike moto's `DescribeSecurityGroupRules`), and nothing depends on
//! moto letting a referenced group be deleted.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, UserIdGroupPair};
use membrain_netsec::aws_json::{AwsSecurityGroup, GROUP_TAG, live_topology};
use membrain_netsec::eval::Direction;
use membrain_netsec::profiles::{Profile, ProfileOptions};
use membrain_netsec::verify::{Severity, verify};
use membrain_netsec::{Cidr, GroupId, Peer, Rule, Topology};
use membrain_netsec_aws::testing::MotoServer;
use membrain_netsec_aws::{
    ApplyOptions, ApplyReport, AwsTarget, Change, NetsecAwsError, TOPOLOGY_TAG, apply,
    connect_with_credentials, prefix_list_ids, read_live,
};

// ---- helpers ----

fn target(endpoint: &str) -> AwsTarget {
    AwsTarget {
        endpoint_url: Some(endpoint.to_owned()),
        region: MotoServer::REGION.to_owned(),
        vpc_id: None,
    }
}

fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "membrain-tests")
}

async fn client(moto: &MotoServer) -> Client {
    connect_with_credentials(&target(&moto.endpoint), credentials())
        .await
        .expect("connect to moto")
}

fn plan(profile: Profile) -> Topology {
    profile.default_topology()
}

fn alb_with_mcp_port(port: u16) -> Topology {
    let mut options = ProfileOptions::for_profile(Profile::Alb);
    options.mcp_port = port;
    Profile::Alb.topology(&options)
}

fn with_vpc(vpc_id: &str) -> ApplyOptions {
    ApplyOptions {
        vpc_id: Some(vpc_id.to_owned()),
        dry_run: false,
    }
}

fn vpc_filter(vpc_id: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc_id).build()
}

/// A VPC that is not Membrain's, as an operator would have made it: two private subnets in two
/// zones (where the `alb` profile's interface endpoints go) and the main route table.
async fn existing_vpc(client: &Client) -> String {
    let output = client
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("create a VPC");
    let vpc_id = output
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("a VPC id")
        .to_owned();
    for (cidr, zone) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        client
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(cidr)
            .availability_zone(zone)
            .send()
            .await
            .expect("create a subnet");
    }
    vpc_id
}

async fn apply_ok(client: &Client, plan: &Topology, options: &ApplyOptions) -> ApplyReport {
    match apply(client, plan, options).await {
        Ok(report) => report,
        Err(error) => panic!("apply failed: {error}"),
    }
}

/// The live groups verify against the plan with no violation, and no drift: no broad egress,
/// no rule missing, no rule the plan lacks.
async fn assert_live_matches(client: &Client, plan: &Topology, vpc_id: &str) {
    let live = read_live(client, Some(vpc_id))
        .await
        .expect("read live groups");
    let mut topology = live_topology(plan, &live).expect("live groups convert");
    let prefix_lists = prefix_list_ids(client, &plan.service_prefix_lists())
        .await
        .expect("read prefix lists");
    topology.name_prefix_lists(&prefix_lists);
    let report = verify(plan, &topology);
    assert_eq!(report.violations(), 0, "{:#?}", report);
    let drift: Vec<_> = report
        .findings
        .iter()
        .filter(|f| {
            f.severity == Severity::Violation
                || matches!(
                    f.code,
                    "broad-egress" | "missing-rule" | "unplanned-rule" | "missing-group"
                )
        })
        .collect();
    assert!(drift.is_empty(), "{drift:#?}");
}

/// The changes a real EC2 would report. moto drops the description of a rule that names a
/// prefix list (EC2 keeps it), so under moto every apply "restores" those descriptions again.
fn changes_ec2_would_report(report: &ApplyReport) -> Vec<&Change> {
    report
        .changes
        .iter()
        .filter(|c| {
            !matches!(c, Change::UpdateRuleDescription { rule, old_description, .. }
                if matches!(rule.peer, Peer::PrefixList(_)) && old_description.is_empty())
        })
        .collect()
}

fn count(report: &ApplyReport, kind: fn(&Change) -> bool) -> usize {
    report.changes.iter().filter(|c| kind(c)).count()
}

fn live_group<'a>(live: &'a [AwsSecurityGroup], id: &str) -> &'a AwsSecurityGroup {
    live.iter()
        .find(|g| g.tag(GROUP_TAG) == Some(id))
        .unwrap_or_else(|| panic!("no live group tagged {id}"))
}

/// A change with its ids left out: what a dry run predicts must match what a real run does.
fn shape(change: &Change) -> serde_json::Value {
    let mut value = serde_json::to_value(change).expect("a change serializes");
    if let Some(fields) = value.as_object_mut() {
        fields.retain(|key, _| !key.ends_with("_id") && key != "groups");
    }
    value
}

fn tcp_from_cidr(port: i32, cidr: &str, description: &str) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr)
                .description(description)
                .build(),
        )
        .build()
}

// ---- tests ----

#[tokio::test]
async fn the_gateway_profile_is_created_verified_and_then_left_alone() {
    let moto = MotoServer::start();
    let client = client(&moto).await;
    let plan = plan(Profile::Gateway);

    let report = apply_ok(&client, &plan, &ApplyOptions::default()).await;

    assert!(!report.dry_run);
    assert_eq!(count(&report, |c| matches!(c, Change::CreateVpc { .. })), 1);
    assert_eq!(
        count(&report, |c| matches!(c, Change::CreateSubnet { .. })),
        2
    );
    assert_eq!(
        count(&report, |c| matches!(c, Change::CreateGroup { .. })),
        5
    );
    assert_eq!(
        count(&report, |c| matches!(c, Change::CreateEndpoint { .. })),
        2
    );
    // The default allow-all egress goes where the plan is tighter, and stays on the MCP server,
    // whose plan has the same rule.
    let revoked: BTreeSet<&str> = report
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::RemoveRule {
                group, direction, ..
            } if *direction == Direction::Egress => Some(group.0.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        revoked,
        BTreeSet::from(["database", "nlb", "vpc-endpoints", "vpc-link"])
    );
    assert_live_matches(&client, &plan, &report.vpc_id).await;

    // The interface endpoints: one per service, private DNS, the endpoints group, both subnets.
    let endpoints = client
        .describe_vpc_endpoints()
        .filters(vpc_filter(&report.vpc_id))
        .send()
        .await
        .expect("describe endpoints");
    let endpoints = endpoints.vpc_endpoints();
    let services: BTreeSet<&str> = endpoints.iter().filter_map(|e| e.service_name()).collect();
    assert_eq!(
        services,
        BTreeSet::from([
            "com.amazonaws.us-east-1.logs",
            "com.amazonaws.us-east-1.secretsmanager",
        ])
    );
    let endpoints_group = &report.groups[&GroupId("vpc-endpoints".into())];
    for endpoint in endpoints {
        assert_eq!(endpoint.private_dns_enabled(), Some(true), "{endpoint:?}");
        let groups: Vec<&str> = endpoint
            .groups()
            .iter()
            .filter_map(|g| g.group_id())
            .collect();
        assert_eq!(groups, [endpoints_group.as_str()]);
        assert_eq!(endpoint.subnet_ids().len(), 2);
    }

    // Applying again finds everything in place: the same VPC, the same groups, no change.
    let again = apply_ok(&client, &plan, &ApplyOptions::default()).await;
    assert!(again.is_unchanged(), "{:#?}", again.changes);
    assert_eq!(again.vpc_id, report.vpc_id);
    assert_eq!(again.groups, report.groups);
}

#[tokio::test]
async fn the_alb_profile_goes_into_an_existing_vpc_with_exact_egress() {
    let moto = MotoServer::start();
    let client = client(&moto).await;
    let plan = plan(Profile::Alb);

    // The alb plan does not create its VPC: without one, nothing happens.
    let error = apply(&client, &plan, &ApplyOptions::default())
        .await
        .expect_err("no VPC named");
    assert!(
        matches!(error.root(), NetsecAwsError::VpcRequired),
        "{error}"
    );
    assert!(error.changes_made().is_empty());
    assert!(
        error.to_string().contains("no changes were made"),
        "{error}"
    );

    let vpc_id = existing_vpc(&client).await;
    let report = apply_ok(&client, &plan, &with_vpc(&vpc_id)).await;
    assert_eq!(report.vpc_id, vpc_id);
    assert_eq!(
        count(&report, |c| matches!(c, Change::CreateGroup { .. })),
        6
    );
    // The tasks' AWS services: four interface endpoints, and S3 in the main route table.
    assert_eq!(
        count(&report, |c| matches!(c, Change::CreateEndpoint { .. })),
        4
    );
    let main_route_table = client
        .describe_route_tables()
        .filters(vpc_filter(&vpc_id))
        .send()
        .await
        .expect("describe route tables")
        .route_tables()[0]
        .route_table_id()
        .expect("a route table id")
        .to_owned();
    let gateways: Vec<&Change> = report
        .changes
        .iter()
        .filter(|c| matches!(c, Change::CreateGatewayEndpoint { .. }))
        .collect();
    assert!(
        matches!(gateways.as_slice(), [Change::CreateGatewayEndpoint { service_name, route_tables, .. }]
            if service_name == "com.amazonaws.us-east-1.s3" && *route_tables == [main_route_table.clone()]),
        "{gateways:#?}"
    );
    // Membrain adds no subnets to a VPC it does not own.
    assert_eq!(
        count(&report, |c| matches!(
            c,
            Change::CreateVpc { .. } | Change::CreateSubnet { .. }
        )),
        0
    );
    assert_live_matches(&client, &plan, &vpc_id).await;

    // Seed 000's promise, kept: the MCP tasks may only reach the API ALB, the database nothing.
    let live = read_live(&client, Some(&vpc_id)).await.expect("read live");
    let mcp_ecs = live_group(&live, "mcp-ecs");
    let api_alb_id = &report.groups[&GroupId("api-alb".into())];
    let egress: Vec<(Option<i64>, &str, Option<&str>)> = mcp_ecs
        .ip_permissions_egress
        .iter()
        .flat_map(|p| {
            p.user_id_group_pairs
                .iter()
                .map(move |g| (p.from_port, g.group_id.as_str(), g.description.as_deref()))
        })
        .collect();
    // The API ALB on 80 and 443, and the endpoints' group on 443.
    assert_eq!(egress.len(), 3, "{:?}", mcp_ecs.ip_permissions_egress);
    assert!(egress.contains(&(
        Some(443),
        api_alb_id.as_str(),
        Some("Allow HTTPS to API ALB")
    )));
    assert!(
        mcp_ecs
            .ip_permissions_egress
            .iter()
            .all(|p| p.ip_ranges.is_empty())
    );
    // S3 through its prefix list, by the id this region gives it.
    let s3 = &prefix_list_ids(&client, &["s3"])
        .await
        .expect("prefix lists")["s3"];
    let lists: Vec<&str> = mcp_ecs
        .ip_permissions_egress
        .iter()
        .flat_map(|p| p.prefix_list_ids.iter().map(|l| l.prefix_list_id.as_str()))
        .collect();
    assert_eq!(lists, [s3.as_str()]);
    assert!(
        live_group(&live, "database")
            .ip_permissions_egress
            .is_empty()
    );
    assert_eq!(
        live_group(&live, "mcp-alb").description,
        plan.groups[0].description
    );

    let again = apply_ok(&client, &plan, &with_vpc(&vpc_id)).await;
    assert!(
        changes_ec2_would_report(&again).is_empty(),
        "{:#?}",
        again.changes
    );
}

#[tokio::test]
async fn a_reapply_removes_only_rules_membrain_owns() {
    let moto = MotoServer::start();
    let client = client(&moto).await;
    let plan = plan(Profile::Alb);
    let vpc_id = existing_vpc(&client).await;
    let first = apply_ok(&client, &plan, &with_vpc(&vpc_id)).await;
    let mcp_ecs_id = first.groups[&GroupId("mcp-ecs".into())].clone();

    // Someone else's group, with rules of its own (one naming a Membrain group), and a rule
    // added by hand to a Membrain group.
    let foreign_id = client
        .create_security_group()
        .group_name("bastion-sg")
        .description("Not Membrain's")
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("create a foreign group")
        .group_id()
        .expect("an id")
        .to_owned();
    client
        .authorize_security_group_ingress()
        .group_id(&foreign_id)
        .ip_permissions(tcp_from_cidr(22, "0.0.0.0/0", "ssh from anywhere"))
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(9000)
                .to_port(9000)
                .user_id_group_pairs(
                    UserIdGroupPair::builder()
                        .group_id(&mcp_ecs_id)
                        .description("from the MCP tasks")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("add foreign rules");
    client
        .authorize_security_group_ingress()
        .group_id(&mcp_ecs_id)
        .ip_permissions(tcp_from_cidr(22, "10.0.0.0/8", "added by hand"))
        .send()
        .await
        .expect("add a rule to an owned group");
    let live_before = read_live(&client, Some(&vpc_id)).await.expect("read live");
    let foreign_before = live_before
        .iter()
        .find(|g| g.group_id == foreign_id)
        .expect("the foreign group")
        .clone();

    let report = apply_ok(&client, &plan, &with_vpc(&vpc_id)).await;

    let expected = Change::RemoveRule {
        group: GroupId("mcp-ecs".into()),
        group_id: mcp_ecs_id.clone(),
        direction: Direction::Ingress,
        rule: Rule::tcp(
            22,
            Peer::Cidr(Cidr::parse("test", "10.0.0.0/8").expect("a cidr")),
            "added by hand",
        ),
    };
    assert_eq!(changes_ec2_would_report(&report), [&expected]);
    let live_after = read_live(&client, Some(&vpc_id)).await.expect("read live");
    let foreign_after = live_after
        .iter()
        .find(|g| g.group_id == foreign_id)
        .expect("the foreign group is still there");
    assert_eq!(
        foreign_after, &foreign_before,
        "the foreign group was changed"
    );
    assert_eq!(foreign_after.ip_permissions.len(), 2);
    assert_live_matches(&client, &plan, &vpc_id).await;
}

#[tokio::test]
async fn a_changed_plan_is_reconciled_adding_before_removing() {
    let moto = MotoServer::start();
    let client = client(&moto).await;
    let vpc_id = existing_vpc(&client).await;
    let first = apply_ok(&client, &alb_with_mcp_port(8100), &with_vpc(&vpc_id)).await;
    let mcp_alb_id = first.groups[&GroupId("mcp-alb".into())].clone();

    // A new MCP port, a reworded description, and a Membrain tag removed by hand.
    let mut plan = alb_with_mcp_port(9100);
    plan.groups[0].ingress[1].description = "HTTPS from anywhere".into();
    client
        .delete_tags()
        .resources(&mcp_alb_id)
        .tags(aws_sdk_ec2::types::Tag::builder().key("Name").build())
        .send()
        .await
        .expect("remove a tag");

    let report = apply_ok(&client, &plan, &with_vpc(&vpc_id)).await;

    let summary: Vec<String> = changes_ec2_would_report(&report)
        .into_iter()
        .map(|c| match c {
            Change::AddRule { group, rule, .. } => format!("add {group} {}", rule.port_label()),
            Change::RemoveRule { group, rule, .. } => {
                format!("remove {group} {}", rule.port_label())
            }
            Change::UpdateRuleDescription { group, rule, .. } => {
                format!("describe {group} {}", rule.port_label())
            }
            Change::TagGroup { group, tags, .. } => format!("tag {group} {tags:?}"),
            other => format!("{other}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            r#"tag mcp-alb [("Name", "membrain-mcp-alb-sg")]"#,
            "add mcp-ecs 9100",
            "describe mcp-alb 443",
            "remove mcp-ecs 8100",
        ]
    );
    assert_live_matches(&client, &plan, &vpc_id).await;
    let live = read_live(&client, Some(&vpc_id)).await.expect("read live");
    let mcp_alb = live_group(&live, "mcp-alb");
    assert_eq!(mcp_alb.tag("Name"), Some("membrain-mcp-alb-sg"));
    let https = mcp_alb
        .ip_permissions
        .iter()
        .find(|p| p.from_port == Some(443))
        .expect("the HTTPS rule");
    assert_eq!(
        https.ip_ranges[0].description.as_deref(),
        Some("HTTPS from anywhere")
    );

    // The report is the CLI's --json output.
    let json = serde_json::to_value(&report).expect("the report serializes");
    assert_eq!(json["changes"][1]["change"], "add_rule");
    assert_eq!(json["changes"][1]["direction"], "ingress");
    assert_eq!(json["groups"]["mcp-alb"], mcp_alb_id.as_str());
}

#[tokio::test]
async fn a_dry_run_predicts_the_changes_and_makes_none() {
    let moto = MotoServer::start();
    let client = client(&moto).await;
    let plan = plan(Profile::Gateway);
    let dry = ApplyOptions {
        vpc_id: None,
        dry_run: true,
    };

    let predicted = apply_ok(&client, &plan, &dry).await;
    assert!(predicted.dry_run);
    assert!(!predicted.is_unchanged());

    // Nothing exists: no VPC with Membrain's tags, no Membrain group, no endpoint.
    let vpcs = client.describe_vpcs().send().await.expect("describe VPCs");
    assert!(
        vpcs.vpcs()
            .iter()
            .all(|v| v.tags().iter().all(|t| t.key() != Some(TOPOLOGY_TAG))),
        "{:?}",
        vpcs.vpcs()
    );
    let groups = read_live(&client, None).await.expect("read live");
    assert!(
        groups.iter().all(|g| g.tag(GROUP_TAG).is_none()),
        "{groups:?}"
    );
    let endpoints = client
        .describe_vpc_endpoints()
        .send()
        .await
        .expect("endpoints");
    assert!(endpoints.vpc_endpoints().is_empty());

    // The real run makes exactly the predicted changes, and a dry run then predicts none.
    let applied = apply_ok(&client, &plan, &ApplyOptions::default()).await;
    let shapes = |report: &ApplyReport| report.changes.iter().map(shape).collect::<Vec<_>>();
    assert_eq!(shapes(&predicted), shapes(&applied));
    let after = apply_ok(&client, &plan, &dry).await;
    assert!(after.is_unchanged(), "{:#?}", after.changes);

    // A dry run over drift reports the fix and leaves the drift in place.
    let link_id = &applied.groups[&GroupId("vpc-link".into())];
    client
        .authorize_security_group_ingress()
        .group_id(link_id)
        .ip_permissions(tcp_from_cidr(443, "0.0.0.0/0", "drift"))
        .send()
        .await
        .expect("add drift");
    let predicted = apply_ok(
        &client,
        &plan,
        &ApplyOptions {
            vpc_id: Some(applied.vpc_id.clone()),
            dry_run: true,
        },
    )
    .await;
    assert_eq!(predicted.changes.len(), 1, "{:#?}", predicted.changes);
    assert!(
        matches!(&predicted.changes[0], Change::RemoveRule { group, .. } if group.0 == "vpc-link")
    );
    let live = read_live(&client, Some(&applied.vpc_id))
        .await
        .expect("read live");
    assert_eq!(live_group(&live, "vpc-link").ip_permissions.len(), 1);
}

#[tokio::test]
async fn a_failure_part_way_says_what_was_already_done() {
    let moto = MotoServer::start();
    let client = client(&moto).await;
    let vpc_id = existing_vpc(&client).await;
    // 62 inbound rules on the database group: over EC2's default quota of 60 per direction, so
    // the last group's rules fail after the others are in place.
    let mut plan = plan(Profile::Alb);
    let database = plan
        .groups
        .iter_mut()
        .find(|g| g.id.0 == "database")
        .expect("the database group");
    for port in 6000..6061 {
        database.ingress.push(Rule::tcp(
            port,
            Peer::Group(GroupId("api-ecs".into())),
            "too many",
        ));
    }

    let error = apply(&client, &plan, &with_vpc(&vpc_id))
        .await
        .expect_err("the 61st rule is refused");

    assert!(
        matches!(
            error.root(),
            NetsecAwsError::Call {
                operation: "AuthorizeSecurityGroupIngress",
                ..
            }
        ),
        "{error}"
    );
    let done = error.changes_made();
    let created = done
        .iter()
        .filter(|c| matches!(c, Change::CreateGroup { .. }))
        .count();
    assert_eq!(created, 6);
    let database_rules = done
        .iter()
        .filter(|c| matches!(c, Change::AddRule { group, .. } if group.0 == "database"))
        .count();
    assert_eq!(database_rules, 60);
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "{} change(s) were made before the failure",
            done.len()
        )),
        "{message}"
    );
    assert!(message.contains("create group database"), "{message}");

    // The fixed plan finishes the job and removes what the broken one left behind.
    let fixed = self::plan(Profile::Alb);
    let report = apply_ok(&client, &fixed, &with_vpc(&vpc_id)).await;
    // The 59 extra database rules that got in, and the default egress of the five groups
    // whose plan is tighter (the failure came before any revocation).
    let removed: Vec<(&str, Direction)> = report
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::RemoveRule {
                group, direction, ..
            } => Some((group.0.as_str(), *direction)),
            _ => None,
        })
        .collect();
    let database_removed = removed
        .iter()
        .filter(|r| **r == ("database", Direction::Ingress))
        .count();
    assert_eq!(database_removed, 59, "{removed:?}");
    assert_eq!(removed.len(), 59 + 5, "{removed:?}");
    assert_live_matches(&client, &fixed, &vpc_id).await;
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_fast_and_is_named() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let error = connect_with_credentials(&target(&endpoint), credentials())
        .await
        .expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, NetsecAwsError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&endpoint), "{error}");

    // An endpoint that goes away after connecting: apply fails fast and changes nothing.
    let moto = MotoServer::start();
    let client = client(&moto).await;
    drop(moto);
    let started = Instant::now();
    let error = apply(&client, &plan(Profile::Gateway), &ApplyOptions::default())
        .await
        .expect_err("moto is gone");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(error.changes_made().is_empty());
    assert!(
        error.to_string().contains("no changes were made"),
        "{error}"
    );
}
