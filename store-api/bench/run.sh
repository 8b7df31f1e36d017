#!/usr/bin/env bash
# store-api's part of `make bench`: HTTP throughput and latency of store-api against the same SQL run
# directly by pgbench, on one throwaway PostgreSQL cluster, the same tenant database and the same
# number of database connections.
#
#   reads   GET /api/widgets/{id} (random id)      vs  pgbench: the handler's SELECT
#   orders  POST /api/orders (random widget and    vs  pgbench: the token lookup, BEGIN, customer, stock
#           customer, quantity 1)                      decrement, payment+order insert, COMMIT (the naive
#                                                      sequence, one round trip per statement)
#
# An extra line runs store-api's own one-statement order directly (pgbench, no token lookup): the
# database's rate for what the API does, so the HTTP layer's share shows.
#
# Prints requests/s, p50 and p99 latency for each side and the ratio API ÷ pgbench (figures on stdout,
# progress on stderr). The load generator is wrk (installed with apt-get when missing); store-api runs
# with LOG_LEVEL=warn (BENCH_LOG_LEVEL) so the figures measure the service rather than a log file;
# BENCH_LOG_LEVEL=info writes the access log (to a file) as in production.
#
# Then the router run: BENCH_ROUTER_TENANTS tenants (100) provisioned on the same server, one store-api in
# router mode (TENANTS_FILE) serving them all, and wrk spreading GET /api/widgets/{id} over every host name
# from one process: req/s, p99, peak RSS and the server connections store-api held, printed beside the
# same figures of the one-tenant run. BENCH_ROUTER_TENANTS=0 skips it.
#
# Knobs: BENCH_CONNECTIONS (8: wrk connections, store-api pool size, pgbench clients), BENCH_SECONDS (10 per
# run), BENCH_WIDGETS (1000), BENCH_CUSTOMERS (1000), BENCH_ORDERS (10000: the order history the tenant starts
# with), BENCH_LOG_LEVEL (warn), BENCH_ROUTER_TENANTS (100),
# BENCH_ROUTER_DB_MAX (tenants + 16, at most 300: the router's DB_MAX_CONNECTIONS; the test server allows
# 400), PG_BINDIR (newest /usr/lib/postgresql/*/bin), CARGO_TARGET_DIR. BENCH_KEEP=1 keeps the working
# directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CONNECTIONS="${BENCH_CONNECTIONS:-8}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WIDGETS="${BENCH_WIDGETS:-1000}"
CUSTOMERS="${BENCH_CUSTOMERS:-1000}"
HISTORY_ORDERS="${BENCH_ORDERS:-10000}"
CARGO="${CARGO:-cargo}"
LOG_LEVEL_API="${BENCH_LOG_LEVEL:-warn}"
ROUTER_TENANTS="${BENCH_ROUTER_TENANTS:-100}"
ROUTER_DB_MAX="${BENCH_ROUTER_DB_MAX:-$((ROUTER_TENANTS + 16 < 300 ? ROUTER_TENANTS + 16 : 300))}"
if ((ROUTER_DB_MAX < 2 * CONNECTIONS)); then ROUTER_DB_MAX=$((2 * CONNECTIONS)); fi
# Load-generator threads: two (the cores), never more than the connections.
THREADS=$((CONNECTIONS < 2 ? CONNECTIONS : 2))

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'store-api bench: %s\n' "$*" >&2; exit 1; }

if [[ -z "${PG_BINDIR:-}" ]]; then
    PG_BINDIR="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
fi
PGBENCH="${PG_BINDIR:-}/pgbench"
PSQL="${PG_BINDIR:-}/psql"
[[ -x "$PGBENCH" ]] || die "pgbench not found (set PG_BINDIR; apt-get install postgresql)"

