################################################################################
# General
################################################################################

variable "create" {
  description = "Whether to create any resource at all. With false the module plans to nothing (the decision outputs are still computed)."
  type        = bool
  default     = true
}

variable "name" {
  description = "Base name of the pair: the environments are \"<name>-blue\" and \"<name>-green\" (letters, digits, '-', '_'; starts with a letter; at most 74 characters). Validated by the blue-green-decision module."
  type        = string
}

variable "tags" {
  description = "Tags for every resource. The environments also get \"mwaa-iac:deployment\" = name and \"mwaa-iac:color\" = their colour."
  type        = map(string)
  default     = {}
}

################################################################################
# Slots
################################################################################

variable "active_color" {
  description = "The slot that serves traffic (\"blue\" or \"green\"); it must be enabled."
  type        = string
  default     = "blue"
}

variable "blue" {
  description = "The blue slot: enabled, airflow_version (x.y.z), an optional requirements_s3_path and the object versions it runs (*_s3_object_version; null: the latest at apply time)."
  type = object({
    enabled                          = bool
    airflow_version                  = string
    requirements_s3_path             = optional(string)
    requirements_s3_object_version   = optional(string)
    plugins_s3_object_version        = optional(string)
    startup_script_s3_object_version = optional(string)
  })
}

variable "green" {
  description = "The green slot: enabled, airflow_version (x.y.z), an optional requirements_s3_path and the object versions it runs (*_s3_object_version; null: the latest at apply time)."
  type = object({
    enabled                          = bool
    airflow_version                  = string
    requirements_s3_path             = optional(string)
    requirements_s3_object_version   = optional(string)
    plugins_s3_object_version        = optional(string)
    startup_script_s3_object_version = optional(string)
  })
}

################################################################################
# Environment settings shared by both slots
################################################################################

variable "environment" {
  description = "Settings both environments share. An empty security_group_ids makes the module create one security group per environment (self-referencing ingress); a null execution_role_arn makes it create one least-privilege execution role per environment."
  type = object({
    environment_class               = optional(string, "mw1.small")
    schedulers                      = optional(number, 2)
    min_workers                     = optional(number, 1)
    max_workers                     = optional(number, 10)
    min_webservers                  = optional(number, 2)
    max_webservers                  = optional(number, 2)
    subnet_ids                      = list(string)
    security_group_ids              = optional(list(string), [])
    source_bucket_arn               = string
    dag_s3_path                     = optional(string, "dags")
    plugins_s3_path                 = optional(string)
    startup_script_s3_path          = optional(string)
    execution_role_arn              = optional(string)
    kms_key                         = optional(string)
    webserver_access_mode           = optional(string, "PRIVATE_ONLY")
    endpoint_management             = optional(string, "SERVICE")
    weekly_maintenance_window_start = optional(string)
    worker_replacement_strategy     = optional(string)
    airflow_configuration_options   = optional(map(string), {})
    logging = optional(object({
      dag_processing = optional(object({ enabled = optional(bool, true), log_level = optional(string, "INFO") }), {})
      scheduler      = optional(object({ enabled = optional(bool, true), log_level = optional(string, "INFO") }), {})
      task           = optional(object({ enabled = optional(bool, true), log_level = optional(string, "INFO") }), {})
      webserver      = optional(object({ enabled = optional(bool, true), log_level = optional(string, "INFO") }), {})
      worker         = optional(object({ enabled = optional(bool, true), log_level = optional(string, "INFO") }), {})
    }), {})
  })

  validation {
    condition     = contains(["mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge"], var.environment.environment_class)
    error_message = "environment.environment_class must be one of mw1.micro, mw1.small, mw1.medium, mw1.large, mw1.xlarge, mw1.2xlarge."
  }

  validation {
    condition     = var.environment.schedulers >= 1 && var.environment.schedulers <= 5 && floor(var.environment.schedulers) == var.environment.schedulers
    error_message = "environment.schedulers must be a whole number from 1 to 5 (exactly 1 for mw1.micro, at least 2 for the larger classes)."
  }

  validation {
    condition     = var.environment.min_workers >= 1 && var.environment.max_workers >= var.environment.min_workers
    error_message = "environment.min_workers must be at least 1 and max_workers at least min_workers."
  }

  validation {
    condition     = var.environment.min_webservers >= 1 && var.environment.max_webservers <= 5 && var.environment.max_webservers >= var.environment.min_webservers
    error_message = "environment.min_webservers and max_webservers must satisfy 1 <= min <= max <= 5 (1 for mw1.micro, at least 2 for the larger classes)."
  }

  validation {
    condition     = length(var.environment.subnet_ids) == 2
    error_message = "environment.subnet_ids must hold exactly 2 private subnets in different Availability Zones."
  }

  validation {
    condition     = length(var.environment.security_group_ids) <= 5
    error_message = "environment.security_group_ids may hold at most 5 IDs (an empty list makes the module create one security group per environment)."
  }

  validation {
    condition     = contains(["PRIVATE_ONLY", "PUBLIC_ONLY", "PUBLIC_AND_PRIVATE"], var.environment.webserver_access_mode)
    error_message = "environment.webserver_access_mode must be PRIVATE_ONLY, PUBLIC_ONLY or PUBLIC_AND_PRIVATE."
  }

  validation {
    condition     = contains(["SERVICE", "CUSTOMER"], var.environment.endpoint_management)
    error_message = "environment.endpoint_management must be SERVICE or CUSTOMER."
  }

  validation {
    condition     = var.environment.weekly_maintenance_window_start == null || can(regex("^(MON|TUE|WED|THU|FRI|SAT|SUN):([01][0-9]|2[0-3]):(00|30)$", var.environment.weekly_maintenance_window_start))
    error_message = "environment.weekly_maintenance_window_start must look like SUN:03:00 (three-letter day in capitals, 24-hour UTC time, minutes 00 or 30)."
  }

  validation {
    # coalesce: the || operator does not short-circuit before Terraform 1.12.
    condition     = contains(["FORCED", "GRACEFUL"], coalesce(var.environment.worker_replacement_strategy, "GRACEFUL"))
    error_message = "environment.worker_replacement_strategy must be FORCED, GRACEFUL or null."
  }

  validation {
    condition     = alltrue([for _, l in var.environment.logging : contains(["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"], l.log_level)])
    error_message = "Every environment.logging.*.log_level must be CRITICAL, ERROR, WARNING, INFO or DEBUG."
  }
}

