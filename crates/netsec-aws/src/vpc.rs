//! The plan's VPC: the one named, the one Membrain created for this plan before, or a new one;
//! and the subnets the interface endpoints go in.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, Subnet, Vpc};
use ipnet::Ipv4Net;
use membrain_netsec::Cidr;

use crate::NetsecAwsError;
use crate::apply::{MANAGED_TAG, Run, TOPOLOGY_TAG};
use crate::convert::{filter, tag_specification};
use crate::error::call_error;
use crate::report::{Change, PENDING_ID};

/// The VPC an apply works in.
pub(crate) struct VpcState {
    pub id: String,
    /// Membrain created it (tagged `membrain:managed=true`), so it may add subnets to it.
    pub owned: bool,
    /// False only in a dry run that would create it: there is nothing to read yet.
    pub exists: bool,
}

/// Finds or creates the VPC: `vpc_id` if given, else (for a plan that creates its VPC) the one
/// tagged with the plan's name, else a new one.
pub(crate) async fn resolve(
    run: &mut Run<'_>,
    vpc_id: Option<&str>,
) -> Result<VpcState, NetsecAwsError> {
    let found = match vpc_id {
        Some(id) => {
            Some(
                describe_by_id(run, id)
                    .await?
                    .ok_or_else(|| NetsecAwsError::VpcNotFound {
                        vpc_id: id.to_owned(),
                    })?,
            )
        }
        None if run.plan.vpc.create => find_created(run).await?,
        None => return Err(NetsecAwsError::VpcRequired),
    };
    match found {
        Some(vpc) => {
            check_cidr(run, &vpc)?;
            Ok(VpcState {
                id: vpc.vpc_id().unwrap_or_default().to_owned(),
                owned: has_tag(vpc.tags(), MANAGED_TAG, "true"),
                exists: true,
            })
        }
        None => create(run).await,
    }
}

async fn describe_by_id(run: &Run<'_>, id: &str) -> Result<Option<Vpc>, NetsecAwsError> {
    match run.client.describe_vpcs().vpc_ids(id).send().await {
        Ok(output) => Ok(output.vpcs().first().cloned()),
        Err(error) if error.code() == Some("InvalidVpcID.NotFound") => Ok(None),
        Err(error) => Err(call_error("DescribeVpcs")(error)),
    }
}

/// The VPC an earlier apply of this plan created, found by its tags.
async fn find_created(run: &Run<'_>) -> Result<Option<Vpc>, NetsecAwsError> {
    let output = run
        .client
        .describe_vpcs()
        .filters(filter(&format!("tag:{TOPOLOGY_TAG}"), &run.plan.name))
        .filters(filter(&format!("tag:{MANAGED_TAG}"), "true"))
        .send()
        .await
        .map_err(call_error("DescribeVpcs"))?;
    let mut vpcs = output.vpcs().to_vec();
    // More than one means someone copied the tags; take the oldest-looking id, consistently.
    vpcs.sort_by(|a, b| a.vpc_id().cmp(&b.vpc_id()));
    if vpcs.len() > 1 {
        tracing::warn!(
            topology = %run.plan.name,
            count = vpcs.len(),
            "more than one VPC carries this plan's tags; using the first"
        );
    }
    Ok(vpcs.into_iter().next())
}

/// Rules that name the VPC CIDR only mean what the plan says if the VPC has that CIDR.
fn check_cidr(run: &Run<'_>, vpc: &Vpc) -> Result<(), NetsecAwsError> {
    let planned = run.plan.vpc.cidr;
    let blocks: Vec<&str> = vpc
        .cidr_block_association_set()
        .iter()
        .filter_map(|a| a.cidr_block())
        .chain(vpc.cidr_block())
        .collect();
    let matches = blocks
        .iter()
        .any(|block| Cidr::parse("vpc", block).is_ok_and(|c| c == planned));
    if matches {
        Ok(())
    } else {
        Err(NetsecAwsError::VpcCidrMismatch {
            vpc_id: vpc.vpc_id().unwrap_or_default().to_owned(),
            actual: blocks.join(", "),
            planned,
        })
    }
}

async fn create(run: &mut Run<'_>) -> Result<VpcState, NetsecAwsError> {
    let cidr = run.plan.vpc.cidr;
    if run.dry_run {
        run.record(Change::CreateVpc {
            vpc_id: PENDING_ID.into(),
            cidr,
        });
        return Ok(VpcState {
            id: PENDING_ID.into(),
            owned: true,
            exists: false,
        });
    }
    let name = format!("membrain-{}", run.plan.name);
    let tags = run.tags(&name, &[(TOPOLOGY_TAG, &run.plan.name)]);
    let output = run
        .client
        .create_vpc()
        .cidr_block(cidr.to_string())
        .tag_specifications(tag_specification(ResourceType::Vpc, &tags))
        .send()
        .await
        .map_err(call_error("CreateVpc"))?;
    let vpc_id = output
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_owned();
    run.record(Change::CreateVpc {
        vpc_id: vpc_id.clone(),
        cidr,
    });
    // Interface endpoints with private DNS need DNS hostnames, which a new VPC has off.
    run.client
        .modify_vpc_attribute()
        .vpc_id(&vpc_id)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .map_err(call_error("ModifyVpcAttribute"))?;
    Ok(VpcState {
        id: vpc_id,
        owned: true,
        exists: true,
    })
}

