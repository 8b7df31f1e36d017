# The benchmark's configuration, shaped the way operators write it: one modules/tenant instance per
# tenant (as examples/tenants does), each with three login users (one per group), so a tenant's users
# are created as soon as that tenant is ready. Tenants are named bt_001… (var.prefix). bench/run.sh
# applies it with 20 tenants, then grows it to 200 for the refresh and rollout runs.
terraform {
  required_providers {
    usualstore = {
      source = "usualstore/usualstore"
    }
  }
}

# Connection settings from the PG* variables of the throwaway cluster bench/run.sh starts.
provider "usualstore" {}

variable "tenants" {
  type = number
}

# A second working directory (the logged run) uses another prefix so both can live on one server.
variable "prefix" {
  type    = string
  default = "bt"
}

locals {
  databases = [for i in range(1, var.tenants + 1) : format("%s_%03d", var.prefix, i)]
}

module "tenant" {
  source   = "../modules/tenant"
  for_each = toset(local.databases)

  database_name       = each.key
  tenant_name         = "Bench tenant ${each.key}"
  deletion_protection = false
  admins              = [{ username = "${each.key}_u_adm" }]
  developers          = [{ username = "${each.key}_u_dev" }]
  customers           = [{ username = "${each.key}_u_cus" }]
}
