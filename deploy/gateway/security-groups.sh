#!/usr/bin/env bash
# Membrain network "gateway": security groups, rules and VPC endpoints.
# Rendered by `membrain network render --format aws-cli`; change the topology and render
# again rather than editing this file.
#
# Needs the aws CLI with credentials and a region (AWS_REGION, AWS_DEFAULT_REGION or
# `aws configure`). Input from the environment:
#   (none) the VPC 10.0.0.0/16 and its private subnets are created and tagged membrain:network=gateway
#
# Safe to run again: groups are found by their membrain:group tag (or name), rules that
# exist are kept, and the ids are printed at the end as NAME=value lines.
set -euo pipefail
# Failures inside $(...) stop the script too (bash 4.4+).
shopt -s inherit_errexit

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

# The network's name, in the names and membrain:network tags of what this script creates.
NETWORK='gateway'

REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}"
: "${REGION:?set AWS_REGION (or AWS_DEFAULT_REGION) to the region to deploy in}"
export AWS_DEFAULT_REGION="${REGION}"

log "==> VPC 10.0.0.0/16"
VPC_ID="$(query aws ec2 describe-vpcs --filters "Name=tag:membrain:network,Values=${NETWORK}" \
  --query 'Vpcs[0].VpcId' --output text)"
if [ -z "${VPC_ID}" ]; then
  VPC_ID="$(aws ec2 create-vpc --cidr-block 10.0.0.0/16 --query Vpc.VpcId --output text \
    --tag-specifications "ResourceType=vpc,Tags=[{Key=Name,Value=membrain-${NETWORK}-vpc},{Key=membrain:network,Value=${NETWORK}}]")"
  log "created membrain-${NETWORK}-vpc: ${VPC_ID}"
fi
# Private DNS names of interface endpoints need both DNS attributes.
aws ec2 modify-vpc-attribute --vpc-id "${VPC_ID}" --enable-dns-support '{"Value":true}'
aws ec2 modify-vpc-attribute --vpc-id "${VPC_ID}" --enable-dns-hostnames '{"Value":true}'
# Zone ids, not names (a name is a different zone in every account): ZONE_IDS="use1-az1 use1-az2".
# Avoid zones where API Gateway VPC links are not offered (us-east-1: use1-az3). Unset: the
# first two available zones, which may include such a zone.
if [ -n "${ZONE_IDS:-}" ]; then
  read -r -a ZONES <<<"${ZONE_IDS//,/ }"
else
  read -r -a ZONES <<<"$(aws ec2 describe-availability-zones --filters Name=state,Values=available \
    --query 'AvailabilityZones[0:2].ZoneId' --output text)"
fi
# ensure_subnet NAME CIDR ZONE_ID: prints the id of the tagged subnet, creating it if needed.
ensure_subnet() {
  local id
  id="$(query aws ec2 describe-subnets --filters "Name=vpc-id,Values=${VPC_ID}" "Name=tag:Name,Values=$1" \
    --query 'Subnets[0].SubnetId' --output text)"
  if [ -z "$id" ]; then
    id="$(aws ec2 create-subnet --vpc-id "${VPC_ID}" --cidr-block "$2" --availability-zone-id "$3" \
      --tag-specifications "ResourceType=subnet,Tags=[{Key=Name,Value=$1},{Key=membrain:network,Value=${NETWORK}}]" \
      --query Subnet.SubnetId --output text)"
    log "created $1: $id"
  fi
  printf '%s' "$id"
}
PRIVATE_SUBNET_0="$(ensure_subnet "membrain-${NETWORK}-private-0" 10.0.128.0/18 "${ZONES[0]}")"
PRIVATE_SUBNET_1="$(ensure_subnet "membrain-${NETWORK}-private-1" 10.0.192.0/18 "${ZONES[1]}")"
PRIVATE_SUBNETS=("${PRIVATE_SUBNET_0}" "${PRIVATE_SUBNET_1}")

log "==> Security groups in ${VPC_ID}"
MCP_SERVER_SG_ID="$(ensure_group 'mcp-server' 'membrain-mcp-server-sg' 'Controls inbound and outbound traffic for the MCP server ECS tasks in private subnets')"
VPC_LINK_SG_ID="$(ensure_group 'vpc-link' 'membrain-vpc-link-sg' 'Controls traffic from API Gateway VPC Link to the MCP server')"
NLB_SG_ID="$(ensure_group 'nlb' 'membrain-nlb-sg' 'Controls traffic through the internal NLB between the API Gateway VPC Link and the MCP server')"
VPC_ENDPOINTS_SG_ID="$(ensure_group 'vpc-endpoints' 'membrain-vpc-endpoints-sg' 'Controls access to VPC endpoints for private communication with AWS services')"
DATABASE_SG_ID="$(ensure_group 'database' 'membrain-database-sg' 'Security group for the Mem-Brain time-series PostgreSQL database (RDS)')"

