//! Seed 001's application: API Gateway HTTP API (a Lambda authorizer checks the caller's key
//! against a Secrets Manager secret) → VPC Link (carrying the VPC Link group) → internal NLB →
//! MCP tasks on their port in private subnets, carrying the MCP server group.

use serde_json::json;

use super::alb::SECRET_KMS;
use super::ecs::{
    Service, access_logs_parameter, add_cluster, add_service, load_balancer_attributes,
    target_group,
};
use super::network::{LOG_GROUP_KMS, Network, assume_role, group_id, log_group};
use super::template::{Template, get_att, reference, skip_checks, sub};
use crate::model::GroupId;
use crate::render::StackOptions;

/// The authorizer: the key from `X-API-Key` or `Authorization: Bearer`, compared in constant
/// time with the secret's value (read once per container, refreshed every five minutes so a
/// rotation takes effect without a deployment).
const AUTHORIZER_CODE: &str = r#"import hmac, os, time
import boto3

_client = boto3.client("secretsmanager")
_cache = {"key": None, "at": 0.0}


def _expected_key():
    if _cache["key"] is None or time.time() - _cache["at"] > 300:
        value = _client.get_secret_value(SecretId=os.environ["API_KEY_SECRET_ARN"])
        _cache["key"], _cache["at"] = value["SecretString"].strip(), time.time()
    return _cache["key"]


def handler(event, context):
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    key = headers.get("x-api-key", "")
    if not key and headers.get("authorization", "").lower().startswith("bearer "):
        key = headers["authorization"][7:].strip()
    ok = bool(key) and hmac.compare_digest(key.encode(), _expected_key().encode())
    return {"isAuthorized": ok}
"#;

pub(crate) fn add(template: &mut Template, network: Network, name: &str, stack: &StackOptions) {
    template.parameter(
        "ApiBaseUrl",
        json!({
            "Type": "String",
            "Description": "The Memory REST API the MCP server forwards to (API_BASE_URL), e.g. the alb profile's internal API ALB",
        }),
    );
    access_logs_parameter(template);
    add_cluster(template, name);
    api_key_secret(template, name);
    load_balancer(template, network, stack.mcp_port);
    http_api(template, network, name);
    authorizer(template, name);
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
            environment: vec![
                ("MCP_SERVER_HOST", json!("0.0.0.0")),
                ("MCP_SERVER_PORT", json!(stack.mcp_port.to_string())),
                ("API_BASE_URL", reference("ApiBaseUrl")),
                (
                    "MEMBRAIN_MCP_ALLOWED_HOSTS",
                    sub(
                        "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix},${NetworkLoadBalancer.DNSName}",
                    ),
                ),
            ],
            secrets: vec![],
            depends_on: vec!["NetworkLoadBalancerListener"],
        },
    );
    template.output(
        "McpUrl",
        "Where MCP clients connect (send the key from ApiKeySecretArn as X-API-Key)",
        sub("https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/mcp"),
    );
    template.output(
        "ApiKeySecretArn",
        "The secret holding the API key callers send",
        reference("ApiKeySecret"),
    );
}

fn api_key_secret(template: &mut Template, name: &str) {
    let secret = template.resource(
        "ApiKeySecret",
        "AWS::SecretsManager::Secret",
        json!({
            "Name": format!("membrain/{name}/api-key"),
            "Description": "The API key the API Gateway authorizer accepts",
            "GenerateSecretString": { "PasswordLength": 43, "ExcludePunctuation": true },
        }),
    );
    skip_checks(secret, &[SECRET_KMS]);
}

/// An internal NLB without security groups: the topology admits its traffic to the MCP tasks
/// through the VPC CIDR rule (NLB groups can only be chosen when it is created).
fn load_balancer(template: &mut Template, network: Network, port: u16) {
    template.resource(
        "NetworkLoadBalancer",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        json!({
            "Type": "network",
            "Scheme": "internal",
            "Subnets": network.private_subnets(),
            "LoadBalancerAttributes": load_balancer_attributes("mcp-nlb", false),
        }),
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
    log_group(
        template,
        "ApiAccessLogGroup",
        &format!("/membrain/{name}/api-gateway"),
    );
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

/// The Lambda authorizer, its role (logs, and reading only the API key secret), its log group,
/// and API Gateway's permission to call it.
fn authorizer(template: &mut Template, name: &str) {
    template.resource(
        "AuthorizerRole",
        "AWS::IAM::Role",
        json!({
            "AssumeRolePolicyDocument": assume_role("lambda.amazonaws.com"),
            "ManagedPolicyArns": [sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")],
            "Policies": [{
                "PolicyName": "read-api-key",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{ "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": reference("ApiKeySecret") }],
                },
            }],
        }),
    );
    let function = template.resource(
        "AuthorizerFunction",
        "AWS::Lambda::Function",
        json!({
            "FunctionName": format!("membrain-{name}-authorizer"),
            "Description": "Checks the caller's API key against the Secrets Manager secret",
            "Runtime": "python3.13",
            "Handler": "index.handler",
            "Role": get_att("AuthorizerRole", "Arn"),
            "Timeout": 5,
            "MemorySize": 128,
            "Environment": { "Variables": { "API_KEY_SECRET_ARN": reference("ApiKeySecret") } },
            "Code": { "ZipFile": AUTHORIZER_CODE },
        }),
    );
    function["DependsOn"] = json!("AuthorizerLogGroup");
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
                "The only environment variable is the secret's ARN, which is not sensitive; the key itself is read from Secrets Manager at run time",
            ),
        ],
    );
    template.resources.insert(
        "AuthorizerLogGroup".into(),
        json!({
            "Type": "AWS::Logs::LogGroup",
            "Properties": { "LogGroupName": format!("/aws/lambda/membrain-{name}-authorizer"), "RetentionInDays": 365 },
            "Metadata": { "checkov": { "skip": [{ "id": LOG_GROUP_KMS.0, "comment": LOG_GROUP_KMS.1 }] } },
        }),
    );
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
            // No caching: the key may come in either of two headers.
            "AuthorizerResultTtlInSeconds": 0,
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
