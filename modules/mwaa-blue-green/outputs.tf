################################################################################
# Decision
################################################################################

output "active_color" {
  description = "Colour of the active slot."
  value       = module.decision.active_color
}

output "active_name" {
  description = "MWAA environment name of the active slot."
  value       = module.decision.active_name
}

output "standby_name" {
  description = "MWAA environment name of the inactive slot, or null when it is disabled."
  value       = module.decision.standby_name
}

output "both_enabled" {
  description = "True while both environments exist."
  value       = module.decision.both_enabled
}

################################################################################
# Environments
################################################################################

locals {
  slots = {
    for color, env in module.environment : color => {
      name               = env.name
      color              = color
      active             = module.decision.environments[color].active
      airflow_version    = module.decision.environments[color].airflow_version
      arn                = env.arn
      webserver_url      = env.webserver_url
      status             = env.status
      execution_role_arn = env.execution_role_arn
      security_group_ids = env.security_group_ids
      log_group_arns     = env.log_group_arns
    }
  }
}

output "blue" {
  description = "The blue environment (name, color, active, airflow_version, arn, webserver_url, status, execution_role_arn, security_group_ids, log_group_arns), or null when the slot is disabled."
  value       = try(local.slots.blue, null)
}

output "green" {
  description = "The green environment (same attributes as blue), or null when the slot is disabled."
  value       = try(local.slots.green, null)
}

output "active" {
  description = "The active environment: name, color, arn, webserver_url, airflow_version."
  value = var.create ? {
    name            = local.active_slot.name
    color           = local.active_slot.color
    arn             = try(local.active_env.arn, null)
    webserver_url   = try(local.active_env.webserver_url, null)
    airflow_version = local.active_slot.airflow_version
  } : null
}

################################################################################
# Routing
################################################################################

output "ssm_parameter_name" {
  description = "Name of the SSM parameter that holds the active environment as JSON (name, webserver_url, color, airflow_version)."
  value       = try(aws_ssm_parameter.active[0].name, null)
}

output "ssm_parameter_arn" {
  description = "ARN of that SSM parameter."
  value       = try(aws_ssm_parameter.active[0].arn, null)
}

output "route53_record_fqdn" {
  description = "FQDN of the CNAME to the active web server, or null when Route 53 routing is off."
  value       = try(aws_route53_record.active[0].fqdn, null)
}
