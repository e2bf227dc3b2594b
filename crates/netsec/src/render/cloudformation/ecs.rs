//! ECS pieces shared by both applications: the cluster, and one Fargate service per `membrain`
//! subcommand with its task definition, execution role and log group.
//!
//! Metrics reach CloudWatch through a CloudWatch agent sidecar (when `MetricsAgentImage` is
//! given): every `membrain` container serves Prometheus metrics on the task's loopback
//! ([`METRICS_LISTEN`], never on the port the load balancer reaches), the agent scrapes them and
//! writes them as embedded metric format to the service's metrics log group, from which
//! CloudWatch makes metrics in the `Membrain` namespace. A sidecar rather than EMF written by
//! Membrain itself: the Prometheus endpoint stays the one source for every scraper, and the
//! agent's failure cannot touch the service (it is not essential).

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
    pub secrets: Vec<SecretEnv<'a>>,
    /// A container that must run to completion before the service's own starts.
    pub init: Option<InitContainer<'a>>,
    /// Inline policies (`{PolicyName, PolicyDocument}`, or an `Fn::If` of one) of the role the
    /// container's own AWS calls use; the task gets no role when this is empty.
    pub task_policies: Vec<Value>,
    /// Listeners that must exist before the service registers targets.
    pub depends_on: Vec<&'a str>,
}

/// An environment variable ECS fills from Secrets Manager when the task starts (never in the
/// template, never in the task definition).
#[derive(Debug, Clone)]
pub(crate) struct SecretEnv<'a> {
    pub name: &'a str,
    /// The secret's ARN.
    pub secret: Value,
    /// One key of a JSON secret; `None` takes the whole string.
    pub key: Option<&'a str>,
}

impl<'a> SecretEnv<'a> {
    pub fn whole(name: &'a str, secret: Value) -> Self {
        Self {
            name,
            secret,
            key: None,
        }
    }

    pub fn key(name: &'a str, secret: Value, key: &'a str) -> Self {
        Self {
            name,
            secret,
            key: Some(key),
        }
    }

    /// ECS's `ValueFrom`: the ARN, or `arn:key::` for one key of a JSON secret.
    fn value_from(&self) -> Value {
        match self.key {
            None => self.secret.clone(),
            Some(key) => json!({ "Fn::Join": ["", [self.secret, format!(":{key}::")]] }),
        }
    }
}

/// A container of the service's image that runs one `membrain` command to completion before
/// the service's container starts (an ECS `SUCCESS` dependency): if it fails, the task stops
/// and the service's container never runs.
#[derive(Debug)]
pub(crate) struct InitContainer<'a> {
    pub name: &'a str,
    pub command: Vec<&'a str>,
    pub environment: Vec<(&'a str, Value)>,
    pub secrets: Vec<SecretEnv<'a>>,
}

/// Where every `membrain` container serves `/metrics`: the task's loopback, which the sidecar in
/// the same task (awsvpc: one network namespace) reaches and nothing outside the task does.
pub(crate) const METRICS_LISTEN: &str = "127.0.0.1:9464";

/// The condition under which tasks carry the CloudWatch agent sidecar.
const SHIP_METRICS: &str = "ShipMetrics";

/// The CloudWatch namespace of Membrain's metrics.
pub(crate) const METRICS_NAMESPACE: &str = "Membrain";

