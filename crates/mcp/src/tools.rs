//! [`MembrainTools`]: the MCP tools, each a thin call to the Memory REST API with the caller's key.
//!
//! Names and parameters follow the public `mem-brain-mcp` 1.1.5 server so agent prompts carry
//! over, plus one tool per REST call that server's client can make but does not expose.

use std::sync::Arc;
use std::time::Duration;

use membrain_auth::{ApiKey, key_from_headers};
use membrain_contract::graph::{
    EdgeView, LinkRequest, NeighborhoodQuery, PathQuery, TraverseQuery, VisitedMemory,
};
use membrain_contract::memories::{
    AddMemoryRequest, BatchRequest, DeleteQuery, IngestJobAnswer, JobStatus, TagsInput,
    UpdateRequest,
};
use membrain_contract::search::{SearchRequest, SearchResult};
use membrain_contract::stats::StatsAnswer;
use membrain_memory::{Memory, MemoryId};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::*;
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use crate::api_client::{ApiCallError, Caller, MemoryApi};
use crate::arguments::argument_problem;
use crate::instructions::*;
use crate::ts_tools::{CallerTenant, TimeSeriesAccess};

/// The caller's key, as the HTTP layer checked it. Tools read it from the request.
#[derive(Debug, Clone)]
pub struct CallerKey(pub ApiKey);

/// For a caller the HTTP layer identified by an OAuth token: the tenant the bridge's service
/// key acts for ([`CallerKey`] then holds the service key, never the caller's token).
#[derive(Debug, Clone)]
pub struct ActingFor(pub membrain_memory::TenantId);

/// How long `add_memory` waits for its ingest job unless told otherwise; below the load
/// balancer's 60 s idle timeout.
const INGEST_WAIT: Duration = Duration::from_secs(50);

#[derive(Clone)]
pub struct MembrainTools {
    /// The Memory REST API; `None` in the gateway profile, which serves time series only.
    api: Option<Arc<dyn MemoryApi>>,
    time_series: TimeSeriesAccess,
    /// The key used when the request carries none: only set for stdio, where the process
    /// belongs to one user.
    fallback_key: Option<Arc<ApiKey>>,
    /// How long `add_memory` waits for its memory to be stored, from the start of the call.
    ingest_wait: Duration,
    /// Shared: stateless HTTP makes a copy of the tools for every request.
    tool_router: Arc<ToolRouter<Self>>,
}

// ---- arguments ---------------------------------------------------------------------------

/// Tags as a list, a comma-separated string, or a JSON array in a string.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TagsArg {
    List(Vec<String>),
    Text(String),
}

