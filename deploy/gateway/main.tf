# Membrain network "gateway": security groups, rules and VPC endpoints.
# Rendered by `membrain network render --format terraform`; change the topology and render
# again rather than editing this file.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

data "aws_region" "current" {
}

locals {
  vpc_id             = aws_vpc.main.id
  private_subnet_ids = [aws_subnet.private_0.id, aws_subnet.private_1.id]
}

variable "availability_zone_ids" {
  description = "Two availability zone ids (not names: us-east-1a is a different zone in every account) for the subnets, e.g. use1-az1,use1-az2. Avoid zones where API Gateway VPC links are not offered (in us-east-1: use1-az3; the API Gateway developer guide lists them per region). Yours: aws ec2 describe-availability-zones --query 'AvailabilityZones[].[ZoneName,ZoneId]'"
  type        = list(string)
  validation {
    condition     = length(var.availability_zone_ids) >= 2
    error_message = "Name at least two availability zone ids."
  }
}

resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
  # Private DNS names of interface endpoints need both.
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags = {
    Name               = "membrain-gateway-vpc"
    "membrain:network" = "gateway"
  }
}

resource "aws_default_security_group" "default" {
  # No rules: nothing may use the VPC's default group by accident.
  vpc_id = aws_vpc.main.id
  tags = {
    Name               = "membrain-gateway-default-unused"
    "membrain:network" = "gateway"
  }
}

resource "aws_subnet" "public_0" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.0.0/18"
  availability_zone_id    = var.availability_zone_ids[0]
  map_public_ip_on_launch = false
  tags = {
    Name               = "membrain-gateway-public-0"
    "membrain:network" = "gateway"
  }
}

resource "aws_subnet" "public_1" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.64.0/18"
  availability_zone_id    = var.availability_zone_ids[1]
  map_public_ip_on_launch = false
  tags = {
    Name               = "membrain-gateway-public-1"
    "membrain:network" = "gateway"
  }
}

resource "aws_subnet" "private_0" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.128.0/18"
  availability_zone_id    = var.availability_zone_ids[0]
  map_public_ip_on_launch = false
  tags = {
    Name               = "membrain-gateway-private-0"
    "membrain:network" = "gateway"
  }
}

resource "aws_subnet" "private_1" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.192.0/18"
  availability_zone_id    = var.availability_zone_ids[1]
  map_public_ip_on_launch = false
  tags = {
    Name               = "membrain-gateway-private-1"
    "membrain:network" = "gateway"
  }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags = {
    Name               = "membrain-gateway-igw"
    "membrain:network" = "gateway"
  }
}

resource "aws_eip" "nat" {
  domain     = "vpc"
  depends_on = [aws_internet_gateway.main]
  tags = {
    Name               = "membrain-gateway-nat"
    "membrain:network" = "gateway"
  }
}

resource "aws_nat_gateway" "main" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public_0.id
  tags = {
    Name               = "membrain-gateway-nat"
    "membrain:network" = "gateway"
  }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  tags = {
    Name               = "membrain-gateway-public"
    "membrain:network" = "gateway"
  }
}

resource "aws_route" "public_default" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main.id
}

resource "aws_route_table_association" "public_0" {
  subnet_id      = aws_subnet.public_0.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table_association" "public_1" {
  subnet_id      = aws_subnet.public_1.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  tags = {
    Name               = "membrain-gateway-private"
    "membrain:network" = "gateway"
  }
}

resource "aws_route" "private_default" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.main.id
}

resource "aws_route_table_association" "private_0" {
  subnet_id      = aws_subnet.private_0.id
  route_table_id = aws_route_table.private.id
}

resource "aws_route_table_association" "private_1" {
  subnet_id      = aws_subnet.private_1.id
  route_table_id = aws_route_table.private.id
}

resource "aws_cloudwatch_log_group" "flow_log" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest with AWS-owned keys; a customer-managed KMS key is left to accounts whose compliance requires it
  name              = "/membrain/gateway/vpc-flow-logs"
  retention_in_days = 365
}

resource "aws_iam_role" "flow_log" {
  name_prefix = "membrain-gateway-flow-log-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "vpc-flow-logs.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "flow_log" {
  name = "write-flow-logs"
  role = aws_iam_role.flow_log.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      Resource = "${aws_cloudwatch_log_group.flow_log.arn}:*"
    }]
  })
}

resource "aws_flow_log" "main" {
  vpc_id               = aws_vpc.main.id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_log.arn
  iam_role_arn         = aws_iam_role.flow_log.arn
}

