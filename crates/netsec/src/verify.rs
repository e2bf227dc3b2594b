//! One report for a network: every expected flow allowed, every forbidden flow denied, anything
//! else the groups let through, and lints. A blocked expected flow or an open forbidden flow is a
//! violation; everything else is a warning.

use std::collections::HashSet;

use serde::Serialize;

use crate::Topology;
use crate::eval::{Evaluator, Verdict};
use crate::model::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowKind {
    Expected,
    Forbidden,
    /// Not in the plan's lists, but let through by the groups.
    Unplanned,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowCheck {
    pub flow: Flow,
    pub kind: FlowKind,
    pub allowed: bool,
    /// Whether the outcome is what the plan wants (an unplanned open flow is "ok" but warned).
    pub ok: bool,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Violation,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub place: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub topology: String,
    pub flows: Vec<FlowCheck>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn violations(&self) -> usize {
        self.flows.iter().filter(|f| !f.ok).count()
            + self
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Violation)
                .count()
    }

    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }
}

/// Verifies `actual` (the plan itself, or the plan's tiers with live groups) against `plan`'s
/// flows, and lints `actual`'s groups (comparing with `plan`'s where they differ).
pub fn verify(plan: &Topology, actual: &Topology) -> Report {
    let evaluator = Evaluator::new(actual);
    let mut flows = Vec::new();
    let mut listed: HashSet<(&TierName, &TierName, u16)> = HashSet::new();
    for (kind, list) in [
        (FlowKind::Expected, &plan.expected),
        (FlowKind::Forbidden, &plan.forbidden),
    ] {
        for flow in list {
            listed.insert((&flow.from, &flow.to, flow.port));
            let verdict = match (evaluator.tier(&flow.from.0), evaluator.tier(&flow.to.0)) {
                (Ok(from), Ok(to)) => evaluator.evaluate(from, to, flow.protocol, flow.port),
                _ => Verdict::Denied {
                    missing: Vec::new(),
                },
            };
            let allowed = verdict.is_allowed();
            let ok = (kind == FlowKind::Expected) == allowed;
            flows.push(FlowCheck {
                flow: flow.clone(),
                kind,
                allowed,
                ok,
                verdict,
            });
        }
    }
    // Every pair the plan talks about, on every port it knows: anything else open is reported.
    let ports = plan.known_ports();
    let mut pairs: Vec<(&TierName, &TierName)> = plan
        .expected
        .iter()
        .chain(&plan.forbidden)
        .map(|f| (&f.from, &f.to))
        .collect();
    pairs.sort();
    pairs.dedup();
    for (from_name, to_name) in pairs {
        let (Ok(from), Ok(to)) = (evaluator.tier(&from_name.0), evaluator.tier(&to_name.0)) else {
            continue;
        };
        for &port in &ports {
            if listed.contains(&(from_name, to_name, port)) {
                continue;
            }
            let verdict = evaluator.evaluate(from, to, Protocol::Tcp, port);
            if verdict.is_allowed() {
                let flow = Flow {
                    from: from_name.clone(),
                    to: to_name.clone(),
                    protocol: Protocol::Tcp,
                    port,
                    why: "not in the plan".into(),
                };
                flows.push(FlowCheck {
                    flow,
                    kind: FlowKind::Unplanned,
                    allowed: true,
                    ok: true,
                    verdict,
                });
            }
        }
    }
    let mut findings = lint(plan, actual);
    for check in flows.iter().filter(|f| f.kind == FlowKind::Unplanned) {
        findings.push(Finding {
            code: "unplanned-flow",
            severity: Severity::Warning,
            place: format!(
                "{} -> {}:{}",
                check.flow.from, check.flow.to, check.flow.port
            ),
            message: "the groups allow this flow but the plan neither expects nor forbids it"
                .into(),
        });
    }
    Report {
        topology: plan.name.clone(),
        flows,
        findings,
    }
}

