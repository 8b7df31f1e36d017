# Makes a PostgreSQL server fit to host tenants, once, in a state of its own. Customers are applied
# one workspace each (examples/tenants), so the server's lockdown does not belong to any one of them:
# destroying a customer must never open the server to every other customer's logins.
#
#   cd examples/server && terraform init && terraform apply
#
# The provider reads the server's connection from the PG* variables, as examples/tenants does.
terraform {
  required_version = ">= 1.0"
  required_providers {
    usualstore = {
      source = "usualstore/usualstore"
    }
  }
}

provider "usualstore" {}

resource "usualstore_server" "this" {}

output "openings" {
  description = "What PUBLIC may still do outside the tenants: empty once applied."
  value       = usualstore_server.this.openings
}
