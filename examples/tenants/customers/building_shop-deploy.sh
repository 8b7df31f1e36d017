#!/usr/bin/env bash
# Applies customer building_shop in its own Terraform workspace (its own state) and prints how to connect.
# Written by add-customer.sh. Options (see ../deploy.sh): --plan-only, --show-secrets, --compose-up;
# anything else goes to terraform apply (e.g. -auto-approve).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../deploy.sh" building_shop "$@"
