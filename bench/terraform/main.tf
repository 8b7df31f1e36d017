# The benchmark's configuration: var.tenants tenants named bt_001… (var.prefix), each with three login users (one per
# group). bench/run.sh applies it with 20 tenants, then grows it to 200 for the refresh and rollout runs.
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
  users = merge([
    for db in local.databases : {
      for role in ["admin", "developer", "customer"] : "${db}_u_${role}" => { tenant = db, role = role }
    }
  ]...)
}

resource "usualstore_tenant" "bench" {
  for_each            = toset(local.databases)
  database_name       = each.key
  tenant_name         = "Bench tenant ${each.key}"
  deletion_protection = false
}

resource "usualstore_tenant_user" "bench" {
  for_each = local.users
  tenant   = usualstore_tenant.bench[each.value.tenant].database_name
  username = each.key
  role     = each.value.role
}
