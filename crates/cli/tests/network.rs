//! `membrain network` through the real binary: plan tables, JSON and diagrams, verify and
//! diagnose exit codes, exports, and every kind of bad topology file.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use serde_json::{Value, json};
use support::membrain_output;

async fn network(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["network"];
    all.extend_from_slice(args);
    membrain_output(&all, &[]).await
}

#[tokio::test]
async fn plan_prints_the_seeds_tables_and_round_trips_as_json() {
    let (ok, plan, err) = network(&["plan", "--profile", "alb"]).await;
    assert!(ok, "{err}");
    for expected in [
        "MCP ALB Security Group",
        "Allow HTTPS from internet",
        "Custom TCP",
        "8100",
        "Allow HTTP to API ALB",
        "(none: the default allow-all egress is revoked)",
        "api-ecs",
        "database",
        // The rules past the seed's tables, marked and explained.
        "+ HTTPS",
        "com.amazonaws.<region>.s3 (prefix list)",
        "com.amazonaws.<region>.ecr.dkr  interface, private DNS on, groups vpc-endpoints",
        "## Beyond the seed (rules marked +)",
        "Because Fargate tasks pull images from ECR",
        "  + mcp-ecs outbound HTTPS 443 com.amazonaws.<region>.s3 (prefix list)",
        "Because the seed stops at the API ALB",
    ] {
        assert!(plan.contains(expected), "plan lacks {expected:?}:\n{plan}");
    }
    // The seed's own rules carry no mark.
    assert!(!plan.contains("+ All traffic"), "{plan}");
    let (_, gateway, _) = network(&[
        "plan",
        "--profile",
        "gateway",
        "--mcp-port",
        "9090",
        "--vpc-cidr",
        "172.20.0.0/16",
    ])
    .await;
    assert!(
        gateway.contains("9090")
            && gateway.contains("172.20.0.0/16")
            && gateway.contains("Because Timestream for LiveAnalytics is closed")
            && gateway.contains("+ database inbound PostgreSQL 5432")
            && !gateway.contains("timestream.ingest-cell1"),
        "{gateway}"
    );
    let (_, timestream, _) = network(&[
        "plan",
        "--profile",
        "gateway",
        "--gateway-ts-store",
        "timestream",
        "--timestream-cell",
        "2",
    ])
    .await;
    assert!(
        timestream.contains("timestream.ingest-cell2")
            && !timestream.contains("cell1")
            && !timestream.contains("(database)"),
        "{timestream}"
    );
    let (ok, _, refused) = network(&[
        "plan",
        "--profile",
        "gateway",
        "--gateway-ts-store",
        "postgres",
        "--timestream-cell",
        "2",
    ])
    .await;
    assert!(
        !ok && refused.contains("only with --gateway-ts-store timestream"),
        "{refused}"
    );
    let (ok, _, refused) = network(&["plan", "--gateway-ts-store", "timestream"]).await;
    assert!(
        !ok && refused.contains("--gateway-ts-store applies to --profile gateway only"),
        "{refused}"
    );
    let (_, no_endpoints, _) = network(&[
        "plan",
        "--profile",
        "gateway",
        "--enable-vpc-endpoints",
        "false",
    ])
    .await;
    assert!(!no_endpoints.contains("vpc-endpoints"));

    // Issue 16 item 12: the tasks admit the NLB's group alone, unless the seed's VPC rule is
    // chosen, which verify then reports.
    let (ok, plan, err) = network(&["plan", "--profile", "gateway"]).await;
    assert!(ok, "{err}");
    assert!(plan.contains("membrain-nlb-sg"), "{plan}");
    let (ok, report, err) =
        network(&["verify", "--profile", "gateway", "--seed-vpc-ingress"]).await;
    assert!(ok, "{err}");
    assert!(
        report.contains("mcp-server.ingress[1]") && report.contains("cidr-where-group"),
        "{report}"
    );
    let (ok, _, refused) = network(&["plan", "--profile", "alb", "--seed-vpc-ingress"]).await;
    assert!(
        !ok && refused.contains("--seed-vpc-ingress applies to --profile gateway only"),
        "{refused}"
    );

    // The JSON plan is a topology file: edit it, read it back.
    let (_, json_plan, _) = network(&["plan", "--profile", "alb", "--json"]).await;
    let mut topology: Value = serde_json::from_str(&json_plan).unwrap();
    topology["name"] = json!("mine");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.json");
    std::fs::write(&file, topology.to_string()).unwrap();
    let (ok, verified, err) = network(&["verify", "--topology", file.to_str().unwrap()]).await;
    assert!(ok, "{err}");
    assert!(
        verified.contains("Flows of mine") && verified.contains("0 violation(s), 0 warning(s)"),
        "{verified}"
    );
}

