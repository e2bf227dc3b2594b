//! `membrain network emulate | probe` through the real binary, as root (CI): the `alb` chain
//! with its real processes (nginx, membrain mcp and api, PostgreSQL) probed beside the model and
//! one MCP call from the internet through all of them; bad input refused before anything exists.
//! The binary removes its namespaces itself (its `Emulation` is dropped on every path).

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use std::time::Instant;

use serde_json::Value;
use support::membrain_output;

#[tokio::test]
async fn probe_runs_the_alb_chain_for_real_and_an_mcp_call_crosses_it() {
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
    assert_eq!(report["flows"].as_array().unwrap().len(), 35);
    assert_eq!(report["mcp_call"]["ok"], true, "{report:#}");
    let run_id = report["run_id"].as_str().unwrap();
    let (_, namespaces, _) = ip_netns_list().await;
    assert!(!namespaces.contains(run_id), "{namespaces}");
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
    let (ok, stdout, stderr) = membrain_output(&["network", "emulate", "--clean"], &[]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("nothing to clean") || stdout.contains("removed"),
        "{stdout}"
    );
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
