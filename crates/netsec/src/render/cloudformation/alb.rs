//! Seed 000's application: internet → public MCP ALB (HTTPS, HTTP redirected) → MCP tasks →
//! internal API ALB → API tasks → RDS PostgreSQL, each carrying its planned group.

use serde_json::json;

use super::database;
use super::ecs::{
    Service, access_logs_parameter, add_cluster, add_service, load_balancer_attributes,
    target_group,
};
use super::network::{Network, group_id};
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
    access_logs_parameter(template);
    add_cluster(template);
    mcp_load_balancer(template, network, stack.mcp_port);
    api_load_balancer(template, network, stack.api_port);
    database::add(
        template,
        network,
        stack.database_port,
        "MEMBRAIN_DATABASE_URL for the API tasks",
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
            ],
            secrets: vec![],
            task_policies: vec![],
            depends_on: vec!["McpHttpsListener"],
        },
    );
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
            ],
            secrets: vec![("MEMBRAIN_DATABASE_URL", reference("DatabaseUrlSecret"))],
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
        "McpLoadBalancerDnsName",
        "Point PublicHostName's DNS record (CNAME or alias) here",
        get_att("McpLoadBalancer", "DNSName"),
    );
}

fn mcp_load_balancer(template: &mut Template, network: Network, port: u16) {
    template.resource(
        "McpLoadBalancer",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        json!({
            "Type": "application",
            "Scheme": "internet-facing",
            "Subnets": network.public_subnets(),
            "SecurityGroups": [group_id(&group("mcp-alb"))],
            "LoadBalancerAttributes": load_balancer_attributes("mcp-alb", true),
        }),
    );
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
    template.resource(
        "ApiLoadBalancer",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        json!({
            "Type": "application",
            "Scheme": "internal",
            "Subnets": network.private_subnets(),
            "SecurityGroups": [group_id(&group("api-alb"))],
            "LoadBalancerAttributes": load_balancer_attributes("api-alb", true),
        }),
    );
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

const INTERNAL_HTTP: &str = "Internal API ALB: TLS from clients ends at the public MCP ALB; this listener is reachable only from the MCP tasks' security group inside the VPC, and HTTPS here needs a private certificate authority (add one and a 443 listener to encrypt inside the VPC too)";

pub(crate) const SECRET_KMS: (&str, &str) = (
    "CKV_AWS_149",
    "Secrets Manager encrypts the secret with its AWS-managed key; a customer-managed KMS key is left to accounts whose compliance requires it",
);
