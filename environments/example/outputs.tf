output "active_color" {
  description = "Colour of the active slot."
  value       = module.mwaa.active_color
}

output "active_name" {
  description = "MWAA environment name of the active slot."
  value       = module.mwaa.active_name
}

output "standby_name" {
  description = "MWAA environment name of the inactive slot, or null."
  value       = module.mwaa.standby_name
}

output "both_enabled" {
  description = "True while both environments exist."
  value       = module.mwaa.both_enabled
}

output "active" {
  description = "The active environment: name, color, arn, webserver_url, airflow_version."
  value       = module.mwaa.active
}

output "blue" {
  description = "The blue environment, or null."
  value       = module.mwaa.blue
}

output "green" {
  description = "The green environment, or null."
  value       = module.mwaa.green
}

output "ssm_parameter_name" {
  description = "SSM parameter holding the active environment as JSON."
  value       = module.mwaa.ssm_parameter_name
}

output "route53_record_fqdn" {
  description = "CNAME of the active web server, or null."
  value       = module.mwaa.route53_record_fqdn
}
