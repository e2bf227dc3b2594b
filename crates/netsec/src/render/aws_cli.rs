//! The topology as a `bash` script for the `aws` CLI.
//!
//! Seed 000's script is the starting point and its faults are what this fixes: rules go in as
//! `--ip-permissions` JSON so each carries its description; every group is tagged with its
//! logical id (`membrain:group`) so re-runs and `membrain network verify` find it again; the
//! default allow-all egress is revoked wherever the plan is narrower; and the script can be run
//! again after a failure or a change, because it looks everything up before creating it and
//! treats "already there" (`InvalidPermission.Duplicate`) and "already gone"
//! (`InvalidPermission.NotFound`) as done.

use std::fmt::Write as _;

use serde_json::json;

use super::{SubnetLayout, comment_text, keeps_default_egress};
use crate::Topology;
use crate::aws_json::GROUP_TAG;
use crate::awscli::{IdOf, authorize_command, ip_permission, prefix_list_variable, shell_quote};
use crate::eval::Direction;
use crate::model::{GroupId, Rule, SecurityGroup, VpcEndpoint, shell_name};

/// The tag that marks the VPC and subnets a script created, holding the topology's name.
const NETWORK_TAG: &str = "membrain:network";

/// Renders the whole script. It reads `VPC_ID` (and `PRIVATE_SUBNET_IDS` for endpoints) from the
/// environment unless the plan creates the VPC, and ends by printing every id as `NAME=value`
/// lines on standard output (progress goes to standard error), so its output can be sourced.
pub fn aws_cli(topology: &Topology) -> String {
    let mut script = header(topology);
    script.push_str(HELPERS);
    script.push_str(&network_section(topology));
    script.push_str(&region_section());
    script.push_str(&vpc_section(topology));
    script.push_str(&groups_section(topology));
    script.push_str(&prefix_lists_section(topology));
    script.push_str(&rules_section(topology));
    script.push_str(&default_egress_section(topology));
    script.push_str(&endpoints_section(topology));
    script.push_str(&summary_section(topology));
    script
}

fn header(topology: &Topology) -> String {
    let input = if topology.vpc.create {
        format!(
            "#   (none) the VPC {} and its private subnets are created and tagged {NETWORK_TAG}={}",
            topology.vpc.cidr,
            comment_text(&topology.name)
        )
    } else {
        let mut input =
            "#   VPC_ID               the VPC that gets the groups (vpc-...)".to_owned();
        if topology.interface_endpoints().next().is_some() {
            input.push_str(
                "\n#   PRIVATE_SUBNET_IDS   the subnets for the interface endpoints (space or comma separated)",
            );
        }
        input
    };
    let input = if topology.gateway_endpoints().next().is_some() {
        format!(
            "{input}\n#   PRIVATE_ROUTE_TABLE_IDS  optional: the route tables gateway endpoints add their route\n\
             #                        to [default: the private subnets' own, else the VPC's main one]"
        )
    } else {
        input
    };
    format!(
        "#!/usr/bin/env bash\n\
         # Membrain network {name:?}: security groups, rules and VPC endpoints.\n\
         # Rendered by `membrain network render --format aws-cli`; change the topology and render\n\
         # again rather than editing this file.\n\
         #\n\
         # Needs the aws CLI with credentials and a region (AWS_REGION, AWS_DEFAULT_REGION or\n\
         # `aws configure`). Input from the environment:\n\
         {input}\n\
         #\n\
         # Safe to run again: groups are found by their {GROUP_TAG} tag (or name), rules that\n\
         # exist are kept, and the ids are printed at the end as NAME=value lines.\n\
         set -euo pipefail\n\
         # Failures inside $(...) stop the script too (bash 4.4+).\n\
         shopt -s inherit_errexit\n",
        name = topology.name
    )
}

