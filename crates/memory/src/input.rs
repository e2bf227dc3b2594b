//! Caller input, validated into domain values before anything is stored.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::ids::truncate_for_message;

/// Bounds on what a caller may send and read. Every one is configurable; the defaults suit an
/// agent's memory (short facts, a handful of tags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest memory content, in bytes of UTF-8.
    pub max_content_bytes: usize,
    pub max_tags: usize,
    pub max_tag_bytes: usize,
    pub max_category_bytes: usize,
    /// Largest regex pattern accepted in a tag filter, in bytes.
    pub max_regex_bytes: usize,
    /// Most regexes and scope tags in one filter (`keyword_filter` entries, `scope_regex` and
    /// `scope` tags together): each is checked against the tags of every candidate.
    pub max_filter_patterns: usize,
    /// Most bytes of all patterns and scope tags of one filter together.
    pub max_filter_bytes: usize,
    /// Entries of `evolution_history` kept in full per memory; older ones are dropped and
    /// counted in `evolution_history_dropped`, so updates and merges cannot grow a memory
    /// without bound.
    pub max_history_entries: usize,
    /// Most ids in one batch get.
    pub max_batch_ids: usize,
    /// Most memories a search, list or graph walk returns before it says `truncated`.
    pub max_result_memories: usize,
    /// Most bytes a read's answer carries (everything serialised) before it says `truncated`.
    pub max_result_bytes: usize,
    /// Most memories a graph walk visits.
    pub max_graph_nodes: usize,
    /// Most memories a search ranks (candidates beyond are not considered and `truncated` is set).
    pub max_search_candidates: usize,
    /// Quota: memories one tenant may hold (queued ingest jobs count towards it).
    pub max_memories_per_tenant: usize,
    /// Quota: bytes of content and history one tenant may store.
    pub max_stored_bytes_per_tenant: usize,
    /// Quota: ingest jobs one tenant may have waiting or running.
    pub max_pending_jobs_per_tenant: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_content_bytes: 64 * 1024,
            max_tags: 32,
            max_tag_bytes: 64,
            max_category_bytes: 64,
            max_regex_bytes: 512,
            max_filter_patterns: 16,
            max_filter_bytes: 4 * 1024,
            max_history_entries: 10,
            max_memories_per_tenant: 1_000_000,
            max_stored_bytes_per_tenant: 1024 * 1024 * 1024,
            max_pending_jobs_per_tenant: 10_000,
            max_batch_ids: 100,
            max_result_memories: 200,
            max_result_bytes: 4 * 1024 * 1024,
            max_graph_nodes: 1_000,
            max_search_candidates: 200_000,
        }
    }
}

/// A memory as the caller wants it stored, checked against [`Limits`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMemory {
    pub content: String,
    pub tags: Vec<String>,
    pub category: String,
    /// When the fact was true or said, if not now (a diary entry written up later, an imported
    /// conversation): what time-aware search matches "last May" against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
}

impl NewMemory {
    pub fn parse(
        content: &str,
        tags: Option<Vec<String>>,
        category: Option<String>,
        limits: &Limits,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            content: parse_content(content, limits)?,
            tags: parse_tags(tags.unwrap_or_default(), limits)?,
            category: parse_category(category, limits)?,
            observed_at: None,
        })
    }
}

/// How far ahead of the server's clock an `observed_at` may be: clocks disagree a little, but a
/// fact is not observed next year.
const OBSERVED_AT_FUTURE_SLACK: TimeDelta = TimeDelta::days(1);

