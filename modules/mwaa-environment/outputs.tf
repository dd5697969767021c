################################################################################
# MWAA environment
################################################################################

output "arn" {
  description = "ARN of the MWAA environment."
  value       = try(aws_mwaa_environment.this[0].arn, null)
}

output "name" {
  description = "Name of the MWAA environment."
  value       = try(aws_mwaa_environment.this[0].name, null)
}

output "airflow_version" {
  description = "Airflow version of the environment (as the provider reads it back)."
  value       = try(aws_mwaa_environment.this[0].airflow_version, null)
}

output "status" {
  description = "Environment status at the last refresh (AVAILABLE, UPDATING, ...)."
  value       = try(aws_mwaa_environment.this[0].status, null)
}

output "created_at" {
  description = "When the environment was created."
  value       = try(aws_mwaa_environment.this[0].created_at, null)
}

output "last_updated" {
  description = "The environment's last update: created_at, status and error (error_code, error_message)."
  value       = try(aws_mwaa_environment.this[0].last_updated, null)
}

output "webserver_url" {
  description = "Host name of the Airflow web server, as MWAA returns it (no scheme)."
  value       = try(aws_mwaa_environment.this[0].webserver_url, null)
}

output "webserver_vpc_endpoint_service" {
  description = "VPC endpoint service name of the web server (CUSTOMER endpoint management with a private web server)."
  value       = try(aws_mwaa_environment.this[0].webserver_vpc_endpoint_service, null)
}

output "database_vpc_endpoint_service" {
  description = "VPC endpoint service name of the metadata database (CUSTOMER endpoint management)."
  value       = try(aws_mwaa_environment.this[0].database_vpc_endpoint_service, null)
}

output "service_role_arn" {
  description = "ARN of MWAA's service-linked role."
  value       = try(aws_mwaa_environment.this[0].service_role_arn, null)
}

output "log_group_arns" {
  description = "CloudWatch log group ARN per log type (dag_processing, scheduler, task, webserver, worker); null for disabled types."
  value = var.create ? {
    for type in ["dag_processing", "scheduler", "task", "webserver", "worker"] :
    type => try(aws_mwaa_environment.this[0].logging_configuration[0]["${type}_logs"][0].cloud_watch_log_group_arn, null)
  } : null
}

################################################################################
# Execution role
################################################################################

output "execution_role_arn" {
  description = "ARN of the execution role the environment uses (created or given)."
  value       = var.create ? local.execution_role_arn : null
}

output "execution_role_name" {
  description = "Name of the created execution role, or null when an existing role was given."
  value       = try(aws_iam_role.this[0].name, null)
}

################################################################################
# Security group
################################################################################

output "security_group_id" {
  description = "ID of the created security group, or null."
  value       = try(aws_security_group.this[0].id, null)
}

output "security_group_ids" {
  description = "All security groups attached to the environment (created one first)."
  value       = var.create ? local.security_group_ids : null
}
