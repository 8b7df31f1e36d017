# Terraform's own share of a rollout: one built-in terraform_data per tenant of main.tf, in the same state, all
# changed at once when floor_marker changes. bench/run.sh copies this file in after the rollout, and only for
# Terraform 1.4 and later (terraform_data is built in since 1.4).
variable "floor_marker" {
  type    = number
  default = 0
}

resource "terraform_data" "floor" {
  for_each = var.floor_marker > 0 ? toset(local.databases) : toset([])
  input    = var.floor_marker
}
