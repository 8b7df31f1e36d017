resource "usualstore_tenant" "building_shop" {
  database_name = "building_shop"
  tenant_name   = "Building Shop Inc."
  plan          = "professional" # free | starter (default) | professional | enterprise

  # true by default: destroy fails and drops nothing until this is set to false and applied.
  deletion_protection = true
}

output "building_shop_roles" {
  value = {
    owner     = usualstore_tenant.building_shop.owner_role
    admin     = usualstore_tenant.building_shop.admin_role
    developer = usualstore_tenant.building_shop.developer_role
    customer  = usualstore_tenant.building_shop.customer_role
  }
}
