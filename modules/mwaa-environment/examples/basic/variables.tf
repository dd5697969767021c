variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name of the MWAA environment."
  type        = string
  default     = "analytics"
}

variable "subnet_ids" {
  description = "Two private subnets (with a NAT gateway or VPC endpoints) in different Availability Zones."
  type        = list(string)
}

variable "source_bucket_arn" {
  description = "ARN of the versioned, non-public S3 bucket holding dags/ and requirements/requirements.txt."
  type        = string
}

variable "backup_bucket_arn" {
  description = "ARN of the bucket mwaa-dr writes metadata backups to, or null for no DR access."
  type        = string
  default     = null
}
