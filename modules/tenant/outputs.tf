output "database_name" {
  description = "The tenant's database."
  value       = usualstore_tenant.this.database_name
}

output "tenant_name" {
  description = "The customer's display name."
  value       = usualstore_tenant.this.tenant_name
}

output "plan" {
  description = "The tenant's plan."
  value       = usualstore_tenant.this.plan
}

output "connection_limit" {
  description = "The database connection limit the plan sets."
  value       = usualstore_tenant.this.connection_limit
}

output "schema_version" {
  description = "Version of the store schema applied to the database."
  value       = usualstore_tenant.this.schema_version
}

output "roles" {
  description = "The tenant's group roles: owner, admin, developer, customer."
  value = {
    owner     = usualstore_tenant.this.owner_role
    admin     = usualstore_tenant.this.admin_role
    developer = usualstore_tenant.this.developer_role
    customer  = usualstore_tenant.this.customer_role
  }
}

output "users" {
  description = "Role of each login user, by username."
  value       = { for name, user in usualstore_tenant_user.this : name => user.role }
}

output "dsns" {
  description = "libpq connection string of each login user, by username."
  value       = { for name, user in usualstore_tenant_user.this : name => user.dsn }
  sensitive   = true
}

output "urls" {
  description = "postgres:// URL of each login user, by username."
  value       = { for name, user in usualstore_tenant_user.this : name => user.url }
  sensitive   = true
}

output "admin_dsn" {
  description = "DSN of the first admin: DATABASE_DSN of the tenant's store-api container. null without admins."
  value       = length(var.admins) > 0 ? usualstore_tenant_user.this[var.admins[0].username].dsn : null
  sensitive   = true
}

output "store_api_tenants" {
  description = "This tenant for a store-api in router mode: host name => { dsn (the first admin's), name }. Merged over tenants it is TENANTS_FILE: terraform output -json store_api_tenants > tenants.json. Empty without hosts or admins."
  value = {
    for host in var.hosts : lower(trimsuffix(host, ".")) => {
      dsn  = usualstore_tenant_user.this[var.admins[0].username].dsn
      name = usualstore_tenant.this.tenant_name
    } if length(var.admins) > 0
  }
  sensitive = true
}
