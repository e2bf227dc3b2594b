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
    /// `moto_server`, which serves the AWS services behind the `gateway` VPC endpoints.
    pub moto_server: Option<PathBuf>,
}

/// The `alb` chain's tiers, in start order (each needs the next one up).
pub const ALB_CHAIN: [&str; 5] = ["database", "api-ecs", "api-alb", "mcp-ecs", "mcp-alb"];

/// Whether the plan is the `alb` chain (real processes apply).
pub fn is_alb_chain(plan: &EmulationPlan) -> bool {
    ALB_CHAIN
        .iter()
        .all(|name| plan.tier(name).is_some_and(|t| !t.ports.is_empty()))
}

/// What the plan's real services need installed; each missing piece says how to get it.
pub fn preflight(plan: &EmulationPlan) -> Result<(), EmulateError> {
    let mut missing = Vec::new();
    if is_alb_chain(plan) && system::find_program("nginx").is_none() {
        missing.push("`nginx` (the load balancers): `apt-get install -y nginx`".to_owned());
    }
    if has_database(plan) && postgres_bin().is_none() {
        missing.push(
            "PostgreSQL's server (/usr/lib/postgresql/<version>/bin): `apt-get install -y \
             postgresql`"
                .to_owned(),
        );
    }
    if has_database(plan) && system::find_program("runuser").is_none() {
        missing.push("`runuser`: `apt-get install -y util-linux`".to_owned());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EmulateError::Missing(format!(
            "real services need: {} (or emulate with plain listeners: --listeners-only)",
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

/// Whether the plan has a database tier that PostgreSQL serves (`alb`, and `gateway` when its
/// time series live in PostgreSQL).
fn has_database(plan: &EmulationPlan) -> bool {
    plan.tier("database")
        .is_some_and(|t| !t.expected_ports.is_empty())
}

/// The `gateway` profile's tiers that run something (and `database`, when the plan has it).
pub const GATEWAY_CHAIN: [&str; 4] = ["vpc-endpoints", "mcp-server", "nlb", "vpc-link"];

/// Whether the plan is the `gateway` shape with its endpoints (real processes apply).
pub fn is_gateway_chain(plan: &EmulationPlan) -> bool {
    GATEWAY_CHAIN.iter().all(|name| plan.tier(name).is_some())
        && ["vpc-endpoints", "mcp-server"].iter().all(|name| {
            plan.tier(name)
                .is_some_and(|t| !t.expected_ports.is_empty())
        })
}

/// The ports each real process serves, by tier (what is left gets a listener).
pub fn served_ports(plan: &EmulationPlan) -> Vec<(String, Vec<u16>)> {
    if is_gateway_chain(plan) {
        return ["vpc-endpoints", "mcp-server", "nlb", "database"]
            .iter()
            .filter_map(|name| plan.tier(name))
            .map(|tier| (tier.name.0.clone(), vec![first_port(tier)]))
            .collect();
    }
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
                _ => vec![first_port(tier)],
            };
            (tier.name.0.clone(), ports)
        })
        .collect()
}

fn tier<'a>(plan: &'a EmulationPlan, name: &str) -> Result<&'a TierPlan, EmulateError> {
    plan.tier(name)
        .ok_or_else(|| EmulateError::Service(format!("the plan has no tier {name}")))
}

