//! Tag filters built from caller regexes, compiled once with size limits.
//!
//! The `regex` crate matches in linear time, so no pattern can backtrack catastrophically; the
//! byte and compiled-size limits keep a hostile pattern from costing memory instead, and the
//! limits on how many patterns a filter holds (and their bytes together) keep a hostile filter
//! from costing time: a search checks the filter against the tags of many memories, so
//! [`TagMatcher`] runs each pattern once per distinct tag and remembers the answer.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use regex::{Regex, RegexBuilder};

use crate::ids::truncate_for_message;
use crate::{Limits, ValidationError};

/// Most patterns a filter may hold whatever the configuration says: a [`TagMatcher`] keeps one
/// bit per pattern.
pub const MAX_FILTER_PATTERNS: usize = 64;

/// Distinct tags a [`TagMatcher`] remembers; beyond, patterns run without memoisation (the
/// answer is the same, only slower), so a tenant with millions of distinct tags cannot make one
/// search hold millions of entries.
const MATCHER_MEMORY: usize = 65_536;

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
    pub fn parse(input: TagFilterInput, limits: &Limits) -> Result<Self, ValidationError> {
        let max_regex_bytes = limits.max_regex_bytes;
        if !input.keyword_filter.is_empty() && input.scope_regex.is_some() {
            return Err(ValidationError::new(
                "scope_regex",
                "cannot be combined with keyword_filter: send one or the other \
                 (keyword_filter accepts a list of regexes that must all match)",
            ));
        }
        check_filter_size(&input, limits)?;
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
        let mut scope_tags: Vec<String> = Vec::new();
        for tag in &input.scope {
            let tag = tag.trim().to_lowercase();
            if !tag.is_empty() && !scope_tags.contains(&tag) {
                scope_tags.push(tag);
            }
        }
        Ok(Self {
            required_patterns,
            scope_tags,
        })
    }

    /// A filter with one required regex, as `traverse_graph`'s `scope_regex` uses it.
    pub fn from_scope_regex(
        pattern: Option<&str>,
        limits: &Limits,
    ) -> Result<Self, ValidationError> {
        Self::parse(
            TagFilterInput {
                scope_regex: pattern.map(str::to_owned),
                ..Default::default()
            },
            limits,
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

    /// A matcher for checking many memories: each pattern runs once per distinct tag.
    pub fn matcher(&self) -> TagMatcher<'_> {
        TagMatcher {
            filter: self,
            scope: self.scope_tags.iter().map(String::as_str).collect(),
            all_patterns: if self.required_patterns.len() >= 64 {
                u64::MAX
            } else {
                (1u64 << self.required_patterns.len()) - 1
            },
            seen: RefCell::new(HashMap::new()),
        }
    }
}

/// [`TagFilter::matches`] with memory: which patterns each tag matches is worked out once.
/// Single-threaded (one per search).
#[derive(Debug)]
pub struct TagMatcher<'f> {
    filter: &'f TagFilter,
    scope: HashSet<&'f str>,
    all_patterns: u64,
    /// Per distinct tag, a bit per required pattern it matches.
    seen: RefCell<HashMap<String, u64>>,
}

impl TagMatcher<'_> {
    pub fn matches(&self, tags: &[String]) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        if !self.scope.is_empty() && !tags.iter().any(|tag| self.scope.contains(tag.as_str())) {
            return false;
        }
        if self.filter.required_patterns.is_empty() {
            return true;
        }
        let mut matched = 0u64;
        for tag in tags {
            matched |= self.patterns_matching(tag);
            if matched == self.all_patterns {
                return true;
            }
        }
        false
    }

    fn patterns_matching(&self, tag: &str) -> u64 {
        if let Some(mask) = self.seen.borrow().get(tag) {
            return *mask;
        }
        let mask = self
            .filter
            .required_patterns
            .iter()
            .enumerate()
            .filter(|(_, re)| re.is_match(tag))
            .fold(0u64, |mask, (i, _)| mask | (1u64 << i));
        let mut seen = self.seen.borrow_mut();
        if seen.len() < MATCHER_MEMORY {
            seen.insert(tag.to_owned(), mask);
        }
        mask
    }
}

