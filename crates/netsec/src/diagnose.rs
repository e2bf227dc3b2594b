//! `diagnose`: why a flow between two tiers works or not, the way the seeds' troubleshooting
//! sections reason, automated: the missing rule on which group, the command that adds it, and
//! what else to check when the groups are not the problem.

use serde::Serialize;

use crate::awscli::{authorize_command, revoke_command};
use crate::eval::{Direction, Evaluator, RuleRef, Verdict};
use crate::model::*;
use crate::{NetsecError, Topology};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fix {
    pub group: GroupId,
    pub group_name: String,
    pub direction: Direction,
    pub rule: Rule,
    /// The AWS CLI command that adds the rule (group ids in `$…_SG_ID` variables).
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub from: TierName,
    pub to: TierName,
    pub protocol: Protocol,
    pub port: u16,
    pub allowed: bool,
    /// What the plan says about this flow, if anything.
    pub planned: Option<&'static str>,
    pub verdict: Verdict,
    /// Rules to add when a flow the plan does not forbid is blocked.
    pub fixes: Vec<Fix>,
    /// Commands that close a flow the plan forbids but the groups let through.
    pub revokes: Vec<String>,
    /// The rules that let it through (when allowed).
    pub allowed_by: Vec<RuleRef>,
    /// Checks beyond security groups, from the seeds' troubleshooting lists.
    pub also_check: Vec<String>,
}

