//! `membrain api` and `membrain mcp`: one service each, as ECS runs them.

use std::sync::Arc;

use anyhow::{Context, Result};
use membrain_api::{ApiServer, ApiSettings, DatabaseKeys, Semantic};
use membrain_auth::{
    ApiKey, CachedKeys, EnvKeyMap, FileKeyMap, KeyResolver, RefreshSettings, RefreshingKeys,
    ResolverChain, StaticKey,
};
use membrain_console::ConsoleSettings;
use membrain_memory::TenantId;
use membrain_store::MemoryStore;
use tokio_util::sync::CancellationToken;

use super::opened::with_opened;
use super::semantic::semantic_parts_until;
use crate::cli::{MetricsArgs, Transport};
use crate::settings::{
    Common, KEYS_MAP_VARIABLE, KeySources, McpCommand, SemanticSettings, TimeSeriesSettings,
};
use membrain_mcp::McpBackend;

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

/// The key sources of the API: the database, plus the single-user key when configured. The
/// database decides first; a single-user key the database gives to another tenant, or revoked,
/// stops the start with a message saying what to do.
pub async fn key_sources(
    store: Arc<dyn MemoryStore>,
    single_user_key: Option<&ApiKey>,
    settings: &ApiSettings,
) -> Result<Arc<dyn KeyResolver>> {
    let mut keys = DatabaseKeys::new(store.clone());
    if let Some(key) = single_user_key {
        let tenant = TenantId::parse(DEFAULT_TENANT).context("the default tenant name")?;
        DatabaseKeys::check(store.as_ref(), key, &tenant).await?;
        keys = keys.with_single_user_key(key, tenant);
    }
    Ok(Arc::new(CachedKeys::new(
        Arc::new(keys),
        settings.key_cache_ttl,
    )))
}

/// With OAuth on, fetches the issuer's keys at start, so a wrong issuer or an unreachable one
/// shows in the log before the first connector does (requests still work once it is fixed).
pub async fn warm_up_oauth(settings: &membrain_mcp::McpSettings) {
    let Some(oauth) = &settings.oauth else {
        return;
    };
    let issuer = &oauth.validator.settings().issuer;
    match oauth.validator.warm_up().await {
        Ok(()) => tracing::info!(%issuer, "OAuth access tokens accepted beside API keys"),
        Err(error) => {
            tracing::warn!(%issuer, %error, "OAuth is on but the issuer's keys cannot be fetched yet; tokens are refused with 503 until they can")
        }
    }
}

/// Refuses an operator or service key that the database holds as a tenant's key (the operator
/// key would sign in to the console as that tenant, and a tenant's holder would administer keys
/// or act for every tenant), and one key configured as both.
pub async fn check_configured_keys(store: &dyn MemoryStore, settings: &ApiSettings) -> Result<()> {
    if let (Some(operator), Some(service)) = (&settings.operator_key, &settings.service_key)
        && operator.hash() == service.hash()
    {
        anyhow::bail!(
            "MEMBRAIN_OPERATOR_KEY and MEMBRAIN_SERVICE_KEY are the same key: give each its own"
        );
    }
    for (variable, key) in [
        ("MEMBRAIN_OPERATOR_KEY", &settings.operator_key),
        ("MEMBRAIN_SERVICE_KEY", &settings.service_key),
    ] {
        let Some(key) = key else {
            continue;
        };
        if store
            .key_owner(&key.hash())
            .await
            .with_context(|| format!("checking {variable} against the database's keys"))?
            .is_some()
        {
            anyhow::bail!(
                "{variable} holds a tenant's API key (see `membrain keys list`): it must be a key \
                 of its own, for example `openssl rand -hex 24`"
            );
        }
    }
    Ok(())
}

/// Serves the web console beside the API when it is on: its pages call this API's router in
/// process with the signed-in key.
pub fn with_console(server: ApiServer, console: Option<ConsoleSettings>) -> ApiServer {
    match console {
        Some(settings) => {
            let routes = membrain_console::routes(settings, server.router());
            server.with_routes(routes)
        }
        None => server,
    }
}

