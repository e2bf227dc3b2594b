//! Seed 000's application: internet → public MCP ALB (HTTPS, HTTP redirected) → MCP tasks →
//! internal API ALB → API tasks → RDS PostgreSQL, each carrying its planned group.

use serde_json::{Map, Value, json};

use super::database;
use super::ecs::{
    SecretEnv, Service, add_cluster, add_service, load_balancer_attributes, target_group,
};
use super::network::{Network, group_id};
use super::oauth;
use super::template::{Template, get_att, reference, skip_checks, sub};
use crate::model::GroupId;
use crate::render::StackOptions;

fn group(id: &str) -> GroupId {
    GroupId(id.to_owned())
}

pub(crate) fn add(template: &mut Template, network: Network, name: &str, stack: &StackOptions) {
    template.parameter(
        "CertificateArn",
        json!({ "Type": "String", "Description": "The ACM certificate for the MCP ALB's HTTPS listener (covers PublicHostName)" }),
    );
    template.parameter(
        "PublicHostName",
        json!({ "Type": "String", "Description": "The host name clients use for the MCP server (a DNS record pointing at the MCP ALB)" }),
    );
    access_logs_bucket(template);
    add_cluster(template);
    oauth::add_parameters(template);
    mcp_load_balancer(template, network, stack.mcp_port);
    api_load_balancer(template, network, stack.api_port);
    let database = database::add(
        template,
        network,
        stack.database_port,
        "The password of membrain_app, the role the API tasks sign in as (PGPASSWORD)",
    );
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
            group: group("mcp-ecs"),
            target_group: "McpTargetGroup",
            environment: vec![
                ("MCP_SERVER_HOST", json!("0.0.0.0")),
                ("MCP_SERVER_PORT", json!(stack.mcp_port.to_string())),
                ("API_BASE_URL", sub("http://${ApiLoadBalancer.DNSName}")),
                ("MEMBRAIN_MCP_ALLOWED_HOSTS", reference("PublicHostName")),
                (
                    "MEMBRAIN_MCP_ALLOWED_ORIGINS",
                    sub("https://${PublicHostName}"),
                ),
            ]
            .into_iter()
            .chain(oauth::environment(sub("https://${PublicHostName}/mcp")))
            .collect(),
            // The bridge's own key, with which it serves a token's tenant.
            secrets: vec![SecretEnv::whole(
                "MEMBRAIN_SERVICE_KEY",
                reference("ServiceKeySecret"),
            )],
            init: None,
            task_policies: vec![],
            depends_on: vec!["McpHttpsListener"],
        },
    );
    bootstrap_key_secret(template);
    service_key_secret(template);
    add_service(
        template,
        network,
        name,
        &Service {
            name: "Api",
            command: "api",
            port: stack.api_port,
            cpu: "1024",
            memory: "2048",
            group: group("api-ecs"),
            target_group: "ApiTargetGroup",
            environment: vec![
                ("MEMBRAIN_API_HOST", json!("0.0.0.0")),
                ("MEMBRAIN_API_PORT", json!(stack.api_port.to_string())),
                ("MEMBRAIN_DATABASE_URL", database.url),
            ],
            secrets: vec![
                database.password,
                SecretEnv::whole("MEMBRAIN_API_KEY", reference("BootstrapKeySecret")),
                SecretEnv::whole("MEMBRAIN_SERVICE_KEY", reference("ServiceKeySecret")),
            ],
            init: Some(database.setup),
            task_policies: vec![],
            depends_on: vec!["ApiHttpListener"],
        },
    );
    template.output(
        "McpUrl",
        "Where MCP clients connect",
        sub("https://${PublicHostName}/mcp"),
    );
    template.output(
        "BootstrapKeySecretArn",
        "The first API key (tenant \"default\"): works through McpUrl as soon as the stack is up",
        reference("BootstrapKeySecret"),
    );
    template.output(
        "McpLoadBalancerDnsName",
        "Point PublicHostName's DNS record (CNAME or alias) here",
        get_att("McpLoadBalancer", "DNSName"),
    );
}

