# A login user another state manages: its role and tenant, never its password.
data "usualstore_tenant_user" "ops" {
  tenant   = "building_shop"
  username = "building_ops"
}

output "ops_role" {
  value = data.usualstore_tenant_user.ops.role
}
