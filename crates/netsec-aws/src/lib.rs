//! Applies network plans to AWS and reads live security groups back, through the AWS SDK for
//! Rust. This is the edge between the pure model in `membrain-netsec` and EC2: it converts
//! between SDK types and that model and makes the calls; every decision about flows, lints and
//! what a plan means stays in the model.
//!
//! * [`connect`]: an EC2 client for an [`AwsTarget`] (region, optional `--endpoint-url`) with
//!   short timeouts and few retries; an unreachable endpoint is reported, by name, within
//!   seconds.
//! * [`apply`]: creates or reconciles the plan's VPC, groups, rules, tags and VPC endpoints
//!   (interface and gateway), idempotently, and returns an [`ApplyReport`] of every [`Change`] (or, with
//!   [`ApplyOptions::dry_run`], of every change it would make).
//! * [`read_live`]: the live groups in EC2's JSON shape, for
//!   [`membrain_netsec::aws_json::live_topology`] and [`membrain_netsec::verify::verify`].
//! * [`prefix_list_ids`]: the region's AWS-managed prefix lists (`s3`) that rules name by
//!   service, for [`membrain_netsec::Topology::name_prefix_lists`].
//! * [`convert`]: every SDK ↔ model conversion, in one place.
//!
//! Ownership: Membrain owns what it tagged (`membrain:group` on groups, `membrain:managed` on
//! VPCs, subnets and endpoints). On its groups it makes the rules exactly the plan's — revoking
//! the default allow-all egress where the plan is tighter — and it never changes a group it
//! did not tag.
//!
//! ```no_run
//! # async fn example() -> Result<(), membrain_netsec_aws::NetsecAwsError> {
//! use membrain_netsec::profiles::Profile;
//! use membrain_netsec_aws::{ApplyOptions, AwsTarget, apply, connect, read_live};
//!
//! let target = AwsTarget { endpoint_url: None, region: "us-east-1".into(), vpc_id: None };
//! let client = connect(&target).await?;
//! let plan = Profile::Gateway.default_topology();
//! let report = apply(&client, &plan, &ApplyOptions::default()).await?;
//! let live = read_live(&client, Some(&report.vpc_id)).await?;
//! # Ok(()) }
//! ```
//!
//! Architecture invariant: no flow evaluation, lint or rendering here (that is
//! `membrain-netsec`), no CLI and no printing; only EC2 calls and conversions. Tests reach EC2
//! through a local moto server (`testing`, feature `test-support`) and never a real account.

mod apply;
mod connect;
pub mod convert;
mod endpoints;
mod error;
mod groups;
mod prefix_lists;
mod read;
mod report;
mod rule_diff;
mod vpc;

#[cfg(feature = "test-support")]
pub use membrain_aws::testing;

pub use apply::{ApplyOptions, ENDPOINT_TAG, MANAGED_TAG, TOPOLOGY_TAG, apply};
pub use connect::{AwsTarget, connect, connect_with_credentials};
pub use error::NetsecAwsError;
pub use prefix_lists::prefix_list_ids;
pub use read::read_live;
pub use report::{ApplyReport, Change, PENDING_ID};
