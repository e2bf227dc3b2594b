# Membrain network "alb": security groups, rules and VPC endpoints.
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

variable "vpc_id" {
  description = "The VPC that gets the security groups"
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for the interface VPC endpoints"
  type        = list(string)
}

variable "private_route_table_ids" {
  description = "The private subnets' route tables: each gateway endpoint adds its route to them"
  type        = list(string)
}

data "aws_region" "current" {
}

locals {
  vpc_id                  = var.vpc_id
  private_subnet_ids      = var.private_subnet_ids
  private_route_table_ids = var.private_route_table_ids
}

resource "aws_security_group" "mcp_alb" {
  #checkov:skip=CKV2_AWS_5:This file holds the network only; the group is attached by the ECS services and load balancers (deploy/<profile>/cloudformation.json or your own Terraform), and membrain network verify reports a group no tier carries
  name        = "membrain-mcp-alb-sg"
  description = "Security group for Mem-Brain MCP Application Load Balancer"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "mcp-alb"
    Name             = "membrain-mcp-alb-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "mcp_alb_ingress_0" {
  #checkov:skip=CKV_AWS_260:The public entry: port 80 is open to the internet only so the listener can redirect HTTP to HTTPS
  security_group_id = aws_security_group.mcp_alb.id
  description       = "Allow HTTP from internet"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "mcp_alb_ingress_1" {
  security_group_id = aws_security_group.mcp_alb.id
  description       = "Allow HTTPS from internet"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "mcp_alb_egress_0" {
  #checkov:skip=CKV_AWS_382:The seed's table keeps all outbound traffic for this group (a load balancer opening connections to its targets, or tasks reaching AWS APIs through NAT); membrain network verify reports any wider flow
  security_group_id = aws_security_group.mcp_alb.id
  description       = "Allow all outbound traffic"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "mcp_ecs" {
  #checkov:skip=CKV2_AWS_5:This file holds the network only; the group is attached by the ECS services and load balancers (deploy/<profile>/cloudformation.json or your own Terraform), and membrain network verify reports a group no tier carries
  name        = "membrain-mcp-ecs-sg"
  description = "Security group for Mem-Brain MCP ECS tasks"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "mcp-ecs"
    Name             = "membrain-mcp-ecs-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "mcp_ecs_ingress_0" {
  security_group_id            = aws_security_group.mcp_ecs.id
  description                  = "Allow traffic from MCP ALB"
  ip_protocol                  = "tcp"
  from_port                    = 8100
  to_port                      = 8100
  referenced_security_group_id = aws_security_group.mcp_alb.id
}

resource "aws_vpc_security_group_egress_rule" "mcp_ecs_egress_0" {
  security_group_id            = aws_security_group.mcp_ecs.id
  description                  = "Allow HTTP to API ALB"
  ip_protocol                  = "tcp"
  from_port                    = 80
  to_port                      = 80
  referenced_security_group_id = aws_security_group.api_alb.id
}

resource "aws_vpc_security_group_egress_rule" "mcp_ecs_egress_1" {
  security_group_id            = aws_security_group.mcp_ecs.id
  description                  = "Allow HTTPS to API ALB"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.api_alb.id
}

resource "aws_vpc_security_group_egress_rule" "mcp_ecs_egress_2" {
  security_group_id            = aws_security_group.mcp_ecs.id
  description                  = "Allow HTTPS to the VPC endpoints (ECR, Logs, Secrets Manager)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.vpc_endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "mcp_ecs_egress_3" {
  security_group_id = aws_security_group.mcp_ecs.id
  description       = "Allow HTTPS to S3 for image layers"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_security_group" "api_alb" {
  #checkov:skip=CKV2_AWS_5:This file holds the network only; the group is attached by the ECS services and load balancers (deploy/<profile>/cloudformation.json or your own Terraform), and membrain network verify reports a group no tier carries
  name        = "membrain-api-alb-sg"
  description = "Security group for Mem-Brain API internal Application Load Balancer"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "api-alb"
    Name             = "membrain-api-alb-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "api_alb_ingress_0" {
  #checkov:skip=CKV_AWS_260:checkov false positive: it reads a standalone rule without a CIDR as open to 0.0.0.0/0, but the source is a security group (referenced_security_group_id)
  security_group_id            = aws_security_group.api_alb.id
  description                  = "Allow HTTP from MCP ECS"
  ip_protocol                  = "tcp"
  from_port                    = 80
  to_port                      = 80
  referenced_security_group_id = aws_security_group.mcp_ecs.id
}

resource "aws_vpc_security_group_ingress_rule" "api_alb_ingress_1" {
  security_group_id            = aws_security_group.api_alb.id
  description                  = "Allow HTTPS from MCP ECS"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.mcp_ecs.id
}

resource "aws_vpc_security_group_egress_rule" "api_alb_egress_0" {
  security_group_id            = aws_security_group.api_alb.id
  description                  = "Allow traffic to API tasks"
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
  referenced_security_group_id = aws_security_group.api_ecs.id
}

resource "aws_security_group" "api_ecs" {
  #checkov:skip=CKV2_AWS_5:This file holds the network only; the group is attached by the ECS services and load balancers (deploy/<profile>/cloudformation.json or your own Terraform), and membrain network verify reports a group no tier carries
  name        = "membrain-api-ecs-sg"
  description = "Security group for Mem-Brain API ECS tasks"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "api-ecs"
    Name             = "membrain-api-ecs-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "api_ecs_ingress_0" {
  security_group_id            = aws_security_group.api_ecs.id
  description                  = "Allow traffic from API ALB"
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
  referenced_security_group_id = aws_security_group.api_alb.id
}

resource "aws_vpc_security_group_egress_rule" "api_ecs_egress_0" {
  security_group_id            = aws_security_group.api_ecs.id
  description                  = "Allow PostgreSQL to the database"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_egress_rule" "api_ecs_egress_1" {
  security_group_id            = aws_security_group.api_ecs.id
  description                  = "Allow HTTPS to the VPC endpoints (ECR, Logs, Secrets Manager)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.vpc_endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "api_ecs_egress_2" {
  security_group_id = aws_security_group.api_ecs.id
  description       = "Allow HTTPS to S3 for image layers"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_security_group" "database" {
  #checkov:skip=CKV2_AWS_5:This file holds the network only; the group is attached by the ECS services and load balancers (deploy/<profile>/cloudformation.json or your own Terraform), and membrain network verify reports a group no tier carries
  name        = "membrain-database-sg"
  description = "Security group for the Mem-Brain PostgreSQL database (RDS)"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "database"
    Name             = "membrain-database-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "database_ingress_0" {
  security_group_id            = aws_security_group.database.id
  description                  = "Allow PostgreSQL from API tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.api_ecs.id
}

resource "aws_security_group" "vpc_endpoints" {
  name        = "membrain-vpc-endpoints-sg"
  description = "Security group for the interface VPC endpoints the Mem-Brain tasks use"
  vpc_id      = local.vpc_id
  tags = {
    "membrain:group" = "vpc-endpoints"
    Name             = "membrain-vpc-endpoints-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "vpc_endpoints_ingress_0" {
  security_group_id            = aws_security_group.vpc_endpoints.id
  description                  = "Allow HTTPS from mcp-ecs tasks"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.mcp_ecs.id
}

resource "aws_vpc_security_group_ingress_rule" "vpc_endpoints_ingress_1" {
  security_group_id            = aws_security_group.vpc_endpoints.id
  description                  = "Allow HTTPS from api-ecs tasks"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.api_ecs.id
}

resource "aws_vpc_endpoint" "ecr_api" {
  vpc_id              = local.vpc_id
  service_name        = "com.amazonaws.${data.aws_region.current.region}.ecr.api"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.vpc_endpoints.id]
  private_dns_enabled = true
  tags = {
    Name               = "membrain-alb-ecr.api"
    "membrain:network" = "alb"
  }
}

resource "aws_vpc_endpoint" "ecr_dkr" {
  vpc_id              = local.vpc_id
  service_name        = "com.amazonaws.${data.aws_region.current.region}.ecr.dkr"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.vpc_endpoints.id]
  private_dns_enabled = true
  tags = {
    Name               = "membrain-alb-ecr.dkr"
    "membrain:network" = "alb"
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
    Name               = "membrain-alb-logs"
    "membrain:network" = "alb"
  }
}

resource "aws_vpc_endpoint" "secretsmanager" {
  vpc_id              = local.vpc_id
  service_name        = "com.amazonaws.${data.aws_region.current.region}.secretsmanager"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.vpc_endpoints.id]
  private_dns_enabled = true
  tags = {
    Name               = "membrain-alb-secretsmanager"
    "membrain:network" = "alb"
  }
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = local.vpc_id
  service_name      = "com.amazonaws.${data.aws_region.current.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = local.private_route_table_ids
  tags = {
    Name               = "membrain-alb-s3"
    "membrain:network" = "alb"
  }
}

output "vpc_id" {
  value = local.vpc_id
}

output "security_group_ids" {
  description = "The id of every group, by logical id"
  value = {
    "mcp-alb"       = aws_security_group.mcp_alb.id
    "mcp-ecs"       = aws_security_group.mcp_ecs.id
    "api-alb"       = aws_security_group.api_alb.id
    "api-ecs"       = aws_security_group.api_ecs.id
    database        = aws_security_group.database.id
    "vpc-endpoints" = aws_security_group.vpc_endpoints.id
  }
}

output "vpc_endpoint_ids" {
  value = {
    "ecr.api"      = aws_vpc_endpoint.ecr_api.id
    "ecr.dkr"      = aws_vpc_endpoint.ecr_dkr.id
    logs           = aws_vpc_endpoint.logs.id
    secretsmanager = aws_vpc_endpoint.secretsmanager.id
    s3             = aws_vpc_endpoint.s3.id
  }
}
