resource "usualstore_tenant" "building_shop" {
  database_name = "building_shop"
  tenant_name   = "Building Shop Inc."
  plan          = "professional"
}

# The login the shop's API container uses: full read/write on the store tables.
resource "usualstore_tenant_user" "building_ops" {
  tenant   = usualstore_tenant.building_shop.database_name
  username = "building_ops"
  role     = "admin" # admin | developer | customer
  email    = "ops@building-shop.example"
  # No password: the provider generates 32 characters once and keeps them in state.
}

# A read-only login for reporting, with its own password and at most 2 connections.
resource "usualstore_tenant_user" "building_reports" {
  tenant           = usualstore_tenant.building_shop.database_name
  username         = "building_reports"
  role             = "customer"
  password         = var.reports_password
  connection_limit = 2
}

variable "reports_password" {
  type      = string
  sensitive = true
  default   = "change me: at least 8 characters"
}

output "api_dsn" {
  value     = usualstore_tenant_user.building_ops.dsn
  sensitive = true
}
