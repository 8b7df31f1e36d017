# The import ID is the maintenance database the provider connects to (its `database`
# setting, PGDATABASE, or postgres).
terraform import usualstore_server.this postgres
