output "active" {
  description = "The active environment."
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
  description = "SSM parameter holding the active environment."
  value       = module.mwaa.ssm_parameter_name
}

output "route53_record_fqdn" {
  description = "Stable DNS name of the active web server, or null."
  value       = module.mwaa.route53_record_fqdn
}
