# One tenant: its database (usualstore_tenant) and one login user per entry of admins, developers
# and customers (usualstore_tenant_user), keyed by username so that reordering a list changes nothing.

locals {
  # Absent keys and null values both read as "" below.
  users_by_role = {
    admin     = var.admins
    developer = var.developers
    customer  = var.customers
  }
  user_list = flatten([
    for role, users in local.users_by_role : [
      for u in users : {
        username = lookup(u, "username", null) == null ? "" : u.username
        email    = lookup(u, "email", null) == null ? "" : u.email
        password = lookup(u, "password", null) == null ? "" : u.password
        version  = lookup(u, "password_version", null) == null ? "1" : u.password_version
        role     = role
      }
    ]
  ])
  usernames = [for u in local.user_list : u.username]

  # PostgreSQL roles are global to the server: a username may appear once, in one list. Only the
  # module sees all the lists; each name itself is the provider's to check.
  duplicate_usernames = distinct([
    for name in local.usernames : name if length([for other in local.usernames : other if other == name]) > 1
  ])

  # The same trick as in variables.tf: fail with the offending names in the message.
  users_are_valid = (
    length(local.duplicate_usernames) > 0
    ? tobool("tenant ${var.database_name}: username(s) ${join(", ", local.duplicate_usernames)} listed more than once across admins, developers and customers; PostgreSQL login names are unique on the server.")
    : true
  )

  users = { for u in local.user_list : u.username => u if local.users_are_valid }
}

resource "usualstore_tenant" "this" {
  database_name       = var.database_name
  tenant_name         = var.tenant_name
  plan                = var.plan
  deletion_protection = var.deletion_protection
}

resource "usualstore_tenant_user" "this" {
  for_each = local.users

  tenant   = usualstore_tenant.this.database_name
  username = each.key
  role     = each.value.role
  email    = each.value.email == "" ? null : each.value.email
  # null: the provider generates a password once and keeps it in state.
  password = var.write_only_passwords || each.value.password == "" ? null : each.value.password
  # Write-only: sent when the user is created or its version changes, stored nowhere. An empty one
  # is the provider's to refuse: checking it here would make every user's key sensitive.
  password_wo         = var.write_only_passwords ? each.value.password : null
  password_wo_version = var.write_only_passwords ? tonumber(each.value.version) : null
}
