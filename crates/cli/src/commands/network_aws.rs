//! The network commands that render artifacts or call the AWS API.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use membrain_netsec::Topology;
use membrain_netsec::aws_json::AwsSecurityGroup;
use membrain_netsec::render::{Format, StackOptions};
use membrain_netsec_aws::{ApplyOptions, AwsTarget, NetsecAwsError};

use super::network::write_output;
use crate::cli::{AwsArgs, RenderFormat};
use crate::output::say;

/// Region used when neither `--region` nor `AWS_REGION` is given.
const DEFAULT_REGION: &str = "us-east-1";

pub fn render(plan: &Topology, format: RenderFormat, output: Option<&Path>) -> Result<()> {
    let format = match format {
        RenderFormat::AwsCli => Format::AwsCli,
        RenderFormat::Cloudformation => Format::CloudFormation,
        RenderFormat::Terraform => Format::Terraform,
    };
    let text = membrain_netsec::render::render(plan, format, &StackOptions::for_topology(plan));
    write_output(&text, output)
}

fn target(aws: &AwsArgs) -> AwsTarget {
    AwsTarget {
        endpoint_url: aws.endpoint_url.clone(),
        region: aws
            .region
            .clone()
            .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
        vpc_id: aws.vpc_id.clone(),
    }
}

pub async fn apply(plan: &Topology, aws: &AwsArgs, dry_run: bool, json: bool) -> Result<()> {
    let target = target(aws);
    let client = membrain_netsec_aws::connect(&target).await?;
    let options = ApplyOptions {
        vpc_id: aws.vpc_id.clone(),
        dry_run,
    };
    let report = match membrain_netsec_aws::apply(&client, plan, &options).await {
        Ok(report) => report,
        Err(error) => {
            // Say exactly what was already done before the failure.
            let made = error.changes_made();
            if !made.is_empty() {
                eprintln!("apply stopped part-way; these changes were made before the failure:");
                for change in made {
                    eprintln!("  {change}");
                }
            }
            return Err(error.into());
        }
    };
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let verb = if report.dry_run {
        "would change"
    } else {
        "changed"
    };
    say!(
        "Network {} in VPC {} ({}):",
        report.topology,
        report.vpc_id,
        target.endpoint()
    );
    if report.is_unchanged() {
        say!("  nothing to do: AWS already matches the plan");
    } else {
        say!("  {verb} {} thing(s):", report.changes.len());
        for change in &report.changes {
            say!("  - {change}");
        }
    }
    say!("\nGroup ids:");
    for (group, id) in &report.groups {
        say!("  {:<16} {id}", group.0);
    }
    Ok(())
}

/// The live groups, and the ids of the prefix lists `services` (service → `pl-…`) in the
/// region, so that rules naming them read back as the plan's.
pub async fn read_live(
    aws: &AwsArgs,
    services: &[&str],
) -> Result<(Vec<AwsSecurityGroup>, BTreeMap<String, String>)> {
    let target = target(aws);
    let client = membrain_netsec_aws::connect(&target).await?;
    let groups = membrain_netsec_aws::read_live(&client, aws.vpc_id.as_deref())
        .await
        .map_err(|e: NetsecAwsError| anyhow::Error::from(e))
        .with_context(|| format!("reading security groups from {}", target.endpoint()))?;
    let prefix_lists = membrain_netsec_aws::prefix_list_ids(&client, services)
        .await
        .map_err(|e: NetsecAwsError| anyhow::Error::from(e))
        .with_context(|| format!("reading prefix lists from {}", target.endpoint()))?;
    Ok((groups, prefix_lists))
}