log "==> Rules"
# MCP Server Security Group: ingress
authorize aws ec2 authorize-security-group-ingress --group-id "${MCP_SERVER_SG_ID}" --ip-permissions '[{"FromPort":8080,"IpProtocol":"tcp","ToPort":8080,"UserIdGroupPairs":[{"Description":"Allow MCP traffic from the NLB only","GroupId":"'"${NLB_SG_ID}"'"}]}]'
# MCP Server Security Group: egress
authorize aws ec2 authorize-security-group-egress --group-id "${MCP_SERVER_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0","Description":"Allow outbound connections to AWS services"}]}]'
aws ec2 update-security-group-rule-descriptions-egress --group-id "${MCP_SERVER_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0","Description":"Allow outbound connections to AWS services"}]}]' >/dev/null
# VPC Link Security Group: egress
authorize aws ec2 authorize-security-group-egress --group-id "${VPC_LINK_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"10.0.0.0/16","Description":"Allow traffic to MCP server in VPC"}]}]'
# NLB Security Group: ingress
authorize aws ec2 authorize-security-group-ingress --group-id "${NLB_SG_ID}" --ip-permissions '[{"FromPort":8080,"IpProtocol":"tcp","ToPort":8080,"UserIdGroupPairs":[{"Description":"Allow MCP traffic from the VPC Link","GroupId":"'"${VPC_LINK_SG_ID}"'"}]}]'
# NLB Security Group: egress
authorize aws ec2 authorize-security-group-egress --group-id "${NLB_SG_ID}" --ip-permissions '[{"FromPort":8080,"IpProtocol":"tcp","ToPort":8080,"UserIdGroupPairs":[{"Description":"Forward MCP traffic and health checks to the MCP server tasks","GroupId":"'"${MCP_SERVER_SG_ID}"'"}]}]'
# VPC Endpoints Security Group: ingress
authorize aws ec2 authorize-security-group-ingress --group-id "${VPC_ENDPOINTS_SG_ID}" --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","IpRanges":[{"CidrIp":"10.0.0.0/16","Description":"Allow HTTPS from VPC for AWS service access"}],"ToPort":443}]'
# Database Security Group: ingress
authorize aws ec2 authorize-security-group-ingress --group-id "${DATABASE_SG_ID}" --ip-permissions '[{"FromPort":5432,"IpProtocol":"tcp","ToPort":5432,"UserIdGroupPairs":[{"Description":"Allow PostgreSQL from MCP server tasks","GroupId":"'"${MCP_SERVER_SG_ID}"'"}]}]'

log "==> Default egress"
# MCP Server Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${MCP_SERVER_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'
# VPC Link Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${VPC_LINK_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]'
revoke aws ec2 revoke-security-group-egress --group-id "${VPC_LINK_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'
# NLB Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${NLB_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]'
revoke aws ec2 revoke-security-group-egress --group-id "${NLB_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'
# VPC Endpoints Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${VPC_ENDPOINTS_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]'
revoke aws ec2 revoke-security-group-egress --group-id "${VPC_ENDPOINTS_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'
# Database Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${DATABASE_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]'
revoke aws ec2 revoke-security-group-egress --group-id "${DATABASE_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'

# ensure_endpoint SERVICE CREATE_ARGUMENTS...: prints the id of the VPC's endpoint for
# com.amazonaws.$REGION.SERVICE, creating it with the arguments (its type and where it
# goes) if there is none.
ensure_endpoint() {
  local short="$1" service="com.amazonaws.${REGION}.$1" id
  shift
  id="$(query aws ec2 describe-vpc-endpoints --filters "Name=vpc-id,Values=${VPC_ID}" \
    "Name=service-name,Values=${service}" "Name=vpc-endpoint-state,Values=pendingAcceptance,pending,available" \
    --query 'VpcEndpoints[0].VpcEndpointId' --output text)"
  if [ -z "$id" ]; then
    id="$(aws ec2 create-vpc-endpoint --vpc-id "${VPC_ID}" --service-name "${service}" "$@" \
      --tag-specifications "ResourceType=vpc-endpoint,Tags=[{Key=Name,Value=membrain-${NETWORK}-${short}},{Key=membrain:network,Value=${NETWORK}}]" \
      --query VpcEndpoint.VpcEndpointId --output text)"
    log "created the ${service} endpoint: $id"
  else
    log "found the ${service} endpoint: $id"
  fi
  printf '%s' "$id"
}

log "==> Interface VPC endpoints"
SECRETSMANAGER_ENDPOINT_ID="$(ensure_endpoint 'secretsmanager' --vpc-endpoint-type Interface \
  --subnet-ids "${PRIVATE_SUBNETS[@]}" --security-group-ids "${VPC_ENDPOINTS_SG_ID}" --private-dns-enabled)"
LOGS_ENDPOINT_ID="$(ensure_endpoint 'logs' --vpc-endpoint-type Interface \
  --subnet-ids "${PRIVATE_SUBNETS[@]}" --security-group-ids "${VPC_ENDPOINTS_SG_ID}" --private-dns-enabled)"

log "==> Done"
echo "VPC_ID=${VPC_ID}"
echo "PRIVATE_SUBNET_0=${PRIVATE_SUBNET_0}"
echo "PRIVATE_SUBNET_1=${PRIVATE_SUBNET_1}"
echo "MCP_SERVER_SG_ID=${MCP_SERVER_SG_ID}"
echo "VPC_LINK_SG_ID=${VPC_LINK_SG_ID}"
echo "NLB_SG_ID=${NLB_SG_ID}"
echo "VPC_ENDPOINTS_SG_ID=${VPC_ENDPOINTS_SG_ID}"
echo "DATABASE_SG_ID=${DATABASE_SG_ID}"
echo "SECRETSMANAGER_ENDPOINT_ID=${SECRETSMANAGER_ENDPOINT_ID}"
echo "LOGS_ENDPOINT_ID=${LOGS_ENDPOINT_ID}"
