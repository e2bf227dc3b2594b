//! An EC2 client that fails fast: short timeouts, few retries, and one cheap call up front so an
//! endpoint that cannot be reached is named before anything is attempted.

use aws_sdk_ec2::config::Credentials;
use membrain_aws::{AwsEndpoint, sdk_config};

use crate::NetsecAwsError;
use crate::error::{describe, is_unreachable};

/// Where the network lives: the account's region, an optional endpoint (a local stand-in such
/// as moto), and the VPC the CLI passes on to [`apply`](crate::apply) and
/// [`read_live`](crate::read_live).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsTarget {
    /// `--endpoint-url`: send every EC2 call here instead of the region's public endpoint.
    pub endpoint_url: Option<String>,
    /// The AWS region (`us-east-1`); endpoint service names are formed from it.
    pub region: String,
    /// An existing VPC, for plans that do not create their own.
    pub vpc_id: Option<String>,
}

impl AwsTarget {
    /// The endpoint calls go to, for messages.
    pub fn endpoint(&self) -> String {
        self.endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://ec2.{}.amazonaws.com", self.region))
    }
}

/// An EC2 client for `target`, with credentials from the normal chain (environment, profile,
/// container or instance role). It makes one read-only call (`DescribeAvailabilityZones`) so a
/// wrong endpoint, region or credentials fail here, with the endpoint named, before any change.
pub async fn connect(target: &AwsTarget) -> Result<aws_sdk_ec2::Client, NetsecAwsError> {
    connect_inner(target, None).await
}

/// [`connect`] with explicit credentials instead of the normal chain (tests, and callers that
/// resolved credentials themselves).
pub async fn connect_with_credentials(
    target: &AwsTarget,
    credentials: Credentials,
) -> Result<aws_sdk_ec2::Client, NetsecAwsError> {
    connect_inner(target, Some(credentials)).await
}

async fn connect_inner(
    target: &AwsTarget,
    credentials: Option<Credentials>,
) -> Result<aws_sdk_ec2::Client, NetsecAwsError> {
    let endpoint = AwsEndpoint::new(target.region.clone(), target.endpoint_url.clone());
    let client = aws_sdk_ec2::Client::new(&sdk_config(&endpoint, credentials).await);
    probe(&client, target).await?;
    Ok(client)
}

/// One cheap read-only call, so the first failure is about reaching EC2, not about a change.
async fn probe(client: &aws_sdk_ec2::Client, target: &AwsTarget) -> Result<(), NetsecAwsError> {
    match client.describe_availability_zones().send().await {
        Ok(_) => Ok(()),
        Err(error) if is_unreachable(&error) => Err(NetsecAwsError::Unreachable {
            endpoint: target.endpoint(),
            region: target.region.clone(),
            message: describe(&error),
        }),
        Err(error) => Err(NetsecAwsError::Call {
            operation: "DescribeAvailabilityZones",
            message: format!("{} (endpoint {})", describe(&error), target.endpoint()),
        }),
    }
}