fn mcp_load_balancer(template: &mut Template, network: Network, port: u16) {
    let balancer = template.resource(
        "McpLoadBalancer",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        json!({
            "Type": "application",
            "Scheme": "internet-facing",
            "Subnets": network.public_subnets(),
            "SecurityGroups": [group_id(&group("mcp-alb"))],
            "LoadBalancerAttributes": load_balancer_attributes(Some("mcp-alb")),
        }),
    );
    // The balancer checks that it may write its logs when it is created.
    balancer["DependsOn"] = json!("AccessLogsBucketPolicy");
    target_group(template, "McpTargetGroup", network, "HTTP", port);
    template.resource(
        "McpHttpsListener",
        "AWS::ElasticLoadBalancingV2::Listener",
        json!({
            "LoadBalancerArn": reference("McpLoadBalancer"),
            "Port": 443,
            "Protocol": "HTTPS",
            "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "Certificates": [{ "CertificateArn": reference("CertificateArn") }],
            "DefaultActions": [{ "Type": "forward", "TargetGroupArn": reference("McpTargetGroup") }],
        }),
    );
    template.resource(
        "McpHttpListener",
        "AWS::ElasticLoadBalancingV2::Listener",
        json!({
            "LoadBalancerArn": reference("McpLoadBalancer"),
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [{
                "Type": "redirect",
                "RedirectConfig": { "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301" },
            }],
        }),
    );
}

/// The internal API ALB listens on 80 only: TLS ends at the public ALB, and this one is reached
/// only from the MCP tasks' group inside the VPC (its certificate would need a private CA).
fn api_load_balancer(template: &mut Template, network: Network, port: u16) {
    let balancer = template.resource(
        "ApiLoadBalancer",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        json!({
            "Type": "application",
            "Scheme": "internal",
            "Subnets": network.private_subnets(),
            "SecurityGroups": [group_id(&group("api-alb"))],
            "LoadBalancerAttributes": load_balancer_attributes(Some("api-alb")),
        }),
    );
    balancer["DependsOn"] = json!("AccessLogsBucketPolicy");
    target_group(template, "ApiTargetGroup", network, "HTTP", port);
    let listener = template.resource(
        "ApiHttpListener",
        "AWS::ElasticLoadBalancingV2::Listener",
        json!({
            "LoadBalancerArn": reference("ApiLoadBalancer"),
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [{ "Type": "forward", "TargetGroupArn": reference("ApiTargetGroup") }],
        }),
    );
    skip_checks(
        listener,
        &[("CKV_AWS_2", INTERNAL_HTTP), ("CKV_AWS_103", INTERNAL_HTTP)],
    );
}

/// The first API key, generated into Secrets Manager and given to the API tasks as the
/// single-user key (tenant `default`): the database admits only the API tasks and the API ALB is
/// internal, so nothing outside could create a key otherwise. More keys: DEPLOY.md.
/// The MCP bridge's service key, shared with the API: with it, and only with it, the bridge
/// names the tenant of a caller it knows by an OAuth access token (the token stays with the
/// bridge). Generated; no person needs it.
fn service_key_secret(template: &mut Template) {
    let secret = template.resource(
        "ServiceKeySecret",
        "AWS::SecretsManager::Secret",
        json!({
            "Name": sub("membrain/${AWS::StackName}/service-key"),
            "Description": "The MCP bridge's service key (MEMBRAIN_SERVICE_KEY of the MCP and API tasks): it names an OAuth caller's tenant to the API",
            "GenerateSecretString": { "PasswordLength": 48, "ExcludePunctuation": true },
        }),
    );
    skip_checks(secret, &[SECRET_KMS]);
}

fn bootstrap_key_secret(template: &mut Template) {
    let secret = template.resource(
        "BootstrapKeySecret",
        "AWS::SecretsManager::Secret",
        json!({
            "Name": sub("membrain/${AWS::StackName}/bootstrap-key"),
            "Description": "The first Membrain API key (tenant default), read by the API tasks as MEMBRAIN_API_KEY",
            "GenerateSecretString": {
                "PasswordLength": 48,
                // Sent in a header and pasted into client configurations: letters and digits.
                "ExcludePunctuation": true,
            },
        }),
    );
    skip_checks(secret, &[SECRET_KMS]);
}

/// The Elastic Load Balancing account of each region opened before August 2022, which writes
/// access logs there; regions opened later take the log delivery service principal instead.
const ELB_ACCOUNTS: [(&str, &str); 20] = [
    ("us-east-1", "127311923021"),
    ("us-east-2", "033677994240"),
    ("us-west-1", "027434742980"),
    ("us-west-2", "797873946194"),
    ("af-south-1", "098369216593"),
    ("ca-central-1", "985666609251"),
    ("eu-central-1", "054676820928"),
    ("eu-west-1", "156460612806"),
    ("eu-west-2", "652711504416"),
    ("eu-south-1", "635631232127"),
    ("eu-west-3", "009996457667"),
    ("eu-north-1", "897822967062"),
    ("ap-east-1", "754344448648"),
    ("ap-northeast-1", "582318560864"),
    ("ap-northeast-2", "600734575887"),
    ("ap-northeast-3", "383597477331"),
    ("ap-southeast-1", "114774131450"),
    ("ap-southeast-2", "783225319266"),
    ("ap-south-1", "718504428378"),
    ("sa-east-1", "507241528517"),
];

