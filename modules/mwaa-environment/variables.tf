################################################################################
# General
################################################################################

variable "create" {
  description = "Whether to create any resource at all. With false the module plans to nothing and its outputs are null."
  type        = bool
  default     = true
}

variable "name" {
  description = "MWAA environment name (unique per account and region, immutable: changing it replaces the environment). Also used for the execution role and security group names."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][0-9a-zA-Z_-]*$", var.name)) && length(var.name) <= 80
    error_message = "name must start with a letter, contain only letters, digits, '-' and '_', and be at most 80 characters long."
  }
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}
}

################################################################################
# Environment
################################################################################

variable "airflow_version" {
  description = "Apache Airflow version (major.minor.patch). null lets MWAA choose its default. A minor change is an in-place upgrade; a major increase (2 -> 3) makes the provider replace the environment."
  type        = string
  default     = null

  validation {
    condition     = var.airflow_version == null || can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.airflow_version))
    error_message = "airflow_version must look like \"2.10.3\" (major.minor.patch)."
  }
}

variable "environment_class" {
  description = "Environment class: mw1.micro, mw1.small, mw1.medium, mw1.large, mw1.xlarge or mw1.2xlarge."
  type        = string
  default     = "mw1.small"

  validation {
    condition     = contains(["mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge"], var.environment_class)
    error_message = "environment_class must be one of mw1.micro, mw1.small, mw1.medium, mw1.large, mw1.xlarge, mw1.2xlarge."
  }
}

variable "schedulers" {
  description = "Number of schedulers: 2-5, or exactly 1 for mw1.micro."
  type        = number
  default     = 2

  validation {
    condition     = var.schedulers >= 1 && var.schedulers <= 5 && floor(var.schedulers) == var.schedulers
    error_message = "schedulers must be a whole number from 1 to 5."
  }

  validation {
    condition     = var.environment_class == "mw1.micro" ? var.schedulers == 1 : var.schedulers >= 2
    error_message = "mw1.micro runs exactly 1 scheduler; the larger classes need 2 to 5."
  }
}

variable "min_workers" {
  description = "Minimum number of workers (at least 1)."
  type        = number
  default     = 1

  validation {
    condition     = var.min_workers >= 1 && floor(var.min_workers) == var.min_workers
    error_message = "min_workers must be a whole number of at least 1."
  }
}

variable "max_workers" {
  description = "Maximum number of workers (at least min_workers; the default account quota is 25)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_workers >= var.min_workers && floor(var.max_workers) == var.max_workers
    error_message = "max_workers must be a whole number no smaller than min_workers."
  }
}

variable "min_webservers" {
  description = "Minimum number of web servers: 2-5, or 1 for mw1.micro."
  type        = number
  default     = 2

  validation {
    condition     = var.min_webservers >= 1 && var.min_webservers <= 5 && floor(var.min_webservers) == var.min_webservers
    error_message = "min_webservers must be a whole number from 1 to 5."
  }

  validation {
    condition     = var.environment_class == "mw1.micro" ? var.min_webservers == 1 : var.min_webservers >= 2
    error_message = "mw1.micro runs exactly 1 web server; the larger classes need 2 to 5."
  }
}

variable "max_webservers" {
  description = "Maximum number of web servers: min_webservers to 5 (1 for mw1.micro)."
  type        = number
  default     = 2

  validation {
    condition     = var.max_webservers >= var.min_webservers && var.max_webservers <= 5 && floor(var.max_webservers) == var.max_webservers
    error_message = "max_webservers must be a whole number from min_webservers to 5."
  }

  validation {
    condition     = var.environment_class != "mw1.micro" || var.max_webservers == 1
    error_message = "mw1.micro runs exactly 1 web server."
  }
}

variable "source_bucket_arn" {
  description = "ARN of the versioned S3 bucket holding DAGs, plugins, requirements and the startup script."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.source_bucket_arn))
    error_message = "source_bucket_arn must be an S3 bucket ARN such as arn:aws:s3:::my-airflow-bucket (no object key)."
  }
}

variable "dag_s3_path" {
  description = "Path of the DAGs folder in the source bucket, relative to its root."
  type        = string
  default     = "dags"
}

variable "plugins_s3_path" {
  description = "Path of plugins.zip in the source bucket, or null."
  type        = string
  default     = null
}

