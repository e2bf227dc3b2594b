//! `POST /memories/search`: parses the body into a [`SearchQuery`], runs it
//! ([`crate::search::run`]) and serialises the answer in the tenant's CPU share.

use axum::extract::State;
use membrain_contract::memories::TagsInput;
use membrain_contract::search::SearchRequest;
use membrain_memory::tag_filter::TagFilterInput;
use membrain_memory::{TagFilter, ValidationError};

use crate::error::ApiError;
use crate::extract::{ApiJson, JsonBody, Tenant};
use crate::search::{ObservedWindow, Ranking, ResponseFormat, SearchQuery};
use crate::server::AppState;

const MAX_QUERY_BYTES: usize = 4096;

fn parse_format(raw: Option<&str>) -> Result<ResponseFormat, ValidationError> {
    match raw.map(|f| f.trim().to_lowercase()).as_deref() {
        None | Some("") | Some("raw") => Ok(ResponseFormat::Raw),
        Some("interpreted") => Ok(ResponseFormat::Interpreted),
        Some("both") => Ok(ResponseFormat::Both),
        Some(other) => Err(ValidationError::new(
            "response_format",
            format!("{other:?} is not one of \"raw\", \"interpreted\", \"both\""),
        )),
    }
}

pub async fn search_memories(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(body): ApiJson<SearchRequest>,
) -> Result<JsonBody, ApiError> {
    let limits = &state.limits;
    if !(1..=100).contains(&body.k) {
        return Err(ValidationError::new(
            "k",
            format!("must be between 1 and 100, got {}", body.k),
        )
        .into());
    }
    let k = body.k as usize;
    let format = parse_format(body.response_format.as_deref())?;
    let ranking = Ranking::parse(body.ranking.as_deref())?;
    let query = body.query.trim();
    if query.is_empty() && !body.full_scope {
        return Err(ValidationError::new(
            "query",
            "must not be empty: ask in natural language, e.g. \"What drinks does the user like?\"",
        )
        .into());
    }
    if query.len() > MAX_QUERY_BYTES {
        return Err(ValidationError::new(
            "query",
            format!("is longer than {MAX_QUERY_BYTES} bytes"),
        )
        .into());
    }
    let filter_input = TagFilterInput {
        keyword_filter: body
            .keyword_filter
            .map(keyword_filter_list)
            .unwrap_or_default(),
        scope_regex: body.scope_regex.filter(|s| !s.trim().is_empty()),
        scope: body.scope.unwrap_or_default(),
    };
    // Compiling the patterns (each a regex, as many as the limits allow) is CPU work as heavy
    // as ranking with them: it runs in the tenant's share of the pool, at its priority, never
    // on the runtime threads every tenant's requests share. No patterns, no trip to the pool.
    let filter = if filter_input.keyword_filter.is_empty() && filter_input.scope_regex.is_none() {
        TagFilter::parse(filter_input, limits)?
    } else {
        let filter_limits = limits.clone();
        state
            .cpu
            .run(&tenant, move || {
                TagFilter::parse(filter_input, &filter_limits)
            })
            .await??
    };

    let observed = observed_window(
        body.observed_after.as_deref(),
        body.observed_before.as_deref(),
    )?;
    let request = SearchQuery {
        query: query.to_owned(),
        k,
        format,
        ranking,
        filter,
        full_scope: body.full_scope,
        observed,
    };
    let answer = crate::search::run(&state, &tenant, request).await?;
    // Serialising up to k memories (each with its history) is CPU work as heavy as ranking.
    state.cpu.json(&tenant, answer).await
}

/// `observed_after` and `observed_before`, each optional; the window they make must not be
/// empty.
fn observed_window(
    after: Option<&str>,
    before: Option<&str>,
) -> Result<ObservedWindow, ValidationError> {
    let parse = |field: &str, raw: Option<&str>| {
        raw.filter(|raw| !raw.trim().is_empty())
            .map(|raw| membrain_memory::parse_time(field, raw))
            .transpose()
    };
    let after = parse("observed_after", after)?;
    let before = parse("observed_before", before)?;
    if let (Some(after), Some(before)) = (after, before)
        && after >= before
    {
        return Err(ValidationError::new(
            "observed_before",
            format!("{before} is not after observed_after ({after}): no memory could match"),
        ));
    }
    Ok(ObservedWindow {
        after: after.map(|t| t.timestamp_micros()),
        before: before.map(|t| t.timestamp_micros()),
    })
}

fn keyword_filter_list(input: TagsInput) -> Vec<String> {
    match input {
        TagsInput::List(list) => list,
        // A single string is one regex (it may contain commas), not a comma list.
        TagsInput::Text(one) => vec![one],
    }
}
