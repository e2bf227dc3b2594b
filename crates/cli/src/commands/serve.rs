//! `membrain serve`: the REST API and the MCP server in one process on loopback, embedded storage.

use anyhow::{Context, Result};
use membrain_api::{ApiServer, ApiSettings, Semantic};
use membrain_auth::ApiKey;
use membrain_mcp::{McpBackend, McpServer, McpSettings};
use membrain_memory::TenantId;
use membrain_store::MemoryStore;

use tokio_util::sync::CancellationToken;

use super::opened::with_opened;
use super::semantic::semantic_parts_until;
use super::servers::{DEFAULT_TENANT, check_configured_keys, key_sources, with_console};
use crate::cli::ServeArgs;
use crate::output::say;
use crate::settings::{Common, SemanticSettings, TimeSeriesSettings, configured_key, console};

pub async fn run(
    common: &Common,
    (api, mcp): (ApiSettings, McpSettings),
    semantic: &SemanticSettings,
    time_series: &TimeSeriesSettings,
    args: &ServeArgs,
    shutdown: CancellationToken,
) -> Result<()> {
    with_opened(async |opened| {
        let store = opened.store(common).await?;
        // Keys first: a single-user key that would remap another tenant's stops the start
        // before anything slow (the model) happens.
        let single_user_key = configured_key(args.tuning.api_key.as_deref())?;
        let keys = key_sources(store.clone(), single_user_key.as_ref(), &api).await?;
        check_configured_keys(store.as_ref(), &api).await?;
        let console = console(&args.console)?;
        let series = opened.series(time_series, &shutdown).await?;
        let Some((embedder, llm)) = semantic_parts_until(common, semantic, &shutdown).await? else {
            return Ok(());
        };
        let model_line = describe_models(embedder.model_id(), semantic);
        let new_key = match &single_user_key {
            Some(_) => None,
            None => first_start_key(store.as_ref()).await?,
        };
        let api_server = ApiServer::bind(
            &api,
            store.clone(),
            keys,
            Semantic::for_settings(embedder, llm, &api),
        )
        .await
        .with_context(|| {
            format!(
                "listening on {} (is another membrain running? use --api-port)",
                api.listen
            )
        })?
        .with_time_series(series);
        // The bridge calls the API's router in this process: no loopback socket, no HTTP parse.
        let bridge = McpBackend::InProcess(api_server.router());
        let console_on = console.is_some();
        let api_server = with_console(api_server, console);
        let mcp_server = McpServer::bind_with(mcp.clone(), bridge)
            .await
            .with_context(|| {
                format!(
                    "listening on {} (is another membrain running? use --mcp-port)",
                    mcp.listen
                )
            })?;
        super::servers::warm_up_oauth(&mcp).await;
        let metrics = super::metrics::bind(&args.metrics, Some(super::metrics::SERVE_DEFAULT))
            .await?
            .map(|server| server.with_sampler(super::metrics::pool_sampler(store.clone())));
        super::metrics::spawn(metrics, &shutdown);
        let mcp_url = format!("http://{}/mcp", mcp_server.local_addr()?);
        let api_url = format!("http://{}", api_server.local_addr()?);
        let console_url = console_on.then(|| format!("{api_url}/console"));

        print_banner(
            common,
            &mcp_url,
            &api_url,
            console_url.as_deref(),
            &model_line,
            &format!(
                "{} (demo data: MEMBRAIN_API_KEY=… membrain ts demo transit)",
                time_series.store.for_display()
            ),
            new_key.as_ref(),
            single_user_key.is_some(),
        );

        let (api_result, mcp_result) = tokio::join!(
            api_server.run_until_stopped(shutdown.clone()),
            mcp_server.run_until_stopped(shutdown.clone()),
        );
        api_result.context("serving the REST API")?;
        mcp_result.context("serving MCP")?;
        tracing::info!("stopped");
        Ok(())
    })
    .await
}

/// On the very first start (no keys at all), a key for the default tenant.
async fn first_start_key(store: &dyn MemoryStore) -> Result<Option<ApiKey>> {
    if !store.list_keys().await.context("listing keys")?.is_empty() {
        return Ok(None);
    }
    let key = ApiKey::generate();
    let tenant = TenantId::parse(DEFAULT_TENANT).context("the default tenant name")?;
    store
        .create_key(&tenant, &key.hash(), "created by membrain serve")
        .await
        .context("creating the first key")?;
    Ok(Some(key))
}

/// The banner's lines about models: the embedder's id, and the language model when there is one.
fn describe_models(model_id: &str, semantic: &SemanticSettings) -> String {
    match &semantic.llm {
        Some(llm) => format!(
            "{model_id}\n    LLM       {} at {}",
            llm.model,
            llm.endpoint.base_url()
        ),
        None => format!(
            "{model_id}\n    LLM       none (tags and descriptions from the text; --llm-url adds one)"
        ),
    }
}

/// What a person needs to connect a client, printed once to the terminal (not to the log).
#[allow(clippy::too_many_arguments)] // Each line of the banner, named at the one call.
fn print_banner(
    common: &Common,
    mcp_url: &str,
    api_url: &str,
    console_url: Option<&str>,
    model_line: &str,
    series_line: &str,
    new_key: Option<&ApiKey>,
    env_key: bool,
) {
    let key_text = match (new_key, env_key) {
        (Some(key), _) => key.expose_secret().to_owned(),
        (None, true) => "$MEMBRAIN_API_KEY".to_owned(),
        (None, false) => "<your key>".to_owned(),
    };
    say!();
    say!("  Membrain is running");
    say!("    MCP       {mcp_url}");
    say!("    REST API  {api_url}/api/v1");
    if let Some(console_url) = console_url {
        say!("    Console   {console_url} (sign in with the API key below)");
    }
    say!("    Data      {}", common.database_for_display());
    say!("    Series    {series_line}");
    say!("    Embedder  {model_line}");
    say!();
    match (new_key, env_key) {
        (Some(_), _) => {
            say!(
                "  Your API key for tenant \"{DEFAULT_TENANT}\" (shown once; only its hash is stored):"
            );
            say!();
            say!("    {key_text}");
        }
        (None, true) => say!("  Accepting MEMBRAIN_API_KEY for tenant \"{DEFAULT_TENANT}\"."),
        (None, false) => say!(
            "  Use a key you created before, or make one: membrain keys create --tenant {DEFAULT_TENANT}"
        ),
    }
    say!();
    say!("  Claude Code:");
    say!(
        "    claude mcp add --transport http membrain {mcp_url} --header \"X-API-Key: {key_text}\""
    );
    say!();
    say!("  Cursor (~/.cursor/mcp.json) and other HTTP clients:");
    say!(
        "    {{\"mcpServers\": {{\"membrain\": {{\"url\": \"{mcp_url}\", \"headers\": {{\"X-API-Key\": \"{key_text}\"}}}}}}}}"
    );
    say!();
    say!("  Claude Desktop (claude_desktop_config.json), through stdio:");
    say!(
        "    {{\"mcpServers\": {{\"membrain\": {{\"command\": \"membrain\", \"args\": [\"mcp\", \"--transport\", \"stdio\"], \
         \"env\": {{\"API_BASE_URL\": \"{api_url}\", \"MEMBRAIN_API_KEY\": \"{key_text}\"}}}}}}}}"
    );
    say!();
}