/// The topology's name in the one variable the rest of the script uses, single-quoted, so that
/// no other line splices it in. Only scripts that create or tag something with it have it.
fn network_section(topology: &Topology) -> String {
    if !topology.vpc.create && topology.endpoints.is_empty() {
        return String::new();
    }
    format!(
        "\n# The network's name, in the names and {NETWORK_TAG} tags of what this script creates.\n\
         NETWORK={}\n",
        shell_quote(&topology.name)
    )
}

/// Shell functions every script uses; each turns one AWS "already done" answer into success.
const HELPERS: &str = r#"
log() { printf '%s\n' "$*" >&2; }

# Runs an aws command that adds something; "already exists" counts as done.
authorize() {
  local output
  if output="$("$@" 2>&1)"; then return 0; fi
  case "$output" in *InvalidPermission.Duplicate*) return 0 ;; esac
  printf '%s\n' "$output" >&2
  return 1
}

# Runs an aws command that removes a rule; "does not exist" counts as done.
revoke() {
  local output
  if output="$("$@" 2>&1)"; then return 0; fi
  case "$output" in *InvalidPermission.NotFound*) return 0 ;; esac
  printf '%s\n' "$output" >&2
  return 1
}

# Prints the text output of an aws query, or nothing when it found nothing ("None").
query() {
  local value
  value="$("$@")"
  if [ "$value" = "None" ]; then value=""; fi
  printf '%s' "$value"
}

# ensure_group LOGICAL_ID NAME DESCRIPTION: prints the id of the group tagged with LOGICAL_ID
# (or else named NAME) in $VPC_ID, creating it first if there is none; tags it either way.
ensure_group() {
  local id
  id="$(query aws ec2 describe-security-groups \
    --filters "Name=vpc-id,Values=${VPC_ID}" "Name=tag:membrain:group,Values=$1" \
    --query 'SecurityGroups[0].GroupId' --output text)"
  if [ -z "$id" ]; then
    id="$(query aws ec2 describe-security-groups \
      --filters "Name=vpc-id,Values=${VPC_ID}" "Name=group-name,Values=$2" \
      --query 'SecurityGroups[0].GroupId' --output text)"
  fi
  if [ -z "$id" ]; then
    id="$(aws ec2 create-security-group --vpc-id "${VPC_ID}" --group-name "$2" \
      --description "$3" --query GroupId --output text)"
    log "created $2: $id"
  else
    log "found $2: $id"
  fi
  aws ec2 create-tags --resources "$id" --tags "Key=membrain:group,Value=$1" "Key=Name,Value=$2"
  printf '%s' "$id"
}
"#;

fn region_section() -> String {
    "\nREGION=\"${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}\"\n\
     : \"${REGION:?set AWS_REGION (or AWS_DEFAULT_REGION) to the region to deploy in}\"\n\
     export AWS_DEFAULT_REGION=\"${REGION}\"\n"
        .to_owned()
}

