//! `membrain keys create | list | revoke`.

use anyhow::{Context, Result};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use membrain_auth::ApiKey;
use membrain_memory::TenantId;
use membrain_store::{MemoryStore, StoreError};
use serde_json::json;

use crate::cli::KeysCommand;
use crate::output::say;
use crate::settings::Common;

pub async fn run(common: &Common, command: KeysCommand) -> Result<()> {
    let store = super::open_store(common).await?;
    match command {
        KeysCommand::Create {
            tenant,
            label,
            json,
        } => {
            let tenant = TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let key = ApiKey::generate();
            let record = store
                .create_key(&tenant, &key.hash(), label.trim())
                .await
                .context("creating the key")?;
            if json {
                say!(
                    "{}",
                    json!({ "tenant": record.tenant, "key": key.expose_secret(), "id": record.id, "label": record.label })
                );
            } else {
                say!(
                    "Created key {} for tenant {}. It is shown only once:\n",
                    record.id,
                    record.tenant
                );
                say!("  {}\n", key.expose_secret());
                say!("Send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`.");
            }
        }
        KeysCommand::List { json } => {
            let keys = store.list_keys().await.context("listing keys")?;
            if json {
                say!("{}", serde_json::to_string_pretty(&keys)?);
            } else if keys.is_empty() {
                say!("No keys yet. Create one with: membrain keys create --tenant NAME");
            } else {
                let mut table = Table::new();
                table
                    .load_preset(UTF8_BORDERS_ONLY)
                    .set_header(["ID", "TENANT", "LABEL", "CREATED", "STATUS"]);
                for key in keys {
                    let status = match key.revoked_at {
                        Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                        None => "active".to_owned(),
                    };
                    table.add_row([
                        key.id,
                        key.tenant.to_string(),
                        key.label,
                        key.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        status,
                    ]);
                }
                say!("{table}");
            }
        }
        KeysCommand::Revoke { id, json } => {
            let record = match store.revoke_key(id.trim()).await {
                Ok(record) => record,
                Err(StoreError::NotFound { .. }) => {
                    anyhow::bail!("no key with id {id:?}; `membrain keys list` shows the ids")
                }
                Err(e) => return Err(e).context("revoking the key"),
            };
            if json {
                say!("{}", serde_json::to_string(&record)?);
            } else {
                say!(
                    "Revoked key {} of tenant {}. Running servers stop accepting it within their key cache time (5 s by default).",
                    record.id,
                    record.tenant
                );
            }
        }
    }
    store.close().await;
    Ok(())
}
