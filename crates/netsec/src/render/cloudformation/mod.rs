//! The topology as a CloudFormation template (JSON).
//!
//! The network is always there: the VPC with subnets, routes and a flow log when the plan creates
//! it (parameters naming an existing VPC otherwise), every group with every rule and its
//! description, and the VPC endpoints. With an [`Application`] the template is a whole
//! stack: the ECS cluster and services, their load balancers or API Gateway, logs, secrets and
//! RDS PostgreSQL (for `gateway`, unless the plan keeps time series in Timestream).
//!
//! checkov findings that are accepted on purpose are suppressed on the resource itself
//! (`Metadata.checkov.skip`) with the reason; DEPLOY.md lists them all.

mod alb;
mod database;
mod ecs;
mod gateway;
mod network;
mod oauth;
mod template;

use super::{Application, StackOptions};
use crate::Topology;
use crate::profiles::GatewayTsStore;
use template::Template;

pub fn cloudformation(topology: &Topology, stack: &StackOptions) -> String {
    let mut template = Template {
        description: description(topology, stack),
        ..Template::default()
    };
    let needs = network::SubnetNeeds {
        public: stack.application == Application::Alb,
        private: stack.application != Application::NetworkOnly
            || topology.interface_endpoints().next().is_some(),
        private_routes: topology.gateway_endpoints().next().is_some(),
    };
    let network = network::add_vpc(&mut template, topology, needs);
    network::add_security_groups(&mut template, topology, network);
    network::add_endpoints(&mut template, topology, network);
    match stack.application {
        Application::NetworkOnly => {}
        Application::Alb => alb::add(&mut template, network, &topology.name, stack),
        Application::Gateway => gateway::add(&mut template, network, &topology.name, stack),
    }
    let mut text =
        ascii_json(&serde_json::to_string_pretty(&template.into_json()).unwrap_or_default());
    text.push('\n');
    text
}

