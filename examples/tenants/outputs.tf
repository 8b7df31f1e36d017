output "customer" {
  description = "The customer this state belongs to."
  value       = var.customer
}

output "tenants" {
  description = "Each tenant of the customer: name, plan, group roles and login users (username => role)."
  value = {
    for name, tenant in module.tenant : name => {
      tenant_name      = tenant.tenant_name
      plan             = tenant.plan
      connection_limit = tenant.connection_limit
      schema_version   = tenant.schema_version
      roles            = tenant.roles
      users            = tenant.users
    }
  }
}

output "dsns" {
  description = "libpq connection string of every login user: dsns[<database>][<username>]."
  value       = { for name, tenant in module.tenant : name => tenant.dsns }
  sensitive   = true
}

output "urls" {
  description = "postgres:// URL of every login user: urls[<database>][<username>]."
  value       = { for name, tenant in module.tenant : name => tenant.urls }
  sensitive   = true
}

output "api_dsn" {
  description = "DATABASE_DSN of the customer's store-api container: the first admin of the main tenant. terraform output -raw api_dsn"
  value       = module.tenant[var.customer].admin_dsn
  sensitive   = true
}

output "store_api_tenants" {
  description = "TENANTS_FILE of a store-api in router mode: host name => { dsn, name } for every tenant with hosts. terraform output -json store_api_tenants > tenants.json"
  value       = merge({}, [for name, tenant in module.tenant : tenant.store_api_tenants]...)
  sensitive   = true
}