#[tokio::test]
async fn plan_draws_mermaid_and_dot_diagrams() {
    let (ok, mermaid, err) = network(&["plan", "--profile", "alb", "--format", "mermaid"]).await;
    assert!(ok, "{err}");
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(
        mermaid.contains("  t0 -->|\"tcp/80, tcp/443\"| t1\n"),
        "{mermaid}"
    );
    let (ok, dot, err) = network(&[
        "plan",
        "--profile",
        "gateway",
        "--mcp-port",
        "9090",
        "--format",
        "dot",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(dot.starts_with("digraph \"gateway\" {"), "{dot}");
    assert!(dot.contains("t1 -> t2 [label=\"tcp/9090\"];"), "{dot}");
    let (ok, _, err) = network(&["plan", "--format", "dot", "--json"]).await;
    assert!(!ok && err.contains("--json"), "{err}");
}

#[tokio::test]
async fn verify_exit_codes_follow_violations_and_strictness() {
    let (ok, report, _) = network(&["verify", "--profile", "gateway"]).await;
    assert!(ok, "lints alone pass");
    assert!(report.contains("cidr-where-group"));
    let (ok, _, err) = network(&["verify", "--profile", "gateway", "--strict"]).await;
    assert!(!ok && err.contains("--strict"), "{err}");
    let (ok, json_report, _) = network(&["verify", "--profile", "alb", "--json"]).await;
    assert!(ok);
    let report: Value = serde_json::from_str(&json_report).unwrap();
    assert_eq!(
        report["flows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "expected")
            .count(),
        11
    );
}

/// What seed 000's script leaves in an account: groups without descriptions on rules, the MCP
/// ECS group's default egress never revoked, and no API tasks or database groups.
fn seed_script_export() -> Value {
    let everything = json!([{"CidrIp": "0.0.0.0/0"}]);
    json!({"SecurityGroups": [
        {"GroupId": "sg-alb", "GroupName": "membrain-mcp-alb-sg", "Description": "Security group for Mem-Brain MCP Application Load Balancer",
         "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": everything},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": everything}],
         "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": everything}]},
        {"GroupId": "sg-ecs", "GroupName": "membrain-mcp-ecs-sg", "Description": "Security group for Mem-Brain MCP ECS tasks",
         "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 8100, "ToPort": 8100, "UserIdGroupPairs": [{"GroupId": "sg-alb"}]}],
         "IpPermissionsEgress": [
            {"IpProtocol": "-1", "IpRanges": everything},
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": "sg-api"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": "sg-api"}]}]},
        {"GroupId": "sg-api", "GroupName": "membrain-api-alb-sg", "Description": "existing",
         "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": "sg-ecs"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": "sg-ecs"}]}],
         "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": everything}]}
    ]})
}

