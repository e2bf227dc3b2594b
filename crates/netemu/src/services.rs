//! Real processes in their tiers for the `alb` chain: nginx as each load balancer, `membrain
//! mcp`, `membrain api`, and a PostgreSQL of the run's own in the database tier; then one MCP
//! call from the internet through all of them.
//!
//! A tier gets its real process when the topology has the `alb` profile's tier names
//! (`mcp-alb`, `mcp-ecs`, `api-alb`, `api-ecs`, `database`); every planned port no process
//! serves still gets a plain listener. Each process runs in its tier's namespace as a child of
//! the emulation, writes its log under the run directory, and is stopped with the namespace.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::EmulateError;
use crate::plan::{EmulationPlan, TierPlan};
use crate::system::{self, in_namespace};

/// What the real processes need from the caller.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The `membrain` executable run as `membrain api` and `membrain mcp`.
    pub membrain: PathBuf,
    /// The key the API accepts (tenant `default`) and the MCP call sends.
    pub api_key: String,
    /// A data directory whose `models/` already holds the embedding model (linked, not copied).
    pub model_data_dir: Option<PathBuf>,
}

/// The `alb` chain's tiers, in start order (each needs the next one up).
pub const ALB_CHAIN: [&str; 5] = ["database", "api-ecs", "api-alb", "mcp-ecs", "mcp-alb"];

/// Whether the plan is the `alb` chain (real processes apply).
pub fn is_alb_chain(plan: &EmulationPlan) -> bool {
    ALB_CHAIN
        .iter()
        .all(|name| plan.tier(name).is_some_and(|t| !t.ports.is_empty()))
}

/// What real services need installed; each missing piece says how to get it.
pub fn preflight() -> Result<(), EmulateError> {
    let mut missing = Vec::new();
    if system::find_program("nginx").is_none() {
        missing.push("`nginx` (the load balancers): `apt-get install -y nginx`".to_owned());
    }
    if postgres_bin().is_none() {
        missing.push(
            "PostgreSQL's server (/usr/lib/postgresql/<version>/bin): `apt-get install -y \
             postgresql`"
                .to_owned(),
        );
    }
    if system::find_program("runuser").is_none() {
        missing.push("`runuser`: `apt-get install -y util-linux`".to_owned());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EmulateError::Missing(format!(
            "real services need: {} (or emulate with listeners only)",
            missing.join("; ")
        )))
    }
}

fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// The ports each real process serves, by tier (what is left gets a listener).
pub fn served_ports(plan: &EmulationPlan) -> Vec<(String, Vec<u16>)> {
    if !is_alb_chain(plan) {
        return Vec::new();
    }
    ALB_CHAIN
        .iter()
        .filter_map(|name| plan.tier(name))
        .map(|tier| {
            let ports = match tier.name.0.as_str() {
                // nginx serves every planned port of a load balancer.
                "mcp-alb" | "api-alb" => tier.ports.clone(),
                _ => tier.ports.first().copied().into_iter().collect(),
            };
            (tier.name.0.clone(), ports)
        })
        .collect()
}

fn tier<'a>(plan: &'a EmulationPlan, name: &str) -> Result<&'a TierPlan, EmulateError> {
    plan.tier(name)
        .ok_or_else(|| EmulateError::Service(format!("the plan has no tier {name}")))
}

fn first_port(tier: &TierPlan) -> u16 {
    tier.ports.first().copied().unwrap_or(80)
}

/// The port a load balancer forwards on: 80 when planned (no TLS in the emulation), else its first.
fn http_port(tier: &TierPlan) -> u16 {
    if tier.ports.contains(&80) {
        80
    } else {
        first_port(tier)
    }
}

