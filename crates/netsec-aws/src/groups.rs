//! The plan's security groups: found by their `membrain:group` tag or created, their tags
//! restored, and their rules reconciled. Groups without the tag are never changed.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ec2::types::ResourceType;
use membrain_netsec::aws_json::{AwsIpPermission, AwsIpRange, AwsSecurityGroup, AwsTag, GROUP_TAG};
use membrain_netsec::eval::Direction;
use membrain_netsec::{GroupId, SecurityGroup};

use crate::NetsecAwsError;
use crate::apply::Run;
use crate::convert::{
    LiveRule, live_rules, permission_to_sdk, rule_to_permission, sdk_tag, tag_specification,
};
use crate::error::call_error;
use crate::read::read_live;
use crate::report::{Change, PENDING_ID};
use crate::rule_diff::RuleDiff;
use crate::vpc::VpcState;

/// Each planned group's `sg-…` id, by logical id.
pub(crate) type GroupIds = BTreeMap<GroupId, String>;

/// Finds or creates every planned group; returns their ids and the VPC's groups as they are
/// now (with what a dry run would create standing in for the groups it did not).
pub(crate) async fn ensure(
    run: &mut Run<'_>,
    vpc: &VpcState,
) -> Result<(GroupIds, Vec<AwsSecurityGroup>), NetsecAwsError> {
    let mut live = if vpc.exists {
        read_live(run.client, Some(&vpc.id)).await?
    } else {
        Vec::new()
    };
    // Every clash is found before the first group is created.
    check_names(run, vpc, &live)?;
    let mut ids = GroupIds::new();
    let mut created = false;
    for planned in &run.plan.groups {
        let group_id = match owned(&live, &planned.id) {
            Some(group) => {
                restore_tags(run, planned, group).await?;
                group.group_id.clone()
            }
            None => {
                created = true;
                create(run, vpc, planned).await?
            }
        };
        ids.insert(planned.id.clone(), group_id);
    }
    if created && !run.dry_run {
        live = read_live(run.client, Some(&vpc.id)).await?;
    }
    Ok((ids, live))
}

/// The group Membrain owns for a logical id. Should the tag have been copied onto several, the
/// lowest id wins, so repeated applies agree.
fn owned<'a>(live: &'a [AwsSecurityGroup], id: &GroupId) -> Option<&'a AwsSecurityGroup> {
    live.iter()
        .filter(|g| g.tag(GROUP_TAG) == Some(id.0.as_str()))
        .min_by(|a, b| a.group_id.cmp(&b.group_id))
}

/// A planned group that must be created cannot take a name another group in the VPC has.
fn check_names(
    run: &Run<'_>,
    vpc: &VpcState,
    live: &[AwsSecurityGroup],
) -> Result<(), NetsecAwsError> {
    for planned in &run.plan.groups {
        if let Some(group) = owned(live, &planned.id) {
            if group.group_name != planned.name {
                // EC2 cannot rename a group; the logical id, not the name, is what matters.
                tracing::warn!(group = %planned.id, live = %group.group_name, planned = %planned.name,
                    "an owned group keeps its old name: EC2 group names cannot change");
            }
            continue;
        }
        if let Some(taken) = live.iter().find(|g| g.group_name == planned.name) {
            return Err(NetsecAwsError::GroupNameTaken {
                vpc_id: vpc.id.clone(),
                group: planned.id.clone(),
                name: planned.name.clone(),
                group_id: taken.group_id.clone(),
                tag: GROUP_TAG,
            });
        }
    }
    Ok(())
}

fn planned_tags(run: &Run<'_>, planned: &SecurityGroup) -> Vec<(String, String)> {
    run.tags(&planned.name, &[(GROUP_TAG, &planned.id.0)])
}

async fn create(
    run: &mut Run<'_>,
    vpc: &VpcState,
    planned: &SecurityGroup,
) -> Result<String, NetsecAwsError> {
    let group_id = if run.dry_run {
        PENDING_ID.to_owned()
    } else {
        let tags = planned_tags(run, planned);
        let output = run
            .client
            .create_security_group()
            .group_name(&planned.name)
            .description(&planned.description)
            .vpc_id(&vpc.id)
            .tag_specifications(tag_specification(ResourceType::SecurityGroup, &tags))
            .send()
            .await
            .map_err(call_error("CreateSecurityGroup"))?;
        output.group_id().unwrap_or_default().to_owned()
    };
    run.record(Change::CreateGroup {
        group: planned.id.clone(),
        group_id: group_id.clone(),
        name: planned.name.clone(),
    });
    Ok(group_id)
}