#[tokio::test]
async fn verify_and_diagnose_an_export_of_the_seed_script() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("groups.json");
    std::fs::write(&export, seed_script_export().to_string()).unwrap();
    let export = export.to_str().unwrap();
    let (ok, report, err) = network(&["verify", "--profile", "alb", "--from-json", export]).await;
    assert!(!ok, "missing groups and blocked flows are violations");
    assert!(err.contains("violation"), "{err}");
    for expected in [
        "broad-egress",
        "missing-description",
        "missing-group",
        "VIOLATION",
        "api-ecs -> database",
    ] {
        assert!(
            report.contains(expected),
            "report lacks {expected:?}:\n{report}"
        );
    }
    // The MCP tasks can now reach the database's port anywhere: not in this export (no database
    // group), but the broad egress is named. And the seed's chain up to the API ALB works.
    let (ok, diagnosis, _) = network(&[
        "diagnose",
        "--profile",
        "alb",
        "--from-json",
        export,
        "--from",
        "mcp-ecs",
        "--to",
        "api-alb",
        "--port",
        "443",
    ])
    .await;
    assert!(ok, "{diagnosis}");
    assert!(diagnosis.contains("ALLOWED"));
    let (ok, blocked, err) = network(&[
        "diagnose",
        "--profile",
        "alb",
        "--from-json",
        export,
        "--from",
        "api-alb",
        "--to",
        "api-ecs",
        "--port",
        "8000",
        "--json",
    ])
    .await;
    assert!(!ok && err.contains("expects this flow"), "{err}");
    let blocked: Value = serde_json::from_str(&blocked).unwrap();
    assert_eq!(
        (&blocked["allowed"], &blocked["reachable"]),
        (&json!(false), &json!(false))
    );
    let blocker = &blocked["blockers"][0];
    assert_eq!(
        (&blocker["kind"], &blocker["code"], &blocker["component"]),
        (
            &json!("target_ingress"),
            &json!("ENI_SG_RULES_MISMATCH"),
            &json!("api-ecs")
        ),
        "{blocked}"
    );
    assert!(
        blocker["fix"]["command"]
            .as_str()
            .unwrap()
            .contains("authorize-security-group-ingress"),
        "{blocked}"
    );
}

#[tokio::test]
async fn diagnose_lists_every_blocker_with_its_code_and_fix() {
    // SSH to the public ALB: its group has no rule and it has no listener on 22.
    let (ok, table, err) = network(&[
        "diagnose",
        "--profile",
        "alb",
        "--from",
        "internet",
        "--to",
        "mcp-alb",
        "--port",
        "22",
    ])
    .await;
    assert!(ok, "an unplanned flow that is blocked is no failure: {err}");
    for expected in [
        "BLOCKED",
        "target ingress",
        "ENI_SG_RULES_MISMATCH",
        "missing listener",
        "ELBV2_LISTENERS_MISMATCH",
        "tcp 80, 443 only",
        "1. Missing: an ingress rule on mcp-alb",
        "aws ec2 authorize-security-group-ingress --group-id \"${MCP_ALB_SG_ID}\"",
        "2. missing listener: add a listener on port 22",
    ] {
        assert!(table.contains(expected), "no {expected:?} in\n{table}");
    }
    // The endpoints of the gateway profile on a port they do not serve.
    let (ok, json_text, err) = network(&[
        "diagnose",
        "--profile",
        "gateway",
        "--from",
        "mcp-server",
        "--to",
        "vpc-endpoints",
        "--port",
        "8443",
        "--json",
    ])
    .await;
    assert!(ok, "{err}");
    let diagnosis: Value = serde_json::from_str(&json_text).unwrap();
    let codes: Vec<(&str, &str)> = diagnosis["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["kind"].as_str().unwrap(), b["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("endpoint_group", "ENI_SG_RULES_MISMATCH"),
            ("missing_listener", "VPCE_PORT_MISMATCH")
        ]
    );
}

