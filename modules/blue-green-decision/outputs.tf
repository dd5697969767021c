output "environments" {
  description = "Enabled slots keyed by colour (\"blue\"/\"green\"): name, color, airflow_version, requirements_s3_path and whether the slot is active."
  value       = local.environments
}

output "active_color" {
  description = "Colour of the slot that serves traffic."
  value       = var.active_color
}

output "active_name" {
  description = "MWAA environment name of the active slot."
  value       = local.environments[var.active_color].name
}

output "inactive_color" {
  description = "Colour of the other slot, whether or not it is enabled."
  value       = local.inactive_color
}

output "standby_name" {
  description = "MWAA environment name of the inactive slot, or null when that slot is disabled."
  value       = try(local.environments[local.inactive_color].name, null)
}

output "both_enabled" {
  description = "True while both environments exist (clone, upgrade and soak phases of a cutover)."
  value       = length(local.environments) == 2
}
