#!/usr/bin/env bash
# Membrain network "alb": security groups, rules and VPC endpoints.
# Rendered by `membrain network render --format aws-cli`; change the topology and render
# again rather than editing this file.
#
# Needs the aws CLI with credentials and a region (AWS_REGION, AWS_DEFAULT_REGION or
# `aws configure`). Input from the environment:
#   VPC_ID               the VPC that gets the groups (vpc-...)
#   PRIVATE_SUBNET_IDS   the subnets for the interface endpoints (space or comma separated)
#   PRIVATE_ROUTE_TABLE_IDS  optional: the route tables gateway endpoints add their route
#                        to [default: the private subnets' own, else the VPC's main one]
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
NETWORK='alb'

REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}"
: "${REGION:?set AWS_REGION (or AWS_DEFAULT_REGION) to the region to deploy in}"
export AWS_DEFAULT_REGION="${REGION}"

VPC_ID="${VPC_ID:?set VPC_ID to the VPC that gets the groups (vpc-...)}"
PRIVATE_SUBNET_IDS="${PRIVATE_SUBNET_IDS:?set PRIVATE_SUBNET_IDS to the subnets for the VPC endpoints}"
read -r -a PRIVATE_SUBNETS <<<"${PRIVATE_SUBNET_IDS//,/ }"

log "==> Security groups in ${VPC_ID}"
MCP_ALB_SG_ID="$(ensure_group 'mcp-alb' 'membrain-mcp-alb-sg' 'Security group for Mem-Brain MCP Application Load Balancer')"
MCP_ECS_SG_ID="$(ensure_group 'mcp-ecs' 'membrain-mcp-ecs-sg' 'Security group for Mem-Brain MCP ECS tasks')"
API_ALB_SG_ID="$(ensure_group 'api-alb' 'membrain-api-alb-sg' 'Security group for Mem-Brain API internal Application Load Balancer')"
API_ECS_SG_ID="$(ensure_group 'api-ecs' 'membrain-api-ecs-sg' 'Security group for Mem-Brain API ECS tasks')"
DATABASE_SG_ID="$(ensure_group 'database' 'membrain-database-sg' 'Security group for the Mem-Brain PostgreSQL database (RDS)')"
VPC_ENDPOINTS_SG_ID="$(ensure_group 'vpc-endpoints' 'membrain-vpc-endpoints-sg' 'Security group for the interface VPC endpoints the Mem-Brain tasks use')"

log "==> AWS-managed prefix lists"
S3_PREFIX_LIST_ID="$(query aws ec2 describe-prefix-lists --filters "Name=prefix-list-name,Values=com.amazonaws.${REGION}.s3" \
  --query 'PrefixLists[0].PrefixListId' --output text)"
: "${S3_PREFIX_LIST_ID:?this region has no prefix list com.amazonaws.${REGION}.s3}"
log "com.amazonaws.${REGION}.s3: ${S3_PREFIX_LIST_ID}"

