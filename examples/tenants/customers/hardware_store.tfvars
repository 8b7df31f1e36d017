# Customer hardware_store: Hardware Store & Co.
# Written by add-customer.sh. Apply it with customers/hardware_store-deploy.sh.
# No passwords in this file: a user marked password_in_secrets has its password in
# customers/hardware_store.secrets.tfvars (git-ignored); the others get a generated one, kept in the
# Terraform state only.
customer = "hardware_store"

tenants = {
  hardware_store = {
    tenant_name         = "Hardware Store & Co."
    plan                = "starter"
    deletion_protection = true

    admins = [
      { username = "hardware_ops", email = "admin@hardware-store.example" },
    ]

    developers = []

    customers = [
      { username = "hardware_viewer", email = "viewer@hardware-store.example" },
    ]
  }
}
