//! `membrain api` and `membrain mcp`: one service each, as ECS runs them.

use std::sync::Arc;

use anyhow::{Context, Result};
use membrain_api::{ApiServer, ApiSettings, DatabaseKeys, Semantic};
use membrain_auth::{ApiKey, CachedKeys, KeyResolver, ResolverChain, StaticKey};
use membrain_memory::TenantId;
use membrain_store::MemoryStore;
use tokio_util::sync::CancellationToken;

use super::semantic::semantic_parts_until;
use crate::cli::Transport;
use crate::settings::{Common, McpCommand, SemanticSettings};

/// The tenant of the single-user key (MEMBRAIN_API_KEY).
pub const DEFAULT_TENANT: &str = "default";

/// Cancels the returned token on Ctrl-C or SIGTERM (how ECS stops a task). Called first thing in
/// `main`, so a signal that arrives while a server is still starting is not lost.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("interrupted; shutting down"),
            _ = terminate => tracing::info!("SIGTERM received; shutting down"),
        }
        trigger.cancel();
    });
    token
}

/// The key sources of the API: the database, plus the single-user key when configured.
pub fn key_sources(
    store: Arc<dyn MemoryStore>,
    single_user_key: Option<&ApiKey>,
    settings: &ApiSettings,
) -> Result<Arc<dyn KeyResolver>> {
    let database: Arc<dyn KeyResolver> = Arc::new(CachedKeys::new(
        Arc::new(DatabaseKeys::new(store)),
        settings.key_cache_ttl,
    ));
    let mut chain = ResolverChain::new();
    if let Some(key) = single_user_key {
        let tenant = TenantId::parse(DEFAULT_TENANT).context("the default tenant name")?;
        chain = chain.with(Arc::new(StaticKey::new(key, tenant)));
    }
    Ok(Arc::new(chain.with(database)))
}

pub async fn run_api(
    common: &Common,
    settings: ApiSettings,
    semantic: &SemanticSettings,
    key: Option<ApiKey>,
    shutdown: CancellationToken,
) -> Result<()> {
    let store = super::open_store(common).await?;
    let Some((embedder, llm)) = semantic_parts_until(common, semantic, &shutdown).await? else {
        store.close().await;
        return Ok(());
    };
    let keys = key_sources(store.clone(), key.as_ref(), &settings)?;
    let server = ApiServer::bind(&settings, store.clone(), keys, Semantic::new(embedder, llm))
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    tracing::info!(address = %server.local_addr()?, "Memory REST API listening");
    server
        .run_until_stopped(shutdown)
        .await
        .context("serving the REST API")?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

pub async fn run_mcp(command: McpCommand, shutdown: CancellationToken) -> Result<()> {
    let settings = command.settings;
    match command.transport {
        Transport::Stdio => {
            let key = command.api_key.context(
                "the stdio transport needs a key: set MEMBRAIN_API_KEY (or --api-key) to a key from `membrain keys create`",
            )?;
            tracing::info!(api = %settings.api_base_url, "MCP over stdio");
            membrain_mcp::serve_stdio(&settings.api_base_url, key, settings.api_timeout)
                .await
                .map_err(anyhow::Error::msg)
        }
        Transport::Http => {
            let server = membrain_mcp::McpServer::bind(settings.clone())
                .await
                .with_context(|| format!("listening on {}", settings.listen))?;
            tracing::info!(address = %server.local_addr()?, api = %settings.api_base_url, "MCP server listening at /mcp");
            server
                .run_until_stopped(shutdown)
                .await
                .context("serving MCP")?;
            tracing::info!("stopped");
            Ok(())
        }
    }
}