/// The subnets interface endpoints go in, one per zone: Membrain's private subnets in a VPC it
/// owns (created when missing), else the VPC's own subnets. Empty when nothing needs them.
pub(crate) async fn subnets(
    run: &mut Run<'_>,
    vpc: &VpcState,
) -> Result<Vec<String>, NetsecAwsError> {
    if vpc.owned {
        return ensure_private_subnets(run, vpc).await;
    }
    if run.plan.endpoints.is_empty() {
        return Ok(Vec::new());
    }
    // Interface endpoints go in these subnets; a gateway endpoint goes in their route tables.
    let existing = describe_subnets(run, &vpc.id).await?;
    let per_zone = one_per_zone(&existing);
    if per_zone.is_empty() {
        return Err(NetsecAwsError::NoSubnets {
            vpc_id: vpc.id.clone(),
        });
    }
    Ok(per_zone)
}

async fn describe_subnets(run: &Run<'_>, vpc_id: &str) -> Result<Vec<Subnet>, NetsecAwsError> {
    run.client
        .describe_subnets()
        .filters(filter("vpc-id", vpc_id))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(call_error("DescribeSubnets"))
}

/// The first subnet (by id) of each zone: an interface endpoint takes at most one per zone.
fn one_per_zone(subnets: &[Subnet]) -> Vec<String> {
    let mut sorted: Vec<&Subnet> = subnets.iter().collect();
    sorted.sort_by(|a, b| a.subnet_id().cmp(&b.subnet_id()));
    let mut zones = Vec::new();
    let mut ids = Vec::new();
    for subnet in sorted {
        let zone = subnet.availability_zone().unwrap_or_default();
        if !zones.contains(&zone) {
            zones.push(zone);
            ids.push(subnet.subnet_id().unwrap_or_default().to_owned());
        }
    }
    ids
}

/// Two private subnets (fewer if the region has one zone), the first blocks of the VPC CIDR,
/// created where a subnet with that CIDR does not exist yet.
async fn ensure_private_subnets(
    run: &mut Run<'_>,
    vpc: &VpcState,
) -> Result<Vec<String>, NetsecAwsError> {
    let blocks = private_blocks(run.plan.vpc.cidr)?;
    let zones = availability_zones(run).await?;
    let existing = if vpc.exists {
        describe_subnets(run, &vpc.id).await?
    } else {
        Vec::new()
    };
    let mut ids = Vec::new();
    for (block, zone) in blocks.iter().zip(&zones) {
        let cidr = block.to_string();
        let found = existing
            .iter()
            .find(|s| s.cidr_block() == Some(cidr.as_str()));
        let id = match found {
            Some(subnet) => subnet.subnet_id().unwrap_or_default().to_owned(),
            None => create_subnet(run, vpc, &cidr, zone).await?,
        };
        ids.push(id);
    }
    Ok(ids)
}

async fn create_subnet(
    run: &mut Run<'_>,
    vpc: &VpcState,
    cidr: &str,
    zone: &str,
) -> Result<String, NetsecAwsError> {
    let subnet_id = if run.dry_run {
        PENDING_ID.to_owned()
    } else {
        let name = format!("membrain-{}-private-{zone}", run.plan.name);
        let tags = run.tags(&name, &[(TOPOLOGY_TAG, &run.plan.name)]);
        let output = run
            .client
            .create_subnet()
            .vpc_id(&vpc.id)
            .cidr_block(cidr)
            .availability_zone(zone)
            .tag_specifications(tag_specification(ResourceType::Subnet, &tags))
            .send()
            .await
            .map_err(call_error("CreateSubnet"))?;
        output
            .subnet()
            .and_then(|s| s.subnet_id())
            .unwrap_or_default()
            .to_owned()
    };
    run.record(Change::CreateSubnet {
        subnet_id: subnet_id.clone(),
        cidr: cidr.to_owned(),
        availability_zone: zone.to_owned(),
    });
    Ok(subnet_id)
}

/// The region's first two available zones, by name, so every apply picks the same ones.
async fn availability_zones(run: &Run<'_>) -> Result<Vec<String>, NetsecAwsError> {
    let output = run
        .client
        .describe_availability_zones()
        .filters(filter("state", "available"))
        .send()
        .await
        .map_err(call_error("DescribeAvailabilityZones"))?;
    let mut zones: Vec<String> = output
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name().map(str::to_owned))
        .collect();
    zones.sort();
    zones.truncate(2);
    Ok(zones)
}

/// The first two blocks of the VPC CIDR, each a sixteenth of it (a /20 of a /16), and never
/// smaller than the /28 EC2 allows.
fn private_blocks(vpc_cidr: Cidr) -> Result<Vec<Ipv4Net>, NetsecAwsError> {
    let does_not_fit = || NetsecAwsError::SubnetsDoNotFit { cidr: vpc_cidr };
    let net: Ipv4Net = vpc_cidr.to_string().parse().map_err(|_| does_not_fit())?;
    let prefix = (net.prefix_len() + 4).min(28);
    if prefix <= net.prefix_len() {
        return Err(does_not_fit());
    }
    let blocks: Vec<Ipv4Net> = net
        .subnets(prefix)
        .map_err(|_| does_not_fit())?
        .take(2)
        .collect();
    Ok(blocks)
}

fn has_tag(tags: &[aws_sdk_ec2::types::Tag], key: &str, value: &str) -> bool {
    tags.iter()
        .any(|t| t.key() == Some(key) && t.value() == Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(cidr: &str) -> Result<Vec<String>, NetsecAwsError> {
        let cidr = Cidr::parse("test", cidr).expect("a cidr");
        private_blocks(cidr).map(|b| b.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn private_subnets_are_carved_from_the_front_of_the_vpc() {
        assert_eq!(
            blocks("10.0.0.0/16").expect("fits"),
            ["10.0.0.0/20", "10.0.16.0/20"]
        );
        assert_eq!(
            blocks("172.16.0.0/26").expect("fits"),
            ["172.16.0.0/28", "172.16.0.16/28"]
        );
        assert!(blocks("10.0.0.0/28").is_err());
        assert!(blocks("fd00::/56").is_err());
    }
}
