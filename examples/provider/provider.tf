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

  # Check who the server is; below verify-ca the provider never sends a password in clear text.
  sslmode     = "verify-full"
  sslrootcert = "/etc/ssl/certs/db-ca.pem"

  # What the tenant users' DSNs point at, e.g. the database's name inside a compose network,
  # and where the application finds the certificate authority.
  dsn_host        = "db"
  dsn_port        = 5432
  dsn_sslrootcert = "/run/secrets/db-ca.pem"
}

# Once per server: tenant logins may connect to their own database and nowhere else.
resource "usualstore_server" "this" {}

variable "postgres_password" {
  type      = string
  sensitive = true
}
