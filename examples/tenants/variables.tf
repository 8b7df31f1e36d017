variable "customer" {
  description = "The customer this state belongs to: the Terraform workspace must have this name (customers/<customer>-deploy.sh selects it)."
  type        = string

  validation {
    condition = (
      can(regex("^[a-z_][a-z0-9_]{0,52}$", var.customer))
      ? true
      : tobool("customer '${var.customer}' is not a valid customer key: a lowercase letter or underscore, then lowercase letters, digits or underscores, at most 53 characters.")
    )
    error_message = "The customer key must be a lowercase identifier."
  }
}

variable "tenants" {
  description = <<-EOT
    The customer's tenants, by database name. The one named like the customer is its main tenant
    (output api_dsn). Every attribute must be given: Terraform 1.0.3 has no optional attributes.
    admins, developers and customers are lists of { username, email } maps. A user without a password
    gets a generated one; a user whose password the customer chose has password_in_secrets = "true"
    and its password in var.passwords (the git-ignored customers/<customer>.secrets.tfvars).
  EOT
  type = map(object({
    tenant_name         = string
    plan                = string
    deletion_protection = bool
    admins              = list(map(string))
    developers          = list(map(string))
    customers           = list(map(string))
  }))

  validation {
    condition = alltrue([
      for name, tenant in var.tenants :
      length(tenant.admins) > 0
      ? true
      : tobool("tenants['${name}'] has no admins: the first admin is the login of the tenant's store-api container.")
    ])
    error_message = "Every tenant needs at least one admin."
  }
}

variable "passwords" {
  description = "Passwords by username, for users whose password is not generated. Keep them in customers/<customer>.secrets.tfvars (git-ignored), never in customers/<customer>.tfvars."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "dsn_host" {
  description = "Host written into the users' DSNs (e.g. host.docker.internal when PostgreSQL runs on the Docker host). null: the provider's host."
  type        = string
  default     = null
}

variable "dsn_port" {
  description = "Port written into the users' DSNs. null: the provider's port."
  type        = number
  default     = null
}

variable "write_only_passwords" {
  description = "Terraform 1.11 or later: passwords are sent write-only and kept out of the state (every user needs one, from customers/<customer>.secrets.tfvars; change a user's password_version to rotate it). The DSN outputs then carry no password."
  type        = bool
  default     = false
}

variable "hosts" {
  description = "Host names of each tenant, by database name, for a store-api in router mode (output store_api_tenants). A tenant without an entry is left out of that output."
  type        = map(list(string))
  default     = {}
}
