//! `diagnose`: why a flow between two tiers works or not, the way the seeds' troubleshooting
//! sections reason, automated: every blocker along the path (the source's egress, the target's
//! ingress, the groups of the interface endpoints behind the target, a load balancer without a
//! listener on the port), each with a reason code, the missing rule on which group and the
//! command that adds it, and what else to check when the groups are not the problem.
//!
//! The reason codes follow VPC Reachability Analyzer's explanation codes, so a diagnosis reads
//! like the analysis AWS would run on the live network: `ENI_SG_RULES_MISMATCH` (a security
//! group of an interface on the path has no rule for the traffic; AWS uses it for load balancers,
//! tasks and endpoint interfaces alike) and `ELBV2_LISTENERS_MISMATCH` (the load balancer has no
//! listener that accepts the traffic). Interface endpoints accept HTTPS only, which Reachability
//! Analyzer has no code for; that one is ours, in the same style: `VPCE_PORT_MISMATCH`.

use serde::Serialize;

use crate::awscli::{authorize_command, revoke_command};
use crate::eval::{Direction, Evaluator, MissingRule, RuleRef, Verdict};
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

/// Where on the path a blocker sits, in the order traffic meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockerKind {
    /// The source's groups do not let the traffic out.
    SourceEgress,
    /// The target's groups do not let the traffic in.
    TargetIngress,
    /// The groups of the interface endpoints the target stands for do not let it in.
    EndpointGroup,
    /// The target (a load balancer, interface endpoints) accepts nothing on the port.
    MissingListener,
}

impl BlockerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::SourceEgress => "source egress",
            Self::TargetIngress => "target ingress",
            Self::EndpointGroup => "endpoint group",
            Self::MissingListener => "missing listener",
        }
    }
}

/// A security group of an interface on the path has no rule for the traffic.
pub const ENI_SG_RULES_MISMATCH: &str = "ENI_SG_RULES_MISMATCH";
/// The load balancer has no listener that accepts the traffic.
pub const ELBV2_LISTENERS_MISMATCH: &str = "ELBV2_LISTENERS_MISMATCH";
/// Interface endpoints accept TCP 443 only (Membrain's code, in Reachability Analyzer's style).
pub const VPCE_PORT_MISMATCH: &str = "VPCE_PORT_MISMATCH";

/// One thing that stops the flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocker {
    pub kind: BlockerKind,
    /// A reason code in the style of VPC Reachability Analyzer's explanation codes.
    pub code: &'static str,
    /// What blocks: a group id, or the tier.
    pub component: String,
    /// One sentence for people.
    pub reason: String,
    /// The missing rule and the command that adds it, for a group blocker of a flow the plan
    /// does not forbid.
    pub fix: Option<Fix>,
    /// What to do when the fix is not a rule (a listener to add), for a flow the plan does not
    /// forbid.
    pub advice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub from: TierName,
    pub to: TierName,
    pub protocol: Protocol,
    pub port: u16,
    /// Whether the security groups let the flow through.
    pub allowed: bool,
    /// Whether nothing blocks it: the groups allow it and no blocker beyond them stands.
    pub reachable: bool,
    /// What the plan says about this flow, if anything.
    pub planned: Option<&'static str>,
    pub verdict: Verdict,
    /// Every blocker along the path, in the order traffic meets them (empty when reachable).
    pub blockers: Vec<Blocker>,
    /// Commands that close a flow the plan forbids but the groups let through.
    pub revokes: Vec<String>,
    /// The rules that let it through (when allowed).
    pub allowed_by: Vec<RuleRef>,
    /// Checks beyond security groups, from the seeds' troubleshooting lists.
    pub also_check: Vec<String>,
}

