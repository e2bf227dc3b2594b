//! The PostgreSQL role Membrain's services sign in as, made by an administrator's connection
//! (`membrain database setup`): it may log in, use the database and create its own tables in
//! the `public` schema (the services migrate on start), and nothing more — no superuser, no
//! roles, no databases. A deployment then keeps its master credentials for this step alone (RDS
//! rotates them), and a leaked service password reaches only Membrain's own tables.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2_011::{Digest, Sha256};
use sqlx::{Connection, PgConnection, Row};

/// PostgreSQL's own iteration count for SCRAM-SHA-256 verifiers (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;

/// What [`ensure_app_role`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppRoleOutcome {
    Created,
    /// The role existed: its password and privileges were set again (a changed password takes
    /// effect for new connections).
    Updated,
}

/// Why the role could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AppRoleError {
    #[error(
        "{0:?} is not a usable role name: use 1-63 lowercase letters, digits and underscores, starting with a letter"
    )]
    BadName(String),
    #[error(
        "the application password must be 16 to 1024 printable ASCII characters (give it in MEMBRAIN_APP_DATABASE_PASSWORD)"
    )]
    BadPassword,
    #[error("the application role must not be the administrator that makes it ({0})")]
    SameAsAdmin(String),
    #[error("{step}: {source}")]
    Failed {
        step: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

fn failed(step: &'static str) -> impl FnOnce(sqlx::Error) -> AppRoleError {
    move |source| AppRoleError::Failed { step, source }
}

/// A connection as the administrator, for [`ensure_app_role`].
pub async fn connect_admin(url: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect(url).await
}

/// Whether `name` is a role name that needs no quoting anywhere (and so cannot surprise a
/// reader of `pg_roles` or a log line).
pub fn is_plain_role_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Makes (or updates) `role` with `password` in the database `admin` is connected to: LOGIN,
/// NOSUPERUSER, NOCREATEDB, NOCREATEROLE, NOINHERIT, CONNECT and TEMPORARY on the database,
/// USAGE and CREATE on its `public` schema. Safe to run again and from several tasks at once.
pub async fn ensure_app_role(
    admin: &mut PgConnection,
    role: &str,
    password: &str,
) -> Result<AppRoleOutcome, AppRoleError> {
    if !is_plain_role_name(role) {
        return Err(AppRoleError::BadName(role.to_owned()));
    }
    // Printable ASCII: what a SCRAM verifier computed here matches without SASLprep.
    if !(16..=1024).contains(&password.len()) || !password.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppRoleError::BadPassword);
    }
    let admin_name: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *admin)
        .await
        .map_err(failed("read the administrator's name"))?;
    if admin_name == role {
        return Err(AppRoleError::SameAsAdmin(admin_name));
    }
    // The statements are built by the server's own quoting (format's %I and %L), so nothing is
    // spliced into SQL here; and the password goes as a SCRAM verifier made here, so the text
    // of the statement, which the server logs when it fails, never holds the password itself.
    let mut tx = admin.begin().await.map_err(failed("begin"))?;
    // Two tasks starting at once would both try to create the role: one waits for the other.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('membrain.app_role'))")
        .execute(&mut *tx)
        .await
        .map_err(failed("take the setup lock"))?;
    let exists = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(role)
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed("look for the role"))?
        .is_some();
    let verb = if exists { "ALTER" } else { "CREATE" };
    let statement: String = sqlx::query(
        "SELECT format('%s ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT \
         NOREPLICATION PASSWORD %L', $1::text, $2::text, $3::text)",
    )
    .bind(verb)
    .bind(role)
    .bind(scram_verifier(password, &rand::random::<[u8; 16]>()))
    .fetch_one(&mut *tx)
    .await
    .map_err(failed("quote the role statement"))?
    .try_get(0)
    .map_err(failed("quote the role statement"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(&mut *tx)
        .await
        .map_err(failed(if exists {
            "update the role"
        } else {
            "create the role"
        }))?;
    let grants: Vec<String> = sqlx::query(
        "SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), $1::text) \
         UNION ALL SELECT format('GRANT USAGE, CREATE ON SCHEMA public TO %I', $1::text)",
    )
    .bind(role)
    .fetch_all(&mut *tx)
    .await
    .map_err(failed("quote the grants"))?
    .iter()
    .map(|row| row.try_get(0))
    .collect::<Result<_, _>>()
    .map_err(failed("quote the grants"))?;
    for grant in grants {
        sqlx::raw_sql(sqlx::AssertSqlSafe(grant))
            .execute(&mut *tx)
            .await
            .map_err(failed("grant the role its database"))?;
    }
    tx.commit().await.map_err(failed("commit"))?;
    Ok(if exists {
        AppRoleOutcome::Updated
    } else {
        AppRoleOutcome::Created
    })
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802, RFC 7677): given as a
/// role's PASSWORD, the server keeps it as is and never sees the password.
pub fn scram_verifier(password: &str, salt: &[u8]) -> String {
    let hmac = |key: &[u8], parts: &[&[u8]]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes()
    };
    // PBKDF2-HMAC-SHA-256 with one output block (RFC 8018, 5.2).
    let mut block = hmac(password.as_bytes(), &[salt, &1u32.to_be_bytes()]);
    let mut salted = block;
    for _ in 1..SCRAM_ITERATIONS {
        block = hmac(password.as_bytes(), &[&block]);
        for (out, byte) in salted.iter_mut().zip(block.iter()) {
            *out ^= byte;
        }
    }
    let client_key = hmac(&salted, &[b"Client Key"]);
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, &[b"Server Key"]);
    format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scram_verifier_matches_the_rfc_7677_example() {
        // RFC 7677's example password and salt; the keys were computed independently with
        // Python's hashlib.pbkdf2_hmac and hmac (StoredKey = SHA-256(HMAC(salted, "Client
        // Key")), ServerKey = HMAC(salted, "Server Key")).
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = scram_verifier("pencil", &salt);
        assert_eq!(
            verifier,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn role_names_are_plain_identifiers() {
        for good in ["membrain_app", "a", "app2", &"a".repeat(63)] {
            assert!(is_plain_role_name(good), "{good}");
        }
        for bad in [
            "",
            "2app",
            "App",
            "app-role",
            "app role",
            "app\"; drop",
            "_app",
            &"a".repeat(64),
        ] {
            assert!(!is_plain_role_name(bad), "{bad}");
        }
    }
}
