#!/usr/bin/env bash
# Applies one customer of examples/tenants in the customer's own Terraform workspace (its own state),
# then prints how to connect. customers/<customer>-deploy.sh, written by add-customer.sh, calls this.
#
#   deploy.sh CUSTOMER [--plan-only] [--show-secrets] [--compose-up] [-- TERRAFORM_APPLY_OPTIONS...]
#
#   --plan-only      terraform plan instead of apply
#   --show-secrets   also print every user's DSN (they hold passwords)
#   --compose-up     afterwards start the customer's store-api container (docker compose), handing it
#                    DATABASE_DSN from the Terraform output api_dsn
#   Anything else, e.g. -auto-approve, goes to terraform apply.
#
# Environment: TERRAFORM (default terraform); PG* for the server connection, as the provider reads them;
# USUALSTORE_LOCK_TIMEOUT (default 60s): how long to wait for the customer's state lock held by another run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TF="${TERRAFORM:-terraform}"
# shellcheck source=SCRIPTDIR/lib/customer.sh
. "$HERE/lib/customer.sh"

die() {
    printf 'deploy: %s\n' "$*" >&2
    exit 2
}

usage() {
    sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
case "$1" in
-h | --help)
    usage
    exit 0
    ;;
esac
customer="$1"
shift
valid_customer_key "$customer" || die "'$customer' is not a customer key (lowercase letters, digits, _)"

plan_only=false
show_secrets=false
compose_up=false
tf_args=()
color=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --plan-only) plan_only=true ;;
    --show-secrets) show_secrets=true ;;
    --compose-up) compose_up=true ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
        tf_args+=("$@")
        break
        ;;
    -no-color)
        tf_args+=("$1")
        color=(-no-color)
        ;;
    *) tf_args+=("$1") ;;
    esac
    shift
done

cd "$HERE"
tfvars="customers/$customer.tfvars"
compose="customers/$customer-docker-compose.yml"
customer_var_files "$customer" || die "no $HERE/$tfvars: add the customer with add-customer.sh first"

# Every command below runs in the customer's workspace without changing the one selected in this
# directory, so two customers can be deployed from here at the same time (lib/customer.sh).
tf() { tf_customer "$customer" "$@"; }

ensure_init "${color[@]}"
ensure_workspace "$customer"

if $plan_only; then
    printf '==> terraform plan (workspace %s)\n' "$customer" >&2
    exec env TF_WORKSPACE="$customer" "$TF" plan -lock-timeout="$LOCK_TIMEOUT" "${CUSTOMER_VAR_FILES[@]}" "${tf_args[@]}"
fi

printf '==> terraform apply (workspace %s)\n' "$customer" >&2
tf apply -lock-timeout="$LOCK_TIMEOUT" "${CUSTOMER_VAR_FILES[@]}" "${tf_args[@]}"

printf '\n==> customer %s\n' "$customer"
tf output "${color[@]}" tenants
if $show_secrets; then
    printf '\nDSNs (dsns[database][username]):\n'
    tf output -json dsns
    printf '\nDATABASE_DSN of the store-api container (api_dsn):\n'
    tf output -raw api_dsn
    printf '\n'
else
    printf '\nDSNs hold passwords and are not shown; %s --show-secrets prints them,\n' "customers/$customer-deploy.sh"
    printf 'or: TF_WORKSPACE=%s %s output -json dsns\n' "$customer" "$TF"
fi

if $compose_up; then
    command -v docker >/dev/null || die "--compose-up needs docker"
    [[ -f "$compose" ]] || die "no $HERE/$compose"
    printf '\n==> docker compose up (%s)\n' "$compose" >&2
    # Only this command sees the DSN, and only through its environment.
    DATABASE_DSN="$(tf output -raw api_dsn)" docker compose -f "$compose" up -d --build
fi
