//! `membrain network emulate | probe` through the real binary, as root (CI): the `alb` chain
//! with its real processes (nginx, membrain mcp and api, PostgreSQL) probed beside the model and
//! one MCP call from the internet through all of them; bad input refused before anything exists.
//! The binary removes its namespaces itself (its `Emulation` is dropped on every path).

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use std::time::Instant;

use serde_json::Value;
use support::membrain_output;

/// Removes what a failed test's killed `membrain` left (its namespaces and processes), on every
/// path out of a test: `membrain network emulate --clean` removes runs whose process is gone.
struct CleanOnDrop;

impl Drop for CleanOnDrop {
    fn drop(&mut self) {
        // A process killed on drop may take a moment to be reaped; clean until nothing is left.
        for _ in 0..5 {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_membrain"))
                .args(["network", "emulate", "--clean"])
                .output();
            if output.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("nothing to clean"))
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

#[tokio::test]
async fn probe_runs_the_alb_chain_for_real_and_an_mcp_call_crosses_it() {
    let _clean = CleanOnDrop;
    let started = Instant::now();
    let (ok, stdout, stderr) =
        membrain_output(&["network", "probe", "--profile", "alb", "--json"], &[]).await;
    println!(
        "alb with real services: emulate + probe + MCP call + teardown in {:?}",
        started.elapsed()
    );
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["disagreements"], 0, "{report:#}");
    // 8 tiers and 10 targets (the 9 tier:ports the flows name and the internet's HTTPS port),
    // each probed from the 7 other tiers.
    assert_eq!(report["flows"].as_array().unwrap().len(), 70);
    assert_eq!(report["mcp_call"]["ok"], true, "{report:#}");
    let run_id = report["run_id"].as_str().unwrap();
    let (_, namespaces, _) = ip_netns_list().await;
    assert!(!namespaces.contains(run_id), "{namespaces}");
}

/// The gateway: moto behind the VPC endpoints holds the key map, the MCP server on 8080 reads
/// it through them, and API Gateway's stand-in asks `membrain authorizer` before forwarding over
/// the VPC link (a wrong key is refused, the run's key reaches `ts_list_tables`). The time series
/// live in PostgreSQL in the database tier by default, or in Timestream (moto) behind its
/// endpoints when the plan chooses it.
#[tokio::test]
async fn probe_runs_the_gateway_chain_for_real_and_the_authorizer_decides() {
    let _clean = CleanOnDrop;
    // The test environment's Python tools (moto_server); the helper clears MEMBRAIN_* variables.
    let tools = std::env::var("MEMBRAIN_TOOLS_BIN").unwrap_or_default();
    for (store, database_flows) in [("postgres", true), ("timestream", false)] {
        let started = Instant::now();
        let (ok, stdout, stderr) = membrain_output(
            &[
                "network",
                "probe",
                "--profile",
                "gateway",
                "--gateway-ts-store",
                store,
                "--json",
            ],
            &[("MEMBRAIN_TOOLS_BIN", tools.as_str())],
        )
        .await;
        println!(
            "gateway ({store}) with real services: emulate + probe + MCP call + teardown in {:?}",
            started.elapsed()
        );
        assert!(ok, "{store}: stdout: {stdout}\nstderr: {stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["disagreements"], 0, "{report:#}");
        assert_eq!(report["mcp_call"]["ok"], true, "{report:#}");
        assert!(
            report["mcp_call"]["detail"]
                .as_str()
                .unwrap()
                .contains("tables"),
            "{report:#}"
        );
        let into_database: Vec<&Value> = report["flows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["to"] == "database" && f["observed_open"] == true)
            .collect();
        if database_flows {
            assert_eq!(
                into_database.len(),
                1,
                "only the MCP server reaches the database: {into_database:?}"
            );
            assert_eq!(into_database[0]["from"], "mcp-server");
        } else {
            assert!(into_database.is_empty(), "{into_database:?}");
        }
    }
}

/// A topology file of one's own (here the alb plan with the database tier renamed, so no chain
/// of real processes applies): plain listeners, the same agreement with the model, no MCP call.
#[tokio::test]
async fn probe_emulates_a_topology_file_with_listeners() {
    let _clean = CleanOnDrop;
    let (ok, plan, stderr) =
        membrain_output(&["network", "plan", "--profile", "alb", "--json"], &[]).await;
    assert!(ok, "{stderr}");
    let renamed = plan.replace("\"database\"", "\"rds\"");
    assert_ne!(renamed, plan);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.json");
    std::fs::write(&file, renamed).unwrap();
    let (ok, stdout, stderr) = membrain_output(
        &[
            "network",
            "probe",
            "--topology",
            file.to_str().unwrap(),
            "--json",
        ],
        &[],
    )
    .await;
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["disagreements"], 0, "{report:#}");
    assert!(report["mcp_call"].is_null(), "{report:#}");
    let to_rds = report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["to"] == "rds" && f["observed_open"] == true)
        .count();
    assert_eq!(
        to_rds, 1,
        "only the API tasks reach the database: {report:#}"
    );
}

#[tokio::test]
async fn a_topology_that_cannot_be_emulated_is_refused_with_the_reason() {
    let (ok, _, stderr) = membrain_output(
        &[
            "network",
            "emulate",
            "--profile",
            "alb",
            "--vpc-cidr",
            "198.51.0.0/16",
        ],
        &[],
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("overlapping CIDRs"), "{stderr}");
}

/// `emulate` until Ctrl-C: another process probes the running network, and Ctrl-C removes every
/// namespace. A run killed with SIGKILL leaves its namespaces, and `emulate --clean` removes them.
#[tokio::test]
async fn ctrl_c_removes_the_network_and_clean_removes_a_killed_runs_leftovers() {
    let _clean = CleanOnDrop;
    let (mut child, run_id) = start_emulate().await;
    let (ok, stdout, stderr) =
        membrain_output(&["network", "probe", "--run", &run_id, "--json"], &[]).await;
    assert!(ok, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["run_id"], run_id.as_str());
    assert_eq!(report["disagreements"], 0);
    let pid = child.id().unwrap().to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{status}");
    assert!(!ip_netns_list().await.1.contains(&run_id));

    let (mut child, run_id) = start_emulate().await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(
        ip_netns_list().await.1.contains(&run_id),
        "a killed run cannot remove its namespaces"
    );
    let (ok, stdout, stderr) = membrain_output(&["network", "emulate", "--clean"], &[]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&run_id), "{stdout}");
    assert!(!ip_netns_list().await.1.contains(&run_id));
}

/// Starts `membrain network emulate --profile alb --listeners-only` and waits until it is up;
/// returns the process and the run id it printed.
async fn start_emulate() -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = support::membrain()
        .args(["network", "emulate", "--profile", "alb", "--listeners-only"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut run_id = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if run_id.is_none() {
            run_id = line
                .strip_prefix("run ")
                .and_then(|rest| rest.split(':').next())
                .map(str::to_owned);
        }
        if line.contains("Ctrl-C removes it") {
            // Keep reading in the background so the child never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, run_id.expect("the run id line"));
        }
    }
    panic!("membrain network emulate ended before it was up");
}

async fn ip_netns_list() -> (bool, String, String) {
    let output = tokio::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