/// Lints `actual`'s groups: open ingress, CIDR sources where a group would do, missing
/// descriptions, unattached groups, and (against `plan`) egress wider than planned and drift.
pub fn lint(plan: &Topology, actual: &Topology) -> Vec<Finding> {
    let mut findings = Vec::new();
    let planned_groups = plan.group_index();
    let actual_groups = actual.group_index();
    let warn = |code, place: String, message: String| Finding {
        code,
        severity: Severity::Warning,
        place,
        message,
    };
    let attached: HashSet<&GroupId> = actual
        .tiers
        .iter()
        .flat_map(|t| &t.groups)
        .chain(actual.endpoints.iter().flat_map(|e| &e.groups))
        .collect();
    for group in &actual.groups {
        let place = |what: &str| format!("{}.{what}", group.id);
        if group.description.trim().is_empty() {
            findings.push(warn(
                "missing-description",
                place("description"),
                "the group has no description".into(),
            ));
        }
        if !attached.contains(&group.id) {
            findings.push(warn(
                "unattached-group",
                group.id.0.clone(),
                "no tier or endpoint carries this group".into(),
            ));
        }
        for (i, rule) in group.ingress.iter().enumerate() {
            let place = place(&format!("ingress[{i}]"));
            if rule.description.trim().is_empty() {
                findings.push(warn(
                    "missing-description",
                    place.clone(),
                    "the rule has no description".into(),
                ));
            }
            let Peer::Cidr(cidr) = &rule.peer else {
                continue;
            };
            let public_entry = plan.public_entry.iter().any(|entry| {
                entry.group == group.id
                    && rule
                        .ports
                        .is_some_and(|r| r.from == r.to && entry.ports.contains(&r.from))
            });
            if cidr.is_everything() && !public_entry {
                findings.push(warn(
                    "open-ingress",
                    place,
                    format!(
                        "{} {} is open to {cidr}: only the public entry's listed ports should be",
                        rule.protocol_label(),
                        rule.port_label()
                    ),
                ));
            } else if !cidr.is_everything()
                && (actual.vpc.cidr.contains_net(cidr) || cidr.contains_net(&actual.vpc.cidr))
            {
                findings.push(warn(
                    "cidr-where-group",
                    place,
                    format!("admits every address in {cidr}; a reference to the groups of the tiers that need it is tighter"),
                ));
            }
        }
        for (i, rule) in group.egress.iter().enumerate() {
            if rule.description.trim().is_empty() {
                findings.push(warn(
                    "missing-description",
                    place(&format!("egress[{i}]")),
                    "the rule has no description".into(),
                ));
            }
        }
        if let Some(planned) = planned_groups.get(&group.id).filter(|p| **p != group) {
            findings.extend(drift(planned, group));
        }
    }
    for planned in &plan.groups {
        if !actual_groups.contains_key(&planned.id) {
            findings.push(Finding {
                code: "missing-group",
                severity: Severity::Violation,
                place: planned.id.0.clone(),
                message: format!(
                    "the planned group {} ({}) does not exist",
                    planned.id, planned.name
                ),
            });
        }
    }
    findings
}

fn is_all_egress(rule: &Rule) -> bool {
    rule.protocol == Protocol::All && matches!(&rule.peer, Peer::Cidr(c) if c.is_everything())
}

