#!/usr/bin/env bash
# `make demo`: applies examples/quickstart (or $DEMO_DIR) with the installed provider against a
# throwaway PostgreSQL cluster, shows that a second plan is empty, then tears everything down.
#
# Needs: `make install` done (the Makefile does it), the `testpg` binary (TESTPG), Terraform
# (TERRAFORM, default `terraform`). The example is copied to a temporary directory so no state
# lands in the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_DIR="${DEMO_DIR:-$ROOT/examples/quickstart}"
TERRAFORM="${TERRAFORM:-terraform}"
TESTPG="${TESTPG:?set TESTPG to the testpg binary (cargo build -p usualstore-testpg --bin testpg)}"

say() { printf '\n==> %s\n' "$*" >&2; }

work="$(mktemp -d)"
testpg_pid=""
cleanup() {
    if [[ -n "$testpg_pid" ]]; then
        # SIGTERM makes testpg stop the cluster and delete its files.
        kill -TERM "$testpg_pid" 2>/dev/null || true
        wait "$testpg_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ -n "${PGHOST:-}" ]]; then
    say "using the PostgreSQL server PGHOST names"
else
    say "starting a throwaway PostgreSQL cluster"
    "$TESTPG" --ignore-stdin >"$work/pg.env" </dev/null &
    testpg_pid=$!
    for _ in $(seq 1 600); do
        grep -q '^export PGSSLMODE=' "$work/pg.env" 2>/dev/null && break
        kill -0 "$testpg_pid" 2>/dev/null || { echo "testpg exited early" >&2; exit 1; }
        sleep 0.1
    done
    grep -q '^export PGSSLMODE=' "$work/pg.env" || { echo "testpg printed no PG* settings" >&2; exit 1; }
    # shellcheck disable=SC1091 # generated at run time
    . "$work/pg.env"
fi
echo "PostgreSQL at ${PGHOST}:${PGPORT:-5432} as ${PGUSER:-$(id -un)}" >&2

cp -R "$DEMO_DIR" "$work/config"
rm -rf "$work/config/.terraform" "$work/config/.terraform.lock.hcl" "$work/config"/*.tfstate*
cd "$work/config"
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TF_INPUT=0

say "terraform init ($DEMO_DIR)"
"$TERRAFORM" init -input=false
say "terraform apply"
"$TERRAFORM" apply -input=false -auto-approve
say "terraform plan (expect: no changes)"
"$TERRAFORM" plan -input=false -detailed-exitcode
say "terraform output"
"$TERRAFORM" output

say "switching deletion protection off and destroying"
"$TERRAFORM" apply -input=false -auto-approve -var deletion_protection=false
"$TERRAFORM" destroy -input=false -auto-approve -var deletion_protection=false
say "demo finished; the cluster is being stopped"
