# These variables are exactly the keys mwaa-iac renders into terraform.tfvars.json
# from mwaa.yaml. Their validation lives in the modules.

variable "name" {
  description = "Base name of the pair; the environments are <name>-blue and <name>-green."
  type        = string
}

variable "region" {
  description = "AWS region of the environments."
  type        = string
}

variable "active_color" {
  description = "The slot that serves traffic: blue or green."
  type        = string
  default     = "blue"
}

variable "blue" {
  description = "The blue slot."
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
  description = "The green slot."
  type = object({
    enabled                          = bool
    airflow_version                  = string
    requirements_s3_path             = optional(string)
    requirements_s3_object_version   = optional(string)
    plugins_s3_object_version        = optional(string)
    startup_script_s3_object_version = optional(string)
  })
}

variable "environment" {
  description = "Settings both environments share (see modules/mwaa-blue-green)."
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
}

variable "routing" {
  description = "SSM parameter name and optional Route 53 record for the active environment."
  type = object({
    ssm_parameter_name  = optional(string)
    route53_zone_id     = optional(string)
    route53_record_name = optional(string)
    route53_ttl         = optional(number, 60)
  })
  default = {}
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "dr" {
  description = "The mwaa-dr backup bucket: the execution roles may use <path_prefix>/<name>/ in it."
  type = object({
    backup_bucket = string
    path_prefix   = optional(string, "mwaa-dr")
    kms_key_arn   = optional(string)
  })
  default = null
}