/// The bucket both ALBs write access logs to, made by the stack with the policy Elastic Load
/// Balancing needs: S3-managed encryption (the only kind ALB logs support), no public access,
/// objects owned by the bucket's account, logs expired after a year. Kept when the stack is
/// deleted (it holds the logs of whatever happened); its name is generated, so a retry never
/// collides with it.
fn access_logs_bucket(template: &mut Template) {
    let bucket = template.resource(
        "AccessLogsBucket",
        "AWS::S3::Bucket",
        json!({
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{
                    "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" },
                }],
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": true,
                "BlockPublicPolicy": true,
                "IgnorePublicAcls": true,
                "RestrictPublicBuckets": true,
            },
            "OwnershipControls": { "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] },
            "VersioningConfiguration": { "Status": "Enabled" },
            "LifecycleConfiguration": {
                "Rules": [{
                    "Id": "expire-access-logs",
                    "Status": "Enabled",
                    "ExpirationInDays": 365,
                    "NoncurrentVersionExpiration": { "NoncurrentDays": 30 },
                }],
            },
        }),
    );
    bucket["DeletionPolicy"] = json!("Retain");
    bucket["UpdateReplacePolicy"] = json!("Retain");
    skip_checks(
        bucket,
        &[(
            "CKV_AWS_18",
            "This bucket holds access logs; logging its own accesses would need yet another bucket",
        )],
    );
    let accounts: Map<String, Value> = ELB_ACCOUNTS
        .iter()
        .map(|(region, account)| ((*region).to_owned(), json!({ "Account": account })))
        .collect();
    template
        .mappings
        .insert("ElbAccounts".into(), Value::Object(accounts));
    // Fn::Or takes at most 10 conditions: one Or per ten regions, and an Or of those.
    let ors: Vec<Value> = ELB_ACCOUNTS
        .chunks(10)
        .map(|regions| {
            let equals: Vec<Value> = regions
                .iter()
                .map(|(region, _)| json!({ "Fn::Equals": [reference("AWS::Region"), region] }))
                .collect();
            json!({ "Fn::Or": equals })
        })
        .collect();
    template.condition("ElbAccountRegion", json!({ "Fn::Or": ors }));
    // The account comes from the mapping, looked up only in the regions it has.
    let elb_account =
        json!({ "Fn::FindInMap": ["ElbAccounts", reference("AWS::Region"), "Account"] });
    let writer = json!({
        "Fn::If": [
            "ElbAccountRegion",
            { "AWS": { "Fn::Sub": ["arn:${AWS::Partition}:iam::${ElbAccount}:root", { "ElbAccount": elb_account }] } },
            { "Service": "logdelivery.elasticloadbalancing.amazonaws.com" },
        ],
    });
    template.resource(
        "AccessLogsBucketPolicy",
        "AWS::S3::BucketPolicy",
        json!({
            "Bucket": reference("AccessLogsBucket"),
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "LoadBalancerAccessLogs",
                        "Effect": "Allow",
                        "Principal": writer,
                        "Action": "s3:PutObject",
                        "Resource": sub("${AccessLogsBucket.Arn}/*/AWSLogs/${AWS::AccountId}/*"),
                    },
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [
                            get_att("AccessLogsBucket", "Arn"),
                            sub("${AccessLogsBucket.Arn}/*"),
                        ],
                        "Condition": { "Bool": { "aws:SecureTransport": "false" } },
                    },
                ],
            },
        }),
    );
    template.output(
        "AccessLogsBucketName",
        "Where both load balancers write access logs",
        reference("AccessLogsBucket"),
    );
}

const INTERNAL_HTTP: &str = "Internal API ALB: TLS from clients ends at the public MCP ALB; this listener is reachable only from the MCP tasks' security group inside the VPC, and HTTPS here needs a private certificate authority (add one and a 443 listener to encrypt inside the VPC too)";

pub(crate) const SECRET_KMS: (&str, &str) = (
    "CKV_AWS_149",
    "Secrets Manager encrypts the secret with its AWS-managed key; a customer-managed KMS key is left to accounts whose compliance requires it",
);