/// An `observed_at` as callers write it: RFC 3339 (`2024-03-08T14:30:00Z`, any offset), a date
/// and time without a zone (taken as UTC), or a date (`2024-03-08`, its midnight UTC). At most a
/// day after `now`.
pub fn parse_observed_at(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ValidationError> {
    let parsed = parse_time("observed_at", raw)?;
    if parsed > now + OBSERVED_AT_FUTURE_SLACK {
        return Err(ValidationError::new(
            "observed_at",
            format!(
                "{parsed} is in the future; send when the fact was observed, at the latest now"
            ),
        ));
    }
    Ok(parsed)
}

/// An optional `observed_at` field: absent or blank is `None`, anything else must pass
/// [`parse_observed_at`]. Ingest and updates read it alike.
pub fn optional_observed_at(
    raw: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    raw.filter(|raw| !raw.trim().is_empty())
        .map(|raw| parse_observed_at(raw, now))
        .transpose()
}

/// A time in one of the forms [`parse_observed_at`] reads, for the request field `field` (the
/// error names it), at any date: a search bound such as `observed_before` may lie ahead.
pub fn parse_time(field: &str, raw: &str) -> Result<DateTime<Utc>, ValidationError> {
    let raw = raw.trim();
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
        .ok_or_else(|| {
            ValidationError::new(
                field,
                format!(
                    "{:?} is not a time: send RFC 3339 such as \"2024-03-08T14:30:00Z\", or a \
                     date such as \"2024-03-08\"",
                    truncate_for_message(raw)
                ),
            )
        })
}

/// A partial update: only the present fields change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryPatch {
    pub content: Option<String>,
    pub tags: Option<Vec<String>>,
    /// A corrected observation time, read by [`optional_observed_at`] as at ingest.
    pub observed_at: Option<DateTime<Utc>>,
}

impl MemoryPatch {
    pub fn parse(
        content: Option<&str>,
        tags: Option<Vec<String>>,
        observed_at: Option<&str>,
        now: DateTime<Utc>,
        limits: &Limits,
    ) -> Result<Self, ValidationError> {
        let observed_at = optional_observed_at(observed_at, now)?;
        if content.is_none() && tags.is_none() && observed_at.is_none() {
            return Err(ValidationError::new(
                "body",
                "nothing to update: send `content`, `tags` or `observed_at` (any of them)",
            ));
        }
        Ok(Self {
            content: content.map(|c| parse_content(c, limits)).transpose()?,
            tags: tags.map(|t| parse_tags(t, limits)).transpose()?,
            observed_at,
        })
    }
}

