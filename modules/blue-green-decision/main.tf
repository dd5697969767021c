# The blue/green decision: which slots exist, what they are called and which one
# is active. Pure values, no resources, so `terraform test` exercises it offline.

locals {
  slots = {
    blue  = var.blue
    green = var.green
  }

  inactive_color = var.active_color == "blue" ? "green" : "blue"

  # Only enabled slots get an environment. Keys are the stable colours, so a
  # caller's for_each never renames an environment when the other slot changes.
  environments = {
    for color, slot in local.slots : color => {
      name                 = "${var.name}-${color}"
      color                = color
      airflow_version      = slot.airflow_version
      requirements_s3_path = slot.requirements_s3_path
      active               = color == var.active_color

      requirements_s3_object_version   = slot.requirements_s3_object_version
      plugins_s3_object_version        = slot.plugins_s3_object_version
      startup_script_s3_object_version = slot.startup_script_s3_object_version
    } if slot.enabled
  }
}