resource "aws_security_group" "mcp_server" {
  #checkov:skip=CKV2_AWS_5:This file holds the network only; the group is attached by the ECS services and load balancers (deploy/<profile>/cloudformation.json or your own Terraform), and membrain network verify reports a group no tier carries
  name        = "membrain-mcp-server-sg"
  description = "Controls inbound and outbound traffic for the MCP server ECS tasks in private subnets"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "mcp-server"
    Name             = "membrain-mcp-server-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "mcp_server_ingress_0" {
  security_group_id            = aws_security_group.mcp_server.id
  description                  = "Allow MCP traffic from the NLB only"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.nlb.id
}

resource "aws_vpc_security_group_egress_rule" "mcp_server_egress_0" {
  #checkov:skip=CKV_AWS_382:The seed's table keeps all outbound traffic for this group (a load balancer opening connections to its targets, or tasks reaching AWS APIs through NAT); membrain network verify reports any wider flow
  security_group_id = aws_security_group.mcp_server.id
  description       = "Allow outbound connections to AWS services"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "vpc_link" {
  #checkov:skip=CKV2_AWS_5:This file holds the network only; the group is attached by the ECS services and load balancers (deploy/<profile>/cloudformation.json or your own Terraform), and membrain network verify reports a group no tier carries
  name        = "membrain-vpc-link-sg"
  description = "Controls traffic from API Gateway VPC Link to the MCP server"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "vpc-link"
    Name             = "membrain-vpc-link-sg"
  }
}

resource "aws_vpc_security_group_egress_rule" "vpc_link_egress_0" {
  security_group_id = aws_security_group.vpc_link.id
  description       = "Allow traffic to MCP server in VPC"
  ip_protocol       = "-1"
  cidr_ipv4         = "10.0.0.0/16"
}

resource "aws_security_group" "nlb" {
  #checkov:skip=CKV2_AWS_5:This file holds the network only; the group is attached by the ECS services and load balancers (deploy/<profile>/cloudformation.json or your own Terraform), and membrain network verify reports a group no tier carries
  name        = "membrain-nlb-sg"
  description = "Controls traffic through the internal NLB between the API Gateway VPC Link and the MCP server"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "nlb"
    Name             = "membrain-nlb-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "nlb_ingress_0" {
  security_group_id            = aws_security_group.nlb.id
  description                  = "Allow MCP traffic from the VPC Link"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.vpc_link.id
}

resource "aws_vpc_security_group_egress_rule" "nlb_egress_0" {
  security_group_id            = aws_security_group.nlb.id
  description                  = "Forward MCP traffic and health checks to the MCP server tasks"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.mcp_server.id
}

resource "aws_security_group" "vpc_endpoints" {
  name        = "membrain-vpc-endpoints-sg"
  description = "Controls access to VPC endpoints for private communication with AWS services"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "vpc-endpoints"
    Name             = "membrain-vpc-endpoints-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "vpc_endpoints_ingress_0" {
  security_group_id = aws_security_group.vpc_endpoints.id
  description       = "Allow HTTPS from VPC for AWS service access"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "10.0.0.0/16"
}

resource "aws_security_group" "database" {
  #checkov:skip=CKV2_AWS_5:This file holds the network only; the group is attached by the ECS services and load balancers (deploy/<profile>/cloudformation.json or your own Terraform), and membrain network verify reports a group no tier carries
  name        = "membrain-database-sg"
  description = "Security group for the Mem-Brain time-series PostgreSQL database (RDS)"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "database"
    Name             = "membrain-database-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "database_ingress_0" {
  security_group_id            = aws_security_group.database.id
  description                  = "Allow PostgreSQL from MCP server tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.mcp_server.id
}

resource "aws_vpc_endpoint" "secretsmanager" {
  vpc_id              = local.vpc_id
  service_name        = "com.amazonaws.${data.aws_region.current.region}.secretsmanager"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.vpc_endpoints.id]
  private_dns_enabled = true
  tags = {
    Name               = "membrain-gateway-secretsmanager"
    "membrain:network" = "gateway"
  }
}

resource "aws_vpc_endpoint" "logs" {
  vpc_id              = local.vpc_id
  service_name        = "com.amazonaws.${data.aws_region.current.region}.logs"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.vpc_endpoints.id]
  private_dns_enabled = true
  tags = {
    Name               = "membrain-gateway-logs"
    "membrain:network" = "gateway"
  }
}

output "vpc_id" {
  value = local.vpc_id
}

output "private_subnet_ids" {
  value = local.private_subnet_ids
}

output "security_group_ids" {
  description = "The id of every group, by logical id"
  value = {
    "mcp-server"    = aws_security_group.mcp_server.id
    "vpc-link"      = aws_security_group.vpc_link.id
    nlb             = aws_security_group.nlb.id
    "vpc-endpoints" = aws_security_group.vpc_endpoints.id
    database        = aws_security_group.database.id
  }
}

output "vpc_endpoint_ids" {
  value = {
    secretsmanager = aws_vpc_endpoint.secretsmanager.id
    logs           = aws_vpc_endpoint.logs.id
  }
}
