terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.11"
    }
  }

  # Add a remote backend for real use, for example:
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "mwaa/example/terraform.tfstate"
  #   region       = "us-east-1"
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region
}