fn vpc_section(topology: &Topology) -> String {
    if !topology.vpc.create {
        let mut out =
            "\nVPC_ID=\"${VPC_ID:?set VPC_ID to the VPC that gets the groups (vpc-...)}\"\n"
                .to_owned();
        if topology.interface_endpoints().next().is_some() {
            out.push_str(
                "PRIVATE_SUBNET_IDS=\"${PRIVATE_SUBNET_IDS:?set PRIVATE_SUBNET_IDS to the subnets for the VPC endpoints}\"\n\
                 read -r -a PRIVATE_SUBNETS <<<\"${PRIVATE_SUBNET_IDS//,/ }\"\n",
            );
        }
        return out;
    }
    let layout = SubnetLayout::for_topology(topology);
    let mut out = format!(
        "\nlog \"==> VPC {cidr}\"\n\
         VPC_ID=\"$(query aws ec2 describe-vpcs --filters \"Name=tag:{NETWORK_TAG},Values=${{NETWORK}}\" \\\n  \
         --query 'Vpcs[0].VpcId' --output text)\"\n\
         if [ -z \"${{VPC_ID}}\" ]; then\n  \
         VPC_ID=\"$(aws ec2 create-vpc --cidr-block {cidr} --query Vpc.VpcId --output text \\\n    \
         --tag-specifications \"ResourceType=vpc,Tags=[{{Key=Name,Value=membrain-${{NETWORK}}-vpc}},{{Key={NETWORK_TAG},Value=${{NETWORK}}}}]\")\"\n  \
         log \"created membrain-${{NETWORK}}-vpc: ${{VPC_ID}}\"\n\
         fi\n\
         # Private DNS names of interface endpoints need both DNS attributes.\n\
         aws ec2 modify-vpc-attribute --vpc-id \"${{VPC_ID}}\" --enable-dns-support '{{\"Value\":true}}'\n\
         aws ec2 modify-vpc-attribute --vpc-id \"${{VPC_ID}}\" --enable-dns-hostnames '{{\"Value\":true}}'\n\
         # Zone ids, not names (a name is a different zone in every account): ZONE_IDS=\"use1-az1 use1-az2\".\n\
         # Avoid zones where API Gateway VPC links are not offered (us-east-1: use1-az3). Unset: the\n\
         # first two available zones, which may include such a zone.\n\
         if [ -n \"${{ZONE_IDS:-}}\" ]; then\n  \
         read -r -a ZONES <<<\"${{ZONE_IDS//,/ }}\"\n\
         else\n  \
         read -r -a ZONES <<<\"$(aws ec2 describe-availability-zones --filters Name=state,Values=available \\\n    \
         --query 'AvailabilityZones[0:2].ZoneId' --output text)\"\n\
         fi\n\
         # ensure_subnet NAME CIDR ZONE_ID: prints the id of the tagged subnet, creating it if needed.\n\
         ensure_subnet() {{\n  \
         local id\n  \
         id=\"$(query aws ec2 describe-subnets --filters \"Name=vpc-id,Values=${{VPC_ID}}\" \"Name=tag:Name,Values=$1\" \\\n    \
         --query 'Subnets[0].SubnetId' --output text)\"\n  \
         if [ -z \"$id\" ]; then\n    \
         id=\"$(aws ec2 create-subnet --vpc-id \"${{VPC_ID}}\" --cidr-block \"$2\" --availability-zone-id \"$3\" \\\n      \
         --tag-specifications \"ResourceType=subnet,Tags=[{{Key=Name,Value=$1}},{{Key={NETWORK_TAG},Value=${{NETWORK}}}}]\" \\\n      \
         --query Subnet.SubnetId --output text)\"\n    \
         log \"created $1: $id\"\n  \
         fi\n  \
         printf '%s' \"$id\"\n\
         }}\n",
        cidr = topology.vpc.cidr,
    );
    for (i, cidr) in layout.private.iter().enumerate() {
        let _ = writeln!(
            out,
            "PRIVATE_SUBNET_{i}=\"$(ensure_subnet \"membrain-${{NETWORK}}-private-{i}\" {cidr} \"${{ZONES[{i}]}}\")\""
        );
    }
    out.push_str("PRIVATE_SUBNETS=(\"${PRIVATE_SUBNET_0}\" \"${PRIVATE_SUBNET_1}\")\n");
    out
}

fn groups_section(topology: &Topology) -> String {
    let mut out = "\nlog \"==> Security groups in ${VPC_ID}\"\n".to_owned();
    for group in &topology.groups {
        let _ = writeln!(
            out,
            "{}=\"$(ensure_group {} {} {})\"",
            group.id.shell_variable(),
            shell_quote(&group.id.0),
            shell_quote(&group.name),
            shell_quote(&group.description)
        );
    }
    out
}

