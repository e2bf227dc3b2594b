//! [`Emulation`]: a topology brought up on this machine, and its guaranteed removal.
//!
//! Layout: the VPC namespace (`mb-<run>-_vpc`) holds a bridge with the router's address (the
//! CIDR's first host) and forwards between the bridge and the internet link; every VPC tier is a
//! namespace with one veth on that bridge, the internet tier a namespace on a link of its own
//! (198.51.100.0/24). No link reaches the host's namespace, so nothing leaves the emulation.
//!
//! Removal: every namespace name carries the run id and a state file
//! (`<state dir>/<run>.json`) records the owning process. Dropping an [`Emulation`] (an error,
//! Ctrl-C handled by the caller, a failed test) removes its namespaces and every process in
//! them; [`clean_stale`] removes what a run whose process died left behind, and every new run
//! calls it first.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use membrain_netsec::{Placement, Topology};
use serde::{Deserialize, Serialize};

use crate::plan::{
    AWS_SERVICE_PREFIX, EmulationPlan, INTERNET_GATEWAY, INTERNET_PREFIX, TierPlan, run_id_of,
    valid_run_id,
};
use crate::probe::Observation;
use crate::services::{self, ServiceOptions};
use crate::system::{self, in_namespace, ip, nft_load};
use crate::{EmulateError, nft};

/// Where run state files live (tmpfs: gone at reboot, like the namespaces).
pub const DEFAULT_STATE_DIR: &str = "/run/membrain-netemu";

#[derive(Debug, Clone)]
pub struct EmulateOptions {
    pub state_dir: PathBuf,
    /// A given run id (8 hex digits); a fresh one when `None`.
    pub run_id: Option<String>,
    /// Real processes (nginx, `membrain mcp`/`api`, PostgreSQL) where the plan is the `alb`
    /// chain; plain listeners everywhere when `None`.
    pub services: Option<ServiceOptions>,
}

impl Default for EmulateOptions {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            run_id: None,
            services: None,
        }
    }
}

/// What a running emulation records for other processes (`membrain network probe`) and for the
/// clean-up of a crashed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    pub pid: u32,
    /// The rules loaded now (the plan, or a changed copy swapped in).
    pub topology: Topology,
    pub plan: EmulationPlan,
    /// The key the emulated API accepts, when real services run (the state file is 0600).
    pub api_key: Option<String>,
}

/// A live emulation. Dropping it tears everything down.
#[derive(Debug)]
pub struct Emulation {
    state: RunState,
    state_file: PathBuf,
    run_dir: PathBuf,
    children: Vec<Child>,
    torn_down: bool,
}

impl Emulation {
    /// Checks the machine and the topology (refusing before anything exists), removes leftovers
    /// of crashed runs, then builds the network, loads every tier's rules and starts a TCP
    /// listener on every planned port.
    pub fn start(topology: &Topology, options: &EmulateOptions) -> Result<Self, EmulateError> {
        system::preflight()?;
        let run_id = options.run_id.clone().unwrap_or_else(new_run_id);
        let plan = EmulationPlan::new(topology, &run_id)?;
        if options.services.is_some() {
            services::check_ports(&plan)?;
        }
        clean_stale(&options.state_dir)?;
        std::fs::create_dir_all(&options.state_dir).map_err(EmulateError::io(format!(
            "cannot create {}",
            options.state_dir.display()
        )))?;
        let mut emulation = Self {
            state: RunState {
                run_id: run_id.clone(),
                pid: std::process::id(),
                topology: topology.clone(),
                plan,
                api_key: None,
            },
            state_file: state_file(&options.state_dir, &run_id),
            run_dir: options.state_dir.join(&run_id),
            children: Vec::new(),
            torn_down: false,
        };
        emulation.save()?;
        emulation.build_network()?;
        emulation.load_rules(topology)?;
        let real = options.services.as_ref().filter(|_| {
            services::is_alb_chain(&emulation.state.plan)
                || services::is_gateway_chain(&emulation.state.plan)
        });
        if real.is_some() {
            services::preflight(&emulation.state.plan)?;
        }
        let served = if real.is_some() {
            services::served_ports(&emulation.state.plan)
        } else {
            Vec::new()
        };
        emulation.start_listeners(&served)?;
        if let Some(service_options) = real {
            std::fs::create_dir_all(&emulation.run_dir).map_err(EmulateError::io(format!(
                "cannot create {}",
                emulation.run_dir.display()
            )))?;
            emulation.state.api_key = Some(service_options.api_key.clone());
            emulation.save()?;
            let plan = emulation.state.plan.clone();
            let children = if services::is_gateway_chain(&plan) {
                services::start_gateway_chain(&plan, &emulation.run_dir, service_options)?
            } else {
                services::start_alb_chain(&plan, &emulation.run_dir, service_options)?
            };
            emulation.children.extend(children);
        }
        Ok(emulation)
    }

