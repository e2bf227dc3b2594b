//! A network plan emulated on this machine, to check that the model's verdicts are what real
//! packets see.
//!
//! * [`plan`]: [`EmulationPlan`], the namespaces, addresses and probed ports of a topology,
//!   decided without I/O; a topology that cannot be emulated is refused here, before anything
//!   exists.
//! * [`nft`]: a tier's security groups as an nftables ruleset (pure, AWS semantics).
//! * [`emulation`]: [`Emulation`], the network built with `ip` and `nft`, a TCP listener on every
//!   planned port, probes, rule swaps, and removal guaranteed by `Drop` and [`clean_stale`].
//! * [`probe`]: [`ProbeReport`], the observed matrix beside `membrain_netsec::eval`'s verdicts.
//! * [`services`]: real processes for the `alb` chain (nginx, `membrain mcp`/`api`, PostgreSQL)
//!   and the MCP call from the internet through them.
//! * [`system`]: running commands, the root and tool checks.
//!
//! ```no_run
//! use membrain_netemu::{EmulateOptions, Emulation, ProbeReport};
//! use membrain_netsec::profiles::Profile;
//!
//! let topology = Profile::Alb.default_topology();
//! let emulation = Emulation::start(&topology, &EmulateOptions::default())?;
//! let observed = emulation.probe(std::time::Duration::from_millis(500))?;
//! let report = ProbeReport::new(emulation.run_id(), emulation.topology(), &observed);
//! assert_eq!(report.disagreements, 0);
//! # Ok::<(), membrain_netemu::EmulateError>(())
//! ```
//!
//! Architecture invariant: what a plan means (whether a flow is allowed) is decided by
//! `membrain-netsec` only; this crate turns the plan into namespaces and rulesets and reports
//! what it observes. It needs root, `ip`, `nft`, `python3` and `bash`, and creates nothing
//! outside namespaces named `mb-<run id>-…` and its state directory.

pub mod emulation;
mod error;
pub mod nft;
pub mod plan;
pub mod probe;
pub mod services;
pub mod system;

pub use emulation::{
    DEFAULT_STATE_DIR, EmulateOptions, Emulation, RunState, clean_stale, live_runs, mcp_call_state,
    probe_plan,
};
pub use error::EmulateError;
pub use plan::{EmulationPlan, INTERNET_PROBE_PORT};
pub use probe::{FlowProbe, McpCall, Observation, ProbeReport};
pub use services::ServiceOptions;
