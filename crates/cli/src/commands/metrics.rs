//! `--metrics-listen`: the Prometheus listener beside `serve`, `api` and `mcp`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use membrain_store::SqlStore;
use membrain_telemetry::MetricsServer;
use membrain_telemetry::metrics_server::Sampler;
use tokio_util::sync::CancellationToken;

use crate::cli::MetricsArgs;

/// Where `membrain serve` serves metrics unless told otherwise: Prometheus' conventional
/// exporter port, on loopback only.
pub const SERVE_DEFAULT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

/// Installs the recorder and binds the listener `args` ask for (`default` when they name none;
/// `off` turns it off). A default address that is taken (another `membrain serve`) only
/// warns: metrics are not worth refusing to start over. An address the operator named must
/// be free.
pub async fn bind(
    args: &MetricsArgs,
    default: Option<SocketAddr>,
) -> Result<Option<MetricsServer>> {
    let named = args
        .metrics_listen
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty());
    let address = match named {
        Some(text) if text.eq_ignore_ascii_case("off") => return Ok(None),
        Some(text) => text.parse::<SocketAddr>().with_context(|| {
            format!(
                "--metrics-listen / MEMBRAIN_METRICS_LISTEN {text:?} is not an address like 127.0.0.1:9464 (or \"off\")"
            )
        })?,
        None => match default {
            Some(address) => address,
            None => return Ok(None),
        },
    };
    let handle = membrain_telemetry::install_recorder(args.metrics_tenant_labels)
        .context("installing the metrics recorder")?;
    match MetricsServer::bind(address, handle).await {
        Ok(server) => Ok(Some(server)),
        Err(error) if named.is_none() => {
            tracing::warn!(%address, %error, "metrics not served: the address is taken (--metrics-listen chooses another)");
            Ok(None)
        }
        Err(error) => Err(error).with_context(|| format!("listening for metrics on {address}")),
    }
}

/// Samples the database pools before every scrape.
pub fn pool_sampler(store: Arc<SqlStore>) -> Sampler {
    Arc::new(move || {
        for pool in store.pool_usage() {
            let in_use = pool.size.saturating_sub(pool.idle);
            metrics::gauge!("membrain_db_pool_connections", "database" => "memories", "pool" => pool.pool, "state" => "in_use")
                .set(f64::from(in_use));
            metrics::gauge!("membrain_db_pool_connections", "database" => "memories", "pool" => pool.pool, "state" => "idle")
                .set(f64::from(pool.idle));
            metrics::gauge!("membrain_db_pool_max_connections", "database" => "memories", "pool" => pool.pool)
                .set(f64::from(pool.max));
        }
    })
}

/// Serves `server` (when there is one) until `shutdown`, in the background: a failing metrics
/// listener is logged, never stops the service.
pub fn spawn(server: Option<MetricsServer>, shutdown: &CancellationToken) {
    let Some(server) = server else {
        return;
    };
    match server.local_addr() {
        Ok(address) => tracing::info!(%address, "metrics listening at /metrics"),
        Err(error) => tracing::warn!(%error, "metrics listener has no address"),
    }
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        if let Err(error) = server.run_until_stopped(shutdown).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
}