log "==> Rules"
# MCP ALB Security Group: ingress
authorize aws ec2 authorize-security-group-ingress --group-id "${MCP_ALB_SG_ID}" --ip-permissions '[{"FromPort":80,"IpProtocol":"tcp","IpRanges":[{"CidrIp":"0.0.0.0/0","Description":"Allow HTTP from internet"}],"ToPort":80}]'
authorize aws ec2 authorize-security-group-ingress --group-id "${MCP_ALB_SG_ID}" --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","IpRanges":[{"CidrIp":"0.0.0.0/0","Description":"Allow HTTPS from internet"}],"ToPort":443}]'
# MCP ALB Security Group: egress
authorize aws ec2 authorize-security-group-egress --group-id "${MCP_ALB_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0","Description":"Allow all outbound traffic"}]}]'
aws ec2 update-security-group-rule-descriptions-egress --group-id "${MCP_ALB_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0","Description":"Allow all outbound traffic"}]}]' >/dev/null
# MCP ECS Security Group: ingress
authorize aws ec2 authorize-security-group-ingress --group-id "${MCP_ECS_SG_ID}" --ip-permissions '[{"FromPort":8100,"IpProtocol":"tcp","ToPort":8100,"UserIdGroupPairs":[{"Description":"Allow traffic from MCP ALB","GroupId":"'"${MCP_ALB_SG_ID}"'"}]}]'
# MCP ECS Security Group: egress
authorize aws ec2 authorize-security-group-egress --group-id "${MCP_ECS_SG_ID}" --ip-permissions '[{"FromPort":80,"IpProtocol":"tcp","ToPort":80,"UserIdGroupPairs":[{"Description":"Allow HTTP to API ALB","GroupId":"'"${API_ALB_SG_ID}"'"}]}]'
authorize aws ec2 authorize-security-group-egress --group-id "${MCP_ECS_SG_ID}" --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","ToPort":443,"UserIdGroupPairs":[{"Description":"Allow HTTPS to API ALB","GroupId":"'"${API_ALB_SG_ID}"'"}]}]'
authorize aws ec2 authorize-security-group-egress --group-id "${MCP_ECS_SG_ID}" --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","ToPort":443,"UserIdGroupPairs":[{"Description":"Allow HTTPS to the VPC endpoints (ECR, Logs, Secrets Manager)","GroupId":"'"${VPC_ENDPOINTS_SG_ID}"'"}]}]'
authorize aws ec2 authorize-security-group-egress --group-id "${MCP_ECS_SG_ID}" --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","PrefixListIds":[{"Description":"Allow HTTPS to S3 for image layers","PrefixListId":"'"${S3_PREFIX_LIST_ID}"'"}],"ToPort":443}]'
# API ALB Security Group: ingress
authorize aws ec2 authorize-security-group-ingress --group-id "${API_ALB_SG_ID}" --ip-permissions '[{"FromPort":80,"IpProtocol":"tcp","ToPort":80,"UserIdGroupPairs":[{"Description":"Allow HTTP from MCP ECS","GroupId":"'"${MCP_ECS_SG_ID}"'"}]}]'
authorize aws ec2 authorize-security-group-ingress --group-id "${API_ALB_SG_ID}" --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","ToPort":443,"UserIdGroupPairs":[{"Description":"Allow HTTPS from MCP ECS","GroupId":"'"${MCP_ECS_SG_ID}"'"}]}]'
# API ALB Security Group: egress
authorize aws ec2 authorize-security-group-egress --group-id "${API_ALB_SG_ID}" --ip-permissions '[{"FromPort":8000,"IpProtocol":"tcp","ToPort":8000,"UserIdGroupPairs":[{"Description":"Allow traffic to API tasks","GroupId":"'"${API_ECS_SG_ID}"'"}]}]'
# API ECS Security Group: ingress
authorize aws ec2 authorize-security-group-ingress --group-id "${API_ECS_SG_ID}" --ip-permissions '[{"FromPort":8000,"IpProtocol":"tcp","ToPort":8000,"UserIdGroupPairs":[{"Description":"Allow traffic from API ALB","GroupId":"'"${API_ALB_SG_ID}"'"}]}]'
# API ECS Security Group: egress
authorize aws ec2 authorize-security-group-egress --group-id "${API_ECS_SG_ID}" --ip-permissions '[{"FromPort":5432,"IpProtocol":"tcp","ToPort":5432,"UserIdGroupPairs":[{"Description":"Allow PostgreSQL to the database","GroupId":"'"${DATABASE_SG_ID}"'"}]}]'
authorize aws ec2 authorize-security-group-egress --group-id "${API_ECS_SG_ID}" --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","ToPort":443,"UserIdGroupPairs":[{"Description":"Allow HTTPS to the VPC endpoints (ECR, Logs, Secrets Manager)","GroupId":"'"${VPC_ENDPOINTS_SG_ID}"'"}]}]'
authorize aws ec2 authorize-security-group-egress --group-id "${API_ECS_SG_ID}" --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","PrefixListIds":[{"Description":"Allow HTTPS to S3 for image layers","PrefixListId":"'"${S3_PREFIX_LIST_ID}"'"}],"ToPort":443}]'
# Database Security Group: ingress
authorize aws ec2 authorize-security-group-ingress --group-id "${DATABASE_SG_ID}" --ip-permissions '[{"FromPort":5432,"IpProtocol":"tcp","ToPort":5432,"UserIdGroupPairs":[{"Description":"Allow PostgreSQL from API tasks","GroupId":"'"${API_ECS_SG_ID}"'"}]}]'
# VPC Endpoints Security Group: ingress
authorize aws ec2 authorize-security-group-ingress --group-id "${VPC_ENDPOINTS_SG_ID}" --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","ToPort":443,"UserIdGroupPairs":[{"Description":"Allow HTTPS from mcp-ecs tasks","GroupId":"'"${MCP_ECS_SG_ID}"'"}]}]'
authorize aws ec2 authorize-security-group-ingress --group-id "${VPC_ENDPOINTS_SG_ID}" --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","ToPort":443,"UserIdGroupPairs":[{"Description":"Allow HTTPS from api-ecs tasks","GroupId":"'"${API_ECS_SG_ID}"'"}]}]'

