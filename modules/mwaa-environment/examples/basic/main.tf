# One MWAA environment on its own: the module creates its execution role
# (least privilege, trusted by this environment only) and a security group with
# the self-referencing rule MWAA needs. Only the network and the source bucket
# have to exist beforehand.

module "mwaa" {
  source = "../.."

  name            = var.name
  airflow_version = "2.10.3"

  environment_class = "mw1.small"
  min_workers       = 1
  max_workers       = 5

  source_bucket_arn    = var.source_bucket_arn
  dag_s3_path          = "dags"
  requirements_s3_path = "requirements/requirements.txt"

  subnet_ids = var.subnet_ids

  weekly_maintenance_window_start = "SUN:03:00"

  airflow_configuration_options = {
    "core.load_examples" = "False"
  }

  # Every log type is on at INFO unless set otherwise.
  logging = {
    webserver = { enabled = true, log_level = "WARNING" }
    worker    = { enabled = true, log_level = "WARNING" }
  }

  # mwaa-dr may back this environment's metadata up to, and restore it from,
  # s3://<backup bucket>/mwaa-dr/<name>/.
  dr_backup = var.backup_bucket_arn == null ? null : {
    bucket_arn = var.backup_bucket_arn
    prefix     = "mwaa-dr/${var.name}"
  }

  tags = {
    team    = "data"
    example = "mwaa-environment-basic"
  }
}
