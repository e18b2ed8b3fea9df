#!/usr/bin/env bash
# Make sure the Debian base image the Dockerfile starts FROM exists in the local Docker engine.
#
#   scripts/docker/base-image.sh [SUITE...]        (default: trixie; e.g. `trixie bookworm`)
#
# For each suite the image `debian:<suite>-slim` is, in order of preference:
#   1. already present in the engine -> nothing to do (fast path, no network);
#   2. pulled from the configured registry (skipped when AZA_PG_NO_PULL=1);
#   3. built from Debian packages: `mmdebstrap --variant=minbase` into a tarball cached under
#      ${AZA_PG_CACHE:-$HOME/.cache/aza-pg}/ (reused on later runs), then `docker import`.
# Packages come from the same archive URIs this host's apt is configured with (read at run time).
# AZA_PG_BASE_REFRESH=1 rebuilds the cached tarball. Exit status non-zero when an image cannot be made.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/docker/debian-sources.sh
. "$here/debian-sources.sh"

cache="${AZA_PG_CACHE:-${HOME:-/root}/.cache/aza-pg}"
say() { printf '[base-image] %s\n' "$*" >&2; }

build_from_debian() {
  local suite="$1" image="$2" tarball="$cache/debian-$suite-slim.tar"
  if [ ! -s "$tarball" ] || [ "${AZA_PG_BASE_REFRESH:-0}" = 1 ]; then
    command -v mmdebstrap >/dev/null || { say "mmdebstrap is missing: run scripts/install-deps.sh"; return 1; }
    local main security
    main="$(debian_uri)" || { say "no Debian archive found in /etc/apt/sources.list*"; return 1; }
    security="$(debian_uri -security || true)"
    local -a sources=("deb $main $suite main" "deb $main $suite-updates main")
    [ -n "$security" ] && sources+=("deb $security $suite-security main")
    mkdir -p "$cache"
    say "building $image with mmdebstrap (minbase) from the host's Debian archive"
    local tmp="$tarball.tmp.$$"
    # Leave documentation, manual pages and translations out, as the official slim images do
    # (copyright files stay). The exclusions are kept in the image so later apt installs honour them.
    if ! mmdebstrap --variant=minbase --format=tar --quiet \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --aptopt='Acquire::Languages "none"' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        "$suite" "$tmp" "${sources[@]}"; then
      rm -f "$tmp"
      return 1
    fi
    mv -f "$tmp" "$tarball"
  else
    say "using cached $tarball"
  fi
  docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$image" >/dev/null
  say "imported $image"
}

[ "$#" -gt 0 ] || set -- trixie
for suite in "$@"; do
  image="debian:$suite-slim"
  if docker image inspect "$image" >/dev/null 2>&1 && [ "${AZA_PG_BASE_REFRESH:-0}" != 1 ]; then
    continue
  fi
  if [ "${AZA_PG_NO_PULL:-0}" != 1 ] && timeout 120 docker pull -q "$image" >/dev/null 2>&1; then
    say "pulled $image"
    continue
  fi
  build_from_debian "$suite" "$image"
done
