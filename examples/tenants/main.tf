# The configuration operators apply, one customer at a time:
#
#   customers/<customer>-deploy.sh              (what add-customer.sh writes), or by hand:
#   terraform workspace select <customer>       (terraform workspace new <customer> the first time)
#   terraform apply -var-file=customers/<customer>.tfvars [-var-file=customers/<customer>.secrets.tfvars]
#
# Every customer has a Terraform workspace, and so a state, of its own: applying one customer's file
# can neither change nor destroy another customer's tenants.

locals {
  # Applying customer A's file in customer B's workspace would plan to destroy B and create A.
  # This refuses to plan at all. tobool() makes the message show on Terraform 1.0.3, which has no
  # preconditions.
  workspace_matches = (
    terraform.workspace == var.customer
    ? true
    : tobool("this is the Terraform workspace '${terraform.workspace}', but the var-file is for customer '${var.customer}'. Each customer has its own workspace (state): run customers/${var.customer}-deploy.sh, or 'terraform workspace select ${var.customer}' ('terraform workspace new ${var.customer}' the first time), then plan again.")
  )

  main_tenant_present = (
    contains(keys(var.tenants), var.customer)
    ? true
    : tobool("customer '${var.customer}': tenants has no entry '${var.customer}'. The customer's main tenant (whose first admin the store-api container logs in as) has the customer key as its database name; the tenants are ${join(", ", keys(var.tenants))}.")
  )

  tenants = {
    for name, tenant in var.tenants : name => tenant
    if local.workspace_matches && local.main_tenant_present && local.passwords_present
  }

  # A user marked `password_in_secrets = "true"` in customers/<customer>.tfvars has its password in
  # var.passwords, which only the git-ignored customers/<customer>.secrets.tfvars sets. Without that
  # file the user would get a generated password and lose the one the customer chose, so plan refuses.
  # Usernames are not secret; the passwords stay sensitive.
  password_usernames = nonsensitive(keys(var.passwords))
  marked_usernames = flatten([
    for tenant in values(var.tenants) : [
      for user in concat(tenant.admins, tenant.developers, tenant.customers) :
      lookup(user, "username", "") if lookup(user, "password_in_secrets", "false") == "true"
    ]
  ])
  missing_passwords = [for name in local.marked_usernames : name if !contains(local.password_usernames, name)]
  passwords_present = (
    length(local.missing_passwords) == 0
    ? true
    : tobool("the password of ${join(", ", local.missing_passwords)} is kept in customers/${var.customer}.secrets.tfvars, which this run did not get: add -var-file=customers/${var.customer}.secrets.tfvars (customers/${var.customer}-deploy.sh does), or the user would get a new generated password.")
  )

  with_passwords = {
    for name, tenant in local.tenants : name => {
      for role in ["admins", "developers", "customers"] : role => [
        for user in tenant[role] : merge(
          { for key, value in user : key => value if key != "password_in_secrets" },
          { password = lookup(var.passwords, lookup(user, "username", ""), lookup(user, "password", "")) },
        )
      ]
    }
  }
}

module "tenant" {
  source   = "../../modules/tenant"
  for_each = local.tenants

  database_name       = each.key
  tenant_name         = each.value.tenant_name
  plan                = each.value.plan
  deletion_protection = each.value.deletion_protection
  admins              = local.with_passwords[each.key].admins
  developers          = local.with_passwords[each.key].developers
  customers           = local.with_passwords[each.key].customers

  write_only_passwords = var.write_only_passwords
  hosts                = lookup(var.hosts, each.key, [])
}
