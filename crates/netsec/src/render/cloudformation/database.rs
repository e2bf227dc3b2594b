//! RDS PostgreSQL, shared by both applications: the `alb` API's memory database, and the
//! `gateway` MCP tasks' time-series store (unless the plan chose Timestream).

use serde_json::json;

use super::alb::SECRET_KMS;
use super::network::{Network, assume_role, group_id};
use super::template::{Template, get_att, reference, skip_checks, sub};
use crate::model::GroupId;

/// RDS PostgreSQL in the private subnets, carrying the database group: encrypted, Multi-AZ,
/// deletion-protected, with its password generated into Secrets Manager and the connection URL
/// (`DatabaseUrlSecret`, described by `url_use`) kept in a second secret.
pub(crate) fn add(template: &mut Template, network: Network, port: u16, url_use: &str) {
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
        "DatabasePasswordSecret",
        "AWS::SecretsManager::Secret",
        json!({
            "Name": sub("membrain/${AWS::StackName}/database-password"),
            "Description": "The Membrain database's master user and password",
            "GenerateSecretString": {
                "SecretStringTemplate": "{\"username\":\"membrain\"}",
                "GenerateStringKey": "password",
                "PasswordLength": 40,
                // The password is spliced into a URL: letters and digits only.
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
            "MasterUserPassword": sub("{{resolve:secretsmanager:${DatabasePasswordSecret}:SecretString:password}}"),
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
    let url = template.resource(
        "DatabaseUrlSecret",
        "AWS::SecretsManager::Secret",
        json!({
            "Name": sub("membrain/${AWS::StackName}/database-url"),
            "Description": url_use,
            "SecretString": sub("postgres://membrain:{{resolve:secretsmanager:${DatabasePasswordSecret}:SecretString:password}}@${Database.Endpoint.Address}:${Database.Endpoint.Port}/membrain?sslmode=require"),
        }),
    );
    skip_checks(url, &[SECRET_KMS]);
    template.output(
        "DatabaseEndpoint",
        "The PostgreSQL host",
        get_att("Database", "Endpoint.Address"),
    );
}