/// Differences between a planned group and its live twin.
fn drift(planned: &SecurityGroup, live: &SecurityGroup) -> Vec<Finding> {
    let mut findings = Vec::new();
    if live.egress.iter().any(is_all_egress) && !planned.egress.iter().any(is_all_egress) {
        findings.push(Finding {
            code: "broad-egress",
            severity: Severity::Warning,
            place: format!("{}.egress", live.id),
            message: "all traffic may leave to 0.0.0.0/0 but the plan is tighter: revoke the default egress rule".into(),
        });
    }
    for (direction, live_rules, planned_rules) in [
        ("ingress", &live.ingress, &planned.ingress),
        ("egress", &live.egress, &planned.egress),
    ] {
        for rule in live_rules
            .iter()
            .filter(|r| !planned_rules.iter().any(|p| p.same_permission(r)))
        {
            if direction == "egress" && is_all_egress(rule) {
                continue; // Reported as broad-egress.
            }
            findings.push(Finding {
                code: "unplanned-rule",
                severity: Severity::Warning,
                place: format!("{}.{direction}", live.id),
                message: format!(
                    "{} {} {} is not in the plan",
                    rule.protocol_label(),
                    rule.port_label(),
                    rule.peer
                ),
            });
        }
        for rule in planned_rules
            .iter()
            .filter(|p| !live_rules.iter().any(|r| r.same_permission(p)))
        {
            findings.push(Finding {
                code: "missing-rule",
                severity: Severity::Warning,
                place: format!("{}.{direction}", live.id),
                message: format!(
                    "planned {} {} {} ({}) is missing",
                    rule.protocol_label(),
                    rule.port_label(),
                    rule.peer,
                    rule.description
                ),
            });
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::Profile;

    fn plan(profile: Profile) -> Topology {
        profile.default_topology()
    }

    fn codes(report: &Report) -> Vec<(&'static str, String)> {
        report
            .findings
            .iter()
            .map(|f| (f.code, f.place.clone()))
            .collect()
    }

    #[test]
    fn the_alb_plan_verifies_clean() {
        let topology = plan(Profile::Alb);
        let report = verify(&topology, &topology);
        assert_eq!(report.violations(), 0, "{report:#?}");
        assert_eq!(report.warnings(), 0, "{:?}", codes(&report));
        assert_eq!(
            report
                .flows
                .iter()
                .filter(|f| f.kind == FlowKind::Expected)
                .count(),
            11
        );
    }

    #[test]
    fn the_gateway_plan_has_the_seeds_lints_but_no_violation() {
        let topology = plan(Profile::Gateway);
        let report = verify(&topology, &topology);
        assert_eq!(report.violations(), 0, "{report:#?}");
        let found = codes(&report);
        // The tasks admit only the NLB's group; the endpoints keep the seed's VPC rule.
        assert!(
            !found
                .iter()
                .any(|(_, place)| place.starts_with("mcp-server")),
            "{found:?}"
        );
        assert!(
            found.contains(&("cidr-where-group", "vpc-endpoints.ingress[0]".into())),
            "{found:?}"
        );
    }

    #[test]
    fn the_seeds_vpc_rule_on_the_gateway_tasks_is_a_choice_the_lint_reports() {
        let mut options = crate::profiles::ProfileOptions::for_profile(Profile::Gateway);
        options.seed_vpc_ingress = true;
        let topology = Profile::Gateway.topology(&options);
        let report = verify(&topology, &topology);
        assert_eq!(report.violations(), 0, "{report:#?}");
        let found = codes(&report);
        assert!(
            found.contains(&("cidr-where-group", "mcp-server.ingress[1]".into())),
            "{found:?}"
        );
        // A live VPC rule the plan did not choose is drift as well as a forbidden flow.
        let plan = plan(Profile::Gateway);
        let report = verify(&plan, &topology);
        assert!(report.violations() >= 1, "{report:#?}");
        assert!(
            codes(&report).contains(&("unplanned-rule", "mcp-server.ingress".into())),
            "{:?}",
            codes(&report)
        );
    }

    #[test]
    fn the_gateway_endpoints_keep_the_seeds_vpc_rule() {
        let topology = plan(Profile::Gateway);
        let found = codes(&verify(&topology, &topology));
        assert!(
            found.contains(&("cidr-where-group", "vpc-endpoints.ingress[0]".into())),
            "{found:?}"
        );
    }

    #[test]
    fn the_seed_000_script_as_applied_is_reported() {
        // What seed 000's script leaves behind: the default allow-all egress on the MCP ECS group
        // (never revoked), no descriptions, and nothing for the API tasks or the database.
        let topology = plan(Profile::Alb);
        let mut live = topology.clone();
        let mcp_ecs = live
            .groups
            .iter_mut()
            .find(|g| g.id.0 == "mcp-ecs")
            .unwrap();
        mcp_ecs
            .egress
            .push(Rule::all_traffic(Peer::Cidr(Cidr::everything_v4()), ""));
        for rule in &mut mcp_ecs.ingress {
            rule.description.clear();
        }
        live.groups.retain(|g| g.id.0 != "database");
        let report = verify(&topology, &live);
        let found = codes(&report);
        assert!(
            found.contains(&("broad-egress", "mcp-ecs.egress".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&("missing-description", "mcp-ecs.ingress[0]".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&("missing-group", "database".into())),
            "{found:?}"
        );
        // The expected api-ecs -> database flow is now blocked: a violation.
        let blocked: Vec<_> = report
            .flows
            .iter()
            .filter(|f| !f.ok)
            .map(|f| (f.flow.from.0.as_str(), f.flow.to.0.as_str()))
            .collect();
        assert!(blocked.contains(&("api-ecs", "database")), "{blocked:?}");
        assert!(report.violations() >= 2);
    }

    #[test]
    fn an_open_forbidden_flow_is_a_violation() {
        let topology = plan(Profile::Alb);
        let mut live = topology.clone();
        let database = live
            .groups
            .iter_mut()
            .find(|g| g.id.0 == "database")
            .unwrap();
        database
            .ingress
            .push(Rule::tcp(5432, Peer::Cidr(Cidr::everything_v4()), "oops"));
        let report = verify(&topology, &live);
        let open: Vec<_> = report
            .flows
            .iter()
            .filter(|f| !f.ok)
            .map(|f| (f.flow.from.0.as_str(), f.flow.to.0.as_str(), f.flow.port))
            .collect();
        assert!(open.contains(&("internet", "database", 5432)), "{open:?}");
        // The MCP ALB's all-traffic egress now reaches it too; the MCP tasks' tight egress does not.
        assert!(open.contains(&("mcp-alb", "database", 5432)), "{open:?}");
        assert!(!open.contains(&("mcp-ecs", "database", 5432)), "{open:?}");
        assert!(codes(&report).contains(&("open-ingress", "database.ingress[1]".into())));
    }
}
