# The smallest useful configuration: one tenant on the server the PG* environment variables name.
# `make demo` applies it against a throwaway local PostgreSQL.
terraform {
  required_providers {
    usualstore = {
      source = "usualstore/usualstore"
    }
  }
}

provider "usualstore" {}

# The server fit to host tenants: tenant logins may connect to their own database and nowhere else.
# Destroying it gives PUBLIC back CONNECT on the maintenance database and template1.
resource "usualstore_server" "this" {}

variable "deletion_protection" {
  type        = bool
  default     = true
  description = "Set to false before destroying the tenant."
}

resource "usualstore_tenant" "building_shop" {
  database_name       = "building_shop"
  tenant_name         = "Building Shop Inc."
  plan                = "professional"
  deletion_protection = var.deletion_protection
}

output "tenant" {
  value = {
    database_name    = usualstore_tenant.building_shop.database_name
    connection_limit = usualstore_tenant.building_shop.connection_limit
    schema_version   = usualstore_tenant.building_shop.schema_version
    roles = [
      usualstore_tenant.building_shop.owner_role,
      usualstore_tenant.building_shop.admin_role,
      usualstore_tenant.building_shop.developer_role,
      usualstore_tenant.building_shop.customer_role,
    ]
  }
}

# The login the tenant's store-api container connects with (password generated, kept in state).
resource "usualstore_tenant_user" "building_ops" {
  tenant   = usualstore_tenant.building_shop.database_name
  username = "building_ops"
  role     = "admin"
  email    = "ops@building-shop.example"
}

output "api_dsn" {
  description = "DATABASE_DSN for store-api: terraform output -raw api_dsn"
  value       = usualstore_tenant_user.building_ops.dsn
  sensitive   = true
}