/// The image, task count and cluster every application uses.
pub(crate) fn add_cluster(template: &mut Template) {
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
    template.parameter(
        "DeletionProtection",
        json!({
            "Type": "String",
            "Default": "false",
            "AllowedValues": ["true", "false"],
            "Description": "Deletion protection on the load balancers and the database. Leave false for the first deploy (a failed create must be able to roll back), then update the stack with true",
        }),
    );
    template.parameter(
        "MetricsAgentImage",
        json!({
            "Type": "String",
            "Default": "",
            "Description": "The CloudWatch agent image for the metrics sidecar, copied into your ECR (tasks reach no public registry), e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/cloudwatch-agent:1.300052.0b1024; empty: no sidecar, metrics stay inside each task",
        }),
    );
    template.condition(
        SHIP_METRICS,
        json!({ "Fn::Not": [{ "Fn::Equals": [reference("MetricsAgentImage"), ""] }] }),
    );
    template.resource(
        "Cluster",
        "AWS::ECS::Cluster",
        json!({
            "ClusterName": reference("AWS::StackName"),
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
    log_group(template, &logs, service.command);
    let metrics_logs = format!("{name}MetricsLogGroup");
    let metrics_suffix = format!("{}/metrics", service.command);
    log_group(template, &metrics_logs, &metrics_suffix)["Condition"] = json!(SHIP_METRICS);
    execution_role(template, service);
    let sidecar = json!({
        "Fn::If": [
            SHIP_METRICS,
            metrics_agent(service, &metrics_suffix, &logs),
            reference("AWS::NoValue"),
        ],
    });
    template.resource(
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
            "TaskRoleArn": get_att(&format!("{name}TaskRole"), "Arn"),
            "ContainerDefinitions": containers(service, &logs, sidecar),
        }),
    );
    // The task role: the container's own AWS calls, and the sidecar's metrics (only into this
    // service's metrics log group).
    let mut task_policies = service.task_policies.clone();
    task_policies.push(json!({
        "Fn::If": [
            SHIP_METRICS,
            write_metrics_policy(&metrics_logs),
            reference("AWS::NoValue"),
        ],
    }));
    template.resource(
        &format!("{name}TaskRole"),
        "AWS::IAM::Role",
        json!({
            "AssumeRolePolicyDocument": assume_role("ecs-tasks.amazonaws.com"),
            "Policies": task_policies,
        }),
    );
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

/// The task's containers: the service's, the init container it waits for (if any), the metrics
/// sidecar.
fn containers(service: &Service, logs: &str, sidecar: Value) -> Value {
    let mut main = container(service, logs);
    let init = service.init.as_ref().map(|init| {
        main["DependsOn"] = json!([{ "ContainerName": init.name, "Condition": "SUCCESS" }]);
        init_container(init, logs)
    });
    Value::Array(
        [Some(main), init, Some(sidecar)]
            .into_iter()
            .flatten()
            .collect(),
    )
}

fn environment_pairs(list: &[(&str, Value)]) -> Value {
    list.iter()
        .map(|(name, value)| json!({ "Name": name, "Value": value }))
        .collect()
}

fn secret_pairs(list: &[SecretEnv]) -> Value {
    list.iter()
        .map(|secret| json!({ "Name": secret.name, "ValueFrom": secret.value_from() }))
        .collect()
}

/// The init container: the service's image running one command, logging beside the service.
fn init_container(init: &InitContainer, logs: &str) -> Value {
    let mut environment = vec![("MEMBRAIN_LOG_FORMAT", json!("json"))];
    environment.extend(init.environment.iter().cloned());
    json!({
        "Name": init.name,
        "Image": reference("ContainerImage"),
        "Command": init.command,
        "Essential": false,
        "Environment": environment_pairs(&environment),
        "Secrets": secret_pairs(&init.secrets),
        "ReadonlyRootFilesystem": true,
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": reference(logs),
                "awslogs-region": reference("AWS::Region"),
                "awslogs-stream-prefix": init.name,
            },
        },
    })
}