variable "requirements_s3_path" {
  description = "Path of requirements.txt in the source bucket, or null."
  type        = string
  default     = null
}

variable "startup_script_s3_path" {
  description = "Path of the startup shell script in the source bucket, or null."
  type        = string
  default     = null
}

variable "plugins_s3_object_version" {
  description = "S3 object version of plugins.zip the environment runs, or null for the latest at apply time. MWAA applies a new plugins.zip only through an update naming its version: pin it to roll a change out deliberately."
  type        = string
  default     = null
}

variable "requirements_s3_object_version" {
  description = "S3 object version of requirements.txt the environment runs, or null for the latest at apply time. mwaa-iac fills it from GetEnvironment so that a clone runs exactly what its source runs."
  type        = string
  default     = null
}

variable "startup_script_s3_object_version" {
  description = "S3 object version of the startup script the environment runs, or null for the latest at apply time."
  type        = string
  default     = null
}

variable "airflow_configuration_options" {
  description = "Airflow configuration overrides, e.g. { \"core.load_examples\" = \"False\" }. The provider treats them as sensitive."
  type        = map(string)
  default     = {}
}

variable "kms_key" {
  description = "ARN of a customer managed KMS key to encrypt the environment's data, or null for an AWS owned key. Create-only: changing it replaces the environment."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key))
    error_message = "kms_key must be a KMS key ARN (arn:aws:kms:...), not a key id or alias name."
  }
}

variable "webserver_access_mode" {
  description = "PRIVATE_ONLY (web server reachable through a VPC endpoint), PUBLIC_ONLY or PUBLIC_AND_PRIVATE."
  type        = string
  default     = "PRIVATE_ONLY"

  validation {
    condition     = contains(["PRIVATE_ONLY", "PUBLIC_ONLY", "PUBLIC_AND_PRIVATE"], var.webserver_access_mode)
    error_message = "webserver_access_mode must be PRIVATE_ONLY, PUBLIC_ONLY or PUBLIC_AND_PRIVATE."
  }
}

variable "endpoint_management" {
  description = "SERVICE (MWAA creates the VPC endpoints) or CUSTOMER (you create them; the environment waits in PENDING). Create-only."
  type        = string
  default     = "SERVICE"

  validation {
    condition     = contains(["SERVICE", "CUSTOMER"], var.endpoint_management)
    error_message = "endpoint_management must be SERVICE or CUSTOMER."
  }
}

variable "weekly_maintenance_window_start" {
  description = "Start of the weekly maintenance window in UTC, DAY:HH:MM with MM 00 or 30 (e.g. SUN:03:00). null lets MWAA choose."
  type        = string
  default     = null

  validation {
    condition     = var.weekly_maintenance_window_start == null || can(regex("^(MON|TUE|WED|THU|FRI|SAT|SUN):([01][0-9]|2[0-3]):(00|30)$", var.weekly_maintenance_window_start))
    error_message = "weekly_maintenance_window_start must look like SUN:03:00 (three-letter day in capitals, 24-hour UTC time, minutes 00 or 30)."
  }
}

variable "worker_replacement_strategy" {
  description = "How updates replace workers: GRACEFUL lets running tasks finish (up to 12 hours), FORCED stops them. Used by updates only; null keeps the provider's value."
  type        = string
  default     = null

  validation {
    # coalesce: the || operator does not short-circuit before Terraform 1.12.
    condition     = contains(["FORCED", "GRACEFUL"], coalesce(var.worker_replacement_strategy, "GRACEFUL"))
    error_message = "worker_replacement_strategy must be FORCED or GRACEFUL."
  }
}

variable "logging" {
  description = "CloudWatch Logs settings for the five Airflow log types. Each type defaults to enabled at INFO."
  type = object({
    dag_processing = optional(object({ enabled = optional(bool, true), log_level = optional(string, "INFO") }), {})
    scheduler      = optional(object({ enabled = optional(bool, true), log_level = optional(string, "INFO") }), {})
    task           = optional(object({ enabled = optional(bool, true), log_level = optional(string, "INFO") }), {})
    webserver      = optional(object({ enabled = optional(bool, true), log_level = optional(string, "INFO") }), {})
    worker         = optional(object({ enabled = optional(bool, true), log_level = optional(string, "INFO") }), {})
  })
  default = {}

  validation {
    condition     = alltrue([for _, l in var.logging : contains(["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"], l.log_level)])
    error_message = "Every logging.*.log_level must be CRITICAL, ERROR, WARNING, INFO or DEBUG."
  }
}

