//! AWS-managed prefix lists named by service (`s3`), looked up in the client's region: a plan's
//! [`membrain_netsec::Peer::ServicePrefixList`] becomes the `pl-…` id EC2 takes, and a live
//! rule's `pl-…` id reads back as the service.

use std::collections::BTreeMap;

use crate::NetsecAwsError;
use crate::convert::filter;
use crate::error::call_error;

/// The id of the region's prefix list `com.amazonaws.<region>.<service>` for each of
/// `services` that has one (service → `pl-…`).
pub async fn prefix_list_ids(
    client: &aws_sdk_ec2::Client,
    services: &[&str],
) -> Result<BTreeMap<String, String>, NetsecAwsError> {
    let mut ids = BTreeMap::new();
    if services.is_empty() {
        return Ok(ids);
    }
    let region = client
        .config()
        .region()
        .map(ToString::to_string)
        .ok_or(NetsecAwsError::MissingRegion)?;
    for service in services {
        let name = format!("com.amazonaws.{region}.{service}");
        let lists = client
            .describe_prefix_lists()
            .filters(filter("prefix-list-name", &name))
            .send()
            .await
            .map_err(call_error("DescribePrefixLists"))?;
        if let Some(id) = lists
            .prefix_lists()
            .iter()
            .find(|list| list.prefix_list_name() == Some(name.as_str()))
            .and_then(|list| list.prefix_list_id())
        {
            ids.insert((*service).to_owned(), id.to_owned());
        }
    }
    Ok(ids)
}
