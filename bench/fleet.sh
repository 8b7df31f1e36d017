#!/usr/bin/env bash
# `make bench-fleet`: figures for examples/tenants/fleet.sh, not pass/fail. Against one throwaway
# PostgreSQL cluster (testpg), in a copy of examples/tenants and modules/tenant:
#
#   1. C customers (BENCH_FLEET_CUSTOMERS, default 50) written by add-customer.sh --non-interactive,
#      each with an admin, a developer and a customer login (4 resources per customer);
#   2. deployed by `fleet.sh apply --parallel 8` (the first deploy: init, workspaces, CREATE DATABASE);
#   3. `fleet.sh plan` (refreshing, nothing pending) at --parallel 1, 4 and 8;
#   4. `fleet.sh apply` rolling one new migration out to every customer, at --parallel 1, 4 and 8 (a
#      new migration each time, through the test hook USUALSTORE_TEST_EXTRA_MIGRATIONS standing in for
#      a provider release); every customer must end at the new schema version;
#   5. `fleet.sh apply` once more with nothing to do (converged customers are skipped).
#
# For each: wall time, time per customer, client CPU (fleet.sh, terraform and the provider processes),
# server CPU (backends) and server sessions (pg_stat_database). Progress goes to stderr, the figures to
# stdout (and to $BENCH_RESULTS if set).
#
# Needs: PROVIDER_BIN (built with the test-hooks feature, as `make bench-fleet` does), TESTPG, Terraform
# (TERRAFORM, default `terraform`), jq, PostgreSQL's binaries (PG_BINDIR, default the newest
# /usr/lib/postgresql/*/bin). Knobs: BENCH_FLEET_CUSTOMERS (50), BENCH_FLEET_PARALLEL ("1 4 8"),
# BENCH_KEEP=1 keeps the working directory and its logs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}}"
PROVIDER_BIN="${PROVIDER_BIN:-$TARGET_DIR/release/terraform-provider-usualstore}"
TESTPG="${TESTPG:-$TARGET_DIR/debug/testpg}"
TERRAFORM="${TERRAFORM:-terraform}"
CUSTOMERS="${BENCH_FLEET_CUSTOMERS:-50}"
read -r -a PARALLEL <<<"${BENCH_FLEET_PARALLEL:-1 4 8}"

BENCH_NAME=bench-fleet
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/bench/lib.sh"

for file in "$PROVIDER_BIN" "$TESTPG" "$PSQL"; do
    [[ -x "$file" ]] || die "missing $file (make bench-fleet builds the provider and testpg)"
done
command -v "$TERRAFORM" >/dev/null || die "no terraform binary ($TERRAFORM)"
command -v jq >/dev/null || die "needs jq"
if ! [[ "$CUSTOMERS" =~ ^[0-9]+$ ]] || ((CUSTOMERS == 0)); then
    die "BENCH_FLEET_CUSTOMERS must be a positive number, not '$CUSTOMERS'"
fi
grep -q USUALSTORE_TEST_EXTRA_MIGRATIONS "$PROVIDER_BIN" ||
    die "$PROVIDER_BIN was built without the test-hooks feature: the rollout needs USUALSTORE_TEST_EXTRA_MIGRATIONS"

# Only what the benchmark sets reaches Terraform and psql: no TF_LOG, TF_CLI_ARGS or PG* from the caller.
while read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(TF_|PG|FLEET_|USUALSTORE_)' || true)

bench_workdir usualstore-bench-fleet

# Server sessions so far (backends report when they exit: the pause lets the last ones do so).
sessions() {
    sleep 0.5
    pgq -c "select sum(sessions) from pg_stat_database"
}

# measured NAME EXPECTED_STATUS CMD...: runs CMD (stdout in $LOGS/NAME.log, stderr in NAME.err); sets WALL, CPU, SERVER_CPU
# and SESSIONS. Any exit status but EXPECTED_STATUS ends the benchmark.
measured() {
    local name=$1 expected=$2 status=0 user sys before_sessions before_cpu after_sessions
    shift 2
    pgq -c 'checkpoint'
    before_sessions="$(sessions)"
    before_cpu="$(server_cpu)"
    local TIMEFORMAT='%3R %3U %3S'
    { time "$@" >"$LOGS/$name.log" 2>"$LOGS/$name.err"; } 2>"$LOGS/$name.time" || status=$?
    if ((status != expected)); then
        echo "bench-fleet: '$*' ended with status $status, not $expected; end of $LOGS/$name.err:" >&2
        tail -n 40 "$LOGS/$name.err" >&2
        exit 1
    fi
    read -r WALL user sys <"$LOGS/$name.time"
    CPU="$(calc '%.2f' "$user + $sys")"
    after_sessions="$(sessions)"
    SERVER_CPU="$(calc '%.2f' "$(server_cpu) - $before_cpu")"
    # Minus the first sessions query's own session.
    SESSIONS=$((after_sessions - before_sessions - 1))
}