/// Diagnoses `from` → `to` on `port` in `actual` (the plan, or live groups), judged by `plan`.
pub fn diagnose(
    plan: &Topology,
    actual: &Topology,
    from: &str,
    to: &str,
    protocol: Protocol,
    port: u16,
) -> Result<Diagnosis, NetsecError> {
    if port == 0 {
        return Err(NetsecError::invalid("--port", "port 0 is outside 1-65535"));
    }
    let (from_tier, to_tier) = (actual.tier(from)?, actual.tier(to)?);
    let verdict = Evaluator::new(actual).evaluate(from_tier, to_tier, protocol, port);
    let matches = |flow: &&Flow| flow.from.0 == from && flow.to.0 == to && flow.port == port;
    let planned = if plan.expected.iter().any(|f| matches(&f)) {
        Some("expected")
    } else if plan.forbidden.iter().any(|f| matches(&f)) {
        Some("forbidden")
    } else {
        None
    };
    let (fixes, allowed_by) = match &verdict {
        // A forbidden flow that is blocked is as it should be: nothing to add.
        Verdict::Denied { .. } if planned == Some("forbidden") => (Vec::new(), Vec::new()),
        Verdict::Denied { missing } => (
            missing
                .iter()
                .map(|m| Fix {
                    group: m.group.clone(),
                    group_name: actual
                        .group(&m.group)
                        .map(|g| g.name.clone())
                        .unwrap_or_else(|| m.group.0.clone()),
                    direction: m.direction,
                    rule: m.rule.clone(),
                    command: authorize_command(&m.group, m.direction, &m.rule),
                })
                .collect(),
            Vec::new(),
        ),
        Verdict::Allowed { egress, ingress } => {
            (Vec::new(), egress.iter().chain(ingress).cloned().collect())
        }
    };
    let revokes = if planned == Some("forbidden") {
        allowed_by
            .iter()
            .filter_map(|by| {
                let group = actual.group(&by.group)?;
                let rules = match by.direction {
                    Direction::Ingress => &group.ingress,
                    Direction::Egress => &group.egress,
                };
                rules
                    .get(by.index)
                    .map(|rule| revoke_command(&by.group, by.direction, rule))
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Diagnosis {
        from: from_tier.name.clone(),
        to: to_tier.name.clone(),
        protocol,
        port,
        allowed: verdict.is_allowed(),
        planned,
        also_check: also_check(from_tier, to_tier),
        verdict,
        fixes,
        revokes,
        allowed_by,
    })
}

/// The seeds' non-security-group checks that fit this pair of tiers.
fn also_check(from: &Tier, to: &Tier) -> Vec<String> {
    let mut checks = vec![
        "The subnets' route tables route between the two tiers (and to a NAT gateway or endpoints for AWS services)".to_owned(),
        "Network ACLs on the subnets allow the port and the ephemeral return ports".to_owned(),
    ];
    if to.name.0.ends_with("-alb") || to.name.0 == "mcp-server" {
        checks.push(format!("The {} listener or target group is configured for this port, and its targets pass their /health checks", to.name));
    }
    if from.placement == Placement::Vpc && to.name.0.ends_with("-alb") {
        checks.push(format!("Tasks in {} resolve the load balancer's DNS name (VPC DNS resolution and hostnames on)", from.name));
    }
    if from.placement == Placement::Internet {
        checks.push("DNS (Route 53 or the load balancer name) points at the public entry, and the certificate matches".to_owned());
    }
    if to.name.0.ends_with("-ecs") || to.name.0 == "mcp-server" {
        checks.push(format!(
            "The {} ECS tasks are running; their logs in CloudWatch show why they fail otherwise",
            to.name
        ));
    }
    checks.push("Both ends are in the same VPC".to_owned());
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::{Profile, ProfileOptions};

    #[test]
    fn a_broken_chain_gets_the_missing_rule_and_its_command() {
        let plan = Profile::Alb.topology(&ProfileOptions::for_profile(Profile::Alb));
        let mut live = plan.clone();
        live.groups
            .iter_mut()
            .find(|g| g.id.0 == "api-alb")
            .unwrap()
            .ingress
            .clear();
        let diagnosis = diagnose(&plan, &live, "mcp-ecs", "api-alb", Protocol::Tcp, 443).unwrap();
        assert!(!diagnosis.allowed);
        assert_eq!(diagnosis.planned, Some("expected"));
        assert_eq!(diagnosis.fixes.len(), 1);
        let fix = &diagnosis.fixes[0];
        assert_eq!(
            (fix.group.0.as_str(), fix.group_name.as_str()),
            ("api-alb", "membrain-api-alb-sg")
        );
        assert!(
            fix.command.starts_with(
                "aws ec2 authorize-security-group-ingress --group-id \"${API_ALB_SG_ID}\""
            ),
            "{}",
            fix.command
        );
        assert!(fix.command.contains("${MCP_ECS_SG_ID}"));
        assert!(diagnosis.also_check.iter().any(|c| c.contains("DNS name")));
    }

    #[test]
    fn forbidden_flows_get_no_fix_when_blocked_and_revokes_when_open() {
        let plan = Profile::Alb.topology(&ProfileOptions::for_profile(Profile::Alb));
        let blocked = diagnose(&plan, &plan, "mcp-ecs", "database", Protocol::Tcp, 5432).unwrap();
        assert_eq!(
            (blocked.allowed, blocked.planned),
            (false, Some("forbidden"))
        );
        assert!(blocked.fixes.is_empty() && blocked.revokes.is_empty());
        let mut live = plan.clone();
        let database = live
            .groups
            .iter_mut()
            .find(|g| g.id.0 == "database")
            .unwrap();
        database.ingress.push(Rule::tcp(
            5432,
            Peer::Cidr(Cidr::everything_v4()),
            "too open",
        ));
        let open = diagnose(&plan, &live, "internet", "database", Protocol::Tcp, 5432).unwrap();
        assert!(open.allowed);
        assert_eq!(open.revokes.len(), 1);
        assert!(
            open.revokes[0].starts_with(
                "aws ec2 revoke-security-group-ingress --group-id \"${DATABASE_SG_ID}\""
            ),
            "{}",
            open.revokes[0]
        );
        assert!(open.revokes[0].contains("0.0.0.0/0"));
    }

    #[test]
    fn an_allowed_flow_names_its_rules_and_unknown_tiers_are_errors() {
        let plan = Profile::Alb.topology(&ProfileOptions::for_profile(Profile::Alb));
        let diagnosis = diagnose(&plan, &plan, "internet", "mcp-alb", Protocol::Tcp, 443).unwrap();
        assert!(diagnosis.allowed);
        assert_eq!(
            diagnosis.allowed_by.len(),
            1,
            "the internet has no egress rules; the ALB's ingress decides"
        );
        assert_eq!(
            diagnosis.allowed_by[0].description,
            "Allow HTTPS from internet"
        );
        let err = diagnose(&plan, &plan, "internet", "nowhere", Protocol::Tcp, 443).unwrap_err();
        assert!(
            err.to_string().contains("mcp-alb"),
            "the error lists the tiers: {err}"
        );
        assert!(diagnose(&plan, &plan, "internet", "mcp-alb", Protocol::Tcp, 0).is_err());
    }
}
