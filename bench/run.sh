#!/usr/bin/env bash
# `make bench`: figures, not pass/fail tests. Against one throwaway PostgreSQL cluster (testpg), measures
#
#   1. provider start-up: process start → handshake line → GetProviderSchema answered over mTLS (Terraform
#      starts the provider several times per command);
#   2. provisioning: `terraform apply` creating N tenants (default 20) with 3 users each, against one psql
#      session running the same SQL sequentially, and against psql cloning a template database that already
#      holds the schema; BENCH_ROUNDS rounds (default 3) of the three, medians reported; with CPU, server
#      transactions and sessions, the provider's peak RSS, and the timeline of a logged apply;
#   3. refresh: a no-op `terraform plan` over 200 tenants (600 users) against `plan -refresh=false`;
#   4. schema rollout: one new migration applied to the 200 tenants.
#
# Progress goes to stderr, the figures to stdout (and to the file $BENCH_RESULTS names, if set).
#
# Needs: PROVIDER_BIN (release build), STARTUP_BIN (the startup_time example), TESTPG (the testpg binary),
# Terraform (TERRAFORM, default `terraform`) and PostgreSQL's binaries (PG_BINDIR, default the newest
# /usr/lib/postgresql/*/bin). Knobs: BENCH_TENANTS (20), BENCH_REFRESH_TENANTS (200), BENCH_ROUNDS (3),
# BENCH_PARALLELISM (10), BENCH_STARTUP_RUNS (20), BENCH_KEEP=1 keeps the working directory and its logs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
TARGET_DIR="${TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}}"
PROVIDER_BIN="${PROVIDER_BIN:-$TARGET_DIR/release/terraform-provider-usualstore}"
STARTUP_BIN="${STARTUP_BIN:-$TARGET_DIR/release/examples/startup_time}"
TESTPG="${TESTPG:-$TARGET_DIR/debug/testpg}"
TERRAFORM="${TERRAFORM:-terraform}"
SMALL="${BENCH_TENANTS:-20}"
LARGE="${BENCH_REFRESH_TENANTS:-200}"
ROUNDS="${BENCH_ROUNDS:-3}"
PARALLELISM="${BENCH_PARALLELISM:-10}"
STARTUP_RUNS="${BENCH_STARTUP_RUNS:-20}"
USERS_PER_TENANT=3

BENCH_NAME=bench
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$BENCH/lib.sh"
PGBENCH="$PG_BINDIR/pgbench"

for file in "$PROVIDER_BIN" "$STARTUP_BIN" "$TESTPG" "$PSQL" "$PGBENCH"; do
    [[ -x "$file" ]] || die "missing $file (make bench builds the provider, the startup_time example and testpg)"
done
command -v "$TERRAFORM" >/dev/null || die "no terraform binary ($TERRAFORM)"
((LARGE >= SMALL && SMALL > 0 && ROUNDS > 0)) || die "need BENCH_REFRESH_TENANTS >= BENCH_TENANTS > 0, BENCH_ROUNDS > 0"

# Only what the benchmark sets reaches Terraform and psql: no TF_LOG, TF_CLI_ARGS or PG* from the caller.
while read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(TF_|PG)' || true)

bench_workdir usualstore-bench

# ---------------------------------------------------------------------------------------------------------------
# arithmetic and statistics (awk: bash has no floating point)

