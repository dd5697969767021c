module "mwaa" {
  source = "../../modules/mwaa-blue-green"

  name         = var.name
  active_color = var.active_color
  blue         = var.blue
  green        = var.green
  environment  = var.environment
  routing      = var.routing
  dr           = var.dr
  tags         = var.tags
}