    pub fn run_id(&self) -> &str {
        &self.state.run_id
    }

    pub fn plan(&self) -> &EmulationPlan {
        &self.state.plan
    }

    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// The topology whose rules are loaded now.
    pub fn topology(&self) -> &Topology {
        &self.state.topology
    }

    fn save(&self) -> Result<(), EmulateError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string_pretty(&self.state)
            .map_err(|e| EmulateError::Service(format!("cannot encode the run state: {e}")))?;
        let context = format!("cannot write {}", self.state_file.display());
        // Written aside and renamed: a concurrent `clean_stale` never reads half a file.
        let partial = self.state_file.with_extension("json.partial");
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .and_then(|()| std::fs::rename(&partial, &self.state_file))
            .map_err(EmulateError::io(context))
    }

    fn build_network(&mut self) -> Result<(), EmulateError> {
        let plan = self.state.plan.clone();
        let vpc = plan.vpc_namespace.as_str();
        ip(&["netns", "add", vpc])?;
        ip(&["-n", vpc, "link", "set", "lo", "up"])?;
        ip(&["-n", vpc, "link", "add", "br0", "type", "bridge"])?;
        let router = format!("{}/{}", plan.router, plan.prefix_len);
        ip(&["-n", vpc, "addr", "add", &router, "dev", "br0"])?;
        ip(&["-n", vpc, "link", "set", "br0", "up"])?;
        in_namespace(vpc, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        for (index, tier) in plan.tiers.iter().enumerate() {
            let ns = tier.namespace.as_str();
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            // Interface names are per namespace; `t<index>` stays within 15 characters.
            let outer = format!("t{index}");
            ip(&[
                "-n", vpc, "link", "add", &outer, "type", "veth", "peer", "name", "eth0", "netns",
                ns,
            ])?;
            let (address, gateway) = match tier.placement {
                Placement::Vpc => {
                    ip(&["-n", vpc, "link", "set", &outer, "master", "br0"])?;
                    (format!("{}/{}", tier.address, plan.prefix_len), plan.router)
                }
                Placement::Internet => {
                    let gateway = format!("{INTERNET_GATEWAY}/{INTERNET_PREFIX}");
                    ip(&["-n", vpc, "addr", "add", &gateway, "dev", &outer])?;
                    (
                        format!("{}/{INTERNET_PREFIX}", tier.address),
                        INTERNET_GATEWAY,
                    )
                }
                // The service's own /30: the router is the host just below it.
                Placement::AwsService => {
                    let router = Ipv4Addr::from(u32::from(tier.address) - 1);
                    let side = format!("{router}/{AWS_SERVICE_PREFIX}");
                    ip(&["-n", vpc, "addr", "add", &side, "dev", &outer])?;
                    (format!("{}/{AWS_SERVICE_PREFIX}", tier.address), router)
                }
            };
            ip(&["-n", vpc, "link", "set", &outer, "up"])?;
            ip(&["-n", ns, "addr", "add", &address, "dev", "eth0"])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            let gateway = gateway.to_string();
            ip(&["-n", ns, "route", "add", "default", "via", &gateway])?;
        }
        Ok(())
    }

    /// Swaps every tier's ruleset for what `topology`'s groups say (one nft transaction per
    /// tier; namespaces and processes stay). `topology` must have the same tiers as the plan.
    pub fn load_rules(&mut self, topology: &Topology) -> Result<(), EmulateError> {
        let same_tiers = topology.tiers.len() == self.state.plan.tiers.len()
            && topology
                .tiers
                .iter()
                .zip(&self.state.plan.tiers)
                .all(|(t, p)| t.name == p.name && t.placement == p.placement);
        if !same_tiers {
            return Err(EmulateError::Refused(vec![
                "new rules must keep the emulated topology's tiers".to_owned(),
            ]));
        }
        for (tier, planned) in topology.tiers.iter().zip(&self.state.plan.tiers) {
            let script = nft::ruleset(topology, &self.state.plan, tier);
            nft_load(&planned.namespace, &script)?;
        }
        self.state.topology = topology.clone();
        self.save()
    }

    /// A plain listener on every planned port no real process serves.
    fn start_listeners(&mut self, served: &[(String, Vec<u16>)]) -> Result<(), EmulateError> {
        let tiers: Vec<TierPlan> = self.state.plan.tiers.clone();
        for mut tier in tiers {
            if let Some((_, ports)) = served.iter().find(|(name, _)| *name == tier.name.0) {
                tier.ports.retain(|p| !ports.contains(p));
            }
            if !tier.ports.is_empty() {
                let child = start_listener(&tier)?;
                self.children.push(child);
            }
        }
        Ok(())
    }

    /// One MCP call from the internet through the whole chain, when real services run.
    pub fn mcp_call(&self) -> Option<Result<serde_json::Value, EmulateError>> {
        let key = self.state.api_key.as_ref()?;
        Some(services::mcp_call(&self.state.plan, &self.run_dir, key))
    }

    /// Tries every planned tier:port from every other tier (TCP connect, `timeout` each, all at
    /// once) and returns what was observed.
    pub fn probe(&self, timeout: Duration) -> Result<Vec<Observation>, EmulateError> {
        probe_plan(&self.state.plan, timeout)
    }

    /// Removes the namespaces, the processes in them and the state file.
    pub fn teardown(mut self) -> Result<(), EmulateError> {
        self.teardown_inner()
    }

    fn teardown_inner(&mut self) -> Result<(), EmulateError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let mut first_error = None;
        for namespace in self.state.plan.namespaces() {
            if let Err(error) = system::remove_namespace(&namespace) {
                first_error.get_or_insert(error);
            }
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.state_file);
        let _ = std::fs::remove_dir_all(&self.run_dir);
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Emulation {
    fn drop(&mut self) {
        if let Err(error) = self.teardown_inner() {
            eprintln!(
                "membrain-netemu: tearing down run {} failed: {error}; `membrain network \
                 emulate --clean` removes what is left",
                self.state.run_id
            );
        }
    }
}

/// A TCP listener on every port of `tier`, accepting and closing, started inside its namespace.
/// A port that cannot be bound fails with the tier and the port.
const LISTENER: &str = r#"
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", int(port)))
    except OSError as e:
        sys.stderr.write("port %s is already bound (%s)\n" % (port, e.strerror))
        sys.exit(1)
    s.listen(128)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        try:
            conn, _ = key.fileobj.accept()
            conn.close()
        except OSError:
            pass
"#;

fn start_listener(tier: &TierPlan) -> Result<Child, EmulateError> {
    let mut command = Command::new(system::find_program("ip").unwrap_or_else(|| "ip".into()));
    command
        .args(["netns", "exec", &tier.namespace, "python3", "-c", LISTENER])
        .args(tier.ports.iter().map(u16::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(EmulateError::io(format!(
        "cannot start the listener of tier {}",
        tier.name
    )))?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    if line.trim() != "ready" {
        let _ = child.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let _ = child.wait();
        return Err(EmulateError::Service(format!(
            "tier {}: cannot listen on {:?}: {}",
            tier.name,
            tier.ports,
            stderr.trim()
        )));
    }
    Ok(child)
}

const SOURCES_AT_ONCE: usize = 8;
const TARGETS_AT_ONCE: usize = 32;

/// Probes a plan's network (this process's emulation or another's, from its [`RunState`]).
pub fn probe_plan(
    plan: &EmulationPlan,
    timeout: Duration,
) -> Result<Vec<Observation>, EmulateError> {
    let seconds = format!("{:.3}", timeout.as_secs_f64().max(0.01));
    // Sources a few at a time, and (in `probe_from`) targets in batches: a large plan never
    // has more than SOURCES_AT_ONCE x TARGETS_AT_ONCE attempts in flight.
    let mut results: Vec<Result<Vec<Observation>, EmulateError>> = Vec::new();
    for sources in plan.tiers.chunks(SOURCES_AT_ONCE) {
        results.extend(std::thread::scope(|scope| {
            let handles: Vec<_> = sources
                .iter()
                .map(|source| {
                    let seconds = seconds.as_str();
                    scope.spawn(move || probe_from(plan, source, seconds))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EmulateError::Service("a probe thread panicked".into()))
                    })
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut observations = Vec::new();
    for result in results {
        observations.extend(result?);
    }
    Ok(observations)
}

/// One shell in `source`'s namespace connects to every target at once; each attempt prints
/// `<address> <port> open|closed`.
fn probe_from(
    plan: &EmulationPlan,
    source: &TierPlan,
    seconds: &str,
) -> Result<Vec<Observation>, EmulateError> {
    let targets: Vec<(&TierPlan, u16)> = plan
        .targets
        .iter()
        .filter(|t| t.tier != source.name)
        .filter_map(|t| plan.tier(&t.tier.0).map(|tier| (tier, t.port)))
        .collect();
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    // Addresses and ports are typed values, so the script holds nothing but digits and dots.
    let mut script = format!(
        "probe() {{ if timeout {seconds} bash -c \"exec 3<>/dev/tcp/$1/$2\" 2>/dev/null; \
         then echo \"$1 $2 open\"; else echo \"$1 $2 closed\"; fi; }}\n"
    );
    for (index, (tier, port)) in targets.iter().enumerate() {
        script.push_str(&format!("probe {} {port} &\n", tier.address));
        if (index + 1) % TARGETS_AT_ONCE == 0 {
            script.push_str("wait\n");
        }
    }
    script.push_str("wait\n");
    let output = in_namespace(&source.namespace, &["bash", "-c", &script])?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut seen: BTreeMap<(Ipv4Addr, u16), bool> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some(address), Some(port), Some(state)) = (words.next(), words.next(), words.next())
            && let (Ok(address), Ok(port)) = (address.parse(), port.parse())
        {
            seen.insert((address, port), state == "open");
        }
    }
    targets
        .into_iter()
        .map(|(tier, port)| {
            let open = seen.get(&(tier.address, port)).copied().ok_or_else(|| {
                EmulateError::Service(format!(
                    "the probe from {} to {}:{port} reported nothing",
                    source.name, tier.name
                ))
            })?;
            Ok(Observation {
                from: source.name.clone(),
                to: tier.name.clone(),
                port,
                open,
            })
        })
        .collect()
}

/// The MCP call of a run with real services (this process's or another's), `None` without them.
/// `state_dir` is where the run keeps its files (the gateway's stand-in has its socket there).
pub fn mcp_call_state(
    state: &RunState,
    state_dir: &Path,
) -> Option<Result<serde_json::Value, EmulateError>> {
    let key = state.api_key.as_ref()?;
    Some(services::mcp_call(
        &state.plan,
        &state_dir.join(&state.run_id),
        key,
    ))
}

fn state_file(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(format!("{run_id}.json"))
}

/// Runs whose owning process is alive, read from their state files.
pub fn live_runs(state_dir: &Path) -> Vec<RunState> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    let mut runs: Vec<RunState> = entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| serde_json::from_str::<RunState>(&text).ok())
        .filter(|run| system::alive(run.pid))
        .collect();
    runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    runs
}

/// The run ids whose state file names a living process (read leniently: only `run_id` and
/// `pid`, so a state file of another version still protects its run).
fn live_run_ids(state_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .filter(|state| {
            state["pid"]
                .as_u64()
                .and_then(|pid| u32::try_from(pid).ok())
                .is_some_and(system::alive)
        })
        .filter_map(|state| state["run_id"].as_str().map(str::to_owned))
        .collect()
}

/// Removes the namespaces (and their processes) and state files of runs whose process is gone.
/// Returns the run ids removed.
pub fn clean_stale(state_dir: &Path) -> Result<Vec<String>, EmulateError> {
    let live = live_run_ids(state_dir);
    let mut removed = Vec::new();
    for namespace in system::namespaces()? {
        let Some(run_id) = run_id_of(&namespace) else {
            continue;
        };
        if live.iter().any(|l| l == run_id) {
            continue;
        }
        system::remove_namespace(&namespace)?;
        if !removed.iter().any(|r| r == run_id) {
            removed.push(run_id.to_owned());
        }
    }
    if let Ok(entries) = std::fs::read_dir(state_dir) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let run_id = name
                .strip_suffix(".json.partial")
                .or_else(|| name.strip_suffix(".json"))
                .unwrap_or(&name);
            if valid_run_id(run_id) && !live.iter().any(|l| l == run_id) {
                let _ = std::fs::remove_file(entry.path());
                let _ = std::fs::remove_dir_all(state_dir.join(run_id));
                if !removed.iter().any(|r| r == run_id) {
                    removed.push(run_id.to_owned());
                }
            }
        }
    }
    Ok(removed)
}

/// 8 hexadecimal digits from the clock and the process id.
fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mixed = (nanos as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
        ^ u64::from(std::process::id()).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    format!("{:08x}", (mixed ^ (mixed >> 32)) as u32)
}