/// Looks up, in this region, the id of every AWS-managed prefix list a rule names.
fn prefix_lists_section(topology: &Topology) -> String {
    let services = topology.service_prefix_lists();
    if services.is_empty() {
        return String::new();
    }
    let mut out = "\nlog \"==> AWS-managed prefix lists\"\n".to_owned();
    for service in services {
        let variable = prefix_list_variable(service);
        let name = format!("com.amazonaws.${{REGION}}.{service}");
        let _ = writeln!(
            out,
            "{variable}=\"$(query aws ec2 describe-prefix-lists --filters \"Name=prefix-list-name,Values={name}\" \\\n  \
             --query 'PrefixLists[0].PrefixListId' --output text)\"\n\
             : \"${{{variable}:?this region has no prefix list {name}}}\"\n\
             log \"{name}: ${{{variable}}}\""
        );
    }
    out
}

fn rules_section(topology: &Topology) -> String {
    let mut out = "\nlog \"==> Rules\"\n".to_owned();
    for group in &topology.groups {
        for (direction, rules) in [
            (Direction::Ingress, &group.ingress),
            (Direction::Egress, &group.egress),
        ] {
            if rules.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "# {}: {}",
                comment_text(&group.title),
                direction.name()
            );
            for rule in rules {
                let _ = writeln!(
                    out,
                    "authorize {}",
                    authorize_command(&group.id, direction, rule)
                );
                if direction == Direction::Egress && super::is_default_egress(rule) {
                    // This rule is AWS's default one, which already exists without a
                    // description: authorize finds a duplicate, so set the description here.
                    let _ = writeln!(out, "{}", describe_egress_command(&group.id, rule));
                }
            }
        }
    }
    out
}

fn describe_egress_command(group: &GroupId, rule: &Rule) -> String {
    let permission = ip_permission(rule, &|id| match id {
        IdOf::Group(group) => group.0.clone(),
        IdOf::ServicePrefixList(service) => service.to_owned(),
    });
    format!(
        "aws ec2 update-security-group-rule-descriptions-egress --group-id \"${{{}}}\" --ip-permissions {} >/dev/null",
        group.shell_variable(),
        shell_quote(&json!([permission]).to_string())
    )
}

/// Revokes, per address family, the default all-traffic egress of every group whose plan does
/// not keep it. AWS adds the IPv6 one only in VPCs with IPv6; revoking it elsewhere is a no-op.
fn default_egress_section(topology: &Topology) -> String {
    let mut out = "\nlog \"==> Default egress\"\n".to_owned();
    for group in &topology.groups {
        out.push_str(&revoke_default_egress(group));
    }
    out
}

fn revoke_default_egress(group: &SecurityGroup) -> String {
    let mut out = String::new();
    for (ipv6, range) in [
        (
            false,
            r#"[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]"#,
        ),
        (
            true,
            r#"[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]"#,
        ),
    ] {
        if keeps_default_egress(&group.egress, ipv6) {
            continue;
        }
        let _ = writeln!(
            out,
            "revoke aws ec2 revoke-security-group-egress --group-id \"${{{}}}\" --ip-permissions '{range}'",
            group.id.shell_variable()
        );
    }
    if !out.is_empty() {
        out.insert_str(
            0,
            &format!(
                "# {}: the plan's egress is narrower than AWS's default allow-all rule.\n",
                comment_text(&group.title)
            ),
        );
    }
    out
}

