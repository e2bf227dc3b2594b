//! RDS PostgreSQL, shared by both applications: the `alb` API's memory database, and the
//! `gateway` MCP tasks' time-series store (unless the plan chose Timestream).

use serde_json::{Value, json};

use super::alb::SECRET_KMS;
use super::ecs::{InitContainer, SecretEnv};
use super::network::{Network, assume_role, group_id};
use super::template::{Template, get_att, reference, skip_checks, sub};
use crate::model::GroupId;

/// The role the services sign in as (`membrain database setup` makes it), never the master.
const APP_ROLE: &str = "membrain_app";

/// How a service reaches the stack's database: as the application role, whose password ECS
/// injects as `PGPASSWORD` (the URL has none), after an init container has made that role with
/// the RDS-managed master credentials, which the service's own container never sees.
pub(crate) struct DatabaseAccess {
    /// The services' URL (no password): the value of `MEMBRAIN_DATABASE_URL` or
    /// `MEMBRAIN_TS_STORE`.
    pub url: Value,
    pub password: SecretEnv<'static>,
    pub setup: InitContainer<'static>,
}

/// RDS PostgreSQL in the private subnets, carrying the database group: encrypted, Multi-AZ,
/// deletion protection by parameter, the master password managed (and rotated) by RDS in
/// Secrets Manager, and the application role's password generated into a secret of its own
/// (`description` says who uses it).
pub(crate) fn add(
    template: &mut Template,
    network: Network,
    port: u16,
    description: &str,
) -> DatabaseAccess {
    template.parameter(
        "DatabaseInstanceClass",
        json!({ "Type": "String", "Default": "db.t4g.small", "Description": "The RDS instance class" }),
    );
    template.resource(
        "DatabaseSubnetGroup",
        "AWS::RDS::DBSubnetGroup",
        json!({ "DBSubnetGroupDescription": "Private subnets for the Membrain database", "SubnetIds": network.private_subnets() }),
    );
    let password = template.resource(
        "AppDatabaseSecret",
        "AWS::SecretsManager::Secret",
        json!({
            "Name": sub("membrain/${AWS::StackName}/database-app-role"),
            "Description": description,
            "GenerateSecretString": {
                "SecretStringTemplate": format!("{{\"username\":\"{APP_ROLE}\"}}"),
                "GenerateStringKey": "password",
                "PasswordLength": 40,
                // Letters and digits: nothing a shell, a URL or SASLprep could change.
                "ExcludePunctuation": true,
            },
        }),
    );
    skip_checks(password, &[SECRET_KMS]);
    template.resource(
        "DatabaseParameterGroup",
        "AWS::RDS::DBParameterGroup",
        json!({
            "Description": "Membrain PostgreSQL settings",
            "Family": "postgres17",
            "Parameters": {
                // Every connection is encrypted; the API's URL asks for it (sslmode=require).
                "rds.force_ssl": "1",
                "log_min_duration_statement": "1000",
            },
        }),
    );
    template.resource(
        "DatabaseMonitoringRole",
        "AWS::IAM::Role",
        json!({
            "AssumeRolePolicyDocument": assume_role("monitoring.rds.amazonaws.com"),
            "ManagedPolicyArns": [sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole")],
        }),
    );
    let database = template.resource(
        "Database",
        "AWS::RDS::DBInstance",
        json!({
            "Engine": "postgres",
            // The major only: RDS retires minor versions, and AutoMinorVersionUpgrade keeps up.
            "EngineVersion": "17",
            "DBInstanceClass": reference("DatabaseInstanceClass"),
            "DBName": "membrain",
            "Port": port.to_string(),
            "MasterUsername": "membrain",
            // RDS keeps the master password in a secret of its own and rotates it (every 7
            // days); only `membrain database setup` uses it, at each task's start.
            "ManageMasterUserPassword": true,
            "AllocatedStorage": "20",
            "MaxAllocatedStorage": 200,
            "StorageType": "gp3",
            "StorageEncrypted": true,
            "MultiAZ": true,
            "PubliclyAccessible": false,
            "DBSubnetGroupName": reference("DatabaseSubnetGroup"),
            "DBParameterGroupName": reference("DatabaseParameterGroup"),
            "VPCSecurityGroups": [group_id(&GroupId("database".into()))],
            "DeletionProtection": reference("DeletionProtection"),
            "BackupRetentionPeriod": 7,
            "CopyTagsToSnapshot": true,
            "AutoMinorVersionUpgrade": true,
            "EnableCloudwatchLogsExports": ["postgresql", "upgrade"],
            "MonitoringInterval": 60,
            "MonitoringRoleArn": get_att("DatabaseMonitoringRole", "Arn"),
            "EnablePerformanceInsights": true,
        }),
    );
    database["DeletionPolicy"] = json!("Snapshot");
    database["UpdateReplacePolicy"] = json!("Snapshot");
    skip_checks(
        database,
        &[(
            "CKV_AWS_161",
            "membrain signs in with the password from Secrets Manager; IAM authentication tokens expire every 15 minutes and its connection pool does not renew them",
        )],
    );
    // cfn-lint knows only full versions and calls a major-only one deprecated; RDS takes "17" as
    // "the default minor of 17" (and AutoMinorVersionUpgrade keeps it current).
    database["Metadata"]["cfn-lint"] = json!({ "config": { "ignore_checks": ["W3691"] } });
    template.output(
        "DatabaseEndpoint",
        "The PostgreSQL host",
        get_att("Database", "Endpoint.Address"),
    );
    template.output(
        "AppDatabaseSecretArn",
        "The application role's password (membrain_app); the master's is RDS-managed (MasterUserSecret)",
        reference("AppDatabaseSecret"),
    );
    let endpoint =
        "${Database.Endpoint.Address}:${Database.Endpoint.Port}/membrain?sslmode=require";
    let master = get_att("Database", "MasterUserSecret.SecretArn");
    DatabaseAccess {
        url: sub(&format!("postgres://{APP_ROLE}@{endpoint}")),
        password: SecretEnv::key("PGPASSWORD", reference("AppDatabaseSecret"), "password"),
        setup: InitContainer {
            name: "database-setup",
            command: vec!["database", "setup"],
            environment: vec![
                (
                    "MEMBRAIN_ADMIN_DATABASE_URL",
                    sub(&format!("postgres://{endpoint}")),
                ),
                ("MEMBRAIN_APP_DATABASE_ROLE", json!(APP_ROLE)),
            ],
            secrets: vec![
                SecretEnv::key("PGUSER", master.clone(), "username"),
                SecretEnv::key("PGPASSWORD", master, "password"),
                SecretEnv::key(
                    "MEMBRAIN_APP_DATABASE_PASSWORD",
                    reference("AppDatabaseSecret"),
                    "password",
                ),
            ],
        },
    }
}
