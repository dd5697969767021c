output "arn" {
  description = "ARN of the MWAA environment."
  value       = module.mwaa.arn
}

output "webserver_url" {
  description = "Host name of the Airflow web server (no scheme)."
  value       = module.mwaa.webserver_url
}

output "execution_role_arn" {
  description = "ARN of the execution role the module created."
  value       = module.mwaa.execution_role_arn
}

output "security_group_ids" {
  description = "Security groups attached to the environment."
  value       = module.mwaa.security_group_ids
}

output "log_group_arns" {
  description = "CloudWatch log group ARN per log type."
  value       = module.mwaa.log_group_arns
}
