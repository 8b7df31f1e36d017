# Terraform 1.11 or later. The API's password lives in a secret store, not in Terraform's state:
# it arrives as an ephemeral variable (or from another provider's ephemeral resource).
variable "api_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "usualstore_tenant" "building_shop" {
  database_name = "building_shop"
  tenant_name   = "Building Shop Inc."
  plan          = "professional"
}

resource "usualstore_tenant_user" "building_ops" {
  tenant              = usualstore_tenant.building_shop.database_name
  username            = "building_ops"
  role                = "admin"
  password_wo         = var.api_password
  password_wo_version = 1 # bump with every new api_password
}

# The full DSN, password included, for write-only arguments of other resources (a secret store's
# secret version, a Kubernetes secret's data_wo); never in state or plan.
ephemeral "usualstore_dsn" "building_ops" {
  tenant   = usualstore_tenant_user.building_ops.tenant
  username = usualstore_tenant_user.building_ops.username
  user_id  = usualstore_tenant_user.building_ops.id # opened once the user exists
  password = var.api_password
}

# Here the consumer is a login check at apply time (psql on the PATH).
resource "terraform_data" "login_check" {
  triggers_replace = [usualstore_tenant_user.building_ops.password_wo_version]

  provisioner "local-exec" {
    command     = "psql \"$DSN\" -c 'SELECT current_user'"
    environment = { DSN = ephemeral.usualstore_dsn.building_ops.dsn }
  }
}
