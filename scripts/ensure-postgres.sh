#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (initdb, postgres, pg_ctl) are installed and that the
# `postgres` OS user exists: the test harness starts throwaway clusters itself and, when it runs
# as root, runs the server as that user (PostgreSQL refuses to run as root).
# Idempotent; prints nothing when everything is already in place.
set -euo pipefail

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }

server_bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        # pg_config ships with libpq-dev too, so its bindir may exist without a server in it.
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/postgres" ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    fi
    # Newest major version first.
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -rn); do
        if [[ -x "$dir/initdb" && -x "$dir/postgres" ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    return 1
}

# Runs a command as root: directly when we are root, through sudo when it is there.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo --non-interactive "$@"
    else
        log "need root to run: $*"
        log "run this script as root or install sudo"
        return 1
    fi
}

if ! server_bindir >/dev/null; then
    log "no PostgreSQL server binaries found; installing the 'postgresql' package with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql >&2
    if ! bindir="$(server_bindir)"; then
        log "apt-get installed postgresql but no initdb was found under pg_config --bindir or /usr/lib/postgresql/*/bin"
        exit 1
    fi
    log "PostgreSQL server binaries in $bindir"
fi

if ! id -u postgres >/dev/null 2>&1; then
    log "creating the 'postgres' system user"
    as_root useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
