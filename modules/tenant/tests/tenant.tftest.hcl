# `terraform test` for the tenant module (Terraform >= 1.6), against a real PostgreSQL server.
#
#   cd modules/tenant
#   export PGHOST=... PGPORT=... PGUSER=... PGPASSWORD=...   # a server the provider may manage
#   terraform init && terraform test
#
# Use a throwaway server (README, "Installing": `testpg` starts one) or one where these names are free:
# the runs create the tenant tftest_tenant with the logins tftest_ops, tftest_dev and tftest_viewer,
# and destroy them when the file is done. Where a ready tenant of that name already exists, the first
# run fails and nothing of it is touched. `make test` runs this file from the acceptance tests.

variables {
  database_name = "tftest_tenant"
  tenant_name   = "Module Test Ltd."
  # terraform test destroys what it created; a protected tenant would refuse.
  deletion_protection = false

  admins     = [{ username = "tftest_ops", email = "ops@tftest.example" }]
  developers = [{ username = "tftest_dev", password = "developer-chosen-1" }]
  customers  = [{ username = "tftest_viewer" }]
  # Written as an operator might; the output's keys are the names as store-api compares them.
  hosts = ["Shop.TFTest.example.", "www.tftest.example"]
}

run "tenant_with_users" {
  assert {
    condition     = output.database_name == "tftest_tenant" && output.tenant_name == "Module Test Ltd."
    error_message = "The tenant's names are not the ones asked for."
  }

  assert {
    condition     = output.plan == "starter" && output.connection_limit == 10
    error_message = "The default plan is not starter with 10 connections: ${output.plan}, ${output.connection_limit}."
  }

  assert {
    condition     = output.schema_version >= 1
    error_message = "No store schema was applied (schema_version ${output.schema_version})."
  }

  assert {
    condition = output.roles == {
      owner     = "tftest_tenant_owner"
      admin     = "tftest_tenant_admin"
      developer = "tftest_tenant_developer"
      customer  = "tftest_tenant_customer"
    }
    error_message = "The group roles are not named after the database."
  }

  assert {
    condition = output.users == {
      tftest_ops    = "admin"
      tftest_dev    = "developer"
      tftest_viewer = "customer"
    }
    error_message = "Each login is not in the group of the list it was given in."
  }

  # The DSNs are sensitive: the conditions may read them, the messages must not print them.
  assert {
    condition     = strcontains(output.admin_dsn, "user='tftest_ops'") && strcontains(output.admin_dsn, "dbname='tftest_tenant'")
    error_message = "admin_dsn is not the first admin's connection to the tenant's database."
  }

  assert {
    condition     = strcontains(output.dsns["tftest_dev"], "password='developer-chosen-1'")
    error_message = "The developer's DSN does not carry the password it was given."
  }

  assert {
    condition = (
      keys(output.store_api_tenants) == ["shop.tftest.example", "www.tftest.example"]
      && output.store_api_tenants["shop.tftest.example"].dsn == output.admin_dsn
      && output.store_api_tenants["www.tftest.example"].name == "Module Test Ltd."
    )
    error_message = "store_api_tenants does not map each host name to the first admin's DSN and the tenant's name."
  }

  assert {
    condition     = length(output.urls) == 3 && startswith(output.urls["tftest_viewer"], "postgres://tftest_viewer:")
    error_message = "Not every login has a postgres:// URL; the generated password should be in it."
  }
}

# The same tenant moved to another plan and a login moved to another group: updates in place.
run "plan_and_group_change_in_place" {
  variables {
    plan       = "professional"
    developers = []
    customers  = [{ username = "tftest_viewer" }, { username = "tftest_dev", password = "developer-chosen-1" }]
  }

  assert {
    condition     = output.plan == "professional" && output.connection_limit == 25
    error_message = "The plan change did not reach the connection limit: ${output.plan}, ${output.connection_limit}."
  }

  assert {
    condition = output.users == {
      tftest_ops    = "admin"
      tftest_dev    = "customer"
      tftest_viewer = "customer"
    }
    error_message = "tftest_dev did not move to the customer group."
  }
}

run "a_user_without_username_is_refused_at_plan" {
  command = plan

  variables {
    customers = [{ email = "nobody@tftest.example" }]
  }

  expect_failures = [var.customers]
}
