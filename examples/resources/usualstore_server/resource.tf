# One per server the provider manages: after it is applied, a tenant's login can connect to its
# own tenant database and nowhere else, and nothing a login creates lies on a provider session's
# path. Destroying it gives PUBLIC back CONNECT on the maintenance database and template1.
resource "usualstore_server" "this" {}

output "server_openings" {
  description = "What PUBLIC may still do outside the tenants: empty once applied."
  value       = usualstore_server.this.openings
}
