terraform {
  required_providers {
    usualstore = {
      source = "usualstore/usualstore"
    }
  }
}

# Every attribute is optional: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE and
# PGCONNECT_TIMEOUT fill in what the block leaves out.
provider "usualstore" {
  host     = "db.example.internal"
  port     = 5432
  username = "usualstore_operator" # a superuser, or a role with CREATEDB CREATEROLE
  password = var.postgres_password
  sslmode  = "require"

  # What the tenant users' DSNs point at, e.g. the database's name inside a compose network.
  dsn_host = "db"
  dsn_port = 5432
}

variable "postgres_password" {
  type      = string
  sensitive = true
}