variable "dr" {
  description = "The mwaa-dr backup bucket (mwaa.yaml's dr): the execution roles the module creates may read and write s3://<backup_bucket>/<path_prefix>/<name>/ and use kms_key_arn through S3. null: no DR access."
  type = object({
    backup_bucket = string
    path_prefix   = optional(string, "mwaa-dr")
    kms_key_arn   = optional(string)
  })
  default = null

  validation {
    condition     = var.dr == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.dr.backup_bucket))
    error_message = "dr.backup_bucket must be an S3 bucket name, not an ARN."
  }
}

variable "execution_role_policy_arns" {
  description = "Extra managed policies for the execution roles the module creates, keyed by a static label (e.g. access to the bucket mwaa-dr writes backups to). Ignored when environment.execution_role_arn is set."
  type        = map(string)
  default     = {}
}

################################################################################
# Routing
################################################################################

variable "routing" {
  description = "Where the active environment is published: an SSM parameter (default \"/mwaa/<name>/active\") and, when both Route 53 fields are set, a CNAME to the active web server's host name (DNS only: MWAA's certificate and login do not work under another name, so it is no way into the UI)."
  type = object({
    ssm_parameter_name  = optional(string)
    route53_zone_id     = optional(string)
    route53_record_name = optional(string)
    route53_ttl         = optional(number, 60)
  })
  default = {}

  validation {
    condition     = (var.routing.route53_zone_id == null) == (var.routing.route53_record_name == null)
    error_message = "Set both routing.route53_zone_id and routing.route53_record_name, or neither."
  }

  validation {
    # SSM: a plain name, or a hierarchy that starts with "/".
    condition     = var.routing.ssm_parameter_name == null || can(regex("^([a-zA-Z0-9_.-]+|(/[a-zA-Z0-9_.-]+)+)$", var.routing.ssm_parameter_name))
    error_message = "routing.ssm_parameter_name must be an SSM parameter name such as /mwaa/analytics/active (letters, digits, '_', '.', '-'; a name with '/' must start with '/')."
  }

  validation {
    condition     = var.routing.route53_ttl >= 0 && floor(var.routing.route53_ttl) == var.routing.route53_ttl
    error_message = "routing.route53_ttl must be a whole number of seconds."
  }
}
