variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "subnet_ids" {
  description = "Two private subnets (with a NAT gateway or VPC endpoints) in different Availability Zones."
  type        = list(string)
}

variable "source_bucket_arn" {
  description = "ARN of the versioned, non-public S3 bucket holding dags/ and requirements/."
  type        = string
}

variable "backup_bucket_arn" {
  description = "ARN of the S3 bucket mwaa-dr writes metadata backups to (it holds decrypted connections: keep it private and encrypted)."
  type        = string
}

variable "route53_zone_id" {
  description = "Private hosted zone for the stable web server name, or null to publish through SSM only."
  type        = string
  default     = null
}

variable "route53_record_name" {
  description = "Record name in that zone, e.g. airflow.internal.example.com."
  type        = string
  default     = null
}
