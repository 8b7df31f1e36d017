# Inputs of the tenant module.
#
# Every check below that can name the offending value does so by failing inside its condition:
# `ok ? true : tobool("message")` makes Terraform print the message, the value included, on 1.0.3
# (whose error_message must be a literal) as well as on 1.11. error_message is what Terraform would
# say if a condition ever returned false instead.

variable "database_name" {
  description = "Name of the tenant's PostgreSQL database; also the prefix of its group roles (<name>_admin, ...)."
  type        = string

  validation {
    condition = (
      can(regex("^[a-z_][a-z0-9_]{0,52}$", var.database_name)) && !contains(["postgres", "template0", "template1"], var.database_name)
      ? true
      : tobool("database_name '${var.database_name}' is not valid: a lowercase letter or underscore, then lowercase letters, digits or underscores, at most 53 characters, and not postgres, template0 or template1.")
    )
    error_message = "The database_name must be a lowercase identifier of at most 53 characters."
  }
}

variable "tenant_name" {
  description = "The customer's display name, kept in the database comment."
  type        = string

  validation {
    condition = (
      length(trimspace(var.tenant_name)) > 0 && length(var.tenant_name) <= 200
      ? true
      : tobool("tenant_name '${var.tenant_name}' is not valid: it must not be blank and may have at most 200 characters.")
    )
    error_message = "The tenant_name must not be blank."
  }
}

variable "plan" {
  description = "free, starter, professional or enterprise: the database connection limit (5, 10, 25, 50)."
  type        = string
  default     = "starter"

  validation {
    condition = (
      contains(["free", "starter", "professional", "enterprise"], var.plan)
      ? true
      : tobool("plan '${var.plan}' is not one of free, starter, professional, enterprise.")
    )
    error_message = "The plan must be free, starter, professional or enterprise."
  }
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
      length(setsubtract(keys(u), ["username", "email", "password"])) == 0
      ? true
      : tobool("admins[${i}] has the unknown key(s) ${join(", ", setsubtract(keys(u), ["username", "email", "password"]))}: a user has username, email and password.")
    ])
    error_message = "Each entry of admins may only have the keys username, email and password."
  }

  validation {
    condition = alltrue([
      for i, u in var.admins :
      can(regex("^[a-z_][a-z0-9_]{0,52}$", lookup(u, "username", null) == null ? "" : u.username))
      ? true
      : tobool("admins[${i}].username '${lookup(u, "username", null) == null ? "" : u.username}' is not a valid login name: a lowercase letter or underscore, then lowercase letters, digits or underscores, at most 53 characters.")
    ])
    error_message = "Each entry of admins needs a username: a lowercase identifier of at most 53 characters."
  }

  validation {
    condition = alltrue([
      for i, u in var.admins :
      can(regex("^([^@\\s]+@[^@\\s]+)?$", lookup(u, "email", null) == null ? "" : u.email))
      ? true
      : tobool("admins[${i}].email '${lookup(u, "email", null) == null ? "" : u.email}' is not an e-mail address (name@domain, no spaces).")
    ])
    error_message = "Each email of admins must be empty or name@domain."
  }

  validation {
    condition = alltrue([
      for i, u in var.admins :
      length(lookup(u, "password", null) == null ? "" : u.password) != 0 && length(lookup(u, "password", null) == null ? "" : u.password) < 8
      ? tobool("admins[${i}] (username '${lookup(u, "username", null) == null ? "" : u.username}'): the password is shorter than 8 characters; give a longer one, or leave it empty to have one generated.")
      : true
    ])
    error_message = "Each password of admins must have at least 8 characters, or be empty to be generated."
  }
}

