//! VPC endpoints (`com.amazonaws.<region>.<service>`), created where the VPC has none for the
//! service: interface endpoints in the subnets with private DNS and the plan's groups (on
//! Membrain's own, missing groups are attached), gateway endpoints in the route tables of the
//! private subnets (else the VPC's main one). An endpoint someone else made for a service
//! already serves it and is left alone (a second one with private DNS would clash with its DNS
//! names).

use aws_sdk_ec2::types::{ResourceType, RouteTable, VpcEndpoint, VpcEndpointType};
use membrain_netsec::{EndpointKind, VpcEndpoint as PlannedEndpoint};

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
            None if planned.kind == EndpointKind::Gateway => {
                let route_tables = route_tables(run, vpc, subnets).await?;
                let new = NewEndpoint::Gateway { route_tables };
                create(run, vpc, planned, &service_name, new).await?;
            }
            None => {
                let subnets = subnets.to_vec();
                let new = NewEndpoint::Interface { groups, subnets };
                create(run, vpc, planned, &service_name, new).await?;
            }
            Some(_) if planned.kind == EndpointKind::Gateway => {}
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

/// The route tables a gateway endpoint goes in: those of the private subnets, else the VPC's
/// main one (which serves every subnet without its own).
async fn route_tables(
    run: &Run<'_>,
    vpc: &VpcState,
    subnets: &[String],
) -> Result<Vec<String>, NetsecAwsError> {
    if !vpc.exists {
        return Ok(vec![PENDING_ID.to_owned()]);
    }
    let describe = |filters: Vec<aws_sdk_ec2::types::Filter>| async move {
        let tables: Vec<RouteTable> = run
            .client
            .describe_route_tables()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(call_error("DescribeRouteTables"))?;
        let mut ids: Vec<String> = tables
            .iter()
            .filter_map(|t| t.route_table_id().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        Ok::<_, NetsecAwsError>(ids)
    };
    if !subnets.is_empty() {
        let by_subnet = aws_sdk_ec2::types::Filter::builder()
            .name("association.subnet-id")
            .set_values(Some(subnets.to_vec()))
            .build();
        let own = describe(vec![by_subnet]).await?;
        if !own.is_empty() {
            return Ok(own);
        }
    }
    describe(vec![
        filter("vpc-id", &vpc.id),
        filter("association.main", "true"),
    ])
    .await
}

fn is_owned(endpoint: &VpcEndpoint) -> bool {
    endpoint
        .tags()
        .iter()
        .any(|t| t.key() == Some(MANAGED_TAG) && t.value() == Some("true"))
}

/// Where a new endpoint goes.
enum NewEndpoint {
    /// Network interfaces in these subnets, with these groups.
    Interface {
        groups: Vec<String>,
        subnets: Vec<String>,
    },
    /// A route in these route tables.
    Gateway { route_tables: Vec<String> },
}

async fn create(
    run: &mut Run<'_>,
    vpc: &VpcState,
    planned: &PlannedEndpoint,
    service_name: &str,
    new: NewEndpoint,
) -> Result<(), NetsecAwsError> {
    let endpoint_id = if run.dry_run {
        PENDING_ID.to_owned()
    } else {
        let name = format!("membrain-{}-{}", run.plan.name, planned.service);
        let tags = run.tags(&name, &[(ENDPOINT_TAG, &planned.service)]);
        let request = run
            .client
            .create_vpc_endpoint()
            .vpc_id(&vpc.id)
            .service_name(service_name)
            .tag_specifications(tag_specification(ResourceType::VpcEndpoint, &tags));
        let request = match &new {
            NewEndpoint::Interface { groups, subnets } => request
                .vpc_endpoint_type(VpcEndpointType::Interface)
                .private_dns_enabled(planned.private_dns)
                .set_subnet_ids(Some(subnets.clone()))
                .set_security_group_ids(Some(groups.clone())),
            NewEndpoint::Gateway { route_tables } => request
                .vpc_endpoint_type(VpcEndpointType::Gateway)
                .set_route_table_ids(Some(route_tables.clone())),
        };
        let output = request
            .send()
            .await
            .map_err(call_error("CreateVpcEndpoint"))?;
        output
            .vpc_endpoint()
            .and_then(|e| e.vpc_endpoint_id())
            .unwrap_or_default()
            .to_owned()
    };
    let service_name = service_name.to_owned();
    run.record(match new {
        NewEndpoint::Interface { groups, .. } => Change::CreateEndpoint {
            service_name,
            endpoint_id,
            groups,
        },
        NewEndpoint::Gateway { route_tables } => Change::CreateGatewayEndpoint {
            service_name,
            endpoint_id,
            route_tables,
        },
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