log "==> Default egress"
# MCP ALB Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${MCP_ALB_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'
# MCP ECS Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${MCP_ECS_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]'
revoke aws ec2 revoke-security-group-egress --group-id "${MCP_ECS_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'
# API ALB Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${API_ALB_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]'
revoke aws ec2 revoke-security-group-egress --group-id "${API_ALB_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'
# API ECS Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${API_ECS_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]'
revoke aws ec2 revoke-security-group-egress --group-id "${API_ECS_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'
# Database Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${DATABASE_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]'
revoke aws ec2 revoke-security-group-egress --group-id "${DATABASE_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'
# VPC Endpoints Security Group: the plan's egress is narrower than AWS's default allow-all rule.
revoke aws ec2 revoke-security-group-egress --group-id "${VPC_ENDPOINTS_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]'
revoke aws ec2 revoke-security-group-egress --group-id "${VPC_ENDPOINTS_SG_ID}" --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'

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
ECR_API_ENDPOINT_ID="$(ensure_endpoint 'ecr.api' --vpc-endpoint-type Interface \
  --subnet-ids "${PRIVATE_SUBNETS[@]}" --security-group-ids "${VPC_ENDPOINTS_SG_ID}" --private-dns-enabled)"
ECR_DKR_ENDPOINT_ID="$(ensure_endpoint 'ecr.dkr' --vpc-endpoint-type Interface \
  --subnet-ids "${PRIVATE_SUBNETS[@]}" --security-group-ids "${VPC_ENDPOINTS_SG_ID}" --private-dns-enabled)"
LOGS_ENDPOINT_ID="$(ensure_endpoint 'logs' --vpc-endpoint-type Interface \
  --subnet-ids "${PRIVATE_SUBNETS[@]}" --security-group-ids "${VPC_ENDPOINTS_SG_ID}" --private-dns-enabled)"
SECRETSMANAGER_ENDPOINT_ID="$(ensure_endpoint 'secretsmanager' --vpc-endpoint-type Interface \
  --subnet-ids "${PRIVATE_SUBNETS[@]}" --security-group-ids "${VPC_ENDPOINTS_SG_ID}" --private-dns-enabled)"

log "==> Gateway VPC endpoints"
# The route tables gateway endpoints add their route to: PRIVATE_ROUTE_TABLE_IDS, else the
# private subnets' own, else the VPC's main one.
if [ -z "${PRIVATE_ROUTE_TABLE_IDS:-}" ] && [ -n "${PRIVATE_SUBNETS[*]:-}" ]; then
  PRIVATE_ROUTE_TABLE_IDS="$(query aws ec2 describe-route-tables \
    --filters "Name=association.subnet-id,Values=$(IFS=,; printf '%s' "${PRIVATE_SUBNETS[*]}")" \
    --query 'RouteTables[].RouteTableId' --output text)"
fi
if [ -z "${PRIVATE_ROUTE_TABLE_IDS:-}" ]; then
  PRIVATE_ROUTE_TABLE_IDS="$(query aws ec2 describe-route-tables \
    --filters "Name=vpc-id,Values=${VPC_ID}" Name=association.main,Values=true \
    --query 'RouteTables[0].RouteTableId' --output text)"
fi
read -r -a PRIVATE_ROUTE_TABLES <<<"${PRIVATE_ROUTE_TABLE_IDS//,/ }"
S3_ENDPOINT_ID="$(ensure_endpoint 's3' --vpc-endpoint-type Gateway \
  --route-table-ids "${PRIVATE_ROUTE_TABLES[@]}")"

log "==> Done"
echo "VPC_ID=${VPC_ID}"
echo "MCP_ALB_SG_ID=${MCP_ALB_SG_ID}"
echo "MCP_ECS_SG_ID=${MCP_ECS_SG_ID}"
echo "API_ALB_SG_ID=${API_ALB_SG_ID}"
echo "API_ECS_SG_ID=${API_ECS_SG_ID}"
echo "DATABASE_SG_ID=${DATABASE_SG_ID}"
echo "VPC_ENDPOINTS_SG_ID=${VPC_ENDPOINTS_SG_ID}"
echo "S3_PREFIX_LIST_ID=${S3_PREFIX_LIST_ID}"
echo "ECR_API_ENDPOINT_ID=${ECR_API_ENDPOINT_ID}"
echo "ECR_DKR_ENDPOINT_ID=${ECR_DKR_ENDPOINT_ID}"
echo "LOGS_ENDPOINT_ID=${LOGS_ENDPOINT_ID}"
echo "SECRETSMANAGER_ENDPOINT_ID=${SECRETSMANAGER_ENDPOINT_ID}"
echo "S3_ENDPOINT_ID=${S3_ENDPOINT_ID}"
