#!/usr/bin/env bash
# Makes sure the tools the customer-workflow tests (provider/tests/acceptance/customers.rs) use are
# installed: shellcheck (the scripts must be clean), tmux (add-customer.sh is driven through a
# pseudo-terminal) and a python3 with PyYAML (the compose files are parsed by a real YAML parser).
# Installs what is missing with apt-get. Idempotent; prints nothing when everything is in place.
#
# stdout: USUALSTORE_PYTHON_YAML=<a python3 that can import yaml>, for `eval`.
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

# The first python3 that imports yaml: the one on PATH, else Debian's (which python3-yaml serves).
python_with_yaml() {
    local candidate
    for candidate in "$(command -v python3 2>/dev/null || true)" /usr/bin/python3; do
        [[ -n "$candidate" && -x "$candidate" ]] || continue
        if "$candidate" -c 'import yaml' >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

packages=()
command -v shellcheck >/dev/null 2>&1 || packages+=(shellcheck)
command -v tmux >/dev/null 2>&1 || packages+=(tmux)
python_with_yaml >/dev/null || packages+=(python3 python3-yaml)

if ((${#packages[@]} > 0)); then
    log "installing ${packages[*]} with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >&2
fi

python="$(python_with_yaml)" || {
    log "no python3 can import yaml even after installing python3-yaml"
    exit 1
}
printf 'USUALSTORE_PYTHON_YAML=%s\n' "$python"
