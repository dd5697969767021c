data "aws_partition" "current" {
  count = local.create_execution_role ? 1 : 0
}

data "aws_region" "current" {
  count = local.create_execution_role ? 1 : 0
}

data "aws_caller_identity" "current" {
  count = local.create_execution_role ? 1 : 0
}

locals {
  create_execution_role = var.create && var.create_execution_role
  create_security_group = var.create && var.create_security_group

  execution_role_arn = local.create_execution_role ? aws_iam_role.this[0].arn : var.execution_role_arn
  security_group_ids = concat(aws_security_group.this[*].id, var.security_group_ids)
}

################################################################################
# MWAA environment
################################################################################

resource "aws_mwaa_environment" "this" {
  #checkov:skip=CKV_AWS_242:Scheduler logs default to enabled (var.logging); checkov cannot resolve the value through the object variable.
  #checkov:skip=CKV_AWS_243:Worker logs default to enabled (var.logging); checkov cannot resolve the value through the object variable.
  #checkov:skip=CKV_AWS_244:Web server logs default to enabled (var.logging); checkov cannot resolve the value through the object variable.
  count = var.create ? 1 : 0

  name              = var.name
  airflow_version   = var.airflow_version
  environment_class = var.environment_class
  schedulers        = var.schedulers
  min_workers       = var.min_workers
  max_workers       = var.max_workers
  min_webservers    = var.min_webservers
  max_webservers    = var.max_webservers

  source_bucket_arn             = var.source_bucket_arn
  dag_s3_path                   = var.dag_s3_path
  plugins_s3_path               = var.plugins_s3_path
  requirements_s3_path          = var.requirements_s3_path
  startup_script_s3_path        = var.startup_script_s3_path
  airflow_configuration_options = var.airflow_configuration_options

  plugins_s3_object_version        = var.plugins_s3_object_version
  requirements_s3_object_version   = var.requirements_s3_object_version
  startup_script_s3_object_version = var.startup_script_s3_object_version

  execution_role_arn = local.execution_role_arn
  kms_key            = var.kms_key

  network_configuration {
    subnet_ids         = var.subnet_ids
    security_group_ids = local.security_group_ids
  }

  webserver_access_mode = var.webserver_access_mode
  endpoint_management   = var.endpoint_management

  weekly_maintenance_window_start = var.weekly_maintenance_window_start
  worker_replacement_strategy     = var.worker_replacement_strategy

  logging_configuration {
    dag_processing_logs {
      enabled   = var.logging.dag_processing.enabled
      log_level = var.logging.dag_processing.log_level
    }

    scheduler_logs {
      enabled   = var.logging.scheduler.enabled
      log_level = var.logging.scheduler.log_level
    }

    task_logs {
      enabled   = var.logging.task.enabled
      log_level = var.logging.task.log_level
    }

    webserver_logs {
      enabled   = var.logging.webserver.enabled
      log_level = var.logging.webserver.log_level
    }

    worker_logs {
      enabled   = var.logging.worker.enabled
      log_level = var.logging.worker.log_level
    }
  }

  tags = var.tags

  # The provider defaults (update 90m) are shorter than an Airflow version
  # upgrade, which MWAA documents as taking up to two hours.
  timeouts {
    create = "120m"
    update = "180m"
    delete = "90m"
  }

  # Keep the role's permissions and the security group rules in place for as
  # long as the environment exists (creation validates them; deletion still
  # writes logs).
  depends_on = [
    aws_iam_role_policy.this,
    aws_iam_role_policy_attachment.additional,
    aws_vpc_security_group_ingress_rule.self,
    aws_vpc_security_group_egress_rule.all,
  ]
}

################################################################################
# Execution role
################################################################################

locals {
  partition  = try(data.aws_partition.current[0].partition, "aws")
  dns_suffix = try(data.aws_partition.current[0].dns_suffix, "amazonaws.com")
  region     = try(data.aws_region.current[0].region, "")
  account_id = try(data.aws_caller_identity.current[0].account_id, "")

  environment_arn = "arn:${local.partition}:airflow:${local.region}:${local.account_id}:environment/${var.name}"

  # IAM role names are limited to 64 characters, MWAA names to 80: fall back to
  # a generated name (prefix + 26 characters) for long environment names.
  default_role_name      = "mwaa-${var.name}"
  role_name              = coalesce(var.execution_role_name, local.default_role_name)
  role_name_fits         = length(local.role_name) <= 64
  role_name_prefix_limit = 38

  # Objects MWAA reads from the source bucket: the DAG folder and the optional files.
  source_object_arns = concat(
    ["${var.source_bucket_arn}/${trim(var.dag_s3_path, "/")}/*"],
    [
      for path in [var.plugins_s3_path, var.requirements_s3_path, var.startup_script_s3_path] :
      "${var.source_bucket_arn}/${trimprefix(path, "/")}" if path != null
    ],
  )
}

data "aws_iam_policy_document" "assume_role" {
  count = local.create_execution_role ? 1 : 0

  statement {
    sid     = "MwaaAssumeRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["airflow.${local.dns_suffix}", "airflow-env.${local.dns_suffix}"]
    }

    # Confused-deputy protection: only this account's environment of this name.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.environment_arn]
    }
  }
}

