//! Seed 001's application: API Gateway HTTP API (membrain's own Lambda authorizer checks the
//! caller's key against a key map in Secrets Manager) → VPC Link (carrying the VPC Link group) →
//! internal NLB → MCP tasks on their port in private subnets, carrying the MCP server group. The
//! MCP tasks serve the time-series tools from the store themselves and check the same key map
//! again. The store is RDS PostgreSQL in the stack (any account can create it), or Timestream
//! when the plan chose it (closed to new customers since 2025-06-20).

use serde_json::{Value, json};

use super::alb::SECRET_KMS;
use super::database;
use super::ecs::{Service, add_cluster, add_service, load_balancer_attributes, target_group};
use super::network::{Network, assume_role, group_id, group_resource, log_group};
use super::oauth;
use super::template::{Template, get_att, reference, skip_checks, sub};
use crate::model::GroupId;
use crate::profiles::GatewayTsStore;
use crate::render::StackOptions;

/// Seconds between re-reads of the key map, by the authorizer and by the MCP tasks: a revoked key
/// stops working within this plus [`AUTHORIZER_CACHE_SECS`].
const KEYS_REFRESH_SECS: &str = "60";

/// How long API Gateway keeps the authorizer's answer for one key: most requests then cost no
/// Lambda call, and a revoked key lives on at most this much longer.
const AUTHORIZER_CACHE_SECS: u32 = 30;

/// The URL MCP clients use, which OAuth access tokens must be issued for.
const MCP_URL: &str = "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/mcp";

pub(crate) fn add(template: &mut Template, network: Network, name: &str, stack: &StackOptions) {
    add_cluster(template);
    oauth::add_parameters(template);
    oauth::add_condition(template);
    api_keys_secret(template);
    let mut environment = vec![
        ("MEMBRAIN_MCP_PROFILE", json!("gateway")),
        ("MCP_SERVER_HOST", json!("0.0.0.0")),
        ("MCP_SERVER_PORT", json!(stack.mcp_port.to_string())),
        ("MEMBRAIN_KEYS_SECRET", reference("ApiKeysSecret")),
        ("MEMBRAIN_KEYS_REFRESH_SECS", json!(KEYS_REFRESH_SECS)),
        // Any Host: which one API Gateway's private integration sends through the NLB is not
        // documented, and a wrong guess would refuse every call. The check guards a server on
        // a developer's machine against DNS rebinding from a browser; here every request has
        // passed the authorizer with a key, and the tasks are reachable only through it.
        ("MEMBRAIN_MCP_ALLOWED_HOSTS", json!("*")),
    ];
    environment.extend(oauth::environment(sub(MCP_URL)));
    let mut secrets = Vec::new();
    let mut init = None;
    let mut task_policies = vec![read_keys_policy()];
    match stack.gateway_ts_store {
        GatewayTsStore::Postgres => {
            let database = database::add(
                template,
                network,
                stack.database_port,
                "The password of membrain_app, the role the MCP tasks keep time series as (PGPASSWORD)",
            );
            environment.push(("MEMBRAIN_TS_STORE", database.url));
            secrets.push(database.password);
            init = Some(database.setup);
        }
        GatewayTsStore::Timestream => {
            timestream_database_parameter(template);
            environment.push((
                "MEMBRAIN_TS_STORE",
                sub("timestream://${TimestreamDatabase}?region=${AWS::Region}"),
            ));
            task_policies.push(timestream_policy());
        }
    }
    load_balancer(template, network, stack.mcp_port);
    http_api(template, network, name);
    authorizer(template);
    add_service(
        template,
        network,
        name,
        &Service {
            name: "Mcp",
            command: "mcp",
            port: stack.mcp_port,
            cpu: "256",
            memory: "512",
            group: GroupId("mcp-server".into()),
            target_group: "McpTargetGroup",
            environment,
            secrets,
            init,
            task_policies,
            depends_on: vec!["NetworkLoadBalancerListener"],
        },
    );
    template.output(
        "McpUrl",
        "Where MCP clients connect (send a key from the ApiKeysSecretArn map as x-api-key, or as Authorization: Bearer when OAuthIssuer is set)",
        sub(MCP_URL),
    );
    template.output(
        "ApiKeysSecretArn",
        "The secret holding the API keys ({\"<key>\": \"<tenant>\"}); empty until you add one",
        reference("ApiKeysSecret"),
    );
}