f2() { calc '%.2f' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
per() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }
mib() { calc '%.1f' "$1 / 1024"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.2f", s / NR }'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n 1; }
minimum() { printf '%s\n' "$@" | sort -g | head -n 1; }
list() { printf '%s\n' "$@" | awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $1 }'; }

# Measurements by series: STATS[series.metric] holds one value per run, space-separated.
declare -A STATS=()
record() {
    local series=$1 metric
    shift
    for metric in "$@"; do
        STATS[$series.$metric]+="${!metric} "
    done
}
values() {
    local name="$1.$2"
    # shellcheck disable=SC2086 # one word per run
    printf '%s\n' ${STATS[$name]:-}
}
# agg FUNCTION SERIES METRIC: e.g. agg median apply WALL.
agg() {
    local how=$1 series=$2 metric=$3
    local -a v
    mapfile -t v < <(values "$series" "$metric")
    "$how" "${v[@]}"
}

# ---------------------------------------------------------------------------------------------------------------
# running and measuring commands

# Server transactions (commits) and sessions so far. Backends report their counters when they exit; the pause
# lets the last sessions of the measured command do so.
counters() {
    sleep 0.5
    pgq -c "select sum(xact_commit + xact_rollback), sum(sessions) from pg_stat_database" | tr '|' ' '
}

# timed NAME CMD...: runs CMD with its output in $LOGS/NAME.log. Sets WALL and CPU (seconds; CPU of CMD and every
# process it waited for, so Terraform's includes its provider processes). A failure ends the benchmark.
timed() {
    local name=$1 status=0 user sys
    shift
    local TIMEFORMAT='%3R %3U %3S'
    { time "$@" >"$LOGS/$name.log" 2>&1; } 2>"$LOGS/$name.time" || status=$?
    if ((status != 0)); then
        echo "bench: '$*' failed with status $status; end of $LOGS/$name.log:" >&2
        tail -n 40 "$LOGS/$name.log" >&2
        exit 1
    fi
    read -r WALL user sys <"$LOGS/$name.time"
    CPU="$(calc '%.2f' "$user + $sys")"
}

# measured NAME CMD...: timed, plus SERVER_CPU, XACTS and SESSIONS of the server meanwhile. Starts from a
# checkpoint: every CREATE DATABASE writes the whole template to the WAL, and a checkpoint falling into one run
# and not another would decide the comparison.
measured() {
    local before_cpu before_xacts before_sessions after_xacts after_sessions
    pgq -c 'checkpoint'
    read -r before_xacts before_sessions < <(counters)
    before_cpu="$(server_cpu)"
    timed "$@"
    read -r after_xacts after_sessions < <(counters)
    SERVER_CPU="$(calc '%.2f' "$(server_cpu) - $before_cpu")"
    # Minus the first counters query's own session and transaction.
    XACTS=$((after_xacts - before_xacts - 1))
    SESSIONS=$((after_sessions - before_sessions - 1))
}

# Samples the provider processes started from our mirror copy (its own inode: other Terraform runs on the machine
# use other binaries) every 50 ms until $2 exists; writes "peak-VmHWM-kB processes-seen cpu-ticks" to $1.
# VmHWM only grows, so the last sample of each process is its peak up to then.
MIRROR_BIN=""
rss_poller() {
    local out=$1 stop=$2 f pid comm key value hwm
    local -a stat
    local -A peak=() cpu=()
    while [[ ! -e "$stop" ]]; do
        for f in /proc/[0-9]*/comm; do
            read -r comm 2>/dev/null <"$f" || continue
            [[ "$comm" == terraform-provi* ]] || continue
            pid="${f#/proc/}"
            pid="${pid%/comm}"
            [[ "/proc/$pid/exe" -ef "$MIRROR_BIN" ]] || continue
            hwm=""
            while read -r key value _; do
                if [[ "$key" == VmHWM: ]]; then
                    hwm=$value
                    break
                fi
            done 2>/dev/null <"/proc/$pid/status" || true
            [[ -n "$hwm" ]] && peak[$pid]=$hwm
            if read -r -a stat 2>/dev/null <"/proc/$pid/stat"; then
                cpu[$pid]=$((stat[13] + stat[14]))
            fi
        done
        sleep 0.05
    done
    local max=0 ticks=0
    for pid in "${!peak[@]}"; do
        ((peak[$pid] > max)) && max=${peak[$pid]}
    done
    for pid in "${!cpu[@]}"; do
        ticks=$((ticks + cpu[$pid]))
    done
    echo "$max ${#peak[@]} $ticks" >"$out"
}

# measured_tf NAME CMD...: measured, plus RSS_KB (peak over provider processes), PROVIDERS_SEEN, PROVIDER_CPU.
measured_tf() {
    local name=$1 stop="$LOGS/$1.rss-stop" poller ticks
    rm -f "$stop"
    rss_poller "$LOGS/$name.rss" "$stop" &
    poller=$!
    measured "$@"
    touch "$stop"
    wait "$poller"
    # shellcheck disable=SC2034 # PROVIDERS_SEEN and PROVIDER_CPU are read by record, through indirection
    read -r RSS_KB PROVIDERS_SEEN ticks <"$LOGS/$name.rss"
    # shellcheck disable=SC2034
    PROVIDER_CPU="$(calc '%.2f' "$ticks / $CLK_TCK")"
}

# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL

start_cluster
MAINTENANCE_DB="${PGDATABASE:-postgres}"
server_version="$(pgq -c 'show server_version')"
machine_cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
machine_mem="$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

# What one session costs the server and libpq (connect, SCRAM, one query, disconnect), as a yardstick.
say "cost of one session (pgbench -C)"
printf 'select 1;\n' >"$WORK/select1.sql"
SESSIONS_PROBE=300
measured pgbench "$PGBENCH" -n -C -c 1 -j 1 -t "$SESSIONS_PROBE" -f "$WORK/select1.sql" "$MAINTENANCE_DB"
SESSION_MS="$(calc '%.1f' "$WALL * 1000 / $SESSIONS_PROBE")"
SESSION_SERVER_MS="$(calc '%.1f' "$SERVER_CPU * 1000 / $SESSIONS_PROBE")"

# ---------------------------------------------------------------------------------------------------------------
# Terraform working directories, in the benchmark's provider mirror

provider_mirror

# tf DIR ARGS...: Terraform in DIR with the benchmark's environment (and the cluster's PG*), plus TF_ENV.
TF_ENV=()
tf() {
    local dir=$1
    shift
    (cd "$dir" && env HOME="$WORK/home" TF_CLI_CONFIG_FILE="$WORK/terraformrc" TF_IN_AUTOMATION=1 TF_INPUT=0 \
        CHECKPOINT_DISABLE=1 "${TF_ENV[@]}" "$TERRAFORM" "$@")
}
# Every working directory sits beside a copy of modules/, as examples/tenants sits beside the repository's.
mkdir -p "$WORK/modules"
cp -R "$ROOT/modules/tenant" "$WORK/modules/tenant"
tf_dir() {
    mkdir -p "$WORK/$1"
    cp "$BENCH/terraform/main.tf" "$WORK/$1/main.tf"
    timed "init-$1" tf "$WORK/$1" init -input=false -no-color
}
TF="$WORK/tf"
tf_version="$(tf "$WORK" version | sed -n '1s/^Terraform v//p')"

# ---------------------------------------------------------------------------------------------------------------
# 1. start-up

say "provider start-up ($STARTUP_RUNS runs)"
"$STARTUP_BIN" --provider "$MIRROR_BIN" --runs "$STARTUP_RUNS" >"$LOGS/startup.log" 2>&1 ||
    die "startup_time failed: $(tail -n 5 "$LOGS/startup.log")"
startup_line="$(grep '^startup ' "$LOGS/startup.log")"
startup() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$startup_line"; }

# ---------------------------------------------------------------------------------------------------------------
# 2. provisioning

# The first CREATE DATABASE after start-up pays for reading template0 from disk.
pgq -c 'create database usualstore_bench_warmup template template0' -c 'drop database usualstore_bench_warmup'

# With \timing psql prints each statement's time; phases sums them per `\echo @phase` marker of gen-psql.sh.
psql_run() {
    local name=$1 sql=$2
    { printf '%s\n' '\timing on'; cat "$sql"; } >"$WORK/$name.sql"
    measured "$name" "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$MAINTENANCE_DB" -f "$WORK/$name.sql"
}
phases() {
    awk '/^@phase / { phase = $2 } /^Time: / { t[phase] += $2 }
         END { for (p in t) printf "%s %.3f\n", p, t[p] / 1000 }' "$LOGS/$1.log"
}

say "preparing the template database for the clone variant"
"$BENCH/gen-psql.sh" template usualstore_bench_template "$MAINTENANCE_DB" >"$WORK/prepare.gen.sql"
psql_run psql-prepare "$WORK/prepare.gen.sql"
PREP_WALL=$WALL

plan_wall=""
for ((round = 1; round <= ROUNDS; round++)); do
    # Round 1's Terraform directory (prefix bt) is the one grown to LARGE tenants later.
    if ((round == 1)); then tf_prefix=bt tf_name=tf; else tf_prefix="t$round" tf_name="tf-$round"; fi

    say "round $round/$ROUNDS: psql, $SMALL tenants from template0, sequentially"
    "$BENCH/gen-psql.sh" tenants "p$round" "$SMALL" "$MAINTENANCE_DB" >"$WORK/p$round.gen.sql"
    psql_run "psql-template0-$round" "$WORK/p$round.gen.sql"
    record psql WALL CPU SERVER_CPU XACTS SESSIONS
    while read -r phase seconds; do STATS[psql-phase.$phase]+="$seconds "; done < <(phases "psql-template0-$round")

    tf_dir "$tf_name"
    if ((round == 1)); then
        say "round $round/$ROUNDS: terraform plan alone ($SMALL tenants, empty state)"
        timed plan-small tf "$TF" plan -input=false -no-color -parallelism="$PARALLELISM" -var tenants="$SMALL"
        plan_wall=$WALL
    fi
    say "round $round/$ROUNDS: terraform apply, $SMALL tenants × $USERS_PER_TENANT users"
    measured_tf "apply-$round" tf "$WORK/$tf_name" apply -input=false -no-color -auto-approve \
        -parallelism="$PARALLELISM" -var tenants="$SMALL" -var prefix="$tf_prefix"
    record apply WALL CPU SERVER_CPU XACTS SESSIONS RSS_KB PROVIDERS_SEEN PROVIDER_CPU

    say "round $round/$ROUNDS: psql, $SMALL tenants cloned from the template"
    "$BENCH/gen-psql.sh" tenants "c$round" "$SMALL" "$MAINTENANCE_DB" usualstore_bench_template >"$WORK/c$round.gen.sql"
    psql_run "psql-clone-$round" "$WORK/c$round.gen.sql"
    record clone WALL CPU SERVER_CPU XACTS SESSIONS
    while read -r phase seconds; do STATS[clone-phase.$phase]+="$seconds "; done < <(phases "psql-clone-$round")
done

say "terraform apply with provider logs, for the timeline ($SMALL tenants, prefix bl)"
tf_dir tf-logged
logged_log="$LOGS/apply-logged.tflog"
TF_ENV=(TF_LOG_PROVIDER=DEBUG TF_LOG_PATH="$logged_log")
timed apply-logged tf "$WORK/tf-logged" apply -input=false -no-color -auto-approve -parallelism="$PARALLELISM" \
    -var tenants="$SMALL" -var prefix=bl
TF_ENV=()
logged_wall=$WALL
# Seconds from the log's first line to each event (timestamps are UTC with milliseconds). The message texts are
# the provider's own log lines (crates/tenancy) and go-plugin's.
timeline_line="$(awk '
    function t(ts) { split(substr(ts, 12, 12), p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
    NR == 1 { start = t($1) }
    / provider: plugin started/ { starts++; last_start = t($1) }
    /: creating database:/ { if (!first_db) first_db = t($1) }
    /: tenant ready:/ { last_ready = t($1) }
    /: creating login user:/ { if (!first_user) first_user = t($1) }
    / provider: plugin exited/ { end = t($1) }
    END {
        printf "starts=%d apply_started=%.2f first_db=%.2f last_ready=%.2f first_user=%.2f end=%.2f\n",
            starts, last_start - start, first_db - start, last_ready - start, first_user - start, end - start
    }' "$logged_log")"
tl() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$timeline_line"; }

# The provider serializes CREATE DATABASE server-wide; how much would running them side by side give?
say "CREATE DATABASE ×$SMALL from template0: one session, then two sessions side by side"
createdbs() { for ((i = $2; i <= $3; i++)); do printf 'CREATE DATABASE "cd_%s_%03d" TEMPLATE template0;\n' "$1" "$i"; done; }
createdbs s 1 "$SMALL" >"$WORK/createdb-serial.sql"
createdbs a 1 $((SMALL / 2)) >"$WORK/createdb-a.sql"
createdbs b $((SMALL / 2 + 1)) "$SMALL" >"$WORK/createdb-b.sql"
pgq -c 'checkpoint'
timed createdb-serial "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$MAINTENANCE_DB" -f "$WORK/createdb-serial.sql"
createdb_serial=$WALL
side_by_side() {
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$MAINTENANCE_DB" -f "$WORK/createdb-a.sql" &
    local first=$!
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$MAINTENANCE_DB" -f "$WORK/createdb-b.sql"
    wait "$first"
}
pgq -c 'checkpoint'
timed createdb-parallel side_by_side
createdb_parallel=$WALL

say "checking that the psql runs built what Terraform built"
for db in bt_001 p1_001 c1_001; do
    pgq -d "$db" -f "$BENCH/fingerprint.sql" >"$WORK/fingerprint-$db.txt"
done
same_catalog="identical"
for db in p1_001 c1_001; do
    if ! diff -u "$WORK/fingerprint-bt_001.txt" "$WORK/fingerprint-$db.txt" >"$LOGS/fingerprint-$db.diff"; then
        same_catalog="DIFFERENT (see $LOGS/fingerprint-$db.diff)"
        BENCH_KEEP=1
    fi
done

# ---------------------------------------------------------------------------------------------------------------
# 3. refresh over LARGE tenants

GROWN=$((LARGE - SMALL))
RESOURCES=$((LARGE * (1 + USERS_PER_TENANT)))
USERS_LARGE=$((LARGE * USERS_PER_TENANT))
say "terraform apply: growing to $LARGE tenants ($GROWN more, $((GROWN * USERS_PER_TENANT)) users)"
measured_tf apply-grow tf "$TF" apply -input=false -no-color -auto-approve -parallelism="$PARALLELISM" \
    -var tenants="$LARGE"
grow_wall=$WALL grow_rss=$RSS_KB

# Alternating, twice each: the machine may be shared, the lower of each pair is the figure.
for round in 1 2; do
    say "terraform plan over $LARGE tenants, refreshing (round $round)"
    measured_tf "plan-refresh-$round" tf "$TF" plan -input=false -no-color -detailed-exitcode \
        -parallelism="$PARALLELISM" -var tenants="$LARGE"
    record refresh WALL CPU SERVER_CPU XACTS SESSIONS RSS_KB PROVIDER_CPU
    say "terraform plan over $LARGE tenants, -refresh=false (round $round)"
    measured_tf "plan-norefresh-$round" tf "$TF" plan -input=false -no-color -detailed-exitcode -refresh=false \
        -parallelism="$PARALLELISM" -var tenants="$LARGE"
    record norefresh WALL CPU SERVER_CPU XACTS SESSIONS PROVIDER_CPU
done
refresh_wall="$(agg minimum refresh WALL)"
norefresh_wall="$(agg minimum norefresh WALL)"

# Refreshing the tenants only (-target) splits the reads' cost between tenants and users.
say "terraform plan refreshing the $LARGE tenants only (-target)"
tenant_targets=()
for ((i = 1; i <= LARGE; i++)); do
    tenant_targets+=("-target=module.tenant[\"$(printf 'bt_%03d' "$i")\"].usualstore_tenant.this")
done
measured plan-refresh-tenants tf "$TF" plan -input=false -no-color -detailed-exitcode -parallelism="$PARALLELISM" \
    -var tenants="$LARGE" "${tenant_targets[@]}"
norefresh_xacts="$(agg mean norefresh XACTS)"
norefresh_sessions="$(agg mean norefresh SESSIONS)"
refresh_xacts="$(agg mean refresh XACTS)"
refresh_sessions="$(agg mean refresh SESSIONS)"
tenant_read_xacts="$(per "$(calc '%.1f' "$XACTS - $norefresh_xacts")" "$LARGE")"
tenant_read_sessions="$(per "$(calc '%.1f' "$SESSIONS - $norefresh_sessions")" "$LARGE")"
user_read_xacts="$(per "$(calc '%.1f' "$refresh_xacts - $XACTS")" "$USERS_LARGE")"
user_read_sessions="$(per "$(calc '%.1f' "$refresh_sessions - $SESSIONS")" "$USERS_LARGE")"
# Server CPU per read: what a session alone costs (SESSION_SERVER_MS) is most of a tenant's; the rest is its catalog.
tenant_read_server_ms="$(calc '%.1f' "$SERVER_CPU * 1000 / $LARGE")"
user_read_server_ms="$(calc '%.2f' "($(agg mean refresh SERVER_CPU) - $SERVER_CPU) * 1000 / $USERS_LARGE")"

# ---------------------------------------------------------------------------------------------------------------
# 4. schema rollout

embedded="$(find "$ROOT/crates/schema/migrations" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]_*.sql' | wc -l)"
next_version=$((embedded + 1))
mkdir -p "$WORK/extra-migrations"
cp "$BENCH/rollout-migration.sql" "$WORK/extra-migrations/$(printf '%04d' "$next_version")_bench_rollout.sql"
say "schema rollout: migration $next_version to $LARGE tenants"
TF_ENV=(USUALSTORE_TEST_EXTRA_MIGRATIONS="$WORK/extra-migrations")
measured_tf rollout tf "$TF" apply -input=false -no-color -auto-approve -parallelism="$PARALLELISM" \
    -var tenants="$LARGE"
rollout_wall=$WALL rollout_cpu=$CPU rollout_server_cpu=$SERVER_CPU rollout_rss=$RSS_KB rollout_sessions=$SESSIONS
say "plan after the rollout (expect no changes)"
timed plan-after-rollout tf "$TF" plan -input=false -no-color -detailed-exitcode -parallelism="$PARALLELISM" \
    -var tenants="$LARGE"
TF_ENV=()
# `show -json` prints one line; only tenants have schema_version.
rolled_out="$(tf "$TF" show -json | grep -o "\"schema_version\":${next_version}[,}]" | wc -l)"
[[ "$rolled_out" == "$LARGE" ]] || die "only $rolled_out of $LARGE tenants reached schema version $next_version"
changed="$(grep -o '[0-9]* changed' "$LOGS/rollout.log" | tail -n 1 || true)"

# Terraform alone: the local backend writes the whole state file after every resource it changes, so an apply
# that changes one resource per tenant costs Terraform time in proportion to the state's size. The same number of
# built-in terraform_data resources, changed at once in this state without refreshing, is that floor.
floor_report="  Terraform alone: not measured (terraform_data needs Terraform 1.4 or later)"
if [[ "$(printf '%s\n' 1.4.0 "$tf_version" | sort -V | head -n 1)" == 1.4.0 ]]; then
    say "Terraform's floor: $LARGE terraform_data resources changed in the same state"
    cp "$BENCH/terraform/floor.tf" "$TF/floor.tf"
    tf "$TF" apply -input=false -no-color -auto-approve -refresh=false -parallelism="$PARALLELISM" \
        -var tenants="$LARGE" -var floor_marker=1 >"$LOGS/floor-create.log" 2>&1 || die "creating the floor's resources failed: see $LOGS/floor-create.log"
    measured floor tf "$TF" apply -input=false -no-color -auto-approve -refresh=false -parallelism="$PARALLELISM" \
        -var tenants="$LARGE" -var floor_marker=2
    floor_wall=$WALL floor_cpu=$CPU
    floor_changed="$(grep -o '[0-9]* changed' "$LOGS/floor.log" | tail -n 1 || true)"
    floor_report="  Terraform alone, $LARGE terraform_data changed in the same state (-refresh=false, ${floor_changed:-? changed}): $(f2 "$floor_wall") s ($(calc '%.0f' "$floor_wall * 1000 / $LARGE") ms
    per resource), Terraform CPU $floor_cpu s: the local backend rewrites the whole state after each change; the rollout
    less its refreshing plan ($(f2 "$refresh_wall") s) is $(calc '%.0f' "($rollout_wall - $refresh_wall) * 1000 / $LARGE") ms per tenant"
fi

load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------------------------
# figures

row() {
    printf '  %-30s %7s s %9s s %9s s %10s %9s\n' "$1" "$(agg median "$2" WALL)" "$(agg mean "$2" CPU)" \
        "$(agg mean "$2" SERVER_CPU)" "$(agg mean "$2" XACTS | cut -d. -f1)" "$(agg mean "$2" SESSIONS | cut -d. -f1)"
}
phase_list() {
    local series=$1 phase out=""
    for phase in create_database schema privileges roles comments users; do
        [[ -n "${STATS[$series.$phase]:-}" ]] && out+="$phase $(agg median "$series" "$phase"), "
    done
    printf '%s' "${out%, }"
}

report() {
    local apply psql clone
    apply="$(agg median apply WALL)" psql="$(agg median psql WALL)" clone="$(agg median clone WALL)"
    cat <<EOF
usualstore benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')
machine: $(nproc) CPUs ($machine_cpu), $machine_mem RAM, $(uname -sr); load average before $load_before, after $load_after
PostgreSQL $server_version on loopback TCP (throwaway testpg cluster: fsync off, synchronous_commit off,
  scram-sha-256, autovacuum off); Terraform $tf_version; provider $VERSION (release build); -parallelism=$PARALLELISM
one session (connect + SCRAM + select 1 + disconnect, pgbench -C): $SESSION_MS ms, of which server CPU $SESSION_SERVER_MS ms

Provider start-up: process start → GetProviderSchema answered over mTLS ($STARTUP_RUNS runs)
  median $(startup schema_ms_median) ms (p90 $(startup schema_ms_p90), min $(startup schema_ms_min), max $(startup schema_ms_max)); of which until the handshake line: median $(startup handshake_ms_median) ms

Provisioning: $SMALL tenants × $USERS_PER_TENANT users, $ROUNDS round(s) (wall: median; the rest: mean)
                                       wall    client CPU    server CPU  server xacts  sessions
$(row "terraform apply" apply)
$(row "psql, template0 + migration" psql)
$(row "psql, clone of a template" clone)
  ratio apply ÷ psql: $(ratio "$apply" "$psql")  (target ≤ 1.0);  apply ÷ psql cloning a template: $(ratio "$apply" "$clone")
  CPU (client + server) apply ÷ psql: $(ratio "$(calc '%.2f' "$(agg mean apply CPU) + $(agg mean apply SERVER_CPU)")" "$(calc '%.2f' "$(agg mean psql CPU) + $(agg mean psql SERVER_CPU)")")  (less sensitive than wall time to other load on the machine)
  walls: apply $(agg list apply WALL); psql $(agg list psql WALL); clone $(agg list clone WALL)
  psql statement time per phase, s (median): $(phase_list psql-phase)
  psql cloning, per phase, s (median):       $(phase_list clone-phase)   (template prepared once in $(f2 "$PREP_WALL") s)
  apply's own plan phase (terraform plan alone, empty state): $(f2 "$plan_wall") s
  a logged apply ($(f2 "$logged_wall") s, $(tl starts) provider processes): apply's provider started at $(tl apply_started) s, first CREATE DATABASE
    $(tl first_db) s, last tenant ready $(tl last_ready) s, first user $(tl first_user) s, last provider exited $(tl end) s:
    plan phase and provider starts $(tl apply_started) s, tenants $(calc '%.2f' "$(tl last_ready) - $(tl first_db)") s, users $(calc '%.2f' "$(tl end) - $(tl first_user)") s (one modules/tenant
    instance per tenant: a tenant's users start once that tenant is ready, while others are still being made)
  CREATE DATABASE ×$SMALL from template0 (the provider runs them one at a time server-wide): one session
    $(f2 "$createdb_serial") s, two sessions side by side $(f2 "$createdb_parallel") s
  provider: peak RSS $(mib "$(agg maximum apply RSS_KB)") MiB (max over $ROUNDS apply run(s), $(agg maximum apply PROVIDERS_SEEN) provider processes seen per apply), CPU ≈ $(agg mean apply PROVIDER_CPU) s per apply
  client CPU: the command and the processes it waited for (terraform + provider, or psql); server CPU: backends;
  server xacts: commits counted by PostgreSQL (tokio-postgres prepares and executes a statement in 2, an explicit
  BEGIN … COMMIT block is 1).
  The psql script does per tenant what the provider does: 4 group roles with comments, CREATE DATABASE … OWNER …
  TEMPLATE template0 CONNECTION LIMIT, comment provisioning then ready, schema public to the owner role, as the
  owner (SET ROLE) every migration + its record, PUBLIC's CONNECT/TEMP/USAGE/EXECUTE and large-object functions
  revoked, CONNECT/USAGE and table/sequence grants per group and table class, ALTER DEFAULT PRIVILEGES; 3 login users
  (CREATE ROLE … LOGIN PASSWORD, comments, GRANT of the group); without the provider's advisory locks and catalog
  reads. Catalog of a Terraform tenant vs the
  psql ones (owners, ACLs, default privileges, roles, memberships, comments, migrations): $same_catalog.

Refresh: no-op plan over $LARGE tenants + $USERS_LARGE users ($RESOURCES resources), lower of 2 runs each
  terraform plan                 $(f2 "$refresh_wall") s   (runs $(agg list refresh WALL) s)
  terraform plan -refresh=false  $(f2 "$norefresh_wall") s   (runs $(agg list norefresh WALL) s)
  ratio: $(ratio "$refresh_wall" "$norefresh_wall");  refreshing costs $(calc '%.1f' "($refresh_wall - $norefresh_wall) * 1000 / $RESOURCES") ms of wall time per resource
  per tenant read: $tenant_read_sessions sessions, $tenant_read_xacts server xacts, $tenant_read_server_ms ms of server CPU (a session alone: $SESSION_SERVER_MS ms);
    per user read: $user_read_sessions sessions, $user_read_xacts server xacts, $user_read_server_ms ms of server CPU
  refreshing plan: server CPU $(agg mean refresh SERVER_CPU) s, terraform + provider CPU $(agg mean refresh CPU) s of which provider ≈ $(agg mean refresh PROVIDER_CPU) s
  plan -refresh=false: terraform + provider CPU $(agg mean norefresh CPU) s; provider peak RSS $(mib "$(agg maximum refresh RSS_KB)") MiB
  (growing from $SMALL to $LARGE tenants took $(f2 "$grow_wall") s, provider peak RSS $(mib "$grow_rss") MiB)

Schema rollout: migration $next_version to $LARGE tenants (terraform apply, its refresh included)
  $(f2 "$rollout_wall") s ($(calc '%.0f' "$rollout_wall * 1000 / $LARGE") ms per tenant), ${changed:-? changed}; server CPU $rollout_server_cpu s, terraform + provider CPU $rollout_cpu s,
  $rollout_sessions sessions, provider peak RSS $(mib "$rollout_rss") MiB; all $LARGE tenants at schema version $next_version, next plan empty
$floor_report
EOF
}

# Every run's figures, for a closer look (BENCH_KEEP=1 keeps them).
for key in "${!STATS[@]}"; do printf '%s %s\n' "$key" "${STATS[$key]}"; done | sort >"$LOGS/stats.txt"

if [[ -n "${BENCH_RESULTS:-}" ]]; then
    report | tee "$BENCH_RESULTS"
else
    report
fi
