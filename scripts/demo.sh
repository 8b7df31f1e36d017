#!/usr/bin/env bash
# `make demo`: applies examples/quickstart (or $DEMO_DIR) with the installed provider against a
# throwaway PostgreSQL cluster, shows that a second plan is empty, starts store-api for the demo
# tenant and prints its storefront's address (waiting for Enter when stdin is a terminal), then
# tears everything down.
#
# Needs: `make install` done (the Makefile does it), the `testpg` binary (TESTPG), Terraform
# (TERRAFORM, default `terraform`), and for the storefront the store-api binary (STORE_API; that
# step is skipped without it or without an `api_dsn` output). DEMO_API_HOST (default 127.0.0.1)
# and DEMO_API_PORT (default: the first free port from 4001) say where store-api listens. The
# example is copied to a temporary directory so no state lands in the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_DIR="${DEMO_DIR:-$ROOT/examples/quickstart}"
TERRAFORM="${TERRAFORM:-terraform}"
TESTPG="${TESTPG:?set TESTPG to the testpg binary (cargo build -p usualstore-testpg --bin testpg)}"
STORE_API="${STORE_API:-}"
DEMO_API_HOST="${DEMO_API_HOST:-127.0.0.1}"

say() { printf '\n==> %s\n' "$*" >&2; }

work="$(mktemp -d)"
testpg_pid=""
store_api_pid=""
stop_store_api() {
    if [[ -n "$store_api_pid" ]]; then
        # SIGTERM: store-api finishes requests in flight, closes its pool and exits.
        kill -TERM "$store_api_pid" 2>/dev/null || true
        wait "$store_api_pid" 2>/dev/null || true
        store_api_pid=""
    fi
}
cleanup() {
    stop_store_api
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

# Whether something accepts connections on 127.0.0.1:$1 (bash's /dev/tcp: no curl or nc needed).
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# store-api for the demo tenant, with a first admin and a few widgets, until Enter is pressed.
storefront() {
    local api_dsn port password url
    if [[ -z "$STORE_API" || ! -x "$STORE_API" ]]; then
        say "no store-api binary (STORE_API); skipping the storefront"
        return 0
    fi
    if ! api_dsn="$("$TERRAFORM" output -raw api_dsn 2>/dev/null)" || [[ -z "$api_dsn" ]]; then
        say "$DEMO_DIR has no api_dsn output; skipping the storefront"
        return 0
    fi
    port="${DEMO_API_PORT:-}"
    if [[ -z "$port" ]]; then
        port=4001
        while port_in_use "$port"; do
            port=$((port + 1))
            ((port < 4101)) || { echo "no free port in 4001-4100 for store-api" >&2; return 1; }
        done
    fi
    # A throwaway admin for a throwaway database: printed below so the back office can be tried.
    password="demo-$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')"
    say "adding the first admin (store-api user create)"
    printf '%s\n' "$password" | DATABASE_DSN="$api_dsn" "$STORE_API" user create \
        --email admin@building-shop.example --first-name Demo --last-name Admin --role admin
    if command -v psql >/dev/null 2>&1; then
        say "adding a few widgets (psql as the tenant's admin login)"
        psql "$api_dsn" -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO public.widgets (name, description, inventory_level, price_cents) VALUES
  ('Hex bolt M8', 'Zinc-plated steel, 40 mm, sold singly.', 250, 35),
  ('Wing nut M8', 'For the bolts you undo by hand.', 4, 60),
  ('Hinge, brass', E'75 mm butt hinge.\n\nScrews included.', 18, 495),
  ('Spirit level', '600 mm aluminium, three vials.', 0, 2199),
  ('Tape measure', '5 m, lockable, belt clip.', 3, 899);
SQL
    else
        say "no psql here: the catalogue starts empty (add widgets in the back office)"
    fi
    say "starting store-api for the demo tenant"
    DATABASE_DSN="$api_dsn" API_HOST="$DEMO_API_HOST" API_PORT="$port" LOG_LEVEL=warn \
        "$STORE_API" </dev/null 2>"$work/store-api.log" &
    store_api_pid=$!
    for _ in $(seq 1 100); do
        port_in_use "$port" && break
        if ! kill -0 "$store_api_pid" 2>/dev/null; then
            cat "$work/store-api.log" >&2
            echo "store-api exited" >&2
            return 1
        fi
        sleep 0.1
    done
    if ! port_in_use "$port"; then
        cat "$work/store-api.log" >&2
        echo "store-api is not listening on port $port" >&2
        return 1
    fi
    url="http://127.0.0.1:$port/"
    [[ "$DEMO_API_HOST" == 0.0.0.0 || "$DEMO_API_HOST" == 127.0.0.1 ]] || url="http://$DEMO_API_HOST:$port/"
    cat >&2 <<MESSAGE

    The storefront of the demo tenant is up:

      catalogue     $url
      back office   ${url}admin   (admin@building-shop.example, password $password)
      JSON API      ${url}api/widgets

MESSAGE
    if [[ -t 0 ]]; then
        read -r -p "Press Enter to stop store-api and clean up... " _
    else
        echo "stdin is not a terminal: not waiting" >&2
    fi
    stop_store_api
}
storefront

say "switching deletion protection off and destroying"
"$TERRAFORM" apply -input=false -auto-approve -var deletion_protection=false
"$TERRAFORM" destroy -input=false -auto-approve -var deletion_protection=false
say "demo finished; the cluster is being stopped"
