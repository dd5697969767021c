# Inputs that must be rejected at plan time, before anything reaches AWS.

variables {
  name         = "analytics"
  active_color = "blue"
  blue = {
    enabled         = true
    airflow_version = "2.9.2"
  }
  green = {
    enabled         = false
    airflow_version = "2.9.2"
  }
}

run "active_slot_disabled" {
  command = plan

  variables {
    active_color = "green"
  }

  expect_failures = [var.active_color]
}

run "active_blue_disabled_while_green_enabled" {
  command = plan

  variables {
    blue = {
      enabled         = false
      airflow_version = "2.9.2"
    }
    green = {
      enabled         = true
      airflow_version = "2.10.3"
    }
  }

  expect_failures = [var.active_color]
}

run "both_slots_disabled" {
  command = plan

  variables {
    blue = {
      enabled         = false
      airflow_version = "2.9.2"
    }
  }

  expect_failures = [var.active_color]
}

run "bad_color" {
  command = plan

  variables {
    active_color = "purple"
  }

  expect_failures = [var.active_color]
}

run "color_is_case_sensitive" {
  command = plan

  variables {
    active_color = "Blue"
  }

  expect_failures = [var.active_color]
}

run "bad_version_blue" {
  command = plan

  variables {
    blue = {
      enabled         = true
      airflow_version = "2.9"
    }
  }

  expect_failures = [var.blue]
}

run "bad_version_green" {
  command = plan

  variables {
    green = {
      enabled         = false
      airflow_version = "v2.10.3"
    }
  }

  expect_failures = [var.green]
}

run "name_too_long" {
  command = plan

  variables {
    name = "a23456789012345678901234567890123456789012345678901234567890123456789012345"
  }

  expect_failures = [var.name]
}

run "name_starts_with_digit" {
  command = plan

  variables {
    name = "1analytics"
  }

  expect_failures = [var.name]
}

run "name_with_invalid_character" {
  command = plan

  variables {
    name = "analytics.prod"
  }

  expect_failures = [var.name]
}
