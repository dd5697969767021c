terraform {
  # 1.9: validation rules below refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.11.0 added worker_replacement_strategy to aws_mwaa_environment.
      version = ">= 6.11"
    }
  }
}
