# Runs with a mocked AWS provider: no credentials and no AWS calls, but
# `terraform init` must be able to install hashicorp/aws >= 6.11 (it cannot on an
# offline machine; the provider-free tests are in modules/blue-green-decision).
# The variables are the input contract the mwaa-iac renderer writes.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }

  mock_data "aws_partition" {
    defaults = { partition = "aws", dns_suffix = "amazonaws.com" }
  }

  mock_data "aws_region" {
    defaults = { region = "us-east-1" }
  }

  mock_data "aws_subnet" {
    defaults = { vpc_id = "vpc-0123456789abcdef0" }
  }

  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }

  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/service-role/mwaa" }
  }

  mock_resource "aws_mwaa_environment" {
    defaults = {
      arn           = "arn:aws:airflow:us-east-1:123456789012:environment/mock"
      webserver_url = "0123abcd-0123-4567-89ab-0123456789ab.c2.us-east-1.airflow.amazonaws.com"
      status        = "AVAILABLE"
    }
  }
}

variables {
  name         = "analytics"
  active_color = "blue"
  blue         = { enabled = true, airflow_version = "2.9.2", requirements_s3_path = "requirements/requirements.txt" }
  green        = { enabled = false, airflow_version = "2.9.2", requirements_s3_path = "requirements/requirements.txt" }
  environment = {
    environment_class               = "mw1.small"
    schedulers                      = 2
    min_workers                     = 1
    max_workers                     = 10
    min_webservers                  = 2
    max_webservers                  = 2
    subnet_ids                      = ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
    security_group_ids              = ["sg-0123456789abcdef0"]
    source_bucket_arn               = "arn:aws:s3:::analytics-airflow"
    dag_s3_path                     = "dags"
    plugins_s3_path                 = null
    startup_script_s3_path          = null
    execution_role_arn              = null
    kms_key                         = null
    webserver_access_mode           = "PRIVATE_ONLY"
    endpoint_management             = "SERVICE"
    weekly_maintenance_window_start = "SUN:03:00"
    worker_replacement_strategy     = "GRACEFUL"
    airflow_configuration_options   = { "core.load_examples" = "False" }
    logging = {
      dag_processing = { enabled = true, log_level = "INFO" }
      scheduler      = { enabled = true, log_level = "INFO" }
      task           = { enabled = true, log_level = "INFO" }
      webserver      = { enabled = true, log_level = "WARNING" }
      worker         = { enabled = true, log_level = "WARNING" }
    }
  }
  routing = { ssm_parameter_name = "/mwaa/analytics/active", route53_zone_id = null, route53_record_name = null }
  tags    = { team = "data" }
}

run "steady_state" {
  command = apply

  assert {
    condition     = keys(module.environment) == ["blue"] && output.green == null
    error_message = "Only blue should exist."
  }

  assert {
    condition     = output.blue.name == "analytics-blue" && output.blue.active && output.blue.security_group_ids == ["sg-0123456789abcdef0"]
    error_message = "Blue should be active and use the given security group."
  }

  assert {
    condition = jsondecode(aws_ssm_parameter.active[0].insecure_value) == {
      name            = "analytics-blue"
      webserver_url   = "0123abcd-0123-4567-89ab-0123456789ab.c2.us-east-1.airflow.amazonaws.com"
      color           = "blue"
      airflow_version = "2.9.2"
    }
    error_message = "The SSM parameter should describe the active environment."
  }

  assert {
    condition     = output.ssm_parameter_name == "/mwaa/analytics/active" && output.route53_record_fqdn == null
    error_message = "SSM routing only, no Route 53 record."
  }
}

run "clone_with_created_security_groups" {
  command = apply

  variables {
    green = { enabled = true, airflow_version = "2.9.2" }
    environment = {
      subnet_ids         = ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
      security_group_ids = []
      source_bucket_arn  = "arn:aws:s3:::analytics-airflow"
    }
  }

  assert {
    condition     = keys(module.environment) == ["blue", "green"] && output.both_enabled
    error_message = "Both environments should exist."
  }

  assert {
    condition     = length(output.blue.security_group_ids) == 1 && length(output.green.security_group_ids) == 1
    error_message = "Each environment should get its own security group when none is given."
  }

  assert {
    condition     = output.active.name == "analytics-blue" && output.standby_name == "analytics-green"
    error_message = "Blue stays active during the clone."
  }
}

run "flip_with_route53" {
  command = apply

  variables {
    active_color = "green"
    green        = { enabled = true, airflow_version = "2.10.3" }
    routing      = { route53_zone_id = "Z0123456789ABCDEFGHIJ", route53_record_name = "airflow.data.internal" }
  }

  assert {
    condition     = output.active.name == "analytics-green" && output.active.airflow_version == "2.10.3"
    error_message = "Green should be active after the flip."
  }

  assert {
    condition     = aws_route53_record.active[0].type == "CNAME" && aws_route53_record.active[0].records == toset(["0123abcd-0123-4567-89ab-0123456789ab.c2.us-east-1.airflow.amazonaws.com"])
    error_message = "The CNAME should point at the active web server's host name."
  }

  assert {
    condition     = aws_ssm_parameter.active[0].name == "/mwaa/analytics/active"
    error_message = "The default SSM parameter name is /mwaa/<name>/active."
  }

  assert {
    condition     = jsondecode(aws_ssm_parameter.active[0].insecure_value).color == "green"
    error_message = "The SSM parameter should name green after the flip."
  }
}

run "create_false" {
  command = apply

  variables {
    create = false
  }

  assert {
    condition     = length(module.environment) == 0 && length(aws_ssm_parameter.active) == 0
    error_message = "create = false must create nothing."
  }

  assert {
    condition     = output.active == null && output.blue == null && output.ssm_parameter_name == null
    error_message = "Outputs should be null."
  }
}

run "route53_half_configured" {
  command = plan

  variables {
    routing = { route53_zone_id = "Z0123456789ABCDEFGHIJ" }
  }

  expect_failures = [var.routing]
}

run "three_subnets" {
  command = plan

  variables {
    environment = {
      subnet_ids        = ["subnet-1", "subnet-2", "subnet-3"]
      source_bucket_arn = "arn:aws:s3:::analytics-airflow"
    }
  }

  expect_failures = [var.environment]
}

run "unknown_environment_class" {
  command = plan

  variables {
    environment = {
      environment_class = "mw1.huge"
      subnet_ids        = ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
      source_bucket_arn = "arn:aws:s3:::analytics-airflow"
    }
  }

  expect_failures = [var.environment]
}

run "bad_worker_replacement_strategy" {
  command = plan

  variables {
    environment = {
      worker_replacement_strategy = "ROLLING"
      subnet_ids                  = ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
      source_bucket_arn           = "arn:aws:s3:::analytics-airflow"
    }
  }

  expect_failures = [var.environment]
}
