#!/usr/bin/env bash
# Makes sure the tools `make release` and the release tests (provider/tests/acceptance/release.rs) use
# are installed: zip (the registry's archive format), unzip (the tests read the archives back) and gpg
# (signing the checksums, and the test that checks a signature). Installs what is missing with apt-get.
# Idempotent; prints nothing when everything is in place.
set -euo pipefail

log() { printf 'ensure-release-tools: %s\n' "$*" >&2; }

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
command -v zip >/dev/null 2>&1 || packages+=(zip)
command -v unzip >/dev/null 2>&1 || packages+=(unzip)
# gpg alone cannot hold a secret key: signing needs gpg-agent, which comes with gnupg.
{ command -v gpg && command -v gpg-agent; } >/dev/null 2>&1 || packages+=(gnupg)

if ((${#packages[@]} > 0)); then
    log "installing ${packages[*]} with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >&2
fi