fn endpoints_section(topology: &Topology) -> String {
    if topology.endpoints.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n# ensure_endpoint SERVICE CREATE_ARGUMENTS...: prints the id of the VPC's endpoint for\n\
         # com.amazonaws.$REGION.SERVICE, creating it with the arguments (its type and where it\n\
         # goes) if there is none.\n\
         ensure_endpoint() {{\n  \
         local short=\"$1\" service=\"com.amazonaws.${{REGION}}.$1\" id\n  \
         shift\n  \
         id=\"$(query aws ec2 describe-vpc-endpoints --filters \"Name=vpc-id,Values=${{VPC_ID}}\" \\\n    \
         \"Name=service-name,Values=${{service}}\" \"Name=vpc-endpoint-state,Values=pendingAcceptance,pending,available\" \\\n    \
         --query 'VpcEndpoints[0].VpcEndpointId' --output text)\"\n  \
         if [ -z \"$id\" ]; then\n    \
         id=\"$(aws ec2 create-vpc-endpoint --vpc-id \"${{VPC_ID}}\" --service-name \"${{service}}\" \"$@\" \\\n      \
         --tag-specifications \"ResourceType=vpc-endpoint,Tags=[{{Key=Name,Value=membrain-${{NETWORK}}-${{short}}}},{{Key={NETWORK_TAG},Value=${{NETWORK}}}}]\" \\\n      \
         --query VpcEndpoint.VpcEndpointId --output text)\"\n    \
         log \"created the ${{service}} endpoint: $id\"\n  \
         else\n    \
         log \"found the ${{service}} endpoint: $id\"\n  \
         fi\n  \
         printf '%s' \"$id\"\n\
         }}\n"
    );
    out.push_str(&interface_endpoints_section(topology));
    out.push_str(&gateway_endpoints_section(topology));
    out
}

fn interface_endpoints_section(topology: &Topology) -> String {
    if topology.interface_endpoints().next().is_none() {
        return String::new();
    }
    let mut out = "\nlog \"==> Interface VPC endpoints\"\n".to_owned();
    for endpoint in topology.interface_endpoints() {
        let _ = writeln!(
            out,
            "{}=\"$(ensure_endpoint {} --vpc-endpoint-type Interface \\\n  \
             --subnet-ids \"${{PRIVATE_SUBNETS[@]}}\" --security-group-ids {} --{})\"",
            endpoint_variable(endpoint),
            shell_quote(&endpoint.service),
            endpoint
                .groups
                .iter()
                .map(|g| format!("\"${{{}}}\"", g.shell_variable()))
                .collect::<Vec<_>>()
                .join(" "),
            if endpoint.private_dns {
                "private-dns-enabled"
            } else {
                "no-private-dns-enabled"
            },
        );
    }
    out
}

/// Gateway endpoints: a route to the service in the private subnets' route tables.
fn gateway_endpoints_section(topology: &Topology) -> String {
    if topology.gateway_endpoints().next().is_none() {
        return String::new();
    }
    let mut out = String::from(
        "\nlog \"==> Gateway VPC endpoints\"\n\
         # The route tables gateway endpoints add their route to: PRIVATE_ROUTE_TABLE_IDS, else the\n\
         # private subnets' own, else the VPC's main one.\n\
         if [ -z \"${PRIVATE_ROUTE_TABLE_IDS:-}\" ] && [ -n \"${PRIVATE_SUBNETS[*]:-}\" ]; then\n  \
         PRIVATE_ROUTE_TABLE_IDS=\"$(query aws ec2 describe-route-tables \\\n    \
         --filters \"Name=association.subnet-id,Values=$(IFS=,; printf '%s' \"${PRIVATE_SUBNETS[*]}\")\" \\\n    \
         --query 'RouteTables[].RouteTableId' --output text)\"\n\
         fi\n\
         if [ -z \"${PRIVATE_ROUTE_TABLE_IDS:-}\" ]; then\n  \
         PRIVATE_ROUTE_TABLE_IDS=\"$(query aws ec2 describe-route-tables \\\n    \
         --filters \"Name=vpc-id,Values=${VPC_ID}\" Name=association.main,Values=true \\\n    \
         --query 'RouteTables[0].RouteTableId' --output text)\"\n\
         fi\n\
         read -r -a PRIVATE_ROUTE_TABLES <<<\"${PRIVATE_ROUTE_TABLE_IDS//,/ }\"\n",
    );
    for endpoint in topology.gateway_endpoints() {
        let _ = writeln!(
            out,
            "{}=\"$(ensure_endpoint {} --vpc-endpoint-type Gateway \\\n  \
             --route-table-ids \"${{PRIVATE_ROUTE_TABLES[@]}}\")\"",
            endpoint_variable(endpoint),
            shell_quote(&endpoint.service),
        );
    }
    out
}

/// `timestream.ingest-cell1` → `TIMESTREAM_INGEST_CELL1_ENDPOINT_ID`; a variable name whatever
/// the service holds.
fn endpoint_variable(endpoint: &VpcEndpoint) -> String {
    format!("{}_ENDPOINT_ID", shell_name(&endpoint.service))
}

fn summary_section(topology: &Topology) -> String {
    let mut variables = vec!["VPC_ID".to_owned()];
    if topology.vpc.create {
        variables.extend(["PRIVATE_SUBNET_0".to_owned(), "PRIVATE_SUBNET_1".to_owned()]);
    }
    variables.extend(topology.groups.iter().map(|g| g.id.shell_variable()));
    variables.extend(
        topology
            .service_prefix_lists()
            .into_iter()
            .map(prefix_list_variable),
    );
    variables.extend(topology.endpoints.iter().map(endpoint_variable));
    let mut out = "\nlog \"==> Done\"\n".to_owned();
    for variable in variables {
        let _ = writeln!(out, "echo \"{variable}=${{{variable}}}\"");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::{GatewayTsStore, Profile, ProfileOptions};

    fn script(profile: Profile, change: impl FnOnce(&mut ProfileOptions)) -> String {
        let mut options = ProfileOptions::for_profile(profile);
        change(&mut options);
        aws_cli(&profile.topology(&options))
    }

    fn lines_with<'a>(script: &'a str, needle: &str) -> Vec<&'a str> {
        script.lines().filter(|l| l.contains(needle)).collect()
    }

    #[test]
    fn every_rule_is_authorized_with_its_description() {
        let topology = Profile::Alb.default_topology();
        let text = aws_cli(&topology);
        let rules: usize = topology
            .groups
            .iter()
            .map(|g| g.ingress.len() + g.egress.len())
            .sum();
        assert_eq!(
            lines_with(&text, "authorize aws ec2 authorize-").len(),
            rules
        );
        for group in &topology.groups {
            for rule in group.ingress.iter().chain(&group.egress) {
                assert!(text.contains(&format!("\"Description\":\"{}\"", rule.description)));
            }
        }
        assert!(
            !text.contains("--source-group"),
            "no shorthand without descriptions"
        );
    }

    #[test]
    fn the_default_egress_goes_wherever_the_plan_is_narrower() {
        let text = script(Profile::Alb, |_| {});
        let revoked = lines_with(&text, "revoke aws ec2 revoke-security-group-egress");
        // Four groups have narrow egress (two families each); the MCP ALB keeps IPv4 all-out.
        for variable in [
            "MCP_ECS_SG_ID",
            "API_ALB_SG_ID",
            "API_ECS_SG_ID",
            "DATABASE_SG_ID",
        ] {
            let of_group = revoked.iter().filter(|l| l.contains(variable)).count();
            assert_eq!(of_group, 2, "{variable}: {revoked:#?}");
        }
        let mcp_alb: Vec<_> = revoked
            .iter()
            .filter(|l| l.contains("MCP_ALB_SG_ID"))
            .collect();
        assert_eq!(mcp_alb.len(), 1);
        assert!(mcp_alb[0].contains("::/0"), "{mcp_alb:?}");
        assert!(text.contains(
            "update-security-group-rule-descriptions-egress --group-id \"${MCP_ALB_SG_ID}\""
        ));
    }

    #[test]
    fn groups_are_found_before_they_are_created_and_tagged() {
        let text = script(Profile::Alb, |_| {});
        assert!(text.contains(
            "MCP_ALB_SG_ID=\"$(ensure_group 'mcp-alb' 'membrain-mcp-alb-sg' 'Security group for Mem-Brain MCP Application Load Balancer')\""
        ));
        assert!(text.contains("Name=tag:membrain:group,Values=$1"));
        assert!(text.contains("\"Key=membrain:group,Value=$1\" \"Key=Name,Value=$2\""));
        assert!(text.contains("VPC_ID=\"${VPC_ID:?"));
        assert!(!text.contains("create-vpc "));
        assert!(text.starts_with("#!/usr/bin/env bash\n"));
        assert!(text.contains("\nset -euo pipefail\n"));
    }

    #[test]
    fn the_gateway_creates_its_vpc_subnets_and_endpoints() {
        let text = script(Profile::Gateway, |o| {
            o.gateway_ts_store = GatewayTsStore::Timestream;
        });
        assert!(text.contains("aws ec2 create-vpc --cidr-block 10.0.0.0/16"));
        assert!(text.contains("\nNETWORK='gateway'\n"));
        assert!(text.contains("ensure_subnet \"membrain-${NETWORK}-private-0\" 10.0.128.0/18"));
        let services = crate::profiles::GATEWAY_ENDPOINT_SERVICES
            .map(String::from)
            .into_iter()
            .chain(crate::profiles::timestream_endpoint_services(1));
        for service in services {
            let line = format!(
                "ensure_endpoint '{service}' --vpc-endpoint-type Interface \\\n  \
                 --subnet-ids \"${{PRIVATE_SUBNETS[@]}}\" --security-group-ids \"${{VPC_ENDPOINTS_SG_ID}}\" \
                 --private-dns-enabled)"
            );
            assert!(text.contains(&line), "{line}");
        }
        assert!(text.contains(
            "echo \"TIMESTREAM_QUERY_CELL1_ENDPOINT_ID=${TIMESTREAM_QUERY_CELL1_ENDPOINT_ID}\""
        ));
    }

    #[test]
    fn alb_tasks_get_the_s3_prefix_list_and_gateway_endpoint_of_the_region() {
        let text = script(Profile::Alb, |_| {});
        assert!(text.contains(
            "S3_PREFIX_LIST_ID=\"$(query aws ec2 describe-prefix-lists --filters \"Name=prefix-list-name,Values=com.amazonaws.${REGION}.s3\""
        ));
        // Looked up before any rule names it.
        let looked_up = text.find("S3_PREFIX_LIST_ID=").unwrap();
        let used = text.find("'\"${S3_PREFIX_LIST_ID}\"'").unwrap();
        assert!(looked_up < used);
        assert_eq!(lines_with(&text, "${S3_PREFIX_LIST_ID}\"'").len(), 2);
        assert!(text.contains(
            "S3_ENDPOINT_ID=\"$(ensure_endpoint 's3' --vpc-endpoint-type Gateway \\\n  \
             --route-table-ids \"${PRIVATE_ROUTE_TABLES[@]}\")\""
        ));
        assert!(text.contains("--vpc-endpoint-type Gateway"));
        assert!(text.contains("#   PRIVATE_ROUTE_TABLE_IDS"));
        for service in crate::profiles::ALB_ENDPOINT_SERVICES {
            let call = format!("ensure_endpoint '{service}' --vpc-endpoint-type Interface");
            assert!(text.contains(&call), "{call}");
        }
        assert!(text.contains("echo \"S3_PREFIX_LIST_ID=${S3_PREFIX_LIST_ID}\""));
        let nat = script(Profile::Alb, |o| o.enable_vpc_endpoints = false);
        assert!(!nat.contains("PREFIX_LIST") && !nat.contains("ensure_endpoint"));
        assert!(!nat.contains("--vpc-endpoint-type"));
    }

    #[test]
    fn an_existing_vpc_with_endpoints_needs_subnets() {
        let text = script(Profile::Gateway, |o| o.create_vpc = false);
        assert!(text.contains("PRIVATE_SUBNET_IDS=\"${PRIVATE_SUBNET_IDS:?"));
        assert!(!text.contains("create-vpc "));
        let without = script(Profile::Gateway, |o| {
            o.create_vpc = false;
            o.enable_vpc_endpoints = false;
        });
        assert!(!without.contains("PRIVATE_SUBNET_IDS"));
        assert!(!without.contains("VPC_ENDPOINTS_SG_ID"));
    }
}