/// Puts back Membrain's tags on an owned group where someone removed or changed them.
async fn restore_tags(
    run: &mut Run<'_>,
    planned: &SecurityGroup,
    group: &AwsSecurityGroup,
) -> Result<(), NetsecAwsError> {
    let missing: Vec<(String, String)> = planned_tags(run, planned)
        .into_iter()
        .filter(|(key, value)| group.tag(key) != Some(value.as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !run.dry_run {
        run.client
            .create_tags()
            .resources(&group.group_id)
            .set_tags(Some(missing.iter().map(|(k, v)| sdk_tag(k, v)).collect()))
            .send()
            .await
            .map_err(call_error("CreateTags"))?;
    }
    run.record(Change::TagGroup {
        group: planned.id.clone(),
        group_id: group.group_id.clone(),
        tags: missing,
    });
    Ok(())
}

/// What a group looks like right after `CreateSecurityGroup`: no ingress and EC2's default
/// allow-all IPv4 egress. Stands in for groups a dry run did not create, or a new group that
/// `DescribeSecurityGroups` does not show yet (EC2 is eventually consistent).
fn new_group(planned: &SecurityGroup, group_id: &str) -> AwsSecurityGroup {
    AwsSecurityGroup {
        group_id: group_id.to_owned(),
        group_name: planned.name.clone(),
        description: planned.description.clone(),
        ip_permissions_egress: vec![AwsIpPermission {
            ip_protocol: "-1".into(),
            ip_ranges: vec![AwsIpRange {
                cidr_ip: "0.0.0.0/0".into(),
                description: None,
            }],
            ..AwsIpPermission::default()
        }],
        tags: vec![AwsTag {
            key: GROUP_TAG.into(),
            value: planned.id.0.clone(),
        }],
        ..AwsSecurityGroup::default()
    }
}

/// One direction of one group and what it needs.
struct GroupWork {
    group: GroupId,
    group_id: String,
    direction: Direction,
    diff: RuleDiff,
}

/// Makes every owned group's rules exactly the plan's: all additions first (so a moved port is
/// never closed on both), then description updates, then revocations.
pub(crate) async fn reconcile_rules(
    run: &mut Run<'_>,
    ids: &GroupIds,
    live: &[AwsSecurityGroup],
) -> Result<(), NetsecAwsError> {
    let work = plan_work(run, ids, live)?;
    let by_logical: HashMap<GroupId, String> = ids.clone().into_iter().collect();
    for item in &work {
        for rule in &item.diff.add {
            let permission = rule_to_permission(rule, &by_logical);
            call(run, Action::Authorize, item, &permission).await?;
            run.record(Change::AddRule {
                group: item.group.clone(),
                group_id: item.group_id.clone(),
                direction: item.direction,
                rule: rule.clone(),
            });
        }
    }
    for item in &work {
        for (rule, twin) in &item.diff.describe {
            let permission = rule_to_permission(rule, &by_logical);
            call(run, Action::Describe, item, &permission).await?;
            run.record(Change::UpdateRuleDescription {
                group: item.group.clone(),
                group_id: item.group_id.clone(),
                direction: item.direction,
                rule: rule.clone(),
                old_description: twin.rule.description.clone(),
            });
        }
    }
    for item in &work {
        for twin in &item.diff.remove {
            call(run, Action::Revoke, item, &twin.permission).await?;
            run.record(Change::RemoveRule {
                group: item.group.clone(),
                group_id: item.group_id.clone(),
                direction: item.direction,
                rule: twin.rule.clone(),
            });
        }
    }
    Ok(())
}

/// Every diff, computed before the first change, so an unreadable live rule stops the apply
/// before it has done anything to rules.
fn plan_work(
    run: &Run<'_>,
    ids: &GroupIds,
    live: &[AwsSecurityGroup],
) -> Result<Vec<GroupWork>, NetsecAwsError> {
    // Live references to owned groups read as their logical ids; others keep their `sg-…` id.
    let logical: HashMap<&str, GroupId> = ids
        .iter()
        .map(|(id, group_id)| (group_id.as_str(), id.clone()))
        .collect();
    let mut work = Vec::new();
    for planned in &run.plan.groups {
        let group_id = ids.get(&planned.id).cloned().unwrap_or_default();
        let standin;
        let group = match owned(live, &planned.id) {
            Some(group) => group,
            None => {
                standin = new_group(planned, &group_id);
                &standin
            }
        };
        for (direction, planned_rules, permissions) in [
            (Direction::Ingress, &planned.ingress, &group.ip_permissions),
            (
                Direction::Egress,
                &planned.egress,
                &group.ip_permissions_egress,
            ),
        ] {
            let place = format!("{} ({group_id}) {}", planned.id, direction.name());
            let rules: Vec<LiveRule> =
                live_rules(permissions, &logical, &place).map_err(|error| {
                    NetsecAwsError::UnreadableRule {
                        group_id: group_id.clone(),
                        message: error.to_string(),
                    }
                })?;
            work.push(GroupWork {
                group: planned.id.clone(),
                group_id: group_id.clone(),
                direction,
                diff: RuleDiff::between(planned_rules, &rules),
            });
        }
    }
    Ok(work)
}

#[derive(Clone, Copy)]
enum Action {
    Authorize,
    Describe,
    Revoke,
}

/// One rule call. A dry run makes none.
async fn call(
    run: &Run<'_>,
    action: Action,
    item: &GroupWork,
    permission: &AwsIpPermission,
) -> Result<(), NetsecAwsError> {
    if run.dry_run {
        return Ok(());
    }
    let (client, group_id, permission) =
        (run.client, &item.group_id, permission_to_sdk(permission));
    match (action, item.direction) {
        (Action::Authorize, Direction::Ingress) => client
            .authorize_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(permission)
            .send()
            .await
            .map(drop)
            .map_err(call_error("AuthorizeSecurityGroupIngress")),
        (Action::Authorize, Direction::Egress) => client
            .authorize_security_group_egress()
            .group_id(group_id)
            .ip_permissions(permission)
            .send()
            .await
            .map(drop)
            .map_err(call_error("AuthorizeSecurityGroupEgress")),
        (Action::Describe, Direction::Ingress) => client
            .update_security_group_rule_descriptions_ingress()
            .group_id(group_id)
            .ip_permissions(permission)
            .send()
            .await
            .map(drop)
            .map_err(call_error("UpdateSecurityGroupRuleDescriptionsIngress")),
        (Action::Describe, Direction::Egress) => client
            .update_security_group_rule_descriptions_egress()
            .group_id(group_id)
            .ip_permissions(permission)
            .send()
            .await
            .map(drop)
            .map_err(call_error("UpdateSecurityGroupRuleDescriptionsEgress")),
        (Action::Revoke, Direction::Ingress) => client
            .revoke_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(permission)
            .send()
            .await
            .map_err(call_error("RevokeSecurityGroupIngress"))
            .and_then(|output| {
                revoked(
                    "RevokeSecurityGroupIngress",
                    output.unknown_ip_permissions(),
                )
            }),
        (Action::Revoke, Direction::Egress) => client
            .revoke_security_group_egress()
            .group_id(group_id)
            .ip_permissions(permission)
            .send()
            .await
            .map_err(call_error("RevokeSecurityGroupEgress"))
            .and_then(|output| {
                revoked("RevokeSecurityGroupEgress", output.unknown_ip_permissions())
            }),
    }
}

/// EC2 answers a revoke of a rule it cannot match with success and the rule under
/// `UnknownIpPermissions`; that rule is still there, so it is a failure.
fn revoked(
    operation: &'static str,
    unknown: &[aws_sdk_ec2::types::IpPermission],
) -> Result<(), NetsecAwsError> {
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(NetsecAwsError::Call {
            operation,
            message: format!("EC2 did not find the rule to revoke: {unknown:?}"),
        })
    }
}