data "aws_iam_policy_document" "this" {
  count = local.create_execution_role ? 1 : 0

  statement {
    sid       = "PublishEnvironmentMetrics"
    effect    = "Allow"
    actions   = ["airflow:PublishMetrics"]
    resources = [local.environment_arn]
  }

  statement {
    sid    = "ReadSourceBucket"
    effect = "Allow"
    actions = [
      "s3:GetBucketLocation",
      "s3:GetBucketPublicAccessBlock",
      "s3:GetBucketVersioning",
      "s3:GetEncryptionConfiguration",
      "s3:ListBucket",
      "s3:ListBucketVersions",
    ]
    resources = [var.source_bucket_arn]
  }

  statement {
    sid       = "ReadSourceObjects"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = local.source_object_arns
  }

  statement {
    # MWAA refuses buckets that could be public; this account-level read has no resource type.
    sid       = "CheckAccountPublicAccessBlock"
    effect    = "Allow"
    actions   = ["s3:GetAccountPublicAccessBlock"]
    resources = ["*"]
  }

  statement {
    sid    = "WriteEnvironmentLogs"
    effect = "Allow"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:GetLogEvents",
      "logs:GetLogGroupFields",
      "logs:GetLogRecord",
      "logs:GetQueryResults",
      "logs:PutLogEvents",
    ]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:airflow-${var.name}-*"]
  }

  statement {
    sid       = "DescribeLogGroups"
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["*"]
  }

  statement {
    # PutMetricData supports no resource-level permissions.
    sid       = "PublishCloudWatchMetrics"
    effect    = "Allow"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
  }

  statement {
    # The Celery queue lives in an account owned by MWAA, hence the account wildcard.
    sid    = "UseCeleryQueue"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = ["arn:${local.partition}:sqs:${local.region}:*:airflow-celery-*"]
  }

  dynamic "statement" {
    # mwaa-dr backups of the deployment: listing only under its prefix.
    for_each = var.dr_backup != null ? [var.dr_backup] : []

    content {
      sid       = "ListDrPrefix"
      effect    = "Allow"
      actions   = ["s3:ListBucket"]
      resources = [statement.value.bucket_arn]

      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${statement.value.prefix}/*"]
      }
    }
  }

  dynamic "statement" {
    # Backups are written by the source colour and read by the target colour (both colours share
    # the prefix), and the restore cleans what it staged.
    for_each = var.dr_backup != null ? [var.dr_backup] : []

    content {
      sid       = "ReadWriteDrPrefix"
      effect    = "Allow"
      actions   = ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
      resources = ["${statement.value.bucket_arn}/${statement.value.prefix}/*"]
    }
  }

  dynamic "statement" {
    # The DR bucket's KMS key, only through S3.
    for_each = try(var.dr_backup.kms_key_arn, null) != null ? [var.dr_backup.kms_key_arn] : []

    content {
      sid       = "UseDrBucketKey"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]

      condition {
        test     = "StringLike"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.${local.dns_suffix}"]
      }
    }
  }

  dynamic "statement" {
    # Customer managed key: only that key, only through SQS and S3.
    for_each = var.kms_key != null ? [var.kms_key] : []

    content {
      sid       = "UseCustomerManagedKey"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"]
      resources = [statement.value]

      condition {
        test     = "StringLike"
        variable = "kms:ViaService"
        values   = ["sqs.${local.region}.${local.dns_suffix}", "s3.${local.region}.${local.dns_suffix}"]
      }
    }
  }

  dynamic "statement" {
    # AWS owned key: the Celery queue is encrypted with a key outside this
    # account, so AWS documents this grant on keys *not* in the account, usable
    # only through SQS.
    for_each = var.kms_key == null ? [local.account_id] : []

    content {
      sid           = "UseAwsOwnedQueueKey"
      effect        = "Allow"
      actions       = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"]
      not_resources = ["arn:${local.partition}:kms:*:${statement.value}:key/*"]

      condition {
        test     = "StringLike"
        variable = "kms:ViaService"
        values   = ["sqs.${local.region}.${local.dns_suffix}"]
      }
    }
  }
}

resource "aws_iam_role" "this" {
  count = local.create_execution_role ? 1 : 0

  name                 = local.role_name_fits ? local.role_name : null
  name_prefix          = local.role_name_fits ? null : "${substr(local.role_name, 0, local.role_name_prefix_limit - 1)}-"
  path                 = var.execution_role_path
  description          = "Execution role of MWAA environment ${var.name}"
  assume_role_policy   = data.aws_iam_policy_document.assume_role[0].json
  permissions_boundary = var.execution_role_permissions_boundary

  tags = var.tags
}

resource "aws_iam_role_policy" "this" {
  count = local.create_execution_role ? 1 : 0

  name   = "mwaa-execution"
  role   = aws_iam_role.this[0].id
  policy = data.aws_iam_policy_document.this[0].json
}

resource "aws_iam_role_policy_attachment" "additional" {
  for_each = local.create_execution_role ? var.execution_role_policy_arns : {}

  role       = aws_iam_role.this[0].name
  policy_arn = each.value
}

################################################################################
# Security group
################################################################################

data "aws_subnet" "this" {
  count = local.create_security_group && var.vpc_id == null ? 1 : 0

  id = var.subnet_ids[0]
}

resource "aws_security_group" "this" {
  count = local.create_security_group ? 1 : 0

  name_prefix = "${var.name}-"
  description = "MWAA environment ${var.name}: traffic between its own interfaces"
  vpc_id      = coalesce(var.vpc_id, try(data.aws_subnet.this[0].vpc_id, null))

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "self" {
  count = local.create_security_group ? 1 : 0

  description                  = "All traffic between the interfaces of this environment (MWAA requirement)"
  security_group_id            = aws_security_group.this[0].id
  referenced_security_group_id = aws_security_group.this[0].id
  ip_protocol                  = "-1"

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "all" {
  count = local.create_security_group ? 1 : 0

  description       = "Outbound to AWS service endpoints (S3, SQS, CloudWatch, KMS, the metadata database) and DAG targets"
  security_group_id = aws_security_group.this[0].id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"

  tags = var.tags
}
