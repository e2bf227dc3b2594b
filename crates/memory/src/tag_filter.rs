//! Tag filters built from caller regexes, compiled once with size limits.
//!
//! The `regex` crate matches in linear time, so no pattern can backtrack catastrophically; the
//! byte and compiled-size limits keep a hostile pattern from costing memory instead.

use regex::{Regex, RegexBuilder};

use crate::ValidationError;
use crate::ids::truncate_for_message;

/// Which memories a read considers, by their tags. Empty means every memory of the tenant.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    /// Each pattern must match at least one tag (an AND list).
    required_patterns: Vec<Regex>,
    /// When non-empty, a memory must carry at least one of these tags.
    scope_tags: Vec<String>,
}

/// The caller's filter fields, before validation.
#[derive(Debug, Clone, Default)]
pub struct TagFilterInput {
    /// `keyword_filter`: one regex, or a list of regexes that must all match some tag.
    pub keyword_filter: Vec<String>,
    /// `scope_regex`: one regex over tags; not allowed together with `keyword_filter`.
    pub scope_regex: Option<String>,
    /// `scope`: a list of tags; a memory in any of them is in scope.
    pub scope: Vec<String>,
}

impl TagFilter {
    pub fn parse(input: TagFilterInput, max_regex_bytes: usize) -> Result<Self, ValidationError> {
        if !input.keyword_filter.is_empty() && input.scope_regex.is_some() {
            return Err(ValidationError::new(
                "scope_regex",
                "cannot be combined with keyword_filter: send one or the other \
                 (keyword_filter accepts a list of regexes that must all match)",
            ));
        }
        let mut required_patterns = Vec::new();
        for (i, pattern) in input.keyword_filter.iter().enumerate() {
            let field = if input.keyword_filter.len() == 1 {
                "keyword_filter".to_owned()
            } else {
                format!("keyword_filter[{i}]")
            };
            required_patterns.push(compile(pattern, &field, max_regex_bytes)?);
        }
        if let Some(pattern) = &input.scope_regex {
            required_patterns.push(compile(pattern, "scope_regex", max_regex_bytes)?);
        }
        let scope_tags = input
            .scope
            .iter()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        Ok(Self {
            required_patterns,
            scope_tags,
        })
    }

    /// A filter with one required regex, as `traverse_graph`'s `scope_regex` uses it.
    pub fn from_scope_regex(
        pattern: Option<&str>,
        max_regex_bytes: usize,
    ) -> Result<Self, ValidationError> {
        Self::parse(
            TagFilterInput {
                scope_regex: pattern.map(str::to_owned),
                ..Default::default()
            },
            max_regex_bytes,
        )
    }

    pub fn is_empty(&self) -> bool {
        self.required_patterns.is_empty() && self.scope_tags.is_empty()
    }

    pub fn matches(&self, tags: &[String]) -> bool {
        let in_scope =
            self.scope_tags.is_empty() || self.scope_tags.iter().any(|s| tags.contains(s));
        in_scope
            && self
                .required_patterns
                .iter()
                .all(|re| tags.iter().any(|tag| re.is_match(tag)))
    }
}

fn compile(pattern: &str, field: &str, max_bytes: usize) -> Result<Regex, ValidationError> {
    if pattern.trim().is_empty() {
        return Err(ValidationError::new(
            field,
            "is an empty regex; leave the field out instead",
        ));
    }
    if pattern.len() > max_bytes {
        return Err(ValidationError::new(
            field,
            format!(
                "is {} bytes; regexes are limited to {max_bytes} bytes",
                pattern.len()
            ),
        ));
    }
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .nest_limit(64)
        .build()
        .map_err(|e| {
            let reason = match e {
                regex::Error::CompiledTooBig(_) => "compiles to more than 1 MiB".to_owned(),
                other => other.to_string().lines().last().unwrap_or("invalid").trim().to_owned(),
            };
            ValidationError::new(
                field,
                format!(
                    "{:?} is not a valid regex ({reason}); use a Rust/RE2 regex such as \"^project-\"",
                    truncate_for_message(pattern)
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    fn filter(keyword_filter: &[&str], scope_regex: Option<&str>, scope: &[&str]) -> TagFilter {
        TagFilter::parse(
            TagFilterInput {
                keyword_filter: tags(keyword_filter),
                scope_regex: scope_regex.map(str::to_owned),
                scope: tags(scope),
            },
            512,
        )
        .unwrap()
    }

    #[test]
    fn keyword_filters_are_an_and_list() {
        let f = filter(&["^food", "pref"], None, &[]);
        assert!(f.matches(&tags(&["food-likes", "preferences"])));
        assert!(!f.matches(&tags(&["food-likes"])));
        assert!(filter(&[], None, &[]).matches(&tags(&[])));
    }

    #[test]
    fn scope_regex_and_scope_tags() {
        assert!(filter(&[], Some("^proj-a$"), &[]).matches(&tags(&["x", "proj-a"])));
        assert!(!filter(&[], Some("^proj-a$"), &[]).matches(&tags(&["proj-ab"])));
        let scoped = filter(&[], None, &["work", "home"]);
        assert!(scoped.matches(&tags(&["home"])));
        assert!(!scoped.matches(&tags(&["garden"])));
    }

    #[test]
    fn bad_patterns_name_their_field() {
        let parse = |kf: &[&str], sr: Option<&str>| {
            TagFilter::parse(
                TagFilterInput {
                    keyword_filter: tags(kf),
                    scope_regex: sr.map(str::to_owned),
                    scope: vec![],
                },
                64,
            )
            .unwrap_err()
            .field
        };
        assert_eq!(parse(&["(unclosed"], None), "keyword_filter");
        assert_eq!(parse(&["ok", "[z-a]"], None), "keyword_filter[1]");
        assert_eq!(parse(&[], Some(&"a".repeat(65))), "scope_regex");
        assert_eq!(parse(&["a"], Some("b")), "scope_regex");
        // Catastrophic for backtracking engines; linear here, but its compiled size is refused.
        assert_eq!(parse(&[], Some("(a{1000}){1000}")), "scope_regex");
        assert_eq!(parse(&[""], None), "keyword_filter");
    }

    #[test]
    fn backtracking_bombs_run_in_linear_time() {
        let f = filter(&["(a+)+$"], None, &[]);
        let evil = format!("{}b", "a".repeat(10_000));
        assert!(!f.matches(&[evil]));
    }
}
