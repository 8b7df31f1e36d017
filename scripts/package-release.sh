#!/usr/bin/env bash
# Packages provider binaries as a Terraform registry release (the layout the registry's publishing
# docs ask for, and that `terraform providers mirror` and filesystem mirrors read):
#
#   terraform-provider-usualstore_<version>_<os>_<arch>.zip   one per target, holding only
#                                                             terraform-provider-usualstore_v<version>
#   terraform-provider-usualstore_<version>_manifest.json     plugin protocol 6
#   terraform-provider-usualstore_<version>_SHA256SUMS        every zip and the manifest
#   terraform-provider-usualstore_<version>_SHA256SUMS.sig    binary detached signature, when GPG_KEY_ID is set
#
# usage: package-release.sh OUT_DIR VERSION OS_ARCH=BINARY [OS_ARCH=BINARY ...]
#   e.g. package-release.sh dist 0.1.0 linux_amd64=target/release/terraform-provider-usualstore
#
# `make release` calls it with the release build; the acceptance tests (provider/tests/acceptance/release.rs)
# call it with the binary they test, so this packaging is what they check.
#
# Environment: GPG_KEY_ID (a key gpg can sign with, e.g. its fingerprint; GNUPGHOME is honoured),
# SOURCE_DATE_EPOCH (time stamp stored in the zips; default: the last commit's). With the same binaries
# the zips come out byte for byte the same: a lock file's zh: hash pins a zip, so a re-run must not change it.
set -euo pipefail

NAME=terraform-provider-usualstore
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { printf 'package-release: %s\n' "$*" >&2; exit 1; }

(($# >= 3)) || die "usage: package-release.sh OUT_DIR VERSION OS_ARCH=BINARY [OS_ARCH=BINARY ...]"
out_dir="$1"
version="$2"
shift 2

# Terraform reads the version from the file names: it must be a semantic version.
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "version '$version' is not a semantic version"
for tool in zip sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed (scripts/ensure-release-tools.sh installs it)"
done

epoch="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || true)}"
# Zip stores local time from 1980 on; UTC keeps the stamp independent of the machine's zone.
epoch="${epoch:-315532800}"
export TZ=UTC

mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
# Artefacts of an earlier run of this version (another set of targets, an old signature) must not
# sit beside the new checksums.
rm -f "$out_dir/${NAME}_${version}_"*

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

artefacts=()
for target in "$@"; do
    platform="${target%%=*}"
    binary="${target#*=}"
    [[ "$target" == *=* && "$platform" =~ ^[a-z0-9]+_[a-z0-9]+$ ]] || die "'$target' is not OS_ARCH=BINARY"
    [[ -f "$binary" && -x "$binary" ]] || die "$binary is not an executable file"
    stage="$work/$platform"
    mkdir -p "$stage"
    cp "$binary" "$stage/${NAME}_v${version}"
    chmod 0755 "$stage/${NAME}_v${version}"
    touch -d "@$epoch" "$stage/${NAME}_v${version}"
    zip_name="${NAME}_${version}_${platform}.zip"
    # -X: no uid/gid or extra time fields, only what every unzip (and Terraform's) reads; the Unix
    # mode stays, so the binary unpacks executable.
    (cd "$stage" && zip -q -X "$out_dir/$zip_name" "${NAME}_v${version}")
    artefacts+=("$zip_name")
done

manifest="${NAME}_${version}_manifest.json"
printf '{"version":1,"metadata":{"protocol_versions":["6.0"]}}\n' >"$out_dir/$manifest"
artefacts+=("$manifest")

sums="${NAME}_${version}_SHA256SUMS"
# The registry wants `shasum -a 256` lines ("<hex>  <file>"), which is sha256sum's format too.
(cd "$out_dir" && printf '%s\n' "${artefacts[@]}" | LC_ALL=C sort | xargs sha256sum >"$sums")

if [[ -n "${GPG_KEY_ID:-}" ]]; then
    command -v gpg >/dev/null 2>&1 || die "GPG_KEY_ID is set but gpg is not installed"
    # The registry verifies a binary signature; an ASCII-armoured one is refused.
    gpg --batch --yes --local-user "$GPG_KEY_ID" --output "$out_dir/$sums.sig" --detach-sign "$out_dir/$sums"
    gpg --batch --verify "$out_dir/$sums.sig" "$out_dir/$sums" 2>/dev/null ||
        die "the signature gpg just made does not verify"
fi

for file in "$out_dir/${NAME}_${version}_"*; do
    printf '%s\n' "$file"
done
