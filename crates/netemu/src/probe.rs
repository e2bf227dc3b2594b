//! The observed matrix beside the model's verdicts (pure): every disagreement is a failure.

use membrain_netsec::eval::Evaluator;
use membrain_netsec::{Protocol, TierName, Topology};
use serde::{Deserialize, Serialize};

/// One TCP connect attempt: did `from` reach `to` on `port`?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub from: TierName,
    pub to: TierName,
    pub port: u16,
    pub open: bool,
}

/// An observation and what the model says about the same flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowProbe {
    pub from: TierName,
    pub to: TierName,
    pub port: u16,
    pub observed_open: bool,
    pub model_allowed: bool,
    /// `expected` or `forbidden` when the plan names this flow.
    pub planned: Option<String>,
}

impl FlowProbe {
    pub fn agrees(&self) -> bool {
        self.observed_open == self.model_allowed
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub run_id: String,
    pub flows: Vec<FlowProbe>,
    pub disagreements: usize,
    /// The MCP call from the internet through the chain, when real services run.
    pub mcp_call: Option<McpCall>,
}

/// How the MCP call through the whole chain went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpCall {
    pub ok: bool,
    /// The tool's answer, or why the call failed.
    pub detail: String,
}

impl ProbeReport {
    /// Judges `observations` by `topology` (the rules that were loaded when probing).
    pub fn new(run_id: &str, topology: &Topology, observations: &[Observation]) -> Self {
        let evaluator = Evaluator::new(topology);
        let mut flows: Vec<FlowProbe> = observations
            .iter()
            .map(|o| {
                let model_allowed = evaluator
                    .evaluate_names(&o.from.0, &o.to.0, Protocol::Tcp, o.port)
                    .is_ok_and(|v| v.is_allowed());
                let named = |flows: &[membrain_netsec::Flow]| {
                    flows
                        .iter()
                        .any(|f| f.from == o.from && f.to == o.to && f.port == o.port)
                };
                let planned = if named(&topology.expected) {
                    Some("expected".to_owned())
                } else if named(&topology.forbidden) {
                    Some("forbidden".to_owned())
                } else {
                    None
                };
                FlowProbe {
                    from: o.from.clone(),
                    to: o.to.clone(),
                    port: o.port,
                    observed_open: o.open,
                    model_allowed,
                    planned,
                }
            })
            .collect();
        let order = |name: &TierName| topology.tiers.iter().position(|t| t.name == *name);
        flows.sort_by_key(|f| (order(&f.from), order(&f.to), f.port));
        let disagreements = flows.iter().filter(|f| !f.agrees()).count();
        Self {
            run_id: run_id.to_owned(),
            flows,
            disagreements,
            mcp_call: None,
        }
    }

    /// Records the MCP call's outcome.
    pub fn with_mcp_call<E: std::fmt::Display>(
        mut self,
        outcome: Option<Result<serde_json::Value, E>>,
    ) -> Self {
        self.mcp_call = outcome.map(|result| match result {
            Ok(answer) => McpCall {
                ok: true,
                detail: answer.to_string(),
            },
            Err(error) => McpCall {
                ok: false,
                detail: error.to_string(),
            },
        });
        self
    }

    /// A disagreement or a failed MCP call.
    pub fn failed(&self) -> bool {
        self.disagreements > 0 || self.mcp_call.as_ref().is_some_and(|c| !c.ok)
    }

    pub fn disagreeing(&self) -> impl Iterator<Item = &FlowProbe> {
        self.flows.iter().filter(|f| !f.agrees())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use membrain_netsec::profiles::Profile;

    fn observation(from: &str, to: &str, port: u16, open: bool) -> Observation {
        Observation {
            from: TierName(from.into()),
            to: TierName(to.into()),
            port,
            open,
        }
    }

    #[test]
    fn disagreements_are_counted_both_ways() {
        let topology = Profile::Alb.default_topology();
        let report = ProbeReport::new(
            "0123abcd",
            &topology,
            &[
                observation("internet", "mcp-alb", 443, true),
                observation("internet", "mcp-ecs", 8100, true),
                observation("mcp-alb", "mcp-ecs", 8100, false),
                observation("mcp-ecs", "database", 5432, false),
            ],
        );
        assert_eq!(report.disagreements, 2);
        let wrong: Vec<_> = report
            .disagreeing()
            .map(|f| (f.to.0.as_str(), f.port, f.planned.as_deref()))
            .collect();
        assert_eq!(
            wrong,
            [
                ("mcp-ecs", 8100, Some("forbidden")),
                ("mcp-ecs", 8100, Some("expected"))
            ]
        );
    }
}
