# Runs with a mocked AWS provider: no credentials and no AWS calls, but
# `terraform init` must be able to install hashicorp/aws >= 6.11 (it cannot on an
# offline machine; the provider-free tests are in modules/blue-green-decision).

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
    defaults = { arn = "arn:aws:iam::123456789012:role/service-role/mwaa-analytics-blue" }
  }

  mock_resource "aws_security_group" {
    defaults = { id = "sg-0aaaaaaaaaaaaaaaa" }
  }

  mock_resource "aws_mwaa_environment" {
    defaults = {
      arn           = "arn:aws:airflow:us-east-1:123456789012:environment/analytics-blue"
      webserver_url = "0123abcd-0123-4567-89ab-0123456789ab.c2.us-east-1.airflow.amazonaws.com"
      status        = "AVAILABLE"
    }
  }
}

variables {
  name                        = "analytics-blue"
  airflow_version             = "2.9.2"
  source_bucket_arn           = "arn:aws:s3:::analytics-airflow"
  requirements_s3_path        = "requirements/requirements.txt"
  subnet_ids                  = ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
  worker_replacement_strategy = "GRACEFUL"
}

run "creates_role_and_security_group" {
  command = apply

  assert {
    condition     = aws_mwaa_environment.this[0].timeouts.update == "180m"
    error_message = "The update timeout must cover a version upgrade (180m)."
  }

  assert {
    condition     = aws_iam_role.this[0].name == "mwaa-analytics-blue"
    error_message = "The execution role should be named mwaa-<name>."
  }

  assert {
    condition     = output.execution_role_arn == aws_iam_role.this[0].arn
    error_message = "The environment should use the created role."
  }

  assert {
    condition     = output.security_group_ids == ["sg-0aaaaaaaaaaaaaaaa"]
    error_message = "The created security group should be the only one attached."
  }

  assert {
    condition     = aws_security_group.this[0].vpc_id == "vpc-0123456789abcdef0"
    error_message = "The security group's VPC should be looked up from the first subnet."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.self[0].referenced_security_group_id == aws_security_group.this[0].id
    error_message = "The ingress rule must reference the group itself."
  }

  assert {
    condition     = output.webserver_url != null && output.status == "AVAILABLE"
    error_message = "webserver_url and status should be exposed."
  }

  assert {
    condition     = contains(data.aws_iam_policy_document.this[0].statement[*].sid, "UseAwsOwnedQueueKey") && !contains(data.aws_iam_policy_document.this[0].statement[*].sid, "UseCustomerManagedKey")
    error_message = "Without kms_key only the AWS owned key grant is expected."
  }

  assert {
    condition = contains(
      flatten(data.aws_iam_policy_document.this[0].statement[*].resources),
      "arn:aws:s3:::analytics-airflow/requirements/requirements.txt",
    )
    error_message = "The role should read the requirements file."
  }
}

run "existing_role_and_security_groups" {
  command = apply

  variables {
    create_execution_role = false
    execution_role_arn    = "arn:aws:iam::123456789012:role/existing"
    create_security_group = false
    security_group_ids    = ["sg-0123456789abcdef0"]
  }

  assert {
    condition     = length(aws_iam_role.this) == 0 && length(aws_security_group.this) == 0
    error_message = "Neither a role nor a security group should be created."
  }

  assert {
    condition     = output.execution_role_arn == "arn:aws:iam::123456789012:role/existing" && output.execution_role_name == null
    error_message = "The given role should be used."
  }

  assert {
    condition     = output.security_group_ids == ["sg-0123456789abcdef0"]
    error_message = "Only the given security group should be attached."
  }
}

run "customer_managed_key" {
  command = apply

  variables {
    kms_key = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  }

  assert {
    condition     = contains(data.aws_iam_policy_document.this[0].statement[*].sid, "UseCustomerManagedKey") && !contains(data.aws_iam_policy_document.this[0].statement[*].sid, "UseAwsOwnedQueueKey")
    error_message = "With kms_key the role should be granted that key only."
  }
}

run "long_name_uses_generated_role_name" {
  command = apply

  variables {
    name = "a2345678901234567890123456789012345678901234567890123456789012345678901234-green"
  }

  assert {
    condition     = aws_iam_role.this[0].name_prefix == "mwaa-a2345678901234567890123456789012-" && length(aws_iam_role.this[0].name_prefix) == 38
    error_message = "A role name over 64 characters should fall back to a 38-character prefix."
  }
}

run "create_false_plans_nothing" {
  command = apply

  variables {
    create = false
  }

  assert {
    condition     = length(aws_mwaa_environment.this) == 0 && length(aws_iam_role.this) == 0 && length(aws_security_group.this) == 0
    error_message = "create = false must create nothing."
  }

  assert {
    condition     = output.arn == null && output.execution_role_arn == null && output.security_group_ids == null
    error_message = "Outputs of a disabled module should be null."
  }
}

run "role_given_twice" {
  command = plan

  variables {
    execution_role_arn = "arn:aws:iam::123456789012:role/existing"
  }

  expect_failures = [var.execution_role_arn]
}

run "no_security_group_at_all" {
  command = plan

  variables {
    create_security_group = false
  }

  expect_failures = [var.security_group_ids]
}

run "too_many_security_groups" {
  command = plan

  variables {
    security_group_ids = ["sg-1", "sg-2", "sg-3", "sg-4", "sg-5"]
  }

  expect_failures = [var.security_group_ids]
}

run "one_subnet" {
  command = plan

  variables {
    subnet_ids = ["subnet-0a1b2c3d"]
  }

  expect_failures = [var.subnet_ids]
}

run "micro_with_two_schedulers" {
  command = plan

  variables {
    environment_class = "mw1.micro"
    min_webservers    = 1
    max_webservers    = 1
  }

  expect_failures = [var.schedulers]
}

run "bad_maintenance_window" {
  command = plan

  variables {
    weekly_maintenance_window_start = "sunday 03:15"
  }

  expect_failures = [var.weekly_maintenance_window_start]
}

run "bad_log_level" {
  command = plan

  variables {
    logging = { task = { log_level = "VERBOSE" } }
  }

  expect_failures = [var.logging]
}