/// The Timestream database the MCP tasks use. The store creates it on its first write, so
/// deleting the stack never takes the records with it.
fn timestream_database_parameter(template: &mut Template) {
    template.parameter(
        "TimestreamDatabase",
        json!({
            "Type": "String",
            "Default": "membrain",
            "AllowedPattern": "^[a-zA-Z0-9_.-]{3,256}$",
            "Description": "The Timestream database the MCP tasks use (and create on their first write)",
        }),
    );
}

/// What the MCP tasks call themselves: the key map.
fn read_keys_policy() -> Value {
    json!({
        "PolicyName": "read-api-keys",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": reference("ApiKeysSecret") }],
        },
    })
}

/// With Timestream, the MCP tasks may use that one database and its tables.
fn timestream_policy() -> Value {
    let database = "arn:${AWS::Partition}:timestream:${AWS::Region}:${AWS::AccountId}:database/${TimestreamDatabase}";
    json!({
        "PolicyName": "timestream",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                // Endpoint discovery has no resource to scope to.
                { "Effect": "Allow", "Action": "timestream:DescribeEndpoints", "Resource": "*" },
                {
                    "Effect": "Allow",
                    "Action": [
                        "timestream:CreateDatabase",
                        "timestream:DescribeDatabase",
                        "timestream:ListTables",
                    ],
                    "Resource": sub(database),
                },
                {
                    "Effect": "Allow",
                    "Action": [
                        "timestream:WriteRecords",
                        "timestream:Select",
                        "timestream:DescribeTable",
                        "timestream:CreateTable",
                    ],
                    "Resource": sub(&format!("{database}/table/*")),
                },
            ],
        },
    })
}

/// The key map: CloudFormation cannot generate an object whose property names are random, so the
/// secret starts empty and the operator adds keys (DEPLOY.md).
fn api_keys_secret(template: &mut Template) {
    let secret = template.resource(
        "ApiKeysSecret",
        "AWS::SecretsManager::Secret",
        json!({
            "Name": sub("membrain/${AWS::StackName}/api-keys"),
            "Description": "API keys to tenants, {\"<key>\": \"<tenant>\"}, read by the authorizer and the MCP tasks. Created empty: no key works until you put one in (see DEPLOY.md)",
            "SecretString": "{}",
        }),
    );
    skip_checks(secret, &[SECRET_KMS]);
}

/// The internal NLB, carrying the plan's NLB group (an NLB takes groups only when it is
/// created, so the stack gives it one from the start): the tasks admit that group alone, and the
/// NLB admits the VPC link's. A plan from before the NLB had a group leaves it without one.
fn load_balancer(template: &mut Template, network: Network, port: u16) {
    let nlb_group = GroupId("nlb".into());
    let mut properties = json!({
        "Type": "network",
        "Scheme": "internal",
        "Subnets": network.private_subnets(),
        "LoadBalancerAttributes": load_balancer_attributes(None),
    });
    if template.resources.contains_key(&group_resource(&nlb_group)) {
        properties["SecurityGroups"] = json!([group_id(&nlb_group)]);
    }
    let balancer = template.resource(
        "NetworkLoadBalancer",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        properties,
    );
    skip_checks(
        balancer,
        &[(
            "CKV_AWS_91",
            "NLB access logs exist only for TLS listeners; this NLB forwards TCP from the VPC link, and API Gateway's access log records every request",
        )],
    );
    target_group(template, "McpTargetGroup", network, "TCP", port);
    template.resource(
        "NetworkLoadBalancerListener",
        "AWS::ElasticLoadBalancingV2::Listener",
        json!({
            "LoadBalancerArn": reference("NetworkLoadBalancer"),
            "Port": port,
            "Protocol": "TCP",
            "DefaultActions": [{ "Type": "forward", "TargetGroupArn": reference("McpTargetGroup") }],
        }),
    );
}

