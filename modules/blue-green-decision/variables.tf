variable "name" {
  description = "Base name of the blue/green pair. The environments are named \"<name>-blue\" and \"<name>-green\"; MWAA allows letters, digits, '-' and '_' (starting with a letter) and 80 characters, so the base name may have at most 74."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][0-9a-zA-Z_-]*$", var.name))
    error_message = "name must start with a letter and contain only letters, digits, '-' and '_' (MWAA environment name rules)."
  }

  validation {
    condition     = length(var.name) <= 74
    error_message = "name is ${length(var.name)} characters long; at most 74 are allowed, because \"-green\" is appended and MWAA names are limited to 80 characters."
  }
}

variable "active_color" {
  description = "The slot that serves traffic: \"blue\" or \"green\". It must be enabled."
  type        = string
  default     = "blue"

  validation {
    condition     = contains(["blue", "green"], var.active_color)
    error_message = "active_color must be \"blue\" or \"green\"."
  }

  validation {
    # try(): when the colour itself is invalid, only the rule above should report.
    condition     = try({ blue = var.blue, green = var.green }[var.active_color].enabled, true)
    error_message = "The active slot \"${var.active_color}\" is disabled (${var.active_color}.enabled = false). Enable it (${var.active_color}.enabled = true) or make the other slot active (active_color = \"${var.active_color == "blue" ? "green" : "blue"}\") before disabling this one."
  }
}

variable "blue" {
  description = "The blue slot: whether its environment exists, its Airflow version (x.y.z), an optional requirements.txt path in the source bucket and the S3 object versions of requirements.txt, plugins.zip and the startup script it runs (null: the latest at apply time)."
  type = object({
    enabled                          = bool
    airflow_version                  = string
    requirements_s3_path             = optional(string)
    requirements_s3_object_version   = optional(string)
    plugins_s3_object_version        = optional(string)
    startup_script_s3_object_version = optional(string)
  })

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.blue.airflow_version))
    error_message = "blue.airflow_version must look like \"2.10.3\" (major.minor.patch)."
  }
}

variable "green" {
  description = "The green slot: whether its environment exists, its Airflow version (x.y.z), an optional requirements.txt path in the source bucket and the S3 object versions of requirements.txt, plugins.zip and the startup script it runs (null: the latest at apply time)."
  type = object({
    enabled                          = bool
    airflow_version                  = string
    requirements_s3_path             = optional(string)
    requirements_s3_object_version   = optional(string)
    plugins_s3_object_version        = optional(string)
    startup_script_s3_object_version = optional(string)
  })

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.green.airflow_version))
    error_message = "green.airflow_version must look like \"2.10.3\" (major.minor.patch)."
  }
}