/// Starts the chain from the database up; each process is ready (its port accepts) before the
/// next starts. Returns the children to stop at teardown.
pub fn start_alb_chain(
    plan: &EmulationPlan,
    run_dir: &Path,
    options: &ServiceOptions,
) -> Result<Vec<Child>, EmulateError> {
    preflight()?;
    let mut children = Vec::new();
    let database = tier(plan, "database")?;
    let api_ecs = tier(plan, "api-ecs")?;
    let api_alb = tier(plan, "api-alb")?;
    let mcp_ecs = tier(plan, "mcp-ecs")?;
    let mcp_alb = tier(plan, "mcp-alb")?;

    children.push(start_postgres(database, &run_dir.join("database"))?);

    let api_dir = run_dir.join("api-ecs");
    make_dir(&api_dir)?;
    if let Some(models) = options
        .model_data_dir
        .as_ref()
        .map(|d| d.join("models"))
        .filter(|m| m.is_dir())
    {
        let _ = std::os::unix::fs::symlink(models, api_dir.join("models"));
    }
    let database_url = format!(
        "postgres://postgres@{}:{}/postgres",
        database.address,
        first_port(database)
    );
    let api_port = first_port(api_ecs).to_string();
    let api_args = [
        "api",
        "--host",
        "0.0.0.0",
        "--port",
        &api_port,
        "--ingest-workers",
        "1",
    ];
    let mut api = spawn_membrain(
        api_ecs,
        &api_dir,
        options,
        &api_args,
        &[
            ("MEMBRAIN_DATABASE_URL", database_url.as_str()),
            ("MEMBRAIN_API_KEY", options.api_key.as_str()),
            // The time series live in the same PostgreSQL.
            ("MEMBRAIN_TS_STORE", database_url.as_str()),
        ],
    )?;
    let ready = wait_ready(
        api_ecs,
        first_port(api_ecs),
        &api_dir.join("service.log"),
        &mut api,
    );
    children.push(api);
    ready?;

    children.push(start_nginx(
        api_alb,
        api_ecs.address,
        first_port(api_ecs),
        run_dir,
    )?);

    let mcp_dir = run_dir.join("mcp-ecs");
    make_dir(&mcp_dir)?;
    let api_base_url = format!("http://{}:{}", api_alb.address, http_port(api_alb));
    let mcp_port = first_port(mcp_ecs).to_string();
    let mcp_args = [
        "mcp",
        "--profile",
        "alb",
        "--host",
        "0.0.0.0",
        "--port",
        &mcp_port,
        "--api-base-url",
        &api_base_url,
        "--allowed-hosts",
        "*",
    ];
    let mut mcp = spawn_membrain(mcp_ecs, &mcp_dir, options, &mcp_args, &[])?;
    let ready = wait_ready(
        mcp_ecs,
        first_port(mcp_ecs),
        &mcp_dir.join("service.log"),
        &mut mcp,
    );
    children.push(mcp);
    ready?;

    children.push(start_nginx(
        mcp_alb,
        mcp_ecs.address,
        first_port(mcp_ecs),
        run_dir,
    )?);
    Ok(children)
}

fn make_dir(dir: &Path) -> Result<(), EmulateError> {
    fs::create_dir_all(dir).map_err(EmulateError::io(format!("cannot create {}", dir.display())))
}

fn log_file(dir: &Path) -> Result<(fs::File, fs::File), EmulateError> {
    let path = dir.join("service.log");
    let file = fs::File::create(&path).map_err(EmulateError::io(format!(
        "cannot create {}",
        path.display()
    )))?;
    let copy = file.try_clone().map_err(EmulateError::io(format!(
        "cannot reopen {}",
        path.display()
    )))?;
    Ok((file, copy))
}

fn ip_command(namespace: &str) -> Command {
    let mut command = Command::new(system::find_program("ip").unwrap_or_else(|| "ip".into()));
    command.args(["netns", "exec", namespace]);
    command
}

fn spawn(mut command: Command, dir: &Path, what: &str) -> Result<Child, EmulateError> {
    let (out, err) = log_file(dir)?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    command
        .spawn()
        .map_err(EmulateError::io(format!("cannot start {what}")))
}