/// `json` with every non-ASCII character and DEL written as a `\uXXXX` escape. serde_json writes
/// them as they are, which JSON allows but YAML does not (DEL, C1 controls, U+FEFF…), and tools
/// read a JSON template as YAML too. Such characters only occur inside strings, where the escape
/// means the same character, so the document is unchanged and now plain ASCII for every reader.
fn ascii_json(json: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

fn description(topology: &Topology, stack: &StackOptions) -> String {
    let what = match stack.application {
        Application::NetworkOnly => "network: VPC, security groups and endpoints",
        Application::Alb => {
            "stack: MCP ALB, MCP and API services on ECS, internal API ALB, RDS PostgreSQL"
        }
        Application::Gateway => match stack.gateway_ts_store {
            GatewayTsStore::Postgres => {
                "stack: API Gateway with membrain's key authorizer, VPC Link, internal NLB, MCP service on ECS, RDS PostgreSQL (time series)"
            }
            GatewayTsStore::Timestream => {
                "stack: API Gateway with membrain's key authorizer, VPC Link, internal NLB, MCP service on ECS, time series in Timestream"
            }
        },
    };
    format!(
        "Membrain {} {what}. Rendered by `membrain network render --format cloudformation`.",
        topology.name
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::model::{GroupId, Peer, Rule};
    use crate::profiles::{Profile, ProfileOptions};

    fn template(topology: &Topology, stack: &StackOptions) -> Value {
        serde_json::from_str(&cloudformation(topology, stack)).unwrap()
    }

    fn profile(profile: Profile, change: impl FnOnce(&mut ProfileOptions)) -> Topology {
        let mut options = ProfileOptions::for_profile(profile);
        change(&mut options);
        profile.topology(&options)
    }

    fn resources_of<'a>(template: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
        template["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Type"] == kind)
            .collect()
    }

    /// Every rule of the template, inline or standalone, except the "nothing" placeholder.
    fn rules(template: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        for (_, group) in resources_of(template, "AWS::EC2::SecurityGroup") {
            for key in ["SecurityGroupIngress", "SecurityGroupEgress"] {
                out.extend(
                    group["Properties"][key]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
        for kind in [
            "AWS::EC2::SecurityGroupIngress",
            "AWS::EC2::SecurityGroupEgress",
        ] {
            out.extend(
                resources_of(template, kind)
                    .into_iter()
                    .map(|(_, r)| r["Properties"].clone()),
            );
        }
        out.retain(|r| r["CidrIp"] != "127.0.0.1/32");
        out
    }

    #[test]
    fn the_template_is_ascii_and_means_the_same() {
        let text = "{\"a\": \"\u{7f} \u{85} \u{feff} \u{e9} \u{1f600}\"}";
        let escaped = ascii_json(text);
        assert!(escaped.is_ascii(), "{escaped}");
        assert_eq!(
            escaped,
            "{\"a\": \"\\u007f \\u0085 \\ufeff \\u00e9 \\ud83d\\ude00\"}"
        );
        let read: Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(read, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn every_planned_rule_is_there_with_its_description() {
        for p in [Profile::Alb, Profile::Gateway] {
            let topology = profile(p, |_| {});
            let rendered = template(&topology, &StackOptions::for_topology(&topology));
            let rules = rules(&rendered);
            let planned: usize = topology
                .groups
                .iter()
                .map(|g| g.ingress.len() + g.egress.len())
                .sum();
            assert_eq!(rules.len(), planned, "{p:?}");
            for group in &topology.groups {
                for rule in group.ingress.iter().chain(&group.egress) {
                    assert!(
                        rules
                            .iter()
                            .any(|r| r["Description"] == rule.description.as_str()),
                        "{}: {}",
                        group.id,
                        rule.description
                    );
                }
            }
            for (_, group) in resources_of(&rendered, "AWS::EC2::SecurityGroup") {
                assert!(
                    !group["Properties"]["GroupDescription"]
                        .as_str()
                        .unwrap()
                        .is_empty()
                );
                // Declared egress replaces AWS's default allow-all rule on every group.
                assert!(
                    group["Properties"]["SecurityGroupEgress"].is_array(),
                    "{group}"
                );
            }
        }
    }

    #[test]
    fn narrow_groups_lose_the_default_egress() {
        let topology = profile(Profile::Alb, |_| {});
        let rendered = template(&topology, &StackOptions::default());
        let egress =
            |name: &str| rendered["Resources"][name]["Properties"]["SecurityGroupEgress"].clone();
        assert_eq!(egress("DatabaseSecurityGroup")[0]["CidrIp"], "127.0.0.1/32");
        // The API ALB on 80 and 443, the endpoints and S3.
        assert_eq!(egress("McpEcsSecurityGroup").as_array().unwrap().len(), 4);
        assert_eq!(
            egress("McpEcsSecurityGroup")[0]["DestinationSecurityGroupId"]["Fn::GetAtt"][0],
            "ApiAlbSecurityGroup"
        );
        assert_eq!(egress("McpAlbSecurityGroup")[0]["CidrIp"], "0.0.0.0/0");
        // Group references in ingress are standalone: MCP tasks and API ALB name each other.
        assert_eq!(
            rendered["Resources"]["ApiAlbIngress0"]["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"]
                [0],
            "McpEcsSecurityGroup"
        );
    }

    #[test]
    fn an_egress_cycle_is_broken_with_a_standalone_rule() {
        let mut topology = profile(Profile::Alb, |_| {});
        let database = topology
            .groups
            .iter_mut()
            .find(|g| g.id.0 == "database")
            .unwrap();
        database.egress.push(Rule::tcp(
            8000,
            Peer::Group(GroupId("api-ecs".into())),
            "A cycle for the test",
        ));
        let rendered = template(&topology, &StackOptions::default());
        let standalone = resources_of(&rendered, "AWS::EC2::SecurityGroupEgress");
        assert_eq!(standalone.len(), 1, "{standalone:?}");
        assert_eq!(standalone[0].0, "DatabaseEgress0");
        // The database's inline egress is the placeholder, so its default rule is still replaced.
        assert_eq!(
            rendered["Resources"]["DatabaseSecurityGroup"]["Properties"]["SecurityGroupEgress"][0]
                ["CidrIp"],
            "127.0.0.1/32"
        );
    }

    #[test]
    fn the_vpc_is_created_or_taken_as_parameters() {
        let created = template(&profile(Profile::Gateway, |_| {}), &StackOptions::default());
        assert_eq!(
            created["Resources"]["Vpc"]["Properties"]["CidrBlock"],
            "10.0.0.0/16"
        );
        assert_eq!(
            created["Resources"]["Vpc"]["Properties"]["EnableDnsHostnames"],
            true
        );
        assert_eq!(resources_of(&created, "AWS::EC2::Subnet").len(), 4);
        assert_eq!(resources_of(&created, "AWS::EC2::FlowLog").len(), 1);
        // Only the zones, which no default can name for every account.
        let parameters = created["Parameters"].as_object().unwrap();
        assert_eq!(
            parameters.keys().collect::<Vec<_>>(),
            ["AvailabilityZoneIds"]
        );
        let existing = template(
            &profile(Profile::Gateway, |o| o.create_vpc = false),
            &StackOptions::default(),
        );
        assert!(existing["Resources"].get("Vpc").is_none());
        assert_eq!(existing["Parameters"]["VpcId"]["Type"], "AWS::EC2::VPC::Id");
        assert_eq!(
            existing["Resources"]["McpServerSecurityGroup"]["Properties"]["VpcId"],
            serde_json::json!({ "Ref": "VpcId" })
        );
    }

    #[test]
    fn endpoints_follow_the_plan() {
        let postgres = template(&profile(Profile::Gateway, |_| {}), &StackOptions::default());
        assert_eq!(resources_of(&postgres, "AWS::EC2::VPCEndpoint").len(), 2);
        let rendered = template(
            &profile(Profile::Gateway, |o| {
                o.gateway_ts_store = GatewayTsStore::Timestream;
            }),
            &StackOptions::default(),
        );
        let endpoints = resources_of(&rendered, "AWS::EC2::VPCEndpoint");
        assert_eq!(endpoints.len(), 4);
        let ingest = &rendered["Resources"]["TimestreamIngestCell1Endpoint"]["Properties"];
        assert_eq!(
            ingest["ServiceName"]["Fn::Sub"],
            "com.amazonaws.${AWS::Region}.timestream.ingest-cell1"
        );
        assert_eq!(ingest["PrivateDnsEnabled"], true);
        assert_eq!(
            ingest["SecurityGroupIds"][0]["Fn::GetAtt"][0],
            "VpcEndpointsSecurityGroup"
        );
        let without = template(
            &profile(Profile::Gateway, |o| o.enable_vpc_endpoints = false),
            &StackOptions::default(),
        );
        assert!(resources_of(&without, "AWS::EC2::VPCEndpoint").is_empty());
    }

    #[test]
    fn alb_tasks_reach_s3_through_its_gateway_endpoint_and_prefix_list() {
        for create_vpc in [false, true] {
            let rendered = template(
                &profile(Profile::Alb, |o| o.create_vpc = create_vpc),
                &StackOptions::default(),
            );
            let s3 = &rendered["Resources"]["S3Endpoint"]["Properties"];
            assert_eq!(s3["VpcEndpointType"], "Gateway");
            assert!(s3.get("SecurityGroupIds").is_none());
            let tables = if create_vpc {
                serde_json::json!([{ "Ref": "PrivateRouteTable" }])
            } else {
                serde_json::json!({ "Ref": "PrivateRouteTableIds" })
            };
            assert_eq!(s3["RouteTableIds"], tables, "create_vpc {create_vpc}");
            assert_eq!(
                rendered["Parameters"].get("PrivateRouteTableIds").is_some(),
                !create_vpc
            );
            let parameter = &rendered["Parameters"]["S3PrefixListId"];
            assert_eq!(parameter["Type"], "String");
            assert!(
                parameter["Description"]
                    .as_str()
                    .unwrap()
                    .contains("describe-prefix-lists")
            );
            let to_s3: Vec<Value> = rules(&rendered)
                .into_iter()
                .filter(|r| r.get("DestinationPrefixListId").is_some())
                .collect();
            assert_eq!(to_s3.len(), 2, "one per task group: {to_s3:#?}");
            assert!(to_s3.iter().all(|r| r["DestinationPrefixListId"]
                == serde_json::json!({ "Ref": "S3PrefixListId" })
                && r["FromPort"] == 443));
            let interfaces = resources_of(&rendered, "AWS::EC2::VPCEndpoint")
                .into_iter()
                .filter(|(_, e)| e["Properties"]["VpcEndpointType"] == "Interface")
                .count();
            assert_eq!(interfaces, 4);
        }
        // Through a NAT instead: no endpoint, no prefix list parameter.
        let nat = template(
            &profile(Profile::Alb, |o| o.enable_vpc_endpoints = false),
            &StackOptions::default(),
        );
        assert!(resources_of(&nat, "AWS::EC2::VPCEndpoint").is_empty());
        assert!(nat["Parameters"].get("S3PrefixListId").is_none());
    }

    #[test]
    fn the_alb_stack_wires_each_tier_to_its_group() {
        let topology = profile(Profile::Alb, |_| {});
        let rendered = template(&topology, &StackOptions::for_topology(&topology));
        let resources = &rendered["Resources"];
        let group_of = |name: &str, path: &[&str]| {
            let mut value = &resources[name]["Properties"];
            for key in path {
                value = &value[*key];
            }
            value[0]["Fn::GetAtt"][0]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            group_of("McpLoadBalancer", &["SecurityGroups"]),
            "McpAlbSecurityGroup"
        );
        assert_eq!(
            group_of("ApiLoadBalancer", &["SecurityGroups"]),
            "ApiAlbSecurityGroup"
        );
        let tasks = [
            "NetworkConfiguration",
            "AwsvpcConfiguration",
            "SecurityGroups",
        ];
        assert_eq!(group_of("McpService", &tasks), "McpEcsSecurityGroup");
        assert_eq!(group_of("ApiService", &tasks), "ApiEcsSecurityGroup");
        assert_eq!(
            group_of("Database", &["VPCSecurityGroups"]),
            "DatabaseSecurityGroup"
        );
        assert_eq!(
            resources["McpTargetGroup"]["Properties"]["HealthCheckPath"],
            "/health"
        );
        assert_eq!(resources["McpTargetGroup"]["Properties"]["Port"], 8100);
        assert_eq!(
            resources["McpHttpsListener"]["Properties"]["SslPolicy"],
            "ELBSecurityPolicy-TLS13-1-2-2021-06"
        );
        assert_eq!(
            resources["McpHttpListener"]["Properties"]["DefaultActions"][0]["Type"],
            "redirect"
        );
        let api = &resources["ApiTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
        assert_eq!(api["Secrets"][0]["Name"], "PGPASSWORD");
        assert_eq!(
            environment(api)["MEMBRAIN_DATABASE_URL"]["Fn::Sub"],
            "postgres://membrain_app@${Database.Endpoint.Address}:${Database.Endpoint.Port}/membrain?sslmode=require"
        );
        assert_eq!(api["LogConfiguration"]["LogDriver"], "awslogs");
        assert_eq!(api["Command"][0], "api");
        assert_eq!(
            resources["Database"]["Properties"]["StorageEncrypted"],
            true
        );
    }

    #[test]
    fn the_gateway_stack_puts_the_vpc_link_group_on_the_link() {
        let topology = profile(Profile::Gateway, |o| o.mcp_port = 9090);
        let rendered = template(&topology, &StackOptions::for_topology(&topology));
        let resources = &rendered["Resources"];
        assert_eq!(
            resources["VpcLink"]["Properties"]["SecurityGroupIds"][0]["Fn::GetAtt"][0],
            "VpcLinkSecurityGroup"
        );
        assert_eq!(resources["McpTargetGroup"]["Properties"]["Port"], 9090);
        assert_eq!(
            resources["McpRoute"]["Properties"]["AuthorizationType"],
            "CUSTOM"
        );
        assert_eq!(
            resources["McpIntegration"]["Properties"]["ConnectionType"],
            "VPC_LINK"
        );
        let mcp = &resources["McpTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
        assert_eq!(mcp["PortMappings"][0]["ContainerPort"], 9090);
    }

    /// Issue 16 item 12: the NLB carries a group of its own, which alone the tasks admit.
    #[test]
    fn the_gateway_nlb_carries_the_group_the_tasks_admit() {
        let topology = profile(Profile::Gateway, |_| {});
        let rendered = template(&topology, &StackOptions::for_topology(&topology));
        let resources = &rendered["Resources"];
        assert_eq!(
            resources["NetworkLoadBalancer"]["Properties"]["SecurityGroups"][0]["Fn::GetAtt"][0],
            "NlbSecurityGroup"
        );
        let into_tasks = |rendered: &Value| -> Vec<Value> {
            resources_of(rendered, "AWS::EC2::SecurityGroupIngress")
                .into_iter()
                .map(|(_, r)| r["Properties"].clone())
                .filter(|r| r["GroupId"]["Fn::GetAtt"][0] == "McpServerSecurityGroup")
                .collect()
        };
        let into_tasks_by_default = into_tasks(&rendered);

        assert!(!into_tasks_by_default.is_empty());
        for rule in &into_tasks_by_default {
            assert_eq!(
                rule["SourceSecurityGroupId"]["Fn::GetAtt"][0], "NlbSecurityGroup",
                "{rule}"
            );
            assert!(rule.get("CidrIp").is_none(), "{rule}");
        }

        // The seed's VPC rule only when asked for.
        let seed = profile(Profile::Gateway, |o| o.seed_vpc_ingress = true);
        let rendered = template(&seed, &StackOptions::for_topology(&seed));
        assert!(
            into_tasks(&rendered)
                .iter()
                .any(|r| r["CidrIp"] == "10.0.0.0/16"),
            "the seed's rule"
        );
    }

    /// Issue 16 item 13: RDS manages (and rotates) the master password; the services sign in as
    /// membrain_app, which an init container makes with the master's credentials before the
    /// service's container starts, and which is all the service's container ever sees.
    #[test]
    fn services_sign_in_as_an_application_role_the_master_makes() {
        for (topology, task) in [
            (profile(Profile::Alb, |_| {}), "Api"),
            (profile(Profile::Gateway, |_| {}), "Mcp"),
        ] {
            let rendered = template(&topology, &StackOptions::for_topology(&topology));
            let resources = &rendered["Resources"];
            let database = &resources["Database"]["Properties"];
            assert_eq!(database["ManageMasterUserPassword"], true);
            assert!(database.get("MasterUserPassword").is_none());
            assert!(resources.get("DatabaseUrlSecret").is_none());
            assert!(resources.get("DatabasePasswordSecret").is_none());
            let app_secret = &resources["AppDatabaseSecret"]["Properties"]["GenerateSecretString"];
            assert_eq!(
                app_secret["SecretStringTemplate"],
                "{\"username\":\"membrain_app\"}"
            );

            let containers =
                resources[&format!("{task}TaskDefinition")]["Properties"]["ContainerDefinitions"]
                    .as_array()
                    .unwrap();
            let main = &containers[0];
            let setup = containers
                .iter()
                .find(|c| c["Name"] == "database-setup")
                .expect("an init container");
            assert_eq!(
                main["DependsOn"],
                serde_json::json!([{ "ContainerName": "database-setup", "Condition": "SUCCESS" }])
            );
            assert_eq!(setup["Essential"], false);
            assert_eq!(setup["Command"], serde_json::json!(["database", "setup"]));
            let master =
                serde_json::json!({ "Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"] });
            let secrets = |container: &Value| -> Vec<(String, Value)> {
                container["Secrets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        (
                            s["Name"].as_str().unwrap().to_owned(),
                            s["ValueFrom"].clone(),
                        )
                    })
                    .collect()
            };
            let key_of = |arn: &Value, key: &str| serde_json::json!({ "Fn::Join": ["", [arn, format!(":{key}::")]] });
            let app = serde_json::json!({ "Ref": "AppDatabaseSecret" });
            let setup_secrets = secrets(setup);
            for wanted in [
                ("PGUSER", key_of(&master, "username")),
                ("PGPASSWORD", key_of(&master, "password")),
                ("MEMBRAIN_APP_DATABASE_PASSWORD", key_of(&app, "password")),
            ] {
                assert!(
                    setup_secrets.contains(&(wanted.0.to_owned(), wanted.1.clone())),
                    "{setup_secrets:?}"
                );
            }
            // The service's own container: the application role's password, never the master's.
            let main_secrets = secrets(main);
            assert!(main_secrets.contains(&("PGPASSWORD".to_owned(), key_of(&app, "password"))));
            assert!(
                !serde_json::to_string(main)
                    .unwrap()
                    .contains("MasterUserSecret"),
                "{main}"
            );
            assert_eq!(
                environment(setup)["MEMBRAIN_APP_DATABASE_ROLE"],
                "membrain_app"
            );
            // The execution role reads both secrets (to inject them), by ARN.
            let reads = resources[&format!("{task}ExecutionRole")]["Properties"]["Policies"][0]
                ["PolicyDocument"]["Statement"][0]["Resource"]
                .as_array()
                .unwrap()
                .clone();
            assert!(reads.contains(&app) && reads.contains(&master), "{reads:?}");
        }
    }

    /// The environment of a container as a name → value map.
    fn environment(container: &Value) -> std::collections::BTreeMap<String, Value> {
        container["Environment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                (
                    pair["Name"].as_str().unwrap().to_owned(),
                    pair["Value"].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn the_gateway_mcp_tasks_serve_time_series_from_rds_with_the_key_map() {
        let topology = profile(Profile::Gateway, |o| o.database_port = 6432);
        let stack = StackOptions::for_topology(&topology);
        assert_eq!(stack.gateway_ts_store, GatewayTsStore::Postgres);
        let rendered = template(&topology, &stack);
        let resources = &rendered["Resources"];
        assert!(rendered["Parameters"].get("ApiBaseUrl").is_none());
        assert!(rendered["Parameters"].get("TimestreamDatabase").is_none());
        let mcp = &resources["McpTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
        let env = environment(mcp);
        assert!(!env.contains_key("API_BASE_URL"), "{env:?}");
        assert_eq!(env["MEMBRAIN_MCP_PROFILE"], "gateway");
        assert_eq!(env["MCP_SERVER_PORT"], "8080");
        assert_eq!(env["MEMBRAIN_KEYS_SECRET"]["Ref"], "ApiKeysSecret");
        // Behind the authorizer, a guessed Host list could only refuse calls (issue 16 item 10).
        assert_eq!(env["MEMBRAIN_MCP_ALLOWED_HOSTS"], "*");
        // The URL names the application role and no password; the password arrives through
        // ECS secrets as PGPASSWORD.
        assert_eq!(
            env["MEMBRAIN_TS_STORE"]["Fn::Sub"],
            "postgres://membrain_app@${Database.Endpoint.Address}:${Database.Endpoint.Port}/membrain?sslmode=require"
        );
        assert_eq!(mcp["Secrets"][0]["Name"], "PGPASSWORD");

        // The database carries the planned group, on the planned port, in the private subnets.
        let database = &resources["Database"]["Properties"];
        assert_eq!(database["Port"], "6432");
        assert_eq!(
            database["VPCSecurityGroups"][0]["Fn::GetAtt"][0],
            "DatabaseSecurityGroup"
        );
        assert_eq!(database["PubliclyAccessible"], false);

        // The container's own policies; the metrics sidecar's (an `Fn::If`) is checked elsewhere.
        let policies: Vec<&Value> = resources["McpTaskRole"]["Properties"]["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p.get("Fn::If").is_none())
            .collect();
        assert_eq!(policies.len(), 1, "no Timestream permissions: {policies:?}");
        let keys = &policies[0]["PolicyDocument"]["Statement"][0];
        assert_eq!(keys["Action"], "secretsmanager:GetSecretValue");
        assert_eq!(keys["Resource"]["Ref"], "ApiKeysSecret");
        let reads = &resources["McpExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            [0];
        assert_eq!(reads["Resource"][0]["Ref"], "AppDatabaseSecret");

        let secret = &resources["ApiKeysSecret"]["Properties"];
        assert_eq!(secret["SecretString"], "{}");
        assert!(secret.get("GenerateSecretString").is_none());
    }

    #[test]
    fn the_gateway_stack_uses_timestream_when_the_plan_chose_it() {
        let topology = profile(Profile::Gateway, |o| {
            o.gateway_ts_store = GatewayTsStore::Timestream;
        });
        let stack = StackOptions::for_topology(&topology);
        assert_eq!(stack.gateway_ts_store, GatewayTsStore::Timestream);
        let rendered = template(&topology, &stack);
        let resources = &rendered["Resources"];
        assert!(resources.get("Database").is_none());
        assert!(resources.get("DatabaseUrlSecret").is_none());
        let mcp = &resources["McpTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
        assert_eq!(
            environment(mcp)["MEMBRAIN_TS_STORE"]["Fn::Sub"],
            "timestream://${TimestreamDatabase}?region=${AWS::Region}"
        );
        assert_eq!(mcp["Secrets"].as_array().map(Vec::len), Some(0));
        let policies = resources["McpTaskRole"]["Properties"]["Policies"]
            .as_array()
            .unwrap();
        assert_eq!(policies[1]["PolicyName"], "timestream");
        let statements = policies[1]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap();
        // Only endpoint discovery, which has no resource, is granted on "*".
        for statement in statements {
            if statement["Resource"] == "*" {
                assert_eq!(statement["Action"], "timestream:DescribeEndpoints");
            } else {
                let arn = statement["Resource"]["Fn::Sub"].as_str().unwrap();
                assert!(arn.contains(":database/${TimestreamDatabase}"), "{arn}");
            }
        }
    }

    #[test]
    fn the_gateway_authorizer_is_membrain_from_the_same_image() {
        let topology = profile(Profile::Gateway, |_| {});
        let rendered = template(&topology, &StackOptions::for_topology(&topology));
        let resources = &rendered["Resources"];
        let function = &resources["AuthorizerFunction"]["Properties"];
        assert_eq!(function["PackageType"], "Image");
        assert_eq!(function["Code"]["ImageUri"]["Ref"], "ContainerImage");
        assert_eq!(function["ImageConfig"]["Command"][0], "authorizer");
        assert!(function.get("Runtime").is_none() && function.get("Handler").is_none());
        let variables = &function["Environment"]["Variables"];
        assert_eq!(variables["MEMBRAIN_KEYS_SECRET"]["Ref"], "ApiKeysSecret");
        assert_eq!(variables["MEMBRAIN_KEYS_REFRESH_SECS"], "60");
        let statement = &resources["AuthorizerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
            ["Statement"];
        assert_eq!(statement.as_array().unwrap().len(), 1);
        assert_eq!(statement[0]["Resource"]["Ref"], "ApiKeysSecret");
        let authorizer = &resources["Authorizer"]["Properties"];
        assert_eq!(authorizer["AuthorizerPayloadFormatVersion"], "2.0");
        assert_eq!(authorizer["EnableSimpleResponses"], true);
        assert_eq!(
            authorizer["IdentitySource"]["Fn::If"],
            serde_json::json!([
                "AcceptOAuth",
                ["$request.header.Authorization"],
                ["$request.header.x-api-key"]
            ])
        );
        // Cached briefly per key: the revocation delay DEPLOY.md states (refresh + cache).
        assert_eq!(authorizer["AuthorizerResultTtlInSeconds"], 30);
        assert_eq!(
            function["LoggingConfig"]["LogGroup"]["Ref"],
            "AuthorizerLogGroup"
        );
    }

    #[test]
    fn metrics_stay_inside_the_task_and_reach_cloudwatch_through_an_optional_sidecar() {
        for profile_name in [Profile::Alb, Profile::Gateway] {
            let topology = profile(profile_name, |_| {});
            let rendered = template(&topology, &StackOptions::for_topology(&topology));
            let resources = &rendered["Resources"];
            assert_eq!(
                rendered["Conditions"]["ShipMetrics"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"],
                "MetricsAgentImage"
            );
            assert_eq!(rendered["Parameters"]["MetricsAgentImage"]["Default"], "");
            // No group admits the metrics port: it is served on the task's loopback only.
            for rule in rules(&rendered) {
                let (from, to) = (&rule["FromPort"], &rule["ToPort"]);
                let covers = |port: u64| {
                    from.as_u64().is_some_and(|f| f <= port)
                        && to.as_u64().is_some_and(|t| port <= t)
                };
                assert!(!covers(9464) || from == -1, "{rule}");
            }
            let definitions = resources_of(&rendered, "AWS::ECS::TaskDefinition");
            assert!(!definitions.is_empty());
            for (name, definition) in definitions {
                let service = name.trim_end_matches("TaskDefinition");
                let containers = &definition["Properties"]["ContainerDefinitions"];
                let membrain = &containers[0];
                assert_eq!(
                    environment(membrain)["MEMBRAIN_METRICS_LISTEN"],
                    "127.0.0.1:9464"
                );
                let mapped: Vec<&Value> = membrain["PortMappings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| &m["ContainerPort"])
                    .collect();
                assert!(!mapped.contains(&&serde_json::json!(9464)), "{mapped:?}");
                assert_eq!(membrain["ReadonlyRootFilesystem"], true);
                // The sidecar exists only when an agent image is given, and is not essential.
                let last = containers.as_array().unwrap().len() - 1;
                let choice = &containers[last]["Fn::If"];
                assert_eq!(choice[0], "ShipMetrics");
                assert_eq!(choice[2]["Ref"], "AWS::NoValue");
                let agent = &choice[1];
                assert_eq!(agent["Essential"], false);
                assert_eq!(agent["Image"]["Ref"], "MetricsAgentImage");
                let agent_env = environment(agent);
                let config: Value = serde_json::from_str(
                    agent_env["CW_CONFIG_CONTENT"]["Fn::Sub"].as_str().unwrap(),
                )
                .unwrap();
                let prometheus = &config["logs"]["metrics_collected"]["prometheus"];
                let log_group = &resources[&format!("{service}MetricsLogGroup")];
                assert_eq!(log_group["Condition"], "ShipMetrics");
                assert_eq!(
                    prometheus["log_group_name"],
                    log_group["Properties"]["LogGroupName"]["Fn::Sub"]
                );
                assert_eq!(prometheus["emf_processor"]["metric_namespace"], "Membrain");
                let scrape: Value = serde_json::from_str(
                    agent_env["PROMETHEUS_CONFIG_CONTENT"]["Fn::Sub"]
                        .as_str()
                        .unwrap(),
                )
                .unwrap();
                assert_eq!(
                    scrape["scrape_configs"][0]["static_configs"][0]["targets"][0],
                    "127.0.0.1:9464"
                );
                // The sidecar writes only into its own service's metrics log group.
                let role = &resources[&format!("{service}TaskRole")]["Properties"];
                assert_eq!(
                    definition["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0],
                    format!("{service}TaskRole")
                );
                let metrics_policy = role["Policies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find_map(|p| p.get("Fn::If"))
                    .expect("the metrics policy");
                assert_eq!(metrics_policy[0], "ShipMetrics");
                let statement = &metrics_policy[1]["PolicyDocument"]["Statement"];
                assert_eq!(statement.as_array().unwrap().len(), 1);
                assert_eq!(
                    statement[0]["Resource"][0]["Fn::GetAtt"][0],
                    format!("{service}MetricsLogGroup")
                );
                assert!(
                    statement[0]["Action"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|a| a.as_str().unwrap().starts_with("logs:")),
                    "{statement}"
                );
            }
        }
    }

    /// Issue 16's first-deploy rules: a failed create must roll back cleanly and a retry must
    /// not collide with what the first try left.
    #[test]
    fn a_first_create_can_roll_back_and_be_retried() {
        for profile_name in [Profile::Alb, Profile::Gateway] {
            let topology = profile(profile_name, |_| {});
            let rendered = template(&topology, &StackOptions::for_topology(&topology));
            let resources = &rendered["Resources"];
            let protection = &rendered["Parameters"]["DeletionProtection"];
            assert_eq!(protection["Default"], "false");
            let load_balancers =
                resources_of(&rendered, "AWS::ElasticLoadBalancingV2::LoadBalancer");
            assert!(!load_balancers.is_empty());
            for (_, balancer) in load_balancers {
                let attribute = balancer["Properties"]["LoadBalancerAttributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["Key"] == "deletion_protection.enabled")
                    .unwrap();
                assert_eq!(attribute["Value"]["Ref"], "DeletionProtection");
            }
            for (_, database) in resources_of(&rendered, "AWS::RDS::DBInstance") {
                assert_eq!(
                    database["Properties"]["DeletionProtection"]["Ref"],
                    "DeletionProtection"
                );
                // The major version only: RDS retires minors.
                assert_eq!(database["Properties"]["EngineVersion"], "17");
            }
            // Every name that must be unique in the account comes from the stack's name.
            for kind in ["AWS::SecretsManager::Secret", "AWS::Logs::LogGroup"] {
                for (logical, resource) in resources_of(&rendered, kind) {
                    let properties = &resource["Properties"];
                    let name = properties
                        .get("Name")
                        .or_else(|| properties.get("LogGroupName"))
                        .unwrap();
                    let text = name["Fn::Sub"].as_str().unwrap_or_default();
                    assert!(text.contains("${AWS::StackName}"), "{logical}: {name}");
                }
            }
            assert_eq!(
                resources["Cluster"]["Properties"]["ClusterName"]["Ref"],
                "AWS::StackName"
            );
            for (logical, function) in resources_of(&rendered, "AWS::Lambda::Function") {
                assert!(
                    function["Properties"].get("FunctionName").is_none(),
                    "{logical}"
                );
            }
        }
    }

    #[test]
    fn the_timestream_tasks_may_not_change_or_drop_tables() {
        let topology = profile(Profile::Gateway, |o| {
            o.gateway_ts_store = GatewayTsStore::Timestream;
        });
        let rendered = template(&topology, &StackOptions::for_topology(&topology));
        let text = rendered["Resources"]["McpTaskRole"].to_string();
        assert!(text.contains("timestream:WriteRecords"), "{text}");
        for action in ["timestream:DeleteTable", "timestream:UpdateTable"] {
            assert!(!text.contains(action), "{action}: {text}");
        }
    }

    #[test]
    fn created_subnets_take_zone_ids_from_a_parameter() {
        let topology = profile(Profile::Gateway, |_| {});
        assert!(topology.vpc.create);
        let rendered = template(&topology, &StackOptions::for_topology(&topology));
        let parameter = &rendered["Parameters"]["AvailabilityZoneIds"];
        assert_eq!(parameter["Type"], "CommaDelimitedList");
        assert!(
            parameter.get("Default").is_none(),
            "no zone is right for every account"
        );
        assert!(
            parameter["Description"]
                .as_str()
                .unwrap()
                .contains("use1-az3")
        );
        let subnets = resources_of(&rendered, "AWS::EC2::Subnet");
        assert_eq!(subnets.len(), 4, "public and private, in two zones");
        for (logical, subnet) in subnets {
            let properties = &subnet["Properties"];
            assert!(properties.get("AvailabilityZone").is_none(), "{logical}");
            let select = &properties["AvailabilityZoneId"]["Fn::Select"];
            assert_eq!(select[1]["Ref"], "AvailabilityZoneIds", "{logical}");
            assert_eq!(select[0], if logical.ends_with('0') { 0 } else { 1 });
        }
    }

    #[test]
    fn the_albs_log_to_a_bucket_of_the_stack_and_the_nlb_logs_nothing() {
        let topology = profile(Profile::Alb, |_| {});
        let rendered = template(&topology, &StackOptions::for_topology(&topology));
        let resources = &rendered["Resources"];
        assert!(rendered["Parameters"].get("AccessLogsBucket").is_none());
        let bucket = &resources["AccessLogsBucket"];
        assert_eq!(bucket["DeletionPolicy"], "Retain");
        assert!(
            bucket["Properties"].get("BucketName").is_none(),
            "a generated name"
        );
        assert_eq!(
            bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
                ["SSEAlgorithm"],
            "AES256"
        );
        let statement =
            &resources["AccessLogsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
        let writer = &statement["Principal"]["Fn::If"];
        assert_eq!(writer[0], "ElbAccountRegion");
        assert_eq!(
            writer[1]["AWS"]["Fn::Sub"][1]["ElbAccount"]["Fn::FindInMap"][0],
            "ElbAccounts"
        );
        assert_eq!(
            writer[2]["Service"],
            "logdelivery.elasticloadbalancing.amazonaws.com"
        );
        assert_eq!(
            rendered["Mappings"]["ElbAccounts"]["us-east-1"]["Account"],
            "127311923021"
        );
        // Every mapped region is in the condition, so the lookup never misses.
        let condition = rendered["Conditions"]["ElbAccountRegion"].to_string();
        for region in rendered["Mappings"]["ElbAccounts"]
            .as_object()
            .unwrap()
            .keys()
        {
            assert!(condition.contains(&format!("\"{region}\"")), "{region}");
        }
        for name in ["McpLoadBalancer", "ApiLoadBalancer"] {
            let balancer = &resources[name];
            assert_eq!(balancer["DependsOn"], "AccessLogsBucketPolicy");
            let attributes = balancer["Properties"]["LoadBalancerAttributes"].to_string();
            assert!(
                attributes.contains("access_logs.s3.enabled"),
                "{attributes}"
            );
        }

        let topology = profile(Profile::Gateway, |_| {});
        let rendered = template(&topology, &StackOptions::for_topology(&topology));
        assert!(rendered["Parameters"].get("AccessLogsBucket").is_none());
        assert!(rendered["Resources"].get("AccessLogsBucket").is_none());
        let attributes =
            rendered["Resources"]["NetworkLoadBalancer"]["Properties"]["LoadBalancerAttributes"]
                .to_string();
        assert!(!attributes.contains("access_logs"), "{attributes}");
    }

    /// Issue 14: with OAuthIssuer set, the MCP servers (and the gateway's authorizer) accept
    /// that issuer's tokens for the stack's own MCP URL; the alb bridge serves a token's tenant
    /// with a generated service key the API shares; the gateway publishes the resource metadata
    /// without a key. Off (empty issuer) by default.
    #[test]
    fn both_stacks_take_an_oauth_issuer_as_a_parameter() {
        for (profile_name, mcp_url) in [
            (Profile::Alb, "https://${PublicHostName}/mcp"),
            (
                Profile::Gateway,
                "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/mcp",
            ),
        ] {
            let topology = profile(profile_name, |_| {});
            let rendered = template(&topology, &StackOptions::for_topology(&topology));
            let resources = &rendered["Resources"];
            assert_eq!(rendered["Parameters"]["OAuthIssuer"]["Default"], "");
            let mcp = &resources["McpTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
            let env = environment(mcp);
            assert_eq!(env["MEMBRAIN_OAUTH_ISSUER"]["Ref"], "OAuthIssuer");
            assert_eq!(env["MEMBRAIN_OAUTH_RESOURCE"]["Fn::Sub"], mcp_url);
            assert_eq!(
                env["MEMBRAIN_OAUTH_TENANT_CLAIM"]["Ref"],
                "OAuthTenantClaim"
            );
            if profile_name == Profile::Alb {
                let service_key = serde_json::json!({ "Name": "MEMBRAIN_SERVICE_KEY", "ValueFrom": { "Ref": "ServiceKeySecret" } });
                for task in ["McpTaskDefinition", "ApiTaskDefinition"] {
                    let secrets =
                        &resources[task]["Properties"]["ContainerDefinitions"][0]["Secrets"];
                    assert!(
                        secrets.as_array().unwrap().contains(&service_key),
                        "{task}: {secrets}"
                    );
                }
            } else {
                let variables =
                    &resources["AuthorizerFunction"]["Properties"]["Environment"]["Variables"];
                assert_eq!(variables["MEMBRAIN_OAUTH_RESOURCE"]["Fn::Sub"], mcp_url);
                assert_eq!(
                    rendered["Conditions"]["AcceptOAuth"],
                    serde_json::json!({ "Fn::Not": [{ "Fn::Equals": [{ "Ref": "OAuthIssuer" }, ""] }] })
                );
                for route in ["ResourceMetadataRoute", "ResourceMetadataRootRoute"] {
                    assert_eq!(resources[route]["Condition"], "AcceptOAuth");
                    assert_eq!(resources[route]["Properties"]["AuthorizationType"], "NONE");
                }
                assert_eq!(
                    resources["ResourceMetadataRoute"]["Properties"]["RouteKey"],
                    "GET /.well-known/oauth-protected-resource/mcp"
                );
            }
        }
    }

    /// Issue 16 item 9: the first key exists as soon as the stack does.
    #[test]
    fn the_alb_stack_makes_a_first_key_for_the_api() {
        let topology = profile(Profile::Alb, |_| {});
        let rendered = template(&topology, &StackOptions::for_topology(&topology));
        let resources = &rendered["Resources"];
        let generated = &resources["BootstrapKeySecret"]["Properties"]["GenerateSecretString"];
        assert!(generated["PasswordLength"].as_u64().unwrap() >= 32);
        assert!(
            generated.get("SecretStringTemplate").is_none(),
            "a plain string"
        );
        let api = &resources["ApiTaskDefinition"]["Properties"]["ContainerDefinitions"][0];
        let secrets: Vec<(&str, &Value)> = api["Secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["Name"].as_str().unwrap(), &s["ValueFrom"]))
            .collect();
        assert!(
            secrets.contains(&(
                "MEMBRAIN_API_KEY",
                &serde_json::json!({ "Ref": "BootstrapKeySecret" })
            )),
            "{secrets:?}"
        );
        let reads = resources["ApiExecutionRole"]["Properties"]["Policies"].to_string();
        assert!(reads.contains("BootstrapKeySecret"), "{reads}");
        assert!(
            !environment(api).contains_key("MEMBRAIN_API_KEY"),
            "a key never sits in the template"
        );
        assert_eq!(
            rendered["Outputs"]["BootstrapKeySecretArn"]["Value"]["Ref"],
            "BootstrapKeySecret"
        );
    }
}
