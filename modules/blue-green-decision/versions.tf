terraform {
  # 1.9 lets a variable's validation refer to other variables (the active-slot rule below).
  required_version = ">= 1.9"

  # Deliberately no required_providers: this module only computes values, so
  # `terraform init` and `terraform test` run offline.
}