if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk"
    if [[ "$(id -u)" -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; }
    else
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
    fi
fi
command -v wrk >/dev/null 2>&1 || die "wrk is not installed and could not be installed"

say "building store-api (release), the bench setup and testpg"
"$CARGO" build -q --release -p store-api --bin store-api --example bench_setup --example router_bench_setup
"$CARGO" build -q -p usualstore-testpg --bin testpg
STORE_API="$TARGET_DIR/release/store-api"
SETUP="$TARGET_DIR/release/examples/bench_setup"
ROUTER_SETUP="$TARGET_DIR/release/examples/router_bench_setup"
TESTPG="$TARGET_DIR/debug/testpg"

work="$(mktemp -d)"
testpg_pid=""
api_pid=""
router_pid=""
sampler_pid=""
cleanup() {
    for pid in "$sampler_pid" "$api_pid" "$router_pid"; do
        if [[ -n "$pid" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [[ -n "$testpg_pid" ]]; then
        kill -TERM "$testpg_pid" 2>/dev/null || true
        wait "$testpg_pid" 2>/dev/null || true
    fi
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        say "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

say "starting a throwaway PostgreSQL cluster"
"$TESTPG" --ignore-stdin >"$work/pg.env" </dev/null &
testpg_pid=$!
for _ in $(seq 1 600); do
    grep -q '^export PGSSLMODE=' "$work/pg.env" 2>/dev/null && break
    kill -0 "$testpg_pid" 2>/dev/null || die "testpg exited early"
    sleep 0.1
done
grep -q '^export PGSSLMODE=' "$work/pg.env" || die "testpg printed no PG* settings"
# shellcheck disable=SC1091 # generated at run time
. "$work/pg.env"

say "provisioning a tenant and seeding $WIDGETS widgets, $CUSTOMERS customers, $HISTORY_ORDERS orders"
"$SETUP" "$work" "$WIDGETS" "$CUSTOMERS" "$HISTORY_ORDERS" >"$work/bench.env"
# shellcheck disable=SC1091 # generated at run time
. "$work/bench.env"

api_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000)))"
say "starting store-api on 127.0.0.1:$api_port (pool $CONNECTIONS)"
DATABASE_DSN="$BENCH_DSN" TENANT_NAME="$BENCH_TENANT" API_HOST=127.0.0.1 API_PORT="$api_port" \
    DB_POOL_SIZE="$CONNECTIONS" LOG_LEVEL="$LOG_LEVEL_API" "$STORE_API" 2>"$work/store-api.log" &
api_pid=$!
for _ in $(seq 1 200); do
    API_PORT="$api_port" "$STORE_API" healthcheck && break
    kill -0 "$api_pid" 2>/dev/null || { cat "$work/store-api.log" >&2; die "store-api exited"; }
    sleep 0.05
done
API_PORT="$api_port" "$STORE_API" healthcheck || die "store-api did not come up"
base="http://127.0.0.1:$api_port"

cat >"$work/reads.lua" <<LUA
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/widgets/" .. math.random(1, $WIDGETS))
end
LUA
cat >"$work/orders.lua" <<LUA
math.randomseed(os.time() + 1)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $BENCH_TOKEN"
request = function()
  local body = string.format('{"widget_id":%d,"quantity":1,"customer_id":%d,"payment":{"currency":"USD",'
    .. '"last_four":"4242","bank_return_code":"00","expiry_month":12,"expiry_year":2030,'
    .. '"payment_intent":"pi_bench","payment_method":"card"}}', math.random(1, $WIDGETS), math.random(1, $CUSTOMERS))
  return wrk.format(nil, nil, nil, body)
end
LUA

# wrk's latency figures are printed as 1.23ms / 456.00us / 1.20s: in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n = n * 60000; else if (v ~ /s$/) n = n * 1000
        printf "%.2f", n }'
}

# run_wrk NAME SCRIPT PATH → sets rps p50 p99 errors
run_wrk() {
    local name="$1" script="$2" path="$3" out="$work/wrk-$1.txt"
    wrk -t "$THREADS" -c "$CONNECTIONS" -d 2s -s "$script" "$base$path" >/dev/null
    say "wrk $name: $CONNECTIONS connections, ${SECONDS_PER_RUN}s"
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${SECONDS_PER_RUN}s" --latency -s "$script" "$base$path" >"$out"
    rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")"
    p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
    errors="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")"
    errors="${errors:-0}"
}

