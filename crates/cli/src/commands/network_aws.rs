//! The network commands that need the renderers or the AWS API.

use std::path::Path;

use anyhow::{Result, bail};
use membrain_netsec::Topology;
use membrain_netsec::aws_json::AwsSecurityGroup;

use crate::cli::{AwsArgs, RenderFormat};

pub fn render(_plan: &Topology, _format: RenderFormat, _output: Option<&Path>) -> Result<()> {
    bail!("render is being wired")
}

pub async fn apply(_plan: &Topology, _aws: &AwsArgs, _dry_run: bool, _json: bool) -> Result<()> {
    bail!("apply is being wired")
}

pub async fn read_live(_aws: &AwsArgs) -> Result<Vec<AwsSecurityGroup>> {
    bail!("live reads are being wired")
}