fn parse_content(content: &str, limits: &Limits) -> Result<String, ValidationError> {
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(
            "content",
            "must not be empty or only whitespace: send the fact to remember as text",
        ));
    }
    if trimmed.len() > limits.max_content_bytes {
        return Err(ValidationError::new(
            "content",
            format!(
                "is {} bytes; the limit is {} bytes. Split it into several smaller memories",
                trimmed.len(),
                limits.max_content_bytes
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Tags are trimmed, lower-cased, de-duplicated and kept in the caller's order.
fn parse_tags(tags: Vec<String>, limits: &Limits) -> Result<Vec<String>, ValidationError> {
    if tags.len() > limits.max_tags {
        return Err(ValidationError::new(
            "tags",
            format!(
                "has {} tags; at most {} are allowed",
                tags.len(),
                limits.max_tags
            ),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty() {
            return Err(ValidationError::new(
                format!("tags[{i}]"),
                "must not be empty",
            ));
        }
        if tag.len() > limits.max_tag_bytes {
            return Err(ValidationError::new(
                format!("tags[{i}]"),
                format!(
                    "{:?} is longer than {} bytes",
                    truncate_for_message(&tag),
                    limits.max_tag_bytes
                ),
            ));
        }
        if tag.chars().any(|c| c.is_control() || c == ',') {
            return Err(ValidationError::new(
                format!("tags[{i}]"),
                format!(
                    "{:?} contains a comma or a control character",
                    truncate_for_message(&tag)
                ),
            ));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

fn parse_category(category: Option<String>, limits: &Limits) -> Result<String, ValidationError> {
    let category = category
        .map(|c| c.trim().to_lowercase())
        .unwrap_or_default();
    if category.len() > limits.max_category_bytes {
        return Err(ValidationError::new(
            "category",
            format!("is longer than {} bytes", limits.max_category_bytes),
        ));
    }
    if category.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "category",
            "contains a control character",
        ));
    }
    Ok(if category.is_empty() {
        "general".to_owned()
    } else {
        category
    })
}

/// Merges `extra` tags into `tags`, keeping order and dropping repeats, up to `max_tags` in
/// all: merges must not grow a memory's tags past what a caller may send. Returns the tags
/// added.
pub fn merge_tags(tags: &mut Vec<String>, extra: &[String], max_tags: usize) -> Vec<String> {
    let mut added = Vec::new();
    for tag in extra {
        if tags.len() >= max_tags {
            break;
        }
        if !tags.contains(tag) {
            tags.push(tag.clone());
            added.push(tag.clone());
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(content: &str, tags: &[&str], expected_field: Option<&str>) {
        let tags = tags.iter().map(|t| t.to_string()).collect();
        let limits = Limits {
            max_content_bytes: 100,
            max_tags: 3,
            ..Limits::default()
        };
        match (
            NewMemory::parse(content, Some(tags), None, &limits),
            expected_field,
        ) {
            (Ok(_), None) => {}
            (Err(e), Some(field)) => assert_eq!(e.field, field, "{content:?}: {e}"),
            (got, want) => panic!("{content:?}: got {got:?}, wanted error on {want:?}"),
        }
    }

    #[test]
    fn new_memories_are_validated() {
        check("I like tea", &["drinks"], None);
        check("", &[], Some("content"));
        check(" \n\t ", &[], Some("content"));
        check(&"x".repeat(101), &[], Some("content"));
        check("ok", &["a", "b", "c", "d"], Some("tags"));
        check("ok", &["fine", " "], Some("tags[1]"));
        check("ok", &["a,b"], Some("tags[0]"));
    }

    #[test]
    fn tags_are_normalised_and_deduplicated() {
        let m = NewMemory::parse(
            "x",
            Some(vec!["Food".into(), " food ".into(), "Tea".into()]),
            Some("  Prefs ".into()),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(m.tags, vec!["food", "tea"]);
        assert_eq!(m.category, "prefs");
    }

    #[test]
    fn merged_tags_stop_at_the_tag_limit() {
        let mut tags = vec!["a".to_owned(), "b".to_owned()];
        let added = merge_tags(&mut tags, &["b".into(), "c".into(), "d".into()], 3);
        assert_eq!(tags, ["a", "b", "c"]);
        assert_eq!(added, ["c"]);
        assert!(merge_tags(&mut tags, &["e".into()], 3).is_empty());
    }

    #[test]
    fn observation_times_are_read_in_the_forms_people_write() {
        let now = "2024-06-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let at = |raw: &str| parse_observed_at(raw, now).map(|t| t.to_rfc3339());
        assert_eq!(
            at("2024-03-08T14:30:00Z").unwrap(),
            "2024-03-08T14:30:00+00:00"
        );
        assert_eq!(
            at("2024-03-08T14:30:00+02:00").unwrap(),
            "2024-03-08T12:30:00+00:00"
        );
        assert_eq!(
            at("2024-03-08T14:30:00").unwrap(),
            "2024-03-08T14:30:00+00:00"
        );
        assert_eq!(at(" 2024-03-08 ").unwrap(), "2024-03-08T00:00:00+00:00");
        assert!(at("2024-06-02T11:00:00Z").is_ok(), "within the clock slack");
        for bad in ["yesterday", "2024-13-01", "", "2024-06-03"] {
            let refused = at(bad).expect_err(bad);
            assert_eq!(refused.field, "observed_at", "{bad}");
        }
        assert!(at("2024-06-03").unwrap_err().message.contains("future"));
    }

    #[test]
    fn an_empty_patch_is_refused() {
        let now = Utc::now();
        let err = MemoryPatch::parse(None, None, None, now, &Limits::default()).unwrap_err();
        assert_eq!(err.field, "body");
        // A blank time is no change either.
        let err = MemoryPatch::parse(None, None, Some(" "), now, &Limits::default()).unwrap_err();
        assert_eq!(err.field, "body");
    }

    #[test]
    fn a_patch_may_correct_only_the_observation_time() {
        let now = "2024-06-02T12:00:00Z".parse().unwrap();
        let limits = Limits::default();
        let patch = MemoryPatch::parse(None, None, Some("2024-03-08"), now, &limits).unwrap();
        assert_eq!(
            patch.observed_at,
            Some("2024-03-08T00:00:00Z".parse().unwrap())
        );
        assert_eq!((patch.content, patch.tags), (None, None));
        for bad in ["soon", "2024-07-01"] {
            let refused = MemoryPatch::parse(None, None, Some(bad), now, &limits).unwrap_err();
            assert_eq!(refused.field, "observed_at", "{bad}");
        }
    }
}
