//! What separates one direction of a live group from its plan. Pure, so the reconciliation
//! rules are tested without AWS.

use membrain_netsec::Rule;

use crate::convert::LiveRule;

/// The rule changes one direction of one owned group needs.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RuleDiff {
    /// Planned rules with no live rule of the same permission.
    pub add: Vec<Rule>,
    /// Planned rules whose live twin has another description: (planned, live).
    pub describe: Vec<(Rule, LiveRule)>,
    /// Live rules the plan does not have, AWS's default egress included.
    pub remove: Vec<LiveRule>,
}

impl RuleDiff {
    /// Compares by permission (protocol, ports, peer); a description alone never makes a rule
    /// new, it is updated in place.
    pub fn between(planned: &[Rule], live: &[LiveRule]) -> Self {
        let mut diff = Self::default();
        for rule in planned {
            match live.iter().find(|l| l.rule.same_permission(rule)) {
                None => diff.add.push(rule.clone()),
                Some(twin) if twin.rule.description != rule.description => {
                    diff.describe.push((rule.clone(), twin.clone()));
                }
                Some(_) => {}
            }
        }
        diff.remove = live
            .iter()
            .filter(|l| !planned.iter().any(|p| p.same_permission(&l.rule)))
            .cloned()
            .collect();
        diff
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use membrain_netsec::{Cidr, GroupId, Peer};

    use super::*;
    use crate::convert::rule_to_permission;

    fn live(rule: &Rule) -> LiveRule {
        LiveRule {
            rule: rule.clone(),
            permission: rule_to_permission(rule, &HashMap::new()),
        }
    }

    fn everywhere() -> Peer {
        Peer::Cidr(Cidr::everything_v4())
    }

    /// (planned, live) → (added, re-described, removed), by port.
    fn check(planned: Vec<Rule>, live_rules: Vec<Rule>, expected: (&[u16], &[u16], &[u16])) {
        let live_rules: Vec<LiveRule> = live_rules.iter().map(live).collect();
        let diff = RuleDiff::between(&planned, &live_rules);
        let port = |r: &Rule| r.ports.map_or(0, |p| p.from);
        let added: Vec<u16> = diff.add.iter().map(port).collect();
        let described: Vec<u16> = diff.describe.iter().map(|(r, _)| port(r)).collect();
        let removed: Vec<u16> = diff.remove.iter().map(|l| port(&l.rule)).collect();
        assert_eq!(
            (added.as_slice(), described.as_slice(), removed.as_slice()),
            expected
        );
    }

    #[test]
    fn reconciliation_cases() {
        let https = Rule::tcp(443, everywhere(), "https");
        let http = Rule::tcp(80, everywhere(), "http");
        let default_egress = Rule::all_traffic(everywhere(), "");
        let to_alb = Rule::tcp(80, Peer::Group(GroupId("api-alb".into())), "to alb");
        // Nothing live: everything is added.
        check(
            vec![https.clone(), http.clone()],
            vec![],
            (&[443, 80], &[], &[]),
        );
        // Already there: nothing to do.
        check(vec![https.clone()], vec![https.clone()], (&[], &[], &[]));
        // A new group's default egress goes when the plan is tighter…
        check(
            vec![to_alb.clone()],
            vec![default_egress.clone()],
            (&[80], &[], &[0]),
        );
        // …and stays when the plan has the same all-traffic rule, whatever its description.
        let planned_all = Rule::all_traffic(everywhere(), "Allow all outbound traffic");
        check(vec![planned_all], vec![default_egress], (&[], &[0], &[]));
        // A changed port: the new one is added, the old one removed.
        let moved = Rule::tcp(8443, everywhere(), "https");
        check(vec![moved], vec![https], (&[8443], &[], &[443]));
        // A group reference and a CIDR on the same port are different rules.
        check(vec![to_alb], vec![http], (&[80], &[], &[80]));
    }
}
