//! `membrain network emulate | probe`: the plan brought up in network namespaces on this machine
//! (`membrain-netemu`), and the observed flows beside the model's verdicts.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use membrain_netemu::{
    DEFAULT_STATE_DIR, EmulateOptions, Emulation, ProbeReport, RunState, ServiceOptions,
    clean_stale, live_runs, mcp_call_state, probe_plan,
};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{EmulateArgs, ProbeArgs};
use crate::output::say;

use super::network::topology;

/// `network emulate`: build the network and keep it until Ctrl-C or SIGTERM; `--clean` only
/// removes what crashed runs left.
pub async fn emulate(args: EmulateArgs) -> Result<()> {
    if args.clean {
        let removed =
            tokio::task::spawn_blocking(move || clean_stale(Path::new(DEFAULT_STATE_DIR)))
                .await
                .context("the clean-up task failed")??;
        if removed.is_empty() {
            say!("nothing to clean: no namespaces or state of a finished run");
        } else {
            say!("removed the leftovers of run(s) {}", removed.join(", "));
        }
        return Ok(());
    }
    let plan = topology(&args.source)?;
    // Registered before anything is built: a Ctrl-C during start-up is held, and the network
    // that start-up made is removed right after.
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let started = Instant::now();
    let options = emulate_options(args.listeners_only)?;
    let emulation = tokio::task::spawn_blocking(move || Emulation::start(&plan, &options))
        .await
        .context("the emulation task failed")?
        .context("starting the emulation")?;
    print_layout(emulation.state(), started.elapsed());
    say!(
        "probe it with `membrain network probe --run {}`; Ctrl-C removes it",
        emulation.run_id()
    );
    tokio::select! {
        _ = interrupt.recv() => {},
        _ = terminate.recv() => {},
    }
    let run_id = emulation.run_id().to_owned();
    tokio::task::spawn_blocking(move || emulation.teardown())
        .await
        .context("the teardown task failed")?
        .with_context(|| format!("tearing down run {run_id}"))?;
    say!("run {run_id} removed");
    Ok(())
}

/// `network probe`: every planned tier:port from every tier, beside the model's verdict. Probes
/// a running emulation (`--run`, or the only one when no topology is named), else brings the
/// named topology up for the probe.
pub async fn probe(args: ProbeArgs) -> Result<()> {
    let timeout = Duration::from_millis(args.timeout_ms.max(10));
    let runs = live_runs(Path::new(DEFAULT_STATE_DIR));
    let attached: Option<RunState> = match &args.run {
        Some(run_id) => Some(
            runs.iter()
                .find(|r| r.run_id == *run_id)
                .cloned()
                .with_context(|| {
                    format!(
                        "no running emulation has run id {run_id:?}; running: {}",
                        listed(&runs)
                    )
                })?,
        ),
        // A topology named on the command line is emulated for this probe; with none, the one
        // running emulation is probed.
        None if args.source.profile.is_some() || args.source.topology.is_some() => None,
        None if runs.len() > 1 => bail!(
            "several emulations are running ({}): choose one with --run",
            listed(&runs)
        ),
        None => runs.into_iter().next(),
    };
    let started = Instant::now();
    let report = match attached {
        Some(run) => tokio::task::spawn_blocking(move || {
            probe_plan(&run.plan, timeout).map(|observed| {
                ProbeReport::new(&run.run_id, &run.topology, &observed)
                    .with_mcp_call(mcp_call_state(&run, Path::new(DEFAULT_STATE_DIR)))
            })
        })
        .await
        .context("the probe task failed")??,
        None => {
            let plan = topology(&args.source)?;
            // Held while the emulation exists: a Ctrl-C now waits for the (seconds-long) probe
            // and its teardown instead of killing the process with the namespaces in place.
            let _interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
            let options = emulate_options(args.listeners_only)?;
            tokio::task::spawn_blocking(move || {
                let emulation = Emulation::start(&plan, &options)?;
                let observed = emulation.probe(timeout)?;
                let report = ProbeReport::new(emulation.run_id(), emulation.topology(), &observed)
                    .with_mcp_call(emulation.mcp_call());
                emulation.teardown()?;
                Ok::<_, membrain_netemu::EmulateError>(report)
            })
            .await
            .context("the probe task failed")?
            .context("emulating and probing")?
        }
    };
    let elapsed = started.elapsed();
    if args.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
        if let Some(call) = &report.mcp_call {
            say!(
                "MCP call from the internet through the chain: {} {}",
                if call.ok { "ok" } else { "FAILED" },
                call.detail
            );
        }
        say!(
            "{} flows probed in {:.2} s; {} disagreement(s)",
            report.flows.len(),
            elapsed.as_secs_f64(),
            report.disagreements
        );
    }
    if report.disagreements > 0 {
        bail!(
            "the emulated network disagrees with the model on {} flow(s)",
            report.disagreements
        );
    }
    if let Some(call) = report.mcp_call.as_ref().filter(|c| !c.ok) {
        bail!(
            "the MCP call from the internet through the chain failed: {}",
            call.detail
        );
    }
    Ok(())
}