impl Diagnosis {
    /// The rule fixes of every blocker, in path order.
    pub fn fixes(&self) -> impl Iterator<Item = &Fix> {
        self.blockers.iter().filter_map(|b| b.fix.as_ref())
    }
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
    let evaluator = Evaluator::new(actual);
    let verdict = evaluator.evaluate(from_tier, to_tier, protocol, port);
    let matches = |flow: &&Flow| flow.from.0 == from && flow.to.0 == to && flow.port == port;
    let planned = if plan.expected.iter().any(|f| matches(&f)) {
        Some("expected")
    } else if plan.forbidden.iter().any(|f| matches(&f)) {
        Some("forbidden")
    } else {
        None
    };
    // A forbidden flow that is blocked is as it should be: its blockers explain, nothing to add.
    let wants_fixes = planned != Some("forbidden");
    let path = Path {
        actual,
        from: from_tier,
        to: to_tier,
        protocol,
        port,
        wants_fixes,
    };
    let mut blockers = Vec::new();
    let missing: &[MissingRule] = match &verdict {
        Verdict::Denied { missing } => missing,
        Verdict::Allowed { .. } => &[],
    };
    if let Some(egress) = missing.iter().find(|m| m.direction == Direction::Egress) {
        blockers.push(path.group_blocker(BlockerKind::SourceEgress, egress, None));
    }
    let endpoints = endpoint_blockers(&evaluator, &path);
    if let Some(ingress) = missing.iter().find(|m| m.direction == Direction::Ingress)
        // The endpoints' own blockers name the same group with the services it guards.
        && !endpoints.iter().any(|b| b.component == ingress.group.0)
    {
        blockers.push(path.group_blocker(BlockerKind::TargetIngress, ingress, None));
    }
    blockers.extend(endpoints);
    blockers.extend(listener_blocker(plan, &path));
    let allowed_by: Vec<RuleRef> = match &verdict {
        Verdict::Allowed { egress, ingress } => egress.iter().chain(ingress).cloned().collect(),
        Verdict::Denied { .. } => Vec::new(),
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
        reachable: blockers.is_empty(),
        planned,
        also_check: also_check(from_tier, to_tier),
        verdict,
        blockers,
        revokes,
        allowed_by,
    })
}

/// The flow being diagnosed, for building its blockers.
struct Path<'a> {
    actual: &'a Topology,
    from: &'a Tier,
    to: &'a Tier,
    protocol: Protocol,
    port: u16,
    wants_fixes: bool,
}

impl Path<'_> {
    fn traffic(&self) -> String {
        if self.protocol.has_ports() {
            format!("{}/{}", self.protocol.aws_name(), self.port)
        } else {
            self.protocol.aws_name().to_owned()
        }
    }

    /// A security-group blocker from the rule the evaluator found missing; `services` names the
    /// interface endpoints the group guards.
    fn group_blocker(
        &self,
        kind: BlockerKind,
        missing: &MissingRule,
        services: Option<&[&str]>,
    ) -> Blocker {
        let group_name = self
            .actual
            .group(&missing.group)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| missing.group.0.clone());
        let reason = match kind {
            BlockerKind::SourceEgress => format!(
                "no egress rule of {}'s groups lets {} out to {}",
                self.from.name,
                self.traffic(),
                self.to.name
            ),
            BlockerKind::EndpointGroup => format!(
                "no ingress rule of group {} on the interface endpoints ({}) lets {} in from {}",
                missing.group,
                services.unwrap_or_default().join(", "),
                self.traffic(),
                self.from.name
            ),
            _ => format!(
                "no ingress rule of {}'s groups lets {} in from {}",
                self.to.name,
                self.traffic(),
                self.from.name
            ),
        };
        Blocker {
            kind,
            code: ENI_SG_RULES_MISMATCH,
            component: missing.group.0.clone(),
            reason,
            fix: self.wants_fixes.then(|| Fix {
                group: missing.group.clone(),
                group_name,
                direction: missing.direction,
                rule: missing.rule.clone(),
                command: authorize_command(&missing.group, missing.direction, &missing.rule),
            }),
            advice: None,
        }
    }
}

/// Whether a tier is a load balancer, by the seeds' naming (`mcp-alb`, `api-alb`).
fn is_load_balancer(tier: &Tier) -> bool {
    ["-alb", "-nlb", "-elb", "-lb"]
        .iter()
        .any(|suffix| tier.name.0.ends_with(suffix))
}

/// A load balancer listens on the ports the plan sends to it (and its public entry ports); a
/// port outside them has no listener, whatever the groups say.
fn listener_blocker(plan: &Topology, path: &Path) -> Option<Blocker> {
    if !is_load_balancer(path.to) || !path.protocol.has_ports() {
        return None;
    }
    let mut ports: Vec<u16> = plan
        .expected
        .iter()
        .filter(|f| f.to == path.to.name && f.protocol == path.protocol)
        .map(|f| f.port)
        .chain(
            plan.public_entry
                .iter()
                .filter(|entry| path.to.groups.contains(&entry.group))
                .flat_map(|entry| entry.ports.iter().copied()),
        )
        .collect();
    ports.sort_unstable();
    ports.dedup();
    // A load balancer the plan sends nothing to: its listeners are unknown, so nothing to say.
    if ports.is_empty() || ports.contains(&path.port) {
        return None;
    }
    let listed: Vec<String> = ports.iter().map(u16::to_string).collect();
    Some(Blocker {
        kind: BlockerKind::MissingListener,
        code: ELBV2_LISTENERS_MISMATCH,
        component: path.to.name.0.clone(),
        reason: format!(
            "{} listens on {} {} only; no listener accepts {}",
            path.to.name,
            path.protocol.aws_name(),
            listed.join(", "),
            path.traffic()
        ),
        fix: None,
        advice: path.wants_fixes.then(|| {
            format!(
                "add a listener on port {} to the {} load balancer and plan the flow, or use one of its ports",
                path.port, path.to.name
            )
        }),
    })
}

