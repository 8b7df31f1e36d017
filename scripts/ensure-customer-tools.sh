#!/usr/bin/env bash
# Makes sure the tools the customer-workflow tests (provider/tests/acceptance/customers.rs) use are
# installed: shellcheck (the scripts must be clean), tmux (add-customer.sh is driven through a
# pseudo-terminal) and jq (fleet.sh reads plans and results with it). Installs what is missing with
# apt-get. Idempotent; prints nothing when everything is in place.
set -euo pipefail

log() { printf 'ensure-customer-tools: %s\n' "$*" >&2; }

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo --non-interactive "$@"
    else
        log "need root to run: $*"
        return 1
    fi
}

packages=()
command -v shellcheck >/dev/null 2>&1 || packages+=(shellcheck)
command -v tmux >/dev/null 2>&1 || packages+=(tmux)
command -v jq >/dev/null 2>&1 || packages+=(jq)

if ((${#packages[@]} > 0)); then
    log "installing ${packages[*]} with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >&2
fi
