//! EC2 `--ip-permissions` JSON and AWS CLI commands for rules. The JSON form carries a
//! description on every kind of peer, which the `--protocol/--port/--source-group` shorthand of
//! seed 000's script cannot.

use serde_json::{Value, json};

use crate::eval::Direction;
use crate::model::*;

/// An id a rule names only by its place in the plan, which the caller turns into the text that
/// stands for it (a shell variable, a real `sg-…` or `pl-…`).
#[derive(Debug, Clone, Copy)]
pub enum IdOf<'a> {
    Group(&'a GroupId),
    /// The `pl-…` of the region's AWS-managed prefix list for this service.
    ServicePrefixList(&'a str),
}

impl IdOf<'_> {
    /// The shell variable a rendered script keeps this id in (`MCP_ALB_SG_ID`,
    /// `S3_PREFIX_LIST_ID`).
    pub fn shell_variable(self) -> String {
        match self {
            Self::Group(group) => group.shell_variable(),
            Self::ServicePrefixList(service) => prefix_list_variable(service),
        }
    }
}

/// `s3` → `S3_PREFIX_LIST_ID`: the shell variable a script keeps a service's prefix list id in.
pub fn prefix_list_variable(service: &str) -> String {
    format!("{}_PREFIX_LIST_ID", shell_name(service))
}

/// The EC2 `IpPermission` for one rule; `id` turns a group or service prefix list of the plan
/// into the text that stands for its id.
pub fn ip_permission(rule: &Rule, id: &dyn Fn(IdOf<'_>) -> String) -> Value {
    let mut permission = json!({ "IpProtocol": rule.protocol.aws_name() });
    if let Some(range) = rule.ports {
        permission["FromPort"] = json!(range.from);
        permission["ToPort"] = json!(range.to);
    }
    let description = rule.description.as_str();
    match &rule.peer {
        Peer::Cidr(cidr) if cidr.is_ipv6() => {
            permission["Ipv6Ranges"] =
                json!([{ "CidrIpv6": cidr.to_string(), "Description": description }]);
        }
        Peer::Cidr(cidr) => {
            permission["IpRanges"] =
                json!([{ "CidrIp": cidr.to_string(), "Description": description }]);
        }
        Peer::Group(group) => {
            permission["UserIdGroupPairs"] =
                json!([{ "GroupId": id(IdOf::Group(group)), "Description": description }]);
        }
        Peer::PrefixList(list) => {
            permission["PrefixListIds"] =
                json!([{ "PrefixListId": list, "Description": description }]);
        }
        Peer::ServicePrefixList(service) => {
            permission["PrefixListIds"] = json!([{
                "PrefixListId": id(IdOf::ServicePrefixList(service)),
                "Description": description
            }]);
        }
    }
    permission
}

/// Quotes a string as one word for a POSIX shell: single quotes, inside which nothing is special,
/// with each `'` written as `'\''`. The one way topology text reaches a rendered shell command.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The `aws ec2 authorize-security-group-{ingress,egress}` command that adds `rule` to `group`,
/// with group ids taken from shell variables (`$MCP_ALB_SG_ID`).
pub fn authorize_command(group: &GroupId, direction: Direction, rule: &Rule) -> String {
    rule_command("authorize", group, direction, rule)
}

/// The `aws ec2 revoke-security-group-{ingress,egress}` command that removes `rule` from `group`.
pub fn revoke_command(group: &GroupId, direction: Direction, rule: &Rule) -> String {
    rule_command("revoke", group, direction, rule)
}

fn rule_command(verb: &str, group: &GroupId, direction: Direction, rule: &Rule) -> String {
    // Placeholders survive JSON encoding; each becomes a break out of the single quotes. The
    // marker is a run of '@' longer than any in the rule's text, so a description holding
    // "@@NAME@@" stays text instead of turning into a shell variable.
    let longest_run = rule
        .description
        .split(|c| c != '@')
        .map(str::len)
        .max()
        .unwrap_or(0);
    let marker = "@".repeat(longest_run.max(1) + 1);
    let permission = ip_permission(rule, &|id| {
        format!("{marker}{}{marker}", id.shell_variable())
    });
    let mut quoted = shell_quote(&json!([permission]).to_string());
    let mut from = 0;
    while let Some(start) = quoted[from..].find(&marker).map(|i| from + i) {
        let name_start = start + marker.len();
        let Some(length) = quoted[name_start..].find(&marker) else {
            break;
        };
        let variable = quoted[name_start..name_start + length].to_owned();
        let replacement = format!("'\"${{{variable}}}\"'");
        quoted.replace_range(start..name_start + length + marker.len(), &replacement);
        from = start + replacement.len();
    }
    format!(
        "aws ec2 {verb}-security-group-{} --group-id \"${{{}}}\" --ip-permissions {quoted}",
        direction.name(),
        group.shell_variable()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_references_become_shell_variables_with_descriptions() {
        let rule = Rule::tcp(
            8100,
            Peer::Group(GroupId("mcp-alb".into())),
            "Allow traffic from MCP ALB",
        );
        let command = authorize_command(&GroupId("mcp-ecs".into()), Direction::Ingress, &rule);
        assert_eq!(
            command,
            "aws ec2 authorize-security-group-ingress --group-id \"${MCP_ECS_SG_ID}\" --ip-permissions \
             '[{\"FromPort\":8100,\"IpProtocol\":\"tcp\",\"ToPort\":8100,\"UserIdGroupPairs\":[{\"Description\":\"Allow traffic from MCP ALB\",\"GroupId\":\"'\"${MCP_ALB_SG_ID}\"'\"}]}]'"
        );
    }

    #[test]
    fn cidrs_all_traffic_and_quotes() {
        let v6 = Rule::all_traffic(Peer::Cidr(Cidr::parse("c", "::/0").unwrap()), "it's open");
        let permission = ip_permission(&v6, &|_| unreachable!("no group in the rule"));
        assert_eq!(permission["IpProtocol"], "-1");
        assert!(permission.get("FromPort").is_none());
        assert_eq!(permission["Ipv6Ranges"][0]["CidrIpv6"], "::/0");
        let command = authorize_command(&GroupId("web".into()), Direction::Egress, &v6);
        assert!(command.contains("it'\\''s open"), "{command}");
    }

    #[test]
    fn a_service_prefix_list_becomes_its_shell_variable() {
        let rule = Rule::tcp(443, Peer::ServicePrefixList("s3".into()), "To S3");
        let command = authorize_command(&GroupId("api-ecs".into()), Direction::Egress, &rule);
        assert!(
            command.contains("\"PrefixListIds\":[{\"Description\":\"To S3\",\"PrefixListId\":\"'\"${S3_PREFIX_LIST_ID}\"'\"}]"),
            "{command}"
        );
    }

    #[test]
    fn a_description_that_looks_like_a_placeholder_stays_text() {
        let rule = Rule::tcp(
            443,
            Peer::Group(GroupId("mcp-alb".into())),
            "@@PATH@@ and @@@HOME@@@",
        );
        let command = authorize_command(&GroupId("mcp-ecs".into()), Direction::Ingress, &rule);
        assert!(
            command.contains("\"Description\":\"@@PATH@@ and @@@HOME@@@\""),
            "{command}"
        );
        assert!(command.contains("'\"${MCP_ALB_SG_ID}\"'"), "{command}");
        assert!(
            !command.contains("${PATH}") && !command.contains("${HOME}"),
            "{command}"
        );
    }
}