/// Real services run this executable as `membrain api`/`mcp`, with a fresh key for the run,
/// and use the embedding model already installed in the data directory.
fn emulate_options(listeners_only: bool) -> Result<EmulateOptions> {
    let mut options = EmulateOptions::default();
    if listeners_only {
        return Ok(options);
    }
    let membrain = std::env::current_exe().context("finding the membrain executable")?;
    let mut random = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .context("reading /dev/urandom for the run's API key")?;
    let model_data_dir = std::env::var_os("MEMBRAIN_DATA_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("membrain")));
    options.services = Some(ServiceOptions {
        membrain,
        api_key: format!("mb_emulate_{}", hex::encode(random)),
        model_data_dir,
        // Where the test environment keeps its Python tools; else `moto_server` on the PATH.
        moto_server: std::env::var_os("MEMBRAIN_TOOLS_BIN")
            .map(|dir| std::path::PathBuf::from(dir).join("moto_server"))
            .filter(|path| path.is_file()),
    });
    Ok(options)
}

fn listed(runs: &[RunState]) -> String {
    if runs.is_empty() {
        return "none".to_owned();
    }
    runs.iter()
        .map(|r| r.run_id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_layout(state: &RunState, took: Duration) {
    let plan = &state.plan;
    say!(
        "run {}: VPC {} (router {} in {}), up in {:.2} s",
        plan.run_id,
        plan.vpc_cidr,
        plan.router,
        plan.vpc_namespace,
        took.as_secs_f64()
    );
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(["Tier", "Namespace", "Address", "Listening"]);
    for tier in &plan.tiers {
        table.add_row([
            tier.name.0.clone(),
            tier.namespace.clone(),
            tier.address.to_string(),
            tier.ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    say!("{table}");
    if let Some(key) = &state.api_key {
        let run_dir = Path::new(DEFAULT_STATE_DIR).join(&plan.run_id);
        if let Some(entry) = membrain_netemu::services::entry_point(plan, &run_dir) {
            say!("MCP: {entry}");
        }
        say!("API key of this run (tenant default): {key}");
    }
}

fn print_report(report: &ProbeReport) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(["From", "To", "Port", "Observed", "Model", "Plan", ""]);
    for flow in &report.flows {
        table.add_row([
            flow.from.0.clone(),
            flow.to.0.clone(),
            flow.port.to_string(),
            if flow.observed_open { "open" } else { "closed" }.to_owned(),
            if flow.model_allowed {
                "allowed"
            } else {
                "denied"
            }
            .to_owned(),
            flow.planned.clone().unwrap_or_default(),
            if flow.agrees() { "" } else { "DISAGREES" }.to_owned(),
        ]);
    }
    say!("run {}\n{table}", report.run_id);
}
