# Customer building_shop: Building Shop Inc.
# Written by add-customer.sh. Apply it with customers/building_shop-deploy.sh.
# No passwords in this file: a user marked password_in_secrets has its password in
# customers/building_shop.secrets.tfvars (git-ignored); the others get a generated one, kept in the
# Terraform state only.
customer = "building_shop"

tenants = {
  building_shop = {
    tenant_name         = "Building Shop Inc."
    plan                = "professional"
    deletion_protection = true

    admins = [
      { username = "building_ops", email = "ops@building-shop.example" },
    ]

    developers = [
      { username = "building_dev", email = "dev@building-shop.example" },
    ]

    customers = [
      { username = "building_reports" },
    ]
  }
}
