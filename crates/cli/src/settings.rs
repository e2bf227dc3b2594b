//! Validated settings: command-line values (flags, then environment) over the config file over
//! built-in defaults. Everything after this module works with typed, complete settings.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use membrain_api::ApiSettings;
use membrain_auth::ApiKey;
use membrain_mcp::McpSettings;
use serde::Deserialize;

use crate::cli::{ApiArgs, ApiTuning, GlobalArgs, LogFormat, McpArgs, ServeArgs, Transport};

/// The config file, every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
    #[serde(default)]
    pub api: FileApi,
    #[serde(default)]
    pub mcp: FileMcp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApi {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub max_content_bytes: Option<usize>,
    pub max_body_bytes: Option<usize>,
    pub ingest_workers: Option<usize>,
    pub job_lease_secs: Option<u64>,
    pub key_cache_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMcp {
    pub transport: Option<Transport>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub api_base_url: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    pub max_body_bytes: Option<usize>,
    pub key_cache_secs: Option<u64>,
}

impl FileConfig {
    /// Reads `--config`, or the default file when it exists, or nothing.
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        let path = match explicit {
            Some(path) => path.to_owned(),
            None => match dirs::config_dir().map(|d| d.join("membrain").join("config.toml")) {
                Some(path) if path.exists() => path,
                _ => return Ok(Self::default()),
            },
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing the config file {}", path.display()))
    }
}

/// Settings every command shares.
#[derive(Debug)]
pub struct Common {
    pub data_dir: PathBuf,
    /// The database to open; the embedded SQLite file when none was given.
    pub database_url: String,
    pub log_level: String,
    pub log_format: Option<LogFormat>,
}

impl Common {
    pub fn resolve(global: &GlobalArgs, file: &FileConfig) -> Result<Self> {
        let data_dir = match global.data_dir.clone().or_else(|| file.data_dir.clone()) {
            Some(dir) => dir,
            None => dirs::data_dir()
                .context("no data directory could be found: set MEMBRAIN_DATA_DIR or --data-dir")?
                .join("membrain"),
        };
        let database_url = global
            .database_url
            .clone()
            .or_else(|| file.database_url.clone())
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("membrain.db").display()));
        Ok(Self {
            data_dir,
            database_url,
            log_level: global
                .log_level
                .clone()
                .or_else(|| file.log_level.clone())
                .unwrap_or_else(|| "info".into()),
            log_format: global.log_format.or(file.log_format),
        })
    }

    /// Makes the data directory (owner-only) when the embedded database is used.
    pub fn prepare_data_dir(&self) -> Result<()> {
        if !self.database_url.starts_with("sqlite:") {
            return Ok(());
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating the data directory {}", self.data_dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ =
                std::fs::set_permissions(&self.data_dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }

    /// The database URL with any password hidden, for messages.
    pub fn database_for_display(&self) -> String {
        match self.database_url.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('@') {
                Some((credentials, host)) => {
                    let user = credentials.split(':').next().unwrap_or_default();
                    format!("{scheme}://{user}:***@{host}")
                }
                None => self.database_url.clone(),
            },
            None => self.database_url.clone(),
        }
    }
}

fn socket(host: &str, port: u16, what: &str) -> Result<SocketAddr> {
    let ip: IpAddr = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .with_context(|| {
            format!("{what} host {host:?} is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)")
        })?;
    Ok(SocketAddr::new(ip, port))
}

fn secs(value: u64) -> Duration {
    Duration::from_secs(value)
}

/// The key from MEMBRAIN_API_KEY / --api-key, checked for shape.
pub fn configured_key(raw: Option<&str>) -> Result<Option<ApiKey>> {
    let Some(raw) = raw else { return Ok(None) };
    match ApiKey::new(raw) {
        Some(key) if key.expose_secret().len() >= 16 => Ok(Some(key)),
        Some(_) => bail!(
            "MEMBRAIN_API_KEY is too short: use at least 16 characters (or `membrain keys create`)"
        ),
        None => Ok(None),
    }
}

fn api_settings(listen: SocketAddr, tuning: &ApiTuning, file: &FileApi) -> Result<ApiSettings> {
    let defaults = ApiSettings::default();
    let mut limits = defaults.limits.clone();
    limits.max_content_bytes = tuning
        .max_content_bytes
        .or(file.max_content_bytes)
        .unwrap_or(limits.max_content_bytes);
    let max_body_bytes = tuning
        .max_body_bytes
        .or(file.max_body_bytes)
        .unwrap_or(defaults.max_body_bytes);
    if limits.max_content_bytes == 0 || max_body_bytes < 1024 {
        bail!("max_content_bytes must be positive and max_body_bytes at least 1024");
    }
    Ok(ApiSettings {
        listen,
        limits,
        max_body_bytes,
        ingest_workers: tuning
            .ingest_workers
            .or(file.ingest_workers)
            .unwrap_or(defaults.ingest_workers),
        job_lease: tuning
            .job_lease_secs
            .or(file.job_lease_secs)
            .map(secs)
            .unwrap_or(defaults.job_lease),
        key_cache_ttl: tuning
            .key_cache_secs
            .or(file.key_cache_secs)
            .map(secs)
            .unwrap_or(defaults.key_cache_ttl),
        ..defaults
    })
}

