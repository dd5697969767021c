# A cutover in progress: blue (2.9.2) serves traffic while green, cloned at
# 2.9.2 and restored from blue's metadata, has been upgraded to 2.10.3.
# Flipping traffic is `active_color = "green"`; retiring blue afterwards is
# `blue.enabled = false`.

locals {
  name = "analytics"

  tags = {
    team    = "data"
    example = "mwaa-blue-green-complete"
  }
}

module "mwaa" {
  source = "../.."

  name         = local.name
  active_color = "blue"

  blue = {
    enabled              = true
    airflow_version      = "2.9.2"
    requirements_s3_path = "requirements/requirements-2.9.2.txt"
  }

  green = {
    enabled              = true
    airflow_version      = "2.10.3"
    requirements_s3_path = "requirements/requirements-2.10.3.txt"
  }

  environment = {
    environment_class               = "mw1.small"
    schedulers                      = 2
    min_workers                     = 1
    max_workers                     = 10
    min_webservers                  = 2
    max_webservers                  = 2
    subnet_ids                      = var.subnet_ids
    security_group_ids              = [] # the module creates one per environment
    source_bucket_arn               = var.source_bucket_arn
    dag_s3_path                     = "dags"
    webserver_access_mode           = "PRIVATE_ONLY"
    endpoint_management             = "SERVICE"
    weekly_maintenance_window_start = "SUN:03:00"
    worker_replacement_strategy     = "GRACEFUL"

    airflow_configuration_options = {
      "core.load_examples" = "False"
    }

    logging = {
      dag_processing = { enabled = true, log_level = "INFO" }
      scheduler      = { enabled = true, log_level = "INFO" }
      task           = { enabled = true, log_level = "INFO" }
      webserver      = { enabled = true, log_level = "WARNING" }
      worker         = { enabled = true, log_level = "WARNING" }
    }
  }

  # Both execution roles may read and write mwaa-dr backups.
  execution_role_policy_arns = {
    mwaa_dr_backups = aws_iam_policy.mwaa_dr_backups.arn
  }

  routing = {
    ssm_parameter_name  = "/mwaa/${local.name}/active"
    route53_zone_id     = var.route53_zone_id
    route53_record_name = var.route53_record_name
  }

  tags = local.tags
}

data "aws_iam_policy_document" "mwaa_dr_backups" {
  statement {
    sid       = "ListBackupBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.backup_bucket_arn]
  }

  statement {
    sid       = "ReadWriteBackups"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${var.backup_bucket_arn}/${local.name}/*"]
  }
}

resource "aws_iam_policy" "mwaa_dr_backups" {
  name_prefix = "mwaa-dr-${local.name}-"
  description = "mwaa-dr backup and restore of the ${local.name} MWAA metadata"
  policy      = data.aws_iam_policy_document.mwaa_dr_backups.json

  tags = local.tags
}
