# A tenant user is imported as <tenant database>/<username>. PostgreSQL keeps only a verifier of
# the password, so an imported user has no password in state: the next apply sets the configured
# password, or generates one when the configuration has none, and the plan shows that update.
terraform import usualstore_tenant_user.building_ops building_shop/building_ops
