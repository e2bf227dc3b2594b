//! ECS pieces shared by both applications: the cluster, and one Fargate service per `membrain`
//! subcommand with its task definition, execution role and log group.

use serde_json::{Value, json};

use super::network::{Network, assume_role, group_id, log_group};
use super::template::{Template, get_att, reference, sub};
use crate::model::GroupId;

/// One `membrain` service on Fargate.
#[derive(Debug)]
pub(crate) struct Service<'a> {
    /// The logical-id prefix (`Mcp`, `Api`).
    pub name: &'a str,
    /// The `membrain` subcommand the container runs (`mcp`, `api`).
    pub command: &'a str,
    pub port: u16,
    pub cpu: &'a str,
    pub memory: &'a str,
    /// The group every task's interface carries.
    pub group: GroupId,
    pub target_group: &'a str,
    pub environment: Vec<(&'a str, Value)>,
    /// Environment variables filled from Secrets Manager: name and secret ARN.
    pub secrets: Vec<(&'a str, Value)>,
    /// Inline policies (`{PolicyName, PolicyDocument}`, or an `Fn::If` of one) of the role the
    /// container's own AWS calls use; the task gets no role when this is empty.
    pub task_policies: Vec<Value>,
    /// Listeners that must exist before the service registers targets.
    pub depends_on: Vec<&'a str>,
}

/// The image, task count and cluster every application uses.
pub(crate) fn add_cluster(template: &mut Template, network: &str) {
    template.parameter(
        "ContainerImage",
        json!({
            "Type": "String",
            "Description": "The membrain image (built from deploy/Dockerfile), e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/membrain:0.1.0",
        }),
    );
    template.parameter(
        "DesiredCount",
        json!({
            "Type": "Number",
            "Default": 2,
            "MinValue": 1,
            "Description": "Tasks per service; both services are stateless, so more tasks is how they scale",
        }),
    );
    template.resource(
        "Cluster",
        "AWS::ECS::Cluster",
        json!({
            "ClusterName": format!("membrain-{network}"),
            "ClusterSettings": [{ "Name": "containerInsights", "Value": "enabled" }],
        }),
    );
    template.output("ClusterName", "The ECS cluster", reference("Cluster"));
}

pub(crate) fn add_service(
    template: &mut Template,
    network: Network,
    network_name: &str,
    service: &Service,
) {
    let name = service.name;
    let logs = format!("{name}LogGroup");
    log_group(
        template,
        &logs,
        &format!("/membrain/{network_name}/{}", service.command),
    );
    execution_role(template, service);
    let definition = template.resource(
        &format!("{name}TaskDefinition"),
        "AWS::ECS::TaskDefinition",
        json!({
            "Family": format!("membrain-{network_name}-{}", service.command),
            "Cpu": service.cpu,
            "Memory": service.memory,
            "NetworkMode": "awsvpc",
            "RequiresCompatibilities": ["FARGATE"],
            "RuntimePlatform": { "OperatingSystemFamily": "LINUX", "CpuArchitecture": "X86_64" },
            "ExecutionRoleArn": get_att(&format!("{name}ExecutionRole"), "Arn"),
            "ContainerDefinitions": [container(service, &logs)],
        }),
    );
    if !service.task_policies.is_empty() {
        definition["Properties"]["TaskRoleArn"] = get_att(&format!("{name}TaskRole"), "Arn");
        template.resource(
            &format!("{name}TaskRole"),
            "AWS::IAM::Role",
            json!({
                "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com"),
                "Policies": service.task_policies,
            }),
        );
    }
    let resource = template.resource(
        &format!("{name}Service"),
        "AWS::ECS::Service",
        json!({
            "Cluster": reference("Cluster"),
            "ServiceName": format!("membrain-{}", service.command),
            "LaunchType": "FARGATE",
            "DesiredCount": reference("DesiredCount"),
            "TaskDefinition": reference(&format!("{name}TaskDefinition")),
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "AssignPublicIp": "DISABLED",
                    "SecurityGroups": [group_id(&service.group)],
                    "Subnets": network.private_subnets(),
                },
            },
            "LoadBalancers": [{
                "ContainerName": service.command,
                "ContainerPort": service.port,
                "TargetGroupArn": reference(service.target_group),
            }],
            "HealthCheckGracePeriodSeconds": 30,
            "DeploymentConfiguration": {
                "DeploymentCircuitBreaker": { "Enable": true, "Rollback": true },
                "MinimumHealthyPercent": 100,
                "MaximumPercent": 200,
            },
            "PropagateTags": "SERVICE",
            "EnableECSManagedTags": true,
        }),
    );
    resource["DependsOn"] = json!(service.depends_on);
}