# ---------------------------------------------------------------------------------------------------
# PostgreSQL

start_cluster
server_version="$(pgq -c 'show server_version')"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------------
# Terraform: the benchmark's provider mirror, HOME and CLI configuration.

provider_mirror
export HOME="$WORK/home" TF_CLI_CONFIG_FILE="$WORK/terraformrc" TF_IN_AUTOMATION=1 TF_INPUT=0 \
    CHECKPOINT_DISABLE=1 TERRAFORM USUALSTORE_PROVIDER="$PROVIDER_BIN"
tf_version="$("$TERRAFORM" version | sed -n '1s/^Terraform v//p')"

# The operator's tree: examples/tenants beside modules/tenant, without the committed example customers.
mkdir -p "$WORK/tree/modules" "$WORK/tree/examples"
cp -R "$ROOT/modules/tenant" "$WORK/tree/modules/tenant"
cp -R "$ROOT/examples/tenants" "$WORK/tree/examples/tenants"
EXAMPLE="$WORK/tree/examples/tenants"
rm -rf "$EXAMPLE/customers" "$EXAMPLE/.terraform" "$EXAMPLE/.terraform.lock.hcl" "$EXAMPLE/terraform.tfstate.d" \
    "$EXAMPLE/fleet-runs"
mkdir -p "$EXAMPLE/customers"
export FLEET_RUNS_DIR="$WORK/runs"

fleet() { (cd "$EXAMPLE" && ./fleet.sh "$@"); }

# ---------------------------------------------------------------------------------------------------
# 1. customers

say "adding $CUSTOMERS customers with add-customer.sh --non-interactive"
add_customers() {
    local i key
    for ((i = 1; i <= CUSTOMERS; i++)); do
        key="$(printf 'bf_%04d' "$i")"
        (cd "$EXAMPLE" && ./add-customer.sh --non-interactive --company "Bench customer $i" --database "$key" \
            --admin "${key}_ops" --developer "${key}_dev" --customer "${key}_ro" --api-port "$((10000 + i))") ||
            return 1
    done
}
measured add 0 add_customers
add_wall=$WALL

# ---------------------------------------------------------------------------------------------------
# 2. first deploy

say "first deploy: fleet.sh apply --parallel 8 ($CUSTOMERS customers)"
measured deploy 0 fleet apply --parallel 8 --json
deploy_wall=$WALL deploy_cpu=$CPU deploy_server_cpu=$SERVER_CPU deploy_sessions=$SESSIONS

# ---------------------------------------------------------------------------------------------------
# 3. plans, 4. rollouts

declare -A FIG=() PHASES=()
# Mean seconds per customer of each step (from fleet.sh's summary): plan, show -json, apply.
phases() {
    jq -r '[.customers[].phases] as $p | ["plan", "show", "apply"]
        | map(. as $k | [$p[][$k] | select(. != null)] | if length > 0 then "\($k) \(add / length * 100 | round / 100) s" else empty end)
        | join(", ")' "$1"
}
for p in "${PARALLEL[@]}"; do
    say "fleet.sh plan --parallel $p (nothing pending)"
    measured "plan-$p" 0 fleet plan --parallel "$p" --json
    FIG[plan.$p]="$WALL $CPU $SERVER_CPU $SESSIONS"
    PHASES[plan.$p]="$(phases "$LOGS/plan-$p.log")"
done