# run_pgbench NAME SCRIPT [DEFINES_FILE] → sets tps p50 p99 failures
run_pgbench() {
    local name="$1" script="$2" defines=() log_dir="$work/pgbench-$1"
    if [[ -n "${3:-}" ]]; then
        while IFS= read -r line; do defines+=(-D "$line"); done <"$3"
    fi
    mkdir -p "$log_dir"
    PGUSER="$BENCH_LOGIN" PGPASSWORD="$BENCH_LOGIN_PASSWORD" PGDATABASE="$BENCH_DATABASE" \
        "$PGBENCH" -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T 2 "${defines[@]}" -f "$script" >/dev/null 2>&1
    say "pgbench $name: $CONNECTIONS clients, ${SECONDS_PER_RUN}s"
    (cd "$log_dir" &&
        PGUSER="$BENCH_LOGIN" PGPASSWORD="$BENCH_LOGIN_PASSWORD" PGDATABASE="$BENCH_DATABASE" \
            "$PGBENCH" -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T "$SECONDS_PER_RUN" -l --log-prefix=tx \
            "${defines[@]}" -f "$script" >"$work/pgbench-$name.txt" 2>&1) ||
        { cat "$work/pgbench-$name.txt" >&2; die "pgbench $name failed"; }
    tps="$(awk '/^tps = / { printf "%.0f", $3 }' "$work/pgbench-$name.txt")"
    failures="$(awk '/number of failed transactions:/ { print $5 }' "$work/pgbench-$name.txt")"
    failures="${failures:-0}"
    # Per-transaction log lines: client, transaction, latency in µs, …
    cat "$log_dir"/tx.* | awk '{ print $3 }' | sort -n >"$log_dir/latencies"
    local count
    count="$(wc -l <"$log_dir/latencies")"
    p50="$(awk -v n="$count" 'NR == int(n * 0.50) + 1 { printf "%.2f", $1 / 1000; exit }' "$log_dir/latencies")"
    p99="$(awk -v n="$count" 'NR == int(n * 0.99) + 1 { printf "%.2f", $1 / 1000; exit }' "$log_dir/latencies")"
}

# Server connections store-api holds, sampled every half second into FILE until stopped.
start_sampler() {
    local file="$1"
    : >"$file"
    (while true; do
        "$PSQL" -XAtqc "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = 'store-api'" \
            >>"$file" 2>/dev/null || true
        sleep 0.5
    done) &
    sampler_pid=$!
}
stop_sampler() {
    kill -TERM "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    sort -n "$1" | tail -n 1
}
# Peak resident memory of a process, in MiB.
peak_rss() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

start_sampler "$work/connections-one.txt"
run_wrk reads "$work/reads.lua" /api/widgets/1
api_reads=("$rps" "$p50" "$p99" "$errors")
one_connections="$(stop_sampler "$work/connections-one.txt")"
one_rss="$(peak_rss "$api_pid")"
run_pgbench reads "$work/pgbench-reads.sql"
pg_reads=("$tps" "$p50" "$p99" "$failures")
run_wrk orders "$work/orders.lua" /api/orders
api_orders=("$rps" "$p50" "$p99" "$errors")
run_pgbench orders "$work/pgbench-orders.sql" "$work/pgbench-orders.defines"
pg_orders=("$tps" "$p50" "$p99" "$failures")
run_pgbench orders-one "$work/pgbench-orders-one.sql" "$work/pgbench-orders.defines"
pg_orders_one=("$tps" "$p50" "$p99" "$failures")

