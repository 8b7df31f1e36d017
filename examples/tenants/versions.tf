terraform {
  # Tested with 1.0.3 and 1.11.x.
  required_version = ">= 1.0.3"

  required_providers {
    usualstore = {
      source = "usualstore/usualstore"
    }
  }
}

# Server connection from the PG* environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE).
provider "usualstore" {
  # What the users' DSNs name: the address the store-api containers reach the server at,
  # when that differs from the address Terraform uses. null: the provider's host and port.
  dsn_host = var.dsn_host
  dsn_port = var.dsn_port
}