variable "developers" {
  description = "Users with the developer role (SELECT, INSERT, UPDATE; no DELETE, no TRUNCATE). Each is a map: username (required), email and password (optional; empty or absent: generated)."
  type        = list(map(string))
  default     = []

  validation {
    condition = alltrue([
      for i, u in var.developers :
      length(setsubtract(keys(u), ["username", "email", "password"])) == 0
      ? true
      : tobool("developers[${i}] has the unknown key(s) ${join(", ", setsubtract(keys(u), ["username", "email", "password"]))}: a user has username, email and password.")
    ])
    error_message = "Each entry of developers may only have the keys username, email and password."
  }

  validation {
    condition = alltrue([
      for i, u in var.developers :
      can(regex("^[a-z_][a-z0-9_]{0,52}$", lookup(u, "username", null) == null ? "" : u.username))
      ? true
      : tobool("developers[${i}].username '${lookup(u, "username", null) == null ? "" : u.username}' is not a valid login name: a lowercase letter or underscore, then lowercase letters, digits or underscores, at most 53 characters.")
    ])
    error_message = "Each entry of developers needs a username: a lowercase identifier of at most 53 characters."
  }

  validation {
    condition = alltrue([
      for i, u in var.developers :
      can(regex("^([^@\\s]+@[^@\\s]+)?$", lookup(u, "email", null) == null ? "" : u.email))
      ? true
      : tobool("developers[${i}].email '${lookup(u, "email", null) == null ? "" : u.email}' is not an e-mail address (name@domain, no spaces).")
    ])
    error_message = "Each email of developers must be empty or name@domain."
  }

  validation {
    condition = alltrue([
      for i, u in var.developers :
      length(lookup(u, "password", null) == null ? "" : u.password) != 0 && length(lookup(u, "password", null) == null ? "" : u.password) < 8
      ? tobool("developers[${i}] (username '${lookup(u, "username", null) == null ? "" : u.username}'): the password is shorter than 8 characters; give a longer one, or leave it empty to have one generated.")
      : true
    ])
    error_message = "Each password of developers must have at least 8 characters, or be empty to be generated."
  }
}

variable "customers" {
  description = "Users with the customer role (SELECT only). Each is a map: username (required), email and password (optional; empty or absent: generated)."
  type        = list(map(string))
  default     = []

  validation {
    condition = alltrue([
      for i, u in var.customers :
      length(setsubtract(keys(u), ["username", "email", "password"])) == 0
      ? true
      : tobool("customers[${i}] has the unknown key(s) ${join(", ", setsubtract(keys(u), ["username", "email", "password"]))}: a user has username, email and password.")
    ])
    error_message = "Each entry of customers may only have the keys username, email and password."
  }

  validation {
    condition = alltrue([
      for i, u in var.customers :
      can(regex("^[a-z_][a-z0-9_]{0,52}$", lookup(u, "username", null) == null ? "" : u.username))
      ? true
      : tobool("customers[${i}].username '${lookup(u, "username", null) == null ? "" : u.username}' is not a valid login name: a lowercase letter or underscore, then lowercase letters, digits or underscores, at most 53 characters.")
    ])
    error_message = "Each entry of customers needs a username: a lowercase identifier of at most 53 characters."
  }

  validation {
    condition = alltrue([
      for i, u in var.customers :
      can(regex("^([^@\\s]+@[^@\\s]+)?$", lookup(u, "email", null) == null ? "" : u.email))
      ? true
      : tobool("customers[${i}].email '${lookup(u, "email", null) == null ? "" : u.email}' is not an e-mail address (name@domain, no spaces).")
    ])
    error_message = "Each email of customers must be empty or name@domain."
  }

  validation {
    condition = alltrue([
      for i, u in var.customers :
      length(lookup(u, "password", null) == null ? "" : u.password) != 0 && length(lookup(u, "password", null) == null ? "" : u.password) < 8
      ? tobool("customers[${i}] (username '${lookup(u, "username", null) == null ? "" : u.username}'): the password is shorter than 8 characters; give a longer one, or leave it empty to have one generated.")
      : true
    ])
    error_message = "Each password of customers must have at least 8 characters, or be empty to be generated."
  }
}