if ((ROUTER_TENANTS > 0)); then
    # The one-tenant instance is done: the router has the machine as it had.
    kill -TERM "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    api_pid=""
    say "provisioning $ROUTER_TENANTS tenants for the router run ($WIDGETS widgets each)"
    "$ROUTER_SETUP" "$work/router" "$ROUTER_TENANTS" "$WIDGETS" >"$work/router.env"
    # shellcheck disable=SC1091 # generated at run time
    . "$work/router.env"
    router_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    router_ops="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    say "starting store-api in router mode on 127.0.0.1:$router_port ($ROUTER_TENANTS tenants, DB_MAX_CONNECTIONS $ROUTER_DB_MAX)"
    TENANTS_FILE="$BENCH_ROUTER_FILE" API_HOST=127.0.0.1 API_PORT="$router_port" OPS_ADDR="127.0.0.1:$router_ops" \
        DB_POOL_SIZE="$CONNECTIONS" DB_MAX_CONNECTIONS="$ROUTER_DB_MAX" LOG_LEVEL="$LOG_LEVEL_API" \
        "$STORE_API" 2>"$work/store-api-router.log" &
    router_pid=$!
    for _ in $(seq 1 200); do
        OPS_ADDR="127.0.0.1:$router_ops" "$STORE_API" healthcheck && break
        kill -0 "$router_pid" 2>/dev/null || { cat "$work/store-api-router.log" >&2; die "store-api (router) exited"; }
        sleep 0.05
    done
    OPS_ADDR="127.0.0.1:$router_ops" "$STORE_API" healthcheck || die "store-api (router) did not come up"
    base="http://127.0.0.1:$router_port"
    start_sampler "$work/connections-router.txt"
    run_wrk router "$BENCH_ROUTER_LUA" /api/widgets/1
    router_reads=("$rps" "$p50" "$p99" "$errors")
    router_connections="$(stop_sampler "$work/connections-router.txt")"
    router_rss="$(peak_rss "$router_pid")"
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

printf '\nstore-api vs pgbench: %s connections, %ss per run, %s widgets, %s customers, %s orders before the runs, %s cores\n' \
    "$CONNECTIONS" "$SECONDS_PER_RUN" "$WIDGETS" "$CUSTOMERS" "$HISTORY_ORDERS" "$(nproc)"
printf '%-32s %10s %9s %9s %8s\n' "workload" "req/s" "p50 ms" "p99 ms" "errors"
printf '%-32s %10s %9s %9s %8s\n' "GET /api/widgets/{id}" "${api_reads[@]}"
printf '%-32s %10s %9s %9s %8s\n' "pgbench: same SELECT" "${pg_reads[@]}"
printf '%-32s %10s %9s %9s %8s\n' "POST /api/orders" "${api_orders[@]}"
printf '%-32s %10s %9s %9s %8s\n' "pgbench: same transaction" "${pg_orders[@]}"
printf '%-32s %10s %9s %9s %8s\n' "pgbench: API's one statement" "${pg_orders_one[@]}"
printf 'ratio API / pgbench: reads %s, orders %s (orders vs the one statement: %s)\n' \
    "$(ratio "${api_reads[0]}" "${pg_reads[0]}")" "$(ratio "${api_orders[0]}" "${pg_orders[0]}")" \
    "$(ratio "${api_orders[0]}" "${pg_orders_one[0]}")"

if ((ROUTER_TENANTS > 0)); then
    printf '\nrouter mode: %s tenants in one process, wrk spreading GET /api/widgets/{id} over every host, %s connections, %ss\n' \
        "$ROUTER_TENANTS" "$CONNECTIONS" "$SECONDS_PER_RUN"
    printf '%-32s %10s %9s %13s %13s %8s\n' "GET /api/widgets/{id}" "req/s" "p99 ms" "peak RSS MiB" "server conns" "errors"
    printf '%-32s %10s %9s %13s %13s %8s\n' "one tenant (DATABASE_DSN)" "${api_reads[0]}" "${api_reads[2]}" \
        "$one_rss" "$one_connections" "${api_reads[3]}"
    printf '%-32s %10s %9s %13s %13s %8s\n' "router, $ROUTER_TENANTS tenants" "${router_reads[0]}" "${router_reads[2]}" \
        "$router_rss" "$router_connections" "${router_reads[3]}"
    printf 'router / one tenant: throughput %s (DB_MAX_CONNECTIONS %s)\n' \
        "$(ratio "${router_reads[0]}" "${api_reads[0]}")" "$ROUTER_DB_MAX"
fi
