# Inputs of the tenant module.
#
# What a name, plan, e-mail or password may be is the provider's rule: it checks each at plan time
# with a diagnostic on the attribute (and `terraform-provider-usualstore check` gives scripts the same
# rules). The module checks only what no single resource can see: the keys of each user entry (users
# are maps, since Terraform 1.0.3 has no optional object attributes), that each has a username, and,
# in main.tf, usernames listed twice.
#
# The key and duplicate checks name the offending value by failing inside their condition:
# `ok ? true : tobool("message")` prints the message, the value included, on 1.0.3 (whose
# error_message must be a literal) as well as on 1.11. Terraform reports such a failure as an error
# rather than a failed check, so `terraform test` cannot expect it; the username check is a plain
# false condition (a missing name needs no naming), which tests/*.tftest.hcl expects.

variable "database_name" {
  description = "Name of the tenant's PostgreSQL database; also the prefix of its group roles (<name>_admin, ...). The provider checks it (lowercase identifier, at most 53 bytes, not reserved)."
  type        = string
}

variable "tenant_name" {
  description = "The customer's display name, kept in the database comment."
  type        = string
}

variable "plan" {
  description = "free, starter, professional or enterprise: the database connection limit (5, 10, 25, 50)."
  type        = string
  default     = "starter"
}

variable "deletion_protection" {
  description = "While true, destroying the tenant fails and drops nothing."
  type        = bool
  default     = true
}

variable "admins" {
  description = "Users with the admin role (SELECT, INSERT, UPDATE, DELETE). The first one's DSN is admin_dsn, the login of the tenant's store-api container. Each is a map: username (required), email and password (optional; empty or absent: generated)."
  type        = list(map(string))
  default     = []

  validation {
    condition = alltrue([
      for i, u in var.admins :
      length(setsubtract(keys(u), ["username", "email", "password", "password_version"])) == 0
      ? true
      : tobool("admins[${i}] has the unknown key(s) ${join(", ", setsubtract(keys(u), ["username", "email", "password", "password_version"]))}: a user has username, email, password and password_version.")
    ])
    error_message = "Each entry of admins may only have the keys username, email, password and password_version."
  }

  validation {
    condition     = alltrue([for u in var.admins : (lookup(u, "username", null) == null ? "" : u.username) != ""])
    error_message = "Each entry of admins needs a username."
  }
}

variable "developers" {
  description = "Users with the developer role (SELECT, INSERT, UPDATE; no DELETE, no TRUNCATE). Each is a map: username (required), email and password (optional; empty or absent: generated)."
  type        = list(map(string))
  default     = []

  validation {
    condition = alltrue([
      for i, u in var.developers :
      length(setsubtract(keys(u), ["username", "email", "password", "password_version"])) == 0
      ? true
      : tobool("developers[${i}] has the unknown key(s) ${join(", ", setsubtract(keys(u), ["username", "email", "password", "password_version"]))}: a user has username, email, password and password_version.")
    ])
    error_message = "Each entry of developers may only have the keys username, email, password and password_version."
  }

  validation {
    condition     = alltrue([for u in var.developers : (lookup(u, "username", null) == null ? "" : u.username) != ""])
    error_message = "Each entry of developers needs a username."
  }
}

variable "customers" {
  description = "Users with the customer role (SELECT only). Each is a map: username (required), email and password (optional; empty or absent: generated)."
  type        = list(map(string))
  default     = []

  validation {
    condition = alltrue([
      for i, u in var.customers :
      length(setsubtract(keys(u), ["username", "email", "password", "password_version"])) == 0
      ? true
      : tobool("customers[${i}] has the unknown key(s) ${join(", ", setsubtract(keys(u), ["username", "email", "password", "password_version"]))}: a user has username, email, password and password_version.")
    ])
    error_message = "Each entry of customers may only have the keys username, email, password and password_version."
  }

  validation {
    condition     = alltrue([for u in var.customers : (lookup(u, "username", null) == null ? "" : u.username) != ""])
    error_message = "Each entry of customers needs a username."
  }
}

variable "write_only_passwords" {
  description = "Terraform 1.11 or later: each user's password is sent as password_wo (write-only) and kept nowhere, not in state; every user needs a password then, and its password_version key (a number, default 1) is changed to send a new one. DSNs then carry no password. Refused by the provider on older Terraform."
  type        = bool
  default     = false
}

variable "hosts" {
  description = "Host names (ASCII; internationalised names in their xn-- form) at which a store-api in router mode serves this tenant. They key the output store_api_tenants, whose file is TENANTS_FILE. Empty: the tenant is served by an instance of its own only (admin_dsn)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for h in var.hosts : can(regex("^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\\.?$", h))])
    error_message = "Each entry of hosts must be a host name without port or scheme (letters, digits, '-', '.'; an internationalised name in its xn-- form)."
  }
}