/// The container: JSON logs to CloudWatch, secrets injected by ECS (never in the template), a
/// health check on `/health`, a read-only root file system.
fn container(service: &Service, logs: &str) -> Value {
    let mut environment = vec![
        ("MEMBRAIN_LOG_FORMAT", json!("json")),
        ("MEMBRAIN_METRICS_LISTEN", json!(METRICS_LISTEN)),
    ];
    environment.extend(service.environment.iter().cloned());
    json!({
        "Name": service.command,
        "Image": reference("ContainerImage"),
        "Command": [service.command],
        "Essential": true,
        "PortMappings": [{ "ContainerPort": service.port, "Protocol": "tcp" }],
        "Environment": environment_pairs(&environment),
        "Secrets": secret_pairs(&service.secrets),
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

/// The CloudWatch agent sidecar: scrapes the `membrain` container's `/metrics` every 30 s and
/// writes them to `metrics_log_group` as embedded metric format. Per service: every metric
/// summed over its labels; requests also by route and status, tool calls by tool and outcome.
/// Not essential: a broken agent loses metrics, never the service.
///
/// Both configurations are JSON text passed through `Fn::Sub`, for the stack's name (the cluster's
/// and the log group's); the text holds no other `${`.
fn metrics_agent(service: &Service, metrics_suffix: &str, logs: &str) -> Value {
    let job = format!("membrain-{}", service.command);
    // Prometheus reads YAML, and JSON is YAML: built as a value, so nothing needs quoting.
    let prometheus = json!({
        "global": { "scrape_interval": "30s", "scrape_timeout": "10s" },
        "scrape_configs": [{
            "job_name": job,
            "metrics_path": "/metrics",
            "static_configs": [{
                "targets": [METRICS_LISTEN],
                "labels": { "ClusterName": "${AWS::StackName}", "Service": service.command },
            }],
        }],
    });
    let declaration = |dimensions: Value, selectors: &[&str]| {
        json!({
            "source_labels": ["job"],
            "label_matcher": format!("^{job}$"),
            "dimensions": dimensions,
            "metric_selectors": selectors,
        })
    };
    let agent = json!({
        "agent": { "metrics_collection_interval": 30 },
        "logs": {
            "metrics_collected": {
                "prometheus": {
                    "log_group_name": format!("/membrain/${{AWS::StackName}}/{metrics_suffix}"),
                    "prometheus_config_path": "env:PROMETHEUS_CONFIG_CONTENT",
                    "emf_processor": {
                        "metric_namespace": METRICS_NAMESPACE,
                        "metric_declaration": [
                            declaration(json!([["ClusterName", "Service"]]), &["^membrain_"]),
                            declaration(
                                json!([["ClusterName", "Service", "route", "status"]]),
                                &["^membrain_http_requests_total$"],
                            ),
                            declaration(
                                json!([["ClusterName", "Service", "tool", "outcome"]]),
                                &["^membrain_mcp_tool_calls_total$"],
                            ),
                        ],
                    },
                },
            },
            "force_flush_interval": 15,
        },
    });
    json!({
        "Name": "cloudwatch-agent",
        "Image": reference("MetricsAgentImage"),
        "Essential": false,
        "Environment": [
            { "Name": "CW_CONFIG_CONTENT", "Value": sub(&agent.to_string()) },
            { "Name": "PROMETHEUS_CONFIG_CONTENT", "Value": sub(&prometheus.to_string()) },
        ],
        // The agent writes its translated configuration under /opt/aws/amazon-cloudwatch-agent.
        "ReadonlyRootFilesystem": false,
        "MemoryReservation": 64,
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": reference(logs),
                "awslogs-region": reference("AWS::Region"),
                "awslogs-stream-prefix": "cloudwatch-agent",
            },
        },
    })
}

/// What the sidecar may do: write log events into its service's metrics log group, nothing else.
fn write_metrics_policy(metrics_logs: &str) -> Value {
    json!({
        "PolicyName": "write-metrics",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                "Resource": [get_att(metrics_logs, "Arn")],
            }],
        },
    })
}

/// The role ECS uses to pull the image, write logs and read exactly the secrets this service's
/// containers (the init container's too) are given.
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
    let mut arns: Vec<Value> = Vec::new();
    let init_secrets = service.init.iter().flat_map(|init| &init.secrets);
    for secret in service.secrets.iter().chain(init_secrets) {
        if !arns.contains(&secret.secret) {
            arns.push(secret.secret.clone());
        }
    }
    if !arns.is_empty() {
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

/// Deletion protection (the parameter) on every load balancer; an ALB also drops invalid
/// headers and writes access logs under `access_log_prefix` in the stack's bucket. An NLB has no
/// access logs: they exist only for TLS listeners, and this stack's NLB forwards TCP.
pub(crate) fn load_balancer_attributes(access_log_prefix: Option<&str>) -> Value {
    let mut attributes = vec![
        json!({ "Key": "deletion_protection.enabled", "Value": reference("DeletionProtection") }),
    ];
    if let Some(prefix) = access_log_prefix {
        attributes.extend([
            json!({ "Key": "access_logs.s3.enabled", "Value": "true" }),
            json!({ "Key": "access_logs.s3.bucket", "Value": reference("AccessLogsBucket") }),
            json!({ "Key": "access_logs.s3.prefix", "Value": prefix }),
            json!({ "Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true" }),
        ]);
    }
    Value::Array(attributes)
}
