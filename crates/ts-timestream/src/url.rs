//! `timestream://DATABASE?region=REGION[&endpoint=URL]`: which Timestream database holds the
//! tenants' tables, and where its API is.

use std::fmt;

use membrain_aws::AwsEndpoint;
use membrain_timeseries::TsError;

/// A parsed Timestream store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestreamUrl {
    /// The one Timestream database every tenant's tables live in.
    pub database: String,
    pub region: String,
    /// An endpoint replacing the region's (a local stand-in, or a VPC endpoint). With one,
    /// endpoint discovery is off: discovery would answer with public cell addresses.
    pub endpoint: Option<String>,
}

const SCHEME: &str = "timestream://";
const EXAMPLE: &str = "timestream://membrain?region=us-east-1";

impl TimestreamUrl {
    pub fn parse(raw: &str) -> Result<Self, TsError> {
        let invalid = |why: String| {
            TsError::invalid(
                "url",
                format!(
                    "{why}: write the Timestream store as timestream://DATABASE?region=REGION[&endpoint=URL], like {EXAMPLE}"
                ),
            )
        };
        let rest = raw
            .trim()
            .strip_prefix(SCHEME)
            .ok_or_else(|| invalid(format!("{raw:?} does not start with {SCHEME}")))?;
        let (database, query) = rest.split_once('?').unwrap_or((rest, ""));
        let database = database.trim_end_matches('/');
        // Timestream's database names: 3 to 256 letters, digits, '_', '-' or '.'.
        let database_ok = (3..=256).contains(&database.len())
            && database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !database_ok {
            return Err(invalid(format!(
                "{database:?} is not a Timestream database name (3 to 256 letters, digits, '_', '-' or '.')"
            )));
        }
        let mut region = None;
        let mut endpoint = None;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("region", value)) if !value.is_empty() => region = Some(value.to_owned()),
                Some(("endpoint", value)) if !value.is_empty() => {
                    if !(value.starts_with("http://") || value.starts_with("https://")) {
                        return Err(invalid(format!(
                            "endpoint {value:?} is not an http:// or https:// URL"
                        )));
                    }
                    endpoint = Some(value.to_owned());
                }
                _ => return Err(invalid(format!("unknown or empty parameter {pair:?}"))),
            }
        }
        let region = region.ok_or_else(|| invalid(format!("{raw:?} names no region")))?;
        let region_ok = region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !region_ok {
            return Err(invalid(format!("{region:?} is not an AWS region")));
        }
        Ok(Self {
            database: database.to_owned(),
            region,
            endpoint,
        })
    }

    pub fn aws_endpoint(&self) -> AwsEndpoint {
        AwsEndpoint::new(self.region.clone(), self.endpoint.clone())
    }
}

impl fmt::Display for TimestreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}?region={}", self.database, self.region)?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, "&endpoint={endpoint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_database_region_and_endpoint() {
        let url = TimestreamUrl::parse("timestream://membrain?region=eu-west-1").unwrap();
        assert_eq!(
            (url.database.as_str(), url.region.as_str(), url.endpoint),
            ("membrain", "eu-west-1", None)
        );
        let local = TimestreamUrl::parse(
            "timestream://ts_db?region=us-east-1&endpoint=http://127.0.0.1:5000",
        )
        .unwrap();
        assert_eq!(local.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(TimestreamUrl::parse(&local.to_string()).unwrap(), local);
    }

    #[test]
    fn bad_urls_say_how_to_write_one() {
        for bad in [
            "postgres://x",
            "timestream://?region=us-east-1",
            "timestream://ab?region=us-east-1",
            "timestream://membrain",
            "timestream://membrain?region=US EAST",
            "timestream://membrain?region=us-east-1&endpoint=ftp://x",
            "timestream://membrain?region=us-east-1&colour=blue",
            "timestream://mem brain?region=us-east-1",
        ] {
            let error = TimestreamUrl::parse(bad).unwrap_err().to_string();
            assert!(
                error.contains("timestream://DATABASE?region=REGION"),
                "{bad}: {error}"
            );
        }
    }
}
