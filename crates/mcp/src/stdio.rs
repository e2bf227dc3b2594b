//! The MCP server over stdio, for clients that spawn a process. The process belongs to one user,
//! so the key comes from its configuration (`MEMBRAIN_API_KEY`) rather than from headers.

use std::sync::Arc;
use std::time::Duration;

use membrain_auth::ApiKey;
use rmcp::ServiceExt;

use crate::api_client::MemoryApiClient;
use crate::tools::MembrainTools;

/// Serves MCP on stdin/stdout until the client closes stdin. Logs must go to stderr.
pub async fn serve_stdio(
    api_base_url: &str,
    key: ApiKey,
    api_timeout: Duration,
) -> Result<(), String> {
    let api = MemoryApiClient::new(api_base_url, api_timeout)?;
    let running = MembrainTools::new(Arc::new(api), Some(key))
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("the MCP client did not start a session: {e}"))?;
    running
        .waiting()
        .await
        .map_err(|e| format!("the MCP session ended abnormally: {e}"))?;
    Ok(())
}
