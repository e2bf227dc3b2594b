//! Interface VPC endpoints (`com.amazonaws.<region>.<service>`, private DNS, the plan's groups):
//! created where the VPC has none for the service; on Membrain's own, missing groups attached.
//! An endpoint someone else made for a service already serves it and is left alone (a second
//! one with private DNS would clash with its DNS names).

use aws_sdk_ec2::types::{ResourceType, VpcEndpoint, VpcEndpointType};
use membrain_netsec::VpcEndpoint as PlannedEndpoint;

use crate::NetsecAwsError;
use crate::apply::{ENDPOINT_TAG, MANAGED_TAG, Run};
use crate::convert::{filter, tag_specification};
use crate::error::call_error;
use crate::groups::GroupIds;
use crate::report::{Change, PENDING_ID};
use crate::vpc::VpcState;

/// States in which an endpoint no longer serves its service.
const GONE: [&str; 4] = ["deleting", "deleted", "failed", "rejected"];

/// Makes every planned endpoint exist.
pub(crate) async fn ensure(
    run: &mut Run<'_>,
    vpc: &VpcState,
    ids: &GroupIds,
    subnets: &[String],
) -> Result<(), NetsecAwsError> {
    if run.plan.endpoints.is_empty() {
        return Ok(());
    }
    let region = run.region()?;
    let existing = if vpc.exists {
        describe(run, &vpc.id).await?
    } else {
        Vec::new()
    };
    for planned in &run.plan.endpoints {
        let service_name = format!("com.amazonaws.{region}.{}", planned.service);
        let groups: Vec<String> = planned
            .groups
            .iter()
            .filter_map(|g| ids.get(g).cloned())
            .collect();
        let found = existing
            .iter()
            .find(|e| e.service_name() == Some(service_name.as_str()));
        match found {
            None => create(run, vpc, planned, &service_name, groups, subnets).await?,
            Some(endpoint) if is_owned(endpoint) => {
                attach_missing_groups(run, endpoint, &service_name, groups).await?;
            }
            Some(endpoint) => tracing::info!(
                endpoint = endpoint.vpc_endpoint_id().unwrap_or_default(),
                service = %service_name,
                "an endpoint Membrain does not own already serves this service; leaving it alone"
            ),
        }
    }
    Ok(())
}

/// The VPC's endpoints that still serve their service.
async fn describe(run: &Run<'_>, vpc_id: &str) -> Result<Vec<VpcEndpoint>, NetsecAwsError> {
    let endpoints: Vec<VpcEndpoint> = run
        .client
        .describe_vpc_endpoints()
        .filters(filter("vpc-id", vpc_id))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(call_error("DescribeVpcEndpoints"))?;
    Ok(endpoints
        .into_iter()
        .filter(|e| {
            let state = e.state().map(|s| s.as_str().to_ascii_lowercase());
            !state.is_some_and(|s| GONE.contains(&s.as_str()))
        })
        .collect())
}

fn is_owned(endpoint: &VpcEndpoint) -> bool {
    endpoint
        .tags()
        .iter()
        .any(|t| t.key() == Some(MANAGED_TAG) && t.value() == Some("true"))
}

async fn create(
    run: &mut Run<'_>,
    vpc: &VpcState,
    planned: &PlannedEndpoint,
    service_name: &str,
    groups: Vec<String>,
    subnets: &[String],
) -> Result<(), NetsecAwsError> {
    let endpoint_id = if run.dry_run {
        PENDING_ID.to_owned()
    } else {
        let name = format!("membrain-{}-{}", run.plan.name, planned.service);
        let tags = run.tags(&name, &[(ENDPOINT_TAG, &planned.service)]);
        let output = run
            .client
            .create_vpc_endpoint()
            .vpc_id(&vpc.id)
            .vpc_endpoint_type(VpcEndpointType::Interface)
            .service_name(service_name)
            .private_dns_enabled(planned.private_dns)
            .set_subnet_ids(Some(subnets.to_vec()))
            .set_security_group_ids(Some(groups.clone()))
            .tag_specifications(tag_specification(ResourceType::VpcEndpoint, &tags))
            .send()
            .await
            .map_err(call_error("CreateVpcEndpoint"))?;
        output
            .vpc_endpoint()
            .and_then(|e| e.vpc_endpoint_id())
            .unwrap_or_default()
            .to_owned()
    };
    run.record(Change::CreateEndpoint {
        service_name: service_name.to_owned(),
        endpoint_id,
        groups,
    });
    Ok(())
}

async fn attach_missing_groups(
    run: &mut Run<'_>,
    endpoint: &VpcEndpoint,
    service_name: &str,
    planned_groups: Vec<String>,
) -> Result<(), NetsecAwsError> {
    let missing: Vec<String> = planned_groups
        .into_iter()
        .filter(|id| {
            !endpoint
                .groups()
                .iter()
                .any(|g| g.group_id() == Some(id.as_str()))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let endpoint_id = endpoint.vpc_endpoint_id().unwrap_or_default().to_owned();
    if !run.dry_run {
        run.client
            .modify_vpc_endpoint()
            .vpc_endpoint_id(&endpoint_id)
            .set_add_security_group_ids(Some(missing.clone()))
            .send()
            .await
            .map_err(call_error("ModifyVpcEndpoint"))?;
    }
    run.record(Change::AddEndpointGroups {
        service_name: service_name.to_owned(),
        endpoint_id,
        groups: missing,
    });
    Ok(())
}