/// Refuses filters with more patterns (or pattern bytes) than the limits allow, before any is
/// compiled.
fn check_filter_size(input: &TagFilterInput, limits: &Limits) -> Result<(), ValidationError> {
    let max_patterns = limits.max_filter_patterns.min(MAX_FILTER_PATTERNS);
    let count =
        input.keyword_filter.len() + input.scope.len() + usize::from(input.scope_regex.is_some());
    if count > max_patterns {
        let field = if input.scope.len() > input.keyword_filter.len() {
            "scope"
        } else {
            "keyword_filter"
        };
        return Err(ValidationError::new(
            field,
            format!(
                "the filter has {count} entries (keyword_filter, scope_regex and scope \
                 together); at most {max_patterns} are allowed: use fewer, broader patterns \
                 (one regex can match several tags, e.g. \"^(work|home)$\")"
            ),
        ));
    }
    let bytes: usize = input
        .keyword_filter
        .iter()
        .chain(&input.scope)
        .chain(&input.scope_regex)
        .map(String::len)
        .sum();
    if bytes > limits.max_filter_bytes {
        return Err(ValidationError::new(
            "keyword_filter",
            format!(
                "the filter's patterns and scope tags are {bytes} bytes together; at most {} \
                 bytes are allowed: use fewer or shorter patterns",
                limits.max_filter_bytes
            ),
        ));
    }
    Ok(())
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
            &Limits::default(),
        )
        .unwrap()
    }

    fn limits(max_regex_bytes: usize) -> Limits {
        Limits {
            max_regex_bytes,
            ..Limits::default()
        }
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
                &limits(64),
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
    fn filters_are_bounded_in_count_and_bytes() {
        let parse = |kf: Vec<String>, scope: Vec<String>| {
            TagFilter::parse(
                TagFilterInput {
                    keyword_filter: kf,
                    scope_regex: None,
                    scope,
                },
                &Limits::default(),
            )
        };
        let many = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
        assert!(parse(many(16), vec![]).is_ok());
        let error = parse(many(17), vec![]).unwrap_err();
        assert_eq!(error.field, "keyword_filter");
        assert!(error.message.contains("at most 16"), "{error}");
        let error = parse(many(8), many(9)).unwrap_err();
        assert_eq!(error.field, "scope");
        let long = vec!["x".repeat(500); 9];
        let error = parse(long, vec![]).unwrap_err();
        assert!(error.message.contains("bytes together"), "{error}");
        // A quarter of a million scope tags is refused before anything is compiled or copied.
        assert!(parse(vec![], many(250_000)).is_err());
    }

    #[test]
    fn the_matcher_agrees_with_the_filter() {
        let f = filter(&["^food", "pref"], None, &["home", "food-likes"]);
        let matcher = f.matcher();
        for case in [
            vec!["food-likes", "preferences"],
            vec!["food-likes"],
            vec!["home", "prefs", "food"],
            vec!["garden", "food", "pref"],
            vec![],
        ] {
            let case = tags(&case);
            // Twice: the second answer comes from the matcher's memory.
            assert_eq!(matcher.matches(&case), f.matches(&case), "{case:?}");
            assert_eq!(matcher.matches(&case), f.matches(&case), "{case:?}");
        }
        assert!(filter(&[], None, &[]).matcher().matches(&[]));
    }

    #[test]
    fn backtracking_bombs_run_in_linear_time() {
        let f = filter(&["(a+)+$"], None, &[]);
        let evil = format!("{}b", "a".repeat(10_000));
        assert!(!f.matches(&[evil]));
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        fn pattern() -> impl Strategy<Value = String> {
            prop_oneof![
                // Regex-shaped text: meta characters, classes, repetition, nesting.
                "[a-z()|*+?^$.\\[\\]{}0-9,-]{0,24}",
                any::<String>(),
                Just("(a{1000}){1000}".to_owned()),
                Just("((((((((((a))))))))))*".to_owned()),
            ]
        }

        proptest! {
            /// Any caller filter either fails with a field and a message, or compiles into a
            /// filter whose memoised matcher agrees with it on any tags.
            #[test]
            fn fuzz_tag_filters(
                keyword_filter in prop::collection::vec(pattern(), 0..20),
                scope_regex in prop::option::of(pattern()),
                scope in prop::collection::vec("[a-zA-Z0-9 -]{0,12}", 0..20),
                tag_sets in prop::collection::vec(
                    prop::collection::vec("[a-z0-9-]{0,10}", 0..6), 0..8),
            ) {
                let input = TagFilterInput { keyword_filter, scope_regex, scope };
                match TagFilter::parse(input, &Limits::default()) {
                    Err(error) => {
                        prop_assert!(!error.field.is_empty());
                        prop_assert!(!error.message.is_empty());
                    }
                    Ok(filter) => {
                        let matcher = filter.matcher();
                        for tags in &tag_sets {
                            prop_assert_eq!(matcher.matches(tags), filter.matches(tags));
                        }
                    }
                }
            }
        }
    }
}