#[tokio::test]
async fn bad_topologies_and_arguments_name_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let (_, plan, _) = network(&["plan", "--profile", "alb", "--json"]).await;
    let plan: Value = serde_json::from_str(&plan).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let mutate = |edit: &dyn Fn(&mut Value)| {
        let mut copy = plan.clone();
        edit(&mut copy);
        copy.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (
            write("syntax.toml", "name = \"x\"\n[vpc\ncidr = 1\n".into()),
            "line 2",
        ),
        (
            write("syntax.yaml", "name: x\nvpc: [unclosed\n".into()),
            "line",
        ),
        (
            write(
                "unknown-group.json",
                mutate(&|t| t["groups"][1]["ingress"][0]["peer"] = json!({"group": "ghost"})),
            ),
            "groups[1].ingress[0].peer.group: references unknown group \"ghost\"",
        ),
        (
            write(
                "port.json",
                mutate(&|t| {
                    t["groups"][1]["ingress"][0]["ports"] = json!({"from": 70000, "to": 70000})
                }),
            ),
            "70000",
        ),
        (
            write(
                "cidr.json",
                mutate(&|t| t["vpc"]["cidr"] = json!("10.0.0.0/33")),
            ),
            "10.0.0.0/33",
        ),
        (
            write(
                "tier.json",
                mutate(&|t| t["expected"][0]["to"] = json!("moon")),
            ),
            "expected[0].to: unknown tier \"moon\"",
        ),
        (
            write(
                "duplicate.json",
                mutate(&|t| {
                    let rule = t["groups"][0]["ingress"][0].clone();
                    t["groups"][0]["ingress"].as_array_mut().unwrap().push(rule);
                }),
            ),
            "groups[0].ingress[2]: duplicates ingress[0]",
        ),
        (
            write(
                "injection.json",
                mutate(&|t| t["groups"][0]["description"] = json!("x $(touch /tmp/pwned)")),
            ),
            "groups[0].description: \"x $(touch /tmp/pwned)\" holds characters that are not allowed",
        ),
        (write("extension.txt", "x".into()), ".toml, .yaml or .json"),
    ];
    for (path, hint) in cases {
        let (ok, _, err) = network(&["plan", "--topology", &path]).await;
        assert!(!ok, "{path} should be refused");
        assert!(
            err.contains(hint),
            "{path}: {err:?} should mention {hint:?}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let (ok, _, err) = network(&["plan", "--vpc-cidr", "10.0.0.0/99"]).await;
    assert!(!ok && err.contains("--vpc-cidr"), "{err}");
    let (ok, _, err) = network(&[
        "diagnose", "--from", "internet", "--to", "moon", "--port", "80",
    ])
    .await;
    assert!(
        !ok && err.contains("unknown tier \"moon\"") && err.contains("mcp-alb"),
        "{err}"
    );
    let (ok, _, err) = network(&[
        "diagnose", "--from", "internet", "--to", "mcp-alb", "--port", "70000",
    ])
    .await;
    assert!(!ok && err.contains("70000"), "{err}");
    let (ok, _, err) = network(&[
        "diagnose", "--from", "internet", "--to", "mcp-alb", "--port", "0",
    ])
    .await;
    assert!(!ok && err.contains("port 0"), "{err}");
    let (ok, _, err) = network(&["verify", "--from-json", "/nonexistent/groups.json"]).await;
    assert!(!ok && err.contains("/nonexistent/groups.json"), "{err}");
}

/// A live rule naming a prefix list by id matches the plan's S3 prefix list once `--prefix-list`
/// says whose id it is; without it, the flow is blocked (the id could be any list).
#[tokio::test]
async fn an_exports_prefix_list_ids_are_named_by_the_prefix_list_flag() {
    let mut export = seed_script_export();
    export["SecurityGroups"][1]["IpPermissionsEgress"] = json!([{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
        "PrefixListIds": [{"PrefixListId": "pl-0123abcd", "Description": "To S3"}]
    }]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groups.json");
    std::fs::write(&path, export.to_string()).unwrap();
    let path = path.to_str().unwrap();
    let diagnose = |extra: &'static [&'static str]| {
        let mut args = vec![
            "diagnose",
            "--profile",
            "alb",
            "--from-json",
            path,
            "--from",
            "mcp-ecs",
            "--to",
            "s3",
            "--port",
            "443",
        ];
        args.extend_from_slice(extra);
        async move { network(&args).await }
    };
    let (ok, named, err) = diagnose(&["--prefix-list", "s3=pl-0123abcd"]).await;
    assert!(ok && named.contains("ALLOWED"), "{named}{err}");
    let (ok, _, err) = diagnose(&[]).await;
    assert!(!ok && err.contains("expects this flow"), "{err}");
    for (flag, says) in [
        ("s3", "SERVICE=ID"),
        ("s3=pl-XYZ", "prefix list id"),
        ("S 3=pl-0123abcd", "AWS service name"),
    ] {
        let (ok, _, err) = network(&[
            "verify",
            "--profile",
            "alb",
            "--from-json",
            path,
            "--prefix-list",
            flag,
        ])
        .await;
        assert!(!ok && err.contains(says), "{flag}: {err}");
    }
    let (ok, _, err) = network(&["verify", "--prefix-list", "s3=pl-0123abcd"]).await;
    assert!(!ok && err.contains("--from-json"), "{err}");
}

/// `membrain network` commands with the AWS credentials moto accepts.
async fn network_aws(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["network"];
    all.extend_from_slice(args);
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    membrain_output(&all, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_verify_live_against_moto() {
    let moto = membrain_netsec_aws::testing::MotoServer::start();
    let endpoint = moto.endpoint.as_str();
    let (ok, applied, err) = network_aws(&[
        "apply",
        "--profile",
        "gateway",
        "--endpoint-url",
        endpoint,
        "--json",
    ])
    .await;
    assert!(ok, "{err}");
    let applied: Value = serde_json::from_str(&applied).unwrap();
    let vpc_id = applied["vpc_id"].as_str().unwrap().to_owned();
    assert!(vpc_id.starts_with("vpc-"), "{applied}");
    assert_eq!(applied["groups"].as_object().unwrap().len(), 5);
    assert!(!applied["changes"].as_array().unwrap().is_empty());

    // Live groups verify clean (the seed's own CIDR rules remain lints, not violations).
    let (ok, report, err) = network_aws(&[
        "verify",
        "--profile",
        "gateway",
        "--endpoint-url",
        endpoint,
        "--vpc-id",
        &vpc_id,
    ])
    .await;
    assert!(ok, "{err}\n{report}");
    assert!(report.contains("0 violation(s)"), "{report}");
    assert!(
        !report.contains("broad-egress"),
        "the default egress was revoked where the plan is tighter"
    );

    // Applying again changes nothing.
    let (ok, again, err) =
        network_aws(&["apply", "--profile", "gateway", "--endpoint-url", endpoint]).await;
    assert!(ok, "{err}");
    assert!(again.contains("nothing to do"), "{again}");

    // Diagnose against live groups.
    let (ok, diagnosis, err) = network_aws(&[
        "diagnose",
        "--profile",
        "gateway",
        "--endpoint-url",
        endpoint,
        "--vpc-id",
        &vpc_id,
        "--from",
        "nlb",
        "--to",
        "mcp-server",
        "--port",
        "8080",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(diagnosis.contains("ALLOWED"), "{diagnosis}");

    // A dry run on a changed plan says what it would do and does nothing.
    let (ok, dry, err) = network_aws(&[
        "apply",
        "--profile",
        "gateway",
        "--mcp-port",
        "9090",
        "--endpoint-url",
        endpoint,
        "--dry-run",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(
        dry.contains("would change") && dry.contains("9090"),
        "{dry}"
    );
    let (ok, _, _) = network_aws(&[
        "verify",
        "--profile",
        "gateway",
        "--endpoint-url",
        endpoint,
        "--vpc-id",
        &vpc_id,
    ])
    .await;
    assert!(ok, "the dry run changed nothing");
}

#[tokio::test]
async fn apply_against_an_unreachable_endpoint_fails_fast_and_names_it() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{closed}");
    let started = std::time::Instant::now();
    let (ok, _, err) =
        network_aws(&["apply", "--profile", "gateway", "--endpoint-url", &endpoint]).await;
    assert!(!ok);
    assert!(err.contains(&endpoint), "the endpoint is named: {err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn render_writes_each_format() {
    let dir = tempfile::tempdir().unwrap();
    for (format, needle) in [
        ("aws-cli", "aws ec2 create-security-group"),
        ("cloudformation", "AWS::EC2::SecurityGroup"),
        ("terraform", "aws_security_group"),
    ] {
        let file = dir.path().join(format);
        let (ok, _, err) = network(&[
            "render",
            "--profile",
            "alb",
            "--format",
            format,
            "-o",
            file.to_str().unwrap(),
        ])
        .await;
        assert!(ok, "{format}: {err}");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(needle), "{format} lacks {needle:?}");
    }
    let (ok, _, err) = network(&["render", "--format", "pdf"]).await;
    assert!(!ok && err.contains("aws-cli"), "{err}");
}
