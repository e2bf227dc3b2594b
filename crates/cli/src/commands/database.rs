//! `membrain database setup`: the services' own PostgreSQL role, made with administrator
//! credentials (see `membrain_sql::app_role`).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use membrain_sql::app_role::{AppRoleOutcome, connect_admin, ensure_app_role};
use membrain_sql::{Backend, redact_in, redact_url};

use super::{DATABASE_WAIT, retry_while_unavailable};
use crate::cli::DatabaseCommand;

/// Where the services' password comes from: the environment only, never a flag (a flag would
/// show in `ps` and in the task definition).
const APP_PASSWORD_VARIABLE: &str = "MEMBRAIN_APP_DATABASE_PASSWORD";

pub async fn run(command: DatabaseCommand) -> Result<()> {
    match command {
        DatabaseCommand::Setup {
            admin_url,
            app_role,
            json,
        } => {
            let password = std::env::var(APP_PASSWORD_VARIABLE).map_err(|_| {
                anyhow::anyhow!(
                    "{APP_PASSWORD_VARIABLE} is not set: it holds the password the services \
                     will sign in with (the rendered stacks take it from the application \
                     database secret)"
                )
            })?;
            let outcome = setup(&admin_url, &app_role, &password, DATABASE_WAIT).await?;
            let outcome = match outcome {
                AppRoleOutcome::Created => "created",
                AppRoleOutcome::Updated => "updated",
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "role": app_role, "outcome": outcome })
                );
            } else {
                println!(
                    "{outcome} role {app_role} in {}: the services may now sign in with it",
                    redact_url(&admin_url)
                );
            }
            Ok(())
        }
    }
}

/// Connects as the administrator (waiting up to `wait` for a database that is still starting)
/// and makes the role.
async fn setup(
    admin_url: &str,
    role: &str,
    password: &str,
    wait: Duration,
) -> Result<AppRoleOutcome> {
    if Backend::from_url(admin_url) != Some(Backend::Postgres) {
        bail!(
            "--admin-url must be a postgres:// URL (SQLite has no roles: `membrain serve` needs \
             no setup)"
        );
    }
    let mut connection = retry_while_unavailable(
        admin_url,
        wait,
        || connect_admin(admin_url),
        membrain_sql::is_unavailable,
    )
    .await
    .map_err(|error| anyhow::anyhow!(redact_in(&error.to_string(), admin_url)))
    .with_context(|| format!("cannot connect to {}", redact_url(admin_url)))?;
    ensure_app_role(&mut connection, role, password)
        .await
        .map_err(|error| anyhow::anyhow!(redact_in(&error.to_string(), admin_url)))
        .with_context(|| format!("cannot set up role {role}"))
}
