//! The rendered artifacts under the real tools: the AWS CLI script runs (twice) against a moto
//! server and the groups it leaves verify clean; the CloudFormation templates pass `cfn-lint` and
//! `checkov`; the Terraform passes `checkov`; and `deploy/` holds exactly what `render` produces.
//!
//! Regenerate `deploy/` after a change to a renderer or a profile with
//! `MEMBRAIN_UPDATE_DEPLOY=1 cargo test -p membrain-netsec-aws --test render_tools`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use membrain_netsec::aws_json::{live_topology, parse_describe};
use membrain_netsec::awscli::prefix_list_variable;
use membrain_netsec::profiles::{GatewayTsStore, Profile, ProfileOptions};
use membrain_netsec::render::{Format, StackOptions, render};
use membrain_netsec::verify::{Severity, verify};
use membrain_netsec::{EndpointKind, Topology};
use membrain_netsec_aws::testing::{MotoServer, tool, tool_path};

const PROFILES: [Profile; 2] = [Profile::Alb, Profile::Gateway];

fn topology(profile: Profile) -> Topology {
    profile.default_topology()
}

fn rendered(profile: Profile, format: Format) -> String {
    let topology = topology(profile);
    render(&topology, format, &StackOptions::for_topology(&topology))
}

/// Runs `command`, failing the test with its output unless it succeeds; returns stdout.
fn run(command: &mut Command) -> String {
    let output = command.output().expect("the command starts");
    assert_success(&format!("{command:?}"), &output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `aws …` against the moto server.
fn aws(moto: &MotoServer, args: &[&str]) -> String {
    run(tool("aws")
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .args(args))
}

/// `bash script` with the tools' safe AWS environment, the `aws` of the tool folder first on
/// `PATH`, and `AWS_ENDPOINT_URL` pointing at moto (awscli 1.x honours it for every service).
fn bash_against_moto(moto: &MotoServer, script: &Path, extra_env: &[(&str, &str)]) -> String {
    let mut command = Command::new("bash");
    for (key, value) in tool("aws").get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let tools = tool_path("aws")
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![tools];
    paths.extend(std::env::split_paths(&path));
    command
        .env("PATH", std::env::join_paths(paths).expect("a valid PATH"))
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .envs(extra_env.iter().copied())
        .arg(script);
    run(&mut command)
}

/// The `NAME=value` lines the script prints last.
fn printed_ids(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("membrain-render-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch folder");
    dir
}

/// Runs the profile's script twice against a fresh moto server and checks what it leaves.
fn check_aws_cli_script(profile: Profile) {
    let plan = topology(profile);
    let moto = MotoServer::start();
    let dir = scratch_dir(&format!("aws-cli-{}", profile.name()));
    let script = dir.join(Format::AwsCli.file_name());
    std::fs::write(
        &script,
        render(&plan, Format::AwsCli, &StackOptions::default()),
    )
    .expect("write the script");

    // The alb plan uses an existing VPC (VPC_ID); the gateway plan creates its own.
    let vpc_id = (!plan.vpc.create).then(|| {
        let cidr = plan.vpc.cidr.to_string();
        let created = aws(
            &moto,
            &[
                "ec2",
                "create-vpc",
                "--cidr-block",
                &cidr,
                "--query",
                "Vpc.VpcId",
                "--output",
                "text",
            ],
        );
        created.trim().to_owned()
    });
    let mut env = Vec::new();
    if let Some(id) = &vpc_id {
        env.push(("VPC_ID", id.as_str()));
    }
    // An existing VPC brings the private subnets its interface endpoints go in.
    let subnets: Vec<String> = match &vpc_id {
        Some(id) if plan.interface_endpoints().next().is_some() => ["10.0.1.0/24", "10.0.2.0/24"]
            .iter()
            .zip(["us-east-1a", "us-east-1b"])
            .map(|(cidr, zone)| {
                let args = [
                    "ec2",
                    "create-subnet",
                    "--vpc-id",
                    id,
                    "--cidr-block",
                    cidr,
                    "--availability-zone",
                    zone,
                    "--query",
                    "Subnet.SubnetId",
                    "--output",
                    "text",
                ];
                aws(&moto, &args).trim().to_owned()
            })
            .collect(),
        _ => Vec::new(),
    };
    let subnet_ids = subnets.join(",");
    if !subnets.is_empty() {
        env.push(("PRIVATE_SUBNET_IDS", subnet_ids.as_str()));
    }
    // A created VPC's subnets go in the zones named by id: two that are not the first two.
    let zone_ids = aws(
        &moto,
        &[
            "ec2",
            "describe-availability-zones",
            "--query",
            "AvailabilityZones[1:3].ZoneId",
            "--output",
            "text",
        ],
    )
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(",");
    if vpc_id.is_none() {
        env.push(("ZONE_IDS", zone_ids.as_str()));
    }

    let first = printed_ids(&bash_against_moto(&moto, &script, &env));
    let second = printed_ids(&bash_against_moto(&moto, &script, &env));
    assert_eq!(first, second, "a second run must find, not create");
    let vpc = first
        .get("VPC_ID")
        .expect("the script prints VPC_ID")
        .clone();
    assert!(vpc.starts_with("vpc-"), "{first:?}");
    if let Some(id) = &vpc_id {
        assert_eq!(&vpc, id);
    } else {
        let zones = aws(
            &moto,
            &[
                "ec2",
                "describe-subnets",
                "--filters",
                &format!("Name=vpc-id,Values={vpc}"),
                "--query",
                "Subnets[].AvailabilityZoneId",
                "--output",
                "text",
            ],
        );
        let mut zones: Vec<&str> = zones.split_whitespace().collect();
        zones.sort_unstable();
        let mut wanted: Vec<&str> = zone_ids.split(',').collect();
        wanted.sort_unstable();
        assert_eq!(zones, wanted, "the subnets are in the zones ZONE_IDS names");
    }
    for group in &plan.groups {
        let id = first.get(&group.id.shell_variable()).map(String::as_str);
        assert!(
            id.is_some_and(|id| id.starts_with("sg-")),
            "{}: {first:?}",
            group.id
        );
    }

    let described = aws(
        &moto,
        &[
            "ec2",
            "describe-security-groups",
            "--filters",
            &format!("Name=vpc-id,Values={vpc}"),
            "--output",
            "json",
        ],
    );
    let live_groups = parse_describe(&described).expect("describe-security-groups JSON");
    // The planned groups plus the VPC's default group; nothing created twice.
    assert_eq!(live_groups.security_groups.len(), plan.groups.len() + 1);
    for group in &live_groups.security_groups {
        if group.group_name == "default" {
            continue;
        }
        for permission in group
            .ip_permissions
            .iter()
            .chain(&group.ip_permissions_egress)
        {
            let descriptions = permission
                .ip_ranges
                .iter()
                .map(|r| &r.description)
                .chain(permission.ipv6_ranges.iter().map(|r| &r.description))
                .chain(
                    permission
                        .user_id_group_pairs
                        .iter()
                        .map(|p| &p.description),
                );
            for description in descriptions {
                assert!(
                    description.as_deref().is_some_and(|d| !d.is_empty()),
                    "{}: a rule without a description: {permission:?}",
                    group.group_name
                );
            }
        }
    }
    let mut live = live_topology(&plan, &live_groups.security_groups).expect("live topology");
    // The prefix lists the script looked up (and printed) read back as the plan's services.
    let prefix_lists: BTreeMap<String, String> = plan
        .service_prefix_lists()
        .into_iter()
        .map(|service| {
            let id = first
                .get(&prefix_list_variable(service))
                .unwrap_or_else(|| panic!("the script prints {service}'s prefix list: {first:?}"));
            (service.to_owned(), id.clone())
        })
        .collect();
    live.name_prefix_lists(&prefix_lists);
    let report = verify(&plan, &live);
    assert_eq!(report.violations(), 0, "{report:#?}");
    let drift: Vec<_> = report
        .findings
        .iter()
        .filter(|f| !(f.code == "missing-description" && names_a_prefix_list(&live, &f.place)))
        .filter(|f| {
            matches!(
                f.code,
                "broad-egress"
                    | "missing-rule"
                    | "unplanned-rule"
                    | "missing-group"
                    | "missing-description"
            ) || f.severity == Severity::Violation
        })
        .collect();
    assert!(
        drift.is_empty(),
        "the live groups differ from the plan: {drift:#?}"
    );

    if !plan.endpoints.is_empty() {
        check_endpoints(&moto, &plan, &vpc, &first);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Whether `place` (`mcp-ecs.egress[3]`) is a rule naming a prefix list: moto drops those rules'
/// descriptions (EC2 keeps them), so under moto they read back without one.
fn names_a_prefix_list(live: &Topology, place: &str) -> bool {
    let Some((group, rule)) = place.split_once('.') else {
        return false;
    };
    let Some(group) = live.groups.iter().find(|g| g.id.0 == group) else {
        return false;
    };
    let index = |prefix: &str| -> Option<usize> {
        rule.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
    };
    let rule = match (index("ingress["), index("egress[")) {
        (Some(i), _) => group.ingress.get(i),
        (_, Some(i)) => group.egress.get(i),
        _ => None,
    };
    rule.is_some_and(|r| {
        matches!(
            r.peer,
            membrain_netsec::Peer::PrefixList(_) | membrain_netsec::Peer::ServicePrefixList(_)
        )
    })
}

fn check_endpoints(moto: &MotoServer, plan: &Topology, vpc: &str, ids: &BTreeMap<String, String>) {
    let endpoints = aws(
        moto,
        &[
            "ec2",
            "describe-vpc-endpoints",
            "--filters",
            &format!("Name=vpc-id,Values={vpc}"),
            "--query",
            "VpcEndpoints[].[ServiceName,VpcEndpointType,PrivateDnsEnabled,Groups[0].GroupId]",
            "--output",
            "text",
        ],
    );
    // moto says a gateway endpoint has private DNS (EC2 says not); it has no DNS names at all.
    let mut found: Vec<String> = endpoints
        .lines()
        .map(
            |line| match line.split('\t').collect::<Vec<_>>().as_slice() {
                [service, "Gateway", _, groups] => format!("{service}\tGateway\t-\t{groups}"),
                _ => line.to_owned(),
            },
        )
        .collect();
    found.sort_unstable();
    if plan.gateway_endpoints().next().is_some() {
        let routed = aws(
            moto,
            &[
                "ec2",
                "describe-vpc-endpoints",
                "--filters",
                &format!("Name=vpc-id,Values={vpc}"),
                "Name=vpc-endpoint-type,Values=Gateway",
                "--query",
                "VpcEndpoints[].RouteTableIds[]",
                "--output",
                "text",
            ],
        );
        assert!(routed.trim().starts_with("rtb-"), "{routed:?}");
    }
    let mut wanted: Vec<String> = plan
        .endpoints
        .iter()
        .map(|e| match e.kind {
            EndpointKind::Interface => {
                let group = ids
                    .get(&e.groups[0].shell_variable())
                    .cloned()
                    .unwrap_or_default();
                format!(
                    "com.amazonaws.{}.{}\tInterface\t{}\t{group}",
                    MotoServer::REGION,
                    e.service,
                    if e.private_dns { "True" } else { "False" }
                )
            }
            EndpointKind::Gateway => format!(
                "com.amazonaws.{}.{}\tGateway\t-\tNone",
                MotoServer::REGION,
                e.service
            ),
        })
        .collect();
    wanted.sort_unstable();
    assert_eq!(found, wanted);
}

#[test]
fn the_alb_script_builds_a_verified_network_on_moto_and_runs_again() {
    check_aws_cli_script(Profile::Alb);
}

#[test]
fn the_gateway_script_builds_its_vpc_and_endpoints_on_moto_and_runs_again() {
    check_aws_cli_script(Profile::Gateway);
}

/// `deploy/` at the root of the workspace.
fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

#[test]
fn deploy_holds_what_render_produces() {
    let update = std::env::var_os("MEMBRAIN_UPDATE_DEPLOY").is_some();
    let mut stale = Vec::new();
    for profile in PROFILES {
        for format in Format::ALL {
            let path = deploy_dir().join(profile.name()).join(format.file_name());
            let wanted = rendered(profile, format);
            if update {
                std::fs::create_dir_all(path.parent().expect("a parent folder"))
                    .expect("create deploy/<profile>");
                std::fs::write(&path, &wanted).expect("write the artifact");
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(wanted.as_str()) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "these files differ from what `membrain network render` produces now: {stale:#?}\n\
         review the change, then regenerate them with\n  \
         MEMBRAIN_UPDATE_DEPLOY=1 cargo test -p membrain-netsec-aws --test render_tools deploy_holds"
    );
}

/// Each profile with its default options, with `create_vpc` flipped, without endpoints, and
/// (gateway) with Timestream as the time-series store.
fn variants() -> Vec<(String, Topology)> {
    let mut out = Vec::new();
    for profile in PROFILES {
        let defaults = ProfileOptions::for_profile(profile);
        let mut flipped = defaults.clone();
        flipped.create_vpc = !defaults.create_vpc;
        let mut no_endpoints = defaults.clone();
        no_endpoints.enable_vpc_endpoints = false;
        let mut variants = vec![
            ("default", defaults.clone()),
            ("flipped-vpc", flipped),
            ("no-endpoints", no_endpoints),
        ];
        if profile == Profile::Gateway {
            let mut timestream = defaults;
            timestream.gateway_ts_store = GatewayTsStore::Timestream;
            variants.push(("timestream", timestream));
        }
        for (label, options) in variants {
            out.push((
                format!("{}-{label}", profile.name()),
                profile.topology(&options),
            ));
        }
    }
    out
}

/// Writes every variant's template (the whole stack, and the network alone) into `dir`.
fn write_templates(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (label, topology) in variants() {
        for (kind, stack) in [
            ("stack", StackOptions::for_topology(&topology)),
            ("network", StackOptions::default()),
        ] {
            let path = dir.join(format!("{label}-{kind}.json"));
            std::fs::write(&path, render(&topology, Format::CloudFormation, &stack))
                .expect("write a template");
            files.push(path);
        }
    }
    files
}

/// Checks checkov's summary: something was checked and nothing failed.
fn assert_checkov_clean(what: &str, output: &Output) {
    let text = String::from_utf8_lossy(&output.stdout);
    let count = |label: &str| -> usize {
        text.lines()
            .filter_map(|line| line.split_once(label))
            .filter_map(|(_, rest)| rest.split(',').next()?.trim().parse::<usize>().ok())
            .sum()
    };
    assert!(
        count("Passed checks:") > 0,
        "{what}: checkov checked nothing:\n{text}"
    );
    assert_eq!(
        count("Failed checks:"),
        0,
        "{what}: checkov findings:\n{text}"
    );
    assert_success(what, output);
}

#[test]
fn cloudformation_templates_pass_cfn_lint() {
    let dir = scratch_dir("cfn-lint");
    let files = write_templates(&dir);
    let output = tool("cfn-lint")
        .args(&files)
        .output()
        .expect("cfn-lint starts");
    // cfn-lint exits non-zero for errors (2), warnings (4) and informational findings (8).
    assert_success("cfn-lint", &output);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cloudformation_templates_pass_checkov() {
    let dir = scratch_dir("checkov-cfn");
    write_templates(&dir);
    let output = tool("checkov")
        .args([
            "--framework",
            "cloudformation",
            "--quiet",
            "--compact",
            "--skip-download",
            "-d",
        ])
        .arg(&dir)
        .output()
        .expect("checkov starts");
    assert_checkov_clean("checkov (cloudformation)", &output);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn terraform_passes_checkov() {
    let root = scratch_dir("checkov-terraform");
    for (label, topology) in variants() {
        // One module per folder: the variants declare the same resources.
        let dir = root.join(label);
        std::fs::create_dir_all(&dir).expect("create a module folder");
        std::fs::write(
            dir.join(Format::Terraform.file_name()),
            render(&topology, Format::Terraform, &StackOptions::default()),
        )
        .expect("write main.tf");
    }
    let output = tool("checkov")
        .args([
            "--framework",
            "terraform",
            "--quiet",
            "--compact",
            "--skip-download",
            "-d",
        ])
        .arg(&root)
        .output()
        .expect("checkov starts");
    assert_checkov_clean("checkov (terraform)", &output);
    let _ = std::fs::remove_dir_all(root);
}

/// `${NAME}` placeholders filled the way `envsubst` would.
fn substitute(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    assert!(!out.contains("${"), "a placeholder is left: {out}");
    out
}

#[test]
fn the_ecs_task_definitions_register_and_say_what_the_services_need() {
    let moto = MotoServer::start();
    let dir = scratch_dir("ecs");
    let values = [
        ("AWS_ACCOUNT_ID", "123456789012"),
        ("AWS_REGION", MotoServer::REGION),
        (
            "MEMBRAIN_IMAGE",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/membrain:0.1.0",
        ),
        ("API_BASE_URL", "http://internal-api.example"),
        ("PUBLIC_HOST_NAME", "mcp.example.com"),
        (
            "DATABASE_URL_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:membrain/db",
        ),
    ];
    for (service, port) in [("mcp", 8100), ("api", 8000)] {
        let source = deploy_dir()
            .join("ecs")
            .join(format!("{service}-task-definition.json"));
        let text = std::fs::read_to_string(&source).expect("read the task definition");
        let path = dir.join(format!("{service}.json"));
        std::fs::write(&path, substitute(&text, &values)).expect("write the task definition");
        // The CLI validates the document against the ECS API model before sending it.
        aws(
            &moto,
            &[
                "ecs",
                "register-task-definition",
                "--cli-input-json",
                &format!("file://{}", path.display()),
            ],
        );
        let described = aws(
            &moto,
            &[
                "ecs",
                "describe-task-definition",
                "--task-definition",
                &format!("membrain-{service}"),
                "--query",
                "taskDefinition.containerDefinitions[0].[portMappings[0].containerPort, logConfiguration.logDriver, healthCheck.command[3], command[0]]",
                "--output",
                "text",
            ],
        );
        assert_eq!(
            described.split_whitespace().collect::<Vec<_>>(),
            [
                port.to_string().as_str(),
                "awslogs",
                &format!("http://127.0.0.1:{port}/health"),
                service
            ]
        );
    }
    let mcp = std::fs::read_to_string(dir.join("mcp.json")).expect("read back");
    for needed in [
        "\"MCP_SERVER_HOST\", \"value\": \"0.0.0.0\"",
        "\"API_BASE_URL\"",
        "\"MEMBRAIN_MCP_ALLOWED_HOSTS\", \"value\": \"mcp.example.com\"",
    ] {
        assert!(mcp.contains(needed), "{needed}");
    }
    let api = std::fs::read_to_string(dir.join("api.json")).expect("read back");
    assert!(
        api.contains(
            "\"name\": \"MEMBRAIN_DATABASE_URL\", \"valueFrom\": \"arn:aws:secretsmanager:"
        )
    );
    let _ = std::fs::remove_dir_all(dir);
}
