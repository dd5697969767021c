# The phases of a blue/green cutover, in the order an operator goes through them.
# Each run plans the module with the slot settings of one phase and checks the
# values a user sees: which environments exist, their names and versions, and
# which one serves traffic.

variables {
  name         = "analytics"
  active_color = "blue"
  blue = {
    enabled              = true
    airflow_version      = "2.9.2"
    requirements_s3_path = "requirements/requirements.txt"
  }
  green = {
    enabled         = false
    airflow_version = "2.9.2"
  }
}

run "steady_state_blue_only" {
  command = plan

  assert {
    condition     = keys(output.environments) == ["blue"]
    error_message = "Only the blue environment should exist in the steady state."
  }

  assert {
    condition     = output.active_name == "analytics-blue"
    error_message = "The active environment should be analytics-blue."
  }

  assert {
    condition     = output.environments.blue.active && output.environments.blue.airflow_version == "2.9.2"
    error_message = "Blue should be active and run 2.9.2."
  }

  assert {
    condition     = output.environments.blue.requirements_s3_path == "requirements/requirements.txt"
    error_message = "Blue should keep its requirements path."
  }

  assert {
    condition     = output.inactive_color == "green" && output.standby_name == null
    error_message = "Green is disabled, so there is no standby environment."
  }

  assert {
    condition     = output.both_enabled == false
    error_message = "Only one slot is enabled."
  }
}

run "clone_green_at_same_version" {
  command = plan

  variables {
    green = {
      enabled              = true
      airflow_version      = "2.9.2"
      requirements_s3_path = "requirements/requirements.txt"
    }
  }

  assert {
    condition     = keys(output.environments) == ["blue", "green"]
    error_message = "Both environments should exist while green is cloned."
  }

  assert {
    condition     = output.environments.green.airflow_version == output.environments.blue.airflow_version
    error_message = "The clone must start at blue's Airflow version so the metadata restore is safe."
  }

  assert {
    condition     = output.active_name == "analytics-blue" && output.standby_name == "analytics-green"
    error_message = "Blue should stay active with green as the standby."
  }

  assert {
    condition     = output.environments.green.active == false
    error_message = "The clone must not be active."
  }

  assert {
    condition     = output.both_enabled
    error_message = "both_enabled should be true during the clone."
  }
}

run "upgrade_green" {
  command = plan

  variables {
    green = {
      enabled              = true
      airflow_version      = "2.10.3"
      requirements_s3_path = "requirements/requirements-2.10.txt"
    }
  }

  assert {
    condition     = output.environments.green.airflow_version == "2.10.3"
    error_message = "Green should be upgraded to 2.10.3."
  }

  assert {
    condition     = output.environments.blue.airflow_version == "2.9.2"
    error_message = "Blue must keep running 2.9.2 during green's upgrade."
  }

  assert {
    condition     = output.environments.green.requirements_s3_path == "requirements/requirements-2.10.txt"
    error_message = "Green should use its own requirements file."
  }

  assert {
    condition     = output.active_color == "blue" && output.active_name == "analytics-blue"
    error_message = "Traffic stays on blue until the flip."
  }
}

run "flip_to_green" {
  command = plan

  variables {
    active_color = "green"
    green = {
      enabled         = true
      airflow_version = "2.10.3"
    }
  }

  assert {
    condition     = output.active_color == "green" && output.active_name == "analytics-green"
    error_message = "Green should be active after the flip."
  }

  assert {
    condition     = output.inactive_color == "blue" && output.standby_name == "analytics-blue"
    error_message = "Blue should remain as the standby (rollback target) after the flip."
  }

  assert {
    condition     = output.environments.green.active && !output.environments.blue.active
    error_message = "Exactly one environment should be marked active."
  }

  assert {
    condition     = output.environments.green.requirements_s3_path == null
    error_message = "An unset requirements path should stay null."
  }

  assert {
    condition     = output.both_enabled
    error_message = "Both slots stay enabled during the soak period."
  }
}

run "retire_blue" {
  command = plan

  variables {
    active_color = "green"
    blue = {
      enabled         = false
      airflow_version = "2.9.2"
    }
    green = {
      enabled         = true
      airflow_version = "2.10.3"
    }
  }

  assert {
    condition     = keys(output.environments) == ["green"]
    error_message = "Only green should exist after blue is retired."
  }

  assert {
    condition     = output.environments.green.name == "analytics-green"
    error_message = "Green keeps its name; retiring blue must not rename it."
  }

  assert {
    condition     = output.standby_name == null && output.both_enabled == false
    error_message = "There is no standby once blue is retired."
  }
}

run "longest_allowed_name" {
  command = plan

  variables {
    # 74 characters, so "<name>-green" is exactly MWAA's 80-character limit.
    name = "a2345678901234567890123456789012345678901234567890123456789012345678901234"
    green = {
      enabled         = true
      airflow_version = "2.9.2"
    }
  }

  assert {
    condition     = length(output.standby_name) == 80 && length(output.active_name) == 79
    error_message = "A 74-character base name should give 79- and 80-character environment names."
  }
}

run "clone_keeps_the_object_versions_its_source_runs" {
  command = plan

  variables {
    blue = {
      enabled                        = true
      airflow_version                = "2.9.2"
      requirements_s3_path           = "requirements/requirements.txt"
      requirements_s3_object_version = "v-blue-runs"
    }
    green = {
      enabled                          = true
      airflow_version                  = "2.9.2"
      requirements_s3_path             = "requirements/requirements.txt"
      requirements_s3_object_version   = "v-blue-runs"
      plugins_s3_object_version        = "p1"
      startup_script_s3_object_version = null
    }
  }

  assert {
    condition     = output.environments.green.requirements_s3_object_version == "v-blue-runs" && output.environments.blue.requirements_s3_object_version == "v-blue-runs"
    error_message = "Both slots should carry the requirements object version they run."
  }

  assert {
    condition     = output.environments.green.plugins_s3_object_version == "p1" && output.environments.green.startup_script_s3_object_version == null
    error_message = "Object versions pass through unchanged (null: the latest at apply time)."
  }
}
