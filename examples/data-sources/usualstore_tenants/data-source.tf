# Every tenant on the server whose database name starts with "building_", found by usualstore's
# marker on each database: no registry, no master database.
data "usualstore_tenants" "building" {
  name_prefix = "building_"
}

# For monitoring or backup jobs generated per tenant.
output "building_databases" {
  value = [for t in data.usualstore_tenants.building.tenants : t.database_name]
}

# Tenants whose create has not finished: apply their usualstore_tenant (or import it) to complete it.
output "building_half_provisioned" {
  value = [for t in data.usualstore_tenants.building.tenants : t.database_name if t.status != "ready"]
}

# Only the professional plan's tenants.
data "usualstore_tenants" "professional" {
  name_prefix = "building_"
  plan        = "professional"
}