/// Where a tier's service listens: the port of its first expected flow, else its first port.
fn first_port(tier: &TierPlan) -> u16 {
    tier.expected_ports
        .first()
        .or(tier.ports.first())
        .copied()
        .unwrap_or(80)
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
    let mut children = Vec::new();
    let database = tier(plan, "database")?;
    let api_ecs = tier(plan, "api-ecs")?;
    let api_alb = tier(plan, "api-alb")?;
    let mcp_ecs = tier(plan, "mcp-ecs")?;
    let mcp_alb = tier(plan, "mcp-alb")?;

    children.push(start_postgres(database, &run_dir.join("database"))?);
    let database_url = postgres_url(database);

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
    let api = spawn_membrain(
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
    keep_once_ready(&mut children, api_ecs, &api_dir, api)?;

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
    let mcp = spawn_membrain(mcp_ecs, &mcp_dir, options, &mcp_args, &[])?;
    keep_once_ready(&mut children, mcp_ecs, &mcp_dir, mcp)?;

    children.push(start_nginx(
        mcp_alb,
        mcp_ecs.address,
        first_port(mcp_ecs),
        run_dir,
    )?);
    Ok(children)
}

/// The URL of the PostgreSQL [`start_postgres`] runs in `database`.
fn postgres_url(database: &TierPlan) -> String {
    format!(
        "postgres://postgres@{}:{}/postgres",
        database.address,
        first_port(database)
    )
}

/// Waits until `child` answers on its tier's first port, keeping it in `children` either way so
/// teardown stops it even when it never came up.
fn keep_once_ready(
    children: &mut Vec<Child>,
    tier: &TierPlan,
    dir: &Path,
    mut child: Child,
) -> Result<(), EmulateError> {
    let ready = wait_ready(tier, first_port(tier), &dir.join("service.log"), &mut child);
    children.push(child);
    ready
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
/// emulation has no certificates), one target group checked like an ALB's (`GET /health` must
/// answer 200 before the balancer counts as up; then passively: a target that fails twice is
/// skipped for 5 s), streaming (the MCP server answers over HTTP).
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
    health_check(tier, target, target_port)?;
    Ok(child)
}

/// The load balancer's health check of its target: `GET /health` from the balancer's namespace
/// (so through both tiers' rules) until it answers 200, as a target group registers a target.
fn health_check(tier: &TierPlan, target: Ipv4Addr, port: u16) -> Result<(), EmulateError> {
    let script = format!(
        "exec 3<>/dev/tcp/{target}/{port} && printf 'GET /health HTTP/1.0\\r\\nHost: \
         {target}\\r\\n\\r\\n' >&3 && head -n 1 <&3"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        match in_namespace(&tier.namespace, &["timeout", "2", "bash", "-c", &script]) {
            Ok(output) => {
                last = String::from_utf8_lossy(&output.stdout).trim().to_owned();
                if last.split_whitespace().nth(1) == Some("200") {
                    return Ok(());
                }
            }
            Err(error) => last = error.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(EmulateError::Service(format!(
        "tier {}: the health check GET http://{target}:{port}/health never answered 200 (last: \
         {last})",
        tier.name
    )))
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
pub fn mcp_call(
    plan: &EmulationPlan,
    run_dir: &Path,
    api_key: &str,
) -> Result<serde_json::Value, EmulateError> {
    let internet = plan
        .tiers
        .iter()
        .find(|t| t.placement == membrain_netsec::Placement::Internet)
        .ok_or_else(|| EmulateError::Service("the plan has no internet tier".into()))?;
    let output = if is_gateway_chain(plan) {
        let socket = gateway_socket(run_dir);
        let socket = socket.to_string_lossy();
        in_namespace(
            &internet.namespace,
            &["python3", "-c", GATEWAY_MCP_CALL, &socket, api_key],
        )?
    } else {
        let alb = tier(plan, "mcp-alb")?;
        let url = format!("http://{}:{}/mcp", alb.address, http_port(alb));
        in_namespace(
            &internet.namespace,
            &["python3", "-c", MCP_CALL, &url, api_key],
        )?
    };
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

/// AWS settings every process that reaches the emulated endpoints gets.
fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// The secret holding the key map, in the endpoints' Secrets Manager.
const KEYS_SECRET: &str = "membrain-emulate-keys";

/// Creates the key-map secret through the Secrets Manager endpoint (from the MCP server's tier,
/// the way the tasks reach it), with a request moto routes by its credential scope.
const CREATE_SECRET: &str = r#"
import json, sys, urllib.request
endpoint, name, key = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request(endpoint + "/", data=json.dumps({
    "Name": name, "SecretString": json.dumps({key: "default"})}).encode(), headers={
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "secretsmanager.CreateSecret",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
})
print(urllib.request.urlopen(request, timeout=20).read().decode())
"#;

/// API Gateway's stand-in in the VPC link's tier: it takes a client's request on a Unix socket
/// (the managed front end is outside the VPC, so no security group sees it), asks
/// `membrain authorizer` for a decision through a Lambda Runtime API it serves on loopback
/// (payload 2.0 event, simple response), and forwards an authorized request to the NLB from the
/// VPC link's address; a refused one is answered 403 as API Gateway does.
const GATEWAY_STAND_IN: &str = r#"
import http.client, http.server, json, os, queue, socketserver, sys, threading, time, uuid
sock, runtime_port, target_host, target_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
events, answers = queue.Queue(), {}
class Runtime(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        request_id, event = events.get()
        body = json.dumps(event).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:membrain-authorizer")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self.path.split("/")
        if len(parts) > 4 and parts[3] == "invocation":
            slot = answers.get(parts[4])
            if slot is not None:
                slot.put((parts[-1], body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def address_string(self): return "client"
    def handle_one(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        request_id = str(uuid.uuid4())
        slot = queue.Queue()
        answers[request_id] = slot
        events.put((request_id, {"version": "2.0", "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:123456789012:emulated/$default/ANY/mcp",
            "identitySource": [headers.get("x-api-key", "")], "routeKey": "ANY /mcp",
            "rawPath": self.path, "rawQueryString": "", "headers": headers,
            "requestContext": {"http": {"method": self.command, "path": self.path}}}))
        try:
            kind, answer = slot.get(timeout=15)
            allowed = kind == "response" and json.loads(answer or b"{}").get("isAuthorized") is True
        except Exception:
            allowed = False
        answers.pop(request_id, None)
        if not allowed:
            out = b'{"message":"Forbidden"}'
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        upstream = http.client.HTTPConnection(target_host, target_port, timeout=30)
        forwarded = {k: v for k, v in headers.items() if k not in ("host", "connection", "content-length")}
        forwarded["host"] = "%s:%d" % (target_host, target_port)
        upstream.request(self.command, self.path, body=body, headers=forwarded)
        response = upstream.getresponse()
        out = response.read()
        self.send_response(response.status)
        for k, v in response.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_DELETE = handle_one
class UnixFront(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
runtime = http.server.ThreadingHTTPServer(("127.0.0.1", runtime_port), Runtime)
threading.Thread(target=runtime.serve_forever, daemon=True).start()
if os.path.exists(sock): os.unlink(sock)
front = UnixFront(sock, Front)
print("ready", flush=True)
front.serve_forever()
"#;

/// The internal NLB's stand-in in its tier: TCP in on its port, out to the MCP server from the
/// NLB's own address (client addresses are not preserved for IP targets), which is why the tasks
/// can admit the NLB's group alone.
const NLB_STAND_IN: &str = r#"
import socket, socketserver, sys, threading
port, target_host, target_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def pipe(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try: sink.shutdown(socket.SHUT_WR)
        except OSError: pass
class Forward(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            upstream = socket.create_connection((target_host, target_port), timeout=10)
        except OSError:
            return
        upstream.settimeout(None)
        back = threading.Thread(target=pipe, args=(upstream, self.request), daemon=True)
        back.start()
        pipe(self.request, upstream)
        back.join()
        upstream.close()
class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
Server(("0.0.0.0", port), Forward).serve_forever()
"#;

/// The Lambda Runtime API port of the stand-in (loopback of the VPC link's namespace).
const RUNTIME_API_PORT: u16 = 9001;

/// Ports the real processes bind beside the planned ones, by tier: a plan that also targets one
/// of them cannot be emulated (the port would already be bound).
pub fn reserved_ports(plan: &EmulationPlan) -> Vec<(&'static str, u16, &'static str)> {
    if is_gateway_chain(plan) {
        vec![(
            "vpc-link",
            RUNTIME_API_PORT,
            "API Gateway's stand-in (its Lambda Runtime API for membrain authorizer)",
        )]
    } else {
        Vec::new()
    }
}

/// Refuses a plan that targets a port a real process of the same tier binds for itself.
pub fn check_ports(plan: &EmulationPlan) -> Result<(), EmulateError> {
    let reasons: Vec<String> = reserved_ports(plan)
        .into_iter()
        .filter(|(name, port, _)| plan.tier(name).is_some_and(|t| t.ports.contains(port)))
        .map(|(name, port, what)| {
            format!(
                "tier {name}: port {port} is already bound by {what}; plan that flow on \
                 another port or emulate with listeners only"
            )
        })
        .collect();
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(EmulateError::Refused(reasons))
    }
}

/// Where API Gateway's stand-in takes requests: a Unix socket in the run directory.
pub fn gateway_socket(run_dir: &Path) -> PathBuf {
    run_dir.join("vpc-link").join("api-gateway.sock")
}

/// Starts the `gateway` chain: moto as the AWS services behind the VPC endpoints, the key-map
/// secret created through them, the time-series store (PostgreSQL in the database tier when the
/// plan has one, else Timestream behind the endpoints), `membrain mcp --profile gateway` reading
/// both, the NLB's TCP stand-in in front of it, and API Gateway's stand-in with
/// `membrain authorizer` in the VPC link's tier.
pub fn start_gateway_chain(
    plan: &EmulationPlan,
    run_dir: &Path,
    options: &ServiceOptions,
) -> Result<Vec<Child>, EmulateError> {
    let moto = options
        .moto_server
        .clone()
        .or_else(|| system::find_program("moto_server"))
        .ok_or_else(|| {
            EmulateError::Missing(
                "`moto_server` (the AWS services behind the VPC endpoints): `pip install \
                 'moto[server]'`, or point MEMBRAIN_TOOLS_BIN at its bin folder"
                    .into(),
            )
        })?;
    let mut children = Vec::new();
    let endpoints = tier(plan, "vpc-endpoints")?;
    let mcp_server = tier(plan, "mcp-server")?;
    let vpc_link = tier(plan, "vpc-link")?;

    let dir = run_dir.join("vpc-endpoints");
    make_dir(&dir)?;
    let port = first_port(endpoints).to_string();
    let mut command = ip_command(&endpoints.namespace);
    command.arg(&moto).args(["-H", "0.0.0.0", "-p", &port]);
    let child = spawn(command, &dir, "moto_server")?;
    keep_once_ready(&mut children, endpoints, &dir, child)?;
    let endpoint = format!("http://{}:{}", endpoints.address, first_port(endpoints));
    in_namespace(
        &mcp_server.namespace,
        &[
            "python3",
            "-c",
            CREATE_SECRET,
            &endpoint,
            KEYS_SECRET,
            &options.api_key,
        ],
    )?;

    let ts_store = match plan.tier("database").filter(|_| has_database(plan)) {
        Some(database) => {
            children.push(start_postgres(database, &run_dir.join("database"))?);
            postgres_url(database)
        }
        None => format!("timestream://membrain?region=us-east-1&endpoint={endpoint}"),
    };

    let dir = run_dir.join("mcp-server");
    make_dir(&dir)?;
    let port = first_port(mcp_server).to_string();
    let mut env: Vec<(&str, String)> = aws_env(&endpoint);
    env.push(("MEMBRAIN_KEYS_SECRET", KEYS_SECRET.to_owned()));
    env.push(("MEMBRAIN_TS_STORE", ts_store));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = [
        "mcp",
        "--profile",
        "gateway",
        "--host",
        "0.0.0.0",
        "--port",
        &port,
        "--allowed-hosts",
        "*",
    ];
    let mcp = spawn_membrain(mcp_server, &dir, options, &args, &env_refs)?;
    keep_once_ready(&mut children, mcp_server, &dir, mcp)?;

    let nlb = tier(plan, "nlb")?;
    let dir = run_dir.join("nlb");
    make_dir(&dir)?;
    let mut command = ip_command(&nlb.namespace);
    command
        .args(["python3", "-c", NLB_STAND_IN])
        .arg(first_port(nlb).to_string())
        .arg(mcp_server.address.to_string())
        .arg(first_port(mcp_server).to_string());
    let child = spawn(command, &dir, "the NLB's stand-in")?;
    keep_once_ready(&mut children, nlb, &dir, child)?;
    // As a target group registers a task: healthy when checked from the NLB's own addresses.
    health_check(nlb, mcp_server.address, first_port(mcp_server))?;

    let dir = run_dir.join("vpc-link");
    make_dir(&dir)?;
    let socket = gateway_socket(run_dir);
    let mut command = ip_command(&vpc_link.namespace);
    command
        .args(["python3", "-c", GATEWAY_STAND_IN])
        .arg(&socket)
        .arg(RUNTIME_API_PORT.to_string())
        .arg(nlb.address.to_string())
        .arg(first_port(nlb).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file(&dir)?.0));
    let mut stand_in = command
        .spawn()
        .map_err(EmulateError::io("cannot start API Gateway's stand-in"))?;
    let mut line = String::new();
    if let Some(stdout) = stand_in.stdout.take() {
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
    }
    children.push(stand_in);
    if line.trim() != "ready" {
        let log = fs::read_to_string(dir.join("service.log")).unwrap_or_default();
        return Err(EmulateError::Service(format!(
            "tier vpc-link: API Gateway's stand-in did not start: {}",
            log.trim()
        )));
    }
    let authorizer_dir = dir.join("authorizer");
    make_dir(&authorizer_dir)?;
    let mut env: Vec<(&str, String)> = aws_env(&endpoint);
    env.extend([
        ("MEMBRAIN_KEYS_SECRET", KEYS_SECRET.to_owned()),
        (
            "AWS_LAMBDA_RUNTIME_API",
            format!("127.0.0.1:{RUNTIME_API_PORT}"),
        ),
        ("AWS_LAMBDA_FUNCTION_NAME", "membrain-authorizer".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
    ]);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    children.push(spawn_membrain(
        vpc_link,
        &authorizer_dir,
        options,
        &["authorizer"],
        &env_refs,
    )?);
    Ok(children)
}

/// The gateway's MCP call: from the internet tier to API Gateway's stand-in (its Unix socket),
/// authorized by `membrain authorizer`, forwarded over the VPC link to the MCP server, after a
/// call with a wrong key was refused (403).
const GATEWAY_MCP_CALL: &str = r#"
import http.client, json, socket, sys
path, key = sys.argv[1], sys.argv[2]
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
def send(body, key):
    connection = Unix("api-gateway")
    connection.request("POST", "/mcp", body=json.dumps(body), headers={
        "x-api-key": key, "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"})
    response = connection.getresponse()
    return response.status, response.read()
def post(body):
    status, text = send(body, key)
    if status != 200:
        raise SystemExit("HTTP %d: %s" % (status, text[:300]))
    return json.loads(text or b"null")
# The authorizer decides: a wrong key must be refused before anything reaches the VPC link.
status, text = send({"jsonrpc": "2.0", "id": 0, "method": "ping"}, "mb_not_a_key_of_this_run")
if status != 403:
    raise SystemExit("API Gateway's stand-in let a wrong key through: HTTP %d %s" % (status, text[:200]))
post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "membrain-netemu", "version": "1"}}})
print(json.dumps(post({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
    "params": {"name": "ts_list_tables", "arguments": {}}})))
"#;

/// Where a client in the internet tier reaches the MCP server of a run with real services.
pub fn entry_point(plan: &EmulationPlan, run_dir: &Path) -> Option<String> {
    if is_gateway_chain(plan) {
        Some(format!(
            "API Gateway's stand-in on the Unix socket {} (POST /mcp with x-api-key)",
            gateway_socket(run_dir).display()
        ))
    } else if is_alb_chain(plan) {
        let alb = plan.tier("mcp-alb")?;
        Some(format!(
            "http://{}:{}/mcp from the internet tier (ip netns exec {} ...)",
            alb.address,
            http_port(alb),
            plan.tiers
                .iter()
                .find(|t| t.placement == membrain_netsec::Placement::Internet)
                .map_or("?", |t| t.namespace.as_str())
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use membrain_netsec::profiles::Profile;
    use membrain_netsec::{Flow, Protocol, TierName};

    fn plan(profile: Profile, extra: Option<(&str, &str, u16)>) -> EmulationPlan {
        let mut topology = profile.default_topology();
        if let Some((from, to, port)) = extra {
            topology.forbidden.push(Flow {
                from: TierName(from.into()),
                to: TierName(to.into()),
                protocol: Protocol::Tcp,
                port,
                why: "a test".into(),
            });
        }
        EmulationPlan::new(&topology, "0123abcd").unwrap()
    }

    #[test]
    fn each_profile_is_recognised_and_served_on_its_expected_ports() {
        let alb = plan(Profile::Alb, None);
        assert!(is_alb_chain(&alb) && !is_gateway_chain(&alb));
        let served = served_ports(&alb);
        assert!(served.contains(&("mcp-alb".to_owned(), vec![80, 443])));
        assert!(served.contains(&("mcp-ecs".to_owned(), vec![8100])));
        let gateway = plan(Profile::Gateway, None);
        assert!(is_gateway_chain(&gateway) && !is_alb_chain(&gateway));
        // mcp-server is probed on 22, 443, 8000 and 8080; the MCP server takes the expected one.
        assert!(served_ports(&gateway).contains(&("mcp-server".to_owned(), vec![8080])));
        assert!(served_ports(&gateway).contains(&("nlb".to_owned(), vec![8080])));
        assert!(served_ports(&gateway).contains(&("database".to_owned(), vec![5432])));
        check_ports(&gateway).unwrap();
    }

    #[test]
    fn a_planned_port_a_service_binds_for_itself_is_refused() {
        let gateway = plan(Profile::Gateway, Some(("internet", "vpc-link", 9001)));
        let error = check_ports(&gateway).unwrap_err().to_string();
        assert!(
            error.contains("tier vpc-link: port 9001 is already bound"),
            "{error}"
        );
    }
}
