//! `apply`: make AWS match a plan, idempotently, touching only what Membrain owns.
//!
//! The order is chosen so a failure leaves AWS no worse than before and says what it did:
//! everything is read and every change computed before the first rule changes; groups are
//! created before rules (rules reference them); missing rules are added before unplanned ones
//! are revoked, so a changed port never leaves a moment with neither.

use std::collections::BTreeMap;

use membrain_netsec::{GroupId, Topology};

use crate::NetsecAwsError;
use crate::prefix_lists::prefix_list_ids;
use crate::report::{ApplyReport, Change};
use crate::{endpoints, groups, vpc};

/// How to apply a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// An existing VPC to use. Required when the plan does not create its own
    /// (`vpc.create = false`); when it does, the VPC Membrain created earlier is found by its tags.
    pub vpc_id: Option<String>,
    /// Compute and report the changes without making any.
    pub dry_run: bool,
}

/// Creates or reconciles the plan's VPC (when it creates one), groups, rules, tags and VPC
/// endpoints. Rules that name a service's prefix list (`s3`) get the region's `pl-…` id.
///
/// Membrain owns the groups tagged `membrain:group` (the logical id): on those it adds missing
/// planned rules, revokes rules the plan does not have (the default allow-all egress included,
/// where the plan is tighter) and restores its tags. Untagged groups are never touched. On
/// failure the error ([`NetsecAwsError::Apply`]) lists the changes already made.
pub async fn apply(
    client: &aws_sdk_ec2::Client,
    plan: &Topology,
    options: &ApplyOptions,
) -> Result<ApplyReport, NetsecAwsError> {
    let ids = prefix_list_ids(client, &plan.service_prefix_lists()).await?;
    let plan = &plan
        .with_prefix_list_ids(&ids)
        .map_err(|e| NetsecAwsError::InvalidPlan(e.to_string()))?;
    let mut run = Run {
        client,
        plan,
        dry_run: options.dry_run,
        changes: Vec::new(),
    };
    match run.execute(options.vpc_id.as_deref()).await {
        Ok((vpc_id, groups)) => Ok(ApplyReport {
            topology: plan.name.clone(),
            vpc_id,
            dry_run: options.dry_run,
            groups,
            changes: run.changes,
        }),
        Err(error) => Err(NetsecAwsError::Apply {
            error: Box::new(error),
            // A dry run's changes were never made.
            done: if options.dry_run {
                Vec::new()
            } else {
                run.changes
            },
        }),
    }
}

/// One apply in progress: the client, the plan, and the changes made so far.
pub(crate) struct Run<'a> {
    pub client: &'a aws_sdk_ec2::Client,
    pub plan: &'a Topology,
    pub dry_run: bool,
    pub changes: Vec<Change>,
}

impl Run<'_> {
    async fn execute(
        &mut self,
        vpc_id: Option<&str>,
    ) -> Result<(String, BTreeMap<GroupId, String>), NetsecAwsError> {
        self.plan.validate().map_err(|errors| {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            NetsecAwsError::InvalidPlan(list.join("; "))
        })?;
        let vpc = vpc::resolve(self, vpc_id).await?;
        let subnets = vpc::subnets(self, &vpc).await?;
        let (ids, live) = groups::ensure(self, &vpc).await?;
        groups::reconcile_rules(self, &ids, &live).await?;
        endpoints::ensure(self, &vpc, &ids, &subnets).await?;
        Ok((vpc.id, ids))
    }

    /// Notes a change that was just made (or, in a dry run, would be).
    pub fn record(&mut self, change: Change) {
        tracing::info!(dry_run = self.dry_run, change = %change, "network change");
        self.changes.push(change);
    }

    /// The client's region, for endpoint service names and subnet zones.
    pub fn region(&self) -> Result<String, NetsecAwsError> {
        self.client
            .config()
            .region()
            .map(ToString::to_string)
            .ok_or(NetsecAwsError::MissingRegion)
    }

    /// Tags every resource Membrain creates carries, plus `extra`.
    pub fn tags(&self, name: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut tags = vec![
            ("Name".to_owned(), name.to_owned()),
            (MANAGED_TAG.to_owned(), "true".to_owned()),
        ];
        tags.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        tags
    }
}

/// `membrain:managed=true` marks everything Membrain created.
pub const MANAGED_TAG: &str = "membrain:managed";
/// On a VPC Membrain created: the plan's name, so the next apply finds it again.
pub const TOPOLOGY_TAG: &str = "membrain:topology";
/// On an endpoint Membrain created: the service's short name.
pub const ENDPOINT_TAG: &str = "membrain:endpoint";