pub fn api(args: &ApiArgs, file: &FileConfig) -> Result<ApiSettings> {
    let host = args
        .host
        .clone()
        .or_else(|| file.api.host.clone())
        .unwrap_or_else(|| "0.0.0.0".into());
    let port = args.port.or(file.api.port).unwrap_or(8000);
    api_settings(socket(&host, port, "API")?, &args.tuning, &file.api)
}

/// `serve`: both services on loopback only.
pub fn serve(args: &ServeArgs, file: &FileConfig) -> Result<(ApiSettings, McpSettings)> {
    let api_port = args.api_port.or(file.api.port).unwrap_or(8000);
    let mcp_port = args.mcp_port.or(file.mcp.port).unwrap_or(8100);
    let api = api_settings(
        socket("127.0.0.1", api_port, "API")?,
        &args.tuning,
        &file.api,
    )?;
    let mcp = McpSettings {
        listen: socket("127.0.0.1", mcp_port, "MCP")?,
        key_cache_ttl: api.key_cache_ttl,
        ..McpSettings::default()
    };
    Ok((api, mcp))
}

pub struct McpCommand {
    pub transport: Transport,
    pub settings: McpSettings,
    pub api_key: Option<ApiKey>,
}

pub fn mcp(args: &McpArgs, file: &FileConfig) -> Result<McpCommand> {
    let defaults = McpSettings::default();
    let host = args
        .host
        .clone()
        .or_else(|| file.mcp.host.clone())
        .unwrap_or_else(|| "0.0.0.0".into());
    let port = args.port.or(file.mcp.port).unwrap_or(8100);
    let api_base_url = args
        .api_base_url
        .clone()
        .or_else(|| file.mcp.api_base_url.clone())
        .unwrap_or(defaults.api_base_url.clone());
    let clean = |list: Vec<String>| -> Vec<String> {
        list.into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let settings = McpSettings {
        listen: socket(&host, port, "MCP")?,
        api_base_url,
        allowed_hosts: args
            .allowed_hosts
            .clone()
            .or_else(|| file.mcp.allowed_hosts.clone())
            .map(clean)
            .unwrap_or(defaults.allowed_hosts.clone()),
        allowed_origins: args
            .allowed_origins
            .clone()
            .or_else(|| file.mcp.allowed_origins.clone())
            .map(clean)
            .unwrap_or(defaults.allowed_origins.clone()),
        max_body_bytes: args
            .max_body_bytes
            .or(file.mcp.max_body_bytes)
            .unwrap_or(defaults.max_body_bytes),
        key_cache_ttl: args
            .key_cache_secs
            .or(file.mcp.key_cache_secs)
            .map(secs)
            .unwrap_or(defaults.key_cache_ttl),
        ..defaults
    };
    Ok(McpCommand {
        transport: args
            .transport
            .or(file.mcp.transport)
            .unwrap_or(Transport::Http),
        settings,
        api_key: configured_key(args.api_key.as_deref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_fill_in_what_flags_leave_out() {
        let file: FileConfig = toml::from_str(
            "database_url = \"postgres://u:secret@db/m\"\n[api]\nport = 9000\nmax_content_bytes = 100\n",
        )
        .unwrap();
        let args = ApiArgs {
            host: Some("127.0.0.1".into()),
            port: None,
            tuning: ApiTuning::default(),
        };
        let settings = api(&args, &file).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(settings.limits.max_content_bytes, 100);
        let global = GlobalArgs {
            config: None,
            data_dir: Some("/tmp/x".into()),
            database_url: None,
            log_level: None,
            log_format: None,
        };
        let common = Common::resolve(&global, &file).unwrap();
        assert_eq!(common.database_for_display(), "postgres://u:***@db/m");
    }

    #[test]
    fn unknown_config_keys_and_bad_hosts_are_errors() {
        assert!(toml::from_str::<FileConfig>("dta_dir = \"x\"").is_err());
        let args = ApiArgs {
            host: Some("example.com".into()),
            port: None,
            tuning: ApiTuning::default(),
        };
        let err = api(&args, &FileConfig::default()).unwrap_err();
        assert!(err.to_string().contains("not an IP address"), "{err}");
    }

    #[test]
    fn short_configured_keys_are_refused() {
        assert!(configured_key(Some("short")).is_err());
        assert!(configured_key(Some("  ")).unwrap().is_none());
        assert!(
            configured_key(Some("mb_0123456789abcdef"))
                .unwrap()
                .is_some()
        );
    }
}
