################################################################################
# Decision: which slots exist and which one is active
################################################################################

module "decision" {
  source = "../blue-green-decision"

  name         = var.name
  active_color = var.active_color
  blue         = var.blue
  green        = var.green
}

################################################################################
# One MWAA environment per enabled slot
################################################################################

module "environment" {
  source = "../mwaa-environment"

  # Keys are "blue"/"green": enabling or retiring one slot never touches the other.
  for_each = var.create ? module.decision.environments : {}

  name = each.value.name
  tags = merge(var.tags, {
    "mwaa-iac:deployment" = var.name
    "mwaa-iac:color"      = each.key
    "mwaa-iac:engine"     = "terraform" # mwaa-iac refuses to drive these with its api engine
  })

  airflow_version   = each.value.airflow_version
  environment_class = var.environment.environment_class
  schedulers        = var.environment.schedulers
  min_workers       = var.environment.min_workers
  max_workers       = var.environment.max_workers
  min_webservers    = var.environment.min_webservers
  max_webservers    = var.environment.max_webservers

  source_bucket_arn             = var.environment.source_bucket_arn
  dag_s3_path                   = var.environment.dag_s3_path
  plugins_s3_path               = var.environment.plugins_s3_path
  requirements_s3_path          = each.value.requirements_s3_path
  startup_script_s3_path        = var.environment.startup_script_s3_path
  airflow_configuration_options = var.environment.airflow_configuration_options

  requirements_s3_object_version   = each.value.requirements_s3_object_version
  plugins_s3_object_version        = each.value.plugins_s3_object_version
  startup_script_s3_object_version = each.value.startup_script_s3_object_version

  kms_key                         = var.environment.kms_key
  webserver_access_mode           = var.environment.webserver_access_mode
  endpoint_management             = var.environment.endpoint_management
  weekly_maintenance_window_start = var.environment.weekly_maintenance_window_start
  worker_replacement_strategy     = var.environment.worker_replacement_strategy
  logging                         = var.environment.logging

  subnet_ids            = var.environment.subnet_ids
  create_security_group = length(var.environment.security_group_ids) == 0
  security_group_ids    = var.environment.security_group_ids

  create_execution_role      = var.environment.execution_role_arn == null
  execution_role_arn         = var.environment.execution_role_arn
  execution_role_policy_arns = var.execution_role_policy_arns

  # Both colours read and write the deployment's backups (the source backs up, the target restores).
  dr_backup = var.dr == null ? null : {
    bucket_arn  = "arn:${data.aws_partition.current.partition}:s3:::${var.dr.backup_bucket}"
    prefix      = "${trim(var.dr.path_prefix, "/")}/${var.name}"
    kms_key_arn = var.dr.kms_key_arn
  }
}

data "aws_partition" "current" {}

################################################################################
# Routing: publish the active environment
################################################################################

locals {
  active_slot = module.decision.environments[module.decision.active_color]
  active_env  = try(module.environment[module.decision.active_color], null)

  # MWAA returns the web server as a bare host name; strip a scheme if one ever appears.
  active_hostname = try(replace(local.active_env.webserver_url, "/^https?:\\/\\//", ""), null)

  ssm_parameter_name    = coalesce(var.routing.ssm_parameter_name, "/mwaa/${var.name}/active")
  create_route53_record = var.create && var.routing.route53_zone_id != null && var.routing.route53_record_name != null
}

resource "aws_ssm_parameter" "active" {
  #checkov:skip=CKV2_AWS_34:Not a secret (environment name, host name, colour, version); a plain String lets CI and operators read it without KMS grants.
  count = var.create ? 1 : 0

  name        = local.ssm_parameter_name
  description = "Active MWAA environment of the ${var.name} blue/green pair"
  type        = "String"
  # Not a secret: insecure_value keeps the new value visible in plans (value is
  # always shown as sensitive), so a reviewer sees which environment a flip selects.
  insecure_value = jsonencode({
    name            = local.active_slot.name
    webserver_url   = local.active_env.webserver_url
    color           = local.active_slot.color
    airflow_version = local.active_slot.airflow_version
  })

  tags = var.tags
}

resource "aws_route53_record" "active" {
  count = local.create_route53_record ? 1 : 0

  zone_id = var.routing.route53_zone_id
  name    = var.routing.route53_record_name
  type    = "CNAME"
  ttl     = var.routing.route53_ttl
  records = [local.active_hostname]
}