impl TagsArg {
    fn into_list(self) -> Vec<String> {
        match self {
            Self::List(list) => list,
            Self::Text(text) => match serde_json::from_str::<Vec<String>>(text.trim()) {
                Ok(list) => list,
                Err(_) => text
                    .split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect(),
            },
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddMemoryArgs {
    /// The fact to remember, as one self-contained statement ("User prefers dark mode").
    pub content: String,
    /// Tags: a list (["coding", "preferences"]) or a comma-separated string. Omit to derive tags from the content.
    #[serde(default)]
    pub tags: Option<TagsArg>,
    /// A category such as "preferences" or "interests".
    #[serde(default)]
    pub category: Option<String>,
    /// A regex over existing memories' tags limiting what this memory may be linked to during ingest. Not stored.
    #[serde(default)]
    pub ingestion_scope: Option<String>,
    /// When the fact was observed, if not now: RFC 3339 ("2024-03-08T14:30:00Z") or a date ("2024-03-08"). Questions naming a time ("what did I do last May") match it.
    #[serde(default)]
    pub observed_at: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// A natural-language question, e.g. "What does the user drink in the morning?"
    pub query: String,
    /// How many memories to return, 1 to 100.
    #[serde(default = "default_k")]
    pub k: i64,
    /// A tag regex, or a list of tag regexes that must all match (AND). Not with scope_regex.
    #[serde(default)]
    pub keyword_filter: Option<TagsArg>,
    /// One tag regex; the same contract as ingestion_scope and traverse_graph. Not with keyword_filter.
    #[serde(default)]
    pub scope_regex: Option<String>,
    /// "raw" (default), "interpreted" or "both".
    #[serde(default = "default_format")]
    pub response_format: String,
    /// Only memories carrying at least one of these tags.
    #[serde(default)]
    pub scope: Option<Vec<String>>,
    /// List every memory in scope (best matches first), not only the top k.
    #[serde(default)]
    pub full_scope: Option<bool>,
    /// Only memories observed at or after this time: RFC 3339 ("2024-03-08T14:30:00Z") or a date ("2024-03-08").
    #[serde(default)]
    pub observed_after: Option<String>,
    /// Only memories observed before this time: RFC 3339 or a date.
    #[serde(default)]
    pub observed_before: Option<String>,
}

fn default_k() -> i64 {
    5
}

fn default_format() -> String {
    "raw".to_owned()
}

fn default_hops() -> i64 {
    2
}

fn default_threshold() -> f64 {
    // Cosine similarity of all-MiniLM-L6-v2 vectors: a short edge description and a question
    // about the same thing score about 0.5-0.8; unrelated ones below 0.3.
    0.5
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TraverseArgs {
    /// The memory to start from (an id from search results).
    pub start_memory_id: String,
    /// What to follow: edges whose descriptions match this question are taken.
    pub query: String,
    /// How many links deep to go, 1 to 5.
    #[serde(default = "default_hops")]
    pub max_hops: i64,
    /// How closely an edge description must mean what the query asks, 0 to 1 (cosine similarity; 0.5 = clearly the same topic).
    #[serde(default = "default_threshold")]
    pub edge_similarity_threshold: f64,
    /// Only visit memories whose tags match this regex (the start memory must match too).
    #[serde(default)]
    pub scope_regex: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetMemoriesArgs {
    /// Memory ids from search results, e.g. ["0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b"].
    pub memory_ids: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeleteArgs {
    /// Delete this one memory. Takes precedence over tags and category.
    #[serde(default)]
    pub memory_id: Option<String>,
    /// Comma-separated tags; memories carrying all of them are deleted.
    #[serde(default)]
    pub tags: Option<String>,
    /// Delete the memories in this category (with tags: those in both).
    #[serde(default)]
    pub category: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateArgs {
    /// The memory to change.
    pub memory_id: String,
    /// The new content; the old one is kept in evolution_history.
    #[serde(default)]
    pub content: Option<String>,
    /// The new tags (replace the old ones).
    #[serde(default)]
    pub tags: Option<TagsArg>,
    /// A corrected time the fact was observed: RFC 3339 ("2024-03-08T14:30:00Z") or a date ("2024-03-08").
    #[serde(default)]
    pub observed_at: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PairArgs {
    pub memory_id_1: String,
    pub memory_id_2: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LinkArgs {
    pub memory_id_1: String,
    pub memory_id_2: String,
    /// How the two relate, e.g. "coffee triggers the user's reflux".
    pub description: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PathArgs {
    /// Where the path starts.
    pub from_id: String,
    /// Where the path ends.
    pub to_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NeighborhoodArgs {
    /// The memory at the centre.
    pub memory_id: String,
    /// How many links out, 1 to 5.
    #[serde(default = "default_hops")]
    pub hops: i64,
}

// ---- results ----------------------------------------------------------------------------
//
// The tools' outputs carry the REST answers' typed parts; their schemas stay as loose as the
// public server's (`#[schemars(with = …)]`), so a client validating structuredContent keeps
// working as Membrain's memories gain fields.

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AddMemoryOutput {
    pub memory_id: String,
    /// created, merged (an exact duplicate existed) or updated.
    pub action: String,
    #[schemars(with = "Value")]
    pub memory: Option<Memory>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SearchOutput {
    pub count: u64,
    /// memory_node and relationship_edge results, best first.
    #[schemars(with = "Vec<Value>")]
    pub results: Vec<SearchResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Value>")]
    pub interpreted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreted_error: Option<String>,
    #[serde(default)]
    pub truncated: bool,
    /// Why the results may be weaker than usual (e.g. ranked lexically while the model is busy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct MemoriesOutput {
    pub count: u64,
    #[schemars(with = "Vec<Value>")]
    pub memories: Vec<Memory>,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct MemoryOutput {
    #[schemars(with = "Value")]
    pub memory: Memory,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct DeleteOutput {
    pub deleted_count: u64,
    #[schemars(with = "Vec<String>")]
    pub memory_ids: Vec<MemoryId>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct CountedName {
    #[serde(alias = "category")]
    pub tag: String,
    pub count: u64,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct StatsOutput {
    pub total_memories: u64,
    pub total_links: u64,
    pub avg_links_per_memory: f64,
    pub top_tags: Vec<CountedName>,
    #[serde(default)]
    #[schemars(with = "Vec<Value>")]
    pub categories: Vec<membrain_contract::stats::CategoryCount>,
    /// What the tenant holds against its quotas; absent from APIs that do not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOutput>,
}

/// A tenant's usage beside its quotas, so an agent can see a `quota_exceeded` coming.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageOutput {
    pub memories: u64,
    pub stored_bytes: u64,
    pub pending_jobs: u64,
    pub max_memories: u64,
    pub max_stored_bytes: u64,
    pub max_pending_jobs: u64,
}

impl From<StatsAnswer> for StatsOutput {
    fn from(stats: StatsAnswer) -> Self {
        let usage = stats.usage;
        Self {
            total_memories: stats.total_memories,
            total_links: stats.total_links,
            avg_links_per_memory: stats.avg_links_per_memory,
            top_tags: stats
                .top_tags
                .into_iter()
                .map(|t| CountedName {
                    tag: t.tag,
                    count: t.count,
                })
                .collect(),
            categories: stats.categories,
            usage: Some(UsageOutput {
                memories: usage.memories,
                stored_bytes: usage.stored_bytes,
                pending_jobs: usage.pending_jobs,
                max_memories: usage.max_memories,
                max_stored_bytes: usage.max_stored_bytes,
                max_pending_jobs: usage.max_pending_jobs,
            }),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct LinkOutput {
    pub status: String,
    pub memory_id_1: String,
    pub memory_id_2: String,
}

impl From<membrain_contract::graph::LinkAnswer> for LinkOutput {
    fn from(answer: membrain_contract::graph::LinkAnswer) -> Self {
        Self {
            status: answer.status,
            memory_id_1: answer.memory_id_1.to_string(),
            memory_id_2: answer.memory_id_2.to_string(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PathOutput {
    pub found: bool,
    pub hops: Option<u64>,
    #[schemars(with = "Vec<Value>")]
    pub path: Vec<Memory>,
    #[schemars(with = "Vec<Value>")]
    pub edges: Vec<EdgeView>,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct NeighborhoodOutput {
    pub center_id: String,
    pub hops: u64,
    pub count: u64,
    #[schemars(with = "Vec<Value>")]
    pub memories: Vec<VisitedMemory>,
    #[schemars(with = "Vec<Value>")]
    pub edges: Vec<EdgeView>,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TraverseOutput {
    pub start_memory_id: String,
    pub query: String,
    pub memory_count: u64,
    pub edge_count: u64,
    #[schemars(with = "Vec<Value>")]
    pub memories: Vec<VisitedMemory>,
    #[schemars(with = "Vec<Value>")]
    pub traversed_edges: Vec<EdgeView>,
    #[serde(default)]
    pub truncated: bool,
}

/// Turns an API failure into a message that tells the agent how to fix the call.
pub(crate) fn explain(error: ApiCallError) -> String {
    match error {
        ApiCallError::Rejected { status: 401, .. } => "Authentication failed: the API key is missing, invalid or revoked. \
             Configure a valid Membrain key in your MCP client headers (X-API-Key or Authorization: Bearer)."
            .to_owned(),
        ApiCallError::Rejected { status: 404, message, .. } => {
            format!("{message}\nCheck the ids: search_memories returns current ones.")
        }
        ApiCallError::Rejected { message, .. } => format!("Invalid request: {message}"),
        other => format!("{other}. Try again shortly."),
    }
}

pub(crate) fn parse_output<T: DeserializeOwned>(value: Value) -> Result<Json<T>, String> {
    serde_json::from_value(value)
        .map(Json)
        .map_err(|e| format!("the Memory API sent an unexpected answer ({e})"))
}

fn present(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn required(value: &str, field: &str, example: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("'{field}' cannot be empty. Example: {example}"));
    }
    Ok(value.to_owned())
}

/// The tools as `tools/list` sends them (see [`crate::schema`]). `tools/list` orders them by
/// name (rmcp's `ToolRouter::list_all` sorts them), the same on every server and every call.
fn wire_ready(mut router: ToolRouter<MembrainTools>) -> ToolRouter<MembrainTools> {
    for route in router.map.values_mut() {
        crate::schema::wire_ready(&mut route.attr);
    }
    router
}

#[tool_router]
impl MembrainTools {
    /// Every tool, each a call to the REST API (`alb` profile, `serve`, stdio).
    pub fn new(api: Arc<dyn MemoryApi>, fallback_key: Option<ApiKey>) -> Self {
        Self {
            api: Some(api),
            time_series: TimeSeriesAccess::Api,
            fallback_key: fallback_key.map(Arc::new),
            ingest_wait: INGEST_WAIT,
            tool_router: Arc::new(wire_ready(Self::tool_router() + Self::ts_tool_router())),
        }
    }

    /// How long `add_memory` waits for its ingest job before answering that the memory is
    /// accepted and still being processed [default: 50 s]. Over HTTP it must end before the
    /// request deadline, or the caller would get a 503 instead of that answer.
    pub fn with_ingest_wait(mut self, wait: Duration) -> Self {
        self.ingest_wait = wait;
        self
    }

    /// The time-series tools only, answered from `service` in this process (`gateway`
    /// profile); the HTTP layer resolves each caller's tenant from its key source.
    pub fn time_series_only(service: Arc<membrain_ts_service::TimeSeriesService>) -> Self {
        Self {
            api: None,
            time_series: TimeSeriesAccess::Direct(service),
            fallback_key: None,
            ingest_wait: INGEST_WAIT,
            tool_router: Arc::new(wire_ready(Self::ts_tool_router())),
        }
    }

    pub(crate) fn time_series(&self) -> &TimeSeriesAccess {
        &self.time_series
    }

    /// The caller's key: checked by the HTTP layer, read from the request headers, or (stdio)
    /// the process's own key.
    fn caller_key(&self, ctx: &RequestContext<RoleServer>) -> Result<ApiKey, String> {
        if let Some(parts) = ctx.extensions.get::<http::request::Parts>() {
            if let Some(CallerKey(key)) = parts.extensions.get::<CallerKey>() {
                return Ok(key.clone());
            }
            if let Some(key) =
                key_from_headers(|name| parts.headers.get(name).and_then(|v| v.to_str().ok()))
            {
                return Ok(key);
            }
        }
        self.fallback_key.as_deref().cloned().ok_or_else(|| {
            "No API key provided. Configure X-API-Key (or Authorization: Bearer) in your MCP client headers, \
             or set MEMBRAIN_API_KEY for stdio."
                .to_owned()
        })
    }

    /// The REST API and the caller (key and request id), for one tool call.
    pub(crate) fn api(
        &self,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(&dyn MemoryApi, Caller), String> {
        let key = self.caller_key(ctx)?;
        // The id the HTTP layer gave this request, sent on so the API's log lines carry it.
        let request_id = ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get("x-request-id"))
            .and_then(|id| id.to_str().ok());
        let api = self.api.as_deref().ok_or_else(|| {
            "this MCP server (gateway profile) serves the ts_* tools only".to_owned()
        })?;
        let acting_for = ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<ActingFor>());
        let caller = match acting_for {
            Some(ActingFor(tenant)) => Caller::service(key, tenant.clone()),
            None => Caller::new(key),
        };
        Ok((api, caller.with_request_id(request_id)))
    }

    #[tool(
        title = "Get the agent guide",
        description = "Get the guide for using this memory well: when to search, what to store, how to tag, and which tool does what. Read it once at the start of a session.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_agent_instructions(&self) -> String {
        AGENT_INSTRUCTIONS.to_owned()
    }

    #[tool(
        title = "Add memory",
        description = "Store a fact about the user or their work and return the stored memory. Store facts, not conversation ('User prefers dark mode', not 'you said you like dark mode'). Exact duplicates and near-duplicates (the same fact in other words) are merged into the existing memory, keeping the old wording in its history; related memories are linked automatically with a description of how they relate. ingestion_scope (a tag regex) limits which memories it may link to. Tags are optional (derived from the content when omitted). observed_at dates a fact observed earlier (an imported diary, a past conversation) so questions about that time find it.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn add_memory(
        &self,
        Parameters(args): Parameters<AddMemoryArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<AddMemoryOutput>, String> {
        let deadline = tokio::time::Instant::now() + self.ingest_wait;
        let content = required(
            &args.content,
            "content",
            "add_memory(content=\"User prefers dark mode\")",
        )?;
        let request = AddMemoryRequest {
            content,
            tags: args
                .tags
                .map(TagsArg::into_list)
                .filter(|t| !t.is_empty())
                .map(TagsInput::List),
            category: present(args.category),
            ingestion_scope: present(args.ingestion_scope),
            observed_at: present(args.observed_at),
        };
        let (api, caller) = self.api(&ctx)?;
        let accepted = api.add_memory(&caller, &request).await.map_err(explain)?;
        let job_id = accepted.job_id.to_string();
        let mut delay = Duration::from_millis(10);
        loop {
            let job: IngestJobAnswer = api.ingest_job(&caller, &job_id).await.map_err(explain)?;
            match job.status {
                JobStatus::Completed => {
                    let outcome = job
                        .result
                        .ok_or("the Memory API completed the job but sent no result")?;
                    return Ok(Json(AddMemoryOutput {
                        memory_id: outcome.memory_id.to_string(),
                        action: outcome.action.as_str().to_owned(),
                        memory: outcome.memory,
                    }));
                }
                JobStatus::Failed => {
                    let (code, message) = job.error.map_or_else(
                        || ("INGEST_FAILED".to_owned(), "no details".to_owned()),
                        |e| (e.code, e.message),
                    );
                    return Err(format!("Storing the memory failed ({code}): {message}"));
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(format!(
                        "The memory was accepted (job {job_id}) but is still being processed; it will be stored. \
                         Search for it in a minute instead of adding it again."
                    ));
                }
                _ => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(250));
                }
            }
        }
    }

    #[tool(
        title = "Search memories",
        description = "Find memories by meaning of a natural-language question (not a bare keyword): 'Which database did we pick for billing?'. Ranking fuses word matching with meaning, so paraphrases match. Returns memory_node results with related_memories (linked facts worth reading) and relationship_edge results (links whose description answers the question better than either memory). Narrow with keyword_filter (a tag regex or an AND-list of regexes) or scope_regex (one tag regex), never both. response_format: raw (default), interpreted or both.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn search_memories(
        &self,
        Parameters(args): Parameters<SearchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<SearchOutput>, String> {
        let query = required(
            &args.query,
            "query",
            "search_memories(query=\"What is the user's name?\")",
        )?;
        if !(1..=100).contains(&args.k) {
            return Err(format!(
                "The 'k' parameter must be between 1 and 100, but got {}. Example: search_memories(query=\"...\", k=10)",
                args.k
            ));
        }
        let scope_regex = present(args.scope_regex);
        let keyword_filter = args.keyword_filter.and_then(|f| match f {
            TagsArg::List(list) if list.is_empty() => None,
            TagsArg::Text(text) if text.trim().is_empty() => None,
            TagsArg::List(list) => Some(TagsInput::List(list)),
            TagsArg::Text(text) => Some(TagsInput::Text(text)),
        });
        if scope_regex.is_some() && keyword_filter.is_some() {
            return Err("Provide only one of keyword_filter or scope_regex, not both. keyword_filter takes a list \
                        of regexes that must all match."
                .to_owned());
        }
        let request = SearchRequest {
            response_format: Some(args.response_format.trim().to_lowercase()),
            keyword_filter,
            scope_regex,
            scope: args.scope.filter(|s| !s.is_empty()),
            full_scope: args.full_scope.unwrap_or(false),
            observed_after: present(args.observed_after),
            observed_before: present(args.observed_before),
            ..SearchRequest::new(query, args.k)
        };
        let (api, caller) = self.api(&ctx)?;
        let answer = api.search(&caller, &request).await.map_err(explain)?;
        Ok(Json(SearchOutput {
            count: answer.count as u64,
            results: answer.results,
            interpreted: answer.interpreted.flatten(),
            interpreted_error: answer.interpreted_error,
            truncated: answer.truncated,
            notices: answer.notices,
        }))
    }

    #[tool(
        title = "Traverse the memory graph",
        description = "Walk the memory graph from one memory, following only links whose descriptions mean what the query asks, up to max_hops (1-5). edge_similarity_threshold (0-1, default 0.5) is the least semantic similarity between the query and an edge description; lower it to explore more. scope_regex keeps the walk inside memories whose tags match.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn traverse_graph(
        &self,
        Parameters(args): Parameters<TraverseArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<TraverseOutput>, String> {
        let start = required(
            &args.start_memory_id,
            "start_memory_id",
            "traverse_graph(start_memory_id=\"<id from search>\", query=\"health effects\")",
        )?;
        let query = required(
            &args.query,
            "query",
            "traverse_graph(start_memory_id=\"...\", query=\"health effects\")",
        )?;
        if !(1..=5).contains(&args.max_hops) {
            return Err(format!(
                "max_hops must be an integer between 1 and 5, got {}.",
                args.max_hops
            ));
        }
        if !(0.0..=1.0).contains(&args.edge_similarity_threshold) {
            return Err(format!(
                "edge_similarity_threshold must be between 0.0 and 1.0, got {}.",
                args.edge_similarity_threshold
            ));
        }
        let request = TraverseQuery {
            start_memory_id: Some(start),
            query: Some(query),
            max_hops: Some(args.max_hops),
            edge_similarity_threshold: Some(args.edge_similarity_threshold),
            scope_regex: present(args.scope_regex),
        };
        let (api, caller) = self.api(&ctx)?;
        let answer = api.traverse(&caller, &request).await.map_err(explain)?;
        Ok(Json(TraverseOutput {
            start_memory_id: answer.start_memory_id.to_string(),
            query: answer.query,
            memory_count: answer.memory_count as u64,
            edge_count: answer.edge_count as u64,
            memories: answer.memories,
            traversed_edges: answer.traversed_edges,
            truncated: answer.truncated,
        }))
    }

    #[tool(
        title = "Get memories",
        description = "Read full memories by id (ids come from search results), with their tags, links and history. Every id must exist.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_memories(
        &self,
        Parameters(args): Parameters<GetMemoriesArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<MemoriesOutput>, String> {
        let ids: Vec<String> = args
            .memory_ids
            .iter()
            .map(|id| id.trim().to_owned())
            .collect();
        if ids.is_empty() || ids.iter().any(String::is_empty) {
            return Err("memory_ids must be a non-empty list of non-empty ids. Example: get_memories(memory_ids=[\"<id>\"])".to_owned());
        }
        let (api, caller) = self.api(&ctx)?;
        let answer = api
            .memories(&caller, &BatchRequest { memory_ids: ids })
            .await
            .map_err(explain)?;
        Ok(Json(MemoriesOutput {
            count: answer.count as u64,
            memories: answer.memories,
            truncated: answer.truncated,
        }))
    }

    #[tool(
        title = "Delete memories",
        description = "Delete memories: one by memory_id (takes precedence), or every memory carrying all of the comma-separated tags and/or in the category. A filter is required; nothing deletes everything. Use for wrong memories or when the user asks to forget.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_memories(
        &self,
        Parameters(args): Parameters<DeleteArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<DeleteOutput>, String> {
        let query = match present(args.memory_id) {
            Some(id) => DeleteQuery {
                memory_id: Some(id),
                ..DeleteQuery::default()
            },
            None => DeleteQuery {
                memory_id: None,
                tags: present(args.tags),
                category: present(args.category),
            },
        };
        if query == DeleteQuery::default() {
            return Err("At least one of memory_id, tags or category must be provided. Example: delete_memories(memory_id=\"<id>\")".to_owned());
        }
        let (api, caller) = self.api(&ctx)?;
        let answer = api
            .delete_memories(&caller, &query)
            .await
            .map_err(explain)?;
        Ok(Json(DeleteOutput {
            deleted_count: answer.deleted_count as u64,
            memory_ids: answer.memory_ids,
        }))
    }

    #[tool(
        title = "Get memory stats",
        description = "Counts for your memory: total memories and links, links per memory, the most used tags and categories, and usage against your quotas (memories, stored bytes, pending jobs).",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_stats(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<StatsOutput>, String> {
        let (api, caller) = self.api(&ctx)?;
        Ok(Json(api.stats(&caller).await.map_err(explain)?.into()))
    }

    #[tool(
        title = "Update memory",
        description = "Change a memory's content, tags or observed_at (when its fact was observed). A content change keeps the old text in evolution_history. Use it when a stored fact becomes outdated or was wrong, or was dated wrongly.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn update_memory(
        &self,
        Parameters(args): Parameters<UpdateArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<MemoryOutput>, String> {
        let id = required(
            &args.memory_id,
            "memory_id",
            "update_memory(memory_id=\"<id>\", content=\"...\")",
        )?;
        let request = UpdateRequest {
            content: args.content,
            tags: args.tags.map(|tags| TagsInput::List(tags.into_list())),
            observed_at: present(args.observed_at),
        };
        let (api, caller) = self.api(&ctx)?;
        let memory = api
            .update_memory(&caller, &id, &request)
            .await
            .map_err(explain)?;
        Ok(Json(MemoryOutput { memory }))
    }

    #[tool(
        title = "Link memories",
        description = "Record that two memories are related, with a description of how (it is what traverse_graph matches). Re-linking replaces the description.",
        // Destructive: re-linking overwrites the link's old description, which is not kept.
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn link_memories(
        &self,
        Parameters(args): Parameters<LinkArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<LinkOutput>, String> {
        let request = LinkRequest {
            memory_id_1: Some(args.memory_id_1),
            memory_id_2: Some(args.memory_id_2),
            description: Some(args.description),
        };
        let (api, caller) = self.api(&ctx)?;
        Ok(Json(
            api.link(&caller, &request).await.map_err(explain)?.into(),
        ))
    }

    #[tool(
        title = "Unlink memories",
        description = "Remove the link between two memories (both memories stay).",
        // Idempotent: a second call finds no link and changes nothing.
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn unlink_memories(
        &self,
        Parameters(args): Parameters<PairArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<LinkOutput>, String> {
        let request = LinkRequest {
            memory_id_1: Some(args.memory_id_1),
            memory_id_2: Some(args.memory_id_2),
            description: None,
        };
        let (api, caller) = self.api(&ctx)?;
        Ok(Json(
            api.unlink(&caller, &request).await.map_err(explain)?.into(),
        ))
    }

    #[tool(
        title = "Find a path between memories",
        description = "Find the shortest chain of links between two memories, with the description of each link: how two facts connect.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn find_path(
        &self,
        Parameters(args): Parameters<PathArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<PathOutput>, String> {
        let query = PathQuery {
            from_id: Some(args.from_id),
            to_id: Some(args.to_id),
        };
        let (api, caller) = self.api(&ctx)?;
        let answer = api.path(&caller, &query).await.map_err(explain)?;
        Ok(Json(PathOutput {
            found: answer.found,
            hops: answer.hops.map(|hops| hops as u64),
            path: answer.path,
            edges: answer.edges,
            truncated: answer.truncated,
        }))
    }

    #[tool(
        title = "Get a memory's neighborhood",
        description = "List every memory within `hops` links (1-5) of a memory, with the links between them.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_neighborhood(
        &self,
        Parameters(args): Parameters<NeighborhoodArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<NeighborhoodOutput>, String> {
        if !(1..=5).contains(&args.hops) {
            return Err(format!(
                "hops must be an integer between 1 and 5, got {}.",
                args.hops
            ));
        }
        let query = NeighborhoodQuery {
            memory_id: Some(args.memory_id),
            hops: Some(args.hops),
        };
        let (api, caller) = self.api(&ctx)?;
        let answer = api.neighborhood(&caller, &query).await.map_err(explain)?;
        Ok(Json(NeighborhoodOutput {
            center_id: answer.center_id.to_string(),
            hops: answer.hops as u64,
            count: answer.count as u64,
            memories: answer.memories,
            edges: answer.edges,
            truncated: answer.truncated,
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for MembrainTools {
    /// Checks the arguments against the tool's schema first, so a wrong call is answered with the
    /// parameter's name, then dispatches to the tool.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let started = std::time::Instant::now();
        let Some(tool) = self.tool_router.get(&request.name) else {
            record_tool_call("unknown".into(), "unknown_tool", &context, started);
            let names: Vec<String> = self
                .tool_router
                .list_all()
                .into_iter()
                .map(|t| t.name.to_string())
                .collect();
            return Err(McpError::invalid_params(
                format!(
                    "tool not found: {:?}; the tools are {}",
                    request.name,
                    names.join(", ")
                ),
                None,
            ));
        };
        // The router's own name (not the client's string): a label from a fixed set.
        let tool_name = tool_label(tool.name.clone());
        if let Some(problem) = argument_problem(&tool.input_schema, request.arguments.as_ref()) {
            record_tool_call(tool_name, "invalid_arguments", &context, started);
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "Invalid arguments for {}: {problem}. Check the tool's input schema.",
                request.name
            ))])
            .into());
        }
        let span = tool_call_span(&tool_name, &request, &context);
        let labels = (tool_name, tool_call_tenant(&context));
        let call = ToolCallContext::new(self, request, context);
        let answer = self.tool_router.call(call).instrument(span).await;
        let outcome = match &answer {
            Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => "error",
            Ok(_) => "ok",
            Err(_) => "failed",
        };
        count_tool_call(labels, outcome, started);
        answer
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("membrain", env!("CARGO_PKG_VERSION")))
        .with_instructions(match self.time_series {
            TimeSeriesAccess::Api => {
                "Membrain is the user's long-term memory. Search it (search_memories) before answering \
                 personal or project questions, and store new facts (add_memory). Call \
                 get_agent_instructions once for the full guide. Time-series data (measurements \
                 over time) is behind the ts_* tools: ts_list_tables, then ts_describe_table."
            }
            TimeSeriesAccess::Direct(_) => {
                "Membrain serves time-series data (measurements over time, with dimensions naming \
                 each series). Start with ts_list_tables and ts_describe_table; use ts_latest for \
                 current values, ts_range for history with bins and aggregates, ts_query for SQL."
            }
        })
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(WORKFLOW_GUIDE_URI, "workflow_guide")
                .with_mime_type("text/markdown")
                .with_description("How to work with memory during a conversation: search, synthesize, store."),
            Resource::new(STORAGE_GUIDELINES_URI, "storage_guidelines")
                .with_mime_type("text/markdown")
                .with_description("How to write and tag memories so they are found again; duplicates and changes."),
            Resource::new(AGENT_INSTRUCTIONS_URI, "agent_instructions")
                .with_mime_type("text/markdown")
                .with_description("The full agent guide, as get_agent_instructions returns it."),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let text = match request.uri.as_str() {
            WORKFLOW_GUIDE_URI => WORKFLOW_GUIDE,
            STORAGE_GUIDELINES_URI => STORAGE_GUIDELINES,
            AGENT_INSTRUCTIONS_URI => AGENT_INSTRUCTIONS,
            other => {
                return Err(McpError::resource_not_found(
                    format!(
                        "no resource {other:?}; the resources are {WORKFLOW_GUIDE_URI}, {STORAGE_GUIDELINES_URI} and {AGENT_INSTRUCTIONS_URI}"
                    ),
                    // SEP-2164: the error names the URI it could not find.
                    Some(serde_json::json!({ "uri": other })),
                ));
            }
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }
}

/// A tool's name as a metric label, without copying the names the router holds as constants.
fn tool_label(name: std::borrow::Cow<'static, str>) -> metrics::SharedString {
    match name {
        std::borrow::Cow::Borrowed(name) => metrics::SharedString::from(name),
        std::borrow::Cow::Owned(name) => metrics::SharedString::from(name),
    }
}

/// The caller's tenant, when the HTTP layer resolved it and per-tenant labels are on.
fn tool_call_tenant(context: &RequestContext<RoleServer>) -> Option<String> {
    if !membrain_telemetry::tenant_labels() {
        return None;
    }
    let parts = context.extensions.get::<http::request::Parts>()?;
    let CallerTenant(tenant) = parts.extensions.get::<CallerTenant>()?;
    Some(tenant.as_str().to_owned())
}

fn record_tool_call(
    tool: metrics::SharedString,
    outcome: &'static str,
    context: &RequestContext<RoleServer>,
    started: std::time::Instant,
) {
    count_tool_call((tool, tool_call_tenant(context)), outcome, started);
}

/// `membrain_mcp_tool_calls_total` (by tool and outcome) and the call's latency.
fn count_tool_call(
    (tool, tenant): (metrics::SharedString, Option<String>),
    outcome: &'static str,
    started: std::time::Instant,
) {
    let elapsed = started.elapsed().as_secs_f64();
    match tenant {
        Some(tenant) => {
            metrics::counter!("membrain_mcp_tool_calls_total",
                "tool" => tool.clone(), "outcome" => outcome, "tenant" => tenant.clone())
            .increment(1);
            metrics::histogram!("membrain_mcp_tool_call_duration_seconds",
                "tool" => tool, "tenant" => tenant)
            .record(elapsed);
        }
        None => {
            metrics::counter!("membrain_mcp_tool_calls_total",
                "tool" => tool.clone(), "outcome" => outcome)
            .increment(1);
            metrics::histogram!("membrain_mcp_tool_call_duration_seconds", "tool" => tool)
                .record(elapsed);
        }
    }
}

/// The tool call's span (trace-only). Its parent is the HTTP request's span, kept by the HTTP
/// layer (rmcp runs the call in a task of its own), or, when the client sent a W3C
/// `traceparent` in the call's `_meta`, the client's span: the call continues its trace.
fn tool_call_span(
    tool: &str,
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> tracing::Span {
    let request_span = context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<membrain_telemetry::RequestSpan>());
    let span = match request_span {
        Some(membrain_telemetry::RequestSpan(parent)) => {
            tracing::info_span!(target: "membrain_trace", parent: parent, "tool_call", tool)
        }
        None => tracing::info_span!(target: "membrain_trace", "tool_call", tool),
    };
    let meta = request
        .meta
        .as_deref()
        .filter(|meta| meta.get_traceparent().is_some());
    let meta = meta.or(Some(&*context.meta).filter(|meta| meta.get_traceparent().is_some()));
    if let Some(meta) = meta
        && let Some(traceparent) = meta.get_traceparent()
    {
        membrain_telemetry::continue_trace_from(&span, traceparent, meta.get_tracestate());
    }
    span
}
