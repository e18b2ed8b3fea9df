#!/usr/bin/env bash
# Install what the tests need on a Debian 12 (bookworm) or newer host. Idempotent: a second run only
# checks and returns in about a second. Needs root (or sudo) for apt; Docker Engine must already run.
#
#   scripts/install-deps.sh            install everything missing
#   scripts/install-deps.sh --check    report what is missing, change nothing (exit 1 when something is)
#
# What it provides:
#   - Debian packages: PostgreSQL server and client binaries (pg_ctl, initdb, psql, pgbench, ...),
#     pgbouncer, mmdebstrap (builds the base image when no container registry is reachable), python3
#     with venv.
#   - the Docker Compose v2 plugin (`docker compose`), when the engine's CLI lacks it: Debian 13's
#     docker-compose package (a static binary) is downloaded with a separate apt configuration that
#     uses the same archive URIs as this host's sources but the trixie suite, and unpacked with
#     dpkg-deb -x into the CLI plugin directory. The system's apt sources are not changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/docker/debian-sources.sh
. "$here/docker/debian-sources.sh"

check_only=0
[ "${1:-}" = "--check" ] && check_only=1
say() { printf '[install-deps] %s\n' "$*" >&2; }
sudo_=()
[ "$(id -u)" -eq 0 ] || sudo_=(sudo)

# --- Debian packages -----------------------------------------------------------------------------------
packages=(postgresql postgresql-contrib postgresql-client pgbouncer mmdebstrap python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$check_only" = 1 ]; then
    say "missing Debian packages: ${missing[*]}"
  else
    say "installing ${missing[*]}"
    "${sudo_[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts a default cluster and a pgbouncer on installation; the tests start their own.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      "${sudo_[@]}" systemctl disable --now postgresql pgbouncer >/dev/null 2>&1 || true
    fi
  fi
fi

# --- Docker and the Compose v2 plugin ------------------------------------------------------------------
command -v docker >/dev/null || { say "docker CLI not found: install Docker Engine first"; exit 1; }

if docker compose version >/dev/null 2>&1; then
  [ "$check_only" = 1 ] && [ "${#missing[@]}" -gt 0 ] && exit 1
  exit 0
fi
if [ "$check_only" = 1 ]; then
  say "missing: the Docker Compose v2 plugin (docker compose)"
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  plugin_dir=/usr/local/lib/docker/cli-plugins
else
  plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
fi
suite="${AZA_PG_COMPOSE_SUITE:-trixie}"
main_uri="$(debian_uri)" || { say "no Debian archive configured in /etc/apt/sources.list*"; exit 1; }
work="${AZA_PG_CACHE:-${HOME:-/root}/.cache/aza-pg}/apt-$suite"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
printf 'deb %s %s main\n' "$main_uri" "$suite" > "$work/sources.list"
: > "$work/status"
apt_opts=(
  -o "Dir::Etc::sourcelist=$work/sources.list"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::State::status=$work/status"
  -o "APT::Get::List-Cleanup=0"
  -o "Acquire::Languages=none"
)
# The cache lives in root's home, which apt's unprivileged download user cannot write.
[ "$(id -u)" -eq 0 ] && apt_opts+=(-o "APT::Sandbox::User=root")
say "fetching docker-compose from Debian $suite (separate apt configuration)"
apt-get "${apt_opts[@]}" update -qq
(cd "$work/debs" && rm -f docker-compose_*.deb && apt-get "${apt_opts[@]}" download -qq docker-compose)
deb="$(ls "$work"/debs/docker-compose_*.deb)"
unpacked="$work/unpacked"
rm -rf "$unpacked"
dpkg-deb -x "$deb" "$unpacked"
"${sudo_[@]}" install -d -m 0755 "$plugin_dir"
"${sudo_[@]}" install -m 0755 "$unpacked/usr/libexec/docker/cli-plugins/docker-compose" "$plugin_dir/docker-compose"
rm -rf "$unpacked"
docker compose version >/dev/null || { say "docker compose still does not work (plugin in $plugin_dir)"; exit 1; }
say "$(docker compose version) installed in $plugin_dir"