/// The interface endpoints the target stands for (those whose groups it carries): each accepts
/// TCP 443 only, and each endpoint's own groups must let the source in.
fn endpoint_blockers(evaluator: &Evaluator, path: &Path) -> Vec<Blocker> {
    let endpoints: Vec<&VpcEndpoint> = path
        .actual
        .endpoints
        .iter()
        .filter(|e| e.groups.iter().any(|g| path.to.groups.contains(g)))
        .collect();
    if endpoints.is_empty() {
        return Vec::new();
    }
    let mut blockers = Vec::new();
    let port_blocker = (path.protocol != Protocol::Tcp || path.port != 443).then(|| Blocker {
        kind: BlockerKind::MissingListener,
        code: VPCE_PORT_MISMATCH,
        component: path.to.name.0.clone(),
        reason: format!(
            "the interface endpoints of {} accept tcp/443 only, not {}",
            path.to.name,
            path.traffic()
        ),
        fix: None,
        advice: path
            .wants_fixes
            .then(|| "call AWS services over HTTPS (tcp/443)".to_owned()),
    });
    // Endpoints with the same groups share the verdict: one blocker per missing rule.
    let mut found: Vec<(MissingRule, Vec<&str>)> = Vec::new();
    for endpoint in endpoints {
        let interfaces = Tier {
            groups: endpoint.groups.clone(),
            ..path.to.clone()
        };
        let verdict = evaluator.evaluate(path.from, &interfaces, path.protocol, path.port);
        let Verdict::Denied { missing } = verdict else {
            continue;
        };
        for rule in missing
            .into_iter()
            .filter(|m| m.direction == Direction::Ingress)
        {
            match found.iter_mut().find(|(known, _)| *known == rule) {
                Some((_, services)) => services.push(&endpoint.service),
                None => found.push((rule, vec![&endpoint.service])),
            }
        }
    }
    blockers.extend(found.iter().map(|(rule, services)| {
        path.group_blocker(BlockerKind::EndpointGroup, rule, Some(services))
    }));
    blockers.extend(port_blocker);
    blockers
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
    use crate::profiles::Profile;

    fn topology(profile: Profile) -> Topology {
        profile.default_topology()
    }

    fn group<'a>(topology: &'a mut Topology, id: &str) -> &'a mut SecurityGroup {
        topology.groups.iter_mut().find(|g| g.id.0 == id).unwrap()
    }

    /// The blockers as (kind, code, component, has a fix or advice).
    fn blockers(diagnosis: &Diagnosis) -> Vec<(BlockerKind, &str, &str, bool)> {
        diagnosis
            .blockers
            .iter()
            .map(|b| {
                let remedy = b.fix.is_some() || b.advice.is_some();
                (b.kind, b.code, b.component.as_str(), remedy)
            })
            .collect()
    }

    #[test]
    fn a_broken_chain_gets_the_missing_rule_and_its_command() {
        let plan = topology(Profile::Alb);
        let mut live = plan.clone();
        group(&mut live, "api-alb").ingress.clear();
        let diagnosis = diagnose(&plan, &live, "mcp-ecs", "api-alb", Protocol::Tcp, 443).unwrap();
        assert!(!diagnosis.allowed && !diagnosis.reachable);
        assert_eq!(diagnosis.planned, Some("expected"));
        assert_eq!(
            blockers(&diagnosis),
            [(
                BlockerKind::TargetIngress,
                ENI_SG_RULES_MISMATCH,
                "api-alb",
                true
            )]
        );
        let fix = diagnosis.fixes().next().unwrap();
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
    fn every_blocker_along_the_path_is_reported_with_its_fix() {
        let plan = topology(Profile::Alb);
        let mut live = plan.clone();
        group(&mut live, "api-alb").ingress.clear();
        group(&mut live, "mcp-ecs").egress.clear();
        let both = diagnose(&plan, &live, "mcp-ecs", "api-alb", Protocol::Tcp, 443).unwrap();
        assert_eq!(
            blockers(&both),
            [
                (
                    BlockerKind::SourceEgress,
                    ENI_SG_RULES_MISMATCH,
                    "mcp-ecs",
                    true
                ),
                (
                    BlockerKind::TargetIngress,
                    ENI_SG_RULES_MISMATCH,
                    "api-alb",
                    true
                ),
            ]
        );
        let commands: Vec<&str> = both.fixes().map(|f| f.command.as_str()).collect();
        assert!(commands[0].starts_with("aws ec2 authorize-security-group-egress"));
        assert!(commands[1].starts_with("aws ec2 authorize-security-group-ingress"));

        // A port the load balancer has no listener on: its group and the missing listener.
        let ssh = diagnose(&plan, &plan, "internet", "mcp-alb", Protocol::Tcp, 22).unwrap();
        assert_eq!(ssh.planned, None);
        assert_eq!(
            blockers(&ssh),
            [
                (
                    BlockerKind::TargetIngress,
                    ENI_SG_RULES_MISMATCH,
                    "mcp-alb",
                    true
                ),
                (
                    BlockerKind::MissingListener,
                    ELBV2_LISTENERS_MISMATCH,
                    "mcp-alb",
                    true
                ),
            ]
        );
        assert!(
            ssh.blockers[1].reason.contains("tcp 80, 443 only"),
            "{}",
            ssh.blockers[1].reason
        );

        // Groups open, listener missing: allowed by the groups, yet not reachable.
        let mut open = plan.clone();
        group(&mut open, "mcp-alb").ingress.push(Rule::tcp(
            8443,
            Peer::Cidr(Cidr::everything_v4()),
            "alt",
        ));
        let alt = diagnose(&plan, &open, "internet", "mcp-alb", Protocol::Tcp, 8443).unwrap();
        assert!(alt.allowed && !alt.reachable);
        assert_eq!(alt.blockers.len(), 1);
        assert_eq!(alt.blockers[0].code, ELBV2_LISTENERS_MISMATCH);
    }

    #[test]
    fn interface_endpoints_name_their_group_their_services_and_their_port() {
        let plan = topology(Profile::Gateway);
        let mut live = plan.clone();
        group(&mut live, "vpc-endpoints").ingress.clear();
        let closed = diagnose(
            &plan,
            &live,
            "mcp-server",
            "vpc-endpoints",
            Protocol::Tcp,
            443,
        )
        .unwrap();
        assert_eq!(
            blockers(&closed),
            [(
                BlockerKind::EndpointGroup,
                ENI_SG_RULES_MISMATCH,
                "vpc-endpoints",
                true
            )]
        );
        assert!(
            closed.blockers[0].reason.contains("secretsmanager, logs"),
            "{}",
            closed.blockers[0].reason
        );
        assert!(
            closed.blockers[0]
                .fix
                .as_ref()
                .unwrap()
                .command
                .contains("${VPC_ENDPOINTS_SG_ID}")
        );
        let other_port = diagnose(
            &plan,
            &plan,
            "mcp-server",
            "vpc-endpoints",
            Protocol::Tcp,
            8443,
        )
        .unwrap();
        assert_eq!(
            blockers(&other_port),
            [
                (
                    BlockerKind::EndpointGroup,
                    ENI_SG_RULES_MISMATCH,
                    "vpc-endpoints",
                    true
                ),
                (
                    BlockerKind::MissingListener,
                    VPCE_PORT_MISMATCH,
                    "vpc-endpoints",
                    true
                ),
            ]
        );
    }

    #[test]
    fn forbidden_flows_get_no_fix_when_blocked_and_revokes_when_open() {
        let plan = topology(Profile::Alb);
        let blocked = diagnose(&plan, &plan, "mcp-ecs", "database", Protocol::Tcp, 5432).unwrap();
        assert_eq!(
            (blocked.allowed, blocked.planned),
            (false, Some("forbidden"))
        );
        assert_eq!(
            blockers(&blocked),
            [
                (
                    BlockerKind::SourceEgress,
                    ENI_SG_RULES_MISMATCH,
                    "mcp-ecs",
                    false
                ),
                (
                    BlockerKind::TargetIngress,
                    ENI_SG_RULES_MISMATCH,
                    "database",
                    false
                ),
            ],
            "both sides block it, explained, with nothing to add"
        );
        assert!(blocked.revokes.is_empty());
        let mut live = plan.clone();
        group(&mut live, "database").ingress.push(Rule::tcp(
            5432,
            Peer::Cidr(Cidr::everything_v4()),
            "too open",
        ));
        let open = diagnose(&plan, &live, "internet", "database", Protocol::Tcp, 5432).unwrap();
        assert!(open.allowed && open.reachable && open.blockers.is_empty());
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
        let plan = topology(Profile::Alb);
        let diagnosis = diagnose(&plan, &plan, "internet", "mcp-alb", Protocol::Tcp, 443).unwrap();
        assert!(diagnosis.allowed && diagnosis.reachable && diagnosis.blockers.is_empty());
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
