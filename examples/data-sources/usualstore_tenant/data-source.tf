# A tenant another state manages, by database name.
data "usualstore_tenant" "shop" {
  database_name = "building_shop"
}

output "shop_schema_version" {
  value = data.usualstore_tenant.shop.schema_version
}

output "shop_admin_role" {
  value = data.usualstore_tenant.shop.admin_role
}
