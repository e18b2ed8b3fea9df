#!/usr/bin/env bash
# Bring up an aza-pg stack and wait until every service is healthy.
#
#   scripts/up.sh [primary|replica|single]      (default: primary)
#
# 1. stacks/<stack>/.env: created from .env.example when missing, every empty password filled with a
#    generated one (32 random letters and digits), mode 0600 from the start. The replica stack takes the
#    replication and exporter passwords from stacks/primary/.env. An existing .env is never changed.
# 2. the external monitoring network (AZA_PG_MONITORING_NETWORK, default `monitoring`) is created when
#    missing.
# 3. the images are built when missing or out of date (scripts/docker/build-images.sh; the Debian base
#    image is made locally when no registry is reachable).
# 4. `docker compose up -d --wait`, bounded by AZA_PG_UP_TIMEOUT seconds (default 600); on failure the
#    services' state and the last log lines are printed and the status is non-zero.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
stack="${1:-primary}"
case "$stack" in primary|replica|single) ;; *) echo "usage: $0 [primary|replica|single]" >&2; exit 2 ;; esac
dir="$root/stacks/$stack"
say() { printf '[up] %s\n' "$*" >&2; }

docker compose version >/dev/null 2>&1 || {
  say "the Docker Compose v2 plugin is missing: run scripts/install-deps.sh"; exit 1; }

env_value() {  # env_value FILE NAME: the raw (unquoted) value of NAME in FILE, empty when absent
  sed -n "s/^$2=//p" "$1" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}
new_password() { LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32; }

if [ ! -e "$dir/.env" ]; then
  tmp="$(mktemp "$dir/.env.XXXXXX")"   # mktemp creates the file with mode 0600
  trap 'rm -f "$tmp"' EXIT
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ "$line" =~ ^(POSTGRES_PASSWORD|PG_REPLICATION_PASSWORD|PGBOUNCER_AUTH_PASS|POSTGRES_EXPORTER_PASSWORD|PGBOUNCER_STATS_PASSWORD)=$ ]]; then
      name="${BASH_REMATCH[1]}"
      if [ "$stack" = replica ] && [ "$name" != POSTGRES_PASSWORD ]; then
        # The replica must use the primary's values: copy the line as written there (same quoting).
        [ -f "$root/stacks/primary/.env" ] || { say "start the primary first: $0 primary"; exit 1; }
        copied="$(grep "^$name=." "$root/stacks/primary/.env" | tail -n 1 || true)"
        [ -n "$copied" ] || { say "stacks/primary/.env has no $name"; exit 1; }
        printf '%s\n' "$copied" >> "$tmp"
      else
        printf '%s="%s"\n' "$name" "$(new_password)" >> "$tmp"
      fi
    else
      printf '%s\n' "$line" >> "$tmp"
    fi
  done < "$dir/.env.example"
  mv "$tmp" "$dir/.env"
  trap - EXIT
  say "wrote $dir/.env (mode 0600) with generated passwords"
fi

network="${AZA_PG_MONITORING_NETWORK:-$(env_value "$dir/.env" AZA_PG_MONITORING_NETWORK)}"
network="${network:-monitoring}"
if ! docker network inspect "$network" >/dev/null 2>&1; then
  docker network create "$network" >/dev/null
  say "created the external network $network"
fi

case "$stack" in
  primary) targets=(postgres pgbouncer postgres-exporter pgbouncer-exporter) ;;
  *) targets=(postgres postgres-exporter) ;;
esac
bash "$root/scripts/docker/build-images.sh" "${targets[@]}"

timeout="${AZA_PG_UP_TIMEOUT:-600}"
cd "$dir"
start=$(date +%s)
if ! docker compose up -d --wait --wait-timeout "$timeout"; then
  say "the $stack stack did not become healthy within ${timeout}s:"
  docker compose ps -a >&2 || true
  docker compose logs --no-color --tail 30 >&2 || true
  exit 1
fi
say "the $stack stack is healthy after $(( $(date +%s) - start ))s:"
docker compose ps
