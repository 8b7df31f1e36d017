# Tenants spread over two PostgreSQL servers. Each server gets its own provider configuration (alias);
# each tenant names the server it lives on, and the two resource blocks below pick their own tenants.
#
#   terraform apply -var-file=servers.tfvars
#
# Moving a tenant between servers is a data migration, not a Terraform change: see
# docs/guides/several-servers.md for the steps.
terraform {
  required_providers {
    usualstore = {
      source = "usualstore/usualstore"
    }
  }
}

variable "servers" {
  description = "Connection of each server, by name. Passwords: use TF_VAR_servers or a git-ignored tfvars file."
  type = map(object({
    host     = string
    port     = number
    username = string
    password = string
    sslmode  = string
  }))
  sensitive = true
}

variable "tenants" {
  description = "Tenants by database name: display name, plan, and the server (a key of var.servers) they live on."
  type = map(object({
    tenant_name = string
    plan        = string
    server      = string
  }))
  validation {
    condition     = alltrue([for t in values(var.tenants) : contains(["primary", "secondary"], t.server)])
    error_message = "Each tenant's server must be \"primary\" or \"secondary\"."
  }
}

variable "deletion_protection" {
  type    = bool
  default = true
}

provider "usualstore" {
  alias    = "primary"
  host     = var.servers["primary"].host
  port     = var.servers["primary"].port
  username = var.servers["primary"].username
  password = var.servers["primary"].password
  sslmode  = var.servers["primary"].sslmode
}

provider "usualstore" {
  alias    = "secondary"
  host     = var.servers["secondary"].host
  port     = var.servers["secondary"].port
  username = var.servers["secondary"].username
  password = var.servers["secondary"].password
  sslmode  = var.servers["secondary"].sslmode
}

# Each server made fit to host tenants: one usualstore_server per provider configuration.
resource "usualstore_server" "primary" {
  provider = usualstore.primary
}

resource "usualstore_server" "secondary" {
  provider = usualstore.secondary
}

resource "usualstore_tenant" "primary" {
  provider            = usualstore.primary
  for_each            = { for name, t in var.tenants : name => t if t.server == "primary" }
  database_name       = each.key
  tenant_name         = each.value.tenant_name
  plan                = each.value.plan
  deletion_protection = var.deletion_protection
}

resource "usualstore_tenant" "secondary" {
  provider            = usualstore.secondary
  for_each            = { for name, t in var.tenants : name => t if t.server == "secondary" }
  database_name       = each.key
  tenant_name         = each.value.tenant_name
  plan                = each.value.plan
  deletion_protection = var.deletion_protection
}

# One admin login per tenant, for the tenant's store-api container.
resource "usualstore_tenant_user" "primary_api" {
  provider = usualstore.primary
  for_each = usualstore_tenant.primary
  tenant   = each.value.database_name
  username = "${each.key}_api"
  role     = "admin"
}

resource "usualstore_tenant_user" "secondary_api" {
  provider = usualstore.secondary
  for_each = usualstore_tenant.secondary
  tenant   = each.value.database_name
  username = "${each.key}_api"
  role     = "admin"
}

output "placement" {
  description = "Which server each tenant lives on."
  value       = { for name, t in var.tenants : name => t.server }
}

output "api_dsns" {
  description = "DATABASE_DSN of each tenant's store-api container."
  value = merge(
    { for name, u in usualstore_tenant_user.primary_api : name => u.dsn },
    { for name, u in usualstore_tenant_user.secondary_api : name => u.dsn },
  )
  sensitive = true
}