/// The container: JSON logs to CloudWatch, secrets injected by ECS (never in the template), a
/// health check on `/health`, a read-only root file system.
fn container(service: &Service, logs: &str) -> Value {
    let pairs = |list: &[(&str, Value)], key: &str| -> Vec<Value> {
        list.iter()
            .map(|(name, value)| json!({ "Name": name, key: value }))
            .collect()
    };
    let mut environment = vec![("MEMBRAIN_LOG_FORMAT", json!("json"))];
    environment.extend(service.environment.iter().cloned());
    let secrets = pairs(&service.secrets, "ValueFrom");
    json!({
        "Name": service.command,
        "Image": reference("ContainerImage"),
        "Command": [service.command],
        "Essential": true,
        "PortMappings": [{ "ContainerPort": service.port, "Protocol": "tcp" }],
        "Environment": pairs(&environment, "Value"),
        "Secrets": secrets,
        "ReadonlyRootFilesystem": true,
        "StopTimeout": 30,
        "HealthCheck": {
            "Command": ["CMD", "curl", "-fsS", format!("http://127.0.0.1:{}/health", service.port)],
            "Interval": 30,
            "Timeout": 5,
            "Retries": 3,
            "StartPeriod": 15,
        },
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": reference(logs),
                "awslogs-region": reference("AWS::Region"),
                "awslogs-stream-prefix": service.command,
            },
        },
    })
}

/// The role ECS uses to pull the image, write logs and read exactly this service's secrets.
fn execution_role(template: &mut Template, service: &Service) {
    let read = |policy_name: &str, resources: Value| {
        json!({
            "PolicyName": policy_name,
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": resources,
                }],
            },
        })
    };
    let mut policies = Vec::new();
    if !service.secrets.is_empty() {
        let arns: Vec<Value> = service.secrets.iter().map(|(_, arn)| arn.clone()).collect();
        policies.push(read("read-secrets", Value::Array(arns)));
    }
    let mut properties = json!({
        "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com"),
        "ManagedPolicyArns": [sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")],
    });
    if !policies.is_empty() {
        properties["Policies"] = Value::Array(policies);
    }
    template.resource(
        &format!("{}ExecutionRole", service.name),
        "AWS::IAM::Role",
        properties,
    );
}

/// A target group for `port` that checks `/health`.
pub(crate) fn target_group(
    template: &mut Template,
    name: &str,
    network: Network,
    protocol: &str,
    port: u16,
) {
    let mut properties = json!({
        "Port": port,
        "Protocol": protocol,
        "TargetType": "ip",
        "VpcId": network.vpc_id(),
        "HealthCheckPath": "/health",
        "HealthCheckIntervalSeconds": 15,
        "HealthyThresholdCount": 2,
        "UnhealthyThresholdCount": 3,
        // Stateless tasks: in-flight requests finish within the shutdown grace, so a short drain.
        "TargetGroupAttributes": [{ "Key": "deregistration_delay.timeout_seconds", "Value": "30" }],
    });
    if protocol == "HTTP" {
        properties["Matcher"] = json!({ "HttpCode": "200" });
    } else {
        properties["HealthCheckProtocol"] = json!("HTTP");
    }
    template.resource(name, "AWS::ElasticLoadBalancingV2::TargetGroup", properties);
}

/// The attributes every load balancer gets: access logs to the given bucket, deletion
/// protection, and (for ALBs) invalid headers dropped.
pub(crate) fn load_balancer_attributes(prefix: &str, application: bool) -> Value {
    let mut attributes = vec![
        json!({ "Key": "deletion_protection.enabled", "Value": "true" }),
        json!({ "Key": "access_logs.s3.enabled", "Value": "true" }),
        json!({ "Key": "access_logs.s3.bucket", "Value": reference("AccessLogsBucket") }),
        json!({ "Key": "access_logs.s3.prefix", "Value": prefix }),
    ];
    if application {
        attributes.push(
            json!({ "Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true" }),
        );
    }
    Value::Array(attributes)
}

pub(crate) fn access_logs_parameter(template: &mut Template) {
    template.parameter(
        "AccessLogsBucket",
        json!({
            "Type": "String",
            "Description": "An S3 bucket (in this region) whose policy lets Elastic Load Balancing write access logs",
        }),
    );
}
