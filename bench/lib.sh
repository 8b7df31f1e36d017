# shellcheck shell=bash
# What bench/run.sh and bench/fleet.sh share: messages, PostgreSQL's binaries, a working directory
# removed at exit (kept on failure or with BENCH_KEEP=1), arithmetic, psql, the server's CPU time and
# the throwaway cluster. Sourced after the caller sets BENCH_NAME (its name in messages), ROOT and
# TARGET_DIR.

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf '%s: %s\n' "$BENCH_NAME" "$*" >&2
    exit 1
}

if [[ -z "${PG_BINDIR:-}" ]]; then
    PG_BINDIR="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$PG_BINDIR" ]] || PG_BINDIR="$(dirname "$(command -v psql)")"
fi
PSQL="$PG_BINDIR/psql"
# shellcheck disable=SC2034 # read by the scripts that source this
VERSION="$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml")"

# bench_workdir PREFIX: sets WORK and LOGS; at exit stops the cluster (SIGTERM makes testpg stop it and
# delete its files) and removes WORK.
testpg_pid=""
bench_workdir() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
    LOGS="$WORK/logs"
    mkdir -p "$LOGS"
    trap bench_cleanup EXIT
}
bench_cleanup() {
    local status=$?
    if [[ -n "$testpg_pid" ]]; then
        kill -TERM "$testpg_pid" 2>/dev/null || true
        wait "$testpg_pid" 2>/dev/null || true
    fi
    if [[ "${BENCH_KEEP:-}" == 1 || $status -ne 0 ]]; then
        echo "$BENCH_NAME: working directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

calc() { awk "BEGIN { printf \"$1\", $2 }"; }
pgq() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# CPU seconds used so far by the postmaster's exited children: every backend session of a measured command has
# ended when the figure is read, so the difference covers their work (not the long-lived checkpointer and WAL
# writer).
CLK_TCK="$(getconf CLK_TCK)"
POSTMASTER_PID=""
server_cpu() {
    local -a fields
    read -r -a fields <"/proc/$POSTMASTER_PID/stat"
    # 1-based fields 14-17: utime stime cutime cstime.
    calc '%.2f' "$((fields[13] + fields[14] + fields[15] + fields[16])) / $CLK_TCK"
}

# start_cluster: a throwaway cluster from testpg, its PG* settings exported, POSTMASTER_PID set and autovacuum
# off (with hundreds of databases the launcher starts a worker every fraction of a second; on a small machine
# that is noise in every figure, unrelated to the work measured).
start_cluster() {
    say "starting a throwaway PostgreSQL cluster"
    "$TESTPG" --ignore-stdin >"$WORK/pg.env" 2>"$LOGS/testpg.log" </dev/null &
    testpg_pid=$!
    for _ in $(seq 1 600); do
        grep -q '^export PGSSLMODE=' "$WORK/pg.env" 2>/dev/null && break
        kill -0 "$testpg_pid" 2>/dev/null || die "testpg exited early: $(cat "$LOGS/testpg.log")"
        sleep 0.1
    done
    grep -q '^export PGSSLMODE=' "$WORK/pg.env" || die "testpg printed no PG* settings"
    # shellcheck disable=SC1091 # generated at run time
    . "$WORK/pg.env"
    # The checkpointer lives as long as the server; its parent is the postmaster.
    local checkpointer_pid
    checkpointer_pid="$(pgq -c "select pid from pg_stat_activity where backend_type = 'checkpointer'")"
    POSTMASTER_PID="$(awk '{ print $4 }' "/proc/$checkpointer_pid/stat")"
    [[ -r "/proc/$POSTMASTER_PID/stat" ]] || die "cannot read the postmaster's CPU time"
    pgq -c 'alter system set autovacuum = off' -c 'select pg_reload_conf()' >/dev/null
}

# provider_mirror: an unpacked filesystem mirror in WORK holding a copy of PROVIDER_BIN (MIRROR_BIN: an inode of its
# own, so the provider processes started from it can be told from those of other Terraform runs), a private HOME and
# a CLI configuration ($WORK/terraformrc) that installs the provider from the mirror only; nothing of the user's
# ~/.terraform.d or ~/.terraformrc is read.
provider_mirror() {
    local platform="linux_amd64" mirror="$WORK/plugins" mirror_dir
    case "$(uname -m)" in
        aarch64 | arm64) platform="linux_arm64" ;;
    esac
    mirror_dir="$mirror/registry.terraform.io/usualstore/usualstore/$VERSION/$platform"
    mkdir -p "$mirror_dir" "$WORK/home"
    MIRROR_BIN="$mirror_dir/terraform-provider-usualstore_v$VERSION"
    cp "$PROVIDER_BIN" "$MIRROR_BIN"
    cat >"$WORK/terraformrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/usualstore/*"]
  }
  direct {
    exclude = ["registry.terraform.io/usualstore/*"]
  }
}
EOF
}
