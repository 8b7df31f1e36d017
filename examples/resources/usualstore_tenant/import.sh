# A tenant is imported by its database name. deletion_protection is not stored in the
# database, so an imported tenant starts with the default, true.
terraform import usualstore_tenant.building_shop building_shop