fn spawn_membrain(
    tier: &TierPlan,
    dir: &Path,
    options: &ServiceOptions,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Child, EmulateError> {
    let mut command = ip_command(&tier.namespace);
    command
        .arg(&options.membrain)
        .args(args)
        .env("MEMBRAIN_DATA_DIR", dir)
        .env("MEMBRAIN_LOG_FORMAT", "json")
        .env_remove("MEMBRAIN_CONFIG")
        .env_remove("MEMBRAIN_DATABASE_URL")
        .env_remove("API_BASE_URL");
    for (name, value) in env {
        command.env(name, value);
    }
    spawn(
        command,
        dir,
        &format!("membrain {} in tier {}", args[0], tier.name),
    )
}

/// A private PostgreSQL: its own data directory under the run, run as `postgres`, listening on
/// every address of its namespace, trusting the emulated VPC (nothing else can reach it).
fn start_postgres(tier: &TierPlan, dir: &Path) -> Result<Child, EmulateError> {
    let bin = postgres_bin().ok_or_else(|| {
        EmulateError::Missing("PostgreSQL's server: `apt-get install -y postgresql`".into())
    })?;
    make_dir(dir)?;
    let data = dir.join("data");
    let chown = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .map_err(EmulateError::io("cannot run chown"))?;
    if !chown.success() {
        return Err(EmulateError::Service(format!(
            "cannot give {} to the postgres user",
            dir.display()
        )));
    }
    let initdb = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("initdb"))
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .map_err(EmulateError::io("cannot run initdb"))?;
    if !initdb.status.success() {
        return Err(EmulateError::Service(format!(
            "tier {}: initdb failed: {}",
            tier.name,
            String::from_utf8_lossy(&initdb.stderr).trim()
        )));
    }
    let hba = data.join("pg_hba.conf");
    let mut rules = fs::read_to_string(&hba).unwrap_or_default();
    rules.push_str("host all all 0.0.0.0/0 trust\n");
    fs::write(&hba, rules).map_err(EmulateError::io(format!("cannot write {}", hba.display())))?;
    let port = first_port(tier).to_string();
    let mut command = ip_command(&tier.namespace);
    command
        .args(["runuser", "-u", "postgres", "--"])
        .arg(bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args(["-p", &port, "-c", "listen_addresses=*", "-c", "fsync=off"])
        .arg("-k")
        .arg(dir);
    let mut child = spawn(command, dir, "postgres")?;
    wait_ready(tier, first_port(tier), &dir.join("service.log"), &mut child)?;
    Ok(child)
}

/// nginx as a load balancer: every planned port of the tier (plain HTTP, also on 443: the
/// emulation has no certificates), one target group with passive health checks (a target
/// that fails twice is skipped for 5 s), streaming (the MCP server answers over HTTP).
fn start_nginx(
    tier: &TierPlan,
    target: Ipv4Addr,
    target_port: u16,
    run_dir: &Path,
) -> Result<Child, EmulateError> {
    let dir = run_dir.join(&tier.name.0);
    make_dir(&dir)?;
    let listens: String = tier
        .ports
        .iter()
        .map(|p| format!("        listen {p};\n"))
        .collect();
    let d = dir.display();
    let config = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\nhttp {{\n\
         \x20   access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
         \x20   upstream targets {{ server {target}:{target_port} max_fails=2 fail_timeout=5s; }}\n\
         \x20   server {{\n{listens}\
         \x20       location = /elb-health {{ return 200 \"ok\\n\"; }}\n\
         \x20       location / {{\n            proxy_pass http://targets;\n\
         \x20           proxy_http_version 1.1;\n            proxy_set_header Host $host;\n\
         \x20           proxy_set_header Connection \"\";\n            proxy_buffering off;\n\
         \x20           proxy_read_timeout 120s;\n        }}\n    }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    fs::write(&path, config)
        .map_err(EmulateError::io(format!("cannot write {}", path.display())))?;
    let mut command = ip_command(&tier.namespace);
    command
        .arg(system::find_program("nginx").unwrap_or_else(|| "nginx".into()))
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&path);
    let mut child = spawn(command, &dir, &format!("nginx in tier {}", tier.name))?;
    for port in &tier.ports {
        wait_ready(tier, *port, &dir.join("error.log"), &mut child)?;
    }
    Ok(child)
}

/// Waits until `port` accepts connections inside the tier's namespace (60 s at most: the API
/// loads the embedding model first), failing at once when the process exits.
fn wait_ready(
    tier: &TierPlan,
    port: u16,
    log: &Path,
    child: &mut Child,
) -> Result<(), EmulateError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    let mut problem = format!("nothing accepts on port {port} after 60 s");
    while Instant::now() < deadline {
        if in_namespace(&tier.namespace, &["bash", "-c", &script]).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            problem = format!("its process exited ({status}) before port {port} accepted");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(8).collect();
    Err(EmulateError::Service(format!(
        "tier {}: {problem}; the last lines of {}: {}",
        tier.name,
        log.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    )))
}

/// The MCP call from the internet: `initialize`, then `tools/call get_stats` (which goes MCP ALB
/// → MCP task → API ALB → API task → PostgreSQL), over plain HTTP to the MCP ALB.
const MCP_CALL: &str = r#"
import json, sys, urllib.request
url, key = sys.argv[1], sys.argv[2]
def post(body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Authorization": "Bearer " + key,
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    })
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")
post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "membrain-netemu", "version": "1"}}})
print(json.dumps(post({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
    "params": {"name": "get_stats", "arguments": {}}})))
"#;

/// One MCP `tools/call` from the internet tier through the chain; the JSON-RPC answer's
/// `result`, or why it failed.
pub fn mcp_call(plan: &EmulationPlan, api_key: &str) -> Result<serde_json::Value, EmulateError> {
    let internet = plan
        .tiers
        .iter()
        .find(|t| t.placement == membrain_netsec::Placement::Internet)
        .ok_or_else(|| EmulateError::Service("the plan has no internet tier".into()))?;
    let alb = tier(plan, "mcp-alb")?;
    let url = format!("http://{}:{}/mcp", alb.address, http_port(alb));
    let output = in_namespace(
        &internet.namespace,
        &["python3", "-c", MCP_CALL, &url, api_key],
    )?;
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| {
        EmulateError::Service(format!(
            "the MCP call answered something that is not JSON: {e}"
        ))
    })?;
    match answer.get("result") {
        Some(result) if result.get("isError") != Some(&serde_json::Value::Bool(true)) => {
            Ok(result.clone())
        }
        _ => Err(EmulateError::Service(format!(
            "the MCP call through the chain failed: {answer}"
        ))),
    }
}
