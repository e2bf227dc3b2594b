//! The one error type of this crate, and the mapping from SDK errors into it.

use std::fmt::Debug;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use membrain_netsec::{Cidr, GroupId};

use crate::report::Change;

/// Why talking to EC2, or applying a plan, failed. Each variant says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetsecAwsError {
    /// The EC2 endpoint did not answer: refused, timed out, or not resolvable.
    #[error("cannot reach the EC2 endpoint {endpoint} (region {region}): {message}")]
    Unreachable {
        endpoint: String,
        region: String,
        message: String,
    },
    /// An EC2 call was answered with an error, or failed on its way.
    #[error("EC2 {operation} failed: {message}")]
    Call {
        operation: &'static str,
        message: String,
    },
    /// The plan breaks its own rules (unknown groups, duplicate rules…).
    #[error("the plan is not valid: {0}")]
    InvalidPlan(String),
    /// The plan uses an existing VPC and none was named.
    #[error("the plan uses an existing VPC (create = false): name it with a VPC id (--vpc-id)")]
    VpcRequired,
    /// The named VPC does not exist in the client's region.
    #[error("VPC {vpc_id} does not exist in this account and region")]
    VpcNotFound { vpc_id: String },
    /// Rules that name the plan's VPC CIDR would admit the wrong addresses.
    #[error(
        "VPC {vpc_id} has CIDR {actual} but the plan's VPC CIDR is {planned}: set vpc_cidr to {actual}"
    )]
    VpcCidrMismatch {
        vpc_id: String,
        actual: String,
        planned: Cidr,
    },
    /// A VPC CIDR this crate cannot carve private subnets from.
    #[error(
        "cannot carve private subnets from VPC CIDR {cidr}: use an IPv4 block of /27 or larger"
    )]
    SubnetsDoNotFit { cidr: Cidr },
    /// A group that Membrain does not own already has a planned group's name.
    #[error(
        "VPC {vpc_id} already has a security group named {name:?} ({group_id}) that Membrain does not own: \
         rename the planned group {group}, or tag that group {tag}={group} to hand it over"
    )]
    GroupNameTaken {
        vpc_id: String,
        group: GroupId,
        name: String,
        group_id: String,
        tag: &'static str,
    },
    /// A live rule on an owned group that the model cannot express (an unknown protocol…).
    #[error("cannot read a live rule of {group_id}: {message}")]
    UnreadableRule { group_id: String, message: String },
    /// Interface endpoints need subnets, and an existing VPC has none.
    #[error(
        "VPC {vpc_id} has no subnets to place the interface endpoints in: create private subnets first"
    )]
    NoSubnets { vpc_id: String },
    /// The client has no region, so endpoint service names cannot be formed.
    #[error("the EC2 client has no region: set one (--region or AWS_REGION)")]
    MissingRegion,
    /// `apply` stopped part-way; `done` is every change it had already made.
    #[error("{error}; {}", done_summary(done))]
    Apply {
        error: Box<NetsecAwsError>,
        done: Vec<Change>,
    },
}

impl NetsecAwsError {
    /// The changes `apply` had made before it failed (empty for other errors).
    pub fn changes_made(&self) -> &[Change] {
        match self {
            Self::Apply { done, .. } => done,
            _ => &[],
        }
    }

    /// The failure itself, without the wrapping that lists changes already made.
    pub fn root(&self) -> &NetsecAwsError {
        match self {
            Self::Apply { error, .. } => error.root(),
            other => other,
        }
    }
}

/// "no changes were made", or the count and one change per line, so a long list stays readable.
fn done_summary(done: &[Change]) -> String {
    if done.is_empty() {
        return "no changes were made".into();
    }
    let list: String = done.iter().map(|c| format!("\n  - {c}")).collect();
    format!(
        "{} change(s) were made before the failure:{list}",
        done.len()
    )
}

/// Maps an SDK error of `operation` into [`NetsecAwsError::Call`]: the service's code and
/// message when EC2 answered, else the whole error chain (the top level alone says only
/// "dispatch failure").
pub(crate) fn call_error<E, R>(
    operation: &'static str,
) -> impl FnOnce(SdkError<E, R>) -> NetsecAwsError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    move |error| NetsecAwsError::Call {
        operation,
        message: describe(&error),
    }
}

pub(crate) use membrain_aws::{describe, is_unreachable};