################################################################################
# Network
################################################################################

variable "subnet_ids" {
  description = "Exactly two private subnet IDs in different Availability Zones. Create-only: changing them replaces the environment."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) == 2
    error_message = "MWAA needs exactly 2 subnet IDs (private subnets in two Availability Zones)."
  }
}

variable "security_group_ids" {
  description = "Existing security groups to attach. Together with the one this module creates (create_security_group) there must be 1 to 5."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.security_group_ids) + (var.create_security_group ? 1 : 0) >= 1
    error_message = "Give at least one security group ID in security_group_ids, or set create_security_group = true."
  }

  validation {
    condition     = length(var.security_group_ids) + (var.create_security_group ? 1 : 0) <= 5
    error_message = "MWAA accepts at most 5 security groups, counting the one created when create_security_group = true."
  }
}

################################################################################
# Execution role
################################################################################

variable "create_execution_role" {
  description = "Whether to create the execution role with a least-privilege policy. Set false and pass execution_role_arn to bring your own."
  type        = bool
  default     = true
}

variable "execution_role_arn" {
  description = "ARN of an existing execution role; only with create_execution_role = false."
  type        = string
  default     = null

  validation {
    condition     = var.create_execution_role == (var.execution_role_arn == null)
    error_message = "Set exactly one of create_execution_role = true or execution_role_arn."
  }

  validation {
    condition     = var.execution_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.execution_role_arn))
    error_message = "execution_role_arn must be an IAM role ARN (arn:aws:iam::123456789012:role/...)."
  }
}

variable "execution_role_name" {
  description = "Name of the created execution role. null: \"mwaa-<name>\", or a generated name with that prefix when it would exceed IAM's 64 characters."
  type        = string
  default     = null

  validation {
    condition     = length(coalesce(var.execution_role_name, "x")) <= 64
    error_message = "execution_role_name must be at most 64 characters."
  }
}

variable "dr_backup" {
  description = "Where mwaa-dr backups of this environment's deployment live: the created execution role may list, read, write and delete objects under s3://<bucket>/<prefix>/ and use kms_key_arn (the bucket's KMS key) through S3. Both colours of a deployment share the prefix <dr.path_prefix>/<name>. null: no access to a DR bucket."
  type = object({
    bucket_arn  = string
    prefix      = string
    kms_key_arn = optional(string)
  })
  default = null

  validation {
    condition     = var.dr_backup == null || can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.dr_backup.bucket_arn))
    error_message = "dr_backup.bucket_arn must be an S3 bucket ARN (arn:aws:s3:::name)."
  }

  validation {
    condition     = var.dr_backup == null || can(regex("^[^/].*[^/]$", var.dr_backup.prefix))
    error_message = "dr_backup.prefix must be a key prefix without leading or trailing '/', e.g. mwaa-dr/analytics."
  }

  validation {
    condition     = var.dr_backup == null || try(var.dr_backup.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.dr_backup.kms_key_arn)), true)
    error_message = "dr_backup.kms_key_arn must be a KMS key ARN (arn:aws:kms:...)."
  }
}

variable "execution_role_path" {
  description = "IAM path of the created execution role."
  type        = string
  default     = "/service-role/"
}

variable "execution_role_permissions_boundary" {
  description = "ARN of a permissions boundary policy for the created execution role, or null."
  type        = string
  default     = null
}

variable "execution_role_policy_arns" {
  description = "Extra managed policies to attach to the created execution role, keyed by a static label (e.g. { mwaa_dr_backups = \"arn:aws:iam::...\" } for the bucket mwaa-dr writes backups to)."
  type        = map(string)
  default     = {}
}

################################################################################
# Security group
################################################################################

variable "create_security_group" {
  description = "Whether to create a security group with the self-referencing ingress rule MWAA needs (all traffic between the environment's own interfaces) and open egress. It is attached in addition to security_group_ids."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "VPC of the created security group. null: looked up from the first subnet."
  type        = string
  default     = null
}