embedded="$(find "$ROOT/crates/schema/migrations" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.sql' | wc -l)"
MIGRATIONS="$WORK/extra-migrations"
mkdir -p "$MIGRATIONS"
export USUALSTORE_TEST_EXTRA_MIGRATIONS="$MIGRATIONS"
version=$embedded
for p in "${PARALLEL[@]}"; do
    version=$((version + 1))
    if ((version == embedded + 1)); then
        cp "$ROOT/bench/rollout-migration.sql" "$MIGRATIONS/$(printf '%04d' "$version")_bench_rollout.sql"
    else
        printf 'create table public.bench_fleet_%s (id bigint generated always as identity primary key);\n' "$version" \
            >"$MIGRATIONS/$(printf '%04d' "$version")_bench_fleet.sql"
    fi
    say "fleet.sh apply --parallel $p: migration $version to $CUSTOMERS customers"
    measured "rollout-$p" 0 fleet apply --parallel "$p" --json
    applied="$(jq '[.customers[] | select(.status == "applied")] | length' "$LOGS/rollout-$p.log")"
    at_version="$(jq --arg v "$version" '[.customers[] | select(.schema_after == $v)] | length' "$LOGS/rollout-$p.log")"
    ((applied == CUSTOMERS && at_version == CUSTOMERS)) ||
        die "rollout at --parallel $p: $applied applied, $at_version at version $version, of $CUSTOMERS"
    FIG[rollout.$p]="$WALL $CPU $SERVER_CPU $SESSIONS"
    PHASES[rollout.$p]="$(phases "$LOGS/rollout-$p.log")"
done

say "fleet.sh apply --parallel 8 again: nothing to do"
measured noop 0 fleet apply --parallel 8 --json
noop_wall=$WALL noop_cpu=$CPU noop_sessions=$SESSIONS
unchanged="$(jq '[.customers[] | select(.status == "unchanged")] | length' "$LOGS/noop.log")"
((unchanged == CUSTOMERS)) || die "the no-op apply found $((CUSTOMERS - unchanged)) customers not converged"

load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------------
# figures

COLUMNS_FORMAT='  %-38s %9s %10s %11s %11s %9s %10s %11s\n'
row() { # LABEL KEY
    local wall cpu server sessions
    read -r wall cpu server sessions <<<"${FIG[$2]}"
    # shellcheck disable=SC2059 # the format is ours
    printf "$COLUMNS_FORMAT" "$1" "$wall s" "$(calc '%.2f' "$wall / $CUSTOMERS") s" "$cpu s" "$server s" "$sessions" \
        "$(calc '%.1f' "$sessions / $CUSTOMERS")" "$(calc '%.1f' "$wall * 1000 / $CUSTOMERS / 60")"
}

report() {
    cat <<EOF
usualstore fleet benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')
machine: $(nproc) CPUs, $(uname -sr); load average before $load_before, after $load_after
PostgreSQL $server_version (throwaway testpg cluster, loopback TCP, autovacuum off); Terraform $tf_version;
provider $VERSION; $CUSTOMERS customers, each 1 tenant + 3 login users (4 resources), one workspace each

adding them with add-customer.sh --non-interactive: $add_wall s ($(calc '%.2f' "$add_wall / $CUSTOMERS") s per customer)
first deploy, fleet.sh apply --parallel 8: $deploy_wall s ($(calc '%.2f' "$deploy_wall / $CUSTOMERS") s per customer), client CPU $deploy_cpu s,
  server CPU $deploy_server_cpu s, $deploy_sessions sessions

EOF
    # shellcheck disable=SC2059 # the format is ours
    printf "$COLUMNS_FORMAT" "" wall "per cust." "client CPU" "server CPU" sessions "per cust." "1,000: min"
    local p
    for p in "${PARALLEL[@]}"; do row "fleet.sh plan --parallel $p" "plan.$p"; done
    for p in "${PARALLEL[@]}"; do row "fleet.sh apply --parallel $p (rollout)" "rollout.$p"; done
    cat <<EOF
  time per customer inside each run (mean over customers, each step one terraform command):
$(for p in "${PARALLEL[@]}"; do printf '    plan --parallel %s: %s;  rollout --parallel %s: %s\n' "$p" "${PHASES[plan.$p]}" "$p" "${PHASES[rollout.$p]}"; done)
  fleet.sh apply, nothing to do (--parallel 8): $noop_wall s ($(calc '%.2f' "$noop_wall / $CUSTOMERS") s per customer), client CPU $noop_cpu s, $noop_sessions sessions

client CPU: fleet.sh and everything it waited for (terraform, provider processes, jq); server CPU: backends.
A rollout per customer is a refreshing plan (saved) and the apply of that plan: two terraform commands.
The last column is the linear extrapolation wall / customer × 1,000; with the machine's $(nproc) CPUs busy, the
client CPU per customer ÷ $(nproc) is the floor no --parallel can go under.
EOF
}

if [[ -n "${BENCH_RESULTS:-}" ]]; then
    report | tee "$BENCH_RESULTS"
else
    report
fi