#[allow(clippy::too_many_arguments)] // One per settings area, each passed once from main.
pub async fn run_api(
    common: &Common,
    settings: ApiSettings,
    semantic: &SemanticSettings,
    time_series: &TimeSeriesSettings,
    key: Option<ApiKey>,
    metrics: &MetricsArgs,
    console: Option<ConsoleSettings>,
    shutdown: CancellationToken,
) -> Result<()> {
    with_opened(async |opened| {
        let store = opened.store(common).await?;
        // Keys first: a single-user key that would remap another tenant's stops the start
        // before anything slow (the model) happens.
        let keys = key_sources(store.clone(), key.as_ref(), &settings).await?;
        check_configured_keys(store.as_ref(), &settings).await?;
        let series = opened.series(time_series, &shutdown).await?;
        let Some((embedder, llm)) = semantic_parts_until(common, semantic, &shutdown).await? else {
            return Ok(());
        };
        let server = ApiServer::bind(
            &settings,
            store.clone(),
            keys,
            Semantic::for_settings(embedder, llm, &settings),
        )
        .await
        .with_context(|| format!("listening on {}", settings.listen))?
        .with_time_series(series);
        let metrics = super::metrics::bind(metrics, None)
            .await?
            .map(|server| server.with_sampler(super::metrics::pool_sampler(store.clone())));
        super::metrics::spawn(metrics, &shutdown);
        let console_on = console.is_some();
        let server = with_console(server, console);
        tracing::info!(address = %server.local_addr()?, "Memory REST API listening");
        if console_on {
            tracing::info!(
                url = %format!("http://{}/console", server.local_addr()?),
                "web console (sign in with an API key; sessions are kept in this process)"
            );
        }
        server
            .run_until_stopped(shutdown.clone())
            .await
            .context("serving the REST API")?;
        tracing::info!("stopped");
        Ok(())
    })
    .await
}

pub async fn run_mcp(
    command: McpCommand,
    metrics: &MetricsArgs,
    shutdown: CancellationToken,
) -> Result<()> {
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
        Transport::Http => with_opened(async |opened| {
            let backend = match &command.gateway {
                None => McpBackend::Api,
                Some(gateway) => McpBackend::Direct {
                    keys: gateway_keys(&gateway.keys).await?,
                    time_series: opened.series(&gateway.time_series, &shutdown).await?,
                },
            };
            let server = membrain_mcp::McpServer::bind_with(settings.clone(), backend)
                .await
                .with_context(|| format!("listening on {}", settings.listen))?;
            warm_up_oauth(&settings).await;
            super::metrics::spawn(super::metrics::bind(metrics, None).await?, &shutdown);
            match &command.gateway {
                None => {
                    tracing::info!(address = %server.local_addr()?, api = %settings.api_base_url, "MCP server listening at /mcp")
                }
                Some(gateway) => {
                    tracing::info!(address = %server.local_addr()?, store = %gateway.time_series.store.for_display(), "MCP server (gateway profile: time series) listening at /mcp")
                }
            }
            server
                .run_until_stopped(shutdown.clone())
                .await
                .context("serving MCP")?;
            tracing::info!("stopped");
            Ok(())
        })
        .await,
    }
}

/// The gateway profile's key sources, tried in order: the map in the environment, the file,
/// the Secrets Manager secret (each map re-read every `refresh`), and last the single key — so
/// a key a map gives to a tenant keeps that tenant even when it is also exported as
/// MEMBRAIN_API_KEY.
async fn gateway_keys(sources: &KeySources) -> Result<Arc<dyn KeyResolver>> {
    let refresh = RefreshSettings {
        max_staleness: sources.max_staleness,
        ..RefreshSettings::every(sources.refresh)
    };
    let mut chain = ResolverChain::new();
    if sources.environment_map {
        let keys = RefreshingKeys::new(Arc::new(EnvKeyMap::new(KEYS_MAP_VARIABLE)), refresh)
            .await
            .with_context(|| format!("reading API keys from {KEYS_MAP_VARIABLE}"))?;
        chain = chain.with(Arc::new(keys));
    }
    if let Some(path) = &sources.file {
        let keys = RefreshingKeys::new(Arc::new(FileKeyMap::new(path.clone())), refresh)
            .await
            .with_context(|| format!("reading API keys from {}", path.display()))?;
        chain = chain.with(Arc::new(keys));
    }
    if let Some(secret) = &sources.secret {
        let source = membrain_secrets::SecretsManagerKeyMap::connect(
            secret.clone(),
            &aws_from_environment(),
            None,
        )
        .await;
        let keys = RefreshingKeys::new(Arc::new(source), refresh)
            .await
            .with_context(|| format!("reading API keys from the secret {secret}"))?;
        chain = chain.with(Arc::new(keys));
    }
    if let Some(key) = &sources.single_key {
        let tenant = TenantId::parse(DEFAULT_TENANT).context("the default tenant name")?;
        chain = chain.with(Arc::new(StaticKey::new(key, tenant)));
    }
    Ok(Arc::new(chain))
}

/// The region and endpoint AWS calls go to, as the SDKs read them from the environment
/// (`AWS_REGION`, `AWS_ENDPOINT_URL_SECRETS_MANAGER` / `AWS_ENDPOINT_URL`).
fn aws_from_environment() -> membrain_aws::AwsEndpoint {
    let variable = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    membrain_aws::AwsEndpoint::new(
        variable("AWS_REGION")
            .or_else(|| variable("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned()),
        variable("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| variable("AWS_ENDPOINT_URL")),
    )
}

/// `membrain authorizer`: the API Gateway Lambda authorizer, until Lambda stops the process.
pub async fn run_authorizer() -> Result<()> {
    let settings = membrain_authorizer::AuthorizerSettings::from_env()?;
    membrain_authorizer::run(settings).await?;
    Ok(())
}
