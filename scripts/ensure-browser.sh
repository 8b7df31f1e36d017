#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver (chromedriver) are installed: store-api's browser
# test (store-api/tests/integration/browser.rs) drives the storefront and the back office through
# them. Debian's packages `chromium` and `chromium-driver` are installed with apt-get when either
# binary is missing; they run headless as root with --headless --no-sandbox.
# Idempotent; prints nothing when everything is already in place.
set -euo pipefail

log() { printf 'ensure-browser: %s\n' "$*" >&2; }

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

packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)

if ((${#packages[@]} > 0)); then
    log "installing ${packages[*]} with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    # Without recommends: no desktop notification daemon, printing or GPU drivers for a headless
    # browser. Fonts come from whatever the machine has (DejaVu on a minimal Debian).
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >&2
    for binary in chromium chromedriver; do
        if ! command -v "$binary" >/dev/null 2>&1; then
            log "apt-get installed ${packages[*]} but there is still no $binary on PATH"
            exit 1
        fi
    done
    log "$(chromium --version 2>/dev/null || echo chromium), $(chromedriver --version 2>/dev/null | head -n1 || echo chromedriver)"
fi
