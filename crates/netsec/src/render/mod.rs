//! Renderers: the same topology as an AWS CLI script, a CloudFormation template and Terraform.
