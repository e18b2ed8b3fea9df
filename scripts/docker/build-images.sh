#!/usr/bin/env bash
# Build the aza-pg images from the repository's Dockerfile (one target each).
#
#   scripts/docker/build-images.sh [TARGET...]
#       TARGET: postgres pgbouncer postgres-exporter pgbouncer-exporter prometheus (default: all five)
#
# Tags: ${AZA_PG_IMAGE_PREFIX:-aza-pg/}<target>:${AZA_PG_TAG:-17}, e.g. aza-pg/postgres:17 (the names the
# stacks use by default). Environment:
#   AZA_PG_CONTEXT      build context (default: the repository root; EXT tests pass a modified copy)
#   BASE_IMAGE          base image (default debian:trixie-slim; debian:<suite>-slim is made locally by
#                       base-image.sh when no registry is reachable)
#   PG_MAJOR            PostgreSQL major from Debian's archive (default 17)
#   INSTALL_EXTENSIONS  1 (default) = image/packages/extensions.txt, 0 = contrib only
#   AZA_PG_FORCE_BUILD  1 = build even when the image is up to date
# An image is up to date when its label org.aza-pg.input-hash equals the hash of everything the build
# reads (Dockerfile, .dockerignore, image/, entrypoint/, pyproject.toml, build arguments, base image id);
# then the build is skipped, which makes a second run take about a second.
# Prints one line per target: tag, built/up to date, seconds, size. Exit status non-zero on a failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
context="$(cd "${AZA_PG_CONTEXT:-$here/../..}" && pwd)"
prefix="${AZA_PG_IMAGE_PREFIX:-aza-pg/}"
tag="${AZA_PG_TAG:-17}"
base="${BASE_IMAGE:-debian:trixie-slim}"
pg_major="${PG_MAJOR:-17}"
install_extensions="${INSTALL_EXTENSIONS:-1}"
say() { printf '[build-images] %s\n' "$*" >&2; }

targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(postgres pgbouncer postgres-exporter pgbouncer-exporter prometheus)
for t in "${targets[@]}"; do
  case "$t" in
    postgres|pgbouncer|postgres-exporter|pgbouncer-exporter|prometheus) ;;
    *) say "unknown target '$t' (postgres pgbouncer postgres-exporter pgbouncer-exporter prometheus)"; exit 2 ;;
  esac
done

# The base image: present, pulled, or built from Debian packages.
if [[ "$base" =~ ^debian:([a-z]+)-slim$ ]]; then
  bash "$here/base-image.sh" "${BASH_REMATCH[1]}"
elif ! docker image inspect "$base" >/dev/null 2>&1; then
  docker pull "$base" >/dev/null
fi
base_id="$(docker image inspect --format '{{.Id}}' "$base")"

input_hash() {
  (
    cd "$context"
    printf 'base=%s pg_major=%s install_extensions=%s\n' "$base_id" "$pg_major" "$install_extensions"
    find Dockerfile .dockerignore pyproject.toml image entrypoint -type f \
        ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 2>/dev/null \
      | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-32
}
hash="$(input_hash)"

status=0
for t in "${targets[@]}"; do
  image="${prefix}${t}:${tag}"
  have="$(docker image inspect --format '{{ index .Config.Labels "org.aza-pg.input-hash" }}' "$image" 2>/dev/null || true)"
  if [ "$have" = "$hash" ] && [ "${AZA_PG_FORCE_BUILD:-0}" != 1 ]; then
    size="$(docker image inspect --format '{{.Size}}' "$image")"
    printf '%-40s up to date            %6s MB\n' "$image" "$((size / 1000000))"
    continue
  fi
  say "building $image (target $t)"
  start=$(date +%s)
  log="$(mktemp)"
  if docker build "$context" \
      --target "$t" \
      --build-arg "BASE_IMAGE=$base" \
      --build-arg "PG_MAJOR=$pg_major" \
      --build-arg "INSTALL_EXTENSIONS=$install_extensions" \
      --label "org.aza-pg.input-hash=$hash" \
      --tag "$image" >"$log" 2>&1; then
    size="$(docker image inspect --format '{{.Size}}' "$image")"
    printf '%-40s built in %5ss        %6s MB\n' "$image" "$(( $(date +%s) - start ))" "$((size / 1000000))"
  else
    say "FAILED: $image; last lines of the build log:"
    tail -n 30 "$log" >&2
    status=1
  fi
  rm -f "$log"
done
exit "$status"
