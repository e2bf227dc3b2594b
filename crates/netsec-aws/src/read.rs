//! Live security groups, read through the SDK into EC2's JSON shape.

use membrain_netsec::aws_json::AwsSecurityGroup;

use crate::NetsecAwsError;
use crate::convert::{filter, group_from_sdk};
use crate::error::call_error;

/// Every security group (in `vpc_id`, when given), as `describe-security-groups` shows them.
/// `DescribeSecurityGroups` is used rather than `DescribeSecurityGroupRules` because it is the
/// call that keeps rule descriptions on group references everywhere (moto drops them from the
/// latter). Feed the result to [`membrain_netsec::aws_json::live_topology`] and
/// [`membrain_netsec::verify::verify`].
pub async fn read_live(
    client: &aws_sdk_ec2::Client,
    vpc_id: Option<&str>,
) -> Result<Vec<AwsSecurityGroup>, NetsecAwsError> {
    let request = client
        .describe_security_groups()
        .set_filters(vpc_id.map(|vpc| vec![filter("vpc-id", vpc)]));
    let groups = request
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(call_error("DescribeSecurityGroups"))?;
    Ok(groups.iter().map(group_from_sdk).collect())
}