fn http_api(template: &mut Template, network: Network, name: &str) {
    template.resource(
        "HttpApi",
        "AWS::ApiGatewayV2::Api",
        json!({ "Name": format!("membrain-{name}"), "ProtocolType": "HTTP", "Description": "Membrain MCP server" }),
    );
    template.resource(
        "VpcLink",
        "AWS::ApiGatewayV2::VpcLink",
        json!({
            "Name": format!("membrain-{name}"),
            "SubnetIds": network.private_subnets(),
            "SecurityGroupIds": [group_id(&GroupId("vpc-link".into()))],
        }),
    );
    template.resource(
        "McpIntegration",
        "AWS::ApiGatewayV2::Integration",
        json!({
            "ApiId": reference("HttpApi"),
            "IntegrationType": "HTTP_PROXY",
            "IntegrationMethod": "ANY",
            "IntegrationUri": reference("NetworkLoadBalancerListener"),
            "ConnectionType": "VPC_LINK",
            "ConnectionId": reference("VpcLink"),
            "PayloadFormatVersion": "1.0",
        }),
    );
    template.resource(
        "McpRoute",
        "AWS::ApiGatewayV2::Route",
        json!({
            "ApiId": reference("HttpApi"),
            "RouteKey": "ANY /mcp",
            "AuthorizationType": "CUSTOM",
            "AuthorizerId": reference("Authorizer"),
            "Target": sub("integrations/${McpIntegration}"),
        }),
    );
    // With OAuth, the protected resource metadata (RFC 9728) without a key: API Gateway's own
    // 401 carries no challenge, so connectors find it at the well-known paths the MCP tasks
    // serve.
    for (logical_id, path) in [
        (
            "ResourceMetadataRoute",
            "/.well-known/oauth-protected-resource/mcp",
        ),
        (
            "ResourceMetadataRootRoute",
            "/.well-known/oauth-protected-resource",
        ),
    ] {
        let route = template.resource(
            logical_id,
            "AWS::ApiGatewayV2::Route",
            json!({
                "ApiId": reference("HttpApi"),
                "RouteKey": format!("GET {path}"),
                "AuthorizationType": "NONE",
                "Target": sub("integrations/${McpIntegration}"),
            }),
        );
        route["Condition"] = json!(oauth::ACCEPT_OAUTH);
        skip_checks(
            route,
            &[(
                "CKV_AWS_309",
                "Public by design: the OAuth protected resource metadata (RFC 9728) tells connectors where to sign in, before they have any credential",
            )],
        );
    }
    log_group(template, "ApiAccessLogGroup", "api-gateway");
    template.resource(
        "HttpApiStage",
        "AWS::ApiGatewayV2::Stage",
        json!({
            "ApiId": reference("HttpApi"),
            "StageName": "$default",
            "AutoDeploy": true,
            "AccessLogSettings": {
                "DestinationArn": get_att("ApiAccessLogGroup", "Arn"),
                "Format": "{\"requestId\":\"$context.requestId\",\"ip\":\"$context.identity.sourceIp\",\"requestTime\":\"$context.requestTime\",\"routeKey\":\"$context.routeKey\",\"status\":\"$context.status\",\"authorizerError\":\"$context.authorizer.error\",\"integrationError\":\"$context.integrationErrorMessage\",\"latency\":\"$context.responseLatency\"}",
            },
            "DefaultRouteSettings": { "ThrottlingBurstLimit": 200, "ThrottlingRateLimit": 100 },
        }),
    );
}

/// The authorizer's environment: the key map, and the OAuth settings (an empty issuer: off).
fn authorizer_variables() -> Value {
    let mut variables = serde_json::Map::new();
    variables.insert("MEMBRAIN_KEYS_SECRET".into(), reference("ApiKeysSecret"));
    variables.insert(
        "MEMBRAIN_KEYS_REFRESH_SECS".into(),
        json!(KEYS_REFRESH_SECS),
    );
    for (name, value) in oauth::environment(sub(MCP_URL)) {
        variables.insert(name.into(), value);
    }
    Value::Object(variables)
}

