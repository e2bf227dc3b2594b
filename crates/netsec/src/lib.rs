//! Network security as code, free of I/O: the model of a VPC's security groups, rules, tiers and
//! flows with AWS's semantics, the seeds' two deployments as built-in topologies, flow
//! evaluation, lints, diagnosis, and renderers.
//!
//! * [`model`]: validated newtypes ([`Cidr`], [`PortRange`], [`Protocol`], [`GroupId`]) and
//!   [`SecurityGroup`], [`Rule`], [`Tier`], [`Flow`].
//! * [`topology`]: [`Topology`], validated, from TOML, YAML or JSON.
//! * [`profiles`]: the `alb` (seed 000) and `gateway` (seed 001) topologies.
//! * [`eval`]: whether a flow between two tiers is allowed, and which rule is missing if not.
//! * [`verify`]: every expected and forbidden flow plus lints, as one [`verify::Report`].
//! * [`diagnose`]: why one flow works or not: every blocker on its path with a reason code, the
//!   missing rules and their commands, what else to check.
//! * [`aws_json`]: live groups from `describe-security-groups` JSON.
//! * [`awscli`]: EC2 permission JSON and commands, shared by diagnosis and the rendered script.
//! * [`render`]: the topology as an AWS CLI script, CloudFormation and Terraform, or a diagram.
//!
//! AWS semantics kept here: groups only allow; they are stateful (only the side that opens a
//! connection is checked); a group reference matches every interface carrying that group; a flow
//! between two tiers needs the source's egress and the target's ingress; a tier without groups
//! (the internet, a load balancer without groups) restricts nothing.
//!
//! Architecture invariant: no I/O beyond reading a topology file, no AWS SDK, no HTTP, no CLI.
//! `membrain-netsec-aws` converts SDK types to and from this model.

pub mod aws_json;
pub mod awscli;
pub mod diagnose;
mod error;
pub mod eval;
pub mod model;
pub mod profiles;
pub mod render;
pub mod topology;
pub mod verify;

pub use error::NetsecError;
pub use model::{
    Cidr, EndpointKind, Flow, GroupId, Peer, Placement, PortRange, Protocol, Rule, SecurityGroup,
    Tier, TierName, VpcEndpoint,
};
pub use topology::Topology;