/// The Lambda authorizer (`membrain authorizer` from the tasks' image), its role (logs, and
/// reading only the key map), its log group, and API Gateway's permission to call it.
fn authorizer(template: &mut Template) {
    template.resource(
        "AuthorizerRole",
        "AWS::IAM::Role",
        json!({
            "AssumeRolePolicyDocument": assume_role("lambda.amazonaws.com"),
            "ManagedPolicyArns": [sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")],
            "Policies": [{
                "PolicyName": "read-api-keys",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{ "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": reference("ApiKeysSecret") }],
                },
            }],
        }),
    );
    let function = template.resource(
        "AuthorizerFunction",
        "AWS::Lambda::Function",
        json!({
            "Description": "membrain authorizer: checks the caller's x-api-key against the key map in Secrets Manager",
            "PackageType": "Image",
            "Code": { "ImageUri": reference("ContainerImage") },
            // The image's entrypoint is `membrain`, which speaks the Lambda Runtime API here.
            "ImageConfig": { "Command": ["authorizer"] },
            // The same image as the tasks, so the same architecture.
            "Architectures": ["x86_64"],
            "Role": get_att("AuthorizerRole", "Arn"),
            "Timeout": 5,
            // A log group of the stack's, so its retention is set before the first invocation.
            "LoggingConfig": { "LogGroup": reference("AuthorizerLogGroup"), "LogFormat": "Text" },
            // Lambda's CPU share grows with memory; 256 MB keeps TLS set-up on a cold start short.
            "MemorySize": 256,
            "Environment": { "Variables": authorizer_variables() },
        }),
    );
    skip_checks(
        function,
        &[
            (
                "CKV_AWS_115",
                "Reserved concurrency would take capacity from the account's shared pool (new accounts have only 10); API Gateway's stage throttling bounds the calls instead",
            ),
            (
                "CKV_AWS_116",
                "API Gateway calls the authorizer synchronously: there are no asynchronous events for a dead-letter queue to keep",
            ),
            (
                "CKV_AWS_117",
                "The authorizer reaches only Secrets Manager's regional endpoint and nothing inside the VPC; keeping it out of the VPC avoids NAT or endpoint dependencies on the login path",
            ),
            (
                "CKV_AWS_173",
                "The environment holds only the key map secret's ARN and a refresh interval, neither sensitive; the keys themselves are read from Secrets Manager at run time",
            ),
        ],
    );
    log_group(template, "AuthorizerLogGroup", "authorizer");
    template.resource(
        "Authorizer",
        "AWS::ApiGatewayV2::Authorizer",
        json!({
            "ApiId": reference("HttpApi"),
            "Name": "api-key",
            "AuthorizerType": "REQUEST",
            "AuthorizerUri": sub("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${AuthorizerFunction.Arn}/invocations"),
            "AuthorizerPayloadFormatVersion": "2.0",
            "EnableSimpleResponses": true,
            // A request without the identity header is refused before the function runs:
            // x-api-key, or with OAuth Authorization, which carries a token or a key
            // (connectors can send no other header).
            "IdentitySource": {
                "Fn::If": [
                    oauth::ACCEPT_OAUTH,
                    ["$request.header.Authorization"],
                    ["$request.header.x-api-key"],
                ],
            },
            // Cached per key (the identity source): a revoked key stops within the function's
            // refresh interval plus this.
            "AuthorizerResultTtlInSeconds": AUTHORIZER_CACHE_SECS,
        }),
    );
    template.resource(
        "AuthorizerPermission",
        "AWS::Lambda::Permission",
        json!({
            "Action": "lambda:InvokeFunction",
            "FunctionName": reference("AuthorizerFunction"),
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/authorizers/${Authorizer}"),
        }),
    );
}
